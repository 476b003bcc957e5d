/*
 * admin_int.h -- internals shared by the files of admin/ and its unit test
 * (not a public header: other modules include admin/admin.h).
 *
 *   http.c     the HTTP/1.1 server: request parsing with http_parser,
 *              bounded sizes, JSON bodies and errors, response writing, on
 *              httpd/'s listener and connections (shared with s3d/)
 *   routes.c   the route table and the JSON handlers (jansson)
 *   stats.c    request counters, bytes and records in/out, latency
 *              histograms with sliding windows, rates, /metrics text
 *   events.c   the event ring and the sampling of cluster state that
 *              feeds it
 *   balance.c  cell load, tenant moves between cells, the balancer
 *   faults.c   the fault-injection API, fault durations, the chaos schedule
 *   admin.c    the module: open/close, the dispatcher, the 1 s tick
 *
 * Life of an admin request: bytes arrive -> http_parser fills an
 * mk_http_req_t (URL and body bounded) -> admin.c's dispatcher finds the
 * route (mk_admin_route_find) -> the handler fills an mk_http_resp_t (JSON
 * body, status) -> http.c writes it.  Everything is synchronous on the loop.
 *
 * Who calls whom (no two files call each other):
 *   admin.c -> routes.c, balance.c, faults.c, events.c, stats.c, http.c
 *   routes.c -> balance.c, faults.c, events.c, stats.c, http.c
 *   faults.c -> events.c, stats.c, http.c
 *   balance.c -> events.c, stats.c
 *   http.c, events.c, stats.c -> no other file of admin/
 */
#ifndef MK_ADMIN_INT_H
#define MK_ADMIN_INT_H

#include "admin/admin.h"

#include <jansson.h>

/* ==================================================================== limits */

#define MK_ADMIN_MAX_BODY ((size_t)1 << 20)     /* request body */
#define MK_ADMIN_MAX_URL 8192                   /* request target */
#define MK_ADMIN_MAX_HEADERS (64 * 1024)        /* all header bytes */
#define MK_ADMIN_MAX_CONNS 64                   /* open connections */
#define MK_ADMIN_MAX_OUT ((size_t)16 << 20)     /* unsent bytes before reading pauses */
#define MK_ADMIN_IDLE_MS 60000                  /* an idle connection is closed */
#define MK_ADMIN_EVENTS 512                     /* events kept in the ring */
#define MK_ADMIN_MAX_CLIENTS 256                /* client ids with their own counters */
#define MK_ADMIN_MAX_TOKEN MK_ADMIN_TOKEN_MAX   /* longest admin bearer token */

/* ====================================================================== http */

/* Methods as a bit mask (the route table and Allow headers use it). */
enum { MK_HTTP_GET = 1, MK_HTTP_HEAD = 2, MK_HTTP_POST = 4, MK_HTTP_DELETE = 8, MK_HTTP_PUT = 16,
       MK_HTTP_OTHER = 32 };

typedef struct mk_http_req_s {
    int method;               /* MK_HTTP_* */
    const char *method_name;  /* "GET" */
    const char *path;         /* raw (percent-encoded) path, NUL-terminated */
    const char *query;        /* raw query string without '?', "" if none */
    const char *body;         /* NUL-terminated copy; "" if none */
    size_t body_len;
    /* The Authorization header's value ("" if none); NULL when it was longer
     * than MK_ADMIN_MAX_TOKEN + 16 bytes (never a valid credential). */
    const char *authorization;
} mk_http_req_t;

typedef struct mk_http_resp_s {
    int status;               /* 200 unless a handler says otherwise */
    const char *content_type; /* static string */
    mk_buf_t body;            /* owned by the server */
    int allow;                /* 405: MK_HTTP_* mask for the Allow header */
    bool bearer_challenge;    /* 401: send WWW-Authenticate: Bearer */
} mk_http_resp_t;

/* Answer one request: fill resp.  Runs on the loop thread. */
typedef void (*mk_http_handler_fn)(void *ud, const mk_http_req_t *req, mk_http_resp_t *resp);

typedef struct mk_http_server_s mk_http_server_t;

/* Listen on host:port (0 picks a free port).  0 and *out, or a negative
 * libuv or MK error with nothing left open. */
int mk_admin_http_open(uv_loop_t *loop, const char *host, int port, mk_http_handler_fn fn, void *ud,
                 mk_http_server_t **out);
int mk_admin_http_port(const mk_http_server_t *s);
int mk_admin_http_conn_count(const mk_http_server_t *s);
/* Close connections idle for longer than MK_ADMIN_IDLE_MS. */
void mk_admin_http_sweep(mk_http_server_t *s, uint64_t now_ms);
/* Close the listener and every connection; freed in close callbacks. */
void mk_admin_http_close(mk_http_server_t *s);
/* The text of MK_HTTP_* bits as an Allow header value ("GET, POST"). */
void mk_admin_http_allow_str(int mask, char *out, size_t n);
/* Serialize j into resp with status, and drop the reference to j (NULL:
 * out of memory, answered as a 500). */
void mk_admin_http_json(mk_http_resp_t *resp, int status, json_t *j);
/* Fill resp with {"error": code, "message": msg} and status; bytes of the
 * message outside printable ASCII become '?'. */
void mk_admin_http_error(mk_http_resp_t *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ==================================================================== routes */

#define MK_ADMIN_MAX_CAPS 2
#define MK_ADMIN_CAP_LEN 256

/* Path segments captured by "{}" in a route pattern, percent-decoded. */
typedef struct mk_admin_caps_s {
    int n;
    char v[MK_ADMIN_MAX_CAPS][MK_ADMIN_CAP_LEN];
} mk_admin_caps_t;

typedef void (*mk_admin_route_fn)(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                                  mk_http_resp_t *resp);

/* One row of the route table (routes.c); the table is the API's index. */
typedef struct mk_admin_route_s {
    int method;               /* MK_HTTP_* (one bit) */
    const char *pattern;      /* "/v1/topics/{}"; {} matches one segment */
    mk_admin_route_fn fn;
    const char *summary;
} mk_admin_route_t;

const mk_admin_route_t *mk_admin_routes(int *count);
/* Pure: does path (raw, percent-encoded, no query) match pattern?  A trailing
 * '/' is ignored; empty segments never match; captures are decoded and must
 * be non-empty, shorter than MK_ADMIN_CAP_LEN and free of '/' and NUL. */
bool mk_admin_path_match(const char *pattern, const char *path, mk_admin_caps_t *caps);
/* The route for (method, path), or NULL.  When NULL, *allow is the mask of
 * methods that path has (0: no such path).  HEAD matches GET routes. */
const mk_admin_route_t *mk_admin_route_find(int method, const char *path, mk_admin_caps_t *caps, int *allow);
/* Pure: percent-decode [s, s+n) into out (NUL-terminated); '+' is kept.
 * Returns the decoded length, or -1 for a bad escape, a NUL byte or no room. */
int mk_admin_url_decode(const char *s, size_t n, char *out, size_t out_len);
/* Pure: the decoded value of key in a query string ("a=1&b=2"); a key with
 * no '=' has the value "".  false when absent or undecodable. */
bool mk_admin_query_get(const char *query, const char *key, char *out, size_t out_len);

/* ===================================================================== stats */

/* Latency buckets (microsecond upper bounds, 1-1.5-2-3-5-7.5 per decade from
 * 10 us to 10 s, then +Inf). */
#define MK_ADMIN_HIST_BUCKETS 38
/* Upper bound of bucket i in microseconds (UINT64_MAX for the last). */
uint64_t mk_admin_hist_bound(int i);
/* The bucket of a latency. */
int mk_admin_hist_bucket(uint64_t us);
/* Pure: the q-quantile (0..1) in microseconds from bucket counts, linear
 * inside a bucket, never above max_us; 0 when total is 0. */
double mk_admin_hist_quantile(const uint32_t *counts, uint64_t total, double q, uint64_t max_us);

typedef struct mk_admin_stats_s mk_admin_stats_t;

int mk_admin_stats_new(mk_cluster_t *c, mk_admin_stats_t **out);
void mk_admin_stats_free(mk_admin_stats_t *s);
/* The broker's request observer feeds this. */
void mk_admin_stats_on_request(mk_admin_stats_t *s, const mk_broker_req_info_t *info);
/* repl/'s cross-AZ observer feeds this: bytes one round copied from t's
 * leader to a follower in another AZ (counted for t's tenant). */
void mk_admin_stats_on_replication(mk_admin_stats_t *s, const mk_topic_t *t, uint64_t bytes);
/* Once a second: rate samples; counters of deleted topics dropped. */
void mk_admin_stats_tick(mk_admin_stats_t *s, uint64_t now_ms);
/* Requests refused by closing their connection, since start. */
uint64_t mk_admin_stats_rejected(const mk_admin_stats_t *s);
/* Forget the counters of topics that no longer exist (reset). */
void mk_admin_stats_prune(mk_admin_stats_t *s);
/* GET /v1/latency and GET /v1/rates bodies (new references). */
/* Per-second rates over the rate window (~10 s) of one broker (topic NULL)
 * or of one topic (internal name); zeros for one never seen. */
typedef struct mk_admin_rate_s {
    double bytes_in, bytes_out, requests;
} mk_admin_rate_t;
void mk_admin_stats_rate(mk_admin_stats_t *s, int32_t broker, const char *topic, mk_admin_rate_t *out);
json_t *mk_admin_stats_latency_json(mk_admin_stats_t *s, int32_t broker_filter);
json_t *mk_admin_stats_rates_json(mk_admin_stats_t *s);
/* A tenant's cross-AZ bytes (total, replication, client), their cost and
 * the price per GB, as GET /v1/tenants/{id} shows them (zeros for a tenant
 * never counted).  A new reference. */
json_t *mk_admin_stats_tenant_cross_az_json(mk_admin_stats_t *s, const char *tenant);
/* Tenant `tenant`'s figures as its entry of GET /v1/rates has them (rates,
 * totals, cross_az_bytes and cross_az_cost; zero when it sent nothing),
 * without the "tenant" label (a new reference, NULL on OOM). */
json_t *mk_admin_stats_tenant_json(mk_admin_stats_t *s, const char *tenant);
/* The tenant's busiest client ids, at most n, by bytes in + out per second
 * (then since start): [{"client_id", rates and totals as /v1/rates}] (a new
 * reference, NULL on OOM). */
json_t *mk_admin_stats_tenant_clients_json(mk_admin_stats_t *s, const char *tenant, int n);
/* Append the request-path metrics in Prometheus text format. */
void mk_admin_stats_prometheus(mk_admin_stats_t *s, mk_buf_t *out);

/* Prometheus text helpers: "name{labels} value\n" with escaped label values.
 * labels is "k1", v1, "k2", v2 ... NULL. */
void mk_prom_help(mk_buf_t *out, const char *name, const char *type, const char *help);
void mk_prom_sample(mk_buf_t *out, const char *name, double value, ...);
/* Pure: append s escaped as a label value (\\, \", \n). */
void mk_prom_escape(mk_buf_t *out, const char *s);

/* ==================================================================== events */

typedef struct mk_admin_event_s {
    uint64_t seq;             /* 1, 2, ...; 0 = empty slot */
    int64_t time_ms;          /* wall clock */
    int32_t broker;           /* -1 if none */
    char type[24];            /* "broker_stopped", "leader_changed", ... */
    char message[200];
} mk_admin_event_t;

/* The event ring and the last sample of the cluster (events.c writes every
 * field; others read through the functions below). */
typedef struct mk_admin_events_s {
    mk_admin_event_t *ring;   /* owned: MK_ADMIN_EVENTS slots */
    uint64_t last_seq;        /* seq of the last event */
    mk_map_t seen_topics;     /* name -> owned seen_topic_t* */
    bool *seen_running;       /* owned: per broker index, as last sampled */
    bool seen_valid;          /* seen_* hold a sample */
    mk_map_t seen_throttle;   /* tenant id -> owned throttle counts at the last tick (events.c) */
    uint64_t throttle_pass;   /* ticks of mk_admin_observe_throttles, to drop tenants gone */
} mk_admin_events_t;

/* Set up a->events (a->c must be set).  0 or MK_ERR_NOMEM; either way
 * mk_admin_events_free() releases what was allocated. */
int mk_admin_events_init(mk_admin_t *a);
void mk_admin_events_free(mk_admin_t *a);
/* Sample the cluster now and record what changed since the last sample as
 * events (called by the tick and right after every acting route).  cause
 * (may be NULL) is named in the events; quiet: record only broker changes,
 * not per-topic ones (a reset records one event of its own). */
void mk_admin_observe(mk_admin_t *a, const char *cause, bool quiet);
/* Record one tenant_throttled event for each tenant whose clients were
 * throttled since the last call: how many answers, how much throttle time,
 * and by which quotas.  Called by the 1 s tick only, so a tenant has at most
 * one such event a second however many answers were throttled. */
void mk_admin_observe_throttles(mk_admin_t *a);
/* Event seq, or NULL when it was never recorded or is overwritten. */
const mk_admin_event_t *mk_admin_events_at(const mk_admin_t *a, uint64_t seq);
/* The seq of the last event recorded (0: none yet). */
uint64_t mk_admin_events_last(const mk_admin_t *a);
/* Whether type is one an event can have (GET /v1/events?type=). */
bool mk_admin_event_type_known(const char *type);

/* =================================================================== balance */

/* A cell's load and its parts, each a fraction of capacity (balance.c). */
typedef struct mk_admin_cell_load_s {
    int32_t cell;
    double load;              /* the highest of the three below */
    double broker;            /* average broker load: requests/s against capacity */
    double replica;           /* replicas against capacity */
    double bandwidth;         /* client bytes/s against capacity */
    int64_t replicas;
    double replica_capacity, bytes_per_sec, bytes_capacity, requests_per_sec;
} mk_admin_cell_load_t;

/* A tenant on its way to another cell. */
typedef struct mk_admin_move_s {
    char tenant[MK_TENANT_ID_MAX + 1];
    int32_t from, to;         /* cells (from -1: resumed after a restart) */
    int partitions;           /* the tenant's partitions when it began */
    int left;                 /* partitions still with a replica outside the cell */
    int64_t started_ms;       /* wall clock */
} mk_admin_move_t;

#define MK_ADMIN_MAX_MOVES 16

/* A broker being drained: its replicas move to other brokers (balance.c).
 * Kept (kv drain/<id>) until the broker is removed or the drain cancelled. */
typedef struct mk_admin_drain_s {
    int32_t broker;
    int replicas;             /* replicas on it when the drain began (or resumed) */
    int left;                 /* replicas still on it */
    int stuck;                /* of those, partitions with nowhere to go now */
    bool done;                /* left reached 0 (broker_drained told) */
    int64_t started_ms;       /* wall clock */
    int64_t done_ms;          /* wall clock; 0 while it runs */
} mk_admin_drain_t;

#define MK_ADMIN_MAX_DRAINS MK_CLUSTER_MAX_BROKERS

typedef struct mk_admin_balance_s {
    mk_admin_move_t moves[MK_ADMIN_MAX_MOVES];
    int nmoves;
    uint64_t moves_done;
    uint64_t last_run_ms;     /* monotonic: the balancer's last look */
    mk_admin_drain_t drains[MK_ADMIN_MAX_DRAINS];
    int ndrains;
    uint64_t drains_done;     /* drains that reached 0 replicas, since start */
    uint64_t brokers_removed; /* since start */
    /* The within-cell partition balancer. */
    uint64_t part_last_ms;    /* monotonic: its last look */
    uint64_t part_replica_moves;   /* reassignments it started, since start */
    uint64_t part_leader_moves;    /* preferred elections and reorders it started */
    uint64_t part_runs;       /* passes that found a cell uneven */
} mk_admin_balance_t;

/* Register the load with the cluster (placement compares it) and resume the
 * moves a restart interrupted.  0 or the store's error. */
int mk_admin_balance_init(mk_admin_t *a);
void mk_admin_balance_free(mk_admin_t *a);
/* The admin tick: moves go on; every minikora.balancer.interval.ms the
 * balancer looks at the cells. */
void mk_admin_balance_tick(mk_admin_t *a, uint64_t now_ms);
void mk_admin_cell_load(mk_admin_t *a, int32_t cell, mk_admin_cell_load_t *out);
/* Move tenant t (the default one too) to cell: its new topics go there at
 * once, its partitions follow online.  why names the cause in the event.
 * 0, MK_ERR_INVALID (no such cell), MK_ERR_EXISTS (already there),
 * MK_ERR_STATE (too many moves at once). */
int mk_admin_tenant_move(mk_admin_t *a, mk_tenant_t *t, int32_t cell, const char *why);
/* The move of a tenant in progress, or NULL. */
const mk_admin_move_t *mk_admin_move_of(mk_admin_t *a, const char *tenant);
/* Drain broker id: every replica on it moves online (repl/'s reassignment,
 * a few at a time) to another broker of its cell, of its AZ where one is
 * free, else of an AZ the partition has no replica in, else any.  Persisted
 * (kv drain/<id>), resumed at start.  0, MK_ERR_NOT_FOUND, MK_ERR_EXISTS
 * (already draining), MK_ERR_STATE (retired). */
int mk_admin_broker_drain(mk_admin_t *a, int32_t id);
/* Stop draining broker id (the replicas moved stay moved).  0 or
 * MK_ERR_NOT_FOUND (no drain). */
int mk_admin_broker_drain_cancel(mk_admin_t *a, int32_t id);
/* The drain of broker id, or NULL. */
const mk_admin_drain_t *mk_admin_drain_of(mk_admin_t *a, int32_t id);
/* Remove broker id (repl/'s mk_repl_broker_remove) and forget its drain. */
int mk_admin_broker_remove(mk_admin_t *a, int32_t id, int64_t *replicas_out);
/* One pass of the within-cell partition balancer over cell now (the admin
 * API's rebalance; the tick runs it every
 * minikora.balancer.partitions.interval.ms when enabled).  Returns the moves
 * it started (replica reassignments + leader moves), or MK_ERR_INVALID (no
 * such cell).  *skew_out (may be NULL): the replica skew (max - min over the
 * cell's brokers that take replicas) before the pass. */
int mk_admin_cell_rebalance(mk_admin_t *a, int32_t cell, const char *why, int *skew_out);

/* ==================================================================== faults */

/* faults.c: the fault-injection API and the chaos schedule (fault/ holds
 * the registry).  State behind a->faults. */
typedef struct mk_admin_faults_s mk_admin_faults_t;
struct mk_fault_spec_s;
struct mk_fault_s;
int mk_admin_faults_init(mk_admin_t *a);
void mk_admin_faults_free(mk_admin_t *a);
/* Inject a fault (checked against the cluster; the actions of crash,
 * az-down, corrupt and the bundled S3 server done; an event).  s may be
 * completed (corrupt: the topic, partition, broker it picked).  0 and
 * *id_out, or an error with *status (400, 404, 409) and why. */
int mk_admin_fault_inject(mk_admin_t *a, struct mk_fault_spec_s *s, uint64_t *id_out, int *status, char *why,
                          size_t n);
/* Clear fault id (undoing its action; an event naming cause).  0 or
 * MK_ERR_NOT_FOUND. */
int mk_admin_fault_clear(mk_admin_t *a, uint64_t id, const char *cause);
/* Clear every active fault; returns how many. */
int mk_admin_faults_clear_all(mk_admin_t *a, const char *cause);
json_t *mk_admin_fault_json(const struct mk_fault_s *f);
/* The routes (routes.c's table points here). */
void mk_admin_h_faults_post(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp);
void mk_admin_h_faults_get(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp);
void mk_admin_h_fault_delete(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                             mk_http_resp_t *resp);
void mk_admin_h_faults_delete(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                              mk_http_resp_t *resp);
void mk_admin_h_chaos_post(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp);
void mk_admin_h_chaos_get(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp);
void mk_admin_h_chaos_delete(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                             mk_http_resp_t *resp);
/* /metrics lines: faults active and injected, chaos, the storage I/O gate. */
void mk_admin_faults_prometheus(mk_admin_t *a, mk_buf_t *out);

/* ===================================================================== admin */

struct mk_admin_s {
    uv_loop_t *loop;
    mk_cluster_t *c;
    mk_broker_t *b;
    char *version;            /* owned */
    char *host;               /* owned: bind address */
    mk_http_server_t *http;   /* owned */
    mk_admin_stats_t *stats;  /* owned */
    uv_timer_t *tick;         /* owned; freed in its close callback */
    uint64_t started_mono_ms;
    int64_t started_wall_ms;
    mk_admin_events_t events; /* events.c */
    uint64_t http_by_class[6];/* responses by status class (index status/100) */
    uint64_t resets;
    uint64_t rejected_seen;   /* mk_admin_stats_rejected() at the last tick */
    char *token;              /* owned: the bearer token; NULL: no check */
    bool auth_reads;          /* minikora.admin.auth.reads */
    uint64_t unauthorized;    /* requests answered 401, since start */
    mk_admin_balance_t bal;   /* balance.c */
    mk_s3d_t *s3d;            /* borrowed: the bundled S3 server, or NULL */
    mk_health_t *health;      /* borrowed: the storage health manager, or NULL */
    mk_admin_faults_t *faults;/* owned: faults.c */
};

/* Pure: does the Authorization header value carry token?  "Bearer" is
 * matched case-insensitively; the token bytes are compared in time that
 * depends only on token's length, never on where they differ.  false for
 * NULL (an over-long header) and for an empty token. */
bool mk_admin_auth_ok(const char *authorization, const char *token);
/* Pure: does (method, path) need the token?  Every method but GET/HEAD
 * does; GET/HEAD do when reads is set, except /healthz and /readyz. */
bool mk_admin_auth_needed(int method, const char *path, bool reads);

/* Route dispatcher, the HTTP server's handler (admin.c -> routes). */
void mk_admin_dispatch(void *ud, const mk_http_req_t *req, mk_http_resp_t *resp);

#endif /* MK_ADMIN_INT_H */
