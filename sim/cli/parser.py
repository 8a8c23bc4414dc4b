"""The command line's grammar: commands, their options and checked argument types."""

from __future__ import annotations

import argparse
import os

from sim.cli.base import Parser
from sim.cli.demo import cmd_disable, cmd_enable, cmd_redeliver, cmd_status
from sim.cli.local import cmd_bench, cmd_check, cmd_migrate
from sim.cli.serve import cmd_serve

__all__ = ["DEFAULT_URL", "build_parser"]

DEFAULT_URL = "http://127.0.0.1:8000"


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="sim", description="Demo-mode simulator.")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also show sim's log lines (migrate)"
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )

    serve = sub.add_parser("serve", help="serve sim with hypercorn (hypercorn.toml if present)")
    serve.add_argument("--bind", help="HOST:PORT to listen on (default from the config)")
    serve.add_argument("--config", help="hypercorn TOML config (default: the one sim ships)")
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations and exit")
    migrate.set_defaults(func=cmd_migrate)

    check = sub.add_parser("check", help="validate the SIM_* settings and print one line")
    check.set_defaults(func=cmd_check)

    bench = sub.add_parser(
        "bench", help="run the benchmark (python -m bench; other arguments are passed on)"
    )
    bench.set_defaults(func=cmd_bench, bench_args=[])

    http = Parser(add_help=False)
    http.add_argument(
        "--url",
        default=os.environ.get("SIM_PUBLIC_URL") or DEFAULT_URL,
        help=f"sim's base URL (default $SIM_PUBLIC_URL or {DEFAULT_URL})",
    )
    http.add_argument("--token", help="API bearer token (default $SIM_API_TOKEN)")

    demo = sub.add_parser("demo", help="turn demo mode on or off for a user, or show it")
    actions = demo.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=Parser
    )

    enable = actions.add_parser("enable", parents=[http], help="turn demo mode on")
    enable.add_argument("user", metavar="USER")
    enable.add_argument("--videos", type=_non_negative_int, help="videos (default 8)")
    enable.add_argument("--comments", type=_non_negative_int, help="comments (default 100)")
    enable.add_argument("--dms", type=_non_negative_int, help="DMs (default 100)")
    enable.add_argument(
        "--live-per-minute", type=_non_negative_float, help="new items per minute (default 6)"
    )
    enable.add_argument("--seed", type=_non_negative_int, help="same seed, same content")
    enable.add_argument(
        "--wait", action="store_true", help="show progress until the initial burst is delivered"
    )
    enable.add_argument(
        "--timeout", type=_non_negative_float, default=600.0, help="seconds --wait waits at most"
    )
    enable.set_defaults(func=cmd_enable)

    status = actions.add_parser("status", parents=[http], help="show a user's demo status")
    status.add_argument("user", metavar="USER")
    status.add_argument("--json", action="store_true", help="print the status document")
    status.set_defaults(func=cmd_status)

    disable = actions.add_parser("disable", parents=[http], help="turn demo mode off")
    disable.add_argument("user", metavar="USER")
    disable.add_argument("--purge", action="store_true", help="also delete the user's demo data")
    disable.set_defaults(func=cmd_disable)

    redeliver = actions.add_parser(
        "redeliver", parents=[http], help="deliver a user's failed interactions again"
    )
    redeliver.add_argument("user", metavar="USER")
    redeliver.add_argument(
        "--sent", action="store_true", help="also the sent ones (a main app that lost its data)"
    )
    redeliver.add_argument("--since", help="only those queued since (ISO 8601 with offset)")
    redeliver.set_defaults(func=cmd_redeliver)
    return parser
