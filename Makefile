# visreg build. `make` builds lib/libvisreg.a and bin/visreg; `make test` runs every suite;
# `make run` trains the default recipe; `make asan` runs the suites under ASan and UBSan.
# Missing Debian packages are installed first when run as root (see `deps`).

CUDA_HOME ?= /usr/local/cuda
NVCC := $(shell command -v nvcc 2>/dev/null || ls $(CUDA_HOME)/bin/nvcc 2>/dev/null)
ifeq ($(NVCC),)
CUDA ?= 0
else
CUDA ?= 1
endif

CC ?= cc
ARCH ?= -march=x86-64-v3
OPT ?= -O3
CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter $(OPT) $(ARCH) -fopenmp -g \
          -I/usr/include/luajit-2.1 -I/usr/include/x86_64-linux-gnu/openblas-pthread $(EXTRA_CFLAGS)
LIBDIR := /usr/lib/x86_64-linux-gnu
# LuaJIT, libyaml, OpenBLAS and libgomp are linked statically so the binary runs on machines without them
STATIC_LIBS := $(LIBDIR)/libluajit-5.1.a $(LIBDIR)/libyaml.a $(LIBDIR)/openblas-pthread/libopenblas.a
LDLIBS := $(STATIC_LIBS) -Wl,-Bstatic -lgomp -Wl,-Bdynamic -lz -lreadline -lpthread -ldl -lm
LDFLAGS := -Wl,-E -fopenmp $(EXTRA_LDFLAGS)
CHECK_LIBS := $(LIBDIR)/libcheck.a $(LIBDIR)/libsubunit.a -lrt

CORE_SRC := $(wildcard core/*.c core/ops/*.c core/reg/*.c core/data/*.c kernels/cpu/*.c)
ifeq ($(CUDA),1)
CORE_SRC := $(filter-out core/cuda_stub.c,$(CORE_SRC))
CUDA_SRC := $(wildcard kernels/cuda/*.cu)
NVFLAGS := -O3 -std=c++17 -gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90,code=sm_90 \
           -gencode=arch=compute_90,code=compute_90 -Xcompiler -Wall,-Wextra,-Werror,-Wno-unused-parameter,-fPIC \
           -Werror all-warnings -I$(CUDA_HOME)/include
# cuDNN 9 or later (the graph API's status categories); an older one is left out (im2col)
CUDNN := $(shell for h in /usr/include/cudnn.h /usr/local/include/cudnn.h $(CUDA_HOME)/include/cudnn.h; do \
           grep -qsE 'define CUDNN_MAJOR ([9]|[1-9][0-9])$$' $$(dirname $$h)/cudnn_version.h && echo $$h; done | head -1)
ifneq ($(CUDNN),)
NVFLAGS += -DVR_HAVE_CUDNN
CUDNN_LIB := -lcudnn
endif
LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 $(CUDA_HOME)/lib64/libcudart_static.a -lcublas $(CUDNN_LIB) -lrt -lstdc++
else
CUDA_SRC :=
endif
# B: object folder; LIBA and BIN: the library and the binary (the asan build uses its own)
B ?= build
LIBA ?= lib/libvisreg.a
BIN ?= bin/visreg
OBJ := $(patsubst %.c,$(B)/%.o,$(CORE_SRC)) $(patsubst %.cu,$(B)/%.o,$(CUDA_SRC))
TOOL_SRC := $(wildcard tools/*.c)
TOOL_OBJ := $(patsubst %.c,$(B)/%.o,$(TOOL_SRC))
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRC))
WHOLE := -Wl,--whole-archive $(LIBA) -Wl,--no-whole-archive

.PHONY: all deps test-deps test asan run clean cdef check-deps
all: deps $(LIBA) $(BIN) lua/visreg/cdef.lua

# ---- dependencies (Debian packages) ----
DEB_PKGS := luajit libluajit-5.1-dev libyaml-dev check libopenblas-dev zlib1g-dev libreadline-dev pkg-config dataset-fashion-mnist
# for the tests alone: a single-node Slurm that a sweep is submitted to (without the recommended
# plugins, which bring dozens of packages the tests do not use), tmux, the terminal that
# tests/lua/test_repl.lua drives the interactive REPL through, and chromium, the headless browser
# that tests/lua/test_report.lua opens the HTML reports in
TEST_PKGS := slurmctld slurmd slurm-client munge tmux chromium
# $(call install,PACKAGES,APT_OPTIONS[,optional]): installs the missing ones when run as root; an
# optional set only warns otherwise (the tests that need it skip)
define install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) $$missing) >/dev/null || { echo "apt-get failed for:$$missing"; exit 1; }; \
	  else echo "missing Debian packages:$$missing (run make as root, or: sudo apt-get install$$missing)"; $(if $(3),true,exit 1); fi; \
	fi
endef
deps:
	$(call install,$(DEB_PKGS))
test-deps:
	$(call install,$(TEST_PKGS),--no-install-recommends,optional)

# ---- library and binary ----
$(B)/%.o: %.c core/visreg.h core/internal.h | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/%.o: %.cu core/visreg.h core/internal.h $(wildcard kernels/cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@

# the regularizers' slice draws (and VISReg's statistics, which make them) round exactly as the C
# build does (no fused multiply-adds)
$(B)/kernels/cuda/reg_draw.o: NVFLAGS += -fmad=false
$(B)/kernels/cuda/reg_colstats.o: NVFLAGS += -fmad=false
$(B)/kernels/cuda/reg_draw.o $(B)/kernels/cuda/reg_colstats.o: core/reg/slices.h core/philox.h
# the augmentations compute every pixel as kernels/cpu/augment.c does (no fused multiply-adds)
$(B)/kernels/cuda/augment.o: NVFLAGS += -fmad=false
$(B)/kernels/cuda/augment.o: core/data/aug_math.h core/data/data.h core/philox.h

$(LIBA): $(OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(TOOL_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(TOOL_OBJ) $(WHOLE) $(LDLIBS) -o $@

lua/visreg/cdef.lua: core/visreg.h tools/gen-cdef
	@mkdir -p lua/visreg
	sh tools/gen-cdef core/visreg.h > $@

# ---- tests ----
$(B)/tests/%: tests/%.c $(wildcard tests/*.h) $(LIBA)
	@mkdir -p $(B)/tests
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(WHOLE) $(CHECK_LIBS) $(LDLIBS) -o $@

test: all test-deps $(TEST_BIN)
	@VISREG_BIN=$(BIN) sh tools/run-tests $(TEST_BIN)

# the same suites with AddressSanitizer and UndefinedBehaviorSanitizer, in build-asan/
asan:
	$(MAKE) test CUDA=0 B=build-asan LIBA=build-asan/libvisreg.a BIN=build-asan/visreg OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined"

run: all
	bin/visreg train recipes/fmnist_visreg.lua --out runs/fmnist_visreg

clean:
	rm -rf build build-asan lib bin

-include $(shell find $(B) -name '*.d' 2>/dev/null)
