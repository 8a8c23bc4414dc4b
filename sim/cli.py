"""sim's command line: ``sim serve | migrate | check | demo ... | bench``.

``serve``, ``migrate`` and ``check`` work on this machine's settings (the same
``SIM_*`` variables as the server); ``demo`` talks to a running sim over HTTP
(``--url``, and ``SIM_API_TOKEN`` or ``--token`` for the bearer token). Every
failure is one line on stderr, ``sim: error: ...``, and exit code 1 (2 for usage).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from sim.errors import ConfigError, SimError
from sim.settings import Settings, mask_url

__all__ = ["CliError", "main"]

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8000"
#: what hypercorn.toml says, for when sim is served from outside a source checkout
HYPERCORN_DEFAULTS: dict[str, Any] = {
    "worker_class": "trio",
    "bind": ["127.0.0.1:8000"],
    "workers": 1,
    "graceful_timeout": 10,
    "accesslog": "-",
    "errorlog": "-",
    "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s %(D)sus',
}
POLL_S = 0.5


class CliError(Exception):
    """A failure to report as one line and exit code 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"sim: error: {message} (see `{self.prog} --help`)\n")


# --- settings-based commands ----------------------------------------------------------------
def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise CliError(f"configuration: {exc}") from None


def _describe_db(settings: Settings) -> str:
    if settings.database_url:
        return mask_url(settings.database_url)
    return f"embedded PostgreSQL in {settings.data_dir}"


def cmd_check(args: argparse.Namespace) -> int:
    s = _settings()
    if s.main_app_url:
        target = mask_url(s.main_app_url)
    else:
        target = f"{s.delivery_url} (bundled sink)"
    print(
        f"sim: configuration OK; database: {_describe_db(s)}; delivering to {target}; "
        f"API token {'set' if s.api_token else 'not set'}; "
        f"signatures {'on' if s.webhook_secrets else 'off'}"
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    import trio

    settings = _settings().replace(pool_min_size=1, pool_max_size=2)
    # the outcome is one line; sim's log lines (and psycopg's) only with --verbose
    level = logging.INFO if args.verbose else logging.CRITICAL
    logging.basicConfig(level=level, format="sim: %(levelname)s %(name)s: %(message)s")
    for noisy in ("psycopg", "pgserver"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    try:
        applied, latest = trio.run(_migrate, settings)
    except BaseException as exc:
        raise CliError(f"migration failed: {_sim_error(exc)}") from None
    where = _describe_db(settings)
    if applied:
        print(f"sim: applied migrations {', '.join(f'{v:04d}' for v in applied)} ({where})")
    else:
        print(f"sim: schema up to date, version {latest:04d} ({where})")
    return 0


async def _migrate(settings: Settings) -> tuple[list[int], int]:
    import trio

    from sim.db import Database, apply_migrations, load_migrations, locate_database

    location = await locate_database(settings)
    try:
        async with trio.open_nursery() as nursery:
            db: Database = await nursery.start(Database(settings, location.conninfo).run)
            try:
                applied = await apply_migrations(db)
            finally:
                db.close()
    finally:
        location.release()
    versions = [m.version for m in load_migrations()]
    return applied, max(versions, default=0)


def _sim_error(exc: BaseException) -> str:
    """The first sim error inside ``exc`` (unwrapping exception groups), as text."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if isinstance(inner, (SimError, BaseExceptionGroup)):
                return _sim_error(inner)
        return _sim_error(exc.exceptions[0])
    if isinstance(exc, KeyboardInterrupt):
        raise exc
    return str(exc) if isinstance(exc, SimError) else f"{type(exc).__name__}: {exc}"


def cmd_serve(args: argparse.Namespace) -> int:
    from hypercorn.config import Config
    from hypercorn.run import run

    if args.bind and "SIM_PUBLIC_URL" not in os.environ:
        # the bundled sink is reached at the public URL: follow the bind address
        os.environ["SIM_PUBLIC_URL"] = f"http://{args.bind}"
    settings = _settings()
    path = Path(args.config) if args.config else Path("hypercorn.toml")
    if path.is_file():
        config = Config.from_toml(path)
    elif args.config:
        raise CliError(f"no hypercorn config at {path}")
    else:
        config = Config.from_mapping(HYPERCORN_DEFAULTS)
    config.application_path = "sim.app:app"
    if args.bind:
        config.bind = [args.bind]
    # hypercorn's lines go through sim's log handler (same format, secrets redacted)
    if config.accesslog == "-":
        config.accesslog = logging.getLogger("hypercorn.access")
    if config.errorlog == "-":
        config.errorlog = logging.getLogger("hypercorn.error")
    if settings.log_format == "text":
        print(f"sim: serving with database {_describe_db(settings)}", file=sys.stderr, flush=True)
    return int(run(config))


def _bench_roots() -> list[Path]:
    """Where ``bench/`` may be: the current directory, then the checkout sim runs from."""
    return [Path.cwd(), Path(__file__).resolve().parents[1]]


def cmd_bench(args: argparse.Namespace) -> int:
    for root in _bench_roots():
        if (root / "bench" / "__main__.py").is_file():
            cmd = [sys.executable, "-m", "bench", *args.bench_args]
            return subprocess.run(cmd, cwd=root, check=False).returncode
    raise CliError(
        "no benchmark found (bench/__main__.py in the current directory or next to the sim "
        "package); run `sim bench` from a source checkout of sim"
    )


# --- HTTP commands ----------------------------------------------------------------------------
class Api:
    """A small synchronous client of sim's /v1 API with one-line errors."""

    def __init__(self, url: str, token: str | None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": "sim-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise CliError(
                f"cannot reach sim at {self.url} ({_reason(exc)}); is `sim serve` running?"
            ) from None
        except httpx.TimeoutException:
            raise CliError(f"sim at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise CliError(f"request to {self.url} failed: {_reason(exc)}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict) and error.get("message"):
                hint = " (set SIM_API_TOKEN or --token)" if response.status_code == 401 else ""
                raise CliError(
                    f"{error['message']}{hint} [HTTP {response.status_code} {error.get('code')}]"
                )
            raise CliError(f"{method} {path} answered HTTP {response.status_code}")
        if not isinstance(body, dict):
            raise CliError(f"{method} {path}: the answer is not a JSON object; is {self.url} sim?")
        return response.status_code, body


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def _api(args: argparse.Namespace) -> Api:
    return Api(args.url, args.token or os.environ.get("SIM_API_TOKEN") or None)


def _path(user: str) -> str:
    return f"/v1/users/{quote(user, safe='')}/demo"


def _plan(doc: dict[str, Any]) -> str:
    return (
        f"{doc['videos']} videos, {doc['comments']} comments, {doc['dms']} DMs, "
        f"{doc['live_per_minute']:g} live/min, seed {doc['seed']}"
    )


def cmd_enable(args: argparse.Namespace) -> int:
    body = {
        key: value
        for key, value in (
            ("videos", args.videos),
            ("comments", args.comments),
            ("dms", args.dms),
            ("live_per_minute", args.live_per_minute),
            ("seed", args.seed),
        )
        if value is not None
    }
    with _api(args) as api:
        status, doc = api.call("PUT", _path(args.user), json=body)
        verb = "started" if status == 202 else "already on"
        print(f"Demo mode {verb} for {doc['user_id']}: {_plan(doc)}; state {doc['state']}")
        if args.wait:
            return _wait(api, args.user, doc, args.timeout)
    return 0


def _wait(api: Api, user: str, doc: dict[str, Any], timeout_s: float) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    total = int(doc["initial_total"])
    start = time.monotonic()
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sent"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(user, total=total)
        while True:
            counts = doc["counts"]
            progress.update(
                task,
                completed=min(counts["sent"], total),
                description=f"{user}"
                + (f" ({counts['failed']} failed)" if counts["failed"] else ""),
            )
            if doc["state"] != "initializing":
                break
            if time.monotonic() - start > timeout_s:
                raise CliError(
                    f"gave up waiting after {timeout_s:g}s: {counts['sent']}/{total} sent "
                    f"(demo mode keeps running; see `sim demo status {user}`)"
                )
            time.sleep(POLL_S)
            _, doc = api.call("GET", _path(user))
    elapsed = time.monotonic() - start
    counts = doc["counts"]
    if doc["state"] == "failed":
        raise CliError(f"demo mode for {user} failed: {doc.get('last_error') or 'unknown error'}")
    if doc["state"] == "disabled":
        raise CliError(f"demo mode for {user} was turned off while waiting")
    sent = min(counts["sent"], total) if doc.get("live_at") is None else counts["sent"]
    rate = f", {sent / elapsed:.0f}/s" if elapsed > 0.05 else ""
    print(
        f"{user}: {sent}/{total} sent, {counts['failed']} failed in {elapsed:.1f}s{rate}; "
        f"now {doc['state']} with {doc['live_per_minute']:g} new per minute"
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _api(args) as api:
        _, doc = api.call("GET", _path(args.user))
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    c = doc["counts"]
    lines = [
        ("user", doc["user_id"]),
        ("state", doc["state"] + ("" if doc["enabled"] else " (off)")),
        ("enabled at", doc["enabled_at"]),
        ("live since", doc.get("live_at") or "-"),
        (
            "counts",
            f"sent {c['sent']}, failed {c['failed']}, pending {c['pending']}, "
            f"sending {c['sending']}",
        ),
        ("initial burst", f"{doc['initial_total']} ({_plan(doc)})"),
        ("last error", doc.get("last_error") or "-"),
    ]
    for label, value in lines:
        print(f"{label:<14}{value}")
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    params = {"purge": "true"} if args.purge else None
    with _api(args) as api:
        _, doc = api.call("DELETE", _path(args.user), params=params)
    if args.purge:
        print(f"Demo mode off for {doc['user_id']}; its demo interactions were deleted")
        return 0
    c = doc["counts"]
    print(
        f"Demo mode off for {doc['user_id']}: {c['sent']} sent, {c['failed']} failed, "
        f"{c['pending'] + c['sending']} undelivered"
    )
    return 0


def cmd_redeliver(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"statuses": ["failed", "sent"] if args.sent else ["failed"]}
    if args.since:
        body["since"] = args.since
    with _api(args) as api:
        _, doc = api.call("POST", _path(args.user) + "/redeliver", json=body)
    what = " and ".join(doc["statuses"])
    since = f" queued since {doc['since']}" if doc.get("since") else ""
    note = "" if doc["enabled"] else "; demo mode is off: they go out once it is on again"
    print(f"Re-queued {doc['requeued']} {what} interactions of {doc['user_id']}{since}{note}")
    return 0


# --- the parser ---------------------------------------------------------------------------------
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
    parser = _Parser(prog="sim", description="Demo-mode simulator.")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also show sim's log lines (migrate)"
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    serve = sub.add_parser("serve", help="serve sim with hypercorn (hypercorn.toml if present)")
    serve.add_argument("--bind", help="HOST:PORT to listen on (default from the config)")
    serve.add_argument("--config", help="hypercorn TOML config (default ./hypercorn.toml)")
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations and exit")
    migrate.set_defaults(func=cmd_migrate)

    check = sub.add_parser("check", help="validate the SIM_* settings and print one line")
    check.set_defaults(func=cmd_check)

    bench = sub.add_parser(
        "bench", help="run the benchmark (python -m bench; other arguments are passed on)"
    )
    bench.set_defaults(func=cmd_bench, bench_args=[])

    http = _Parser(add_help=False)
    http.add_argument(
        "--url",
        default=os.environ.get("SIM_PUBLIC_URL") or DEFAULT_URL,
        help=f"sim's base URL (default $SIM_PUBLIC_URL or {DEFAULT_URL})",
    )
    http.add_argument("--token", help="API bearer token (default $SIM_API_TOKEN)")

    demo = sub.add_parser("demo", help="turn demo mode on or off for a user, or show it")
    actions = demo.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=_Parser
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
