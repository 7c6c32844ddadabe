# Quick start: `make demo` (rewrite + generate + score on the embedded shapes world), `make test` (the whole suite),
# `make app` (the Gradio app on http://127.0.0.1:7860).
# Each target creates .venv and installs the pinned dependencies first (idempotent; ~90 s the first time).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false

# The browser test drives Debian's Chromium (Playwright's own browser download is not used); root or sudo installs it.
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install demo test app chromium clean

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

chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) chromium
	$(BIN)/python -m pytest tests -x -q

app: $(STAMP)
	$(BIN)/python app/app.py

clean:
	rm -rf $(VENV) outputs
