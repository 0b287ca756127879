# Triad's build: plain make. `make run` and `make test` do all set-up on a
# fresh Debian machine (see README.md).

CC ?= cc
OPT ?= -O2
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -g -Wall -Wextra -Werror -Wno-unused-parameter \
              -fno-strict-aliasing -pthread
LIBS = -luv -lxxhash -ledit -lpthread -lm
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
WAL_SRC = src/store/wal.c src/store/fs.c
SNAP_SRC = src/store/snap.c
STORE_SRC = $(KV_SRC) $(WAL_SRC) $(SNAP_SRC)
CMD_SRC = $(wildcard src/cmd/*.c)
NET_SRC = $(filter-out $(RESP_SRC),$(wildcard src/net/*.c))
CLI_SRC = $(wildcard src/cli/*.c)
HEADERS = $(wildcard src/*/*.h) tests/unit/test.h

TRIAD_SRC = src/triad.c $(COMMON_SRC) $(RESP_SRC) $(STORE_SRC) $(CMD_SRC) $(NET_SRC) $(CLI_SRC)
TRIAD_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(TRIAD_SRC))

UNIT_TESTS = resp kv wal snap cmd cmd_string
UNIT_BINS = $(addprefix $(BUILD)/test_,$(UNIT_TESTS))

.PHONY: all deps build run test unit unit-asan integration fuzz bench clean cluster
all: $(BUILD)/triad

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/triad: $(TRIAD_OBJ)
	$(CC) $(CFLAGS) -o $@ $(TRIAD_OBJ) $(LIBS)

$(BUILD)/test_resp: tests/unit/test_resp.c $(COMMON_SRC) $(RESP_SRC) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ tests/unit/test_resp.c $(COMMON_SRC) $(RESP_SRC) $(LIBS)

$(BUILD)/test_kv: tests/unit/test_kv.c $(COMMON_SRC) $(KV_SRC) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ tests/unit/test_kv.c $(COMMON_SRC) $(KV_SRC) $(LIBS)

$(BUILD)/test_wal: tests/unit/test_wal.c $(COMMON_SRC) $(WAL_SRC) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ tests/unit/test_wal.c $(COMMON_SRC) $(WAL_SRC) $(LIBS)

$(BUILD)/test_snap: tests/unit/test_snap.c $(COMMON_SRC) $(STORE_SRC) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ tests/unit/test_snap.c $(COMMON_SRC) $(STORE_SRC) $(LIBS)

$(BUILD)/test_cmd: tests/unit/test_cmd.c $(COMMON_SRC) $(KV_SRC) $(RESP_SRC) $(CMD_SRC) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ tests/unit/test_cmd.c $(COMMON_SRC) $(KV_SRC) $(RESP_SRC) $(CMD_SRC) $(LIBS)

clean:
	rm -rf build build-asan build-fuzz

$(BUILD)/test_cmd_string: tests/unit/test_cmd_string.c $(COMMON_SRC) $(KV_SRC) $(RESP_SRC) $(CMD_SRC) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ tests/unit/test_cmd_string.c $(COMMON_SRC) $(KV_SRC) $(RESP_SRC) $(CMD_SRC) $(LIBS)
