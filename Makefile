# The two commands of a fresh machine:
#   make run    set up and run the service with demo data on the embedded default
#   make test   set up and pass every test (both backends)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test setup lint lock audit services sip-tools browser promtool clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when the dependencies change: exactly the lock's versions, each checked against
# its hash, then the project itself without resolving anything again.
$(VENV)/.installed: pyproject.toml requirements-dev.lock | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/firstcontact demo

services:
	scripts/ensure-services.sh

# Kamailio + SIPp for the real-SIP test (tests/sip); installed with apt-get when missing.
sip-tools:
	scripts/ensure-sip-tools.sh

# Debian's Chromium for the browser tests (tests/web); installed with apt-get when missing.
browser:
	scripts/ensure-browser.sh

# promtool (Debian's prometheus package) for the alert rules' test (tests/metrics).
promtool:
	scripts/ensure-promtool.sh

lint: setup
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/ruff format --check app tests migrations bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# The lock files, after a dependency changes in pyproject.toml: pins already there are kept
# (uv prefers them), new ones resolved. requirements.lock: the image; -dev: setup and CI.
LOCK_FLAGS := --universal --generate-hashes --python-version 3.11 --no-header --no-annotate --quiet
lock: setup
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements-dev.lock

# Known vulnerabilities in what the lock pins (a printed reason when the database is
# unreachable; see scripts/audit_lock.py).
audit: setup
	$(BIN)/python scripts/audit_lock.py requirements-dev.lock

# Both backends, side by side (scripts/test_passes.py says why and how; `--sequential` there
# runs them one after the other). The slowest tests are listed after each pass.
test: setup services sip-tools browser promtool lint audit
	$(BIN)/python scripts/test_passes.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
