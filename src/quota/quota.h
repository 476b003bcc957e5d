/*
 * quota.h -- L2: tenant quotas: the limits, whom they apply to, and the
 * measures enforcement compares against them.  The only public header of
 * quota/.
 *
 *   registry  Limits per tenant (quota.c): tenant-wide ones (the admin
 *             API's PUT /v1/tenants/{id}/quotas) and per entity inside the
 *             tenant (Kafka's AlterClientQuotas, KIP-546: user, client-id,
 *             user + client-id, ip; each by name or as <default>).
 *             Persisted in meta's kv store under "quota/" and loaded at
 *             start.  A change bumps mk_quota_version().
 *   match     The entity limit that applies to a (user, client id) pair, in
 *             Kafka's order of precedence, per key (quota.c).
 *   measure   A windowed rate, as Kafka samples it (quota.window.num windows
 *             of quota.window.size.seconds), with the throttle time an
 *             excess implies; a token bucket (KIP-599) (measure.c).
 *   share     How a tenant-wide limit is split over brokers by use, and how
 *             a saturated broker scales tenants' allowances (measure.c).
 *
 * Stored form: "quota/<tenant>" for tenant-wide limits and
 * "quota/<tenant>/<entity>" for entity limits, <entity> being
 * "user=<name>", "client-id=<name>", "user=<name>&client-id=<name>" or
 * "ip=<name>" with names percent-encoded outside [A-Za-z0-9._-] and empty
 * for <default>; the value "key=value key=value ...".
 *
 * Threads: the loop thread (writes are submitted to meta/ in order).
 */
#ifndef MK_QUOTA_H
#define MK_QUOTA_H

#include "base/base.h"

#include <uv.h>

struct mk_meta_s;

/* ===================================================================== keys */

enum {
    MK_QUOTA_PRODUCER_BYTE_RATE,        /* bytes/s produced (KIP-13) */
    MK_QUOTA_CONSUMER_BYTE_RATE,        /* bytes/s fetched (KIP-13) */
    MK_QUOTA_REQUEST_PERCENTAGE,        /* % of one request-handling thread (KIP-124) */
    MK_QUOTA_CONTROLLER_MUTATION_RATE,  /* partitions created or deleted per second (KIP-599) */
    MK_QUOTA_CONNECTION_CREATION_RATE,  /* new connections per second (KIP-612) */
    MK_QUOTA_MAX_CONNECTIONS,           /* open connections (tenant-wide only) */
    MK_QUOTA_MAX_PARTITIONS,            /* partitions (tenant-wide only) */
    MK_QUOTA_MAX_STORAGE_BYTES,         /* stored bytes, leaders' logs (tenant-wide only) */
    MK_QUOTA__COUNT
};

/* Kafka's spelling ("producer_byte_rate", ...), or NULL. */
const char *mk_quota_key_name(int key);
/* The key of that name, or -1. */
int mk_quota_key_find(const char *name);
/* Pure: is v a usable value of key?  Finite, > 0, and not absurd (rates
 * and byte counts below 2^50, request_percentage up to 100000, counts and
 * mutation/connection rates below 2^31). */
bool mk_quota_value_valid(int key, double v);

typedef struct mk_quota_limits_s {
    double v[MK_QUOTA__COUNT];
    uint32_t set;              /* bit k: v[k] holds a limit */
} mk_quota_limits_t;

/* v[key] when set, else 0 (no limit). */
double mk_quota_limit(const mk_quota_limits_t *l, int key);

/* ================================================================= entities */

/* An entity inside a tenant.  A NULL field is not part of it; "" is the
 * <default> entity of that type. */
typedef struct mk_quota_entity_s {
    const char *user;
    const char *client_id;
    const char *ip;
} mk_quota_entity_t;

/* Pure: is e one of KIP-546's shapes (user, client-id, user + client-id,
 * ip), and may it carry key?  ip entities carry connection_creation_rate
 * only; the others carry the byte rates, request_percentage and
 * controller_mutation_rate.  key < 0: the shape alone. */
bool mk_quota_entity_valid(const mk_quota_entity_t *e, int key);

/* ================================================================= registry */

typedef struct mk_quota_registry_s mk_quota_registry_t;

/* Open the registry on meta's kv store and load every stored limit
 * (blocking: startup only); meta may be NULL (nothing persisted).  Later
 * writes are submitted on loop.  0 and *out, MK_ERR_NOMEM; a malformed
 * entry is logged and skipped. */
int mk_quota_registry_open(uv_loop_t *loop, struct mk_meta_s *meta, mk_quota_registry_t **out);
void mk_quota_registry_close(mk_quota_registry_t *r);
/* Bumped by every change. */
uint64_t mk_quota_version(const mk_quota_registry_t *r);

/* The tenant-wide limits of tenant (all unset when it has none). */
const mk_quota_limits_t *mk_quota_tenant(mk_quota_registry_t *r, const char *tenant);
/* Set (remove false) or remove one limit, tenant-wide when e is NULL, and
 * persist the entry in the background.  0, MK_ERR_INVALID (bad key, value,
 * entity, or key not allowed for the entity: nothing changes), MK_ERR_NOMEM. */
int mk_quota_set(mk_quota_registry_t *r, const char *tenant, const mk_quota_entity_t *e, int key, double value,
                 bool remove);
/* Drop every limit of tenant (the tenant is deleted). */
void mk_quota_tenant_remove(mk_quota_registry_t *r, const char *tenant);

/* The entity limit of key that applies to a client of tenant with this
 * user and client id, by Kafka's precedence: user + client-id, user +
 * <default> client-id, user, <default> user + client-id, <default> user +
 * <default> client-id, <default> user, client-id, <default> client-id.
 * 0 when none applies. */
double mk_quota_client_limit(mk_quota_registry_t *r, const char *tenant, const char *user, const char *client_id,
                             int key);
/* As mk_quota_client_limit, and which entity matched: *by_user and
 * *by_client (either may be NULL) say whether it names a user and a client
 * id (by name or as <default>).  A measure kept per match, as Kafka keeps
 * its sensors, is keyed by the client's own user and client id of those
 * types only: a limit on user alice is shared by all of alice's clients. */
double mk_quota_client_match(mk_quota_registry_t *r, const char *tenant, const char *user, const char *client_id,
                             int key, bool *by_user, bool *by_client);
/* The limit of key for connections from ip: ip, else <default> ip; 0: none. */
double mk_quota_ip_limit(mk_quota_registry_t *r, const char *tenant, const char *ip, int key);

/* Every entity of tenant with its limits, in no order; a nonzero return of
 * cb stops the walk and is returned.  The entity's strings live until the
 * next change. */
typedef int (*mk_quota_each_cb)(const mk_quota_entity_t *e, const mk_quota_limits_t *l, void *arg);
int mk_quota_each(mk_quota_registry_t *r, const char *tenant, mk_quota_each_cb cb, void *arg);

/* ================================================================== measure */

#define MK_QUOTA_MAX_WINDOWS 64

/* A rate over n windows of window_ms (Kafka's SampledStat Rate). */
typedef struct mk_quota_rate_s {
    double sum[MK_QUOTA_MAX_WINDOWS];
    int64_t start_ms[MK_QUOTA_MAX_WINDOWS];
    int n;
    int cur;
    int64_t window_ms;
} mk_quota_rate_t;

/* windows is clamped to 2..MK_QUOTA_MAX_WINDOWS, window_ms to >= 1. */
void mk_quota_rate_init(mk_quota_rate_t *r, int windows, int64_t window_ms);
void mk_quota_rate_record(mk_quota_rate_t *r, int64_t now_ms, double v);
/* Per second, over the windows still current; the span counts at least
 * n - 1 whole windows, as Kafka's does, so a burst at start is not
 * divided by a few milliseconds. */
double mk_quota_rate_get(const mk_quota_rate_t *r, int64_t now_ms);
/* Kafka's throttle time for a rate over limit: (rate - limit) / limit x
 * the span the rate was measured over, in ms, capped at max_ms; 0 within
 * the limit or with no limit (limit <= 0). */
int64_t mk_quota_rate_throttle_ms(const mk_quota_rate_t *r, int64_t now_ms, double limit, int64_t max_ms);

/* A token bucket (KIP-599): rate tokens a second, at most burst. */
typedef struct mk_quota_bucket_s {
    double tokens, rate, burst;
    int64_t last_ms;
} mk_quota_bucket_t;

void mk_quota_bucket_init(mk_quota_bucket_t *b, double rate, double burst, int64_t now_ms);
/* Refill to now; true when tokens are positive (a request may go in, even
 * if it then takes the bucket below zero, as Kafka allows). */
bool mk_quota_bucket_ready(mk_quota_bucket_t *b, int64_t now_ms);
void mk_quota_bucket_take(mk_quota_bucket_t *b, int64_t now_ms, double n);
/* How long until the bucket is positive again, in ms (0 when it is). */
int64_t mk_quota_bucket_throttle_ms(mk_quota_bucket_t *b, int64_t now_ms);
/* A new rate and burst from now on: the time before now refills at the old
 * rate, and tokens above the new burst are dropped (a debt is kept). */
void mk_quota_bucket_set(mk_quota_bucket_t *b, double rate, double burst, int64_t now_ms);

/* ==================================================================== share */

/* Pure: split limit over n brokers by their recent use, so a tenant whose
 * load sits on one broker gets nearly all of it there: each broker gets
 * floor_frac / n of it as a floor and the rest in proportion to use (an
 * even split when there is no use).  out sums to limit. */
void mk_quota_split(const double *use, int n, double limit, double floor_frac, double *out);
/* Pure: a saturated broker's allowances.  Tenant i asks demand[i] and has
 * quota[i] (0: none).  When the demands fit in capacity, allow = demand.
 * Otherwise tenants with a quota get capacity shares in proportion to
 * their quotas (never above their demand), and what is left goes in equal
 * shares to the tenants without one (water-filling: unused shares move to
 * the others).  out sums to at most capacity. */
void mk_quota_scale(const double *quota, const double *demand, int n, double capacity, double *allow);

#endif /* MK_QUOTA_H */
