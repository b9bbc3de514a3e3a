# The two quick-start commands:  `make serve`  and  `make test`.
# Both create ./.venv on first use (Python 3.11+), so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint bench clean venv-install

LOCK   := $(VENV).lock

# `make serve` and `make test` started together must not install into the venv at once:
# the install runs under a lock (flock, util-linux; without it, unlocked), and whoever gets
# the lock second finds the venv up to date and installs nothing.
$(STAMP): pyproject.toml
	@if command -v flock >/dev/null 2>&1; then \
	  flock $(LOCK) $(MAKE) --no-print-directory venv-install; \
	else \
	  $(MAKE) --no-print-directory venv-install; \
	fi

venv-install:
	@if [ ! -f $(STAMP) ] || [ pyproject.toml -nt $(STAMP) ]; then \
	  echo "creating $(VENV)"; \
	  $(PYTHON) -m venv $(VENV) && \
	  $(BIN)/pip install --quiet --upgrade pip && \
	  $(BIN)/pip install --quiet -e '.[test]' && \
	  touch $(STAMP); \
	fi

serve: $(STAMP)
	$(BIN)/orchestrator serve

# The suite in two steps (tests/conftest.py, SERIAL_MODULES): most of it spread over two
# processes, then the tests sharing Redis, brokers or real processes in one.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2 -m "not serial"
	$(BIN)/pytest -q -m serial

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(LOCK) var
