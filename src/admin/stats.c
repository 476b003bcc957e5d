/*
 * stats.c -- what the request path tells the admin API: request counts,
 * latency histograms, bytes and records in and out, per broker, API, topic
 * and client; their rates; and their Prometheus text.
 *
 * Feed: mk_admin_stats_on_request() is the broker layer's request observer
 * (mk_broker_set_req_cb), called once per finished request.  Produce counts
 * the record bytes of every partition the response accepted (ErrorCode 0),
 * as Kafka's BytesInPerSec does; Fetch counts the record bytes it returned
 * (BytesOutPerSec).  Records are counted from the batch headers' record
 * counts, without decompressing anything.
 *
 * Latency: one cell per (broker, API key), allocated on first use.  A cell
 * keeps a cumulative histogram (for /metrics) and six 10-second
 * sub-windows (for /v1/latency: p50/p95/p99/max over the last minute).
 * Buckets are 1-1.5-2-3-5-7.5 per decade from 10 us to 10 s; the Prometheus
 * buckets (seconds: 0.0001 0.0002 0.0005 0.001 ... 10) are a subset of them.
 *
 * Rates: every counter set keeps a ring of its values sampled once a second
 * (mk_admin_stats_tick); a rate is (now - the sample ~10 s ago) / elapsed.
 *
 * Clients by tenant: besides the cluster-wide flow of each client id, a
 * client's requests count in the flow of the pair (tenant, client id), keyed
 * "<tenant>/<client id>" (a tenant id has no '/'), so that a tenant's busiest
 * clients can be listed (GET /v1/tenants/{id}) and two tenants' clients of one
 * id stay apart.
 *
 * Bounds: brokers and API keys are fixed; topics are dropped when the topic
 * goes; client ids beyond MK_ADMIN_MAX_CLIENTS share one "(other)" entry, and
 * (tenant, client id) pairs beyond TENANT_CLIENTS_MAX one "(other)" entry per
 * tenant.
 *
 * Cross-AZ bytes and their cost, per tenant (what Kora optimises):
 *   replication  repl/ tells mk_admin_stats_on_replication() once per round
 *                that copied bytes from a leader to a follower in another AZ
 *                (registered by admin.c); the topic's tenant is the owner of
 *                its internal name (tenant.h), resolved once per round, with
 *                a one-entry cache by topic id.
 *   client       the record bytes a Produce accepted or a Fetch returned,
 *                when the request observer says the connection's client
 *                named its rack and it is not the broker's AZ
 *                (client_cross_az).  A client whose rack is unknown (no
 *                Fetch v11+ with a RackId on that connection yet: a producer
 *                never sends one) counts none.
 *   cost         bytes / 1e9 * minikora.cost.cross.az.per.gb, read once at
 *                start (broker settings do not change while running).
 */
#include "admin/admin_int.h"
#include "batch/batch.h"
#include "proto/proto.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { F_BYTES_IN, F_BYTES_OUT, F_RECORDS_IN, F_RECORDS_OUT, F_REQUESTS, F_COUNT };
static const char *flow_names[F_COUNT] = {"bytes_in", "bytes_out", "records_in", "records_out", "requests"};

#define RATE_SLOTS 11          /* one sample a second: a 10 s window */
#define LAT_WINDOWS 6          /* sub-windows of LAT_WINDOW_MS */
#define LAT_WINDOW_MS 10000
#define API_SLOTS (MK_API__MAX + 1) /* the last one holds unknown keys */
#define OTHER_CLIENT "(other)"
#define TENANT_CLIENTS_MAX (4 * MK_ADMIN_MAX_CLIENTS)

/* Kinds of cross-AZ bytes (tenant flows only). */
enum { XAZ_REPLICATION, XAZ_CLIENT, XAZ_COUNT };
static const char *xaz_names[XAZ_COUNT] = {"replication", "client"};

typedef struct flow_s {
    uint64_t v[F_COUNT];
    uint64_t ring[RATE_SLOTS][F_COUNT];
    uint64_t xaz[XAZ_COUNT];   /* tenants: bytes that crossed AZs, by kind */
} flow_t;

typedef struct lat_win_s {
    uint64_t epoch;            /* now_ms / LAT_WINDOW_MS of the data held */
    uint32_t n;
    uint32_t max_us;
    uint32_t counts[MK_ADMIN_HIST_BUCKETS];
} lat_win_t;

typedef struct lat_cell_s {
    uint64_t count;
    uint64_t rejected;
    uint64_t sum_us;
    uint64_t max_us;
    uint64_t cum[MK_ADMIN_HIST_BUCKETS];
    lat_win_t win[LAT_WINDOWS];
} lat_cell_t;

struct mk_admin_stats_s {
    mk_cluster_t *c;
    uint64_t rejected;         /* requests answered by closing the connection */
    int nbrokers;              /* slots: MK_CLUSTER_MAX_BROKERS (cells can be added) */
    lat_cell_t **cells;        /* owned: [broker index * API_SLOTS + key], lazily */
    flow_t *brokers;           /* owned: per broker index */
    flow_t total;
    mk_map_t topics;           /* name -> owned flow_t* */
    mk_map_t clients;          /* client id -> owned flow_t* */
    mk_map_t tenant_clients;   /* "<tenant>/<client id>" -> owned flow_t* */
    mk_map_t tenants;          /* tenant id -> owned flow_t* (every tenant that sent a request
                                  or whose topics replicated across AZs); never pruned */
    double price_per_gb;       /* minikora.cost.cross.az.per.gb */
    uint8_t xaz_topic_id[16];  /* the topic of the last replication round ... */
    flow_t *xaz_tenant;        /* ... and its tenant's flow (NULL: none cached) */
    uint64_t ring_ms[RATE_SLOTS];
    int ring_pos;
    bool ring_full;
};

/* ================================================================ histogram */

static uint64_t bounds[MK_ADMIN_HIST_BUCKETS];

static void bounds_init(void)
{
    if (bounds[0])
        return;
    static const uint64_t mult[6] = {10, 15, 20, 30, 50, 75}; /* x 1/10 of the decade */
    int i = 0;
    for (uint64_t dec = 1; dec <= 100000; dec *= 10)
        for (int m = 0; m < 6; m++)
            bounds[i++] = mult[m] * dec;
    bounds[i++] = 10000000; /* 10 s */
    bounds[i++] = UINT64_MAX;
}

uint64_t mk_admin_hist_bound(int i)
{
    bounds_init();
    return i >= 0 && i < MK_ADMIN_HIST_BUCKETS ? bounds[i] : UINT64_MAX;
}

int mk_admin_hist_bucket(uint64_t us)
{
    bounds_init();
    int lo = 0, hi = MK_ADMIN_HIST_BUCKETS - 1;
    while (lo < hi) { /* the first bound >= us */
        int mid = (lo + hi) / 2;
        if (bounds[mid] >= us)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

double mk_admin_hist_quantile(const uint32_t *counts, uint64_t total, double q, uint64_t max_us)
{
    bounds_init();
    if (total == 0)
        return 0;
    double rank = ceil(q * (double)total);
    if (rank < 1)
        rank = 1;
    uint64_t cum = 0;
    for (int i = 0; i < MK_ADMIN_HIST_BUCKETS; i++) {
        if (!counts[i])
            continue;
        if ((double)(cum + counts[i]) >= rank) {
            double lo = i ? (double)bounds[i - 1] : 0;
            double hi = i == MK_ADMIN_HIST_BUCKETS - 1 ? (double)max_us : (double)bounds[i];
            double v = lo + (hi - lo) * (rank - (double)cum) / (double)counts[i];
            return v > (double)max_us ? (double)max_us : v;
        }
        cum += counts[i];
    }
    return (double)max_us;
}

static void cell_add(lat_cell_t *c, uint64_t us, bool rejected, uint64_t now_ms)
{
    int b = mk_admin_hist_bucket(us);
    c->count++;
    c->rejected += rejected;
    c->sum_us += us;
    if (us > c->max_us)
        c->max_us = us;
    c->cum[b]++;
    uint64_t epoch = now_ms / LAT_WINDOW_MS;
    lat_win_t *w = &c->win[epoch % LAT_WINDOWS];
    if (w->epoch != epoch) {
        memset(w, 0, sizeof(*w));
        w->epoch = epoch;
    }
    w->n++;
    w->counts[b]++;
    uint32_t us32 = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    if (us32 > w->max_us)
        w->max_us = us32;
}

/* The last minute of a cell merged into one window. */
static void cell_window(const lat_cell_t *c, uint64_t now_ms, lat_win_t *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t epoch = now_ms / LAT_WINDOW_MS;
    for (int i = 0; i < LAT_WINDOWS; i++) {
        const lat_win_t *w = &c->win[i];
        if (w->n == 0 || w->epoch + LAT_WINDOWS <= epoch || w->epoch > epoch)
            continue;
        out->n += w->n;
        if (w->max_us > out->max_us)
            out->max_us = w->max_us;
        for (int b = 0; b < MK_ADMIN_HIST_BUCKETS; b++)
            out->counts[b] += w->counts[b];
    }
}

/* ==================================================================== feed */

static flow_t *flow_get(mk_map_t *m, const char *name, size_t cap)
{
    flow_t *f = mk_map_get(m, name);
    if (f)
        return f;
    if (cap && m->count >= cap) {
        name = OTHER_CLIENT;
        if ((f = mk_map_get(m, name)))
            return f;
    }
    f = mk_calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    if (mk_map_put(m, name, f) < 0) {
        mk_free(f);
        return NULL;
    }
    return f;
}

/* Records in a record set, from the batch headers read through batch/'s
 * views (a partial last batch, as Fetch may return, is not counted; the
 * walk stops at a header batch/ does not accept). */
static uint64_t record_count(const uint8_t *p, size_t n)
{
    uint64_t records = 0;
    size_t pos = 0;
    mk_batch_view_t v;
    while (mk_batch_view_next(p, n, &pos, &v) == 1) {
        if (v.hdr.recordCount > 0)
            records += (uint64_t)v.hdr.recordCount;
    }
    return records;
}

/* The flow of client id `client` within tenant `tenant` (see the file
 * header).  Once the map holds TENANT_CLIENTS_MAX pairs, a new client counts
 * as its tenant's "(other)"; ids longer than the key buffer are cut. */
static flow_t *tenant_client_flow(mk_admin_stats_t *s, const char *tenant, const char *client)
{
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", tenant, client);
    flow_t *f = mk_map_get(&s->tenant_clients, key);
    if (f)
        return f;
    if (s->tenant_clients.count >= TENANT_CLIENTS_MAX)
        snprintf(key, sizeof(key), "%s/%s", tenant, OTHER_CLIENT);
    return flow_get(&s->tenant_clients, key, 0);
}

/* The flows one request counts into: broker, client id, tenant, and the
 * client id within its tenant. */
typedef struct req_flows_s {
    flow_t *broker, *client, *tenant, *tenant_client;
    const char *prefix;        /* the tenant's internal name prefix */
    bool cross_az;             /* the client is known to be in another AZ than the broker */
} req_flows_t;

static void flows_add(mk_admin_stats_t *s, const req_flows_t *rf, const char *topic, bool internal, int in_or_out,
                      uint64_t bytes, uint64_t records)
{
    int fb = in_or_out ? F_BYTES_OUT : F_BYTES_IN, fr = in_or_out ? F_RECORDS_OUT : F_RECORDS_IN;
    /* Topics are counted under their internal names, so two tenants' "orders" stay apart. */
    char key[512];
    if (topic && !internal && rf->prefix && rf->prefix[0]) {
        snprintf(key, sizeof(key), "%s%s", rf->prefix, topic);
        topic = key;
    }
    flow_t *t = topic ? flow_get(&s->topics, topic, 0) : NULL;
    flow_t *all[6] = {&s->total, rf->broker, rf->client, rf->tenant, rf->tenant_client, t};
    for (int i = 0; i < 6; i++)
        if (all[i]) {
            all[i]->v[fb] += bytes;
            all[i]->v[fr] += records;
        }
    if (rf->cross_az && rf->tenant)
        rf->tenant->xaz[XAZ_CLIENT] += bytes;
}

static void count_produce(mk_admin_stats_t *s, const mk_broker_req_info_t *info, const req_flows_t *rf)
{
    const mk_ProduceRequest_t *q = info->body;
    const mk_ProduceResponse_t *r = info->resp;
    /* The response mirrors the request, topic by topic, partition by partition. */
    for (int32_t i = 0; i < q->TopicData.count && i < r->Responses.count; i++) {
        const mk_ProduceRequest_TopicProduceData_t *qt = &q->TopicData.items[i];
        const mk_ProduceResponse_TopicProduceResponse_t *rt = &r->Responses.items[i];
        uint64_t bytes = 0, records = 0;
        for (int32_t j = 0; j < qt->PartitionData.count && j < rt->PartitionResponses.count; j++) {
            const mk_ProduceRequest_PartitionProduceData_t *qp = &qt->PartitionData.items[j];
            if (rt->PartitionResponses.items[j].ErrorCode != 0 || !qp->Records.ptr || qp->Records.len <= 0)
                continue;
            bytes += (uint64_t)qp->Records.len;
            records += record_count(qp->Records.ptr, (size_t)qp->Records.len);
        }
        if (bytes && qt->Name.ptr)
            flows_add(s, rf, qt->Name.ptr, false, 0, bytes, records);
    }
}

static void count_fetch(mk_admin_stats_t *s, const mk_broker_req_info_t *info, const req_flows_t *rf)
{
    const mk_FetchResponse_t *r = info->resp;
    for (int32_t i = 0; i < r->Responses.count; i++) {
        const mk_FetchResponse_FetchableTopicResponse_t *rt = &r->Responses.items[i];
        uint64_t bytes = 0, records = 0;
        for (int32_t j = 0; j < rt->Partitions.count; j++) {
            const mk_FetchResponse_PartitionData_t *rp = &rt->Partitions.items[j];
            if (rp->ErrorCode != 0 || !rp->Records.ptr || rp->Records.len <= 0)
                continue;
            bytes += (uint64_t)rp->Records.len;
            records += record_count(rp->Records.ptr, (size_t)rp->Records.len);
        }
        if (!bytes)
            continue;
        const char *name = rt->Topic.ptr;
        bool internal = false;
        if (!name || !*name) {
            mk_topic_t *t = mk_cluster_topic_find_id(s->c, rt->TopicId.b);
            name = t ? t->name : NULL;
            internal = true;
        }
        flows_add(s, rf, name, internal, 1, bytes, records);
    }
}

void mk_admin_stats_on_request(mk_admin_stats_t *s, const mk_broker_req_info_t *info)
{
    uint64_t now = mk_mono_ms();
    int bi = info->broker - 1;
    bool broker_ok = bi >= 0 && bi < s->nbrokers;
    flow_t *broker = broker_ok ? &s->brokers[bi] : NULL;
    flow_t *client = flow_get(&s->clients, info->client_id ? info->client_id : "", MK_ADMIN_MAX_CLIENTS);
    flow_t *tenant = flow_get(&s->tenants, info->tenant ? info->tenant : "default", MK_ADMIN_MAX_CLIENTS);
    if (tenant)
        tenant->v[F_REQUESTS]++;
    flow_t *tclient = tenant_client_flow(s, info->tenant ? info->tenant : "default",
                                         info->client_id ? info->client_id : "");
    if (tclient)
        tclient->v[F_REQUESTS]++;
    req_flows_t rf = {broker, client, tenant, tclient, info->tenant_prefix, info->client_cross_az};
    s->total.v[F_REQUESTS]++;
    s->rejected += info->rejected;
    if (broker)
        broker->v[F_REQUESTS]++;
    if (client)
        client->v[F_REQUESTS]++;
    if (broker_ok) {
        int key = info->api_key >= 0 && info->api_key < MK_API__MAX ? info->api_key : MK_API__MAX;
        lat_cell_t **slot = &s->cells[bi * API_SLOTS + key];
        if (!*slot)
            *slot = mk_calloc(1, sizeof(lat_cell_t));
        if (*slot)
            cell_add(*slot, info->latency_ns / 1000, info->rejected, now);
    }
    if (info->rejected || !info->body || !info->resp)
        return;
    if (info->api_key == MK_API_Produce)
        count_produce(s, info, &rf);
    else if (info->api_key == MK_API_Fetch)
        count_fetch(s, info, &rf);
}

/* The tenant flow of topic t: the owner of its internal name is the text
 * before its first '~' (tenant.h); a name without one, or starting with
 * one (an escaped default-tenant name), is the default tenant's. */
static flow_t *topic_tenant_flow(mk_admin_stats_t *s, const mk_topic_t *t)
{
    const char *tilde = strchr(t->name, '~');
    size_t n = tilde ? (size_t)(tilde - t->name) : 0;
    char id[MK_TENANT_ID_MAX + 1];
    if (n == 0 || n > MK_TENANT_ID_MAX)
        snprintf(id, sizeof(id), "default");
    else
        snprintf(id, sizeof(id), "%.*s", (int)n, t->name);
    return flow_get(&s->tenants, id, MK_ADMIN_MAX_CLIENTS);
}

void mk_admin_stats_on_replication(mk_admin_stats_t *s, const mk_topic_t *t, uint64_t bytes)
{
    /* Tenant flows are never freed before s, and topic ids are never
     * reused: the cached pointer stays right for its topic id. */
    if (!s->xaz_tenant || memcmp(s->xaz_topic_id, t->id, 16) != 0) {
        s->xaz_tenant = topic_tenant_flow(s, t);
        memcpy(s->xaz_topic_id, t->id, 16);
    }
    if (s->xaz_tenant)
        s->xaz_tenant->xaz[XAZ_REPLICATION] += bytes;
}

/* ================================================================ lifecycle */

int mk_admin_stats_new(mk_cluster_t *c, mk_admin_stats_t **out)
{
    bounds_init();
    mk_admin_stats_t *s = mk_calloc(1, sizeof(*s));
    if (!s)
        return MK_ERR_NOMEM;
    s->c = c;
    const char *price = mk_cluster_config_get(mk_cluster_config(c), "minikora.cost.cross.az.per.gb");
    s->price_per_gb = price ? strtod(price, NULL) : 0;
    s->nbrokers = MK_CLUSTER_MAX_BROKERS;
    s->cells = mk_calloc((size_t)s->nbrokers * API_SLOTS, sizeof(lat_cell_t *));
    s->brokers = mk_calloc((size_t)s->nbrokers, sizeof(flow_t));
    if (!s->cells || !s->brokers) {
        mk_free(s->cells);
        mk_free(s->brokers);
        mk_free(s);
        return MK_ERR_NOMEM;
    }
    mk_map_init(&s->topics);
    mk_map_init(&s->clients);
    mk_map_init(&s->tenants);
    mk_map_init(&s->tenant_clients);
    uint64_t now = mk_mono_ms();
    for (int i = 0; i < RATE_SLOTS; i++)
        s->ring_ms[i] = now;
    *out = s;
    return 0;
}

static void map_free_values(mk_map_t *m)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(m, &it, &k, &v))
        mk_free(v);
    mk_map_free(m);
}

void mk_admin_stats_free(mk_admin_stats_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nbrokers * API_SLOTS; i++)
        mk_free(s->cells[i]);
    mk_free(s->cells);
    mk_free(s->brokers);
    map_free_values(&s->topics);
    map_free_values(&s->clients);
    map_free_values(&s->tenants);
    map_free_values(&s->tenant_clients);
    mk_free(s);
}

uint64_t mk_admin_stats_rejected(const mk_admin_stats_t *s) { return s->rejected; }

static void flow_sample(flow_t *f, int pos) { memcpy(f->ring[pos], f->v, sizeof(f->v)); }

void mk_admin_stats_prune(mk_admin_stats_t *s)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&s->topics, &it, &k, &v))
        if (!mk_cluster_topic_find(s->c, k)) {
            mk_map_del(&s->topics, k);
            mk_free(v);
        }
}

void mk_admin_stats_tick(mk_admin_stats_t *s, uint64_t now_ms)
{
    mk_admin_stats_prune(s);
    int pos = (s->ring_pos + 1) % RATE_SLOTS;
    if (pos == 0)
        s->ring_full = true;
    s->ring_pos = pos;
    s->ring_ms[pos] = now_ms;
    flow_sample(&s->total, pos);
    for (int i = 0; i < s->nbrokers; i++)
        flow_sample(&s->brokers[i], pos);
    mk_map_t *maps[4] = {&s->topics, &s->clients, &s->tenants, &s->tenant_clients};
    for (int m = 0; m < 4; m++) {
        size_t it = 0;
        const char *k;
        void *v;
        while (mk_map_next(maps[m], &it, &k, &v))
            flow_sample(v, pos);
    }
}

/* ==================================================================== JSON */

/* A flow's rate of one field over the ring (the oldest sample is ~10 s old). */
static double flow_rate(const mk_admin_stats_t *s, const flow_t *f, int field, uint64_t now_ms)
{
    int oldest = s->ring_full ? (s->ring_pos + 1) % RATE_SLOTS : 0;
    double secs = (double)(now_ms - s->ring_ms[oldest]) / 1000.0;
    return secs > 0.001 ? (double)(f->v[field] - f->ring[oldest][field]) / secs : 0;
}

void mk_admin_stats_rate(mk_admin_stats_t *s, int32_t broker, const char *topic, mk_admin_rate_t *out)
{
    const flow_t *f = topic ? mk_map_get(&s->topics, topic)
                            : broker >= 1 && broker <= s->nbrokers ? &s->brokers[broker - 1] : NULL;
    uint64_t now = mk_mono_ms();
    out->bytes_in = f ? flow_rate(s, f, F_BYTES_IN, now) : 0;
    out->bytes_out = f ? flow_rate(s, f, F_BYTES_OUT, now) : 0;
    out->requests = f ? flow_rate(s, f, F_REQUESTS, now) : 0;
}

static json_t *flow_json(mk_admin_stats_t *s, const flow_t *f, uint64_t now_ms)
{
    json_t *j = json_object();
    for (int i = 0; i < F_COUNT; i++) {
        char key[40];
        double rate = flow_rate(s, f, i, now_ms);
        snprintf(key, sizeof(key), "%s_per_sec", flow_names[i]);
        json_object_set_new(j, key, json_real(round(rate * 100) / 100));
        snprintf(key, sizeof(key), "%s_total", flow_names[i]);
        json_object_set_new(j, key, json_integer((json_int_t)f->v[i]));
    }
    return j;
}

static uint64_t xaz_total(const flow_t *f)
{
    uint64_t t = 0;
    for (int i = 0; i < XAZ_COUNT; i++)
        t += f->xaz[i];
    return t;
}

static double xaz_cost(const mk_admin_stats_t *s, uint64_t bytes) { return (double)bytes / 1e9 * s->price_per_gb; }

/* One entry per flow of m, named under label; with cost (tenants), the
 * cross-AZ bytes and their cost too. */
/* A flow as JSON; with cost (tenants) its cross-AZ bytes and their cost too. */
static json_t *flow_cost_json(mk_admin_stats_t *s, const flow_t *f, bool cost, uint64_t now)
{
    json_t *j = flow_json(s, f, now);
    if (cost) {
        uint64_t bytes = xaz_total(f);
        json_object_set_new(j, "cross_az_bytes", json_integer((json_int_t)bytes));
        json_object_set_new(j, "cross_az_cost", json_real(xaz_cost(s, bytes)));
    }
    return j;
}

static json_t *flow_map_json(mk_admin_stats_t *s, mk_map_t *m, const char *label, bool cost, uint64_t now)
{
    json_t *arr = json_array();
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(m, &it, &k, &v)) {
        json_t *j = flow_cost_json(s, v, cost, now);
        json_t *name = json_string(k);
        json_object_set_new(j, label, name ? name : json_string("?"));
        json_array_append_new(arr, j);
    }
    return arr;
}

json_t *mk_admin_stats_tenant_cross_az_json(mk_admin_stats_t *s, const char *tenant)
{
    static const flow_t none;
    const flow_t *f = mk_map_get(&s->tenants, tenant);
    if (!f)
        f = &none;
    uint64_t bytes = xaz_total(f);
    return json_pack("{s:I, s:I, s:I, s:f, s:f}", "bytes", (json_int_t)bytes, "replication_bytes",
                     (json_int_t)f->xaz[XAZ_REPLICATION], "client_bytes", (json_int_t)f->xaz[XAZ_CLIENT], "cost",
                     xaz_cost(s, bytes), "price_per_gb", s->price_per_gb);
}

json_t *mk_admin_stats_rates_json(mk_admin_stats_t *s)
{
    uint64_t now = mk_mono_ms();
    int oldest = s->ring_full ? (s->ring_pos + 1) % RATE_SLOTS : 0;
    json_t *brokers = json_array();
    for (int i = 0; i < mk_cluster_broker_count(s->c); i++) {
        json_t *j = flow_json(s, &s->brokers[i], now);
        json_object_set_new(j, "broker", json_integer(i + 1));
        json_array_append_new(brokers, j);
    }
    return json_pack("{s:f, s:o, s:o, s:o, s:o, s:o}", "window_sec", (double)(now - s->ring_ms[oldest]) / 1000.0,
                     "cluster", flow_json(s, &s->total, now), "brokers", brokers, "topics",
                     flow_map_json(s, &s->topics, "topic", false, now), "clients",
                     flow_map_json(s, &s->clients, "client_id", false, now), "tenants",
                     flow_map_json(s, &s->tenants, "tenant", true, now));
}

json_t *mk_admin_stats_tenant_json(mk_admin_stats_t *s, const char *tenant)
{
    static const flow_t none;
    const flow_t *f = mk_map_get(&s->tenants, tenant);
    return flow_cost_json(s, f ? f : &none, true, mk_mono_ms());
}

/* A client of a tenant with its sort keys (bytes in + out per second, then
 * since start). */
typedef struct ranked_s {
    const char *name;          /* the client id (in the map's key) */
    const flow_t *f;
    double rate, total;
} ranked_t;

static int ranked_cmp(const void *pa, const void *pb)
{
    const ranked_t *a = pa, *b = pb;
    if (a->rate != b->rate)
        return a->rate < b->rate ? 1 : -1;
    if (a->total != b->total)
        return a->total < b->total ? 1 : -1;
    return strcmp(a->name, b->name);
}

json_t *mk_admin_stats_tenant_clients_json(mk_admin_stats_t *s, const char *tenant, int n)
{
    uint64_t now = mk_mono_ms();
    size_t plen = strlen(tenant);
    ranked_t *r = mk_calloc(s->tenant_clients.count + 1, sizeof(*r));
    json_t *arr = json_array();
    if (!r || !arr) {
        mk_free(r);
        json_decref(arr);
        return NULL;
    }
    size_t count = 0, it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&s->tenant_clients, &it, &k, &v)) {
        if (strncmp(k, tenant, plen) != 0 || k[plen] != '/')
            continue;
        const flow_t *f = v;
        r[count++] = (ranked_t){k + plen + 1, f, flow_rate(s, f, F_BYTES_IN, now) + flow_rate(s, f, F_BYTES_OUT, now),
                                (double)(f->v[F_BYTES_IN] + f->v[F_BYTES_OUT])};
    }
    qsort(r, count, sizeof(*r), ranked_cmp);
    /* The top n, each as /v1/rates shows a client. */
    for (size_t i = 0; i < count && (int)i < n; i++) {
        json_t *j = flow_json(s, r[i].f, now);
        json_t *name = json_string(r[i].name);
        json_object_set_new(j, "client_id", name ? name : json_string("?"));
        json_array_append_new(arr, j);
    }
    mk_free(r);
    return arr;
}

/* "Produce" for an API key ("ApiKey42" when unknown). */
static void api_name(int key, char *out, size_t n)
{
    const mk_pmsg_t *m = key < MK_API__MAX ? mk_proto_msg_find((int16_t)key, true) : NULL;
    if (m) {
        size_t len = strlen(m->name);
        if (len > 7 && strcmp(m->name + len - 7, "Request") == 0)
            len -= 7;
        snprintf(out, n, "%.*s", (int)len, m->name);
    } else {
        snprintf(out, n, "unknown");
    }
}

json_t *mk_admin_stats_latency_json(mk_admin_stats_t *s, int32_t broker_filter)
{
    uint64_t now = mk_mono_ms();
    json_t *brokers = json_array();
    for (int b = 0; b < mk_cluster_broker_count(s->c); b++) {
        if (broker_filter >= 0 && broker_filter != b + 1)
            continue;
        json_t *apis = json_array();
        for (int k = 0; k < API_SLOTS; k++) {
            lat_cell_t *c = s->cells[b * API_SLOTS + k];
            if (!c)
                continue;
            lat_win_t w;
            cell_window(c, now, &w);
            char name[64];
            api_name(k, name, sizeof(name));
            /* No request in the window: no percentile (null), not a latency of 0. */
#define LAT_MS(v) (w.n ? json_real((v) / 1000.0) : json_null())
            json_array_append_new(
                apis, json_pack("{s:s, s:i, s:i, s:o, s:o, s:o, s:o, s:I, s:I}", "api", name, "api_key",
                                k < MK_API__MAX ? k : -1, "count", (int)w.n, "p50_ms",
                                LAT_MS(mk_admin_hist_quantile(w.counts, w.n, 0.50, w.max_us)), "p95_ms",
                                LAT_MS(mk_admin_hist_quantile(w.counts, w.n, 0.95, w.max_us)), "p99_ms",
                                LAT_MS(mk_admin_hist_quantile(w.counts, w.n, 0.99, w.max_us)), "max_ms",
                                LAT_MS((double)w.max_us), "total_count", (json_int_t)c->count, "rejected_total",
                                (json_int_t)c->rejected));
#undef LAT_MS
        }
        json_array_append_new(brokers, json_pack("{s:i, s:o}", "broker", b + 1, "apis", apis));
    }
    return json_pack("{s:i, s:o}", "window_sec", LAT_WINDOWS * LAT_WINDOW_MS / 1000, "brokers", brokers);
}

/* ============================================================== Prometheus */

void mk_prom_escape(mk_buf_t *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            mk_buf_put(out, "\\\\", 2);
        else if (*s == '"')
            mk_buf_put(out, "\\\"", 2);
        else if (*s == '\n')
            mk_buf_put(out, "\\n", 2);
        else if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            mk_buf_put(out, "?", 1); /* keep the text valid UTF-8 */
        else
            mk_buf_put(out, s, 1);
    }
}

void mk_prom_help(mk_buf_t *out, const char *name, const char *type, const char *help)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    mk_buf_put(out, line, (size_t)MK_MIN(n, (int)sizeof(line) - 1));
}

static void put_value(mk_buf_t *out, double v)
{
    char num[64];
    int n;
    if (isinf(v)) {
        n = snprintf(num, sizeof(num), " %s\n", v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        n = snprintf(num, sizeof(num), " %.0f\n", v);
    } else if (fabs(v) < 1e-4 && fabs(v) >= 1e-30) {
        /* Small values (a tenant's cost in a test: 6.5e-07) as plain decimals
         * with 10 significant digits, never "e-07": easier to read and to match. */
        int prec = 9 - (int)floor(log10(fabs(v)));
        n = snprintf(num, sizeof(num), " %.*f", prec, v);
        while (n > 2 && num[n - 1] == '0')
            n--;
        num[n++] = '\n';
    } else {
        /* 10 digits: a cost counter of thousands still moves by fractions of a cent. */
        n = snprintf(num, sizeof(num), " %.10g\n", v);
    }
    mk_buf_put(out, num, (size_t)n);
}

void mk_prom_sample(mk_buf_t *out, const char *name, double value, ...)
{
    mk_buf_put(out, name, strlen(name));
    va_list ap;
    va_start(ap, value);
    const char *k = va_arg(ap, const char *);
    bool first = true;
    while (k) {
        const char *v = va_arg(ap, const char *);
        mk_buf_put(out, first ? "{" : ",", 1);
        mk_buf_put(out, k, strlen(k));
        mk_buf_put(out, "=\"", 2);
        mk_prom_escape(out, v ? v : "");
        mk_buf_put(out, "\"", 1);
        first = false;
        k = va_arg(ap, const char *);
    }
    va_end(ap);
    if (!first)
        mk_buf_put(out, "}", 1);
    put_value(out, value);
}

/* Prometheus buckets, in microseconds (each one is a histogram bound). */
static const uint64_t prom_le_us[] = {100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000,
                                      100000, 200000, 500000, 1000000, 2000000, 5000000, 10000000};

static void flows_prom(mk_buf_t *o, mk_map_t *m, const char *metric, int field, const char *label)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(m, &it, &k, &v))
        mk_prom_sample(o, metric, (double)((flow_t *)v)->v[field], label, k, NULL);
}

void mk_admin_stats_prometheus(mk_admin_stats_t *s, mk_buf_t *o)
{
    char id[16], api[64], le[32];
    /* Requests and latency per broker and API. */
    mk_prom_help(o, "kafka_network_requestmetrics_requests_total", "counter",
                 "Requests handled, per broker and API (Kafka RequestMetrics RequestsPerSec).");
    for (int b = 0; b < mk_cluster_broker_count(s->c); b++)
        for (int k = 0; k < API_SLOTS; k++) {
            lat_cell_t *c = s->cells[b * API_SLOTS + k];
            if (!c)
                continue;
            snprintf(id, sizeof(id), "%d", b + 1);
            api_name(k, api, sizeof(api));
            mk_prom_sample(o, "kafka_network_requestmetrics_requests_total", (double)c->count, "broker", id,
                           "request", api, NULL);
        }
    mk_prom_help(o, "minikora_requests_rejected_total", "counter",
                 "Requests answered by closing the connection (malformed or unsupported).");
    for (int b = 0; b < mk_cluster_broker_count(s->c); b++) {
        uint64_t rej = 0;
        for (int k = 0; k < API_SLOTS; k++)
            if (s->cells[b * API_SLOTS + k])
                rej += s->cells[b * API_SLOTS + k]->rejected;
        snprintf(id, sizeof(id), "%d", b + 1);
        mk_prom_sample(o, "minikora_requests_rejected_total", (double)rej, "broker", id, NULL);
    }
    /* Kafka's RequestMetrics TotalTimeMs, in seconds as Prometheus names durations. */
    mk_prom_help(o, "kafka_network_requestmetrics_totaltime_seconds", "histogram",
                 "Request time from frame received to response queued, in seconds "
                 "(Kafka RequestMetrics TotalTimeMs).");
    for (int b = 0; b < mk_cluster_broker_count(s->c); b++)
        for (int k = 0; k < API_SLOTS; k++) {
            lat_cell_t *c = s->cells[b * API_SLOTS + k];
            if (!c)
                continue;
            snprintf(id, sizeof(id), "%d", b + 1);
            api_name(k, api, sizeof(api));
            uint64_t cum = 0;
            int bi = 0;
            for (size_t p = 0; p < MK_ARRAY_LEN(prom_le_us); p++) {
                while (bi < MK_ADMIN_HIST_BUCKETS && bounds[bi] <= prom_le_us[p])
                    cum += c->cum[bi++];
                snprintf(le, sizeof(le), "%g", (double)prom_le_us[p] / 1e6);
                mk_prom_sample(o, "kafka_network_requestmetrics_totaltime_seconds_bucket", (double)cum, "broker", id,
                               "request", api, "le", le, NULL);
            }
            mk_prom_sample(o, "kafka_network_requestmetrics_totaltime_seconds_bucket", (double)c->count, "broker",
                           id, "request", api, "le", "+Inf", NULL);
            mk_prom_sample(o, "kafka_network_requestmetrics_totaltime_seconds_sum", (double)c->sum_us / 1e6, "broker",
                           id, "request", api, NULL);
            mk_prom_sample(o, "kafka_network_requestmetrics_totaltime_seconds_count", (double)c->count, "broker", id,
                           "request", api, NULL);
        }

    /* Bytes and records, per topic (Kafka's BrokerTopicMetrics), per broker, per client. */
    static const struct { const char *name; int field; const char *help; } topic_metrics[] = {
        {"kafka_server_brokertopicmetrics_bytesin_total", F_BYTES_IN, "Record bytes appended by leaders, per topic."},
        {"kafka_server_brokertopicmetrics_bytesout_total", F_BYTES_OUT, "Record bytes sent to consumers, per topic."},
        {"kafka_server_brokertopicmetrics_messagesin_total", F_RECORDS_IN, "Records appended by leaders, per topic."},
        {"minikora_topic_messages_out_total", F_RECORDS_OUT, "Records sent to consumers, per topic."},
    };
    for (size_t m = 0; m < MK_ARRAY_LEN(topic_metrics); m++) {
        mk_prom_help(o, topic_metrics[m].name, "counter", topic_metrics[m].help);
        flows_prom(o, &s->topics, topic_metrics[m].name, topic_metrics[m].field, "topic");
    }
    static const struct { const char *name; int field; } broker_metrics[] = {
        {"minikora_broker_bytes_in_total", F_BYTES_IN},     {"minikora_broker_bytes_out_total", F_BYTES_OUT},
        {"minikora_broker_messages_in_total", F_RECORDS_IN}, {"minikora_broker_messages_out_total", F_RECORDS_OUT},
    };
    for (size_t m = 0; m < MK_ARRAY_LEN(broker_metrics); m++) {
        mk_prom_help(o, broker_metrics[m].name, "counter", "Record bytes or records in/out, per broker.");
        for (int b = 0; b < mk_cluster_broker_count(s->c); b++) {
            snprintf(id, sizeof(id), "%d", b + 1);
            mk_prom_sample(o, broker_metrics[m].name, (double)s->brokers[b].v[broker_metrics[m].field], "broker", id,
                           NULL);
        }
    }
    static const struct { const char *name; int field; } client_metrics[] = {
        {"minikora_client_bytes_in_total", F_BYTES_IN},   {"minikora_client_bytes_out_total", F_BYTES_OUT},
        {"minikora_client_requests_total", F_REQUESTS},
    };
    for (size_t m = 0; m < MK_ARRAY_LEN(client_metrics); m++) {
        mk_prom_help(o, client_metrics[m].name, "counter",
                     "Per client id (at most 256 ids; the rest count as \"(other)\").");
        flows_prom(o, &s->clients, client_metrics[m].name, client_metrics[m].field, "client_id");
    }
    static const struct { const char *name; int field; } tenant_metrics[] = {
        {"minikora_tenant_bytes_in_total", F_BYTES_IN},     {"minikora_tenant_bytes_out_total", F_BYTES_OUT},
        {"minikora_tenant_messages_in_total", F_RECORDS_IN}, {"minikora_tenant_messages_out_total", F_RECORDS_OUT},
        {"minikora_tenant_requests_total", F_REQUESTS},
    };
    for (size_t m = 0; m < MK_ARRAY_LEN(tenant_metrics); m++) {
        mk_prom_help(o, tenant_metrics[m].name, "counter", "Per tenant (logical cluster).");
        flows_prom(o, &s->tenants, tenant_metrics[m].name, tenant_metrics[m].field, "tenant");
    }
    size_t it = 0;
    const char *k;
    void *v;
    mk_prom_help(o, "minikora_tenant_cross_az_bytes_total", "counter",
                 "Bytes of the tenant that crossed AZs: replication (leader to followers in other AZs) and "
                 "client (Produce/Fetch records of clients whose known rack is another AZ).");
    while (mk_map_next(&s->tenants, &it, &k, &v))
        for (int x = 0; x < XAZ_COUNT; x++)
            mk_prom_sample(o, "minikora_tenant_cross_az_bytes_total", (double)((flow_t *)v)->xaz[x], "tenant", k,
                           "kind", xaz_names[x], NULL);
    mk_prom_help(o, "minikora_tenant_cross_az_cost_total", "counter",
                 "Cost of the tenant's cross-AZ bytes: bytes / 1e9 * minikora.cost.cross.az.per.gb.");
    it = 0;
    while (mk_map_next(&s->tenants, &it, &k, &v))
        mk_prom_sample(o, "minikora_tenant_cross_az_cost_total", xaz_cost(s, xaz_total(v)), "tenant", k, NULL);
}
