# sluice -- build everything from this one Makefile.
#
#   make [BUILD=release|debug|asan|ubsan|fuzz] [V=1] [target]
#
#   all            server + tools (default): build/sluice, build/sluice-source,
#                  build/sluice-sink (other BUILD modes: build/<mode>/...)
#   run            install missing packages, build, start a sink and sluice on
#                  the embedded default configuration (127.0.0.1:2525)
#   test           install missing packages, build, run unit tests, the
#                  fuzz-corpus replay and e2e tests
#   unit           Criterion unit tests only
#   fuzz-replay    replay tests/fuzz/corpus/<t>/ through each fuzz target (gcc)
#   fuzz           libFuzzer binaries build/fuzz/fuzz_<t> (clang, BUILD=fuzz)
#   fuzz-run       T=<target> [SECS=60]: fuzz one target; new inputs go to
#                  build/fuzz/corpus/<t>, crashes to build/fuzz/crash-*
#   fuzz-merge     T=<target>: add the inputs of build/fuzz/corpus/<t> that
#                  bring new coverage to tests/fuzz/corpus/<t> (-merge=1)
#   e2e            end-to-end tests on loopback only
#   bench          benchmarks against Postfix's smtp-source/smtp-sink
#   check-headers  compile each header on its own
#   check-layers   forbid upward includes between modules
#   check          format-check + check-headers + check-layers + unit +
#                  fuzz-replay
#   deps           install missing Debian packages (tools/install-deps.sh)
#   wolfssl        build Debian's wolfSSL with assembly into WOLFSSL_PREFIX
#                  (/opt/sluice/wolfssl; tools/build-wolfssl.sh), linked
#                  statically from then on; without it, Debian's libwolfssl
#   clean          remove build/
#   help           print this text

BUILD	?= release
ifeq ($(BUILD),release)
  O	:= build
else
  O	:= build/$(BUILD)
endif
OBJ	:= $(O)/obj
Q	:= $(if $(V),,@)

CC	?= cc
CSTD	:= -std=c11 -D_GNU_SOURCE
WARN	:= -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	   -Wpointer-arith -Wcast-qual -Wvla -Wformat=2 -Wimplicit-fallthrough -Werror
CPPFLAGS += -I.
PKGS	:= liburing libxxhash libcares
# wolfSSL: the static assembly build of tools/build-wolfssl.sh (`make wolfssl`)
# when WOLFSSL_PREFIX holds one, else Debian's libwolfssl-dev (built without
# assembly: AES-GCM ~7x slower). Static, so no rpath or LD_LIBRARY_PATH.
WOLFSSL_PREFIX ?= /opt/sluice/wolfssl
WOLFSSL_PC := $(wildcard $(WOLFSSL_PREFIX)/lib/pkgconfig/wolfssl.pc)
ifneq ($(WOLFSSL_PC),)
  WOLFSSL_PKG := PKG_CONFIG_LIBDIR=$(dir $(WOLFSSL_PC)) pkg-config --static
  CPPFLAGS += $(shell $(WOLFSSL_PKG) --cflags wolfssl)
  WOLFSSL_LIBS := $(shell $(WOLFSSL_PKG) --libs wolfssl)
  WOLFSSL_BUILD := $(shell cat $(WOLFSSL_PREFIX)/.sluice-build 2>/dev/null)
else
  WOLFSSL_LIBS := $(shell pkg-config --libs wolfssl 2>/dev/null || echo -lwolfssl)
  WOLFSSL_BUILD := debian
endif
LDLIBS	+= $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -luring -lxxhash -lcares) \
	   $(WOLFSSL_LIBS) -ljemalloc -lck -lidn2 -lpthread

ifeq ($(BUILD),debug)
  OPT := -O0 -g3 -DSLUICE_DEBUG
else ifeq ($(BUILD),release)
  OPT := -O2 -g -fno-omit-frame-pointer
else ifeq ($(BUILD),asan)
  OPT := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
	 -fno-omit-frame-pointer -DSLUICE_DEBUG
  LDFLAGS += -fsanitize=address,undefined
else ifeq ($(BUILD),ubsan)
  OPT := -O1 -g -fsanitize=undefined -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=undefined
else ifeq ($(BUILD),fuzz)
  # libFuzzer needs clang; the fuzzer runtime itself is linked only into
  # build/fuzz/fuzz_<t> (-fsanitize=fuzzer), everything else is instrumented.
  CC  := clang
  OPT := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
	 -fno-omit-frame-pointer -DSLUICE_DEBUG -DSLUICE_FUZZING
  LDFLAGS += -fsanitize=address,undefined
else
  $(error unknown BUILD=$(BUILD))
endif
CFLAGS	+= $(CSTD) $(WARN) $(OPT)
# jemalloc replaces malloc; the sanitizers bring their own allocator.
ifneq ($(filter asan ubsan fuzz,$(BUILD)),)
  LDLIBS := $(filter-out -ljemalloc,$(LDLIBS))
endif

# core/server holds the glue (shards, sessions, upstreams) that joins
# core, proto, auth and route: the one level allowed to include them all.
MODULES	:= server proto auth route core
DIR_server := core/server
DIR_proto := proto
DIR_auth := auth
DIR_route := route
DIR_core := core
$(foreach m,$(MODULES),$(eval SRC_$(m) := $(filter-out core/main.c,$(wildcard $(DIR_$(m))/*.c))))
$(foreach m,$(MODULES),$(eval OBJ_$(m) := $(SRC_$(m):%.c=$(OBJ)/%.o)))
# link order = layering: higher levels first
LIBS	:= $(foreach m,$(MODULES),$(O)/lib$(m).a)
LINK_LIBS := $(LIBS)

# Rebuild everything when the compiler command line or the wolfSSL build changes.
FLAGS_STAMP := $(O)/.flags
FLAGS_LINE := $(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) wolfssl: $(WOLFSSL_BUILD)
$(shell mkdir -p $(O) && echo '$(FLAGS_LINE)' | cmp -s - $(FLAGS_STAMP) \
	|| echo '$(FLAGS_LINE)' > $(FLAGS_STAMP))

$(OBJ)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),printf '  CC      %s\n' $<)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(O)/lib%.a:
	@$(if $(Q),printf '  AR      %s\n' $@)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^
$(foreach m,$(MODULES),$(eval $(O)/lib$(m).a: $(OBJ_$(m))))

define link
	@$(if $(Q),printf '  LD      %s\n' $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LINK_LIBS) $(1) $(LDLIBS)
endef

$(O)/sluice: $(OBJ)/core/main.o $(LIBS)
	$(call link)

# tools: each binary is its folder plus tools/common.
TOOLS_COMMON := $(patsubst %.c,$(OBJ)/%.o,$(wildcard tools/common/*.c))
$(O)/sluice-source: $(patsubst %.c,$(OBJ)/%.o,$(wildcard tools/source/*.c)) $(TOOLS_COMMON) $(LIBS)
	$(call link)
$(O)/sluice-sink: $(patsubst %.c,$(OBJ)/%.o,$(wildcard tools/sink/*.c)) $(TOOLS_COMMON) $(LIBS)
	$(call link)

# parser microbenchmark (bench/bench_proto.c), run by `make bench`.
$(O)/bench/bench_proto: $(OBJ)/bench/bench_proto.o $(LIBS)
	@mkdir -p $(@D)
	$(call link)

# zone table benchmark (bench/bench_route.c): load, RSS, lookups/s; run by `make bench`.
$(O)/bench/bench_route: $(OBJ)/bench/bench_route.o $(OBJ)/bench/bench_samples.o $(LIBS)
	@mkdir -p $(@D)
	$(call link)

# AES-GCM, core/aesgcm against wolfSSL (bench/bench_aesgcm.c); run by `make bench`.
$(O)/bench/bench_aesgcm: $(OBJ)/bench/bench_aesgcm.o $(LIBS)
	@mkdir -p $(@D)
	$(call link)

# dependent-read latency by region size (bench/bench_memlat.c): context for bench_route.
$(O)/bench/bench_memlat: $(OBJ)/bench/bench_memlat.o
	@mkdir -p $(@D)
	$(call link)

BINS	:= $(O)/sluice $(O)/sluice-source $(O)/sluice-sink
all: $(BINS)
.DEFAULT_GOAL := all

# Unit tests: Criterion, one binary; tests see every module through the libs.
UNIT_SRC := $(wildcard tests/unit/*/*.c) $(wildcard tests/support/*.c)
# tools/common is linked too, so its scanners and parsers are unit-tested
# (TOOLS_COMMON is defined above, with the tools: prerequisites expand at read time).
$(O)/tests/unit: $(UNIT_SRC:%.c=$(OBJ)/%.o) $(TOOLS_COMMON) $(LIBS)
	@mkdir -p $(@D)
	$(call link,-lcriterion)

deps:
	@tools/install-deps.sh

# wolfSSL with assembly, into WOLFSSL_PREFIX; a no-op when already built.
wolfssl: deps
	@tools/build-wolfssl.sh $(WOLFSSL_PREFIX)

unit: $(O)/tests/unit
	$(O)/tests/unit --jobs=$$(nproc)

# Fuzzing (STYLE.md "Test habits"): one target per parser, tests/fuzz/fuzz_<t>.c,
# with its seed corpus tests/fuzz/corpus/<t>/ and dictionary tests/fuzz/dict/<t>.dict.
# The replay binaries link a target with tools/fuzz-replay.c (SQLite fuzzcheck)
# instead of libFuzzer, so `make test` replays every corpus with gcc alone.
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
REPLAYS	:= $(FUZZ_TARGETS:%=$(O)/replay_%)
$(REPLAYS): $(O)/replay_%: $(OBJ)/tests/fuzz/fuzz_%.o $(OBJ)/tools/fuzz-replay.o $(LIBS)
	$(call link)

fuzz-replay: $(REPLAYS)
	@set -e; for t in $(FUZZ_TARGETS); do \
		printf '  REPLAY  %-12s ' $$t; $(O)/replay_$$t tests/fuzz/corpus/$$t; \
	done

# libFuzzer binaries, always in build/fuzz/ (BUILD=fuzz re-entry, clang).
FUZZ_BINS := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
ifeq ($(BUILD),fuzz)
# parsers only: proto, and core for check_fail (libproto.a first: link order)
$(FUZZ_BINS): build/fuzz/fuzz_%: $(OBJ)/tests/fuzz/fuzz_%.o $(O)/libproto.a $(O)/libcore.a
	@$(if $(Q),printf '  LD      %s\n' $@)
	$(Q)$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS)
endif

fuzz:
	$(MAKE) --no-print-directory BUILD=fuzz $(FUZZ_BINS)

# New inputs land in build/fuzz/corpus/<t> (the first directory); the committed
# corpus is only read. fuzz-merge is the one target that writes into tests/:
# it keeps every committed file and adds those that reach new edges (counters
# off, so the committed corpus stays small: well under 200 files a target).
FUZZ_T_CHECK = @case " $(FUZZ_TARGETS) " in *" $(T) "*) ;; \
	*) echo "usage: make $@ T=<target> (one of: $(FUZZ_TARGETS))" >&2; exit 2;; esac
fuzz-run: fuzz
	$(FUZZ_T_CHECK)
	@mkdir -p build/fuzz/corpus/$(T)
	build/fuzz/fuzz_$(T) -max_total_time=$(or $(SECS),60) -dict=tests/fuzz/dict/$(T).dict \
		-artifact_prefix=build/fuzz/ $(FUZZ_ARGS) build/fuzz/corpus/$(T) tests/fuzz/corpus/$(T)

fuzz-merge: fuzz
	$(FUZZ_T_CHECK)
	@mkdir -p build/fuzz/corpus/$(T)
	build/fuzz/fuzz_$(T) -merge=1 -use_counters=0 $(FUZZ_ARGS) tests/fuzz/corpus/$(T) \
		build/fuzz/corpus/$(T)

e2e: $(BINS)
	tests/e2e/run.sh $(O)

# `make test` and `make run` are what a newcomer types on a fresh machine:
# they install what is missing first, then re-enter make to build.
test: deps
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory fuzz-replay
	$(MAKE) --no-print-directory e2e

run: deps
	$(MAKE) --no-print-directory all
	tools/run.sh $(O)

bench: deps
	@$(if $(WOLFSSL_PC),,echo "bench: Debian's wolfSSL, no assembly: TLS rows will be slow (make wolfssl)" >&2)
	$(MAKE) --no-print-directory BUILD=release all build/bench/bench_proto build/bench/bench_route \
		build/bench/bench_memlat build/bench/bench_aesgcm
	bench/run.sh build

check-headers:
	@tools/check-headers.sh "$(CC)" "$(CPPFLAGS) $(CSTD) $(WARN)"
check-layers:
	@tools/check-layers.sh
check: check-headers check-layers
	@clang-format --dry-run --Werror $$(git ls-files '*.[ch]')
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory fuzz-replay

clean:
	rm -rf build

help:
	@sed -n '1,/^$$/s/^# \{0,1\}//p' Makefile

.PHONY: all deps wolfssl unit fuzz-replay fuzz fuzz-run fuzz-merge e2e test run bench check \
	check-headers check-layers clean help
-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)
