/*
 * model.c -- what the TUI knows about the cluster, built from the admin
 * API's JSON (jansson) plus the history the TUI keeps itself.
 *
 * Parsing is tolerant by design: the TUI may be newer or older than the
 * server it watches, so a missing field takes a neutral default (0, "",
 * -1) and an unknown field is ignored.  Only a body that is not JSON, or a
 * top level that is not the expected object, is refused; the model is then
 * left as it was.  Every string is copied into a fixed buffer and cleaned
 * to printable ASCII (clean_copy), so the drawing code can count bytes as
 * columns.
 *
 * Each answer replaces its part of the model whole (brokers, topics, rates,
 * tenants, ...), except two histories the API does not keep for us: sparkline rings
 * (one sample per rates/latency answer) and the event ring, which grows by
 * GET /v1/events?since=<last seq> and starts over if the server's sequence
 * goes backwards (a restarted cluster).
 */
#include "tui_int.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ================================================================ helpers */

static void clean_copy(char *out, size_t n, const char *s)
{
    size_t i = 0;
    if (n == 0)
        return;
    for (; s && s[i] && i + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[i] = 0;
}

/* clean_copy(), but text that does not fit ends in "..." (never cut silently). */
static void clean_copy_marked(char *out, size_t n, const char *s)
{
    clean_copy(out, n, s);
    size_t len = strlen(out);
    if (s && s[len] && n >= 4)
        memcpy(out + (len >= 3 ? len - 3 : 0), "...", 4);
}

static void jcopy(json_t *o, const char *key, char *out, size_t n)
{
    json_t *v = json_object_get(o, key);
    clean_copy(out, n, json_is_string(v) ? json_string_value(v) : "");
}

static int64_t jint(json_t *o, const char *key, int64_t def)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return def;
}

static double jnum(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static int32_t jint32(json_t *o, const char *key, int32_t def)
{
    int64_t v = jint(o, key, def);
    return v < INT32_MIN || v > INT32_MAX ? def : (int32_t)v;
}

/* Parse body as a JSON object; NULL with err set otherwise. */
static json_t *load_object(const char *body, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!j) {
        snprintf(err, errlen, "bad JSON from the admin API: %s", je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        snprintf(err, errlen, "unexpected JSON from the admin API (not an object)");
        json_decref(j);
        return NULL;
    }
    return j;
}

/* A zeroed array of n elements of size sz (n may be 0: a 1-element array
 * so that NULL always means out of memory). */
static void *array_new(size_t n, size_t sz) { return mk_calloc(n ? n : 1, sz); }

/* ================================================================ history */

void mk_tui_hist_push(mk_tui_hist_t *h, double v)
{
    h->v[h->pos] = v;
    h->pos = (h->pos + 1) % MK_TUI_HISTORY;
    if (h->n < MK_TUI_HISTORY)
        h->n++;
}

double mk_tui_hist_get(const mk_tui_hist_t *h, int i)
{
    if (i < 0 || i >= h->n)
        return 0;
    return h->v[(h->pos - 1 - i + 2 * MK_TUI_HISTORY) % MK_TUI_HISTORY];
}

/* ============================================================ model life */

int mk_tui_model_init(mk_tui_model_t *m)
{
    memset(m, 0, sizeof(*m));
    m->events = mk_calloc(MK_TUI_EVENTS, sizeof(mk_tui_event_t));
    m->tail = mk_calloc(MK_TUI_TAIL, sizeof(mk_tui_record_t));
    m->tail_next = -1;
    return m->events && m->tail ? 0 : MK_ERR_NOMEM;
}

static void free_groups(mk_tui_group_t *g, int n)
{
    for (int i = 0; i < n; i++)
        mk_free(g[i].hist);
    mk_free(g);
}

static void group_detail_free(mk_tui_group_detail_t *d)
{
    mk_free(d->members);
    for (int i = 0; i < d->noffsets; i++)
        mk_free(d->offsets[i].hist);
    mk_free(d->offsets);
    mk_free(d->hist);
    memset(d, 0, sizeof(*d));
}

static void free_brokers(mk_tui_broker_t *b, int n)
{
    for (int i = 0; i < n; i++)
        mk_free(b[i].hist);
    mk_free(b);
}

static void tenant_detail_free(mk_tui_tenant_detail_t *d)
{
    mk_free(d->topics);
    mk_free(d->groups);
    mk_free(d->clients);
    mk_free(d->qbrokers);
    memset(d, 0, sizeof(*d));
}

void mk_tui_model_free(mk_tui_model_t *m)
{
    free_brokers(m->brokers, m->nbrokers);
    mk_free(m->azs);
    mk_free(m->cells);
    mk_free(m->topics);
    mk_free(m->parts);
    mk_free(m->topic_flows);
    mk_free(m->client_flows);
    mk_free(m->tenant_flows);
    mk_free(m->lat);
    free_groups(m->groups, m->ngroups);
    group_detail_free(&m->group);
    mk_free(m->tail);
    mk_free(m->tenants);
    tenant_detail_free(&m->tenant);
    mk_free(m->health);
    mk_free(m->storage);
    mk_free(m->events);
    memset(m, 0, sizeof(*m));
}

mk_tui_broker_t *mk_tui_model_broker(mk_tui_model_t *m, int32_t id)
{
    for (int i = 0; i < m->nbrokers; i++)
        if (m->brokers[i].id == id)
            return &m->brokers[i];
    return NULL;
}

const mk_tui_named_flow_t *mk_tui_model_topic_flow(const mk_tui_model_t *m, const char *topic)
{
    for (int i = 0; i < m->ntopic_flows; i++)
        if (strcmp(m->topic_flows[i].name, topic) == 0)
            return &m->topic_flows[i];
    return NULL;
}

const mk_tui_flow_t *mk_tui_model_tenant_flow(const mk_tui_model_t *m, const char *id)
{
    for (int i = 0; i < m->ntenant_flows; i++)
        if (strcmp(m->tenant_flows[i].name, id) == 0)
            return &m->tenant_flows[i].flow;
    for (int i = 0; i < m->ntenants; i++)
        if (strcmp(m->tenants[i].id, id) == 0)
            return m->tenants[i].have_flow ? &m->tenants[i].flow : NULL;
    return NULL;
}

const mk_tui_event_t *mk_tui_model_event(const mk_tui_model_t *m, int i)
{
    if (i < 0 || i >= m->nevents)
        return NULL;
    return &m->events[(m->events_head + m->nevents - 1 - i) % MK_TUI_EVENTS];
}

/* ============================================================== cluster */

/* One entry of `cells`: id, and the optional load, partitions and tenants. */
static void cell_parse(json_t *o, int32_t def_id, mk_tui_cell_t *c)
{
    c->id = jint32(o, "id", def_id);
    json_t *load = json_object_get(o, "load");
    c->has_load = json_is_number(load);
    c->load = c->has_load ? json_number_value(load) : 0;
    c->partitions = jint32(o, "partitions", -1);
    json_t *ts = json_object_get(o, "tenants");
    c->has_tenants = json_is_array(ts);
    size_t len = 0;
    for (size_t i = 0; i < json_array_size(ts); i++) {
        json_t *v = json_array_get(ts, i);
        if (!json_is_string(v))
            continue;
        char id[MK_TUI_TENANT_ID];
        clean_copy(id, sizeof(id), json_string_value(v));
        int w = snprintf(c->tenants + len, sizeof(c->tenants) - len, "%s%s", len ? ", " : "", id);
        if (w < 0 || (size_t)w >= sizeof(c->tenants) - len)
            break; /* cut: the view shows what fits anyway */
        len += (size_t)w;
    }
}

static int apply_cluster(mk_tui_model_t *m, json_t *j)
{
    json_t *brokers = json_object_get(j, "brokers"), *azs = json_object_get(j, "azs"),
           *cells = json_object_get(j, "cells");
    size_t nb = json_array_size(brokers), na = json_array_size(azs), nc = json_array_size(cells);
    mk_tui_broker_t *b = array_new(nb, sizeof(*b));
    mk_tui_az_t *z = array_new(na, sizeof(*z));
    mk_tui_cell_t *c = array_new(nc, sizeof(*c));
    if (!b || !z || !c) {
        mk_free(b);
        mk_free(z);
        mk_free(c);
        return MK_ERR_NOMEM;
    }
    for (size_t i = 0; i < nb; i++) {
        json_t *o = json_array_get(brokers, i);
        mk_tui_broker_t *x = &b[i];
        x->id = jint32(o, "id", -1);
        jcopy(o, "az", x->az, sizeof(x->az));
        x->cell = jint32(o, "cell", -1);
        jcopy(o, "host", x->host, sizeof(x->host));
        x->port = jint32(o, "port", 0);
        x->running = json_is_true(json_object_get(o, "running"));
        jcopy(o, "state", x->state, sizeof(x->state));
        if (!x->state[0])
            snprintf(x->state, sizeof(x->state), "%s", x->running ? "running" : "stopped");
        x->leaders = jint32(o, "leaders", 0);
        x->replicas = jint32(o, "replicas", 0);
        x->urp = jint32(o, "under_replicated", 0);
        x->conns = jint32(o, "connections", 0);
        /* Carry what the rates answers gave over to the new array. */
        mk_tui_broker_t *old = mk_tui_model_broker(m, x->id);
        if (old) {
            x->have_flow = old->have_flow;
            x->flow = old->flow;
            x->hist = old->hist;
            old->hist = NULL;
        }
    }
    for (size_t i = 0; i < na; i++) {
        json_t *o = json_array_get(azs, i);
        jcopy(o, "name", z[i].name, sizeof(z[i].name));
        z[i].total = (int32_t)json_array_size(json_object_get(o, "brokers"));
        z[i].running = jint32(o, "running", 0);
    }
    for (size_t i = 0; i < nc; i++)
        cell_parse(json_array_get(cells, i), (int32_t)i, &c[i]);
    /* An API without azs/cells lists: derive them from the brokers. */
    if (na == 0 && nb > 0) {
        mk_free(z);
        z = array_new(nb, sizeof(*z));
        if (!z) {
            free_brokers(b, (int)nb);
            mk_free(c);
            return MK_ERR_NOMEM;
        }
        for (size_t i = 0; i < nb; i++) {
            size_t k = 0;
            while (k < na && strcmp(z[k].name, b[i].az) != 0)
                k++;
            if (k == na)
                snprintf(z[na++].name, sizeof(z[0].name), "%s", b[i].az);
            z[k].total++;
            z[k].running += b[i].running;
        }
    }
    if (nc == 0 && nb > 0) {
        mk_free(c);
        c = array_new(nb, sizeof(*c));
        if (!c) {
            free_brokers(b, (int)nb);
            mk_free(z);
            return MK_ERR_NOMEM;
        }
        for (size_t i = 0; i < nb; i++) {
            size_t k = 0;
            while (k < nc && c[k].id != b[i].cell)
                k++;
            if (k == nc) {
                c[nc].id = b[i].cell;
                c[nc++].partitions = -1;
            }
        }
    }
    free_brokers(m->brokers, m->nbrokers);
    mk_free(m->azs);
    mk_free(m->cells);
    m->brokers = b;
    m->nbrokers = (int)nb;
    m->azs = z;
    m->nazs = (int)na;
    m->cells = c;
    m->ncells = (int)nc;
    jcopy(j, "cluster_id", m->cluster_id, sizeof(m->cluster_id));
    jcopy(j, "version", m->version, sizeof(m->version));
    m->controller = jint32(j, "controller", -1);
    m->cell_size = jint32(j, "cell_size", 0);
    m->topics_count = jint32(j, "topics", 0);
    m->partitions_count = jint32(j, "partitions", 0);
    m->urp = jint32(j, "under_replicated_partitions", 0);
    m->offline = jint32(j, "offline_partitions", 0);
    m->uptime_ms = jint(j, "uptime_ms", 0);
    int up = 0;
    for (int i = 0; i < m->nbrokers; i++)
        up += m->brokers[i].running;
    m->brokers_running = jint32(j, "brokers_running", up);
    m->have_cluster = true;
    return 0;
}

/* =============================================================== topics */

static int apply_topics(mk_tui_model_t *m, json_t *j)
{
    json_t *arr = json_object_get(j, "topics");
    size_t n = json_array_size(arr);
    mk_tui_topic_t *t = array_new(n, sizeof(*t));
    if (!t)
        return MK_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        jcopy(o, "name", t[i].name, sizeof(t[i].name));
        t[i].partitions = jint32(o, "partitions", 0);
        t[i].rf = jint32(o, "replication_factor", 0);
        t[i].cell = jint32(o, "cell", -1);
        t[i].urp = jint32(o, "under_replicated_partitions", 0);
        t[i].offline = jint32(o, "offline_partitions", 0);
        t[i].size = jint(o, "size_bytes", 0);
        t[i].messages = jint(o, "messages", 0);
    }
    /* Sorted by name: the list must not jump about between polls. */
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && strcmp(t[k - 1].name, t[k].name) > 0; k--) {
            mk_tui_topic_t tmp = t[k];
            t[k] = t[k - 1];
            t[k - 1] = tmp;
        }
    mk_free(m->topics);
    m->topics = t;
    m->ntopics = (int)n;
    m->have_topics = true;
    mk_tui_model_prune_parts(m);
    return 0;
}

void mk_tui_model_prune_parts(mk_tui_model_t *m)
{
    int o = 0;
    for (int i = 0; i < m->nparts; i++) {
        bool listed = false;
        for (int k = 0; k < m->ntopics && !listed; k++)
            listed = strcmp(m->topics[k].name, m->parts[i].topic) == 0;
        if (listed)
            m->parts[o++] = m->parts[i];
    }
    m->nparts = o;
}

static void id_list(json_t *arr, int32_t *out, int32_t *n)
{
    *n = 0;
    for (size_t i = 0; i < json_array_size(arr) && *n < MK_TUI_MAX_REPLICAS; i++) {
        json_t *v = json_array_get(arr, i);
        if (json_is_integer(v))
            out[(*n)++] = (int32_t)json_integer_value(v);
    }
}

/* One topic's partitions replace what the model held for that topic. */
static int apply_topic(mk_tui_model_t *m, const char *name, json_t *j)
{
    json_t *t = json_object_get(j, "topic");
    if (!json_is_object(t))
        t = j;
    char clean[MK_TUI_NAME];
    clean_copy(clean, sizeof(clean), name);
    json_t *arr = json_object_get(t, "partition_details");
    if (!arr)
        arr = json_object_get(t, "partitions");
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    int keep = 0;
    for (int i = 0; i < m->nparts; i++)
        keep += strcmp(m->parts[i].topic, clean) != 0;
    mk_tui_part_t *p = array_new((size_t)keep + n, sizeof(*p));
    if (!p)
        return MK_ERR_NOMEM;
    int o = 0;
    for (int i = 0; i < m->nparts; i++)
        if (strcmp(m->parts[i].topic, clean) != 0)
            p[o++] = m->parts[i];
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(arr, i);
        mk_tui_part_t *q = &p[o++];
        snprintf(q->topic, sizeof(q->topic), "%s", clean);
        q->partition = jint32(x, "partition", (int32_t)i);
        q->leader = jint32(x, "leader", -1);
        q->epoch = jint32(x, "leader_epoch", -1);
        id_list(json_object_get(x, "replicas"), q->rep, &q->nrep);
        id_list(json_object_get(x, "isr"), q->isr, &q->nisr);
        q->hw = jint(x, "high_watermark", -1);
        q->leo = jint(x, "log_end_offset", -1);
        q->size = jint(x, "size_bytes", -1);
    }
    mk_free(m->parts);
    m->parts = p;
    m->nparts = o;
    return 0;
}

/* ================================================================ rates */

static void flow_parse(json_t *o, mk_tui_flow_t *f)
{
    f->bytes_in = jnum(o, "bytes_in_per_sec");
    f->bytes_out = jnum(o, "bytes_out_per_sec");
    f->records_in = jnum(o, "records_in_per_sec");
    f->records_out = jnum(o, "records_out_per_sec");
    f->requests = jnum(o, "requests_per_sec");
    f->bytes_in_total = jnum(o, "bytes_in_total");
    f->bytes_out_total = jnum(o, "bytes_out_total");
    f->records_in_total = jnum(o, "records_in_total");
    f->records_out_total = jnum(o, "records_out_total");
    f->requests_total = jnum(o, "requests_total");
    /* Tenants' cross-AZ figures, from servers that have them. */
    json_t *xb = json_object_get(o, "cross_az_bytes"), *xc = json_object_get(o, "cross_az_cost");
    f->has_cross_az_bytes = json_is_number(xb);
    f->cross_az_bytes = f->has_cross_az_bytes ? json_number_value(xb) : 0;
    f->has_cross_az_cost = json_is_number(xc);
    f->cross_az_cost = f->has_cross_az_cost ? json_number_value(xc) : 0;
}

static mk_tui_named_flow_t *named_flows(json_t *arr, const char *label, int *count)
{
    size_t n = json_array_size(arr);
    mk_tui_named_flow_t *f = array_new(n, sizeof(*f));
    if (!f)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        jcopy(o, label, f[i].name, sizeof(f[i].name));
        flow_parse(o, &f[i].flow);
    }
    *count = (int)n;
    return f;
}

static int tenants_from_flows(mk_tui_model_t *m);

static int apply_rates(mk_tui_model_t *m, json_t *j)
{
    int nt = 0, nc = 0, nn = 0;
    mk_tui_named_flow_t *t = named_flows(json_object_get(j, "topics"), "topic", &nt);
    mk_tui_named_flow_t *c = named_flows(json_object_get(j, "clients"), "client_id", &nc);
    /* "tenants" is absent from older servers: an empty list then. */
    mk_tui_named_flow_t *tn = named_flows(json_object_get(j, "tenants"), "tenant", &nn);
    if (!t || !c || !tn) {
        mk_free(t);
        mk_free(c);
        mk_free(tn);
        return MK_ERR_NOMEM;
    }
    json_t *brokers = json_object_get(j, "brokers");
    for (size_t i = 0; i < json_array_size(brokers); i++) {
        json_t *o = json_array_get(brokers, i);
        mk_tui_broker_t *b = mk_tui_model_broker(m, jint32(o, "broker", -1));
        if (!b)
            continue;
        if (!b->hist && !(b->hist = mk_calloc(1, sizeof(mk_tui_hist_t))))
            continue; /* no history for this broker this time; the figures still show */
        flow_parse(o, &b->flow);
        b->have_flow = true;
        mk_tui_hist_push(b->hist, b->flow.bytes_in + b->flow.bytes_out);
    }
    mk_free(m->topic_flows);
    mk_free(m->client_flows);
    m->topic_flows = t;
    m->ntopic_flows = nt;
    m->client_flows = c;
    m->nclient_flows = nc;
    mk_free(m->tenant_flows);
    m->tenant_flows = tn;
    m->ntenant_flows = nn;
    if (m->tenants_status == 404 && tenants_from_flows(m) < 0)
        return MK_ERR_NOMEM;
    flow_parse(json_object_get(j, "cluster"), &m->cluster_flow);
    m->rates_window_s = jnum(j, "window_sec");
    mk_tui_hist_push(&m->hist_in, m->cluster_flow.bytes_in);
    mk_tui_hist_push(&m->hist_out, m->cluster_flow.bytes_out);
    m->have_rates = true;
    return 0;
}

/* ============================================================== tenants */

/* "default" first, then by id: rows must not jump about between polls. */
static int tenant_cmp(const void *pa, const void *pb)
{
    const mk_tui_tenant_t *a = pa, *b = pb;
    bool da = strcmp(a->id, "default") == 0, db = strcmp(b->id, "default") == 0;
    if (da != db)
        return da ? -1 : 1;
    return strcmp(a->id, b->id);
}

static int name_cmp(const void *a, const void *b) { return strcmp(a, b); }

const char *const mk_tui_quota_keys[MK_TUI_QUOTA_KEYS] = {
    "producer_byte_rate",       "consumer_byte_rate", "request_percentage", "controller_mutation_rate",
    "connection_creation_rate", "max_connections",    "max_partitions",     "max_storage_bytes",
};

/* `quotas` {"limits": {key: n}, "use": {key: n}, "throttle": {...}}; keys
 * the TUI does not know are ignored. */
static void quotas_parse(json_t *o, mk_tui_quotas_t *q)
{
    memset(q, 0, sizeof(*q));
    q->throttle_ms_minute = q->throttle_ms_total = q->throttled = -1;
    if (!json_is_object(o))
        return;
    q->given = true;
    json_t *lim = json_object_get(o, "limits"), *use = json_object_get(o, "use");
    for (int k = 0; k < MK_TUI_QUOTA_KEYS; k++) {
        json_t *v = json_object_get(lim, mk_tui_quota_keys[k]);
        if (json_is_number(v) && json_number_value(v) > 0) {
            q->limit[k] = json_number_value(v);
            q->limit_set |= 1u << k;
        }
        v = json_object_get(use, mk_tui_quota_keys[k]);
        if (json_is_number(v)) {
            q->use[k] = json_number_value(v);
            q->use_set |= 1u << k;
        }
    }
    json_t *th = json_object_get(o, "throttle");
    q->throttle_ms_minute = jint(th, "time_ms_last_minute", -1);
    q->throttle_ms_total = jint(th, "time_ms_total", -1);
    q->throttled = jint(th, "throttled_requests", -1);
}

static void tenant_parse(json_t *o, mk_tui_tenant_t *t)
{
    jcopy(o, "id", t->id, sizeof(t->id));
    t->cell = jint32(o, "cell", -2);
    t->conns = jint32(o, "connections", -1);
    t->partitions = jint32(o, "partitions", -1);
    t->storage = jint(o, "storage_bytes", -1);
    /* Rates only from servers that put them in the entry. */
    t->have_flow = json_object_get(o, "bytes_in_per_sec") != NULL;
    flow_parse(o, &t->flow);
    quotas_parse(json_object_get(o, "quotas"), &t->q);
}

static int qbroker_cmp(const void *pa, const void *pb)
{
    const mk_tui_quota_broker_t *a = pa, *b = pb;
    return (a->broker > b->broker) - (a->broker < b->broker);
}

/* The detail's `quotas.brokers`: [{"broker": 1, "producer_byte_rate":
 * {"rate", "share", "broker_cap"}, ...}]; null share or cap: none. */
static mk_tui_quota_broker_t *qbrokers_parse(json_t *arr, int *count)
{
    size_t n = json_array_size(arr);
    mk_tui_quota_broker_t *v = array_new(n, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        v[i].broker = jint32(o, "broker", -1);
        for (int k = 0; k < 3; k++) {
            json_t *e = json_object_get(o, mk_tui_quota_keys[k]);
            v[i].rate[k] = jnum(e, "rate");
            v[i].share[k] = jnum(e, "share");
            v[i].cap[k] = jnum(e, "broker_cap");
        }
    }
    qsort(v, n, sizeof(*v), qbroker_cmp);
    *count = (int)n;
    return v;
}

static int apply_tenants(mk_tui_model_t *m, json_t *j)
{
    json_t *arr = json_object_get(j, "tenants");
    size_t n = json_array_size(arr);
    mk_tui_tenant_t *t = array_new(n, sizeof(*t));
    if (!t)
        return MK_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        tenant_parse(json_array_get(arr, i), &t[i]);
    qsort(t, n, sizeof(*t), tenant_cmp);
    mk_free(m->tenants);
    m->tenants = t;
    m->ntenants = (int)n;
    m->tenants_status = 200;
    return 0;
}

/* Rows for a server without GET /v1/tenants: the tenants /v1/rates names. */
static int tenants_from_flows(mk_tui_model_t *m)
{
    mk_tui_tenant_t *t = array_new((size_t)m->ntenant_flows, sizeof(*t));
    if (!t)
        return MK_ERR_NOMEM;
    for (int i = 0; i < m->ntenant_flows; i++) {
        clean_copy(t[i].id, sizeof(t[i].id), m->tenant_flows[i].name);
        t[i].cell = -2; /* not given */
        t[i].conns = t[i].partitions = -1;
        t[i].storage = -1;
    }
    qsort(t, (size_t)m->ntenant_flows, sizeof(*t), tenant_cmp);
    mk_free(m->tenants);
    m->tenants = t;
    m->ntenants = m->ntenant_flows;
    return 0;
}

void mk_tui_model_tenants_missing(mk_tui_model_t *m)
{
    m->tenants_status = 404;
    tenants_from_flows(m); /* on OOM the old rows stay until the next rates answer */
}

/* A JSON array of strings as a sorted array of names; NULL on OOM. */
static char (*names_parse(json_t *arr, int *count))[MK_TUI_NAME]
{
    size_t n = json_array_size(arr);
    char (*v)[MK_TUI_NAME] = array_new(n, MK_TUI_NAME);
    if (!v)
        return NULL;
    int o = 0;
    for (size_t i = 0; i < n; i++)
        if (json_is_string(json_array_get(arr, i)))
            clean_copy(v[o++], MK_TUI_NAME, json_string_value(json_array_get(arr, i)));
    qsort(v, (size_t)o, MK_TUI_NAME, name_cmp);
    *count = o;
    return v;
}

/* One tenant's detail replaces the pane's (whoever it was for). */
static int apply_tenant(mk_tui_model_t *m, const char *id, json_t *j)
{
    mk_tui_tenant_detail_t d;
    memset(&d, 0, sizeof(d));
    d.topics = names_parse(json_object_get(j, "topics"), &d.ntopics);
    d.groups = names_parse(json_object_get(j, "groups"), &d.ngroups);
    d.clients = named_flows(json_object_get(j, "clients"), "client_id", &d.nclients);
    json_t *q = json_object_get(j, "quotas");
    d.qbrokers = qbrokers_parse(json_object_get(q, "brokers"), &d.nqbrokers);
    d.nentities = (int)json_array_size(json_object_get(q, "entities"));
    if (!d.topics || !d.groups || !d.clients || !d.qbrokers) {
        tenant_detail_free(&d);
        return MK_ERR_NOMEM;
    }
    clean_copy(d.id, sizeof(d.id), id);
    d.status = 200;
    tenant_parse(j, &d.t);
    d.nkeys = (int)json_array_size(json_object_get(j, "keys"));
    tenant_detail_free(&m->tenant);
    m->tenant = d;
    return 0;
}

void mk_tui_model_tenant_missing(mk_tui_model_t *m, const char *id)
{
    tenant_detail_free(&m->tenant);
    clean_copy(m->tenant.id, sizeof(m->tenant.id), id);
    m->tenant.status = 404;
}

/* ============================================================== latency */

static int apply_latency(mk_tui_model_t *m, json_t *j)
{
    json_t *brokers = json_object_get(j, "brokers");
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(brokers); i++)
        n += json_array_size(json_object_get(json_array_get(brokers, i), "apis"));
    mk_tui_lat_t *l = array_new(n, sizeof(*l));
    if (!l)
        return MK_ERR_NOMEM;
    size_t o = 0;
    double worst = 0;
    for (size_t i = 0; i < json_array_size(brokers); i++) {
        json_t *b = json_array_get(brokers, i);
        json_t *apis = json_object_get(b, "apis");
        for (size_t k = 0; k < json_array_size(apis) && o < n; k++) {
            json_t *a = json_array_get(apis, k);
            mk_tui_lat_t *x = &l[o++];
            x->broker = jint32(b, "broker", -1);
            jcopy(a, "api", x->api, sizeof(x->api));
            x->count = jint(a, "count", 0);
            x->p50 = jnum(a, "p50_ms");
            x->p95 = jnum(a, "p95_ms");
            x->p99 = jnum(a, "p99_ms");
            x->max = jnum(a, "max_ms");
            if (x->count > 0 && x->p99 > worst)
                worst = x->p99;
        }
    }
    mk_free(m->lat);
    m->lat = l;
    m->nlat = (int)o;
    m->latency_window_s = jnum(j, "window_sec");
    m->latency_status = 200;
    mk_tui_hist_push(&m->hist_p99, worst);
    return 0;
}

/* =============================================================== groups */

static int apply_groups(mk_tui_model_t *m, json_t *j)
{
    json_t *arr = json_object_get(j, "groups");
    size_t n = json_array_size(arr);
    mk_tui_group_t *g = array_new(n, sizeof(*g));
    if (!g)
        return MK_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        jcopy(o, "group_id", g[i].id, sizeof(g[i].id));
        jcopy(o, "state", g[i].state, sizeof(g[i].state));
        jcopy(o, "protocol", g[i].protocol, sizeof(g[i].protocol));
        g[i].members = (int32_t)json_array_size(json_object_get(o, "members"));
        g[i].coordinator = jint32(o, "coordinator", -1);
        g[i].partitions = jint32(o, "committed_offsets", 0);
        g[i].lag = jint(o, "lag", -1);
        /* The lag history follows the group from answer to answer. */
        for (int k = 0; k < m->ngroups; k++)
            if (m->groups[k].hist && strcmp(m->groups[k].id, g[i].id) == 0) {
                g[i].hist = m->groups[k].hist;
                m->groups[k].hist = NULL;
                break;
            }
        if (!g[i].hist)
            g[i].hist = mk_calloc(1, sizeof(mk_tui_hist_t)); /* none: no sparkline, figures still show */
        if (g[i].hist)
            mk_tui_hist_push(g[i].hist, g[i].lag > 0 ? (double)g[i].lag : 0);
    }
    free_groups(m->groups, m->ngroups);
    m->groups = g;
    m->ngroups = (int)n;
    m->have_groups = true;
    return 0;
}

/* One member's assignment as "topic:0,1 other:2" (cut to fit). */
static void assignment_text(json_t *arr, char *out, size_t n)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < json_array_size(arr) && o + 1 < n; i++) {
        json_t *a = json_array_get(arr, i);
        char topic[MK_TUI_NAME];
        jcopy(a, "topic", topic, sizeof(topic));
        int w = snprintf(out + o, n - o, "%s%s:", o ? " " : "", topic);
        if (w < 0 || (size_t)w >= n - o)
            break;
        o += (size_t)w;
        json_t *parts = json_object_get(a, "partitions");
        for (size_t k = 0; k < json_array_size(parts) && o + 1 < n; k++) {
            json_t *pv = json_array_get(parts, k);
            w = snprintf(out + o, n - o, "%s%lld", k ? "," : "", json_is_integer(pv) ? (long long)json_integer_value(pv) : -1LL);
            if (w < 0 || (size_t)w >= n - o)
                break;
            o += (size_t)w;
        }
    }
}

/* Does a member's assignment text hold topic's partition? */
static bool assigned(const char *text, const char *topic, int32_t partition)
{
    size_t tl = strlen(topic);
    for (const char *p = text; (p = strstr(p, topic)); p += tl) {
        if ((p != text && p[-1] != ' ') || p[tl] != ':')
            continue;
        const char *q = p + tl + 1;
        while (*q && *q != ' ') {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q)
                break;
            if (v == partition)
                return true;
            q = *end == ',' ? end + 1 : end;
        }
    }
    return false;
}

static int goffset_cmp(const void *pa, const void *pb)
{
    const mk_tui_goffset_t *a = pa, *b = pb;
    int c = strcmp(a->topic, b->topic);
    return c ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

/* GET /v1/groups/{id}: members with their assignments, committed offsets
 * with lag; lag histories kept across answers for the same group. */
static int apply_group(mk_tui_model_t *m, const char *id, json_t *j)
{
    json_t *g = json_object_get(j, "group");
    json_t *members = json_object_get(g, "members"), *offsets = json_object_get(g, "offsets");
    size_t nm = json_array_size(members), no = json_array_size(offsets);
    mk_tui_group_detail_t d;
    memset(&d, 0, sizeof(d));
    d.members = array_new(nm, sizeof(*d.members));
    d.offsets = array_new(no, sizeof(*d.offsets));
    if (!d.members || !d.offsets) {
        mk_free(d.members);
        mk_free(d.offsets);
        return MK_ERR_NOMEM;
    }
    clean_copy(d.id, sizeof(d.id), id);
    d.status = 200;
    jcopy(g, "state", d.state, sizeof(d.state));
    jcopy(g, "protocol", d.protocol, sizeof(d.protocol));
    d.coordinator = jint32(g, "coordinator", -1);
    d.lag = jint(g, "lag", -1);
    for (size_t i = 0; i < nm; i++) {
        json_t *o = json_array_get(members, i);
        mk_tui_member_t *x = &d.members[i];
        jcopy(o, "member_id", x->member_id, sizeof(x->member_id));
        jcopy(o, "client_id", x->client_id, sizeof(x->client_id));
        jcopy(o, "client_host", x->host, sizeof(x->host));
        assignment_text(json_object_get(o, "assignment"), x->assignment, sizeof(x->assignment));
    }
    d.nmembers = (int)nm;
    for (size_t i = 0; i < no; i++) {
        json_t *o = json_array_get(offsets, i);
        mk_tui_goffset_t *x = &d.offsets[i];
        jcopy(o, "topic", x->topic, sizeof(x->topic));
        x->partition = jint32(o, "partition", -1);
        x->offset = jint(o, "offset", -1);
        x->lag = jint(o, "lag", -1);
        for (int k = 0; k < d.nmembers; k++)
            if (assigned(d.members[k].assignment, x->topic, x->partition)) {
                snprintf(x->owner, sizeof(x->owner), "%s", d.members[k].client_id[0] ? d.members[k].client_id : "?");
                break;
            }
    }
    d.noffsets = (int)no;
    qsort(d.offsets, no, sizeof(*d.offsets), goffset_cmp);
    /* Histories: the group's total and each partition's, kept while it stays open. */
    bool same = strcmp(m->group.id, d.id) == 0;
    for (int i = 0; i < d.noffsets; i++) {
        mk_tui_goffset_t *x = &d.offsets[i];
        for (int k = 0; same && k < m->group.noffsets; k++) {
            mk_tui_goffset_t *o = &m->group.offsets[k];
            if (o->hist && o->partition == x->partition && strcmp(o->topic, x->topic) == 0) {
                x->hist = o->hist;
                o->hist = NULL;
                break;
            }
        }
        if (!x->hist)
            x->hist = mk_calloc(1, sizeof(mk_tui_hist_t));
        if (x->hist)
            mk_tui_hist_push(x->hist, x->lag > 0 ? (double)x->lag : 0);
    }
    if (same) {
        d.hist = m->group.hist;
        m->group.hist = NULL;
    }
    if (!d.hist)
        d.hist = mk_calloc(1, sizeof(mk_tui_hist_t));
    if (d.hist)
        mk_tui_hist_push(d.hist, d.lag > 0 ? (double)d.lag : 0);
    group_detail_free(&m->group);
    m->group = d;
    return 0;
}

void mk_tui_model_group_missing(mk_tui_model_t *m, const char *id)
{
    group_detail_free(&m->group);
    clean_copy(m->group.id, sizeof(m->group.id), id);
    m->group.status = 404;
}

/* ================================================================= tail */

void mk_tui_model_tail_reset(mk_tui_model_t *m, const char *topic, int32_t partition)
{
    clean_copy(m->tail_topic, sizeof(m->tail_topic), topic);
    m->tail_partition = partition;
    m->tail_next = -1;
    m->tail_hw = -1;
    m->tail_status = 0;
    m->tail_err[0] = 0;
    m->ntail = m->tail_head = 0;
}

const mk_tui_record_t *mk_tui_model_tail_record(const mk_tui_model_t *m, int i)
{
    if (i < 0 || i >= m->ntail)
        return NULL;
    return &m->tail[(m->tail_head + m->ntail - 1 - i) % MK_TUI_TAIL];
}

void mk_tui_model_tail_error(mk_tui_model_t *m, long status, const char *text)
{
    m->tail_status = status ? status : -1;
    clean_copy(m->tail_err, sizeof(m->tail_err), text);
}

/* GET /v1/topics/{name}/records: append the records after what is held
 * (an answer for another topic or partition, or one that overlaps, is
 * taken only for what is new); tail_next moves to its next_offset. */
static int apply_records(mk_tui_model_t *m, const char *arg, json_t *j)
{
    char topic[MK_TUI_NAME];
    jcopy(j, "topic", topic, sizeof(topic));
    if (strcmp(topic, m->tail_topic) != 0 || jint32(j, "partition", -1) != m->tail_partition ||
        strcmp(arg, m->tail_topic) != 0)
        return 0; /* an answer for a tail given up since */
    json_t *arr = json_object_get(j, "records");
    int64_t last = m->ntail ? mk_tui_model_tail_record(m, 0)->offset : -1;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *o = json_array_get(arr, i);
        int64_t off = jint(o, "offset", -1);
        if (off <= last)
            continue;
        mk_tui_record_t *r;
        if (m->ntail < MK_TUI_TAIL) {
            r = &m->tail[(m->tail_head + m->ntail) % MK_TUI_TAIL];
            m->ntail++;
        } else {
            r = &m->tail[m->tail_head];
            m->tail_head = (m->tail_head + 1) % MK_TUI_TAIL;
        }
        memset(r, 0, sizeof(*r));
        r->offset = off;
        r->timestamp = jint(o, "timestamp", -1);
        r->key_size = jint32(o, "key_size", -1);
        r->value_size = jint32(o, "value_size", -1);
        json_t *k = json_object_get(o, "key"), *v = json_object_get(o, "value");
        clean_copy_marked(r->key, sizeof(r->key), json_is_string(k) ? json_string_value(k) : "");
        clean_copy_marked(r->value, sizeof(r->value), json_is_string(v) ? json_string_value(v) : "");
        json_t *hs = json_object_get(o, "headers");
        size_t ho = 0;
        for (size_t h = 0; h < json_array_size(hs) && ho + 1 < sizeof(r->headers); h++) {
            char hk[64], hv[64];
            jcopy(json_array_get(hs, h), "key", hk, sizeof(hk));
            jcopy(json_array_get(hs, h), "value", hv, sizeof(hv));
            int w = snprintf(r->headers + ho, sizeof(r->headers) - ho, "%s%s=%s", ho ? "," : "", hk, hv);
            if (w < 0 || (size_t)w >= sizeof(r->headers) - ho) {
                memcpy(r->headers + sizeof(r->headers) - 4, "...", 4);
                break;
            }
            ho += (size_t)w;
        }
        last = off;
    }
    m->tail_next = jint(j, "next_offset", m->tail_next);
    m->tail_hw = jint(j, "high_watermark", -1);
    m->tail_status = 200;
    m->tail_err[0] = 0;
    return 0;
}

/* =============================================================== events */

static int apply_events(mk_tui_model_t *m, json_t *j)
{
    uint64_t last = (uint64_t)jint(j, "last_seq", 0);
    if (last < m->last_seq) {
        /* The server's sequence went backwards: a new cluster. */
        m->nevents = m->events_head = 0;
        m->last_seq = 0;
    }
    json_t *arr = json_object_get(j, "events");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *o = json_array_get(arr, i);
        uint64_t seq = (uint64_t)jint(o, "seq", 0);
        if (seq <= m->last_seq)
            continue;
        mk_tui_event_t *e;
        if (m->nevents < MK_TUI_EVENTS) {
            e = &m->events[(m->events_head + m->nevents) % MK_TUI_EVENTS];
            m->nevents++;
        } else {
            e = &m->events[m->events_head];
            m->events_head = (m->events_head + 1) % MK_TUI_EVENTS;
        }
        e->seq = seq;
        e->time_ms = jint(o, "time_ms", 0);
        e->broker = jint32(o, "broker", -1);
        jcopy(o, "type", e->type, sizeof(e->type));
        json_t *msg = json_object_get(o, "message");
        clean_copy_marked(e->message, sizeof(e->message), json_is_string(msg) ? json_string_value(msg) : "");
        m->last_seq = seq;
    }
    return 0;
}

/* GET /v1/storage: the three tiers per tenant and topic, S3's status, and
 * the transfer rates (from the totals of two answers in a row). */
static int apply_storage(mk_tui_model_t *m, json_t *j)
{
    json_t *tenants = json_object_get(j, "tenants");
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(tenants); i++)
        n += 1 + json_array_size(json_object_get(json_array_get(tenants, i), "topics"));
    mk_tui_storage_row_t *rows = array_new(n, sizeof(*rows));
    if (!rows)
        return MK_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < json_array_size(tenants); i++) {
        json_t *tn = json_array_get(tenants, i);
        json_t *objs[2] = {tn, NULL};
        json_t *topics = json_object_get(tn, "topics");
        for (size_t ti = 0; ti <= json_array_size(topics) && k < n; ti++) {
            json_t *o = ti == 0 ? objs[0] : json_array_get(topics, ti - 1);
            mk_tui_storage_row_t *r = &rows[k++];
            jcopy(tn, "id", r->tenant, sizeof(r->tenant));
            if (ti > 0)
                jcopy(o, "name", r->topic, sizeof(r->topic));
            r->tiered = json_is_true(json_object_get(o, "tiered"));
            r->memory = jint(o, "memory_bytes", 0);
            r->local = jint(o, "local_bytes", 0);
            r->remote = jint(o, "remote_bytes", 0);
            r->backlog = jint(o, "upload_backlog_bytes", 0);
            r->backlog_segments = jint32(o, "upload_backlog_segments", 0);
            r->remote_segments = jint32(o, "remote_segments", 0);
        }
    }
    mk_free(m->storage);
    m->storage = rows;
    m->nstorage = (int)k;
    m->tiering = json_is_true(json_object_get(j, "tiering"));
    jcopy(j, "s3_status", m->s3_status, sizeof(m->s3_status));
    jcopy(j, "s3_error", m->s3_error, sizeof(m->s3_error));
    jcopy(j, "s3_url", m->s3_url, sizeof(m->s3_url));
    double up = jnum(j, "upload_bytes"), down = jnum(j, "download_bytes"), req = jnum(j, "s3_requests");
    uint64_t now = mk_mono_ms();
    if (m->storage_ms && now > m->storage_ms) {
        double secs = (double)(now - m->storage_ms) / 1000.0;
        m->up_rate = up >= m->up_total ? (up - m->up_total) / secs : 0;
        m->down_rate = down >= m->down_total ? (down - m->down_total) / secs : 0;
        m->s3_req_rate = req >= m->s3_req_total ? (req - m->s3_req_total) / secs : 0;
        mk_tui_hist_push(&m->hist_up, m->up_rate);
        mk_tui_hist_push(&m->hist_down, m->down_rate);
    }
    m->storage_ms = now;
    m->up_total = up;
    m->down_total = down;
    m->s3_req_total = req;
    m->s3_err_total = jnum(j, "s3_errors");
    m->cache_mem = jint(j, "cache_memory_bytes", 0);
    m->cache_mem_max = jint(j, "cache_memory_max_bytes", 0);
    m->cache_disk = jint(j, "cache_disk_bytes", 0);
    m->cache_hit_rate = jnum(j, "cache_hit_rate");
    m->uploads_in_flight = jint32(j, "uploads_in_flight", 0);
    m->uploads_failed = jint(j, "uploads_failed", 0);
    m->storage_status = 200;
    return 0;
}

/* GET /v1/health: the storage health manager's view of every broker and
 * the ladder's thresholds. */
static int apply_health(mk_tui_model_t *m, json_t *j)
{
    json_t *brokers = json_object_get(j, "brokers");
    size_t n = json_array_size(brokers);
    mk_tui_health_row_t *rows = array_new(n, sizeof(*rows));
    if (!rows)
        return MK_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(brokers, i), *io = json_object_get(o, "io"), *pr = json_object_get(o, "probes");
        mk_tui_health_row_t *r = &rows[i];
        r->id = jint32(o, "id", -1);
        jcopy(o, "az", r->az, sizeof(r->az));
        r->cell = jint32(o, "cell", -1);
        r->running = json_is_true(json_object_get(o, "running"));
        r->fenced = json_is_true(json_object_get(o, "fenced"));
        jcopy(o, "state", r->state, sizeof(r->state));
        r->step = jint32(o, "step", 0);
        r->no_progress_ms = jint(o, "no_progress_ms", 0);
        r->restarts = jint(o, "restarts", 0);
        r->replaced_by = jint32(o, "replaced_by", 0);
        r->replaces = jint32(o, "replaces", 0);
        r->ops = jint(io, "ops", 0);
        r->errors = jint(io, "errors", 0);
        r->oldest_ms = jint(io, "oldest_inflight_ms", 0);
        r->p99_ms = jnum(io, "p99_ms");
        r->probes_ok = jint(pr, "ok", 0);
        r->probes_failed = jint(pr, "failed", 0);
        r->produce_ms = jnum(pr, "produce_ms");
        r->consume_ms = jnum(pr, "consume_ms");
        jcopy(pr, "error", r->probe_error, sizeof(r->probe_error));
    }
    json_t *th = json_object_get(j, "thresholds");
    m->health_enabled = json_is_true(json_object_get(j, "enabled"));
    m->health_stall_ms = jint(th, "stall_ms", 0);
    m->health_restart_grace_ms = jint(th, "restart_grace_ms", 0);
    m->health_replace_after_ms = jint(th, "replace_after_ms", 0);
    mk_free(m->health);
    m->health = rows;
    m->nhealth = (int)n;
    m->health_status = 200;
    return 0;
}

/* ================================================================ apply */

int mk_tui_model_apply(mk_tui_model_t *m, mk_tui_req_t kind, const char *arg, const char *body, size_t len, char *err,
                    size_t errlen)
{
    json_t *j = load_object(body, len, err, errlen);
    if (!j)
        return MK_ERR_INVALID;
    int rc = 0;
    switch (kind) {
    case MK_TUI_REQ_CLUSTER: rc = apply_cluster(m, j); break;
    case MK_TUI_REQ_TOPICS: rc = apply_topics(m, j); break;
    case MK_TUI_REQ_TOPIC: rc = apply_topic(m, arg, j); break;
    case MK_TUI_REQ_RATES: rc = apply_rates(m, j); break;
    case MK_TUI_REQ_LATENCY: rc = apply_latency(m, j); break;
    case MK_TUI_REQ_GROUPS: rc = apply_groups(m, j); break;
    case MK_TUI_REQ_EVENTS: rc = apply_events(m, j); break;
    case MK_TUI_REQ_TENANTS: rc = apply_tenants(m, j); break;
    case MK_TUI_REQ_TENANT: rc = apply_tenant(m, arg, j); break;
    case MK_TUI_REQ_STORAGE: rc = apply_storage(m, j); break;
    case MK_TUI_REQ_GROUP: rc = apply_group(m, arg, j); break;
    case MK_TUI_REQ_RECORDS: rc = apply_records(m, arg, j); break;
    case MK_TUI_REQ_HEALTH: rc = apply_health(m, j); break;
    case MK_TUI_REQ_ACTION: break;
    }
    json_decref(j);
    if (rc == MK_ERR_NOMEM)
        snprintf(err, errlen, "out of memory");
    return rc;
}

void mk_tui_model_error_text(long status, const char *body, size_t len, char *out, size_t n)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    json_t *msg = json_object_get(j, "message");
    if (json_is_string(msg))
        clean_copy(out, n, json_string_value(msg));
    else
        snprintf(out, n, "HTTP %ld", status);
    json_decref(j);
}

void mk_tui_model_action_text(const char *label, const char *body, size_t len, char *out, size_t n)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    json_t *b = json_object_get(j, "broker");
    char state[32] = "";
    if (json_is_object(b)) {
        jcopy(b, "state", state, sizeof(state));
        snprintf(out, n, "%s: done, broker %d is now %s", label, (int)jint(b, "id", -1), state[0] ? state : "?");
    } else if (json_object_get(j, "az")) {
        snprintf(out, n, "%s: done, %d brokers changed", label, (int)jint(j, "brokers_changed", 0));
    } else {
        snprintf(out, n, "%s: done", label);
    }
    json_decref(j);
}

/* ============================================================== formats */

void mk_tui_fmt_bytes(double v, char *out, size_t n)
{
    static const char *units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    int u = 0;
    while (v >= 1000 && u < 5) {
        v /= 1000;
        u++;
    }
    if (u == 0)
        snprintf(out, n, "%.0f B", v);
    else
        snprintf(out, n, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void mk_tui_fmt_count(double v, char *out, size_t n)
{
    static const char *units[] = {"", "k", "M", "G", "T"};
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    if (u == 0)
        snprintf(out, n, v == floor(v) ? "%.0f" : "%.1f", v);
    else
        snprintf(out, n, v < 10 ? "%.2f%s" : v < 100 ? "%.1f%s" : "%.0f%s", v, units[u]);
}

void mk_tui_fmt_ms(double v, char *out, size_t n)
{
    if (v >= 1000)
        snprintf(out, n, "%.2fs", v / 1000);
    else if (v >= 100)
        snprintf(out, n, "%.0f", v);
    else if (v >= 10)
        snprintf(out, n, "%.1f", v);
    else
        snprintf(out, n, "%.2f", v);
}

void mk_tui_fmt_duration(int64_t ms, char *out, size_t n)
{
    int64_t s = ms / 1000;
    if (s >= 86400)
        snprintf(out, n, "%dd%02dh", (int)(s / 86400), (int)(s % 86400 / 3600));
    else if (s >= 3600)
        snprintf(out, n, "%dh%02dm", (int)(s / 3600), (int)(s % 3600 / 60));
    else if (s >= 60)
        snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)(s % 60));
    else
        snprintf(out, n, "%ds", (int)s);
}

void mk_tui_fmt_cost(double v, char *out, size_t n)
{
    if (v <= 0)
        snprintf(out, n, "$0");
    else if (v < 0.0001)
        snprintf(out, n, "<$0.0001");
    else if (v < 1)
        snprintf(out, n, "$%.4f", v);
    else
        snprintf(out, n, "$%.2f", v);
}

void mk_tui_fmt_short(double v, char *out, size_t n)
{
    static const char *units[] = {"", "k", "M", "G", "T", "P"};
    int u = 0;
    if (!(v > 0)) {
        snprintf(out, n, "0");
        return;
    }
    while (v >= 999.5 && u < 5) {
        v /= 1000;
        u++;
    }
    if (v < 9.95 && (u > 0 || v != floor(v)))
        snprintf(out, n, "%.1f%s", v, units[u]);
    else
        snprintf(out, n, "%.0f%s", v, units[u]);
}

void mk_tui_fmt_secs(int64_t ms, char *out, size_t n)
{
    if (ms <= 0)
        snprintf(out, n, "0");
    else if (ms < 1000)
        snprintf(out, n, "%dms", (int)ms);
    else if (ms < 9950)
        snprintf(out, n, "%.1fs", (double)ms / 1000);
    else if (ms < 120000)
        snprintf(out, n, "%.0fs", (double)ms / 1000);
    else
        snprintf(out, n, "%.0fm", (double)ms / 60000);
}

void mk_tui_fmt_spark(const double *newest_first, int count, int width, bool utf8, char *out, size_t n)
{
    static const char *blocks[] = {"\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};
    static const char ascii[] = "_.-:=+*#";
    size_t o = 0;
    if (n == 0)
        return;
    out[0] = 0;
    if (width <= 0)
        return;
    int shown = count < width ? count : width;
    double max = 0;
    for (int i = 0; i < shown; i++)
        if (newest_first[i] > max)
            max = newest_first[i];
    /* Oldest on the left; columns without a sample yet are blank. */
    for (int col = 0; col < width; col++) {
        int i = width - 1 - col; /* samples back from the newest */
        const char *glyph;
        char one[2] = {' ', 0};
        if (i >= shown) {
            glyph = one;
        } else {
            int level = max > 0 ? (int)(newest_first[i] / max * 7.0 + 0.5) : 0;
            if (level < 0)
                level = 0;
            if (level > 7)
                level = 7;
            if (utf8) {
                glyph = blocks[level];
            } else {
                one[0] = ascii[level];
                glyph = one;
            }
        }
        size_t gl = strlen(glyph);
        if (o + gl + 1 > n)
            break;
        memcpy(out + o, glyph, gl);
        o += gl;
    }
    out[o] = 0;
}

/* Case-insensitive substring; an empty filter matches everything. */
bool mk_tui_match(const char *filter, const char *text)
{
    return !filter[0] || strcasestr(text, filter) != NULL;
}
