/* gossip.h - leaderless mode's membership: versioned node states spread by
 * gossip, and a phi-accrual failure detector.
 *
 * Every node has a state (struct gossip_state): its address, its status in
 * the ring, and a version pair (generation, version). The generation is the
 * node's incarnation (larger after every restart); the version is a
 * heartbeat counter its owner bumps every round and on every change. Of
 * two states for one node the larger pair wins, so states merge in any
 * order and spread epidemically: each round a node sends every state it
 * knows to one peer, chosen at random, which merges them and answers with
 * its own if it knows something newer (push-pull; Cassandra's and
 * Scuttlebutt's scheme, with whole states since clusters here are small).
 *
 * Failure detection is phi accrual (Hayashibara et al. 2004, as Cassandra
 * does it): every time a node's heartbeat version rises, that is an
 * arrival; phi is how unlikely the silence since the last arrival is,
 * given the mean interval of the recent ones (exponential distribution:
 * phi = elapsed / mean * log10(e)). A node is alive while phi is below
 * the threshold (8, as Cassandra's phi_convict_threshold).
 *
 * Pure: time and randomness are arguments.
 */
#ifndef TRIAD_GOSSIP_H
#define TRIAD_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"

#define GOSSIP_NODES_MAX 64
#define GOSSIP_HOST_MAX 255
#define PHI_WINDOW 1000 /* arrivals remembered */

/* ---- phi accrual ---- */

struct phi {
    uint64_t last_ms;       /* the last arrival (0: none yet) */
    uint64_t intervals_ms[PHI_WINDOW];
    uint32_t n, next;       /* intervals held; where the next goes */
    uint64_t sum_ms;        /* of the intervals held */
    uint64_t bootstrap_ms;  /* the mean assumed before any interval */
};

void phi_init(struct phi *p, uint64_t bootstrap_interval_ms);
void phi_arrival(struct phi *p, uint64_t now_ms);
/* 0 before the first arrival (nothing to suspect yet). */
double phi_value(const struct phi *p, uint64_t now_ms);

/* ---- gossip ---- */

enum gossip_status {
    GOSSIP_JOINING = 1, /* streaming the ranges it will own; owns none yet */
    GOSSIP_NORMAL = 2,  /* owns its tokens */
    GOSSIP_LEAVING = 3, /* still owns them, handing its data off */
    GOSSIP_LEFT = 4,    /* gone: owns nothing */
};

struct gossip_state {
    uint32_t id;          /* >= 1 */
    uint64_t generation;
    uint64_t version;
    uint8_t status;       /* enum gossip_status */
    uint16_t peer_port, client_port;
    char host[GOSSIP_HOST_MAX + 1]; /* NUL-terminated, triad_host_ok */
};

struct gossip_config {
    uint64_t interval_ms;  /* a round every this often (default 1000) */
    double phi_convict;    /* alive while phi < this (default 8) */
};

void gossip_config_default(struct gossip_config *c);

struct gossip;

/* self: this node's state (its version is where counting starts). */
struct gossip *gossip_new(const struct gossip_state *self, const struct gossip_config *cfg,
                          uint64_t now_ms);
void gossip_free(struct gossip *g);

/* A peer known from configuration: gossiped to even before any state of
 * it has arrived. */
void gossip_add_seed(struct gossip *g, uint32_t id);

/* Time passed. If a round is due, bump our version and return the peer to
 * send our states to (chosen with rnd among the others known, alive or
 * not: a dead one is how we notice it is back); 0 if no round is due or
 * nobody is known. */
uint32_t gossip_tick(struct gossip *g, uint64_t now_ms, uint64_t rnd);
/* When gossip_tick wants to run next. */
uint64_t gossip_next_ms(const struct gossip *g);

/* Every state known, ours included, ascending by id; returns how many. */
size_t gossip_states(const struct gossip *g, struct gossip_state *out, size_t max);
const struct gossip_state *gossip_get(const struct gossip *g, uint32_t id);

/* States arrived from node `from`: keep each that is newer than ours for
 * that node (never our own: a state for us with a larger pair than ours
 * means we restarted without knowing it, and we jump our version past it).
 * Returns true if we hold a state newer than, or missing from, what was
 * sent (the caller answers with gossip_states). TRIAD_ELIMIT-free: states
 * past GOSSIP_NODES_MAX are dropped. */
bool gossip_merge(struct gossip *g, uint32_t from, const struct gossip_state *s, size_t n,
                  uint64_t now_ms);

double gossip_phi(const struct gossip *g, uint32_t id, uint64_t now_ms);
/* Ourselves always; another node while its phi is below the threshold. */
bool gossip_alive(const struct gossip *g, uint32_t id, uint64_t now_ms);

/* Change our status (bumps our version). */
void gossip_set_status(struct gossip *g, enum gossip_status st);

/* Grows whenever a node appears or any status changes: the caller
 * rebuilds its ring when it moves. */
uint64_t gossip_epoch(const struct gossip *g);

/* Wire form of a list of states. decode: TRIAD_EPROTO (errmsg says what)
 * for anything malformed (bad status, host, id 0, truncation, more than
 * max). */
void gossip_encode(const struct gossip_state *s, size_t n, struct tbuf *out);
int gossip_decode(const void *p, size_t len, struct gossip_state *out, size_t max, size_t *n,
                  char *errmsg, size_t errlen);

#endif
