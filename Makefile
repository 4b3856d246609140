# visreg build. `make` builds lib/libvisreg.a and bin/visreg; `make test` runs every suite;
# `make run` trains the default recipe; `make asan` runs the suites under ASan and UBSan; `make fuzz`
# fuzzes every reader of outside bytes (`make fuzz-check`, part of `make test`, replays the corpus).
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
# LuaJIT, libyaml, OpenBLAS, TurboJPEG, libpng and libgomp are linked statically so the binary runs on
# machines without them (libpng needs zlib, linked below)
STATIC_LIBS := $(LIBDIR)/libluajit-5.1.a $(LIBDIR)/libyaml.a $(LIBDIR)/openblas-pthread/libopenblas.a \
               $(LIBDIR)/libturbojpeg.a $(LIBDIR)/libpng16.a
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

.PHONY: all deps test-deps test asan run clean fuzz fuzz-build fuzz-check
all: deps $(LIBA) $(BIN) lua/visreg/cdef.lua

# ---- dependencies (Debian packages) ----
DEB_PKGS := luajit libluajit-5.1-dev libyaml-dev check libopenblas-dev zlib1g-dev libreadline-dev pkg-config dataset-fashion-mnist \
            libturbojpeg0-dev libpng-dev
# for the tests alone: a single-node Slurm that a sweep is submitted to (without the recommended
# plugins, which bring dozens of packages the tests do not use), tmux, the terminal that
# tests/lua/test_repl.lua drives the interactive REPL through, chromium, the headless browser
# that tests/lua/test_report.lua opens the HTML reports in, and clang with its libFuzzer and
# sanitizer runtimes (libclang-rt-dev) and OpenMP runtime (libomp-dev) for the fuzz targets, and
# Open MPI (openmpi-bin), whose mpirun tests/lua/test_dist.lua starts 2 ranks with (the binary
# links nothing of MPI: libmpi is opened at run time, only under a launcher)
TEST_PKGS := slurmctld slurmd slurm-client munge tmux chromium clang libclang-rt-dev libomp-dev openmpi-bin
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
# the regularizer kernels read their arguments by the slot names of core/reg/reg_args.h
$(patsubst %.cu,$(B)/%.o,$(wildcard kernels/cuda/reg*.cu)): core/reg/reg_args.h
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

# the suites, then (FUZZ_IN_TEST=0 leaves it out) the fuzz targets over their corpus
FUZZ_IN_TEST ?= 1
test: all test-deps $(TEST_BIN)
	@rc=0; VISREG_BIN=$(BIN) sh tools/run-tests $(TEST_BIN) || rc=1; \
	if [ "$(FUZZ_IN_TEST)" = 1 ]; then $(MAKE) --no-print-directory fuzz-check || rc=1; fi; exit $$rc

# the same suites with AddressSanitizer and UndefinedBehaviorSanitizer, in build-asan/
asan:
	$(MAKE) test CUDA=0 B=build-asan LIBA=build-asan/libvisreg.a BIN=build-asan/visreg OPT=-O1 FUZZ_IN_TEST=0 \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined"

run: all
	bin/visreg train recipes/fmnist_visreg.lua --out runs/fmnist_visreg --force # an earlier run moves to replaced-DATE/

# ---- fuzzing: one libFuzzer target per reader of outside bytes (tests/fuzz/fuzz_<name>.c: .npy,
# safetensors and its JSON header, IDX with its gzip layer, CIFAR, YAML), built with clang, ASan and
# UBSan against the CPU library compiled the same way in build-fuzz/. Each has a committed seed
# corpus in tests/fuzz/corpus/<name>/ (what fuzzing finds goes to build-fuzz/corpus/<name>/; a
# crash's input to build-fuzz/crash-<name>-*, to be fixed and kept in the committed corpus).
# `make fuzz` fuzzes each for FUZZ_SECONDS; `make fuzz-check` replays each corpus and fuzzes
# FUZZ_CHECK_SECONDS more, failing on any crash, leak, hang or runaway allocation.
FUZZ_CC ?= clang
FB := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CHECK_SECONDS ?= 5
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(patsubst %,$(FB)/fuzz_%,$(FUZZ_NAMES))
FUZZ_LIB_SRC := $(wildcard core/*.c core/ops/*.c core/reg/*.c core/data/*.c kernels/cpu/*.c)
FUZZ_OBJ := $(patsubst %.c,$(FB)/%.o,$(FUZZ_LIB_SRC))
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wno-unknown-pragmas -Wno-pass-failed \
               -O1 -g $(ARCH) -fopenmp $(FUZZ_SAN) -I/usr/include/luajit-2.1 -I/usr/include/x86_64-linux-gnu/openblas-pthread
# libFuzzer's options for every run: a hang is an input taking 10 s, and no input may take more
# than 1 GiB (a reader must refuse a size its file does not back before allocating it)
FUZZ_OPTS := -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1

$(FB)/%.o: %.c core/visreg.h core/internal.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FB)/libvisreg.a: $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^

$(FB)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FB)/libvisreg.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FB)/libvisreg.a $(STATIC_LIBS) -lz -lpthread -ldl -lm -lrt -o $@

fuzz-build: $(FUZZ_BIN)

# clang and its libFuzzer runtime present? (the fuzz targets are skipped, and say so, otherwise)
FUZZ_PROBE = printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' | \
  $(FUZZ_CC) -x c - -fsanitize=fuzzer,address -o /dev/null >/dev/null 2>&1

fuzz: fuzz-build
	@for n in $(FUZZ_NAMES); do mkdir -p $(FB)/corpus/$$n; echo "== fuzz_$$n: $(FUZZ_SECONDS) s"; \
	  $(FB)/fuzz_$$n $(FUZZ_OPTS) -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FB)/crash-$$n- \
	    $(FB)/corpus/$$n tests/fuzz/corpus/$$n 2>$(FB)/fuzz_$$n.log; rc=$$?; \
	  grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' $(FB)/fuzz_$$n.log; \
	  if [ $$rc -ne 0 ]; then tail -60 $(FB)/fuzz_$$n.log; echo "fuzz_$$n: CRASH (input in $(FB)/crash-$$n-*)"; exit 1; fi; \
	done

fuzz-check:
	@if ! $(FUZZ_PROBE); then echo "SKIP fuzz-check: $(FUZZ_CC) with libFuzzer is not installed (make test-deps as root)"; exit 0; fi; \
	$(MAKE) --no-print-directory -s fuzz-build || exit 1; \
	fail=0; for n in $(FUZZ_NAMES); do rm -rf $(FB)/check/$$n; mkdir -p $(FB)/check/$$n; \
	  start=$$(date +%s); \
	  $(FB)/fuzz_$$n $(FUZZ_OPTS) -seed=1 -max_total_time=$(FUZZ_CHECK_SECONDS) -artifact_prefix=$(FB)/crash-$$n- \
	    $(FB)/check/$$n tests/fuzz/corpus/$$n 2>$(FB)/fuzz_$$n.log; rc=$$?; \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FB)/fuzz_$$n.log); \
	  seeds=$$(ls tests/fuzz/corpus/$$n | wc -l); \
	  if [ $$rc -eq 0 ]; then echo "fuzz_$$n: ok ($$seeds seeds, $$runs runs in $$(( $$(date +%s) - start )) s)"; \
	  else tail -60 $(FB)/fuzz_$$n.log; echo "fuzz_$$n: FAILED (input in $(FB)/crash-$$n-*)"; fail=1; fi; \
	done; exit $$fail

clean:
	rm -rf build build-asan build-fuzz lib bin

-include $(shell find $(B) -name '*.d' 2>/dev/null)
-include $(shell find $(FB) -name '*.d' 2>/dev/null)
