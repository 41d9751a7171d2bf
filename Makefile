# The README's two set-up commands are `make bench` and `make test`; each installs what it needs.
# torch is pinned to the local CPU build: any other spec makes pip download a multi-GB CUDA build.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= test,bench

.PHONY: install test bench lint

install:
	$(PIP) install $(TORCH_SPEC)
	$(PIP) install ninja pybind11 "setuptools>=77" wheel
	$(PIP) install --no-build-isolation -e ".[$(EXTRAS)]"

test: install
	$(PYTHON) -m pytest tests -q

# The benchmarks also install the speed table's other peers (DeepSpeed, bitsandbytes).
bench: EXTRAS = test,bench,peers
bench: install
	$(PYTHON) -m benchmarks all

lint:
	ruff check optimizers benchmarks tests
