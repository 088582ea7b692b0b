# Both commands set themselves up from nothing: a .venv with pinned packages,
# plus kcat (a non-Python Kafka client the tests publish with), a real Alertmanager (a
# notification channel the tests deliver to) and chromium (which renders the HTML report
# headless in a test) when apt can install them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck schemas docs bench bench-evidently false-alerts clean tools fuzz soak

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13) and "streamwatch needs Python 3.11 to 3.13, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

tools:
	@missing=""; for tool in kcat openssl prometheus-alertmanager chromium; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing (apt-get)"; \
	    (apt-get update -qq && apt-get install -y -qq $$missing) >/dev/null 2>&1 || echo "warning: could not install$$missing"; \
	  else echo "warning:$$missing not installed; the tests that need them will fail or skip"; fi; fi

demo: $(STAMP)
	$(BIN)/streamwatch demo

test: $(STAMP) tools
	$(BIN)/ruff check src tests bench examples docs
	$(BIN)/ruff format --check src tests bench examples docs
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory typecheck
	$(BIN)/streamwatch schemas --check --out schemas
	$(BIN)/streamwatch dashboards build --check
	$(MAKE) --no-print-directory pythons
	$(MAKE) --no-print-directory docs
	$(BIN)/python -m pytest

# The SDK and the worker on the other supported Pythons (3.12, 3.13; `make test` covers 3.11), each in
# a fresh venv from the pinned binary wheels; scripts/check_pythons.sh says what is checked.
.PHONY: pythons
pythons:
	bash scripts/check_pythons.sh

schemas: $(STAMP)
	$(BIN)/streamwatch schemas --out schemas

# The documentation site, into site/; --strict fails on any warning: a broken link or anchor, a docstring
# mkdocstrings cannot read. The reference pages are generated from the code by docs/gen_reference.py.
# (The two variables silence banners that mkdocs-material and a plugin print about MkDocs' future.)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict --site-dir site

# The four throughput ratios against their floors in one run (each benchmark's output follows), then the rest.
bench: $(STAMP)
	$(BIN)/python bench/ratios.py
	$(BIN)/python bench/reports.py
	$(BIN)/python bench/state.py
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/alerts.py

# Evidently needs pandas < 3, so its comparison runs in an environment of its own.
# False alerts per model-week and detection delays of the default rules on simulated traffic (~30 min on 2 cores).
false-alerts: $(STAMP)
	$(BIN)/python bench/false_alerts.py --json false-alerts.json

.venv-bench/.installed: bench/requirements-evidently.txt pyproject.toml
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements-evidently.txt
	.venv-bench/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

bench-evidently: .venv-bench/.installed
	.venv-bench/bin/python bench/evidently_drift.py

# mypy as pyproject.toml's [tool.mypy] says (strict on core, contract and pipeline); `make test` runs it too.
# Each `# type: ignore[code]` says why after it ("  # <reason>"); the grep finds one that does not.
typecheck: $(STAMP)
	$(BIN)/mypy
	@if grep -rnP 'type: ignore(?!\[[^]]+\]  # \S)' src; then echo 'give each type: ignore above its reason: "# type: ignore[code]  # <reason>"'; exit 1; fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples docs
	$(BIN)/ruff format --check src tests bench examples docs
	$(BIN)/lint-imports

# `make test` draws the same hypothesis examples on every run (the "ci" profile in tests/conftest.py);
# this explores with random seeds and more examples. Pin what it finds as an @example in the test.
# 30 minutes of hostile traffic, a flaky ClickHouse and receiver, the worker killed every 5 minutes
# (tests/soak/test_soak.py); SOAK_MINUTES sets another length. Figures land in soak-figures.json.
soak: $(STAMP)
	SOAK_MINUTES=$${SOAK_MINUTES:-30} $(BIN)/python -m pytest -q -p no:cacheprovider tests/soak

fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q $$(grep -rl '@given' tests)

# Regenerate the full pin list after changing pyproject.toml's dependencies.
constraints:
	rm -rf /tmp/streamwatch-lock && $(PYTHON) -m venv /tmp/streamwatch-lock
	/tmp/streamwatch-lock/bin/pip install --quiet '.[dev]'
	/tmp/streamwatch-lock/bin/pip freeze --exclude streamwatch > constraints.txt

clean:
	rm -rf $(VENV) .venv-bench .pytest_cache .ruff_cache .mypy_cache .hypothesis

# The release artefacts: the sdist and the wheel into dist/ (emptied first), then `twine check --strict` on both
# (their metadata, and README.md rendered as PyPI renders the long description). Built as tests/test_release.py
# builds them, from a snapshot of git's files (committed or not, ignored ones left out): hatchling reads only the
# top .gitignore, so a build from the work tree itself would put caches such as .import_linter_cache/ in the sdist.
.PHONY: release-check
release-check: $(STAMP)
	rm -rf dist
	tree=$$(mktemp -d) && trap 'rm -rf "$$tree"' EXIT && \
	git ls-files -z --cached --others --exclude-standard \
	  | tar --null -T - --ignore-failed-read --warning=no-failed-read -cf - | tar -C "$$tree" -xf - && \
	$(BIN)/python -m build --sdist --wheel --no-isolation --outdir dist "$$tree"
	$(BIN)/python -m twine check --strict dist/*
