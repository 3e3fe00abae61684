PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_FLAGS := -q -c constraints.txt

.PHONY: setup demo test lint clean

$(BIN)/edgernn: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[dev]'
	touch $@

setup: $(BIN)/edgernn

demo: setup
	$(BIN)/edgernn demo

test: setup
	$(BIN)/python -m pytest -ra

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) demo-out runs *.egg-info
