"""Commands on this machine's settings: ``check``, ``migrate`` and ``bench``."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

from sim.cli.base import CliError, describe_db, load_settings
from sim.errors import SimError, describe, first_error
from sim.settings import Settings, mask_url

__all__ = ["cmd_bench", "cmd_check", "cmd_migrate"]

log = logging.getLogger(__name__)


def cmd_check(args: argparse.Namespace) -> int:
    s = load_settings()
    if s.main_app_url:
        target = mask_url(s.main_app_url)
    else:
        target = f"{s.delivery_url} (bundled sink)"
    print(
        f"sim: configuration OK; database: {describe_db(s)}; delivering to {target}; "
        f"API token {'set' if s.api_token else 'not set'}; "
        f"signatures {'on' if s.webhook_secrets else 'off'}"
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    import trio

    settings = load_settings().replace(pool_min_size=1, pool_max_size=2)
    # the outcome is one line; sim's log lines (and psycopg's) only with --verbose
    level = logging.INFO if args.verbose else logging.CRITICAL
    logging.basicConfig(level=level, format="sim: %(levelname)s %(name)s: %(message)s")
    for noisy in ("psycopg", "pgserver"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    try:
        applied, latest = trio.run(_migrate, settings)
    except BaseException as exc:
        raise CliError(f"migration failed: {_sim_error(exc)}") from None
    where = describe_db(settings)
    if applied:
        print(f"sim: applied migrations {', '.join(f'{v:04d}' for v in applied)} ({where})")
    else:
        print(f"sim: schema up to date, version {latest:04d} ({where})")
    return 0


async def _migrate(settings: Settings) -> tuple[list[int], int]:
    from sim.db import apply_migrations, load_migrations, open_database

    async with open_database(settings, migrate=False) as db:
        applied = await apply_migrations(db)
    versions = [m.version for m in load_migrations()]
    return applied, max(versions, default=0)


def _sim_error(exc: BaseException) -> str:
    """The first sim error inside ``exc`` (exception groups unwrapped), as text."""
    found = first_error(exc, (SimError, KeyboardInterrupt))
    if isinstance(found, KeyboardInterrupt):
        raise found
    return str(found) if isinstance(found, SimError) else describe(found)


def _bench_roots() -> list[Path]:
    """Where ``bench/`` may be: the current directory, then the checkout sim runs from."""
    return [Path.cwd(), Path(__file__).resolve().parents[2]]


def cmd_bench(args: argparse.Namespace) -> int:
    for root in _bench_roots():
        if (root / "bench" / "__main__.py").is_file():
            cmd = [sys.executable, "-m", "bench", *args.bench_args]
            return subprocess.run(cmd, cwd=root, check=False).returncode
    raise CliError(
        "no benchmark found (bench/__main__.py in the current directory or next to the sim "
        "package); run `sim bench` from a source checkout of sim"
    )
