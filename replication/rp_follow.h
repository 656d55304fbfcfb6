/*
 * rp_follow -- the follower's pure step (no I/O; unit-tested with synthetic
 * fetch answers): which record batches of a leader's Fetch answer a follower
 * appends, given the offset its own log ends at.
 *
 * A Fetch answer holds whole batches and maybe a cut last one (the leader
 * stops at max_bytes). Batches that end below `leo` are already here
 * (a repeated answer) and are skipped; the batch starting exactly at `leo`
 * is appended, and the next one must start right after it. A batch that
 * starts above the expected offset (a gap: a compacted leader) or straddles
 * it (the logs diverged) stops the copy: the follower cannot keep the
 * leader's offsets with an append that assigns them from its own log end.
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
 * SC_ERR_OFFSET_OUT_OF_RANGE (gap or divergence at *next; nothing after it
 * was handed to fn), SC_ERR_CORRUPT_MESSAGE (a batch header that cannot be),
 * or fn's error.
 */
int rp_follow_walk(const uint8_t *d, size_t n, int64_t leo, rp_follow_batch_fn fn, void *arg,
                   int64_t *next);

#endif
