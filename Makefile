# Two entry points on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
# Tests and the demo never reach a model hub.
OFFLINE = HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,ctranslate2]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(OFFLINE) $(VENV)/bin/xl demo

test: $(STAMP)
	$(OFFLINE) $(PY) -m pytest -q

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(OFFLINE) $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache demo-output
