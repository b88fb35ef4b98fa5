# Quick start: `make demo` and `make test`. Both install everything they need
# into .venv first (see tools/misc/install_deps.sh for the pinned set).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmnpe-deps-installed

.PHONY: setup lint test demo benchmark study cuda-smoke clean

setup: $(STAMP)

$(STAMP): tools/misc/install_deps.sh setup.py
	bash tools/misc/install_deps.sh $(VENV)
	touch $@

# flake8, isort and yapf as setup.cfg configures them (the versions pinned in
# tools/misc/install_deps.sh: formatters change their output between releases).
LINT_PATHS := mmnpe tools tests benchmarks configs setup.py

lint: $(STAMP)
	$(VENV)/bin/flake8 $(LINT_PATHS)
	$(VENV)/bin/isort --check-only --diff $(LINT_PATHS)
	$(VENV)/bin/yapf --recursive --diff $(LINT_PATHS)

# One pytest-xdist worker per core (tests/conftest.py gives each its share
# of torch threads); TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= auto

test: $(STAMP)
	$(PY) -m pytest tests -n $(TEST_WORKERS) --dist worksteal

demo: $(STAMP)
	$(PY) tools/demo.py --work-dir work_dirs/demo

benchmark: $(STAMP)
	$(PY) benchmarks/bench_npe.py

# The accuracy study (48 min on 2 shared cores): writes benchmarks/accuracy_study.md
# and .json (and, with mmdet, benchmarks/detection_study.md and .json), each
# JSON with its commit, command and machine, and copies the table into
# docs/results.md.
study: $(STAMP)
	$(PY) benchmarks/accuracy_study.py --workers 2 --doc docs/results.md

# On a CUDA machine only (not part of `make test`): short GPU trainings and
# evaluations of the demo configs, with and without --amp.
cuda-smoke: $(STAMP)
	$(PY) tools/misc/cuda_smoke.py

clean:
	rm -rf work_dirs .pytest_cache
