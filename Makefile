# LesionLens: two commands do everything - `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench clean bundle test-bundle

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/lesionlens $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest --durations=15 $(PYTEST_ARGS)

# The inner loop: every test except those marked slow (subprocesses: the console script, kills, strace, lint-imports,
# two-process training; the longer training runs). `make test` still runs everything.
test-fast: $(STAMP)
	$(BIN)/ruff check .
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Speed and memory measurements (not tests): docs/BENCHMARKS.md and docs/benchmarks/results.json. About ten
# minutes on two cores; run it on a quiet machine. ARGS="--quick" for a smoke run, ARGS="--only forward,gui" for parts.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The clinic bundle: dist/LesionLens/, a folder that runs without Python (build.spec; README, "The bundle").
# PyInstaller reuses build/ when nothing changed; a clean clone builds from scratch.
bundle: $(STAMP)
	$(BIN)/pyinstaller --noconfirm --log-level WARN build.spec

test-bundle: bundle
	scripts/test_bundle.sh dist/LesionLens

clean:
	rm -rf $(VENV) build dist .pytest_cache
