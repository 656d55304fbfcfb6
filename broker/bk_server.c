/*
 * bk_server -- server lifecycle: shard 0's loop, listeners, signals, idle
 * sweep, graceful stop. See bk_server.h for threads and bk_int.h for how
 * more shards will be added.
 *
 * Start: meta.properties + topic registry, shard 0's loop and io backend,
 * every log under log.dirs (bk_part.c: recovery, reconcile with the
 * registry), then the listeners.
 *
 * Stop sequence (on shard 0): SIGTERM/SIGINT or bk_server_stop's async ->
 * (cluster mode: controlled shutdown, serving until this broker's leadership
 * has moved, at most 10 s; bk_cluster.c) -> stop listening; every
 * connection stops reading but stays open; parked fetches are answered with
 * what there is; dirty logs are committed and the
 * io drained, so every in-flight produce is answered; each connection closes
 * once its responses are sent (at most BK_STOP_GRACE_MS, then it is cut);
 * the timer, signal, async and storage handles close -> uv_run returns ->
 * every log is closed (sync + checkpoints) -> the io backend is freed.
 */
#include "bk_int.h"
#include "bk_plugin.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"

#include <signal.h>
#include <string.h>
#include <sys/sysinfo.h>

#define SUB "broker"

/* How long a stop waits for connections to take their last responses. */
#define BK_STOP_GRACE_MS 5000

static void on_connection(uv_stream_t *server, int status)
{
    bk_listen_t *l = server->data;
    bk_shard_t *sh = &l->srv->shard0; /* the only shard; see bk_int.h */
    if (status < 0) {
        SC_WARN("net", "accept on %s: %s", l->srv->listeners[l->index].name, uv_strerror(status));
        return;
    }
    bk__conn_accept(sh, server, l->index);
}

static void on_idle_timer(uv_timer_t *t)
{
    bk__shard_idle_sweep(t->data);
}

static void on_stop_timer(uv_timer_t *t)
{
    bk_shard_t *sh = t->data;
    if (sh->nconns)
        SC_WARN(SUB, "stopping: %zu connection(s) still busy after %d ms; closing them", sh->nconns,
                BK_STOP_GRACE_MS);
    for (bk_conn_t *c = sh->conns; c; c = c->next)
        bk__conn_close(c);
}

static void begin_stop(bk_server_t *s)
{
    bk_shard_t *sh = &s->shard0;
    if (sh->stopping)
        return;
    sh->stopping = 1;
    SC_INFO(SUB, "stopping: finishing %zu connection(s)", sh->nconns);
    for (int i = 0; i < s->nlisteners; i++)
        if (s->listen[i].open && !uv_is_closing((uv_handle_t *)&s->listen[i].tcp))
            uv_close((uv_handle_t *)&s->listen[i].tcp, NULL);
    /* plugin instances first (bounded), so their last records are appended and
     * committed below */
    bk__plugins_stop(s);
    /* cluster mode: give up the controller role, stop following changes */
    bk__cluster_stop(s);
    /* parked JoinGroup / SyncGroup answers first, so those connections can finish */
    bk__group_stop(s);
    for (bk_conn_t *c = sh->conns; c; c = c->next)
        bk__conn_finish(c);
    if (sh->storage_handles) {
        bk__shard_storage_stop(sh);
        /* unref'd: it cuts stragglers but does not keep the loop alive */
        uv_timer_start(&sh->stop_timer, on_stop_timer, BK_STOP_GRACE_MS, 0);
        uv_unref((uv_handle_t *)&sh->stop_timer);
    }
    uv_close((uv_handle_t *)&sh->idle_timer, NULL);
    uv_close((uv_handle_t *)&sh->stop_async, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
}

/* Cluster mode: controlled shutdown first, serving meanwhile (begin_stop
 * once leadership has moved); a second request stops at once. */
static void request_stop(bk_server_t *s)
{
    if (s->shard0.stopping || !bk__cluster_shutdown(s, begin_stop))
        begin_stop(s);
}

static void on_signal(uv_signal_t *h, int signum)
{
    SC_INFO(SUB, "received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    request_stop(h->data);
}

static void on_stop_async(uv_async_t *h) { request_stop(h->data); }

static int bind_listener(bk_server_t *s, int i)
{
    bk_listener_t *l = &s->listeners[i];
    bk_listen_t *ls = &s->listen[i];
    struct sockaddr_storage ss;
    const char *host = *l->host ? l->host : "0.0.0.0";
    int rc;
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, l->port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(host, l->port, (struct sockaddr_in *)&ss);
    if (rc) {
        SC_ERROR(SUB, "listener %s://%s:%d: not a numeric address (%s)", l->name, l->host,
                 l->port, uv_strerror(rc));
        return SC_ERR_BAD_CONFIG;
    }
    if ((rc = uv_tcp_init(&s->shard0.loop, &ls->tcp)) != 0)
        return rc;
    ls->srv = s;
    ls->index = i;
    ls->open = 1;
    ls->tcp.data = ls;
    if ((rc = uv_tcp_bind(&ls->tcp, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&ls->tcp, 1024, on_connection)) != 0) {
        SC_ERROR(SUB, "listener %s://%s:%d: %s", l->name, l->host, l->port, uv_strerror(rc));
        return rc;
    }
    /* Report the real port (listeners may say :0 in tests). */
    int len = sizeof ss;
    int port = l->port;
    if (uv_tcp_getsockname(&ls->tcp, (struct sockaddr *)&ss, &len) == 0)
        port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    SC_INFO(SUB, "listening on %s://%s:%d", l->name, host, port);
    return 0;
}

/* After the loop ran dry: closes the unref'd stop timer, then the logs
 * (checkpoints) and the io backend. */
static int finish_storage(bk_server_t *s)
{
    bk_shard_t *sh = &s->shard0;
    if (sh->stop_timer.loop && !uv_is_closing((uv_handle_t *)&sh->stop_timer)) {
        uv_close((uv_handle_t *)&sh->stop_timer, NULL);
        uv_run(&sh->loop, UV_RUN_DEFAULT);
    }
    int rc = bk__storage_close(s);
    bk__shard_storage_fini(sh);
    return rc;
}

/* Closes every handle that was initialised and drains the loop. */
static void close_all(bk_server_t *s)
{
    begin_stop(s);
    uv_run(&s->shard0.loop, UV_RUN_DEFAULT);
    (void)finish_storage(s);
}

/* What every server needs, loop or not: listeners parsed, meta.properties
 * and the metadata store loaded into s->cluster_id / s->topics. dir gets
 * log.dirs[0]. 0 or an error (logged). */
static int server_load(bk_server_t *s, const bk_config_t *cfg, char *dir, size_t dirlen)
{
    int rc = 0;
    char err[256];
    s->cfg = cfg;
    s->out_max_bytes = BK_CONN_OUT_MAX_BYTES;
    if ((rc = bk_listeners_parse(cfg->listeners, s->listeners, BK_LISTENERS_MAX, &s->nlisteners,
                                 err, sizeof err)) ||
        (rc = bk_listeners_parse(cfg->advertised_listeners, s->advertised, BK_LISTENERS_MAX,
                                 &s->nadvertised, err, sizeof err))) {
        SC_ERROR(SUB, "listeners: %s", err);
        goto out;
    }
    int cores = get_nprocs();
    int want = cfg->num_shards ? cfg->num_shards : cores;
    if (want != 1)
        SC_INFO(SUB, "num.shards resolves to %d; this build runs 1 shard (multi-shard data "
                     "path arrives with partition ownership)", want);

    /* log.dirs: only the first directory is used so far. */
    size_t dl = strcspn(cfg->log_dirs, ",");
    if (dl >= dirlen) {
        rc = SC_ERR_BAD_CONFIG;
        SC_ERROR(SUB, "log.dirs entry too long");
        goto out;
    }
    memcpy(dir, cfg->log_dirs, dl);
    dir[dl] = 0;
    /* Cluster mode: the ZooKeeper session first; its cluster id (if any)
     * is the one meta.properties must hold. */
    if (strcmp(cfg->metadata_store, "zookeeper") == 0 && (rc = bk__cluster_open(s)) != 0)
        goto out;
    if ((rc = bk__meta_load(dir, cfg->node_id, s->cluster_id)) != 0)
        goto out;
    /* The metadata store (topics, configs, producer ids) lives beside
     * meta.properties (or in ZooKeeper); both must name the same cluster. */
    if (s->cluster)
        rc = bk_topics_open_zk(bk__cluster_zk(s), s->cluster_id, &s->topics);
    else
        rc = bk_topics_open(dir, s->cluster_id, &s->topics);
    if (rc)
        goto out;
    if (strcmp(bk_topics_cluster_id(s->topics), s->cluster_id) != 0) {
        SC_ERROR(SUB, "%s/%s records cluster id %s but %s/meta.properties says %s; refusing "
                      "to start",
                 dir, RP_META_LOCAL_FILE, bk_topics_cluster_id(s->topics), dir, s->cluster_id);
        rc = SC_ERR_BAD_CONFIG;
        goto out;
    }
    rc = bk__group_init(s);
out:
    return rc;
}

int bk_server_new_offline(const bk_config_t *cfg, bk_server_t **out)
{
    char dir[4096];
    bk_server_t *s = sc_calloc(1, sizeof *s);
    if (!s)
        return SC_ERR_NO_MEMORY;
    int rc = server_load(s, cfg, dir, sizeof dir);
    if (rc) {
        bk__group_free(s);
        bk_topics_free(s->topics);
        bk__cluster_free(s);
        sc_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int bk_server_new(const bk_config_t *cfg, bk_server_t **out)
{
    int rc = 0;
    int loop_ok = 0;
    char dir[4096];
    bk_server_t *s = sc_calloc(1, sizeof *s);
    if (!s)
        return SC_ERR_NO_MEMORY;
    if ((rc = server_load(s, cfg, dir, sizeof dir)) != 0)
        goto out;

    bk_shard_t *sh = &s->shard0;
    sh->id = 0;
    sh->srv = s;
    if ((rc = uv_loop_init(&sh->loop)) != 0)
        goto out;
    loop_ok = 1;
    s->loop_live = 1;
    /* Every handle is initialised before anything can fail, so close_all can
     * close them unconditionally. */
    uv_timer_init(&sh->loop, &sh->idle_timer);
    sh->idle_timer.data = sh;
    uv_async_init(&sh->loop, &sh->stop_async, on_stop_async);
    sh->stop_async.data = s;
    uv_signal_init(&sh->loop, &s->sigterm);
    uv_signal_init(&sh->loop, &s->sigint);
    s->sigterm.data = s;
    s->sigint.data = s;
    if ((rc = bk__shard_storage_init(sh)) != 0 || (rc = bk__storage_open(s)) != 0 ||
        (rc = bk__group_start(s)) != 0 || (rc = bk__plugins_start(s)) != 0)
        goto out;
    for (int i = 0; i < s->nlisteners; i++)
        if ((rc = bind_listener(s, i)) != 0)
            goto out;
    if ((rc = bk__cluster_start(s)) != 0)
        goto out;
    SC_INFO(SUB, "node %d, cluster id %s, data in %s", cfg->node_id, s->cluster_id, dir);
    *out = s;
    s = NULL;
out:
    if (s) {
        if (loop_ok) {
            close_all(s);
            uv_loop_close(&s->shard0.loop);
        }
        bk__group_free(s);
        bk_topics_free(s->topics);
        bk__cluster_free(s);
        sc_free(s);
    }
    return rc;
}

int bk_server_run(bk_server_t *s)
{
    bk_shard_t *sh = &s->shard0;
    /* Sweep often enough that a connection overstays its idle limit by at
     * most ~10% (and at least every second). */
    int64_t idle = s->cfg->connections_max_idle_ms;
    uint64_t every = (uint64_t)(idle / 10 < 10 ? 10 : idle / 10 > 1000 ? 1000 : idle / 10);
    uv_timer_start(&sh->idle_timer, on_idle_timer, every, every);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    bk__shard_storage_start(sh);
    SC_INFO(SUB, "started");
    uv_run(&sh->loop, UV_RUN_DEFAULT);
    int src = finish_storage(s);
    bk__plugins_free(s);
    int rc = uv_loop_close(&sh->loop);
    s->loop_live = 0;
    if (rc)
        SC_WARN(SUB, "loop close: %s", uv_strerror(rc));
    SC_INFO(SUB, "stopped%s", src ? " (closing some logs failed, see above)" : "");
    return src ? 1 : 0;
}

void bk_server_stop(bk_server_t *s) { uv_async_send(&s->shard0.stop_async); }

void bk_server_free(bk_server_t *s)
{
    if (!s)
        return;
    if (s->loop_live) { /* created but never run */
        close_all(s);
        uv_loop_close(&s->shard0.loop);
    }
    bk__plugins_free(s);
    bk__group_free(s);
    bk_topics_free(s->topics);
    bk__cluster_free(s);
    sc_free(s);
}
