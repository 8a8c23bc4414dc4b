"""sim's command line: ``sim serve | migrate | check | demo ... | bench``.

``serve``, ``migrate`` and ``check`` work on this machine's settings (the same
``SIM_*`` variables as the server); ``demo`` talks to a running sim over HTTP
(``--url``, and ``SIM_API_TOKEN`` or ``--token`` for the bearer token). Every
failure is one line on stderr, ``sim: error: ...``, and exit code 1 (2 for usage).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sim.cli.base import CliError
from sim.cli.parser import build_parser

__all__ = ["CliError", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code (0 ok, 1 failure, 2 usage)."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if args.command == "bench":
            args.bench_args = extra
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"sim: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sim: interrupted", file=sys.stderr)
        return 130
