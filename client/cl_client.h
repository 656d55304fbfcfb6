/*
 * cl_client -- the machinery every libstrata handle shares: the broker
 * connections, the request/response pipeline, cluster metadata and the I/O
 * thread that drives them with poll(2).
 *
 * Threading: one cl_client_t per public handle, one I/O thread per client.
 * Everything in cl_client_t is guarded by cl->mu. The I/O thread holds mu
 * except while it sleeps in poll(2) and while it runs application callbacks
 * (the role's deliver hook). Response callbacks (cl_resp_cb) and the role
 * hooks run on the I/O thread with mu held.
 *
 * Requests: cl_request() takes a finished body, prepends the frame size and a
 * request header v1 and queues it on a broker; the broker connects when it
 * has something to send. Each connection starts with ApiVersions v0, whose
 * answer gives the version ranges the broker supports (cl_broker_version).
 * Responses arrive in request order (Kafka guarantees it); the callback gets
 * the body after the response header, or err != 0 with body NULL when the
 * connection failed or the request timed out (the connection is then closed
 * and every request on it fails the same way).
 */
#ifndef CL_CLIENT_H
#define CL_CLIENT_H

#include "cl_conf.h"
#include "sc_buf.h"
#include "sc_kafka.h"

#include <pthread.h>
#include <stdint.h>

typedef struct cl_client cl_client_t;
typedef struct cl_broker cl_broker_t;
typedef struct cl_req cl_req_t;

typedef void (*cl_resp_cb)(cl_client_t *cl, cl_broker_t *b, int err, sc_rd_t *body, void *arg);

struct cl_req {
    cl_req_t *next;
    int32_t corr;
    int16_t api_key, api_version;
    int no_response; /* Produce acks=0: complete when written */
    sc_buf_t frame;
    size_t sent;
    int64_t deadline_ms; /* monotonic; armed when written */
    int64_t timeout_ms;
    cl_resp_cb cb;
    void *arg;
};

enum { CL_BK_DOWN = 0, CL_BK_CONNECTING, CL_BK_HANDSHAKE, CL_BK_UP };

struct cl_broker {
    cl_broker_t *next;
    int32_t node_id; /* < 0 for bootstrap entries */
    char *host;
    int port;
    int fd;
    int state;
    int64_t connect_deadline_ms;
    int64_t retry_at_ms;
    cl_req_t *outq, *outq_tail;           /* not yet fully written */
    cl_req_t *inflight, *inflight_tail;   /* written, awaiting the response */
    int ninflight;
    sc_buf_t rbuf;
    int16_t vmax[SC_KAFKA_API_KEY_MAX + 1]; /* -1 = not supported */
    int16_t vmin[SC_KAFKA_API_KEY_MAX + 1];
};

typedef struct {
    int32_t id;
    int32_t leader;
} cl_part_md_t;

/* A topic the handle cares about and what metadata said about it. */
typedef struct cl_topic {
    struct cl_topic *next;
    char *name;
    int err;              /* last topic-level metadata error, 0 */
    int32_t nparts;       /* 0 until known */
    cl_part_md_t *parts;  /* nparts entries */
    void *role;           /* the role's per-topic state */
} cl_topic_t;

/* What a role (producer, consumer, admin) plugs into the loop. All run on the
 * I/O thread with mu held, except deliver (mu released). */
typedef struct {
    /* Sends what is ready; returns the next time (monotonic ms) it wants to
     * run, or INT64_MAX. */
    int64_t (*serve)(cl_client_t *cl, int64_t now);
    /* Metadata for t changed (partition count, leaders, error). */
    void (*topic_updated)(cl_client_t *cl, cl_topic_t *t);
    /* Runs application callbacks without mu; then takes mu back. */
    void (*deliver)(cl_client_t *cl);
} cl_role_t;

struct cl_client {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* signalled whenever the role finishes work (flush waits) */
    pthread_t thread;
    int thread_started;
    pthread_t io_tid; /* == thread once running, for DEADLOCK checks */
    int wake_fd;      /* eventfd */
    int stopping;
    strata_conf_t *conf;
    const cl_role_t *role;
    void *role_state;
    cl_broker_t *brokers;
    int32_t next_corr;
    int32_t controller_id;
    /* metadata */
    cl_topic_t *topics;
    int md_inflight;
    int md_wanted;         /* a refresh has been asked for */
    int64_t md_next_ms;    /* earliest next refresh */
    int64_t md_last_ms;
    int bootstrap_rr;
    int64_t next_wake_ms;  /* when the loop sleeps until (wake only if earlier) */
};

/* Parses conf->bootstrap_servers ("host:port,host:port"), starts the I/O
 * thread. cl takes ownership of conf on success. Returns 0, SC_ERR_BAD_CONFIG
 * (errstr), SC_ERR_NO_MEMORY, -errno. */
int cl_client_init(cl_client_t *cl, strata_conf_t *conf, const cl_role_t *role, void *role_state,
                   char *errstr, size_t errstr_size);
/* Stops and joins the thread (call without mu, never from the I/O thread),
 * then closes every connection, failing their requests with SC_ERR_CLOSED
 * through their callbacks (on the calling thread). */
void cl_client_stop(cl_client_t *cl);
/* After cl_client_stop: frees brokers and topics (the role must have freed
 * every t->role first), the lock and conf. */
void cl_client_fini(cl_client_t *cl);

/* Wakes the I/O thread (any thread, mu held or not). */
void cl_client_wake(cl_client_t *cl);
/* 1 when the caller is the I/O thread. */
int cl_client_on_io_thread(cl_client_t *cl);

/* Queues a request on b: header v1 + body. Takes ownership of *body's bytes
 * (body is reset). cb runs exactly once. mu held. Returns 0 or
 * SC_ERR_NO_MEMORY (cb not called). */
int cl_request(cl_client_t *cl, cl_broker_t *b, int16_t api_key, int16_t api_version,
               sc_buf_t *body, int no_response, int64_t timeout_ms, cl_resp_cb cb, void *arg);

/* The version to use for api_key on b: min(broker max, ours), or -1 when
 * the ranges do not meet or ApiVersions has not been answered. */
int16_t cl_broker_version(const cl_broker_t *b, int16_t api_key, int16_t our_min,
                          int16_t our_max);
/* Starts connecting b when it is DOWN and its backoff is over (mu held). */
void cl_broker_connect(cl_client_t *cl, cl_broker_t *b, int64_t now);
/* The broker with this node id, or NULL. */
cl_broker_t *cl_broker_find(cl_client_t *cl, int32_t node_id);
/* Adds a connection entry (mu held) at the end of the list, so that
 * cl_broker_any prefers the others: the group coordinator's own connection
 * (cl_group.c uses node ids far below the bootstrap ones). NULL when out of
 * memory. */
cl_broker_t *cl_broker_add(cl_client_t *cl, int32_t node_id, const char *host, int port);
/* A broker to send a cluster-wide request to: an UP one, else one that may
 * connect now (it starts connecting). NULL when all are backing off. */
cl_broker_t *cl_broker_any(cl_client_t *cl, int64_t now);

/* Finds or adds a topic of interest (mu held); asks for a metadata refresh
 * when added. NULL when out of memory. */
cl_topic_t *cl_topic_get(cl_client_t *cl, const char *name);
cl_topic_t *cl_topic_find(cl_client_t *cl, const char *name);
/* Asks for a metadata refresh of every topic of interest (soon, rate-limited
 * by retry.backoff.ms). */
void cl_metadata_refresh(cl_client_t *cl);

#endif
