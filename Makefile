# The two commands of the README:  `make book`  (main job)  and  `make test`  (tests).
# Both set everything up themselves; re-running set-up is a no-op when nothing changed.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= default
# pip here prints one warning per unreachable extra index; they are noise, errors still fail the step.
PIPQUIET := sed -u '/is ignored: it is neither a file nor a directory/d'
STAMP := $(VENV)/.setup-$(shell cat requirements.txt requirements-extra.txt pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false
export PYTHONHASHSEED := 0

.PHONY: setup data browser test test-fast lint book book-render bench clean-book screenshots
setup: $(STAMP) data

$(STAMP):
	@echo "== set-up: $(VENV) (python: $$($(PY) --version))"
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt 2>&1 | $(PIPQUIET)
	$(BIN)/pip install -q --no-deps -r requirements-extra.txt 2>&1 | $(PIPQUIET)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e . 2>&1 | $(PIPQUIET)
	rm -f $(VENV)/.setup-*
	touch $@

data: $(STAMP)
	$(BIN)/python -m layerinf.tools.prepare prepare

# Headless Chromium (Debian) renders the smoke book's pages in the tests and takes screenshots.
browser:
	@command -v chromium >/dev/null || { echo "== installing Debian chromium"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

test: setup browser
	$(BIN)/pip install -q -r requirements-ray.txt 2>&1 | $(PIPQUIET)
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

book:
	@mkdir -p _build && date +%s > _build/book-start  # the cost page reports set-up time from this
	$(MAKE) --no-print-directory setup
	$(BIN)/python -m layerinf.book --profile $(PROFILE)

bench: setup
	$(BIN)/pip install -q --no-deps -r requirements-bench.txt 2>&1 | $(PIPQUIET)
	$(BIN)/python bench/run.py
