"""``t2i-prompt`` command line: one subcommand per module in this package.

Each subcommand module defines ``add_parser(subparsers)`` which registers its parser and sets
``func=<callable(args) -> int>`` as the default. Shared flags come from ``options.py``; user errors end in one line
and exit status 2 (``boundary.py``; ``--debug`` for the traceback). Heavy imports stay inside the callables so
``t2i-prompt --help`` is fast.
"""

from __future__ import annotations

import importlib
import sys

from .boundary import OneLineParser, run_with_boundary

# Order is the order shown in --help. Each name is a module in t2i_prompt/cli/.
SUBCOMMAND_MODULES = ["demo", "rewrite", "generate", "score", "run", "repaint", "edit", "shapes", "compbench"]


def make_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="t2i-prompt",
        description="Rewrite prompts, generate with attention hooks, score images. "
        "With no --model, everything runs on the embedded shapes world (no download, no GPU).",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of errors (or T2I_PROMPT_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"t2i_prompt.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, also after the subcommand
    args = parser.parse_args([a for a in argv if a != "--debug"])
    argv = argv if debug else [a for a in argv if a != "--debug"]
    return run_with_boundary(lambda: args.func(args), f"t2i-prompt {args.command}", argv)


if __name__ == "__main__":
    sys.exit(main())
