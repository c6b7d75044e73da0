# Two commands: `make run` starts Persephone, `make test` runs every test.
# Both create or refresh the virtual environment in .venv first.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
HOST ?= 127.0.0.1

.PHONY: run test lint format fake-runpod bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed: install it or run 'make PYTHON=/path/to/python3.11 ...'."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.stamp-run: requirements.txt agent/requirements.txt requirements-workloads.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-workloads.txt
	touch $@

$(VENV)/.stamp-dev: $(VENV)/.stamp-run requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.stamp-run
	$(BIN)/python -m app.preflight
	$(BIN)/python -m streamlit run server.py --server.port $(PORT) --server.address $(HOST)

test: $(VENV)/.stamp-dev
	$(BIN)/python -m pytest

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/hadolint docker/controller.Dockerfile docker/agent.Dockerfile

format: $(VENV)/.stamp-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

fake-runpod: $(VENV)/.stamp-run
	$(BIN)/python -m fakes.runpod

bench: $(VENV)/.stamp-dev
	$(BIN)/python bench/launch_to_success.py
	$(BIN)/python bench/run_page.py
	$(BIN)/python bench/agent_sampler.py
	$(BIN)/python bench/agent_workloads.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
