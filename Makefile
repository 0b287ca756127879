# Triad's build: plain make. `make run` and `make test` do all set-up on a
# fresh Debian machine (see README.md).

CC ?= cc
OPT ?= -O2
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -g -Wall -Wextra -Werror -Wno-unused-parameter \
              -fno-strict-aliasing -pthread
LIBS = -luv -lxxhash -ledit -lcrypto -lpthread -lm
BUILD ?= build
SAN ?=
ifeq ($(SAN),1)
  BUILD := build-asan
  OPT := -O1
  CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -DTRIAD_DEBUG
endif
CFLAGS = $(CFLAGS_BASE) $(OPT) $(EXTRA_CFLAGS)

COMMON_SRC = $(wildcard src/common/*.c)
RESP_SRC = src/net/resp.c
KV_SRC = src/store/kv.c
WAL_SRC = src/store/wal.c src/store/fs.c src/store/reaper.c
SNAP_SRC = src/store/snap.c
STORE_SRC = $(KV_SRC) $(WAL_SRC) $(SNAP_SRC) src/store/raftlog.c
CMD_SRC = $(wildcard src/cmd/*.c)
NET_SRC = $(filter-out $(RESP_SRC),$(wildcard src/net/*.c))
CLI_SRC = $(wildcard src/cli/*.c)
CORE_SRC = $(wildcard src/core/*.c)
NODE_SRC = $(wildcard src/node/*.c)
SIM_SRC = $(wildcard sim/*.c)
HEADERS = $(wildcard src/*/*.h) $(wildcard sim/*.h) $(wildcard tests/unit/*.h)
LIB_SRC = $(COMMON_SRC) $(RESP_SRC) $(STORE_SRC) $(CMD_SRC) $(CORE_SRC) $(NODE_SRC) $(SIM_SRC) \
          src/net/config.c src/net/peer_proto.c src/net/peer.c

TRIAD_SRC = src/triad.c $(COMMON_SRC) $(RESP_SRC) $(STORE_SRC) $(CMD_SRC) $(CORE_SRC) $(NODE_SRC) \
            $(SIM_SRC) $(NET_SRC) $(CLI_SRC)
TRIAD_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(TRIAD_SRC))

UNIT_TESTS = resp kv wal snap reaper proc mem cmd cmd_string config idlepoll raft fsm lincheck node sim raftlog peer_proto peer \
             hlc vclock ring merkle gossip dynamo dsim
UNIT_BINS = $(addprefix $(BUILD)/test_,$(UNIT_TESTS))

.PHONY: all deps build run test unit unit-asan integration fuzz bench clean cluster sim sim-bugs
all: $(BUILD)/triad

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/triad: $(TRIAD_OBJ)
	$(CC) $(CFLAGS) -o $@ $(TRIAD_OBJ) $(LIBS)

# Every unit test links the library: every layer but the server and the CLI
# (common, resp, store, cmd, core, node, sim, and net's config, peer codec and
# peer transport).
LIB_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC))
$(BUILD)/libtriad.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

$(BUILD)/test_%: tests/unit/test_%.c $(BUILD)/libtriad.a $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libtriad.a $(LIBS)

clean:
	rm -rf build build-asan build-fuzz

# ---- set-up, tests and tools ----

# Debian packages each target needs; `make deps` installs what is missing.
DEPS_BUILD = gcc make pkg-config libuv1-dev libxxhash-dev libedit-dev libssl-dev
DEPS_TEST = python3 python3-pytest python3-redis redis-tools clang libclang-rt-14-dev
DEPS_BENCH = redis-server redis-tools procps
PYTHON = /usr/bin/python3

define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

deps:
	$(call apt_install,$(DEPS_BUILD))

deps-test: deps
	$(call apt_install,$(DEPS_TEST))

deps-bench: deps
	$(call apt_install,$(DEPS_BENCH))

build: deps
	$(MAKE) $(BUILD)/triad

# Start a local three-node cluster (leader mode) on 127.0.0.1:7379-7381 with
# data in ./data/node1..3; Ctrl-C stops it.
run: build
	$(BUILD)/triad demo --port 7379

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; ./$$t; done

# An LD_PRELOAD shim that lets the durability tests hold fdatasync and unlink back.
build/libsyncgate.so: tests/integration/syncgate.c
	@mkdir -p build
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

integration: $(BUILD)/triad build/libsyncgate.so
	TRIAD_SYNCGATE=$(CURDIR)/build/libsyncgate.so TRIAD_BIN=$(CURDIR)/$(BUILD)/triad $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

FUZZ_TARGETS = resp wal fsm peer lincheck_json vclock gossip dynamo
FUZZ_SECONDS ?= 30
build-fuzz/fuzz_resp: tests/fuzz/fuzz_resp.c $(COMMON_SRC) $(RESP_SRC) $(HEADERS)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -o $@ tests/fuzz/fuzz_resp.c $(COMMON_SRC) $(RESP_SRC)

build-fuzz/fuzz_wal: tests/fuzz/fuzz_wal.c $(COMMON_SRC) $(WAL_SRC) $(HEADERS)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -pthread -o $@ tests/fuzz/fuzz_wal.c $(COMMON_SRC) $(WAL_SRC)

build-fuzz/fuzz_fsm: tests/fuzz/fuzz_fsm.c $(COMMON_SRC) $(KV_SRC) $(CMD_SRC) $(RESP_SRC) src/node/fsm.c $(CORE_SRC) $(HEADERS)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -o $@ tests/fuzz/fuzz_fsm.c $(COMMON_SRC) $(KV_SRC) $(CMD_SRC) $(RESP_SRC) src/node/fsm.c $(CORE_SRC) -lxxhash -lm

build-fuzz/fuzz_lincheck_json: tests/fuzz/fuzz_lincheck_json.c $(COMMON_SRC) sim/lincheck.c $(HEADERS)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -o $@ tests/fuzz/fuzz_lincheck_json.c $(COMMON_SRC) sim/lincheck.c -lxxhash -lm

build-fuzz/fuzz_peer: tests/fuzz/fuzz_peer.c $(COMMON_SRC) src/net/peer_proto.c $(CORE_SRC) $(HEADERS)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -o $@ tests/fuzz/fuzz_peer.c $(COMMON_SRC) src/net/peer_proto.c $(CORE_SRC) -lcrypto -lxxhash -lm

build-fuzz/fuzz_vclock: tests/fuzz/fuzz_vclock.c $(COMMON_SRC) $(CORE_SRC) $(HEADERS)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -o $@ tests/fuzz/fuzz_vclock.c $(COMMON_SRC) $(CORE_SRC) -lxxhash -lm

build-fuzz/fuzz_gossip: tests/fuzz/fuzz_gossip.c $(COMMON_SRC) $(CORE_SRC) $(HEADERS)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -o $@ tests/fuzz/fuzz_gossip.c $(COMMON_SRC) $(CORE_SRC) -lxxhash -lm

build-fuzz/fuzz_dynamo: tests/fuzz/fuzz_dynamo.c $(COMMON_SRC) $(CORE_SRC) $(HEADERS)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -o $@ tests/fuzz/fuzz_dynamo.c $(COMMON_SRC) $(CORE_SRC) -lxxhash -lm

# Each harness runs for FUZZ_SECONDS from its seed corpus (copied, so the
# checked-in corpus stays small).
fuzz: $(addprefix build-fuzz/fuzz_,$(FUZZ_TARGETS))
	@set -e; for t in $(FUZZ_TARGETS); do \
	  rm -rf build-fuzz/corpus_$$t; mkdir -p build-fuzz/corpus_$$t; \
	  cp tests/fuzz/corpus_$$t/* build-fuzz/corpus_$$t/ 2>/dev/null || true; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS)s"; \
	  ./build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 build-fuzz/corpus_$$t 2>build-fuzz/fuzz_$$t.log || { tail -50 build-fuzz/fuzz_$$t.log; exit 1; }; \
	  tail -1 build-fuzz/fuzz_$$t.log; \
	done

# Everything: the plain build's unit and integration tests and 2000 simulator
# seeds, then the same under ASan+UBSan (200 seeds), then each fuzz harness
# for a bounded time.
test: deps-test
	$(MAKE) unit integration sim
	$(MAKE) SAN=1 unit integration
	$(MAKE) SAN=1 sim SEEDS=200 LL_SEEDS=1000
	$(MAKE) fuzz

# The deterministic simulator: SEEDS seeds from SEED (`make sim SEEDS=1000000`
# runs as long as one likes; a failing seed prints the command that replays it).
SEED ?= 1
SEEDS ?= 2000
# leaderless mode's seeds (about 3 ms each)
LL_SEEDS ?= $(SEEDS)
sim: $(BUILD)/triad
	./$(BUILD)/triad sim --seed $(SEED) --seeds $(SEEDS) --quiet
	./$(BUILD)/triad sim --mode leaderless --seeds $(SEED)-$$(($(SEED) + $(LL_SEEDS) - 1)) --quiet

# Each planted bug must be caught by the simulator's checks within 10,000 seeds.
SIM_BUGS = commit-minority vote-twice ack-before-fsync apply-uncommitted lease-without-checkquorum
LL_SIM_BUGS = ack-early causal drop-hint repair-clobber
sim-bugs: $(BUILD)/triad
	@set -e; for b in $(SIM_BUGS); do \
	  ./$(BUILD)/triad sim --seed 1 --seeds 10000 --bug $$b --expect-failure --quiet | tail -1; \
	done; for b in $(LL_SIM_BUGS); do \
	  ./$(BUILD)/triad sim --mode leaderless --seeds 1-2000 --bug $$b --expect-failure --quiet | tail -1; \
	done

bench: deps-bench build
	$(PYTHON) bench/run.py --write

# Leader mode (three nodes) beside a three-node etcd and Redis with two
# replicas and Sentinel; see bench/README.md.
.PHONY: bench-cluster
bench-cluster: deps-bench build
	$(call apt_install,etcd-server redis-sentinel)
	$(PYTHON) bench/cluster.py --write

# Leaderless mode (three nodes, N=3 R=2 W=2) beside leader mode, and an
# anti-entropy repair: see the top of bench/leaderless.py.
.PHONY: bench-leaderless
bench-leaderless: deps-bench build
	$(PYTHON) bench/leaderless.py --write
