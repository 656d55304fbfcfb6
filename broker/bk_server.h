/*
 * bk_server -- the single-node Kafka broker: listeners, shards, connections.
 *
 * Threads (design.md §3): the data path runs on shards, one thread each, each
 * owning a libuv loop. A connection lives on exactly one shard for its whole
 * life and all of its state (read buffer, response queue, timers) is touched
 * only by that shard's thread. Today one shard runs, on the thread that calls
 * bk_server_run; it also owns the listeners, the topic registry and the
 * SIGTERM/SIGINT handlers. num.shards > 1 is accepted and logged, not yet
 * honoured (see bk_int.h for how accept will hand sockets to other shards).
 */
#ifndef BK_SERVER_H
#define BK_SERVER_H

#include "bk_config.h"
#include "sc_buf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct bk_server bk_server_t;

/* Creates the server: reads/creates <log.dirs[0]>/meta.properties (cluster
 * id), opens the metadata store <log.dirs[0]>/__cluster_metadata.bin (a
 * corrupt store or a cluster id that disagrees with meta.properties stops
 * it: SC_ERR_BAD_FORMAT / SC_ERR_BAD_CONFIG, logged), binds every listener. cfg is borrowed and must outlive the server.
 * 0, -errno (bind/listen failure, logged with the address), SC_ERR_BAD_CONFIG
 * or SC_ERR_NO_MEMORY; *out is written only on success. */
int bk_server_new(const bk_config_t *cfg, bk_server_t **out);

/* Runs shard 0 on the calling thread until SIGTERM/SIGINT or bk_server_stop;
 * then closes listeners and connections and returns 0 once every handle is
 * closed. */
int bk_server_run(bk_server_t *s);

/* Asks the server to stop. Thread-safe (uv_async_send). */
void bk_server_stop(bk_server_t *s);

/* For tests and fuzz targets: a server with its configuration, cluster id
 * and metadata store (log.dirs[0]) but no loop, listeners, signals or
 * sockets. Errors as bk_server_new. Free with bk_server_free. */
int bk_server_new_offline(const bk_config_t *cfg, bk_server_t **out);

/* The request decoder without a socket: runs one frame body (the bytes after
 * the int32 size prefix: header + request) through exactly the dispatcher a
 * connection uses -- version checks, header decode, the handler -- and
 * appends the complete response (int32 size, header, body) to out. Returns 0,
 * or non-zero where a connection would be closed (unsupported API/version,
 * malformed request; out may then hold a partial response: discard it).
 * Handlers run for real: admin requests change srv's metadata store. Call
 * on the thread that owns srv (a server from bk_server_new_offline, or shard
 * 0 of one that is not running). The fuzz target for the request decoder
 * calls this. */
int bk_dispatch_frame_for_test(bk_server_t *srv, const uint8_t *body, size_t len, sc_buf_t *out);

/* Frees a server that is not running. NULL is a no-op. */
void bk_server_free(bk_server_t *s);

#endif
