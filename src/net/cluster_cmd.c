/* cluster_cmd.c - the client commands of leader mode (see cluster.h:
 * cluster_command): routing data commands, acknowledgement levels, WAIT,
 * session floors for follower reads, and what Redis tools ask a replicated
 * Redis (ROLE, SENTINEL). docs/operations.md describes them for users.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/defs.h"
#include "../common/num.h"
#include "../node/fsm.h"
#include "cluster_int.h"

#define CLUSTER_TOKEN_PREFIX "v1:"

static bool cmd_is(const char *arg, size_t len, const char *name)
{
    return len == strlen(name) && strncasecmp(arg, name, len) == 0;
}

static void arity_error(struct tbuf *out, const char *name)
{
    tbuf_appendf(out, "-ERR wrong number of arguments for '%s' command\r\n", name);
}

static void bulk(struct tbuf *out, const char *s)
{
    tbuf_appendf(out, "$%zu\r\n%s\r\n", strlen(s), s);
}

static void bulk_u64(struct tbuf *out, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    bulk(out, buf);
}

/* A map of n pairs: RESP3's map, RESP2's flat array. */
static void map_header(struct tbuf *out, int proto, size_t n)
{
    tbuf_appendf(out, proto == 3 ? "%%%zu\r\n" : "*%zu\r\n", proto == 3 ? n : 2 * n);
}

static const char *ack_name(uint8_t ack)
{
    switch (ack) {
    case RAFT_ACK_ONE:
        return "ONE";
    case RAFT_ACK_TWO:
        return "TWO";
    case RAFT_ACK_ALL:
        return "ALL";
    default:
        return "QUORUM";
    }
}

/* The connection has seen the state at index: its floor rises. */
static void cluster_session_saw(struct cluster_session *cs, uint64_t index)
{
    if (index > cs->seen)
        cs->seen = index;
}

/* ---- TRIAD.* ---- */

/* TRIAD.MEMBERS: [id, role, link, peer address] per member. */
static void triad_members_list(struct cluster *cl, struct tbuf *out)
{
    struct raft *r = node_raft(cl->node);
    const struct raft_conf *c = raft_conf(r);
    tbuf_appendf(out, "*%u\r\n", (unsigned)c->n);
    for (uint32_t i = 0; i < c->n; i++) {
        raft_id id = c->members[i].id;
        bool self = id == raft_id_of(r);
        const char *role = self && raft_role(r) == RAFT_LEADER ? "leader"
                           : c->members[i].role == RAFT_VOTER  ? "voter"
                                                               : "learner";
        bool up = self || peer_net_connected(cl->pn, id);
        const char *host;
        int port;
        char addr[FSM_MEMBER_HOST_MAX + 16] = "";
        if (cluster__peer_addr(cl, id, &host, &port))
            snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
        tbuf_appendf(out, "*4\r\n:%u\r\n", (unsigned)id);
        bulk(out, role);
        bulk(out, up ? "connected" : "disconnected");
        bulk(out, addr);
    }
}

/* "host:port" or "[v6]:port" into host and port; false if malformed. */
static bool parse_addr(const char *a, size_t len, char *host, size_t hostcap, uint16_t *port)
{
    size_t colon = len;
    while (colon > 0 && a[colon - 1] != ':')
        colon--;
    if (colon == 0)
        return false;
    uint64_t p;
    if (!triad_parse_u64(a + colon, len - colon, &p) || p == 0 || p > 65535)
        return false;
    size_t hs = 0, he = colon - 1;
    if (he >= 2 && a[0] == '[' && a[he - 1] == ']') {
        hs = 1;
        he--;
    }
    if (he <= hs || he - hs >= hostcap)
        return false;
    for (size_t i = hs; i < he; i++)
        if (a[i] <= ' ' || a[i] > '~')
            return false;
    memcpy(host, a + hs, he - hs);
    host[he - hs] = '\0';
    *port = (uint16_t)p;
    return true;
}

/* TRIAD.MEMBERS [ADD id host:port [LEARNER] | PROMOTE id | REMOVE id] */
static enum cluster_outcome triad_members(struct cluster *cl, uint64_t req_id, int argc,
                                          char **argv, size_t *argvlen, struct tbuf *out)
{
    if (argc == 1) {
        triad_members_list(cl, out);
        return CLUSTER_DONE;
    }
    const char *sub = argv[1];
    size_t sl = argvlen[1];
    bool add = cmd_is(sub, sl, "ADD"), promote = cmd_is(sub, sl, "PROMOTE"),
         remove = cmd_is(sub, sl, "REMOVE");
    bool learner = add && argc == 5 && cmd_is(argv[4], argvlen[4], "LEARNER");
    if (!((add && (argc == 4 || learner)) || ((promote || remove) && argc == 3))) {
        tbuf_appends(out, "-ERR usage: TRIAD.MEMBERS [ADD id host:port [LEARNER] | PROMOTE id | "
                          "REMOVE id]\r\n");
        return CLUSTER_DONE;
    }
    uint64_t id;
    if (!triad_parse_u64(argv[2], argvlen[2], &id) || id == 0 || id > 1000000) {
        tbuf_appends(out, "-ERR a node id is an integer from 1 to 1000000\r\n");
        return CLUSTER_DONE;
    }
    char host[FSM_MEMBER_HOST_MAX + 1] = "";
    uint16_t port = 0;
    if (add && !parse_addr(argv[3], argvlen[3], host, sizeof(host), &port)) {
        tbuf_appends(out, "-ERR the new member's peer address is host:port\r\n");
        return CLUSTER_DONE;
    }
    enum raft_change change = add ? RAFT_ADD_LEARNER : promote ? RAFT_PROMOTE : RAFT_REMOVE;
    cluster__log(cl, LOG_NOTICE, "raft: membership change requested: %s node %u%s%s",
                 add ? "add" : promote ? "promote" : "remove", (unsigned)id, add ? " at " : "",
                 add ? argv[3] : "");
    node_change_member(cl->node, req_id, change, (raft_id)id, host, port, add && !learner);
    cluster__note_role(cl);
    return CLUSTER_PENDING;
}

static void triad_transfer(struct cluster *cl, const char *arg, size_t len, struct tbuf *out)
{
    struct raft *r = node_raft(cl->node);
    uint64_t id;
    if (!triad_parse_u64(arg, len, &id) || id == 0 || id > UINT32_MAX) {
        tbuf_appends(out, "-ERR TRIAD.TRANSFER needs a node id\r\n");
    } else if (raft_role(r) != RAFT_LEADER) {
        tbuf_appendf(out, "-NOTLEADER %u\r\n", (unsigned)raft_leader(r));
    } else if (id == raft_id_of(r)) {
        tbuf_appendf(out, "-ERR node %u already leads\r\n", (unsigned)id);
    } else if (raft_transfer(r, (raft_id)id) != 0) {
        tbuf_appendf(out, "-ERR node %u is not a voter of this cluster\r\n", (unsigned)id);
    } else {
        cluster__log(cl, LOG_NOTICE, "raft: transferring leadership to node %u", (unsigned)id);
        node_tick(cl->node); /* send what the transfer needs now */
        tbuf_appends(out, "+OK\r\n");
    }
}

/* TRIAD.FAULT CUT id [id ...] | TRIAD.FAULT HEAL */
static void triad_fault(struct cluster *cl, int argc, char **argv, size_t *argvlen,
                        struct tbuf *out)
{
    if (!cl->cfg->enable_fault_commands) {
        tbuf_appends(out, "-ERR TRIAD.FAULT is off (enable-fault-commands no)\r\n");
        return;
    }
    uint32_t ids[RAFT_NODES_MAX];
    size_t n = 0;
    bool cut = argc >= 3 && cmd_is(argv[1], argvlen[1], "CUT");
    bool heal = argc == 2 && cmd_is(argv[1], argvlen[1], "HEAL");
    for (int i = 2; cut && i < argc; i++) {
        uint64_t id;
        if (n == RAFT_NODES_MAX || !triad_parse_u64(argv[i], argvlen[i], &id) || id == 0 ||
            id > UINT32_MAX)
            cut = false;
        else
            ids[n++] = (uint32_t)id;
    }
    if (!cut && !heal) {
        tbuf_appends(out, "-ERR usage: TRIAD.FAULT CUT id [id ...] | TRIAD.FAULT HEAL\r\n");
        return;
    }
    cluster_fault_block(cl, ids, heal ? 0 : n);
    tbuf_appends(out, "+OK\r\n");
}

/* TRIAD.CONSISTENCY [W ONE|TWO|QUORUM|ALL] */
static void triad_consistency(struct cluster_session *cs, int argc, char **argv, size_t *argvlen,
                              struct tbuf *out)
{
    if (argc == 1) {
        tbuf_appends(out, "*2\r\n$1\r\nW\r\n");
        bulk(out, ack_name(cs->ack));
        return;
    }
    uint8_t ack = cs->ack;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            tbuf_appends(out, "-ERR syntax error\r\n");
            return;
        }
        if (cmd_is(argv[i], argvlen[i], "R")) {
            tbuf_appends(out, "-ERR leader mode has no read level: reads on the leader are "
                              "linearizable, and READONLY reads this node's own copy\r\n");
            return;
        }
        if (!cmd_is(argv[i], argvlen[i], "W")) {
            tbuf_appends(out, "-ERR syntax error\r\n");
            return;
        }
        const char *v = argv[i + 1];
        size_t vl = argvlen[i + 1];
        if (cmd_is(v, vl, "ONE"))
            ack = RAFT_ACK_ONE;
        else if (cmd_is(v, vl, "TWO"))
            ack = RAFT_ACK_TWO;
        else if (cmd_is(v, vl, "QUORUM"))
            ack = RAFT_ACK_QUORUM;
        else if (cmd_is(v, vl, "ALL"))
            ack = RAFT_ACK_ALL;
        else {
            tbuf_appends(out, "-ERR invalid W level: use ONE, TWO, QUORUM or ALL\r\n");
            return;
        }
    }
    cs->ack = ack == RAFT_ACK_QUORUM ? 0 : ack;
    tbuf_appends(out, "+OK\r\n");
}

static void triad_token(struct cluster_session *cs, struct tbuf *out)
{
    char buf[48];
    snprintf(buf, sizeof(buf), CLUSTER_TOKEN_PREFIX "%" PRIu64, cs->seen);
    bulk(out, buf);
}

static void triad_after(struct cluster_session *cs, const char *tok, size_t len, struct tbuf *out)
{
    size_t pl = strlen(CLUSTER_TOKEN_PREFIX);
    uint64_t index;
    if (len <= pl || memcmp(tok, CLUSTER_TOKEN_PREFIX, pl) != 0 ||
        !triad_parse_u64(tok + pl, len - pl, &index)) {
        tbuf_appends(out, "-ERR invalid token: pass what TRIAD.TOKEN returned\r\n");
        return;
    }
    cluster_session_saw(cs, index);
    tbuf_appends(out, "+OK\r\n");
}

/* ---- what Redis tools ask ---- */

/* ROLE: a master lists its replicas [ip, port, offset]; a replica names
 * its master and its link. Offsets are applied log indexes. */
static void role(struct cluster *cl, struct tbuf *out)
{
    struct raft *r = node_raft(cl->node);
    const struct raft_conf *c = raft_conf(r);
    if (raft_role(r) == RAFT_LEADER) {
        tbuf_appendf(out, "*3\r\n$6\r\nmaster\r\n:%llu\r\n",
                     (unsigned long long)raft_applied_index(r));
        size_t n = 0;
        for (uint32_t i = 0; i < c->n; i++)
            n += c->members[i].id != raft_id_of(r);
        tbuf_appendf(out, "*%zu\r\n", n);
        for (uint32_t i = 0; i < c->n; i++) {
            raft_id id = c->members[i].id;
            if (id == raft_id_of(r))
                continue;
            struct raft_progress p;
            uint64_t match = raft_progress_get(r, id, &p) == 0 ? p.match : 0;
            const struct cluster__addr *a = cluster__addr_of(cl, id);
            tbuf_appends(out, "*3\r\n");
            bulk(out, a ? a->host : "");
            bulk_u64(out, a ? (uint64_t)a->port : 0);
            bulk_u64(out, match);
        }
        return;
    }
    raft_id lid = raft_leader(r);
    const struct cluster__addr *a = lid ? cluster__addr_of(cl, lid) : NULL;
    bool up = lid != 0 && peer_net_connected(cl->pn, lid);
    tbuf_appends(out, "*5\r\n$5\r\nslave\r\n");
    bulk(out, a ? a->host : "");
    tbuf_appendf(out, ":%d\r\n", a ? a->port : 0);
    bulk(out, up ? "connected" : "connect");
    tbuf_appendf(out, ":%llu\r\n", (unsigned long long)raft_applied_index(r));
}

/* One SENTINEL "master" or "replica" state: the fields redis-py and
 * Redis's own clients read. */
static void sentinel_state(struct cluster *cl, raft_id id, bool master, int proto,
                           struct tbuf *out)
{
    struct raft *r = node_raft(cl->node);
    const struct cluster__addr *a = cluster__addr_of(cl, id);
    bool self = id == raft_id_of(r);
    bool up = self || peer_net_connected(cl->pn, id);
    char name[PEER_ANNOUNCE_HOST_MAX + 16], runid[24];
    snprintf(runid, sizeof(runid), "%u", (unsigned)id);
    if (master)
        snprintf(name, sizeof(name), "%s", cl->cfg->cluster_id);
    else
        snprintf(name, sizeof(name), "%s:%d", a ? a->host : "", a ? a->port : 0);
    const struct raft_conf *c = raft_conf(r);
    uint32_t voters = raft_conf_voters(c);
    map_header(out, proto, master ? 10 : 9);
    bulk(out, "name");
    bulk(out, name);
    bulk(out, "ip");
    bulk(out, a ? a->host : "");
    bulk(out, "port");
    bulk_u64(out, a ? (uint64_t)a->port : 0);
    bulk(out, "runid");
    bulk(out, runid);
    bulk(out, "flags");
    bulk(out, master ? (up ? "master" : "master,s_down,disconnected")
                     : (up ? "slave" : "slave,s_down,disconnected"));
    if (master) {
        bulk(out, "num-slaves");
        bulk_u64(out, c->n > 0 ? c->n - 1 : 0);
        bulk(out, "num-other-sentinels");
        bulk_u64(out, c->n > 0 ? c->n - 1 : 0);
        bulk(out, "quorum");
        bulk_u64(out, voters / 2 + 1);
        bulk(out, "config-epoch");
        bulk_u64(out, raft_current_term(r));
        bulk(out, "down-after-milliseconds");
        bulk_u64(out, 300);
    } else {
        struct raft_progress p;
        uint64_t match = raft_progress_get(r, id, &p) == 0 ? p.match : 0;
        const struct cluster__addr *m = cluster__addr_of(cl, raft_leader(r));
        bulk(out, "master-link-status");
        bulk(out, up ? "ok" : "err");
        bulk(out, "master-host");
        bulk(out, m ? m->host : "");
        bulk(out, "master-port");
        bulk_u64(out, m ? (uint64_t)m->port : 0);
        bulk(out, "slave-repl-offset");
        bulk_u64(out, match);
    }
}

/* SENTINEL, answered by any member about the cluster (named by its
 * cluster-id): Sentinel-aware clients find the leader and follow a
 * failover. Only a node that knows the leader names one. */
static void sentinel(struct cluster *cl, int proto, int argc, char **argv, size_t *argvlen,
                     struct tbuf *out)
{
    struct raft *r = node_raft(cl->node);
    raft_id lid = raft_leader(r);
    const char *sub = argv[1];
    size_t sl = argvlen[1];
    bool named = argc >= 3 && argvlen[2] == strlen(cl->cfg->cluster_id) &&
                 memcmp(argv[2], cl->cfg->cluster_id, argvlen[2]) == 0;
    if (cmd_is(sub, sl, "GET-MASTER-ADDR-BY-NAME") && argc == 3) {
        const struct cluster__addr *a = named && lid ? cluster__addr_of(cl, lid) : NULL;
        if (a == NULL) {
            tbuf_appends(out, proto == 3 ? "_\r\n" : "*-1\r\n");
            return;
        }
        tbuf_appends(out, "*2\r\n");
        bulk(out, a->host);
        bulk_u64(out, (uint64_t)a->port);
        return;
    }
    if (cmd_is(sub, sl, "MASTERS") && argc == 2) {
        if (lid == 0 || cluster__addr_of(cl, lid) == NULL) {
            tbuf_appends(out, "*0\r\n");
            return;
        }
        tbuf_appends(out, "*1\r\n");
        sentinel_state(cl, lid, true, proto, out);
        return;
    }
    if (cmd_is(sub, sl, "MASTER") && argc == 3) {
        if (!named || lid == 0 || cluster__addr_of(cl, lid) == NULL) {
            tbuf_appends(out, "-ERR No such master with that name\r\n");
            return;
        }
        sentinel_state(cl, lid, true, proto, out);
        return;
    }
    if ((cmd_is(sub, sl, "REPLICAS") || cmd_is(sub, sl, "SLAVES")) && argc == 3) {
        if (!named) {
            tbuf_appends(out, "-ERR No such master with that name\r\n");
            return;
        }
        const struct raft_conf *c = raft_conf(r);
        size_t n = 0;
        for (uint32_t i = 0; i < c->n; i++)
            n += c->members[i].id != lid && cluster__addr_of(cl, c->members[i].id) != NULL;
        tbuf_appendf(out, "*%zu\r\n", n);
        for (uint32_t i = 0; i < c->n; i++)
            if (c->members[i].id != lid && cluster__addr_of(cl, c->members[i].id) != NULL)
                sentinel_state(cl, c->members[i].id, false, proto, out);
        return;
    }
    if (cmd_is(sub, sl, "SENTINELS") && argc == 3) {
        tbuf_appends(out, named ? "*0\r\n" : "-ERR No such master with that name\r\n");
        return;
    }
    if (cmd_is(sub, sl, "MYID") && argc == 2) {
        bulk_u64(out, raft_id_of(r));
        return;
    }
    tbuf_appendf(out, "-ERR unknown subcommand or wrong number of arguments for '%.*s'. Try SENTINEL HELP.\r\n",
                 (int)TRIAD_MIN(sl, (size_t)64), sub);
}

/* WAIT numreplicas timeout: the connection's writes so far. */
static enum cluster_outcome wait_cmd(struct cluster *cl, struct cluster_session *cs,
                                     uint64_t req_id, char **argv, size_t *argvlen,
                                     struct tbuf *out)
{
    long long replicas, timeout;
    const char *err = cmd_wait_args(argv, argvlen, &replicas, &timeout);
    if (err != NULL) {
        tbuf_appendf(out, "-%s\r\n", err);
        return CLUSTER_DONE;
    }
    uint32_t want = replicas < 0 ? 0 : replicas > UINT32_MAX ? UINT32_MAX : (uint32_t)replicas;
    cluster__wait(cl, req_id, cs->seen, want, (uint64_t)timeout);
    return CLUSTER_PENDING;
}

/* ---- transactions ---- */

#define CLUSTER_WATCHED_MAX (1u << 20) /* keys one connection may watch, as cmd's */

void cluster_session_unwatch(struct cluster_session *cs)
{
    for (uint32_t i = 0; i < cs->n_watch; i++)
        free(cs->watch[i].key);
    cs->n_watch = 0;
    cs->watch_pending = 0;
}

void cluster_session_free(struct cluster_session *cs)
{
    cluster_session_unwatch(cs);
    free(cs->watch);
    memset(cs, 0, sizeof(*cs));
}

/* WATCH's read answered "*n" and n integers: the digests of the keys it
 * added. false: anything else (an error, passed on as it is). */
static bool watch_digests(struct cluster_session *cs, const char *p, size_t len)
{
    const char *end = p + len;
    uint64_t n;
    const char *q = p + 1;
    if (len < 4 || p[0] != '*')
        return false;
    const char *nl = memchr(q, '\r', (size_t)(end - q));
    if (nl == NULL || !triad_parse_u64(q, (size_t)(nl - q), &n) || n != cs->watch_pending)
        return false;
    q = nl + 2;
    for (uint32_t i = cs->n_watch - cs->watch_pending; i < cs->n_watch; i++) {
        int64_t v;
        if (q >= end || *q != ':')
            return false;
        nl = memchr(q, '\r', (size_t)(end - q));
        if (nl == NULL || !triad_parse_i64(q + 1, (size_t)(nl - q - 1), &v))
            return false;
        cs->watch[i].digest = (uint64_t)v;
        q = nl + 2;
    }
    return q == end;
}

void cluster_session_answer(struct cluster_session *cs, const char *resp, size_t len,
                            uint64_t index, struct tbuf *out)
{
    cluster_session_saw(cs, index);
    if (cs->watch_pending == 0) {
        tbuf_append(out, resp, len);
        return;
    }
    if (watch_digests(cs, resp, len)) {
        tbuf_appends(out, "+OK\r\n");
    } else {
        /* not watched after all: WATCH answers the error */
        for (uint32_t i = cs->n_watch - cs->watch_pending; i < cs->n_watch; i++)
            free(cs->watch[i].key);
        cs->n_watch -= cs->watch_pending;
        tbuf_append(out, resp, len);
    }
    cs->watch_pending = 0;
}

/* WATCH key [key ...]: read each key's digest on the leader (TRIAD.DIGEST). */
static enum cluster_outcome watch_cmd(struct cluster *cl, struct cluster_session *cs,
                                      struct cmd_client *cc, uint64_t req_id, int argc,
                                      char **argv, size_t *argvlen)
{
    if (cs->n_watch + (uint32_t)(argc - 1) > CLUSTER_WATCHED_MAX) {
        tbuf_appends(cc->out, "-ERR too many watched keys\r\n");
        return CLUSTER_DONE;
    }
    for (int i = 1; i < argc; i++) {
        if (cs->n_watch == cs->cap_watch) {
            cs->cap_watch = cs->cap_watch ? cs->cap_watch * 2 : 8;
            cs->watch = realloc(cs->watch, cs->cap_watch * sizeof(*cs->watch));
            TRIAD_ASSERT(cs->watch != NULL);
        }
        struct cluster_watch *w = &cs->watch[cs->n_watch++];
        w->db = cc->db;
        w->digest = 0;
        w->len = argvlen[i];
        w->key = malloc(argvlen[i] ? argvlen[i] : 1);
        TRIAD_ASSERT(w->key != NULL);
        memcpy(w->key, argv[i], argvlen[i]);
    }
    cs->watch_pending = (uint32_t)(argc - 1);
    char digest[] = "TRIAD.DIGEST";
    char *saved = argv[0];
    size_t saved_len = argvlen[0];
    argv[0] = digest;
    argvlen[0] = sizeof(digest) - 1;
    struct node_req rq = {.id = req_id, .db = cc->db, .proto = cc->proto, .after = cs->seen,
                          .argc = argc, .argv = argv, .argvlen = argvlen};
    cluster__submit(cl, &rq, false); /* linearizable, on the leader */
    argv[0] = saved;
    argvlen[0] = saved_len;
    return CLUSTER_PENDING;
}

/* EXEC of what cc queued since MULTI: one TRIAD.TXN entry (fsm.h) with
 * the WATCHed keys' digests, applied atomically on every replica. */
static enum cluster_outcome exec_cmd(struct cluster *cl, struct cluster_session *cs,
                                     struct cmd_client *cc, uint64_t req_id)
{
    for (int i = 0; i < cc->queue_len; i++) {
        const struct cmd_queued *q = &cc->queue[i];
        if (!fsm_txn_allowed(q->argv[0], q->argvlen[0])) {
            tbuf_appendf(cc->out,
                         "-EXECABORT Transaction discarded: '%.*s' cannot run in a leader-mode "
                         "transaction\r\n",
                         (int)TRIAD_MIN(q->argvlen[0], (size_t)64), q->argv[0]);
            return CLUSTER_DONE;
        }
    }
    size_t argc = 2 + 3 * (size_t)cs->n_watch;
    for (int i = 0; i < cc->queue_len; i++)
        argc += 1 + (size_t)cc->queue[i].argc;
    if (argc > FSM_COMMAND_ARGC_MAX) {
        tbuf_appends(cc->out, "-EXECABORT Transaction discarded: too many commands and "
                              "arguments for one log entry\r\n");
        return CLUSTER_DONE;
    }
    char **av = malloc(argc * sizeof(*av));
    size_t *al = malloc(argc * sizeof(*al));
    /* the numbers, written side by side: at most 21 bytes each */
    char *nums = malloc((2 * (size_t)cs->n_watch + (size_t)cc->queue_len + 1) * 21);
    TRIAD_ASSERT(av != NULL && al != NULL && nums != NULL);
    char *np = nums;
    size_t k = 0;
#define TXN_NUM(v)                                                                             do {                                                                                           int len_ = snprintf(np, 21, "%llu", (unsigned long long)(v));                              av[k] = np;                                                                                al[k++] = (size_t)len_;                                                                    np += len_ + 1;                                                                        } while (0)
    char txn[] = "TRIAD.TXN";
    av[k] = txn;
    al[k++] = sizeof(txn) - 1;
    TXN_NUM(cs->n_watch);
    for (uint32_t i = 0; i < cs->n_watch; i++) {
        TXN_NUM(cs->watch[i].db);
        av[k] = cs->watch[i].key;
        al[k++] = cs->watch[i].len;
        TXN_NUM(cs->watch[i].digest);
    }
    for (int i = 0; i < cc->queue_len; i++) {
        const struct cmd_queued *q = &cc->queue[i];
        TXN_NUM(q->argc);
        for (int j = 0; j < q->argc; j++) {
            av[k] = q->argv[j];
            al[k++] = q->argvlen[j];
        }
    }
#undef TXN_NUM
    TRIAD_ASSERT(k == argc);
    struct node_req rq = {.id = req_id, .db = cc->db, .proto = cc->proto, .ack = cs->ack,
                          .after = cs->seen, .argc = (int)argc, .argv = av, .argvlen = al};
    cluster__submit(cl, &rq, false); /* copied into the log entry or the frame */
    free(av);
    free(al);
    free(nums);
    cluster_session_unwatch(cs);
    return CLUSTER_PENDING;
}

/* A data command (or TRIAD.EXEC's inner write) into the log or a read. */
static enum cluster_outcome data_cmd(struct cluster *cl, struct cluster_session *cs,
                                     const struct cmd_spec *spec, uint64_t req_id,
                                     uint64_t client_id, uint64_t seq, int db, int proto,
                                     int argc, char **argv, size_t *argvlen)
{
    struct node_req rq = {.id = req_id, .client_id = client_id, .seq = seq, .db = db,
                          .proto = proto, .ack = cs->ack, .after = cs->seen, .argc = argc,
                          .argv = argv, .argvlen = argvlen};
    if (cs->readonly && !(spec->flags & CMD_WRITE))
        cluster__read_local(cl, &rq);
    else
        cluster__submit(cl, &rq, true);
    return CLUSTER_PENDING;
}

enum cluster_outcome cluster_command(struct cluster *cl, struct cluster_session *cs,
                                     struct cmd_client *cc, uint64_t req_id, int argc,
                                     char **argv, size_t *argvlen)
{
    const char *name = argv[0];
    size_t nl = argvlen[0];
    int db = cc->db, proto = cc->proto;
    struct tbuf *out = cc->out;
    if (cc->flags & CMD_CLIENT_MULTI) {
        /* queued by cmd_exec, until EXEC (unless a command failed to
         * queue: then cmd_exec's EXEC answers EXECABORT) */
        if (cmd_is(name, nl, "EXEC") && argc == 1 && !(cc->flags & CMD_CLIENT_DIRTY_EXEC))
            return exec_cmd(cl, cs, cc, req_id);
        if (cmd_is(name, nl, "EXEC") || cmd_is(name, nl, "DISCARD"))
            cluster_session_unwatch(cs);
        return CLUSTER_LOCAL;
    }
    if (cmd_is(name, nl, "EXEC") && argc != 1) {
        /* refused by cmd_exec, which discards the transaction and with it
         * the WATCHes, as Redis does: here they are the session's */
        cluster_session_unwatch(cs);
        return CLUSTER_LOCAL;
    }
    if (cmd_is(name, nl, "WATCH") && argc >= 2)
        return watch_cmd(cl, cs, cc, req_id, argc, argv, argvlen);
    if (cmd_is(name, nl, "UNWATCH") && argc == 1) {
        cluster_session_unwatch(cs);
        tbuf_appends(out, "+OK\r\n");
        return CLUSTER_DONE;
    }
    if (nl > 6 && strncasecmp(name, "TRIAD.", 6) == 0) {
        if (cmd_is(name, nl, "TRIAD.MEMBERS")) {
            return triad_members(cl, req_id, argc, argv, argvlen, out);
        } else if (cmd_is(name, nl, "TRIAD.TRANSFER")) {
            if (argc != 2)
                arity_error(out, "triad.transfer");
            else
                triad_transfer(cl, argv[1], argvlen[1], out);
        } else if (cmd_is(name, nl, "TRIAD.FAULT")) {
            triad_fault(cl, argc, argv, argvlen, out);
        } else if (cmd_is(name, nl, "TRIAD.CONSISTENCY")) {
            triad_consistency(cs, argc, argv, argvlen, out);
        } else if (cmd_is(name, nl, "TRIAD.TOKEN")) {
            if (argc != 1)
                arity_error(out, "triad.token");
            else
                triad_token(cs, out);
        } else if (cmd_is(name, nl, "TRIAD.AFTER")) {
            if (argc != 2)
                arity_error(out, "triad.after");
            else
                triad_after(cs, argv[1], argvlen[1], out);
        } else if (cmd_is(name, nl, "TRIAD.EXEC")) {
            /* TRIAD.EXEC client-id seq command [arg ...]: the write applies
             * once however often it is sent (docs/operations.md) */
            uint64_t client_id, seq;
            if (argc < 4) {
                arity_error(out, "triad.exec");
                return CLUSTER_DONE;
            }
            if (!triad_parse_u64(argv[1], argvlen[1], &client_id) ||
                !triad_parse_u64(argv[2], argvlen[2], &seq) || client_id == 0 || seq == 0) {
                tbuf_appends(out, "-ERR TRIAD.EXEC needs a client id and a sequence number, both positive integers\r\n");
                return CLUSTER_DONE;
            }
            const struct cmd_spec *inner = cmd_lookup(argv[3], argvlen[3]);
            int n = argc - 3;
            if (inner == NULL || !cluster_handles(inner) || !(inner->flags & CMD_WRITE) ||
                !(inner->arity > 0 ? n == inner->arity : n >= -inner->arity)) {
                tbuf_appendf(out, "-ERR TRIAD.EXEC runs one write command with its arguments, not '%.*s'\r\n",
                             (int)TRIAD_MIN(argvlen[3], (size_t)64), argv[3]);
                return CLUSTER_DONE;
            }
            return data_cmd(cl, cs, inner, req_id, client_id, seq, db, proto, n, argv + 3,
                            argvlen + 3);
        } else {
            return CLUSTER_LOCAL; /* unknown: cmd_exec's error */
        }
        return CLUSTER_DONE;
    }
    if (cmd_is(name, nl, "READONLY") || cmd_is(name, nl, "READWRITE")) {
        if (argc != 1) {
            arity_error(out, cmd_is(name, nl, "READONLY") ? "readonly" : "readwrite");
            return CLUSTER_DONE;
        }
        cs->readonly = cmd_is(name, nl, "READONLY");
        tbuf_appends(out, "+OK\r\n");
        return CLUSTER_DONE;
    }
    if (cmd_is(name, nl, "WAIT")) {
        if (argc != 3) {
            arity_error(out, "wait");
            return CLUSTER_DONE;
        }
        return wait_cmd(cl, cs, req_id, argv, argvlen, out);
    }
    if (cmd_is(name, nl, "ROLE")) {
        if (argc != 1)
            arity_error(out, "role");
        else
            role(cl, out);
        return CLUSTER_DONE;
    }
    if (cmd_is(name, nl, "SENTINEL")) {
        if (argc < 2)
            arity_error(out, "sentinel");
        else
            sentinel(cl, proto, argc, argv, argvlen, out);
        return CLUSTER_DONE;
    }
    const struct cmd_spec *spec = cmd_lookup(name, nl);
    if (spec == NULL)
        return CLUSTER_LOCAL;
    if (!cluster_handles(spec))
        return CLUSTER_LOCAL;
    if (!(spec->arity > 0 ? argc == spec->arity : argc >= -spec->arity))
        return CLUSTER_LOCAL; /* cmd_exec answers with Redis's error */
    return data_cmd(cl, cs, spec, req_id, 0, 0, db, proto, argc, argv, argvlen);
}
