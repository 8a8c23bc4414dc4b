"""What every command shares: the one-line error, the parser that exits 2, settings."""

from __future__ import annotations

import argparse
from typing import NoReturn

from sim.errors import ConfigError
from sim.settings import Settings, mask_url

__all__ = ["CliError", "Parser", "describe_db", "load_settings"]


class CliError(Exception):
    """A failure to report as one line and exit code 1."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``sim: error:`` line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"sim: error: {message} (see `{self.prog} --help`)\n")


def load_settings() -> Settings:
    """This machine's settings (``SIM_*``), or a ``CliError`` naming the bad one."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise CliError(f"configuration: {exc}") from None


def describe_db(settings: Settings) -> str:
    """Where the database is, with any password masked."""
    if settings.database_url:
        return mask_url(settings.database_url)
    return f"embedded PostgreSQL in {settings.data_dir}"
