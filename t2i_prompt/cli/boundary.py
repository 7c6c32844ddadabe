"""The one error boundary of the CLI and of every script in ``training/`` and ``eval/``.

A user-caused error (bad value, missing or unreadable file, corrupt weights, a full pipe) ends the program with one
line ``<prog>: error: <what> — <how to fix>`` and exit status 2; anything else is a bug and keeps its traceback.
``--debug`` or ``T2I_PROMPT_DEBUG=1`` shows the traceback of user errors too.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from typing import Callable, Sequence

DEBUG_ENV = "T2I_PROMPT_DEBUG"
EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors are one line (no usage block), no prefix matching of long options."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} — see `{self.prog} --help`\n")


def debug_requested(argv: Sequence[str] | None = None) -> bool:
    argv = sys.argv[1:] if argv is None else argv
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def user_error_message(exc: BaseException) -> str | None:
    """The one-line message of a user-caused error, or None for a bug."""
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - safetensors is a dependency
        SafetensorError = ()
    if isinstance(exc, SafetensorError):
        return f"corrupt or truncated safetensors file ({exc}) — re-download or re-save the weights"
    if isinstance(exc, pickle.UnpicklingError):
        return (f"refused to unpickle a checkpoint ({str(exc).splitlines()[0][:200]}) — convert it to safetensors "
                "once, in an environment you trust")
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc} — choose a path you can read and write"
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError)) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename} — check the path"
    if isinstance(exc, (ValueError, FileNotFoundError)):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where} — check the path and the free disk space"
    return None


def run_with_boundary(main: Callable[[], int | None], prog: str, argv: Sequence[str] | None = None) -> int:
    """Call ``main()``; turn user errors into one line and exit status 2 (see module docstring)."""
    try:
        status = main()
        return status if isinstance(status, int) and not isinstance(status, bool) else 0
    except BrokenPipeError:  # `... --json | head`: the reader left; not an error of ours
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the boundary decides what is a user error
        message = user_error_message(exc)
        if message is None or debug_requested(argv):
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE


def run_script(main: Callable, make_parser: Callable | None = None, prog: str | None = None):
    """``if __name__ == "__main__": run_script(main, make_parser)`` for every script in ``training/``, ``eval/``,
    ``benchmarks/``: ``main(make_parser().parse_args())`` (or ``main()``) runs behind the boundary and the process
    exits with its status."""
    from pathlib import Path

    if "--debug" in sys.argv:
        sys.argv.remove("--debug")
        os.environ[DEBUG_ENV] = "1"
    call = (lambda: main(make_parser().parse_args())) if make_parser is not None else main
    sys.exit(run_with_boundary(call, prog or Path(sys.argv[0]).name))


def config_script(config_class: str, runner: str, report: Callable):
    """``(main, make_parser)`` of a thin config-driven script: ``main(argv)`` parses ``config_class`` (YAML +
    CLI overrides, unknown keys refused), calls ``runner(config)`` and prints ``report(config, result)``.
    Both names are ``"module:attribute"`` strings, imported only when used (so ``--help`` stays fast)."""
    import importlib

    def load(spec: str):
        module, _, attr = spec.partition(":")
        return getattr(importlib.import_module(module), attr)

    def main(argv: Sequence[str] | None = None) -> int:
        from ..config import parse_config

        config = parse_config(load(config_class), argv)
        result = load(runner)(config)
        message = report(config, result)
        if message:
            print(message)
        return 0

    def make_parser():
        from ..config import make_parser as config_parser

        return config_parser(load(config_class))

    return main, make_parser
