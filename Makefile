# Quick start: `make demo` (rewrite + generate + score on the embedded shapes world), `make test` (the whole suite).
# Each target creates .venv and installs the pinned dependencies first (idempotent; ~90 s the first time).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt
	# clip-anytorch without deps: its torchvision dependency breaks imports (docs/environment notes).
	$(BIN)/pip install -q --no-deps clip-anytorch==2.6.0
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/t2i-prompt demo --out outputs/demo

test: $(STAMP)
	$(BIN)/python -m pytest tests -x -q

clean:
	rm -rf $(VENV) outputs
