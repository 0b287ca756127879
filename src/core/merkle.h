/* merkle.h - a Merkle tree over one range of the ring, for anti-entropy.
 *
 * The range (lo, hi] of the 64-bit hash space (wrapping; lo == hi is the
 * whole ring) is cut into 2^depth leaves of equal width by key hash. An
 * item is a key with a hash of its current object; a leaf's hash is the
 * sum (mod 2^64) of its items' hashes mixed through xxhash, so an item is
 * added, changed or removed in O(1) without rescanning the leaf, and an
 * inner node's hash is the xxhash of its two children, recomputed lazily
 * (only dirty paths) when asked for. Two replicas that hold the same items
 * in a range have equal trees; comparing top-down finds the leaves that
 * differ while sending a small fraction of the data.
 *
 * Pure. Node numbering: level 0 is the root, level L has 2^L nodes, index
 * 0 leftmost (lowest hashes); leaves are level `depth`.
 */
#ifndef TRIAD_MERKLE_H
#define TRIAD_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_DEPTH_MAX 16

struct merkle;

struct merkle *merkle_new(uint64_t lo, uint64_t hi, unsigned depth); /* depth 0..MERKLE_DEPTH_MAX */
void merkle_free(struct merkle *m);
unsigned merkle_depth(const struct merkle *m);
/* The leaf a key hash falls in; h must be in (lo, hi]. */
uint32_t merkle_leaf_of(const struct merkle *m, uint64_t key_hash);
/* The key-hash bounds (lo, hi] of a node (level, index). */
void merkle_node_bounds(const struct merkle *m, unsigned level, uint32_t index, uint64_t *lo,
                        uint64_t *hi);

/* An item (key_hash, item_hash) enters or leaves the tree. A change is a
 * remove of the old item hash then an add of the new one. */
void merkle_add(struct merkle *m, uint64_t key_hash, uint64_t item_hash);
void merkle_remove(struct merkle *m, uint64_t key_hash, uint64_t item_hash);
/* Forget every item. */
void merkle_clear(struct merkle *m);

/* The hash of node (level, index); an empty subtree hashes to 0. */
uint64_t merkle_node(struct merkle *m, unsigned level, uint32_t index);
uint64_t merkle_root(struct merkle *m);
/* Items in the tree (adds minus removes). */
uint64_t merkle_items(const struct merkle *m);

/* Of the children of the nodes listed (level `level`, indexes idx[0..n)),
 * which differ between this tree and `theirs` (the hashes of the same
 * children on the other side, 2 per listed node, in order)? Writes the
 * differing child indexes (level+1) into out (room for 2n) and returns
 * how many. */
size_t merkle_diff_children(struct merkle *m, unsigned level, const uint32_t *idx, size_t n,
                            const uint64_t *theirs, uint32_t *out);

/* An item hash for (key, object digest): what replicas add for a key. */
uint64_t merkle_item_hash(const void *key, size_t len, uint64_t object_digest);

#endif
