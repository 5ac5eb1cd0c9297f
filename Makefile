# The two commands of the README: `make train` and `make test`. Both set up .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel on machines without a GPU; override e.g. TORCH_SPEC="torch==2.13.0 --index-url ..." for CUDA.
TORCH_SPEC ?= torch==2.13.0
ARGS ?=

.PHONY: setup train test test-slow bench clean

setup: $(VENV)/.ecglit-installed

$(VENV)/.ecglit-installed: pyproject.toml setup.py
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[all]"
	touch $@

train: setup  ## train the small ResNet on the embedded synthetic dataset
	$(PY) train.py model=resnet_small $(ARGS)

test: setup  ## the default test suite (what CI runs)
	$(PY) -m pytest $(ARGS)

test-slow: setup  ## only the slow tests (learnability, sweeps, DDP, the installed wheel, ...; CI runs them too)
	$(PY) -m pytest -m slow $(ARGS)

bench: setup  ## side-by-side benchmarks, results in BENCHMARKS.md
	$(PY) benchmarks/run.py $(ARGS)

clean:
	rm -rf outputs multirun wandb .pytest_cache
