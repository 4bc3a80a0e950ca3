# libdiffattn — the two set-up commands are `make demo` and `make test` (see README.md).
# Both install what is missing (Debian packages, Python test modules), build, then run.

SWIFT ?= swift
PYTHON ?= python3
RELEASE := .build/release
LIB := $(RELEASE)/libdiffattn.so
TOOL := $(RELEASE)/diffattn-tool
APT_PACKAGES := libopenblas-dev libdlpack-dev pkg-config gcc g++ python3 python3-pip libopenmpi-dev openmpi-bin

.PHONY: all deps build plugin-mpi test test-swift test-c test-python test-mpi demo bench clean

all: build

# Installs only what is missing, so repeated runs are quick and need no network.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@$(PYTHON) -c "import numpy, pytest" 2>/dev/null || \
	  $(PYTHON) -m pip install -q numpy pytest || $(PYTHON) -m pip install -q --break-system-packages numpy pytest

# The SONAME link beside the library lets programs linked against the build tree run from it
# (README "Use from C"): the loader looks for libdiffattn.so.0, the name recorded in them.
build: deps
	$(SWIFT) build -c release
	ln -sfn libdiffattn.so $(RELEASE)/libdiffattn.so.0
	@$(MAKE) --no-print-directory plugin-mpi

# The optional MPI transport (docs/parallel.md), built with mpicc whenever mpi.h is found; the base
# library never links MPI and loads this on demand.
PLUGIN := $(RELEASE)/libdiffattn-mpi.so.0
plugin-mpi:
	@if command -v mpicc >/dev/null 2>&1 && echo '#include <mpi.h>' | mpicc -E -x c - >/dev/null 2>&1; then \
	  mpicc -std=gnu11 -O2 -g -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror \
	    -D_FORTIFY_SOURCE=2 -fstack-protector-strong -ISources/CDiffAttnMPIPlugin/include plugins/mpi/diffattn_mpi.c \
	    -Wl,-soname,libdiffattn-mpi.so.0 -Wl,-z,now -Wl,-z,relro -Wl,--as-needed -o $(PLUGIN) && echo "built $(PLUGIN)"; \
	else echo "mpi.h not found (apt-get install libopenmpi-dev): $(PLUGIN) not built"; fi

test: build test-swift test-c test-python test-mpi test-diffusers test-packaging test-wheel fuzz-smoke sanitize-address

test-swift: deps
	$(SWIFT) test --disable-swift-testing

test-c: build
	bash Tests/capi/run.sh

test-python: build
	DIFFATTN_LIBRARY=$(CURDIR)/$(LIB) $(PYTHON) -m pytest Tests/python -q

# mpirun -np 2 and -np 4, C and Python (mpi4py supplies MPI_Init and the handle; calls go through the plugin).
test-mpi: build
	@$(PYTHON) -c "import mpi4py" 2>/dev/null || $(PYTHON) -m pip install -q mpi4py || \
	  $(PYTHON) -m pip install -q --break-system-packages mpi4py || true
	MPI_PYTHON=$(PYTHON) bash Tests/mpi/run.sh

demo: build
	bash examples/c/run.sh
	DIFFATTN_LIBRARY=$(CURDIR)/$(LIB) PYTHONPATH=$(CURDIR)/bindings/python $(PYTHON) examples/python/demo.py

bench: build
	$(TOOL) bench

clean:
	rm -rf .build

# Packaging (packaging/, Tests/packaging/): Debian packages, their install test, generated docs.
PACKAGING_APT := dpkg-dev chrpath lintian python3-venv python3-wheel
.PHONY: deps-packaging deb docs test-packaging wheel test-wheel

deps-packaging:
	@missing=""; for p in $(PACKAGING_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# .build/deb/libdiffattn0_<version>_<arch>.deb and libdiffattn-dev_<version>_<arch>.deb
deb: build deps-packaging
	bash packaging/build-deb.sh

# .build/wheel/diffattn-<version>-py3-none-linux_<arch>.whl: the binding, libdiffattn.so and the
# OpenBLAS it links (packaging/build-wheel.py says why bundled); pip install it, then import diffattn.
wheel: build
	$(PYTHON) packaging/build-wheel.py --out .build/wheel

# pip-installs the wheel into a fresh venv and uses it without the checkout or the .deb.
test-wheel: build
	bash Tests/packaging/wheel.sh

# docs/api/diffattn.md from the header's doc comments; the README's processor table from the library.
docs: build
	$(PYTHON) packaging/api-docs.py include/diffattn.h > docs/api/diffattn.md
	DIFFATTN_LIBRARY=$(CURDIR)/$(LIB) $(PYTHON) packaging/processor-table.py --update README.md

# Installs the packages with dpkg -i, builds and runs the examples against them, removes them.
test-packaging: build deps-packaging
	bash Tests/packaging/run.sh

# Robustness (Tests/fuzz, Tests/sanitize, docs/robustness.md): libFuzzer targets on an ASan +
# coverage build in .build/fuzz, and the test suite under ASan (.build/asan) or TSan (.build/tsan).
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
.PHONY: fuzz fuzz-smoke sanitize-address sanitize-thread

fuzz: build
	bash Tests/fuzz/run.sh fuzz $(FUZZ_SECONDS)

fuzz-smoke: build
	bash Tests/fuzz/run.sh smoke $(FUZZ_SMOKE_SECONDS)

sanitize-address: deps
	bash Tests/sanitize/run.sh address

sanitize-thread: deps
	bash Tests/sanitize/run.sh thread

# The diffusers integration (bindings/python/diffattn/diffusers.py, docs/diffusers.md): a cached venv
# with CPU torch and diffusers 0.42.1. A CPU build of torch is taken from a local wheel directory
# when the machine has one (PIP_FIND_LINKS); else PyPI's torch, whose CUDA dependencies a CPU does
# not need, is installed with --no-deps plus its pure-Python dependencies (PyPI's 2.15 wheel then
# refuses to import without libcublasLt: give TORCH_WHEEL a CPU wheel). Downloads are kept in
# .build/wheelhouse, so a second venv needs no network. accelerate: diffusers' group offloading uses it.
TORCH_VENV := .build/venv-torch
TORCH_PY := $(TORCH_VENV)/bin/python
TORCH_VERSION ?= 2.15.0
TORCH_WHEEL ?= $(lastword $(sort $(foreach d,$(subst :, ,$(PIP_FIND_LINKS)),$(wildcard $(d)/torch-*+cpu-*.whl))))
DIFFUSERS_VERSION ?= 0.42.1
WHEELHOUSE := .build/wheelhouse
.PHONY: venv-torch test-diffusers

$(TORCH_VENV)/.done:
	$(PYTHON) -m venv $(TORCH_VENV)
	mkdir -p $(WHEELHOUSE)
	if [ -n "$(TORCH_WHEEL)" ]; then $(TORCH_PY) -m pip install -q --no-deps $(TORCH_WHEEL); else \
	  $(TORCH_PY) -m pip download -q -d $(WHEELHOUSE) --no-deps torch==$(TORCH_VERSION) && \
	  $(TORCH_PY) -m pip install -q --no-index --find-links $(WHEELHOUSE) --no-deps torch==$(TORCH_VERSION); fi
	$(TORCH_PY) -m pip install -q filelock typing-extensions sympy networkx jinja2 fsspec "setuptools>=77" numpy pytest
	$(TORCH_PY) -m pip install -q diffusers==$(DIFFUSERS_VERSION) safetensors accelerate
	$(TORCH_PY) -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)"
	touch $@

venv-torch: $(TORCH_VENV)/.done

# Stock diffusers vs use_diffattn on tiny random-weight models (Tests/python/diffusers/).
# Without network on a first run the venv cannot be made: the tests are then skipped, not failed.
test-diffusers: build
	@if $(MAKE) --no-print-directory venv-torch; then \
	  DIFFATTN_LIBRARY=$(CURDIR)/$(LIB) $(TORCH_PY) -m pytest Tests/python/test_torch_tensors.py Tests/python/diffusers -q; \
	else echo "test-diffusers: skipped (could not create $(TORCH_VENV): no network?)"; fi
