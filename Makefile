# Quick start: `make demo` and `make test`. Both install everything they need
# into .venv first (see tools/misc/install_deps.sh for the pinned set).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmnpe-deps-installed

.PHONY: setup test demo benchmark cuda-smoke clean

setup: $(STAMP)

$(STAMP): tools/misc/install_deps.sh setup.py
	bash tools/misc/install_deps.sh $(VENV)
	touch $@

test: $(STAMP)
	$(PY) -m pytest tests

demo: $(STAMP)
	$(PY) tools/demo.py --work-dir work_dirs/demo

benchmark: $(STAMP)
	$(PY) benchmarks/bench_npe.py

# On a CUDA machine only (not part of `make test`): short GPU trainings and
# evaluations of the demo configs, with and without --amp.
cuda-smoke: $(STAMP)
	$(PY) tools/misc/cuda_smoke.py

clean:
	rm -rf work_dirs .pytest_cache
