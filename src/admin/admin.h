/*
 * admin.h -- L5: the admin HTTP API (JSON), Prometheus metrics, health.
 *
 * One HTTP/1.1 listener of its own (libuv; default port 8080) serves
 * versioned JSON routes that read the cluster (topology, topics, partitions,
 * groups, rates, latency, events) and act on it (broker and AZ lifecycle,
 * topic create and delete, reset to empty), plus /metrics in Prometheus text
 * format and /healthz and /readyz.  The routes are documented in
 * docs/ADMIN-API.md.
 *
 * The module observes the request layer through the broker's request
 * callback (counts, bytes, latency) and the cluster by sampling it once a
 * second (events: leader moves, ISR changes, brokers up and down).
 *
 * Authorization: every route that acts (any method but GET and HEAD) needs
 * "Authorization: Bearer <admin token>" and is answered 401 without it;
 * reads need it too when auth_reads is set, except /healthz and /readyz.
 *
 * Threads: loop thread only.  Every request is answered synchronously.
 */
#ifndef MK_ADMIN_H
#define MK_ADMIN_H

#include "broker/broker.h"
#include "cluster/cluster.h"
#include "health/health.h"
#include "s3d/s3d.h"

typedef struct mk_admin_s mk_admin_t;

typedef struct mk_admin_opts_s {
    const char *host;         /* bind address */
    int port;                 /* 0 picks a free port */
    mk_cluster_t *cluster;    /* borrowed; outlives the admin */
    mk_broker_t *broker;      /* borrowed; outlives the admin */
    const char *version;      /* minikora version, for /v1/cluster */
    /* The bearer token every acting (non-GET) route requires: 1 to
     * MK_ADMIN_TOKEN_MAX visible ASCII bytes, copied.  NULL or "" turns the
     * check off (unit tests only; main.c always gives one). */
    const char *admin_token;
    bool auth_reads;          /* minikora.admin.auth.reads: GETs need it too */
    mk_s3d_t *s3d;            /* the bundled S3 server (borrowed; outlives the admin), or NULL */
    mk_health_t *health;      /* the storage health manager (borrowed; outlives the admin), or NULL */
} mk_admin_opts_t;

/* Longest token accepted (bytes). */
#define MK_ADMIN_TOKEN_MAX 256

/* Pure: is s usable as an admin token (1..MK_ADMIN_TOKEN_MAX bytes, visible
 * ASCII, no spaces)? */
bool mk_admin_token_valid(const char *s);

/* Start listening and observing.  Returns 0 and *out, or a negative libuv /
 * MK error with nothing left open. */
int mk_admin_open(uv_loop_t *loop, const mk_admin_opts_t *opts, mk_admin_t **out);
/* The port actually bound. */
int mk_admin_port(const mk_admin_t *a);
/* Record an event in the ring (also used by main.c for --control-stdin). */
void mk_admin_event(mk_admin_t *a, const char *type, int32_t broker, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Stop observing, close the listener and every connection; memory is
 * released from libuv close callbacks.  Call before mk_broker_free(). */
void mk_admin_close(mk_admin_t *a);

#endif /* MK_ADMIN_H */
