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

.PHONY: install demo test app chromium check-install clean

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

# `pip install .` with pyproject's declared ranges resolves in a fresh venv (a dry run: nothing installed; ~1 min).
# torch is the lock file's, as a CPU user installs it first (README "Install").
check-install:
	tmp=$$(mktemp -d) && $(PY) -m venv $$tmp/venv && \
	$$tmp/venv/bin/pip install -q --dry-run --report $$tmp/report.json torch==2.13.0 . && \
	$(PY) -c "import json,sys; r=json.load(open(sys.argv[1])); print('check-install: resolved', len(r['install']), \
	'packages:', ', '.join(sorted(i['metadata']['name'] + '==' + i['metadata']['version'] for i in r['install'] \
	if i['metadata']['name'].lower() in ('diffusers','transformers','trl','peft','accelerate','torch'))))" \
	$$tmp/report.json; status=$$?; rm -rf $$tmp; exit $$status

clean:
	rm -rf $(VENV) outputs
