# minikora -- one plain Makefile.  `make run` and `make test` are the two entry points;
# both install what is missing first (ci/install.sh), so a fresh Debian 12 machine needs nothing else.
#
# Layout: every src/<module>/*.c except *_test.c and *_fuzz.c goes into build/libminikora.a;
# src/main.c is the binary's entry; each src/<module>/*_test.c is a unit test program.

CC       ?= cc
PYTHON   ?= /usr/bin/python3
BUILD    ?= build
WERROR   ?=
OPT      ?= -O2
CFLAGS   ?=
PKGS     := libuv sqlite3 libzstd liblz4 zlib
DEPFLAGS := -MMD -MP
WARN     := -Wall -Wextra -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes $(if $(WERROR),-Werror)
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) -g $(WARN) -Isrc -Itui $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
LIBS     := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -luv -lsqlite3 -lzstd -llz4 -lz) -lsnappy -lhttp_parser -lexpat -ljansson -ls3 -lncursesw -lcurl -lssl -lcrypto -lm -lpthread
SPEC_DIR ?= ../shared/kafka-protocol/message

LIB_SRCS  := $(filter-out %_test.c %_fuzz.c src/main.c,$(wildcard src/*/*.c) $(wildcard tui/*.c))
TEST_SRCS := $(wildcard src/*/*_test.c)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
TEST_BINS := $(TEST_SRCS:%.c=$(BUILD)/%)

.SECONDARY:

.PHONY: all run test unit asan fuzz integ bench regen clean install deps compat check-compat minikora-asan

all: minikora

deps:
	@ci/install.sh build

minikora: $(BUILD)/libminikora.a $(BUILD)/src/main.o
	$(CC) $(ALL_CFLAGS) -o $@ $(BUILD)/src/main.o $(BUILD)/libminikora.a $(LIBS)

$(BUILD)/libminikora.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/src/%_test: $(BUILD)/src/%_test.o $(BUILD)/libminikora.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

# ---------------------------------------------------------------- the two commands
run: deps
	$(MAKE) minikora
	./minikora serve $(ARGS)

test: 
	@ci/install.sh test
	@tests/run_all.sh

# ---------------------------------------------------------------- test layers
unit: $(TEST_BINS)
	@fail=0; for t in $(TEST_BINS); do echo "unit: $$t"; $$t || fail=1; done; exit $$fail

asan:
	$(MAKE) BUILD=build-asan OPT="-O1" CC=clang CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" unit

# The binary under ASan+UBSan, for running integration tests against it (tests/run_all.sh).
minikora-asan:
	$(MAKE) BUILD=build-asan OPT="-O1" CC=clang CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" build-asan/libminikora.a build-asan/src/main.o
	clang -fsanitize=address,undefined -o build-asan/minikora build-asan/src/main.o build-asan/libminikora.a $(LIBS)

FUZZ_SRCS := $(wildcard src/*/*_fuzz.c)
fuzz:
	$(MAKE) BUILD=build-fuzz OPT="-O1" CC=clang CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer" build-fuzz/libminikora.a
	@mkdir -p build-fuzz/bin
	@for f in $(FUZZ_SRCS); do n=$$(basename $$f .c); \
	  clang -std=c11 -D_GNU_SOURCE -O1 -g -Isrc -fsanitize=fuzzer,address,undefined $$f build-fuzz/libminikora.a $(LIBS) -o build-fuzz/bin/$$n || exit 1; done

integ: minikora
	$(PYTHON) -m pytest -q tests

bench: minikora
	tests/bench/run.sh

# The chaos soak (outside `make test`): a seeded run of at least SOAK_FAULTS mixed faults under
# idempotent acks=all producers and read_committed consumers; every acknowledged record must be
# there exactly once, in order per partition (tests/soak.py; figures in docs/RELIABILITY.md).
# tests/test_soak.py is its short version inside `make test`.
SOAK_FAULTS ?= 100
SOAK_SEED ?= 7
.PHONY: soak
soak: minikora
	$(PYTHON) tests/soak.py --faults $(SOAK_FAULTS) --seed $(SOAK_SEED)

# The packaged helpers' own tests: the pytest plugin (pip-installed into a venv) and the npm
# package with kafkajs, plus the GitHub Action's scripts (part of `make test`).
.PHONY: clients-test
clients-test: minikora
	@clients/test.sh

# docker/Dockerfile built, run and smoke-tested with kcat; says it skips (exit 0) without a Docker engine.
.PHONY: docker-test
docker-test:
	@docker/test.sh

# ---------------------------------------------------------------- the embedding API
# `make lib`: the static library with its public header and a pkg-config file, usable in place:
#   cc prog.c $(PKG_CONFIG_PATH=build pkg-config --cflags --libs minikora)
# `make install-lib PREFIX=/usr/local` copies the three under PREFIX (include/, lib/, lib/pkgconfig/).
# `make embed-test` builds and runs clients/c/embed.c (librdkafka round trip; part of make test).
PREFIX   ?= /usr/local
PC_LIBS  := $(LIBS)
.PHONY: lib install-lib embed-test
lib: $(BUILD)/libminikora.a $(BUILD)/include/minikora.h $(BUILD)/minikora.pc

$(BUILD)/include/minikora.h: src/minikora.h
	@mkdir -p $(dir $@)
	cp $< $@

# minikora.pc for a given prefix (its include/ and lib/ hold the header and the library).
define minikora_pc
prefix=$(1)
includedir=$${prefix}/include
libdir=$(2)

Name: minikora
Description: an in-process Kafka-compatible cluster (embedding API, src/minikora.h)
Version: $(shell sed -n 's/^\#define MINIKORA_VERSION "\(.*\)"/\1/p' src/app/app.h)
Cflags: -I$${includedir}
Libs: $${libdir}/libminikora.a $(PC_LIBS)
endef

$(BUILD)/minikora.pc: Makefile src/app/app.h
	$(file >$@,$(call minikora_pc,$(abspath $(BUILD)),$${prefix}))
	@echo "wrote $@"

install-lib: lib
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 src/minikora.h $(DESTDIR)$(PREFIX)/include/minikora.h
	install -m 644 $(BUILD)/libminikora.a $(DESTDIR)$(PREFIX)/lib/libminikora.a
	$(file >$(BUILD)/minikora-install.pc,$(call minikora_pc,$(PREFIX),$${prefix}/lib))
	install -m 644 $(BUILD)/minikora-install.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/minikora.pc

$(BUILD)/embed-example: clients/c/embed.c lib
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) -o $@ $< $$(PKG_CONFIG_PATH=$(BUILD) pkg-config --cflags --libs minikora) \
	  $$(pkg-config --libs rdkafka 2>/dev/null || echo -lrdkafka)

embed-test: $(BUILD)/embed-example
	timeout 120 $(BUILD)/embed-example

# ---------------------------------------------------------------- generated code
regen:
	$(PYTHON) src/proto/gen/kafka_gen.py $(SPEC_DIR) src/proto

compat: minikora
	./minikora apis --markdown > docs/COMPATIBILITY.md

check-compat: minikora
	@./minikora apis --markdown | diff -u docs/COMPATIBILITY.md - && echo "compat: docs/COMPATIBILITY.md is current"

clean:
	rm -rf build build-asan build-fuzz minikora

-include $(LIB_OBJS:.o=.d) $(TEST_SRCS:%.c=$(BUILD)/%.d) $(BUILD)/src/main.d
