# The README's two commands. Everything else is a convenience for quick loops.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test run demo lint quick clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The whole suite, drills included, after the lint.
test: lint
	$(BIN)/pytest

# Quick loop: everything not marked slow.
quick: $(STAMP)
	$(BIN)/pytest -m 'not slow' -q

# Ruff's lint and its formatter (check only), and the core's types.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict flamepay

# Starts FlamePay. A fresh clone gets a .env from .env.example with the sandbox gateway; without
# BOT_TOKEN or ADMIN_IDS it stops and says where to put them (`flamepay demo` needs neither).
run: $(STAMP)
	@test -f .env || { sed 's/^PROVIDER_BASE_URL=.*/PROVIDER_BASE_URL=sandbox/' .env.example > .env \
		&& echo "Wrote .env from .env.example (PROVIDER_BASE_URL=sandbox)."; }
	$(BIN)/flamepay run

demo: $(STAMP)
	$(BIN)/flamepay demo

clean:
	rm -rf $(VENV) build *.egg-info
