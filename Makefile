# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# A CPU build of torch is pinned here (users bring their own torch; pyproject keeps a range).
TORCH  ?= torch==2.13.0
OUT    ?= demo-out
LOG    := $(VENV)/install.log

.PHONY: demo test lint bench sweeps clean gpu-check

# pip's and setuptools' output goes to $(LOG); it is shown only when the install fails.
$(STAMP): pyproject.toml constraints.txt
	@echo "Installing weightscope and its dependencies into $(VENV) (log: $(LOG)) ..."
	@$(PYTHON) -m venv $(VENV)
	@( $(PY) -m pip install --upgrade pip \
	   && $(PY) -m pip install "$(TORCH)" \
	   && $(PY) -m pip install --prefer-binary -c constraints.txt -e ".[dev]" ) > $(LOG) 2>&1 \
	   || { tail -n 40 $(LOG); echo "install failed: see $(LOG)"; exit 1; }
	@touch $(STAMP)
	@echo "Installed."

demo: $(STAMP)
	@$(VENV)/bin/weightscope demo --out $(OUT)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

# The sweep tables and figures of docs/ (about 30 min of 2-core CPU; resumes; see
# docs/sweeps/README.md). A subset: make sweeps SWEEPS_ARGS="--only methods exploit".
SWEEPS_ARGS ?=
sweeps: $(STAMP)
	$(PY) scripts/regenerate_sweeps.py $(SWEEPS_ARGS)

# the quick benches (minutes); the long ones are run by name: bench/scale.py (~40 min, 6 GB of
# disk), bench/faults.py (kills, full disks, damaged stores), bench/gpu_check.sh (make gpu-check)
LONG_BENCHES = bench/scale.py bench/faults.py bench/faults_damage.py bench/faults_disk.py bench/gpu_check.py
bench: $(STAMP)
	for b in $(filter-out $(LONG_BENCHES),$(wildcard bench/*.py)); do $(PY) $$b || exit 1; done

# every CUDA test and the GPU rows of bench/gpu_check.py in one table (CPU rows only without CUDA)
gpu-check: $(STAMP)
	PY=$(PY) bash bench/gpu_check.sh

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache .hypothesis
