# Ballast: one command for the main job, one for the tests. Each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# The npm package ships anvil per platform; the real binary is called from here through a one-line
# `exec` (no node wrapper in between, so signals reach anvil directly), with old states kept in
# memory only: by default anvil writes every state it evicts to ~/.foundry/anvil/tmp and never
# deletes it, which filled a disk with tens of GB over a day of test and fuzz runs.
ANVIL_DIR := $(CURDIR)/node_modules/.anvil
export PATH := $(ANVIL_DIR):$(BIN):$(PATH)
# Ape imports pydantic-settings models that warn on import; the warning is not ours to fix.
export PYTHONWARNINGS := ignore::UserWarning

.PHONY: install demo deploy test fuzz gas bench bench-keeper clean

# make demo WINDOW=scripts/data/eth_usd_1h_2021-05-18_may19_crash.csv replays another window
WINDOW ?=

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(ANVIL_DIR)
	bin=$$(ls $(CURDIR)/node_modules/@foundry-rs/anvil-*/bin/anvil | head -1); \
	  test -x "$$bin" || { echo "no anvil binary in node_modules/@foundry-rs"; exit 1; }; \
	  rm -f $(ANVIL_DIR)/anvil; \
	  printf '#!/bin/sh\nexec "%s" --max-persisted-states 0 "$$@"\n' "$$bin" > $(ANVIL_DIR)/anvil; \
	  chmod +x $(ANVIL_DIR)/anvil
	touch $@

install: $(VENV)/.installed node_modules/.installed
	@anvil --version | head -1

demo: install
	$(BIN)/python scripts/demo.py $(if $(WINDOW),--window $(WINDOW))

deploy: install
	$(BIN)/ape run deploy --network ethereum:local:foundry

test: install
	$(BIN)/ape test tests -q
	$(BIN)/ape test tests/fork -q --network ethereum:mainnet-fork:foundry
	$(BIN)/ape test tests/fork -q --network ethereum:sepolia-fork:foundry

# The stateful fuzz machine's long profile (2,000 examples of 50 steps); `make test` runs the CI one.
fuzz: install
	BALLAST_FUZZ=long $(BIN)/ape test tests/test_fuzz.py tests/test_fuzz_advanced.py -q -s

gas: install
	$(BIN)/ape run gas --network ethereum:local:foundry

bench: install
	$(BIN)/python scripts/bench.py

bench-keeper: install
	$(BIN)/python scripts/bench_keeper.py

clean:
	rm -rf $(VENV) node_modules .build
