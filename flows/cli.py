"""The `actforge` command line: build, train, eval, refresh, serve, publish, stats and report.

Each command lives in `flows.commands` and builds its own parser. TRL settings come after `--`
(`actforge train act ... -- --max_steps 20 --beta 0.04`) and go to TRL's own parser, so every TRL
field is settable without being declared here.
"""

from __future__ import annotations

import argparse
import sys

from actforge.flows.arguments import OneLineParser, renamed_flag
from actforge.flows.commands import build, evaluate, publish, refresh, report, serve, stats, train

COMMANDS = (build, train, evaluate, refresh, serve, publish, stats, report)


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="actforge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for command in COMMANDS:
        command.make_parser(sub).add_argument(
            "--verbose", action="store_true", help="on an error, show the traceback (and Prefect's)"
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, trl = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = _parser()
    if (hint := renamed_flag(ours)) is not None:
        parser.error(hint)
    args, unknown = parser.parse_known_args(ours)
    if unknown:
        where = "after --, e.g. `actforge train act ... -- --max_steps 20`"
        parser.error(f"unrecognized arguments: {' '.join(unknown)} (TRL settings go {where})")
    try:
        return args.execute(args, trl)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        if args.verbose:
            raise
        print(f"actforge: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
