"""Layers that hold: who may import whom inside sim, read from the source with ``ast``.

api → pipeline → db; the sink and the shared web pieces depend on neither the
API nor the pipeline; only ``sim.db`` touches psycopg and trio-asyncio; the
foundation (errors, settings, logs, metrics) imports no layer; and importing an
app module builds nothing (hypercorn calls the factory).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_FOUNDATION = ("sim.errors", "sim.settings", "sim.logs", "sim.metrics")
_TOP = ("sim.app", "sim.runtime", "sim.cli")
_ALL_LAYERS = ("sim.api", "sim.pipeline", "sim.db", "sim.sink", "sim.web", *_TOP)
#: package (or module) → the sim modules it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "sim.db": ("sim.api", "sim.pipeline", "sim.sink", "sim.web", *_TOP),
    "sim.pipeline": ("sim.api", "sim.sink", "sim.web", *_TOP),
    "sim.web": ("sim.api", "sim.pipeline", "sim.sink", *_TOP),
    "sim.sink": ("sim.api", "sim.pipeline", *_TOP),
    "sim.api": ("sim.sink", "sim.app", "sim.cli"),
    **{module: _ALL_LAYERS for module in _FOUNDATION},
}
#: third-party packages only ``sim.db`` may import
DB_ONLY = ("psycopg", "psycopg_pool", "trio_asyncio")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path) -> Iterator[str]:
    """Every module ``path`` imports (anywhere in the file, relative imports resolved)."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(root: Path) -> list[str]:
    """One line per import that breaks a layer rule, for every module under ``root/sim``."""
    found = []
    for path in sorted((root / "sim").rglob("*.py")):
        module = _module_name(path, root)
        rules = [bad for owner, bad in FORBIDDEN.items() if _within(module, owner)]
        for name in set(imports_of(path, root)):
            for bad in (b for rule in rules for b in rule):
                if _within(name, bad):
                    found.append(f"{module} imports {name} (not allowed: {bad})")
            if not _within(module, "sim.db") and any(_within(name, t) for t in DB_ONLY):
                found.append(f"{module} imports {name} (only sim.db may)")
    return sorted(set(found))


def test_the_layers_hold() -> None:
    """No module imports a layer above it or beside it; psycopg/trio-asyncio only in sim.db."""
    assert violations(ROOT) == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("sim/sink/x.py", "from sim.api.errors import error_response\n", "sim.api.errors"),
        ("sim/web/x.py", "def f():\n    import sim.pipeline.sender\n", "sim.pipeline.sender"),
        ("sim/db/x.py", "from ..api import demo\n", "sim.api"),
        ("sim/api/x.py", "import psycopg\n", "psycopg"),
        ("sim/settings.py", "from sim.db import Database\n", "sim.db"),
    ],
)
def test_a_planted_violation_is_caught(
    tmp_path: Path, module: str, source: str, expected: str
) -> None:
    """The checker itself: each kind of forbidden import in a scratch tree is reported."""
    target = tmp_path / module
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source)
    found = violations(tmp_path)
    assert found and all(expected in line for line in found), found


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_importing_the_apps_builds_nothing() -> None:
    """With a broken environment, importing the app modules neither fails nor builds an app."""
    done = _python(
        "import sim.app, sim.sink.app, sim.cli\n"
        "assert not hasattr(sim.app, 'app') and not hasattr(sim.sink.app, 'app')\n",
        SIM_NO_SUCH_SETTING="1",
    )
    assert done.returncode == 0, done.stderr


def test_hypercorn_builds_the_app_through_the_factory() -> None:
    """hypercorn's loader calls ``sim.app:create_app()``; a bad setting is one line, exit 2."""
    load = (
        "from hypercorn.utils import load_application\n"
        "from sim.cli.serve import APP_PATH\n"
        "load_application(APP_PATH, 0)\n"
    )
    assert _python(load).returncode == 0
    bad = _python(load, SIM_POOL_MIN_SIZE="lots")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "sim: configuration error: SIM_POOL_MIN_SIZE: expected an integer, got 'lots'"
    )
    assert "'sim.app:create_app()'" in (ROOT / "Makefile").read_text()
