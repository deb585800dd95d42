# Two commands: `make serve` (set up, index corpus/ — unchanged files skipped — and serve on 127.0.0.1:8000)
# and `make test` (set up, run the test suite). Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# `make serve` listens where RAG_HOST / RAG_PORT say (the settings `rag serve` reads), else on
# 127.0.0.1:8000; `make serve HOST=… PORT=…` wins over both.
HOST   ?= $(or $(RAG_HOST),127.0.0.1)
PORT   ?= $(or $(RAG_PORT),8000)
# torch's CPU build first: a plain `torch` requirement could pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: setup serve test lint bench clean

setup: $(VENV)/.setup-stamp

$(VENV)/.setup-stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e '.[sbert,dev]'
	touch $@

serve: setup
	$(BIN)/rag ingest corpus/  # unchanged files are skipped; an interrupted first run resumes
	$(BIN)/rag serve --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check rag api tests benchmarks
	$(BIN)/ruff format --check rag api tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) index/rag.sqlite3* index/*.idx
