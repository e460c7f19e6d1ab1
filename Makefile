# The two commands of the README: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PAWPOST_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever pyproject.toml changes; the stamp makes a second run instant.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/pawpost db upgrade
	@if [ ! -f "$(PAWPOST_DATA_DIR)/.demo-seeded" ]; then \
		$(BIN)/pawpost demo && touch "$(PAWPOST_DATA_DIR)/.demo-seeded"; fi
	$(BIN)/pawpost up

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
