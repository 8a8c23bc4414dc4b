# sim: `make run` serves the demo simulator, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint typecheck faults bench content-report clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("sim needs Python 3.11+") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# `sim serve`: hypercorn.toml's settings, sim and hypercorn in one process, so that SIGTERM
# and Ctrl-C halt delivery at once (`hypercorn -c hypercorn.toml 'sim.app:create_app()'`
# serves the same app, but a signal reaches sim only through hypercorn's master process)
run: install
	$(BIN)/python -m sim check
	$(BIN)/python -m sim serve

lint: install
	$(BIN)/ruff check sim tests bench
	$(BIN)/ruff format --check sim tests bench

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/python -m pytest

# the fault-injection scenarios alone; rewrites RELIABILITY.md with this run's figures
faults: install
	PYTHONPATH=tests $(BIN)/python -m pytest tests/faults -m faults -p no:cacheprovider \
		-p faults.faultplugin --faults-report RELIABILITY.md

# the benchmarks (about 15 minutes); rewrites BENCHMARKS.md with this run's figures
bench: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python -m bench

# the content realism report (about a minute); rewrites CONTENT.md with this run's figures
content-report: install
	$(BIN)/python -m bench.content

clean:
	rm -rf $(VENV) .sim .pytest_cache .mypy_cache .ruff_cache
