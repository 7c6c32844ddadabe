"""``t2i-prompt`` command line: one subcommand per module in this package.

Each subcommand module defines ``add_parser(subparsers)`` which registers its parser and sets
``func=<callable(args) -> int>`` as the default. Heavy imports stay inside those callables so
``t2i-prompt --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Order is the order shown in --help. Each name is a module in t2i_prompt/cli/.
SUBCOMMAND_MODULES = [
    "demo",
    "rewrite",
    "generate",
    "score",
    "run",
    "repaint",
    "shapes",
]


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="t2i-prompt",
        description="Rewrite prompts, generate with attention hooks, score images. "
        "With no --model, everything runs on the embedded shapes world (no download, no GPU).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"t2i_prompt.cli.{name}")
        except ModuleNotFoundError as e:  # a subcommand still being written is simply absent
            if e.name == f"t2i_prompt.cli.{name}":
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as e:
        # User errors: one clear line, no traceback. Programming errors still raise.
        print(f"t2i-prompt {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
