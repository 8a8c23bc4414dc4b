"""``sim serve``: hypercorn with sim's one hypercorn configuration.

The configuration is ``sim/hypercorn.toml`` (shipped in the package; the
checkout's ``hypercorn.toml`` is the same file), so ``make run``, ``hypercorn -c
hypercorn.toml`` and ``sim serve`` serve sim the same way.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING

from sim.cli.base import CliError, describe_db, load_settings

if TYPE_CHECKING:
    from hypercorn.config import Config

__all__ = ["APP_PATH", "cmd_serve", "hypercorn_config"]

#: what hypercorn serves: the factory, called once in the worker process
APP_PATH = "sim.app:create_app()"


def hypercorn_config(path: Path | None) -> Config:
    """hypercorn's ``Config`` from ``path``, or from the packaged ``hypercorn.toml``."""
    from hypercorn.config import Config

    if path is not None:
        if not path.is_file():
            raise CliError(f"no hypercorn config at {path}")
        return Config.from_toml(path)
    with as_file(files("sim") / "hypercorn.toml") as packaged:
        return Config.from_toml(packaged)


def cmd_serve(args: argparse.Namespace) -> int:
    from hypercorn.run import run

    if args.bind and "SIM_PUBLIC_URL" not in os.environ:
        # the bundled sink is reached at the public URL: follow the bind address
        os.environ["SIM_PUBLIC_URL"] = f"http://{args.bind}"
    settings = load_settings()
    config = hypercorn_config(Path(args.config) if args.config else None)
    config.application_path = APP_PATH
    if args.bind:
        config.bind = [args.bind]
    # hypercorn's lines go through sim's log handler (same format, secrets redacted)
    if config.accesslog == "-":
        config.accesslog = logging.getLogger("hypercorn.access")
    if config.errorlog == "-":
        config.errorlog = logging.getLogger("hypercorn.error")
    if settings.log_format == "text":
        print(f"sim: serving with database {describe_db(settings)}", file=sys.stderr, flush=True)
    return int(run(config))
