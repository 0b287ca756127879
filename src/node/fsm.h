/* fsm.h - the replicated state machine of leader mode: the command layer
 * (cmd/ over kv/) driven by committed Raft entries, plus the session table
 * of the idempotent receiver.
 *
 * Every replica applies the committed entries in log order to its own
 * struct fsm and must end in byte-identical state, computing identical
 * replies. So everything an entry's outcome depends on is a function of the
 * log alone:
 *
 *   - Time is the logical clock `clock_ms`: the largest now_ms of any entry
 *     applied so far. Expiry (keys and sessions) is decided against it and
 *     never against a local clock.
 *   - Keys whose deadline is <= clock_ms are collected eagerly at every
 *     apply, so between entries the keyspace holds no expired key and a
 *     read's lazy expiry never changes one replica's state but not another's
 *     (DBSIZE, KEYS and snapshots agree). Each key is collected once, so
 *     the work is amortised over the writes that set the deadlines.
 *   - Only data reads and writes run through the log (see "What may run"
 *     below); the cmd_server has no WAL (log_fn NULL: the log is Raft's), no
 *     password and no maxmemory (memory use differs between replicas; the
 *     leader refuses a write under memory pressure before proposing it).
 *
 * Entry payload (the bytes of one Raft entry of type "normal"), little-
 * endian, FSM_COMMAND_BYTES_MAX at most:
 *
 *     [u8 version = 1][u8 proto (2|3)][u64 client_id][u64 seq][u64 now_ms]
 *     [u32 db][u32 argc] then argc times [u32 len][len bytes]
 *
 * client_id 0 means "no session" and then seq is 0; otherwise seq >= 1.
 * now_ms is the proposing leader's Unix time in ms (<= INT64_MAX). argc 0
 * is a clock tick (client_id 0): it only advances the logical clock, so a
 * leader can make deadlines pass in a cluster that receives no writes; its
 * reply is empty. db < FSM_DATABASES.
 *
 * What may run through the log (fsm_apply): commands flagged CMD_WRITE or
 * CMD_READONLY that are none of CMD_ADMIN, CMD_NOMULTI, CMD_DENYMULTI,
 * CMD_NOAUTH, CMD_SUBCOMMANDS - that is, no connection state (MULTI, EXEC,
 * WATCH, SELECT, HELLO, AUTH, CLIENT), no server control (CONFIG, SHUTDOWN,
 * SAVE, INFO, TIME, PING). KEYS, SCAN and RANDOMKEY are refused too: their
 * replies depend on the replica's hash-table layout (and RANDOMKEY on a
 * PRNG), which is not replicated, while a reply in the log is saved in the
 * session table, which is. Unknown commands and arity errors reach cmd_exec
 * and get Redis's usual (deterministic) error replies. A refused command
 * gets an "-ERR TRIAD ..." reply and changes nothing but the session table.
 * fsm_read runs CMD_READONLY commands, KEYS, SCAN and RANDOMKEY included
 * (answered from this replica's layout, as a Redis replica would).
 *
 * Idempotent receiver (Raft dissertation §6.3): a session is client_id ->
 * (last seq answered, its reply, last touch by the logical clock). An entry
 * with seq == last is not executed again and gets the saved reply (touching
 * the session); seq < last gets an "-ERR TRIAD stale request" reply and
 * changes nothing; seq > last executes and saves its reply (returned as
 * saved, in the protocol of the entry that produced it). A session not
 * touched for session_ttl_ms of logical time is gone (at most
 * FSM_SESSION_SWEEP_MAX are freed per apply; one found past its TTL by a
 * lookup is dropped then), and past sessions_max sessions the least
 * recently touched is evicted. A retry after its session is gone executes
 * again: the TTL must exceed any client's retry horizon. session_ttl_ms and
 * sessions_max must be equal on every replica and set before the first
 * apply.
 *
 * Snapshots are canonical: keys sorted, expired keys left out, sessions in
 * touch order, so two replicas in the same state write the same bytes
 * whatever their history or seed.
 *
 * Pure code: no clock, no I/O, no rand().
 */
#ifndef TRIAD_FSM_H
#define TRIAD_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../cmd/cmd.h"
#include "../common/buf.h"

#define FSM_DATABASES CMD_DATABASES_DEFAULT

#define FSM_COMMAND_VERSION 1
#define FSM_COMMAND_HEADER_SIZE 34 /* 1 + 1 + 8 + 8 + 8 + 4 + 4 */
/* As many arguments as one RESP request may carry (RESP_MULTIBULK_MAX). */
#define FSM_COMMAND_ARGC_MAX (1024 * 1024)
/* One entry, header included. Larger writes are refused by the leader
 * before proposing (fsm_encode_command returns TRIAD_ELIMIT): an entry is
 * held in memory by every replica and sent whole to each follower. */
#define FSM_COMMAND_BYTES_MAX (64u * 1024 * 1024)

#define FSM_SESSION_TTL_MS (60ull * 60 * 1000) /* default session_ttl_ms: one hour */
#define FSM_SESSIONS_MAX 100000                /* default sessions_max */
#define FSM_SESSION_SWEEP_MAX 64               /* expired sessions freed per apply */

#define FSM_SNAPSHOT_VERSION 2 /* 2 added the member table; 1 is still read */

/* Members' peer addresses, replicated so that every node can reach a node
 * added at run time (TRIAD.MEMBERS ADD), restarts included. An entry whose
 * command is TRIAD.MEMBER id host port voter|learner (client_id 0: only a
 * leader's membership code proposes it; no client command has that name)
 * sets one; `voter` says the node is to be promoted once it has caught up.
 * Kept sorted by id, in snapshots (version 2) and in the digest. */
#define FSM_MEMBERS_MAX 32
#define FSM_MEMBER_HOST_MAX 255
struct fsm_member {
    uint32_t id;
    uint16_t port;
    bool voter;
    char host[FSM_MEMBER_HOST_MAX + 1];
};

/* One command, as encoded in an entry. For fsm_encode_command the caller
 * fills the public fields (argv borrowed for the call). fsm_decode_command
 * fills them with copies it owns: argv[i] is NUL-terminated (at
 * argv[i][argvlen[i]]) and writable; release with fsm_command_free. */
struct fsm_command {
    int proto;          /* 2 or 3 */
    uint64_t client_id; /* 0: no session */
    uint64_t seq;       /* 0 iff client_id is 0 */
    uint64_t now_ms;    /* the proposer's time, <= INT64_MAX */
    int db;             /* 0 .. FSM_DATABASES-1 */
    int argc;           /* 0 (clock tick) .. FSM_COMMAND_ARGC_MAX */
    char **argv;
    size_t *argvlen;
    /* private: decode's copies */
    char *arena;
};

/* Append the entry payload of cmd to out. 0; TRIAD_EINVAL if a field is out
 * of range (proto, db, client_id/seq pairing, now_ms, a clock tick with a
 * session); TRIAD_ELIMIT if argc or the total size exceeds the limits. On
 * error out is unchanged. */
int fsm_encode_command(const struct fsm_command *cmd, struct tbuf *out);

/* Decode and check every field of an entry payload (data borrowed for the
 * call). 0 with *out filled (owned, see above); TRIAD_ECORRUPT with errmsg
 * set and *out zeroed. */
int fsm_decode_command(const void *data, size_t len, struct fsm_command *out, char *errmsg,
                       size_t errlen);
void fsm_command_free(struct fsm_command *cmd);

struct fsm_session; /* private to fsm.c */

struct fsm_sessions {
    struct fsm_session **buckets; /* by client_id */
    size_t nbuckets;              /* a power of two, or 0 */
    size_t count;
    struct fsm_session *head, *tail; /* by touch: head least recently touched */
};

struct fsm {
    struct cmd_server srv;  /* FSM_DATABASES kvs; log_fn NULL */
    uint64_t seed;          /* the kvs' seed (hash layout only: not state) */
    uint64_t clock_ms;      /* max now_ms over applied entries; never decreases */
    uint64_t applied_index; /* the last Raft index applied (0: none) */
    uint64_t session_ttl_ms; /* FSM_SESSION_TTL_MS unless set; see above */
    size_t sessions_max;     /* FSM_SESSIONS_MAX unless set; >= 1 */
    struct fsm_sessions sessions;
    struct fsm_member members[FSM_MEMBERS_MAX];
    uint32_t n_members;
    uint64_t members_version; /* counts changes to members (local, not state) */
};

/* Transactions (MULTI/EXEC in leader mode): an entry whose command is
 *     TRIAD.TXN nwatch {db key digest}*nwatch {argc arg...}*
 * (client_id 0; no client command has that name) first compares each
 * WATCHed key's fsm_key_digest with the one its client saw at WATCH: any
 * difference answers EXEC's null reply and runs nothing. Otherwise the
 * commands run as one MULTI/EXEC of an internal client in the entry's db
 * and protocol, answered with EXEC's array. A command that cannot run
 * through the log (not a data command, or KEYS/SCAN/RANDOMKEY) answers
 * -EXECABORT and nothing runs.
 * WATCH reads the digests with the internal read TRIAD.DIGEST key... (an
 * array of integers, fsm_read). A digest covers the key's value and
 * deadline (0: no key), so a write that leaves both as they were does not
 * abort the transaction, where Redis would. */
uint64_t fsm_key_digest(struct fsm *f, int db, const char *key, size_t klen);
/* May the command of that name run inside a transaction? */
bool fsm_txn_allowed(const char *name, size_t len);

/* The entry payload recording member id's peer address (see above). */
int fsm_encode_member(uint64_t now_ms, uint32_t id, const char *host, uint16_t port, bool voter,
                      struct tbuf *out);
/* Member id's recorded address, or NULL. */
const struct fsm_member *fsm_member(const struct fsm *f, uint32_t id);
/* A configuration was applied: forget the addresses of every id not in
 * ids (members removed, or addresses whose change never happened). Run by
 * every replica at the configuration entry's index. */
void fsm_members_retain(struct fsm *f, const uint32_t *ids, size_t n);

int fsm_init(struct fsm *f, uint64_t seed);
void fsm_free(struct fsm *f);

/* Apply the committed entry `index` (must be applied_index + 1) whose
 * payload is data (borrowed for the call). The command's RESP reply - or
 * the saved reply of a retry, or an error - is appended to reply. Returns
 * 0, or TRIAD_ECORRUPT if the payload does not decode: then reply holds an
 * "-ERR TRIAD malformed entry" error, nothing but applied_index changed,
 * and every replica does the same. */
int fsm_apply(struct fsm *f, uint64_t index, const void *data, size_t len, struct tbuf *reply);

/* An entry with no payload (Raft's no-op, configuration changes): only
 * applied_index moves (index must be applied_index + 1). */
void fsm_apply_noop(struct fsm *f, uint64_t index);

/* Run a read-only command against the applied state at the logical clock,
 * so that replicas at the same applied index answer alike. argv is
 * borrowed for the call and may be modified in place (cmd upper-cases
 * names). The reply is appended to reply. 0; TRIAD_EINVAL with an -ERR
 * reply if the command is unknown or not CMD_READONLY, or db or proto is
 * out of range. */
int fsm_read(struct fsm *f, int db, int proto, int argc, char **argv, size_t *argvlen,
             struct tbuf *reply);

size_t fsm_session_count(const struct fsm *f);

/* Append a snapshot of the whole state (keys with values and deadlines,
 * sessions with replies and touch times, clock_ms, applied_index) to out:
 *
 *     "TRIADFSM" [u32 version][u64 applied_index][u64 clock_ms][u32 ndb]
 *     ndb times: [u64 nkeys] nkeys times:
 *         [u32 klen][key][u64 vlen][val][i64 expire_ms (KV_NO_EXPIRE: none)]
 *     [u64 nsessions] nsessions times, least recently touched first:
 *         [u64 client_id][u64 last_seq][u64 touch_ms][u64 reply_len][reply]
 *     [u32 crc32c of every byte before it]
 *
 * Keys sort by bytes (memcmp, shorter first on a tie). Returns 0. */
int fsm_snapshot(const struct fsm *f, struct tbuf *out);

/* Replace the whole state with a snapshot's (data borrowed for the call).
 * Everything is checked before anything changes: 0, or TRIAD_ECORRUPT with
 * errmsg set and f exactly as it was. */
int fsm_restore(struct fsm *f, const void *data, size_t len, char *errmsg, size_t errlen);

/* An order-independent hash (XXH3) of the state: live keys with values and
 * deadlines, sessions with their replies and touch times, and clock_ms -
 * not applied_index, so no-op entries do not change it. Equal states give
 * equal digests whatever the replicas' histories or seeds. */
uint64_t fsm_digest(const struct fsm *f);

#endif
