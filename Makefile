# nnlcc — the two commands of the README, plus board builds.
#   make demo   : create .venv, install nnlcc, compile + verify the shipped example, print report
#   make test   : the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.nnlcc-installed
MODEL ?= examples/digits_mlp.onnx
BOARD ?= arty-a7
PASSES ?=
OUT ?= build/$(basename $(notdir $(MODEL)))-$(BOARD)
PYTEST_ARGS ?=
JOBS ?= 2

.PHONY: demo test test-fast install bitstream report clean lint typecheck

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,train,boards,bench]"
	@touch $@

demo: $(STAMP)
	$(BIN)/nnlcc compile $(MODEL) --board $(BOARD) -o build/demo $(if $(PASSES),--passes "$(PASSES)")
	@cat build/demo/report.md

test: $(STAMP)
	$(BIN)/pytest -n $(JOBS) $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -n $(JOBS) -m "not slow" $(PYTEST_ARGS)

bitstream: $(STAMP)
	$(BIN)/nnlcc compile $(MODEL) --board $(BOARD) --build -o $(OUT) $(if $(PASSES),--passes "$(PASSES)")

report: $(STAMP)
	@cat $(OUT)/report.md

# the import layering and cycle checks run lint-imports/grimp on the package as a wheel lays it
# out (a plain `lint-imports` cannot see hdl/, sim/, ... through the editable import hook)
lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/pytest -q -p no:cacheprovider tests/arch

# mypy cannot follow the editable install's import hook (hdl/ -> nnlcc.hdl), so it checks the
# package as a wheel lays it out: a tree of symlinks into the checkout
typecheck: $(STAMP)
	rm -rf build/typecheck && $(BIN)/python tests/arch/test_layers.py build/typecheck
	cd build/typecheck && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p nnlcc

clean:
	rm -rf build sim_build .pytest_cache .hypothesis
