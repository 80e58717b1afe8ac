# The README's two commands. Everything else is a convenience for quick loops.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test run lint quick clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The whole suite, drills included, after ruff.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

# Quick loop: everything not marked slow.
quick: $(STAMP)
	$(BIN)/pytest -m 'not slow' -q

lint: $(STAMP)
	$(BIN)/ruff check .

run: $(STAMP)
	$(BIN)/flamepay run

clean:
	rm -rf $(VENV) build *.egg-info
