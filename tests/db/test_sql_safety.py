"""SQL is parameterized or composed with psycopg.sql; settings and logs never show secrets."""

from __future__ import annotations

import ast
import base64
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio
from conftest import free_port, served, sql

import sim
from sim.app import create_app
from sim.db import Database, sink_store, users
from sim.db.users import DemoConfig
from sim.logs import configure_logging
from sim.settings import Settings, mask_url

SIM = Path(sim.__file__).parent
DB = SIM / "db"
#: methods whose first argument is SQL text
SQL_METHODS = {"execute", "executemany", "copy", "stream"}
#: composables of psycopg.sql: their values are quoted by psycopg, never pasted as text
COMPOSABLES = {"Identifier", "Literal", "Placeholder"}
#: (module, expression) executed as SQL on purpose, and why
TRUSTED = {
    ("migrate.py", "m.sql.encode()"): "migration files shipped inside the sim package",
}

# --- a static check: what reaches execute()/copy() -------------------------------------------


class SqlChecker:
    """Decides whether an expression is SQL text built only from code, never from input."""

    def __init__(self, tree: ast.Module) -> None:
        counts: dict[str, int] = {}
        self.constants: dict[str, ast.expr] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            else:
                continue
            for target in targets:
                if isinstance(target, ast.Name):
                    counts[target.id] = counts.get(target.id, 0) + 1
                    self.constants[target.id] = value
        # module-level names bound once: computed at import time, so they cannot hold input
        self.constants = {k: v for k, v in self.constants.items() if counts[k] == 1}

    def _local(self, name: str, func: ast.AST | None) -> list[ast.expr] | None:
        if func is None:
            return None
        found = [
            node.value
            for node in ast.walk(func)
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        ]
        params = {a.arg for a in ast.walk(func) if isinstance(a, ast.arg)}
        if name in params:
            return [ast.Name(id="<parameter>")]  # a function argument: may be anything
        return found or None

    def _resolve(self, name: str, func: ast.AST | None) -> list[ast.expr] | None:
        local = self._local(name, func)
        if local is not None:
            return local
        if name in self.constants:
            return [self.constants[name]]
        return None

    def composable(self, node: ast.expr, func: ast.AST | None) -> bool:
        """A psycopg.sql object: SQL(constant), Identifier/Literal/...(any), or .format of those."""
        if isinstance(node, ast.Name):
            values = self._resolve(node.id, func)
            return values is not None and all(self.composable(v, func) for v in values)
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            return False
        owner, attr = node.func.value, node.func.attr
        if isinstance(owner, ast.Name) and owner.id == "sql":
            if attr in COMPOSABLES:
                return True
            if attr == "SQL":
                return len(node.args) == 1 and self.text(node.args[0], func)
            return False
        if attr in ("format", "join") and self.composable(owner, func):
            parts = [*node.args, *(k.value for k in node.keywords)]
            return all(self.composable(p, func) for p in parts)
        return False

    def text(self, node: ast.expr, func: ast.AST | None) -> bool:
        """SQL text made only of literals and module-level constants."""
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str | bytes)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.text(node.left, func) and self.text(node.right, func)
        if isinstance(node, ast.IfExp):
            return self.text(node.body, func) and self.text(node.orelse, func)
        if isinstance(node, ast.JoinedStr):  # an f-string: only module constants inside
            return all(
                isinstance(part, ast.Constant)
                or (
                    isinstance(part, ast.FormattedValue)
                    and isinstance(part.value, ast.Name)
                    and part.value.id in self.constants
                    and self._local(part.value.id, func) is None
                    and part.conversion == -1
                    and part.format_spec is None
                )
                for part in node.values
            )
        if isinstance(node, ast.Name):
            values = self._resolve(node.id, func)
            return values is not None and all(self.text(v, func) for v in values)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "encode" and not node.args:
                return self.text(node.func.value, func)
        return False

    def safe(self, node: ast.expr, func: ast.AST | None) -> bool:
        return self.text(node, func) or self.composable(node, func)


def sql_arguments(source: str) -> Iterator[tuple[int, str, bool]]:
    """(line, expression, safe?) for the SQL argument of every execute()/copy() call."""
    tree = ast.parse(source)
    checker = SqlChecker(tree)
    funcs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_METHODS
            and node.args
        ):
            continue
        enclosing = [f for f in funcs if f.lineno <= node.lineno <= (f.end_lineno or f.lineno)]
        func = enclosing[-1] if enclosing else None
        arg = node.args[0]
        yield node.lineno, ast.unparse(arg), checker.safe(arg, func)


def test_every_query_in_sim_db_is_constant_or_composed() -> None:
    """In sim/db, execute()/copy() only ever get constant SQL text or psycopg.sql objects."""
    checked, unsafe = 0, []
    for path in sorted(DB.glob("*.py")):
        for line, expr, safe in sql_arguments(path.read_text(encoding="utf-8")):
            checked += 1
            if not safe and (path.name, expr) not in TRUSTED:
                unsafe.append(f"{path.name}:{line}: {expr}")
    assert checked >= 25, "the checker no longer sees the queries"
    assert unsafe == []


@pytest.mark.parametrize(
    ("snippet", "safe"),
    [
        ("async def f(c, u):\n    await c.execute('select %s', (u,))", True),
        ("Q = 'select 1'\nasync def f(c):\n    await c.execute(Q + ' limit 1')", True),
        ("C = 'a, b'\nasync def f(c, u):\n    await c.execute(f'select {C} from t', (u,))", True),
        (
            "from psycopg import sql\nasync def f(c, live):\n"
            "    col = sql.Identifier('a' if live else 'b')\n"
            "    await c.execute(sql.SQL('select {} from t').format(col))",
            True,
        ),
        ("async def f(c, u):\n    await c.execute(f'select * from t where id = {u}')", False),
        ("async def f(c, u):\n    await c.execute('select * from t where id = %s' % u)", False),
        ("async def f(c, u):\n    await c.execute('select {}'.format(u))", False),
        ("async def f(c, u):\n    await c.execute('select ' + u)", False),
        ("async def f(c, u):\n    q = 'select ' + u\n    await c.execute(q)", False),
        (
            "from psycopg import sql\nasync def f(c, u):\n    await c.execute(sql.SQL(u))",
            False,
        ),
        ("C = 'x'\nasync def f(c, C):\n    await c.execute(f'select {C}')", False),
    ],
)
def test_the_static_check_tells_safe_from_unsafe(snippet: str, safe: bool) -> None:
    """The checker accepts constants and psycopg.sql, and flags f-strings/%/format/+ of input."""
    [(_, _, verdict)] = list(sql_arguments(snippet))
    assert verdict is safe


def test_only_sim_db_imports_psycopg() -> None:
    """All SQL lives in sim/db: no other sim module imports psycopg."""
    offenders = []
    for path in sorted(SIM.rglob("*.py")):
        if DB in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] in ("psycopg", "psycopg_pool") for n in names):
                offenders.append(str(path.relative_to(SIM)))
    assert offenders == []


HOSTILE = "x'); drop table interactions; --"


async def test_hostile_values_are_data_not_sql(db: Database, db_url: str) -> None:
    """Quotes and SQL in values are stored and matched literally; no table is harmed."""
    assert await users.get_status(db, HOSTILE) is None
    page = await users.page_interactions(
        db, HOSTILE, status=HOSTILE, kind="' or '1'='1", limit=5, after=-1
    )
    assert page == []
    counts = await sink_store.sink_counts(db, "' or 1=1 --")
    assert (counts.received, counts.unique) == (0, 0)
    row, started = await users.enable_user(db, HOSTILE, DemoConfig(1, 0, 0, 0.0, 7))
    assert started and row.user_id == HOSTILE
    assert sql(db_url, "select user_id from demo_users") == [(HOSTILE,)]
    assert sql(db_url, "select count(*) from interactions") == [(0,)]


# --- secrets never shown ----------------------------------------------------------------------
PASSWORD = "pg-pa55word-zz9"
TOKEN = "api-t0ken-zz9"
MAIN_APP_PASSWORD = "ingest-pa55-zz9"
SECRET = "whsec_" + base64.b64encode(b"webhook-secret-zz9-of-32-bytes!!").decode()


SECRETS = [PASSWORD, TOKEN, MAIN_APP_PASSWORD, SECRET, SECRET.removeprefix("whsec_")]


def with_password(url: str) -> str:
    """The test database URL with a password (trust auth on the socket ignores it)."""
    assert "postgres:@" in url or "postgres@" in url, url
    return url.replace("postgres:@", f"postgres:{PASSWORD}@").replace(
        "postgres@", f"postgres:{PASSWORD}@"
    )


def secret_settings(settings: Settings, ingest_port: int) -> Settings:
    assert settings.database_url
    return settings.replace(
        database_url=with_password(settings.database_url),
        api_token=TOKEN,
        webhook_secret=SECRET,
        main_app_url=f"http://sim:{MAIN_APP_PASSWORD}@127.0.0.1:{ingest_port}/ingest",
    )


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://sim:{PASSWORD}@db.internal:5432/sim",
        f"postgresql://db.internal/sim?user=sim&password={PASSWORD}&sslmode=require",
        f"host=db.internal user=sim password={PASSWORD} dbname=sim",
        f"host=db.internal password = '{PASSWORD}' dbname=sim",
    ],
)
def test_mask_url_hides_every_form_of_password(url: str) -> None:
    """URL userinfo, ?password= and key=value DSNs all come out masked."""
    masked = mask_url(url)
    assert PASSWORD not in masked and "***" in masked
    assert "db.internal" in masked


def test_settings_never_print_secrets(settings: Settings) -> None:
    """describe(), repr() and str() of the settings mask passwords, tokens and secrets."""
    s = secret_settings(settings, 9)
    shown = [json.dumps(s.describe()), repr(s), str(s)]
    for text in shown:
        for secret in SECRETS:
            assert secret not in text
    assert "***" in shown[1]


async def test_logs_carry_no_secret(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """A start-up, refused and accepted requests, failing deliveries, shutdown: no secret logged."""
    caplog.set_level(logging.DEBUG)
    ingest_port = free_port()  # nobody listens: deliveries fail and are retried
    s = secret_settings(settings, ingest_port).replace(max_attempts=2)
    app = create_app(s, configure_logs=False)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with trio.fail_after(60):
        async with served(app) as url, httpx.AsyncClient(base_url=url) as client:
            denied = await client.get("/v1/users/alice/demo", headers={"Authorization": "Bearer x"})
            on = await client.put(
                "/v1/users/alice/demo",
                headers=auth,
                json={"videos": 1, "comments": 0, "dms": 1, "live_per_minute": 0},
            )
            while True:  # until deliveries have failed for good
                status = (await client.get("/v1/users/alice/demo", headers=auth)).json()
                if status["counts"]["failed"] == 2:
                    break
                await trio.sleep(0.1)
            await client.post("/sink/interactions", json={"interactions": []})
    assert denied.status_code == 401 and on.status_code == 202
    assert "Delivering to" in caplog.text  # the start-up did log where it delivers
    logged = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    for secret in SECRETS:
        assert secret not in logged
    assert status["last_error"] is None or MAIN_APP_PASSWORD not in status["last_error"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_log_output_redacts_registered_secrets(settings: Settings, fmt: str) -> None:
    """Should a secret reach a log call anyway, sim's handler prints *** in its place."""
    s = secret_settings(settings, 9).replace(log_format=fmt)
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging(s, stream=stream)
    try:
        log = logging.getLogger("sim.test")
        log.warning("token %s, secret %s", TOKEN, SECRET)
        log.warning("connecting to %s", s.database_url)
        log.warning("extra", extra={"dsn": f"password={PASSWORD}"})
    finally:
        for handler in list(root.handlers):
            if getattr(handler, "_sim", False):
                root.removeHandler(handler)
        root.setLevel(level)
    out = stream.getvalue()
    assert out.count("***") >= 4, out
    for secret in SECRETS:
        assert secret not in out
