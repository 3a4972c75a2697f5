# Two commands set up a fresh machine and run everything:
#   make reproduce   set up, then run every notebook headless (PROFILE=quick by default)
#   make test        set up what the tests need, then run pytest
# Each set-up step leaves a stamp in .venv/, so a second run skips it in seconds.
PROFILE ?= quick
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: reproduce test setup setup-test system clean-results
.DELETE_ON_ERROR:

reproduce: setup
	$(PY) run_all.py --profile $(PROFILE)

test: setup-test
	$(PY) -m pytest -q tests

setup: system $(VENV)/.stamp-base
setup-test: setup $(VENV)/.stamp-test $(VENV)/.stamp-fairseq

system:
	@bash scripts/setup_system.sh

$(VENV)/.stamp-venv:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	touch $@

# torch first, alone and pinned: the local CPU wheel. Anything later that asks for
# torch finds it satisfied and cannot pull a CUDA build.
$(VENV)/.stamp-torch: $(VENV)/.stamp-venv
	$(PIP) install -q torch==2.13.0
	touch $@

$(VENV)/.stamp-base: $(VENV)/.stamp-torch requirements.txt pyproject.toml
	$(PIP) install -q -r requirements.txt
	# lib/ importable from any cwd (papermill runs notebooks in notebooks/)
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-base requirements-test.txt
	$(PIP) install -q -r requirements-test.txt
	touch $@

# Optional fairseq backend (HuBERT checkpoints through fairseq itself, and the
# reference in the HuBERT equivalence tests). Compiles C++ (~2 min); no build
# isolation so it builds against the torch already installed.
$(VENV)/.stamp-fairseq: $(VENV)/.stamp-test
	$(PIP) install -q --no-build-isolation fairseq-fixed==0.12.3.1
	# fairseq pulls a torchaudio built for another torch; it fails to load and
	# transformers imports it whenever present, so it must go.
	$(PIP) uninstall -q -y torchaudio
	touch $@

clean-results:
	rm -rf results/*/
