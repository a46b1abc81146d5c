# amharic-search: `make app` runs the UI on the sample corpus, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU build of torch; override e.g. `make TORCH=torch` for your platform's default build.
TORCH ?= torch==2.13.0
PORT ?= 8501

.PHONY: setup setup-test app test browser-deps bench clean

# The page and the command line need only the package; the tests add their extra (pytest, Playwright,
# Ray, the trainers' packages), so `make app` does not install what only `make test` uses.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

setup-test: $(VENV)/.installed-test

app: setup
	$(PY) -m streamlit run app.py --server.port $(PORT) --server.headless true

# The browser tests drive Debian's Chromium through Playwright (no browser download).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Install Chromium (Debian/Ubuntu: apt-get install chromium) for the browser tests"; exit 1; fi; }

test: setup-test browser-deps
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/lexical.py

clean:
	rm -rf $(VENV) indexes .pytest_cache
