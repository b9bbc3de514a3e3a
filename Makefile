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

# The suite as two runs side by side (tests/conftest.py, SERIAL_MODULES): most of it spread
# over two processes, and beside them, in one process, the tests sharing Redis, brokers or
# real processes (mostly waiting on those). Its output is printed after; either failing fails.
test: $(STAMP)
	$(BIN)/ruff check .
	@log=$$(mktemp); \
	$(BIN)/pytest -q -m serial > $$log 2>&1 & serial=$$!; \
	$(BIN)/pytest -q -n 2 -m "not serial"; rest=$$?; \
	wait $$serial; alongside=$$?; \
	echo "--- alongside: the tests sharing Redis, brokers or real processes (pytest -m serial)"; \
	cat $$log; rm -f $$log; \
	test $$rest -eq 0 -a $$alongside -eq 0

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(LOCK) var
