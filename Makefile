# The two commands of a fresh machine:
#   make run    set up and run the service with demo data on the embedded default
#   make test   set up and pass every test (both backends)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test setup lint services sip-tools browser clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when the dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
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

lint: setup
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/ruff format --check app tests migrations bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup services sip-tools browser lint
	$(BIN)/pytest --backend=embedded
	$(BIN)/pytest --backend=production -m storage

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
