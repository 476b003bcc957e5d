/*
 * quotas.c -- Kafka's client quota APIs over the session's tenant
 * (DescribeClientQuotas 48, AlterClientQuotas 49; KIP-546), and the limits
 * that the request layer enforces by itself: the partition mutation rate
 * (KIP-599), a tenant's partitions and stored bytes, and its connections
 * (how many are open, how fast new ones come; KIP-612).  Byte rates and
 * request time are enforced by the throttling path, not here.
 *
 * The APIs.  A tenant's entities -- user (an API key, or ANONYMOUS in the
 * default tenant), client-id, user + client-id, ip; each by name or as
 * <default> -- live in the quota registry (quota/) under the tenant's id, so
 * a tenant sees and alters only its own.  Its tenant-wide limits (the admin
 * API's) are not entities and are never listed.  Describe needs
 * DESCRIBE_CONFIGS on the cluster resource, Alter ALTER_CONFIGS, as in Kafka.
 *   Describe: each filter component names an entity type and matches it
 *     exactly (a name), as <default> (MatchType 1, no name), or by any name
 *     including <default> (2); entities must have every filtered type, and
 *     with Strict no other.  A bad filter answers the whole request with an
 *     error, as Kafka's broker does: INVALID_REQUEST, or UNSUPPORTED_VERSION
 *     for an unknown entity type or match type.
 *   Alter: every entry is checked whole before anything of it changes: its
 *     shape (user, client-id, user + client-id, or ip alone; no type twice,
 *     no unknown type, no empty name, an ip a numeric IPv4 or IPv6 address,
 *     stored in its canonical form), every key one the entity can carry (ip:
 *     connection_creation_rate; the others: producer_byte_rate,
 *     consumer_byte_rate, request_percentage, controller_mutation_rate), no
 *     key twice, every value finite, > 0, not absurd (quota.h), and a whole
 *     number for the keys Kafka types as integers (the byte rates, the
 *     connection rate).  Anything wrong: INVALID_REQUEST with a sentence, and
 *     the entity keeps every limit it had.  ValidateOnly checks and changes
 *     nothing.  An entity named twice in one request: the first entry is
 *     applied, the second refused.
 *
 * The limits (state in limits_t, one per broker layer; loop thread):
 *   controller_mutation_rate  a token bucket per tenant (the tenant-wide
 *       limit) and per matched entity (keyed as Kafka keys its sensors: the
 *       client's own user and/or client id, for the types the matching
 *       entity names), rate = the limit, burst = limit x 11 windows x 1 s
 *       (Kafka's quota.window.num x quota.window.size.seconds).  CreateTopics
 *       v6+ and DeleteTopics v5+ are strict: a topic goes ahead while every
 *       bucket is positive (it may take them below zero), the others get
 *       THROTTLING_QUOTA_EXCEEDED and the response the time until the
 *       buckets refill.  Older versions are charged in full and answered
 *       with that time.  Either way the connection is then muted for it, or
 *       an old client's answer held (throttle.c, KIP-219), as Kafka does.
 *       Validate-only requests and auto-created topics are not charged, as
 *       in Kafka.
 *   max_partitions   CreateTopics (and Metadata's auto-create) past it: the
 *       topic gets POLICY_VIOLATION naming the limit.
 *   max_storage_bytes  the sum of the leader log sizes of the tenant's
 *       partitions (pre-replication, as Confluent Cloud counts storage),
 *       cached per tenant and recomputed at most once a second.  A Produce
 *       while it is at or above the limit gets POLICY_VIOLATION for each
 *       partition, with a message naming the limit (data.c asks).
 *   max_connections, connection_creation_rate  a connection counts for its
 *       tenant when it authenticates (sasl.c), or, unauthenticated in the
 *       default tenant, at its first request other than ApiVersions and the
 *       SASL ones (dispatch.c).  The open count is a walk of the sessions;
 *       the creation rates (tenant-wide, and per ip entity: the client's own
 *       address, matched by name or <default>) are windowed as Kafka's
 *       (11 x 1 s windows).  A connection past a limit is not counted (Kafka
 *       un-records a throttled connection too); its authentication fails
 *       with SASL_AUTHENTICATION_FAILED naming the limit and the connection
 *       is closed with a log line; an unauthenticated one is closed.
 *
 * Per-entity buckets and per-ip rates are created only when a limit applies
 * and swept (full buckets, idle rates) when there are many, so client-chosen
 * ids cannot grow the maps without bound.
 */
#include "broker/broker_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUOTA_WINDOWS 11          /* Kafka's quota.window.num */
#define QUOTA_WINDOW_MS 1000      /* Kafka's quota.window.size.seconds, in ms */
#define STORAGE_CACHE_MS 1000     /* stored bytes recomputed at most this often */
#define SWEEP_AT 4096             /* entries of a map before it is swept */
#define NAME_MAX_BYTES 160        /* an entity name (the registry holds < 170) */

/* ==================================================================== state */

typedef struct tenant_lim_s {
    mk_quota_bucket_t mutation;   /* tenant-wide controller_mutation_rate */
    double mutation_limit;        /* the limit the bucket was made for; 0: none yet */
    mk_quota_rate_t conn_rate;    /* tenant-wide connection creation */
    bool conn_rate_init;
    int64_t stored_bytes;         /* leader log bytes, as of stored_ms */
    int64_t stored_ms;            /* -1: never computed */
    int64_t storage_log_ms;       /* last "storage full" log line */
} tenant_lim_t;

typedef struct entity_bucket_s {
    mk_quota_bucket_t b;
    double limit;
} entity_bucket_t;

struct mk_broker_limits_s {
    mk_map_t tenants;             /* tenant id -> tenant_lim_t* */
    mk_map_t buckets;             /* tenant \1 user \1 client -> entity_bucket_t* */
    mk_map_t ip_rates;            /* tenant \1 ip -> mk_quota_rate_t* */
    int64_t swept_ms;
};

int mk_broker_limits_init(mk_broker_t *b)
{
    b->limits = mk_calloc(1, sizeof(*b->limits));
    if (!b->limits)
        return MK_ERR_NOMEM;
    mk_map_init(&b->limits->tenants);
    mk_map_init(&b->limits->buckets);
    mk_map_init(&b->limits->ip_rates);
    return 0;
}

static void map_free_all(mk_map_t *m)
{
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(m, &it, &k, &v);)
        mk_free(v);
    mk_map_free(m);
}

void mk_broker_limits_free(mk_broker_t *b)
{
    if (!b->limits)
        return;
    map_free_all(&b->limits->tenants);
    map_free_all(&b->limits->buckets);
    map_free_all(&b->limits->ip_rates);
    mk_free(b->limits);
    b->limits = NULL;
}

static tenant_lim_t *tenant_lim(mk_broker_t *b, const mk_tenant_t *t)
{
    if (!b->limits)
        return NULL;
    tenant_lim_t *tl = mk_map_get(&b->limits->tenants, t->id);
    if (tl)
        return tl;
    tl = mk_calloc(1, sizeof(*tl));
    if (!tl || mk_map_put(&b->limits->tenants, t->id, tl) < 0) {
        mk_free(tl);
        return NULL;
    }
    tl->stored_ms = -1;
    tl->storage_log_ms = INT64_MIN / 2;
    return tl;
}

/* Drop what a fresh entry would equal: full buckets, rates with no current
 * window; and the state of tenants that are gone.  At most once a second,
 * and only once a map is large. */
static void sweep(mk_broker_t *b, int64_t now)
{
    struct mk_broker_limits_s *l = b->limits;
    if (now - l->swept_ms < 1000 ||
        (l->buckets.count < SWEEP_AT && l->ip_rates.count < SWEEP_AT && l->tenants.count < SWEEP_AT))
        return;
    l->swept_ms = now;
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&l->buckets, &it, &k, &v);) {
        entity_bucket_t *eb = v;
        mk_quota_bucket_ready(&eb->b, now); /* refills */
        if (eb->b.tokens >= eb->b.burst) {
            mk_map_del(&l->buckets, k);
            mk_free(eb);
        }
    }
    for (size_t it = 0; mk_map_next(&l->ip_rates, &it, &k, &v);)
        if (mk_quota_rate_get(v, now) <= 0) {
            mk_map_del(&l->ip_rates, k);
            mk_free(v);
        }
    for (size_t it = 0; mk_map_next(&l->tenants, &it, &k, &v);)
        if (!mk_tenant_find(b->tenants, k)) {
            mk_map_del(&l->tenants, k);
            mk_free(v);
        }
}

/* A bucket for rate/s with Kafka's burst, made or adjusted to a changed limit
 * (tokens kept, clamped to the new burst). */
static void bucket_fit(mk_quota_bucket_t *bk, double *have, double limit, int64_t now)
{
    double burst = limit * QUOTA_WINDOWS * QUOTA_WINDOW_MS / 1000.0;
    if (*have <= 0) {
        mk_quota_bucket_init(bk, limit, burst, now);
    } else if (*have != limit) {
        mk_quota_bucket_ready(bk, now); /* refill at the old rate first */
        bk->rate = limit;
        bk->burst = burst;
        if (bk->tokens > burst)
            bk->tokens = burst;
    }
    *have = limit;
}

/* The session's user name for quota entities: its API key, or ANONYMOUS. */
static const char *session_user(const mk_session_t *s)
{
    return s && s->authenticated && s->key[0] ? s->key : "ANONYMOUS";
}

static const mk_tenant_t *req_tenant(const mk_req_t *req)
{
    return req->sess ? req->sess->tenant : mk_tenant_default();
}

/* The peer's address without its port ("ip:port", "[v6]:port"). */
static void peer_ip(mk_net_conn_t *conn, char *out, size_t len)
{
    snprintf(out, len, "%s", mk_net_conn_peer(conn));
    char *colon = strrchr(out, ':');
    if (colon)
        *colon = 0;
    if (out[0] == '[') {
        char *rb = strchr(out, ']');
        if (rb)
            *rb = 0;
        memmove(out, out + 1, strlen(out + 1) + 1);
    }
}

/* ================================================================== entities */

enum { ET_USER, ET_CLIENT, ET_IP, ET__COUNT };
static const char *const et_names[ET__COUNT] = {"user", "client-id", "ip"};

static int et_find(mk_str_t s)
{
    for (int i = 0; i < ET__COUNT; i++)
        if (mk_str_eq(s, et_names[i]))
            return i;
    return -1;
}

/* Kafka types the byte rates as LONG and the connection rate as INT. */
static bool key_integral(int key)
{
    return key == MK_QUOTA_PRODUCER_BYTE_RATE || key == MK_QUOTA_CONSUMER_BYTE_RATE ||
           key == MK_QUOTA_CONNECTION_CREATION_RATE;
}

/* ===================================================== DescribeClientQuotas */

typedef struct filter_s {
    bool want[ET__COUNT];         /* the entity must have this type */
    const char *exact[ET__COUNT]; /* ...named so ("" = <default>), or NULL: any name */
    int ntypes;
    bool strict;
} filter_t;

typedef struct describe_ctx_s {
    mk_req_t *req;
    const filter_t *f;
    mk_DescribeClientQuotasResponse_EntryData_t *items;  /* grown in the arena */
    int32_t n, cap;
    bool oom;
} describe_ctx_t;

static bool filter_match(const filter_t *f, const mk_quota_entity_t *e)
{
    const char *names[ET__COUNT] = {e->user, e->client_id, e->ip};
    int have = 0;
    for (int i = 0; i < ET__COUNT; i++) {
        have += names[i] != NULL;
        if (!f->want[i])
            continue;
        if (!names[i] || (f->exact[i] && strcmp(f->exact[i], names[i]) != 0))
            return false;
    }
    return !f->strict || have == f->ntypes;
}

static int describe_cb(const mk_quota_entity_t *e, const mk_quota_limits_t *l, void *arg)
{
    describe_ctx_t *c = arg;
    if (!filter_match(c->f, e) || !l->set)
        return 0;
    if (c->n == c->cap) {
        int32_t cap = c->cap ? c->cap * 2 : 8;
        mk_DescribeClientQuotasResponse_EntryData_t *n =
            mk_broker_req_structs(c->req, &mk_pdesc_DescribeClientQuotasResponse_EntryData, cap);
        if (!n) {
            c->oom = true;
            return 1;
        }
        if (c->n)
            memcpy(n, c->items, sizeof(*n) * (size_t)c->n);
        c->items = n;
        c->cap = cap;
    }
    mk_DescribeClientQuotasResponse_EntryData_t *out = &c->items[c->n++];
    const char *names[ET__COUNT] = {e->user, e->client_id, e->ip};
    int nt = 0, nv = 0;
    for (int i = 0; i < ET__COUNT; i++)
        nt += names[i] != NULL;
    for (int k = 0; k < MK_QUOTA__COUNT; k++)
        nv += l->set >> k & 1;
    if (!MK_ARRAY_ALLOC(c->req, out->Entity, nt, DescribeClientQuotasResponse_EntityData) ||
        !MK_ARRAY_ALLOC(c->req, out->Values, nv, DescribeClientQuotasResponse_ValueData)) {
        c->oom = true;
        return 1;
    }
    int j = 0;
    for (int i = 0; i < ET__COUNT; i++) {
        if (!names[i])
            continue;
        out->Entity.items[j].EntityType = mk_str(et_names[i]);
        /* "" is <default>: null on the wire. */
        out->Entity.items[j++].EntityName = names[i][0] ? mk_broker_req_str(c->req, names[i]) : mk_str(NULL);
    }
    j = 0;
    for (int k = 0; k < MK_QUOTA__COUNT; k++)
        if (l->set >> k & 1) {
            out->Values.items[j].Key = mk_str(mk_quota_key_name(k));
            out->Values.items[j++].Value = l->v[k];
        }
    return 0;
}

/* The filter of a request, or an error code with *why. */
static int16_t filter_parse(mk_req_t *req, const mk_DescribeClientQuotasRequest_t *q, filter_t *f, const char **why)
{
    memset(f, 0, sizeof(*f));
    f->strict = q->Strict;
    for (int32_t i = 0; i < q->Components.count; i++) {
        const mk_DescribeClientQuotasRequest_ComponentData_t *c = &q->Components.items[i];
        int t = et_find(c->EntityType);
        if (!c->EntityType.ptr || c->EntityType.len == 0) {
            *why = "Invalid empty entity type.";
            return MK_KERR_INVALID_REQUEST;
        }
        if (t < 0) {
            char buf[160];
            snprintf(buf, sizeof(buf), "Unsupported entity type %.100s", c->EntityType.ptr);
            *why = mk_broker_req_str(req, buf).ptr;
            return MK_KERR_UNSUPPORTED_VERSION;
        }
        if (f->want[t]) {
            char buf[128];
            snprintf(buf, sizeof(buf), "Entity type %s cannot appear more than once in the filter.", et_names[t]);
            *why = mk_broker_req_str(req, buf).ptr;
            return MK_KERR_INVALID_REQUEST;
        }
        switch (c->MatchType) {
        case 0: /* exact */
            if (!c->Match.ptr) {
                *why = "MatchType 0 (exact) needs a match string.";
                return MK_KERR_INVALID_REQUEST;
            }
            if (strlen(c->Match.ptr) != (size_t)c->Match.len) {
                *why = "A match string has a NUL byte.";
                return MK_KERR_INVALID_REQUEST;
            }
            f->exact[t] = c->Match.ptr;
            if (t == ET_IP) { /* compared in canonical form, as stored */
                unsigned char a[16];
                char canon[INET6_ADDRSTRLEN];
                int af = strchr(c->Match.ptr, ':') ? AF_INET6 : AF_INET;
                if (inet_pton(af, c->Match.ptr, a) == 1 && inet_ntop(af, a, canon, sizeof(canon)))
                    f->exact[t] = mk_broker_req_str(req, canon).ptr;
            }
            break;
        case 1: /* <default> */
            if (c->Match.ptr) {
                *why = "MatchType 1 (default) takes no match string.";
                return MK_KERR_INVALID_REQUEST;
            }
            f->exact[t] = "";
            break;
        case 2: /* any name of the type, <default> included */
            if (c->Match.ptr) {
                *why = "MatchType 2 (any) takes no match string.";
                return MK_KERR_INVALID_REQUEST;
            }
            break;
        default: {
            char buf[64];
            snprintf(buf, sizeof(buf), "Unknown match type %d", c->MatchType);
            *why = mk_broker_req_str(req, buf).ptr;
            return MK_KERR_UNSUPPORTED_VERSION;
        }
        }
        f->want[t] = true;
        f->ntypes++;
    }
    if (f->want[ET_IP] && (f->want[ET_USER] || f->want[ET_CLIENT])) {
        *why = "An ip filter component cannot be combined with user or client-id components.";
        return MK_KERR_INVALID_REQUEST;
    }
    return 0;
}

int mk_broker_handle_describe_client_quotas(mk_req_t *req)
{
    mk_DescribeClientQuotasRequest_t *q = req->body;
    mk_DescribeClientQuotasResponse_t *r = req->resp;
    r->Entries.count = -1; /* null unless described */
    r->Entries.items = NULL;
    r->ErrorMessage = mk_str(NULL);
    if (!mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_DESCRIBE_CONFIGS)) {
        r->ErrorCode = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
        r->ErrorMessage = mk_str("DESCRIBE_CONFIGS on the cluster is needed to describe client quotas");
        return MK_REQ_DONE;
    }
    filter_t f;
    const char *why = NULL;
    int16_t err = filter_parse(req, q, &f, &why);
    if (err) {
        r->ErrorCode = err;
        r->ErrorMessage = mk_str(why);
        return MK_REQ_DONE;
    }
    describe_ctx_t c = {req, &f, NULL, 0, 0, false};
    mk_quota_each(req->b->quotas, req_tenant(req)->id, describe_cb, &c);
    if (c.oom)
        return MK_ERR_NOMEM;
    r->Entries.items = c.items;
    r->Entries.count = c.n;
    return MK_REQ_DONE;
}

/* ======================================================== AlterClientQuotas */

/* One entry checked: the entity (names arena-owned) and its ops resolved to
 * keys; or an error with a sentence. */
typedef struct checked_s {
    mk_quota_entity_t e;
    int keys[MK_QUOTA__COUNT];
    int nkeys;
    int16_t err;
    const char *why;
} checked_t;

static void refuse(mk_req_t *req, checked_t *ck, int16_t err, const char *fmt, const char *arg)
{
    char buf[300];
    snprintf(buf, sizeof(buf), fmt, arg);
    ck->err = err;
    ck->why = mk_broker_req_str(req, buf).ptr;
}

static void check_entry(mk_req_t *req, const mk_AlterClientQuotasRequest_EntryData_t *en, checked_t *ck)
{
    memset(ck, 0, sizeof(*ck));
    const char **slot[ET__COUNT] = {&ck->e.user, &ck->e.client_id, &ck->e.ip};
    bool seen[ET__COUNT] = {false};
    if (en->Entity.count <= 0) {
        refuse(req, ck, MK_KERR_INVALID_REQUEST, "%s", "An empty entity cannot have quotas.");
        return;
    }
    for (int32_t i = 0; i < en->Entity.count; i++) {
        const mk_AlterClientQuotasRequest_EntityData_t *d = &en->Entity.items[i];
        int t = et_find(d->EntityType);
        if (t < 0) {
            refuse(req, ck, MK_KERR_INVALID_REQUEST, "Unknown entity type %.100s (user, client-id or ip).",
                   d->EntityType.ptr ? d->EntityType.ptr : "null");
            return;
        }
        if (seen[t]) {
            refuse(req, ck, MK_KERR_INVALID_REQUEST, "Entity type %s is given twice.", et_names[t]);
            return;
        }
        seen[t] = true;
        const char *name = d->EntityName.ptr;
        if (!name) {
            *slot[t] = ""; /* <default> */
            continue;
        }
        if (d->EntityName.len == 0) {
            refuse(req, ck, MK_KERR_INVALID_REQUEST, "An empty %s name is not allowed (null is <default>).",
                   et_names[t]);
            return;
        }
        if (strlen(name) != (size_t)d->EntityName.len || d->EntityName.len > NAME_MAX_BYTES) {
            refuse(req, ck, MK_KERR_INVALID_REQUEST, "A %s name must be at most 160 bytes, without NUL.",
                   et_names[t]);
            return;
        }
        if (t == ET_IP) {
            unsigned char a[16];
            char canon[INET6_ADDRSTRLEN];
            int af = strchr(name, ':') ? AF_INET6 : AF_INET;
            if (inet_pton(af, name, a) != 1 || !inet_ntop(af, a, canon, sizeof(canon))) {
                refuse(req, ck, MK_KERR_INVALID_REQUEST, "%.100s is not a numeric IPv4 or IPv6 address.", name);
                return;
            }
            name = mk_broker_req_str(req, canon).ptr;
        }
        *slot[t] = name;
    }
    if (seen[ET_IP] && (seen[ET_USER] || seen[ET_CLIENT])) {
        refuse(req, ck, MK_KERR_INVALID_REQUEST, "%s",
               "An ip entity cannot be combined with a user or a client-id.");
        return;
    }
    uint32_t given = 0;
    for (int32_t i = 0; i < en->Ops.count; i++) {
        const mk_AlterClientQuotasRequest_OpData_t *op = &en->Ops.items[i];
        int k = op->Key.ptr && strlen(op->Key.ptr) == (size_t)op->Key.len ? mk_quota_key_find(op->Key.ptr) : -1;
        if (k < 0 || !mk_quota_entity_valid(&ck->e, k)) {
            refuse(req, ck, MK_KERR_INVALID_REQUEST,
                   seen[ET_IP] ? "Invalid quota key %.100s for an ip entity (connection_creation_rate only)."
                               : "Invalid quota key %.100s (producer_byte_rate, consumer_byte_rate, "
                                 "request_percentage or controller_mutation_rate).",
                   op->Key.ptr ? op->Key.ptr : "null");
            return;
        }
        if (given >> k & 1) {
            refuse(req, ck, MK_KERR_INVALID_REQUEST, "Quota key %s is given twice.", mk_quota_key_name(k));
            return;
        }
        given |= 1u << k;
        if (op->Remove) {
            ck->keys[ck->nkeys++] = k;
            continue;
        }
        double v = op->Value;
        if (!mk_quota_value_valid(k, v)) {
            char buf[200];
            snprintf(buf, sizeof(buf), "Invalid value %g for %s: it must be finite, above 0 and below %s.", v,
                     mk_quota_key_name(k),
                     k == MK_QUOTA_PRODUCER_BYTE_RATE || k == MK_QUOTA_CONSUMER_BYTE_RATE ? "2^50"
                     : k == MK_QUOTA_REQUEST_PERCENTAGE                                   ? "100000 (inclusive)"
                                                                                          : "2^31");
            refuse(req, ck, MK_KERR_INVALID_REQUEST, "%s", buf);
            return;
        }
        if (key_integral(k) && fabs(v - floor(v + 1e-6)) > 1e-6) {
            refuse(req, ck, MK_KERR_INVALID_REQUEST, "%s must be a whole number.", mk_quota_key_name(k));
            return;
        }
        ck->keys[ck->nkeys++] = k;
    }
}

static bool entity_same(const mk_quota_entity_t *a, const mk_quota_entity_t *b)
{
    const char *x[3] = {a->user, a->client_id, a->ip}, *y[3] = {b->user, b->client_id, b->ip};
    for (int i = 0; i < 3; i++)
        if ((x[i] == NULL) != (y[i] == NULL) || (x[i] && strcmp(x[i], y[i]) != 0))
            return false;
    return true;
}

int mk_broker_handle_alter_client_quotas(mk_req_t *req)
{
    mk_AlterClientQuotasRequest_t *q = req->body;
    mk_AlterClientQuotasResponse_t *r = req->resp;
    int32_t n = q->Entries.count < 0 ? 0 : q->Entries.count;
    if (!MK_ARRAY_ALLOC(req, r->Entries, n, AlterClientQuotasResponse_EntryData))
        return MK_ERR_NOMEM;
    checked_t *cks = n ? mk_arena_alloc(&req->arena, sizeof(*cks) * (size_t)n) : NULL;
    if (n && !cks)
        return MK_ERR_NOMEM;
    bool allowed = mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_ALTER_CONFIGS);
    const char *tenant = req_tenant(req)->id;
    for (int32_t i = 0; i < n; i++) {
        const mk_AlterClientQuotasRequest_EntryData_t *en = &q->Entries.items[i];
        mk_AlterClientQuotasResponse_EntryData_t *out = &r->Entries.items[i];
        /* The entity as the client named it. */
        if (en->Entity.count > 0) {
            if (!MK_ARRAY_ALLOC(req, out->Entity, en->Entity.count, AlterClientQuotasResponse_EntityData))
                return MK_ERR_NOMEM;
            for (int32_t j = 0; j < en->Entity.count; j++) {
                out->Entity.items[j].EntityType = en->Entity.items[j].EntityType;
                out->Entity.items[j].EntityName = en->Entity.items[j].EntityName;
            }
        }
        checked_t *ck = &cks[i];
        if (!allowed) {
            memset(ck, 0, sizeof(*ck));
            ck->err = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
            ck->why = "ALTER_CONFIGS on the cluster is needed to alter client quotas";
        } else {
            check_entry(req, en, ck);
        }
        for (int32_t j = 0; !ck->err && j < i; j++)
            if (!cks[j].err && entity_same(&cks[j].e, &ck->e))
                refuse(req, ck, MK_KERR_INVALID_REQUEST, "%s",
                       "The entity appears more than once in the request; only its first entry was applied.");
        out->ErrorCode = ck->err;
        out->ErrorMessage = mk_str(ck->why);
        if (ck->err) {
            mk_info("AlterClientQuotas from %s (tenant %s) refused: %s",
                    req->sess ? mk_net_conn_peer(req->sess->conn) : "-", tenant, ck->why);
            continue;
        }
        if (q->ValidateOnly)
            continue;
        for (int32_t j = 0; j < en->Ops.count; j++) {
            const mk_AlterClientQuotasRequest_OpData_t *op = &en->Ops.items[j];
            int rc = mk_quota_set(req->b->quotas, tenant, &ck->e, ck->keys[j], op->Value, op->Remove);
            if (rc < 0) {
                /* Checked above: only memory can fail here. */
                out->ErrorCode = MK_KERR_UNKNOWN_SERVER_ERROR;
                out->ErrorMessage = mk_str(mk_strerror(rc));
                break;
            }
        }
    }
    return MK_REQ_DONE;
}

/* ================================================= controller_mutation_rate */

static entity_bucket_t *entity_bucket(mk_broker_t *b, const char *tenant, const char *user, const char *client,
                                      bool by_user, bool by_client)
{
    char key[600];
    snprintf(key, sizeof(key), "%s\1%s\1%s", tenant, by_user ? user : "\2", by_client ? client : "\2");
    entity_bucket_t *eb = mk_map_get(&b->limits->buckets, key);
    if (eb)
        return eb;
    eb = mk_calloc(1, sizeof(*eb));
    if (!eb || mk_map_put(&b->limits->buckets, key, eb) < 0) {
        mk_free(eb);
        return NULL;
    }
    return eb;
}

bool mk_broker_limits_mutation(mk_req_t *req, bool strict, int32_t partitions, int32_t *throttle_ms, char *why,
                               size_t why_len)
{
    mk_broker_t *b = req->b;
    if (!b->limits || !b->quotas || partitions <= 0)
        return true;
    const mk_tenant_t *t = req_tenant(req);
    int64_t now = (int64_t)mk_mono_ms();
    sweep(b, now);
    mk_quota_bucket_t *bk[2] = {NULL, NULL};
    double lim[2] = {0, 0};
    double tw = mk_quota_limit(mk_quota_tenant(b->quotas, t->id), MK_QUOTA_CONTROLLER_MUTATION_RATE);
    if (tw > 0) {
        tenant_lim_t *tl = tenant_lim(b, t);
        if (tl) {
            bucket_fit(&tl->mutation, &tl->mutation_limit, tw, now);
            bk[0] = &tl->mutation;
            lim[0] = tw;
        }
    }
    bool by_user, by_client;
    const char *user = session_user(req->sess), *client = req->hdr.ClientId.ptr ? req->hdr.ClientId.ptr : "";
    double ew = mk_quota_client_match(b->quotas, t->id, user, client, MK_QUOTA_CONTROLLER_MUTATION_RATE, &by_user,
                                      &by_client);
    if (ew > 0) {
        entity_bucket_t *eb = entity_bucket(b, t->id, user, client, by_user, by_client);
        if (eb) {
            bucket_fit(&eb->b, &eb->limit, ew, now);
            bk[1] = &eb->b;
            lim[1] = ew;
        }
    }
    if (!bk[0] && !bk[1])
        return true;
    if (strict) {
        int64_t wait = 0;
        for (int i = 0; i < 2; i++)
            if (bk[i] && !mk_quota_bucket_ready(bk[i], now)) {
                int64_t ms = mk_quota_bucket_throttle_ms(bk[i], now);
                if (ms <= wait)
                    continue;
                wait = ms;
                snprintf(why, why_len,
                         "The partition mutation quota (controller_mutation_rate %g/s, %s) is exhausted; "
                         "retry in %lld ms.", lim[i], i == 0 ? "tenant-wide" : "client quota", (long long)ms);
            }
        if (wait > 0) {
            if (wait > *throttle_ms)
                *throttle_ms = (int32_t)MK_MIN(wait, INT32_MAX);
            return false;
        }
    }
    for (int i = 0; i < 2; i++)
        if (bk[i])
            mk_quota_bucket_take(bk[i], now, partitions);
    if (!strict)
        for (int i = 0; i < 2; i++) {
            int64_t ms = bk[i] ? mk_quota_bucket_throttle_ms(bk[i], now) : 0;
            if (ms > *throttle_ms)
                *throttle_ms = (int32_t)MK_MIN(ms, INT32_MAX);
        }
    return true;
}

/* =========================================================== max_partitions */

int64_t mk_broker_limits_partition_count(mk_req_t *req)
{
    const mk_tenant_t *t = req_tenant(req);
    int64_t n = 0;
    size_t it = 0;
    mk_topic_t *tp;
    while ((tp = mk_cluster_topic_next(req->c, &it)))
        if (mk_tenant_visible(t, tp->name))
            n += tp->partition_count;
    return n;
}

bool mk_broker_limits_partitions(mk_req_t *req, int64_t *have, int32_t more, char *why, size_t why_len)
{
    if (!req->b->quotas)
        return true;
    const mk_tenant_t *t = req_tenant(req);
    double max = mk_quota_limit(mk_quota_tenant(req->b->quotas, t->id), MK_QUOTA_MAX_PARTITIONS);
    if (max <= 0)
        return true;
    if (*have < 0)
        *have = mk_broker_limits_partition_count(req);
    if ((double)(*have + more) <= max)
        return true;
    snprintf(why, why_len,
             "%d more partitions would exceed the tenant's partition limit (max_partitions %.0f; it has %lld).",
             more, max, (long long)*have);
    return false;
}

/* ======================================================== max_storage_bytes */

/* The tenant's stored bytes: the sum of its partitions' leader log sizes. */
static int64_t stored_bytes(mk_cluster_t *c, const mk_tenant_t *t)
{
    int64_t sum = 0;
    size_t it = 0;
    mk_topic_t *tp;
    while ((tp = mk_cluster_topic_next(c, &it))) {
        if (!mk_tenant_visible(t, tp->name))
            continue;
        for (int32_t i = 0; i < tp->partition_count; i++) {
            mk_log_t *log = mk_partition_log(mk_cluster_topic_partition(tp, i));
            if (log) {
                mk_log_stats_t st;
                mk_log_stats(log, &st);
                sum += (int64_t)st.size_bytes;
            }
        }
    }
    return sum;
}

const char *mk_broker_limits_storage_full(mk_req_t *req)
{
    mk_broker_t *b = req->b;
    if (!b->quotas)
        return NULL;
    const mk_tenant_t *t = req_tenant(req);
    double max = mk_quota_limit(mk_quota_tenant(b->quotas, t->id), MK_QUOTA_MAX_STORAGE_BYTES);
    if (max <= 0)
        return NULL;
    tenant_lim_t *tl = tenant_lim(b, t);
    int64_t now = (int64_t)mk_mono_ms();
    int64_t bytes;
    if (tl && tl->stored_ms >= 0 && now - tl->stored_ms < STORAGE_CACHE_MS) {
        bytes = tl->stored_bytes;
    } else {
        bytes = stored_bytes(req->c, t);
        if (tl) {
            tl->stored_bytes = bytes;
            tl->stored_ms = now;
        }
    }
    if ((double)bytes < max)
        return NULL;
    char buf[200];
    snprintf(buf, sizeof(buf), "The tenant's storage limit is reached (max_storage_bytes %.0f; it stores %lld).", max,
             (long long)bytes);
    if (tl && now - tl->storage_log_ms >= 10000) { /* one line per tenant per 10 s */
        tl->storage_log_ms = now;
        mk_warn("tenant %s: produce refused: %s", t->id, buf);
    }
    return mk_broker_req_str(req, buf).ptr;
}

/* ============================================================== connections */

static mk_quota_rate_t *ip_rate(mk_broker_t *b, const char *tenant, const char *ip)
{
    char key[160];
    snprintf(key, sizeof(key), "%s\1%s", tenant, ip);
    mk_quota_rate_t *r = mk_map_get(&b->limits->ip_rates, key);
    if (r)
        return r;
    r = mk_malloc(sizeof(*r));
    if (!r || mk_map_put(&b->limits->ip_rates, key, r) < 0) {
        mk_free(r);
        return NULL;
    }
    mk_quota_rate_init(r, QUOTA_WINDOWS, QUOTA_WINDOW_MS);
    return r;
}

bool mk_broker_limits_connection(mk_broker_t *b, mk_session_t *s, const mk_tenant_t *t, char *why, size_t why_len)
{
    if (!b->limits || !b->quotas)
        return true;
    const mk_quota_limits_t *tw = mk_quota_tenant(b->quotas, t->id);
    double max = mk_quota_limit(tw, MK_QUOTA_MAX_CONNECTIONS);
    if (max > 0) {
        int open = 0;
        for (mk_session_t *o = b->sessions; o; o = o->next)
            open += o != s && o->tenant == t && o->counted;
        if ((double)open >= max) {
            snprintf(why, why_len, "tenant %s has %d open connections, its limit (max_connections %.0f)", t->id,
                     open, max);
            return false;
        }
    }
    int64_t now = (int64_t)mk_mono_ms();
    sweep(b, now);
    mk_quota_rate_t *rates[2] = {NULL, NULL};
    double lim[2] = {mk_quota_limit(tw, MK_QUOTA_CONNECTION_CREATION_RATE), 0};
    char ip[64];
    peer_ip(s->conn, ip, sizeof(ip));
    lim[1] = mk_quota_ip_limit(b->quotas, t->id, ip, MK_QUOTA_CONNECTION_CREATION_RATE);
    if (lim[0] > 0) {
        tenant_lim_t *tl = tenant_lim(b, t);
        if (tl && !tl->conn_rate_init) {
            mk_quota_rate_init(&tl->conn_rate, QUOTA_WINDOWS, QUOTA_WINDOW_MS);
            tl->conn_rate_init = true;
        }
        rates[0] = tl ? &tl->conn_rate : NULL;
    }
    if (lim[1] > 0)
        rates[1] = ip_rate(b, t->id, ip);
    /* Record, then check (Kafka's order); a refused connection is taken
     * back out, as Kafka un-records a throttled one. */
    for (int i = 0; i < 2; i++)
        if (rates[i])
            mk_quota_rate_record(rates[i], now, 1);
    for (int i = 0; i < 2; i++) {
        if (!rates[i] || mk_quota_rate_get(rates[i], now) <= lim[i])
            continue;
        for (int j = 0; j < 2; j++)
            if (rates[j])
                mk_quota_rate_record(rates[j], now, -1);
        if (i == 0)
            snprintf(why, why_len, "tenant %s is over its connection creation rate (connection_creation_rate %g/s)",
                     t->id, lim[0]);
        else
            snprintf(why, why_len, "connections from %s are over the tenant's connection creation rate for it "
                                   "(ip quota connection_creation_rate %g/s)", ip, lim[1]);
        return false;
    }
    s->counted = true;
    return true;
}

bool mk_broker_limits_first_request(mk_req_t *req, char *why, size_t why_len)
{
    mk_session_t *s = req->sess;
    int16_t k = req->hdr.RequestApiKey;
    if (!s || s->counted || s->authenticated || k == MK_API_ApiVersions || k == MK_API_SaslHandshake ||
        k == MK_API_SaslAuthenticate)
        return true;
    return mk_broker_limits_connection(req->b, s, s->tenant, why, why_len);
}

/* ============================================================ declarations */

int mk_broker_limits_declare(mk_broker_t *b, const mk_config_t *cfg)
{
    size_t it = 0;
    const char *name;
    void *v;
    while (mk_map_next(&cfg->values, &it, &name, &v)) {
        char id[MK_TENANT_ID_MAX + 2];
        size_t idl = mk_cluster_cfg_tenant_quotas_id(name, id, sizeof(id));
        if (idl == 0)
            continue;
        if (idl >= sizeof(id)) {
            mk_error("%s: the tenant id is too long", name);
            return MK_ERR_INVALID;
        }
        mk_tenant_t *t = mk_tenant_find(b->tenants, id);
        int rc = t ? 0 : mk_tenant_create(b->tenants, id, mk_cluster_cell_pick(b->c), &t);
        if (rc < 0) {
            mk_error("%s: cannot declare tenant %s: %s", name, id, mk_strerror(rc));
            return MK_ERR_INVALID;
        }
        char *list = mk_strdup((const char *)v), *save = NULL;
        if (!list)
            return MK_ERR_NOMEM;
        for (char *pair = strtok_r(list, ",", &save); pair; pair = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(pair, '='), *end = NULL;
            if (eq)
                *eq = 0;
            int k = eq ? mk_quota_key_find(pair) : -1;
            double val = eq ? strtod(eq + 1, &end) : 0;
            bool ok = k >= 0 && end && end != eq + 1 && !*end && mk_quota_value_valid(k, val);
            if (ok && mk_quota_limit(mk_quota_tenant(b->quotas, t->id), k) != val)
                ok = mk_quota_set(b->quotas, t->id, NULL, k, val, false) == 0;
            if (!ok) {
                mk_error("%s: '%s%s%s' is not a limit (KEY=VALUE, KEY one of producer_byte_rate, "
                         "consumer_byte_rate, request_percentage, controller_mutation_rate, "
                         "connection_creation_rate, max_connections, max_partitions, max_storage_bytes; VALUE > 0)",
                         name, pair, eq ? "=" : "", eq ? eq + 1 : "");
                mk_free(list);
                return MK_ERR_INVALID;
            }
        }
        mk_free(list);
    }
    return 0;
}
