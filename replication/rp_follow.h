/*
 * rp_follow -- the follower's pure step (no I/O; unit-tested with synthetic
 * fetch answers): which record batches of a leader's Fetch answer a follower
 * appends, given the offset its own log ends at.
 *
 * A Fetch answer holds whole batches and maybe a cut last one (the leader
 * stops at max_bytes). Batches that end below `leo` are already here
 * (a repeated answer) and are skipped; the others are appended in order with
 * their own offsets (the caller appends with ST_APPEND_KEEP_OFFSETS). A batch
 * may start above the offset the previous one ended at: a compacted leader
 * has dropped the records between, and the follower's copy has the same
 * gap. A batch that straddles the follower's log end (starts below it, ends
 * at or above it) means the logs diverged: the walk stops there.
 */
#ifndef RP_FOLLOW_H
#define RP_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

/* Called for each batch to append: its bytes, first offset and leader epoch
 * (partitionLeaderEpoch). Returns 0, or an error that stops the walk. */
typedef int (*rp_follow_batch_fn)(void *arg, const uint8_t *batch, size_t len, int64_t base,
                                  int32_t leader_epoch);

/*
 * Walks d[0..n) from a follower whose log ends at leo. *next = the log end
 * after the appended batches. Returns 0 (a cut trailing batch is fine),
 * SC_ERR_OFFSET_OUT_OF_RANGE (divergence at *next; nothing after it
 * was handed to fn), SC_ERR_CORRUPT_MESSAGE (a batch header that cannot be),
 * or fn's error.
 */
int rp_follow_walk(const uint8_t *d, size_t n, int64_t leo, rp_follow_batch_fn fn, void *arg,
                   int64_t *next);

#endif
