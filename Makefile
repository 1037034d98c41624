# Leash: `make run` installs everything and starts Leash on its embedded defaults
# (SQLite, sandbox cloud, console chat); `make test` installs everything and runs the suite.
# "Everything" is the locked dependencies, the dev group and the `sandbox` extra (moto, flask
# and the emulators), which production installs leave out.
PYTHON ?= python3.11
VENV := .venv
UV := $(VENV)/bin/uv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced

.PHONY: install run test lint bench teams-package clean

install: $(STAMP)

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "uv>=0.5"

# Bytecode is compiled at install, as the image does (UV_COMPILE_BYTECODE): where
# PYTHONDONTWRITEBYTECODE is set, every `leash` process would otherwise compile its ~850
# modules from source again (about 2 s of each start on two cores).
$(STAMP): $(UV) pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --quiet --extra sandbox --compile-bytecode
	$(BIN)/python -m compileall -q -j 0 bot cloud scheduler >/dev/null
	touch $(STAMP)

run: install
	$(BIN)/leash serve --sandbox --console

# Four workers on two cores: tests wait on servers as much as they compute (9m03s on two
# workers, 7m29s on four, here). Each worker has its own sandbox and PostgreSQL database.
test: install
	$(BIN)/pytest -n 4

lint: install
	$(BIN)/ruff check bot cloud scheduler tests bench
	$(BIN)/ruff format --check bot cloud scheduler tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	@if command -v hadolint >/dev/null 2>&1; then hadolint Dockerfile; else echo "hadolint not installed: Dockerfile not linted"; fi

# Each prints a table and writes bench/results/<name>.json; the summary is the README's table.
# Discovery runs at full size (100 accounts x 100 roles) once, cold; the scan at 20 x 50:
# its 100 x 100 run (`python -m bench.scan`, about 9 minutes) and the rest would not fit in 10.
bench: install
	@status=0; for b in grant_latency slack_ack teams_invoke cloud_writes revoke_lag "cold_start --runs 3" \
		"discovery --cold-only" "scan --accounts 20 --roles 50"; do \
		echo "== python -m bench.$$b"; \
		$(BIN)/python -m bench.$$b || { echo "FAILED: bench.$$b"; status=1; }; \
	done; \
	$(BIN)/python -m bench.summary; exit $$status

teams-package: install
	$(BIN)/leash teams-package --out dist/leash-teams.zip

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
