# Two entry points on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
# Tests and the demo never reach a model hub.
OFFLINE = HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1

.PHONY: install browser demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,ctranslate2,ray,tensorboard]'
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium for the tests that open report.html in a browser (tests/headless_chromium.py; skipped without it):
# Debian's package where this runs as root with apt-get, else how to get it.
browser:
	@if command -v chromium >/dev/null 2>&1; then echo "chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null && echo "installed chromium"; } \
		|| echo "could not install chromium: the browser checks of report.html are skipped"; \
	else echo "no chromium: install it (apt-get install chromium) or the browser checks of report.html are skipped"; fi

demo: $(STAMP)
	$(OFFLINE) $(VENV)/bin/xl demo

test: $(STAMP)
	$(OFFLINE) $(PY) -m pytest -q

# `make bench`: every benchmark at small sizes, one thread except translation (about 15 min wall on this 2-core machine at load 1, 2026-12-05), figures as
# JSON lines in $(BENCH_RESULTS), then benchmarks/results.md and the README's "Measured here" block regenerated from them.
# Each benchmark's own options give the full sizes (see its docstring); override a BENCH_* variable to change a run.
BENCH_RESULTS   ?= build/bench-results.jsonl
# One thread: on two cores shared with other work, two threads wait on each other and times swing several-fold.
BENCH_THREADS   ?= 1
BENCH_DATA      ?= ../shared/data
# Translation on both cores, the condition its goals are set for: batches side by side, one thread each, never wait on each other.
BENCH_TRANSLATE ?= --data $(BENCH_DATA) --sentences 96 --loop-sentences 16 --threads 2 --bfloat16 --repeats 2
BENCH_ALIGN     ?= --n 20000 --threads $(BENCH_THREADS)
BENCH_FEATURES  ?= --n-images 32
BENCH_MODELS    ?= --steps 2
BENCH_ACN       ?= --steps 6
BENCH_OPS       ?= --steps 10 --threads $(BENCH_THREADS)
BENCH_ACN_CMNER ?= --data-dir $(BENCH_DATA) --epochs 1 --fresh
BENCH_CLI_START ?= --runs 7
BENCH_MNER2     ?= --steps 2 --threads $(BENCH_THREADS)
BENCH_MNER2_VIT ?= --steps 1 --threads $(BENCH_THREADS)
BENCH_JOINT     ?= --data-dir $(BENCH_DATA) --posts 300 --seeds 2 --epochs 8
BENCH_RAY       ?= --data $(BENCH_DATA) --sentences 512 --shard-size 256
BENCH_RUN        = $(OFFLINE) OMP_NUM_THREADS=$(BENCH_THREADS) PYTHONPATH=$(CURDIR) XLINGUAL_BENCH_RESULTS=$(BENCH_RESULTS) $(PY)

bench: $(STAMP)
	mkdir -p $(dir $(BENCH_RESULTS)) && rm -f $(BENCH_RESULTS)
	$(BENCH_RUN) benchmarks/bench_translate.py $(BENCH_TRANSLATE)
	$(BENCH_RUN) benchmarks/bench_align.py $(BENCH_ALIGN)
	$(BENCH_RUN) benchmarks/bench_features.py $(BENCH_FEATURES)
	$(BENCH_RUN) benchmarks/bench_models.py $(BENCH_MODELS)
	$(BENCH_RUN) benchmarks/bench_acn.py $(BENCH_ACN)
	$(BENCH_RUN) benchmarks/bench_ops.py $(BENCH_OPS)
	$(BENCH_RUN) benchmarks/bench_acn_cmner.py $(BENCH_ACN_CMNER)
	$(BENCH_RUN) benchmarks/bench_cli_start.py $(BENCH_CLI_START)
	$(BENCH_RUN) benchmarks/bench_mner2.py $(BENCH_MNER2)
	$(BENCH_RUN) benchmarks/bench_mner2_vit.py $(BENCH_MNER2_VIT)
	$(BENCH_RUN) benchmarks/bench_joint_batching.py $(BENCH_JOINT) --work build/bench-joint --fresh
	$(BENCH_RUN) benchmarks/bench_ray.py $(BENCH_RAY)
	$(PY) benchmarks/render_readme.py --results $(BENCH_RESULTS) --table benchmarks/results.md --readme README.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache demo-output
