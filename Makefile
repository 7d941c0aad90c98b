# Two commands for a fresh machine with only Python 3.11+: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: install demo test test-services test-e2e bench clean translations

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Serves until Ctrl+C; `make demo PORT=8080 HOST=0.0.0.0` to change where it listens.
demo: install
	$(BIN)/helpdesk demo --host $(HOST) --port $(PORT)

test: install
	$(BIN)/helpdesk kb check
	$(BIN)/python -m pytest -q

# The suite against the real PostgreSQL + Redis (CI does this; skips are failures there).
test-services: install
	HELPDESK_TEST_DATABASE_URL=$${HELPDESK_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
	HELPDESK_TEST_REDIS_URL=$${HELPDESK_TEST_REDIS_URL:-redis://127.0.0.1:6379/15} \
	HELPDESK_FORBID_SKIPS=1 $(BIN)/python -m pytest -q -m "not e2e"

test-e2e: install
	HELPDESK_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q -m e2e

translations: install
	$(BIN)/pybabel compile -d helpdesk/translations

clean:
	rm -rf $(VENV) instance/helpdesk.db*
