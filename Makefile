# MLOps, Level by Level: every entry point of the project. CI calls these same targets.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(abspath $(VENV)/bin)
STAMP  := $(VENV)/.installed
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
# chapters `make run` executes at once: each works in its own workspace with its own kernel, so
# two cores run the book in about half the time (`make run JOBS=1` runs them one by one)
JOBS   ?= 2

# `make wheelhouse` downloads every locked package once into a folder, with pip and the project's
# build backend; while that folder holds wheels, `make setup` installs from it alone, with no
# index (a room of laptops offline: book/workshop.qmd). tests/test_wheelhouse.py runs this recipe.
REQUIREMENTS ?= requirements.lock
WHEELHOUSE   ?= wheelhouse
PIP_SPEC     := pip>=24
ifneq ($(wildcard $(WHEELHOUSE)/*.whl),)
PIP_FROM     := --no-index --find-links $(WHEELHOUSE)
PIP_MISSING  := || { echo "make setup: $(WHEELHOUSE)/ lacks the package named above; run 'make wheelhouse' where the package index is reachable and copy the folder again (or remove $(WHEELHOUSE)/ to install from the index)" >&2; exit 1; }
endif

# The venv's tools (uvicorn, dvc, mlflow) must be found by name. The stack runs offline, without
# telemetry, and quiet: these are companion.core.env.OFFLINE_ENV, kept in step by a test.
export PATH := $(BIN):$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export FEAST_USAGE := False
export HF_HUB_OFFLINE := 1
export GIT_TERMINAL_PROMPT := 0
export MLFLOW_LOGGING_LEVEL := ERROR
export MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT := true
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: setup wheelhouse run test unit typecheck notebooks data render bench robustness lint lock latest clean

setup: $(STAMP)  ## create .venv and install the pinned stack (once)

$(STAMP): $(REQUIREMENTS) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(PIP_FROM) --upgrade "$(PIP_SPEC)" $(PIP_MISSING)
	$(BIN)/python -m pip install --quiet $(PIP_FROM) -r $(REQUIREMENTS) $(PIP_MISSING)
	$(BIN)/python -m pip install --quiet $(PIP_FROM) --no-deps -e . $(PIP_MISSING)
	touch $(STAMP)

wheelhouse:  ## download every locked package, pip and the build backend once into wheelhouse/ (then make setup needs no index)
	$(PYTHON) -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) "$(PIP_SPEC)" -r $(REQUIREMENTS) \
	  $$($(PYTHON) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"])')
	@echo "$(WHEELHOUSE)/: $$(ls $(WHEELHOUSE)/*.whl | wc -l) wheels, $$(du -sh $(WHEELHOUSE) | cut -f1); copy it beside each checkout, then make setup"

run: setup data  ## execute every chapter with papermill, two at a time, then render the book if Quarto is here
	$(BIN)/python -m companion.runner run --jobs $(JOBS)
	@$(MAKE) --no-print-directory render

render:
	@if command -v quarto >/dev/null 2>&1; then quarto render; \
	else echo "Quarto is not installed: the notebooks are executed, the HTML book is not rendered."; \
	     echo "Install Quarto (https://quarto.org/docs/get-started/) and run 'quarto render'."; fi

# The companion's API reference, the book's last appendices (reference/*.qmd, committed):
# quartodoc over the package's docstrings, offline (book/api_reference.py). Its structure test,
# tests/test_api_reference.py (part of make test), fails when the pages are not current.
.PHONY: reference
reference: setup  ## regenerate the companion's API reference (reference/) from its docstrings
	$(BIN)/python book/api_reference.py

# The chapters are re-executed once, by tests/test_other_machine.py: nbval (strict, the one
# sanitize file) over every chapter in a copy of the book that plays another machine, two
# chapters at a time, started when the tests are collected and run beside the unit tests
# (tests/conftest.py). A plain nbval run here would execute every chapter a second time;
# `make notebooks` is that run.
test: setup  ## lint, type check, unit tests and doctests, book structure checks, nbval (strict) over every chapter as on another machine
	$(BIN)/ruff check --quiet companion tests benchmarks book tools
	$(BIN)/mypy
	$(BIN)/python -m pytest tests companion --doctest-modules --durations=15

unit: setup  ## the fast tests: unit tests, doctests and structure checks (no notebook, no server)
	$(BIN)/python -m pytest tests companion --doctest-modules -m "not slow"

typecheck: setup  ## mypy over the companion package (part of make test)
	$(BIN)/mypy

notebooks: setup  ## nbval over the chapters only, here (make test runs them as on another machine)
	$(BIN)/python -m pytest notebooks $(NBVAL)

data: setup  ## reproduce the sample dataset's DVC pipeline in data/
	cd data && $(BIN)/dvc repro --quiet

bench: setup  ## time and measure every chapter, the dataset generator, the pipeline runners, serving, batch scoring, monitoring, the scaling appendix's limits and retrieval (JSON in benchmarks/results)
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_chapters.py
	$(BIN)/python benchmarks/bench_pipelines.py
	$(BIN)/python benchmarks/bench_serving.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_monitoring.py
	$(BIN)/python benchmarks/bench_scaling.py
	$(BIN)/python benchmarks/bench_llm.py

robustness: setup  ## every chapter with seeds 1-5: how many of its end-of-chapter checks pass
	$(BIN)/python -m companion.runner robustness --seeds 1 2 3 4 5

lint: setup
	$(BIN)/ruff check companion tests benchmarks book tools

lock:  ## re-resolve the stack from pyproject.toml and pin it in requirements.lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -e ".[test,book]"
	{ echo "# Every package of the book's environment, pinned. Regenerate with: make lock"; \
	  echo "# Python 3.11. Installed by 'make setup' (called by 'make run' and 'make test')."; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v '^mlops-level-by-level'; } > requirements.lock
	rm -rf .lock-venv

# The latest-versions run (not part of `make test`): a second environment from pyproject.toml's
# ranges with the newest versions they allow (not the lock), the fast tests run there, and a
# report of what differs from the lock and what broke (tools/latest_report.py, standard library
# only, so it reports an install that failed too). Exits non-zero if anything broke.
LATEST      := .venv-latest
LATEST_BIN  := $(abspath $(LATEST)/bin)
LATEST_OUT  := build/latest
LATEST_TEST := pytest tests companion --doctest-modules -m "not slow"

latest:  ## newest versions pyproject.toml allows, in .venv-latest: fast tests, and a report in build/latest
	rm -rf $(LATEST) $(LATEST_OUT) && mkdir -p $(LATEST_OUT)
	$(PYTHON) -m venv $(LATEST)
	@echo "Installing the newest versions pyproject.toml allows into $(LATEST) (log: $(LATEST_OUT)/install.log)"
	-$(LATEST_BIN)/python -m pip install --upgrade "pip>=24" -e ".[test,book]" > $(LATEST_OUT)/install.log 2>&1 \
	  && $(LATEST_BIN)/python -m pip freeze --exclude-editable > $(LATEST_OUT)/freeze.txt
	-test -f $(LATEST_OUT)/freeze.txt && PATH=$(LATEST_BIN):$$PATH $(LATEST_BIN)/python -m $(LATEST_TEST) \
	  -q -p no:cacheprovider --junitxml=$(LATEST_OUT)/junit.xml > $(LATEST_OUT)/pytest.log 2>&1
	$(PYTHON) tools/latest_report.py --lock requirements.lock --out $(LATEST_OUT) \
	  --freeze $(LATEST_OUT)/freeze.txt --junit $(LATEST_OUT)/junit.xml \
	  --install-log $(LATEST_OUT)/install.log --command '$(LATEST_TEST)'

clean:  ## remove workspaces and the rendered book (keeps .venv)
	rm -rf build _book .pytest_cache
