# Ballast: one command for the main job, one for the tests. Each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
ANVIL_DIR := $(CURDIR)/node_modules/@foundry-rs/anvil-linux-amd64/bin
export PATH := $(ANVIL_DIR):$(BIN):$(PATH)
WINDOW ?=

.PHONY: install demo test test-fast gas fuzz bench clean

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e .
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	@test -x $(ANVIL_DIR)/anvil || { echo "anvil binary missing under $(ANVIL_DIR)"; exit 1; }
	touch $@

install: $(VENV)/.installed node_modules/.installed
	@anvil --version | head -1

demo: install
	$(BIN)/python scripts/demo.py $(if $(WINDOW),--window $(WINDOW),)

test: install
	$(BIN)/ape test tests -q

gas: install
	$(BIN)/python scripts/gas.py

clean:
	rm -rf $(VENV) node_modules .build
