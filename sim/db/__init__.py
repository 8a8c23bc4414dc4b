"""The database layer: the only package that imports psycopg and trio-asyncio."""

from sim.db.pool import Conn, Database, map_error  # isort: skip  (imports trio_asyncio first)
from sim.db.lifetime import open_database
from sim.db.migrate import apply_migrations, load_migrations
from sim.db.setup import DatabaseLocation, create_database, locate_database

__all__ = [
    "Conn",
    "Database",
    "DatabaseLocation",
    "apply_migrations",
    "create_database",
    "load_migrations",
    "locate_database",
    "map_error",
    "open_database",
]
