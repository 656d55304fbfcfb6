/*
 * bk_plugin -- the broker side of the plugin host (plugins/host/ph_host.h):
 * builds the host's config from server.properties, and is its sink. Records
 * queued by plugin instance threads reach shard 0 through a uv_async (the
 * shard's cross-thread wake-up); there, on the thread that owns the logs,
 * they are partitioned (Kafka's murmur2 over the key), built into
 * RecordBatch v2 batches and appended with st_log_append_ex like a Produce;
 * each record is reported back (ph_rec_done) when its append is durable per
 * the topic's flush policy. Instance status is written every second to
 * <log.dirs[0]>/.plugins/status.json (read by `strata plugin list|status`).
 *
 * All functions run on shard 0.
 */
#ifndef BK_PLUGIN_H
#define BK_PLUGIN_H

typedef struct bk_server bk_server_t;

/* Loads the plugins configured (nothing when `plugins` is empty) and starts
 * their threads. 0, or SC_ERR_BAD_CONFIG (logged: names the instance and
 * the key, or the library and why it was refused). */
int bk__plugins_start(bk_server_t *s);
/* Server stop: stops every instance (bounded by its stop.timeout.ms), then
 * appends what they queued; closes the handles. Idempotent. */
void bk__plugins_stop(bk_server_t *s);
/* After the loop ran dry: final status + checkpoints, frees. Idempotent. */
void bk__plugins_free(bk_server_t *s);

#endif
