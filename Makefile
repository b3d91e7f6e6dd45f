# Two commands do all the set-up on a fresh machine:
#   make run    the product on its embedded default (SQLite, demo data) on http://127.0.0.1:8000
#   make test   the whole test suite (lint, types, SQLite + PostgreSQL, headless Chromium)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Two stamps per pyproject.toml: what running needs (`pip install -e .`, for `make run`), and
# that plus the development extras (pytest, Playwright, mypy, ruff: `make test`, `lint`).
# The dev install covers the run one, so it touches both; a changed pyproject.toml has new
# stamp names, and the old ones are removed.
PYPROJECT_HASH := $(shell sha1sum pyproject.toml | cut -c1-12)
RUN_STAMP := $(VENV)/.installed-run-$(PYPROJECT_HASH)
STAMP := $(VENV)/.installed-dev-$(PYPROJECT_HASH)

.PHONY: run test lint i18n-check system-packages bench clean

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	rm -f $(VENV)/.installed-run-* && touch $@

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@ $(RUN_STAMP)

# The demo's DHIS2 mapping is the example's (its facilities are the demo's), so that the
# coordinator's exports page can download a month; a mapping set in the environment wins.
run: $(RUN_STAMP)
	TELEMED_DHIS2_MAPPING="$${TELEMED_DHIS2_MAPPING:-$(CURDIR)/deploy/dhis2/mapping.example.toml}" \
	  $(BIN)/telemed serve --host 127.0.0.1 --port 8000

# Debian packages the tests drive: Chromium (browser tests), coturn (TURN relay test),
# iproute2 (the 2G lab's namespaces and shaping, tests/netlab) and nginx (`nginx -t` of
# deploy/nginx, tests/test_deploy.py). nginx lives in /usr/sbin, which a user's PATH may lack.
SYSTEM_PACKAGES := chromium:chromium coturn:turnserver iproute2:tc nginx:nginx
system-packages:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
	  PATH="$$PATH:/usr/sbin" command -v "$${pair#*:}" >/dev/null || missing="$$missing $${pair%%:*}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 || \
	  { $$SUDO apt-get update >/dev/null && $$SUDO apt-get install -y --no-install-recommends $$missing; }; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check telemed
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layers of docs/architecture.md (.importlinter)

# The catalogues (telemed/locale/*/LC_MESSAGES/messages.po) compile: the app compiles them
# in memory at first use, so nothing is built for `make run`; this is the CI check alone
# (tests/test_i18n.py runs the same compile, and the check that nothing is untranslated).
i18n-check: $(STAMP)
	for lang in en st; do $(BIN)/pybabel compile --statistics -l $$lang \
	  -i telemed/locale/$$lang/LC_MESSAGES/messages.po -o /dev/null || exit 1; done

# TELEMED_TEST_TODAY=2027-07-15 make test: the whole suite as on a machine whose date is that
# day (tests/timetravel/sitecustomize.py moves the wall clock of pytest and of every Python
# process it starts; the database servers keep theirs, and nothing reads the time from them).
ON_TEST_DAY := $(if $(TELEMED_TEST_TODAY),PYTHONPATH=$(CURDIR)/tests/timetravel,)

# Three workers on two cores: most tests wait on a server, a browser or a shaped link, not the
# CPU. A file stays on one worker (--dist loadfile), so a module's server starts once.
# TEST_WORKERS=0 runs everything in this process (one failing test, pdb).
TEST_WORKERS ?= 3

test: $(STAMP) system-packages lint i18n-check
	$(ON_TEST_DAY) $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m bench.api

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
