"""One module per `actforge` subcommand: `make_parser(subparsers)` declares it, `run(args, trl)` runs it."""
