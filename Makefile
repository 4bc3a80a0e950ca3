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

build: deps
	$(SWIFT) build -c release
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

test: build test-swift test-c test-python test-mpi test-packaging fuzz-smoke sanitize-address

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
.PHONY: deps-packaging deb docs test-packaging

deps-packaging:
	@missing=""; for p in $(PACKAGING_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# .build/deb/libdiffattn0_<version>_<arch>.deb and libdiffattn-dev_<version>_<arch>.deb
deb: build deps-packaging
	bash packaging/build-deb.sh

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
