/*
 * quota.c -- the registry of limits: keys, entities, precedence, and their
 * persistence (quota.h).
 *
 * In memory: tenant id -> tenant_q_t { tenant-wide limits, entity string ->
 * limits }.  The entity string is the stored form ("user=alice&client-id=",
 * see quota.h), so a lookup builds the string of each candidate entity in
 * the order of precedence and probes the map: at most eight probes, and
 * only for tenants that have entity limits at all.
 */
#include "quota/quota.h"
#include "meta/meta.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ===================================================================== keys */

static const char *const key_names[MK_QUOTA__COUNT] = {
    "producer_byte_rate",     "consumer_byte_rate",     "request_percentage", "controller_mutation_rate",
    "connection_creation_rate", "max_connections",      "max_partitions",     "max_storage_bytes",
};

const char *mk_quota_key_name(int key) { return key >= 0 && key < MK_QUOTA__COUNT ? key_names[key] : NULL; }

int mk_quota_key_find(const char *name)
{
    for (int k = 0; name && k < MK_QUOTA__COUNT; k++)
        if (strcmp(name, key_names[k]) == 0)
            return k;
    return -1;
}

bool mk_quota_value_valid(int key, double v)
{
    if (key < 0 || key >= MK_QUOTA__COUNT || !isfinite(v) || v <= 0)
        return false;
    switch (key) {
    case MK_QUOTA_PRODUCER_BYTE_RATE:
    case MK_QUOTA_CONSUMER_BYTE_RATE:
    case MK_QUOTA_MAX_STORAGE_BYTES: return v < 1125899906842624.0; /* 2^50 */
    case MK_QUOTA_REQUEST_PERCENTAGE: return v <= 100000;
    default: return v < 2147483648.0;
    }
}

double mk_quota_limit(const mk_quota_limits_t *l, int key)
{
    return l && key >= 0 && key < MK_QUOTA__COUNT && (l->set >> key & 1) ? l->v[key] : 0;
}

/* ================================================================= entities */

bool mk_quota_entity_valid(const mk_quota_entity_t *e, int key)
{
    if (!e)
        return false;
    bool ip = e->ip != NULL, client = e->user || e->client_id;
    if (ip == client)
        return false; /* ip alone, or user and/or client-id */
    if (key < 0)
        return true;
    if (ip)
        return key == MK_QUOTA_CONNECTION_CREATION_RATE;
    return key == MK_QUOTA_PRODUCER_BYTE_RATE || key == MK_QUOTA_CONSUMER_BYTE_RATE ||
           key == MK_QUOTA_REQUEST_PERCENTAGE || key == MK_QUOTA_CONTROLLER_MUTATION_RATE;
}

/* Percent-encode name (outside [A-Za-z0-9._-]) into b. */
static void enc_put(mk_buf_t *b, const char *name)
{
    static const char hx[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
            *p == '_' || *p == '-') {
            mk_buf_put(b, p, 1);
        } else {
            char e[3] = {'%', hx[*p >> 4], hx[*p & 15]};
            mk_buf_put(b, e, 3);
        }
    }
}

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                                                                      : -1;
}

/* Decode n bytes of s into out (NUL-terminated, at most cap - 1 bytes);
 * false on a bad escape or overflow. */
static bool dec_get(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int hi = hexv(s[i + 1]), lo = hexv(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == 0 || o + 1 >= cap)
            return false;
        out[o++] = c;
    }
    out[o] = 0;
    return true;
}

/* The stored form of e into b (reset first); NUL-terminated. */
static void entity_str(mk_buf_t *b, const mk_quota_entity_t *e)
{
    mk_buf_reset(b);
    if (e->user) {
        mk_buf_put(b, "user=", 5);
        enc_put(b, e->user);
    }
    if (e->client_id) {
        if (e->user)
            mk_buf_put(b, "&", 1);
        mk_buf_put(b, "client-id=", 10);
        enc_put(b, e->client_id);
    }
    if (e->ip) {
        mk_buf_put(b, "ip=", 3);
        enc_put(b, e->ip);
    }
    mk_buf_put(b, "", 1);
}

#define NAME_MAX_LEN 512

/* An entity from its stored form, its names in the three buffers. */
static bool entity_parse(const char *s, mk_quota_entity_t *e, char user[NAME_MAX_LEN], char client[NAME_MAX_LEN],
                         char ip[NAME_MAX_LEN])
{
    memset(e, 0, sizeof(*e));
    while (*s) {
        const char *amp = strchr(s, '&'), *end = amp ? amp : s + strlen(s);
        const char *eq = memchr(s, '=', (size_t)(end - s));
        if (!eq)
            return false;
        size_t kl = (size_t)(eq - s);
        char *dst = NULL;
        if (kl == 4 && memcmp(s, "user", 4) == 0 && !e->user)
            e->user = dst = user;
        else if (kl == 9 && memcmp(s, "client-id", 9) == 0 && !e->client_id)
            e->client_id = dst = client;
        else if (kl == 2 && memcmp(s, "ip", 2) == 0 && !e->ip)
            e->ip = dst = ip;
        if (!dst || !dec_get(eq + 1, (size_t)(end - eq - 1), dst, NAME_MAX_LEN))
            return false;
        s = amp ? amp + 1 : end;
    }
    return mk_quota_entity_valid(e, -1);
}

/* ================================================================= registry */

typedef struct tenant_q_s {
    mk_quota_limits_t wide;
    mk_map_t entities;         /* entity string -> owned mk_quota_limits_t* */
} tenant_q_t;

struct mk_quota_registry_s {
    uv_loop_t *loop;
    struct mk_meta_s *meta;
    mk_map_t tenants;          /* tenant id -> owned tenant_q_t* */
    uint64_t version;
    mk_buf_t scratch;
};

static const mk_quota_limits_t no_limits;

uint64_t mk_quota_version(const mk_quota_registry_t *r) { return r->version; }

static void tq_free(tenant_q_t *tq)
{
    if (!tq)
        return;
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&tq->entities, &it, &k, &v);)
        mk_free(v);
    mk_map_free(&tq->entities);
    mk_free(tq);
}

static tenant_q_t *tq_get(mk_quota_registry_t *r, const char *tenant, bool create)
{
    tenant_q_t *tq = mk_map_get(&r->tenants, tenant);
    if (tq || !create)
        return tq;
    tq = mk_calloc(1, sizeof(*tq));
    if (!tq)
        return NULL;
    mk_map_init(&tq->entities);
    if (mk_map_put(&r->tenants, tenant, tq) < 0) {
        tq_free(tq);
        return NULL;
    }
    return tq;
}

const mk_quota_limits_t *mk_quota_tenant(mk_quota_registry_t *r, const char *tenant)
{
    tenant_q_t *tq = r ? tq_get(r, tenant, false) : NULL;
    return tq ? &tq->wide : &no_limits;
}

/* "key=value key=value" of l into b (NUL-terminated). */
static void limits_str(mk_buf_t *b, const mk_quota_limits_t *l)
{
    mk_buf_reset(b);
    for (int k = 0; k < MK_QUOTA__COUNT; k++) {
        if (!(l->set >> k & 1))
            continue;
        char one[96];
        int n = snprintf(one, sizeof(one), "%s%s=%.17g", b->len ? " " : "", key_names[k], l->v[k]);
        mk_buf_put(b, one, (size_t)n);
    }
    mk_buf_put(b, "", 1);
}

static bool limits_parse(const char *s, mk_quota_limits_t *l)
{
    memset(l, 0, sizeof(*l));
    char tmp[1024];
    if (strlen(s) >= sizeof(tmp))
        return false;
    snprintf(tmp, sizeof(tmp), "%s", s);
    char *save = NULL;
    for (char *tok = strtok_r(tmp, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return false;
        *eq = 0;
        int k = mk_quota_key_find(tok);
        char *end;
        double v = strtod(eq + 1, &end);
        if (k < 0 || *end || !mk_quota_value_valid(k, v))
            return false;
        l->v[k] = v;
        l->set |= 1u << k;
    }
    return true;
}

static void persist_done(int status, void *arg)
{
    (void)arg;
    if (status < 0)
        mk_error("quotas: a write to the metadata store failed: %s", mk_strerror(status));
}

/* Write (or, when l has no limit, delete) one stored entry. */
static int persist(mk_quota_registry_t *r, const char *tenant, const char *entity, const mk_quota_limits_t *l)
{
    if (!r->meta)
        return 0;
    char key[1400];
    int n = snprintf(key, sizeof(key), "quota/%s%s%s", tenant, entity ? "/" : "", entity ? entity : "");
    if (n < 0 || (size_t)n >= sizeof(key))
        return MK_ERR_INVALID;
    mk_buf_t val;
    mk_buf_init(&val);
    limits_str(&val, l);
    if (!mk_buf_ok(&val)) {
        mk_buf_free(&val);
        return MK_ERR_NOMEM;
    }
    mk_meta_op_t op = {.kind = MK_META_KV_SET, .key = key, .value = l->set ? (const char *)val.data : NULL};
    int rc = r->loop ? mk_meta_op_submit(r->meta, r->loop, &op, persist_done, NULL) : mk_meta_op_run(r->meta, &op);
    mk_buf_free(&val);
    return rc;
}

int mk_quota_set(mk_quota_registry_t *r, const char *tenant, const mk_quota_entity_t *e, int key, double value,
                 bool remove)
{
    if (!tenant || !*tenant || key < 0 || key >= MK_QUOTA__COUNT || (!remove && !mk_quota_value_valid(key, value)))
        return MK_ERR_INVALID;
    if (e && !mk_quota_entity_valid(e, key))
        return MK_ERR_INVALID;
    if (e && ((e->user && strlen(e->user) >= NAME_MAX_LEN / 3) ||
              (e->client_id && strlen(e->client_id) >= NAME_MAX_LEN / 3) || (e->ip && strlen(e->ip) >= NAME_MAX_LEN / 3)))
        return MK_ERR_INVALID;
    tenant_q_t *tq = tq_get(r, tenant, !remove);
    if (!tq)
        return remove ? 0 : MK_ERR_NOMEM;
    mk_quota_limits_t *l = &tq->wide;
    const char *es = NULL;
    if (e) {
        entity_str(&r->scratch, e);
        if (!mk_buf_ok(&r->scratch))
            return MK_ERR_NOMEM;
        es = (const char *)r->scratch.data;
        l = mk_map_get(&tq->entities, es);
        if (!l) {
            if (remove)
                return 0;
            l = mk_calloc(1, sizeof(*l));
            if (!l || mk_map_put(&tq->entities, es, l) < 0) {
                mk_free(l);
                return MK_ERR_NOMEM;
            }
        }
    }
    if (remove) {
        l->set &= ~(1u << key);
        l->v[key] = 0;
    } else {
        l->v[key] = value;
        l->set |= 1u << key;
    }
    r->version++;
    int rc = persist(r, tenant, es, l);
    if (e && !l->set) {
        mk_map_del(&tq->entities, es);
        mk_free(l);
    }
    return rc < 0 && rc != MK_ERR_INVALID ? rc : 0;
}

void mk_quota_tenant_remove(mk_quota_registry_t *r, const char *tenant)
{
    tenant_q_t *tq = tq_get(r, tenant, false);
    if (!tq)
        return;
    static const mk_quota_limits_t none;
    persist(r, tenant, NULL, &none);
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&tq->entities, &it, &k, &v);)
        persist(r, tenant, k, &none);
    mk_map_del(&r->tenants, tenant);
    tq_free(tq);
    r->version++;
}

static double probe(mk_quota_registry_t *r, tenant_q_t *tq, const char *user, const char *client, int key)
{
    mk_quota_entity_t e = {user, client, NULL};
    entity_str(&r->scratch, &e);
    if (!mk_buf_ok(&r->scratch))
        return 0;
    return mk_quota_limit(mk_map_get(&tq->entities, (const char *)r->scratch.data), key);
}

double mk_quota_client_match(mk_quota_registry_t *r, const char *tenant, const char *user, const char *client_id,
                             int key, bool *by_user, bool *by_client)
{
    if (by_user)
        *by_user = false;
    if (by_client)
        *by_client = false;
    tenant_q_t *tq = r ? tq_get(r, tenant, false) : NULL;
    if (!tq || tq->entities.count == 0)
        return 0;
    const char *u = user ? user : "", *c = client_id ? client_id : "";
    /* Kafka's order: most specific first; "" is <default>. */
    const char *order[8][2] = {{u, c},    {u, ""},     {u, NULL},     {"", c},
                               {"", ""}, {"", NULL},  {NULL, c},     {NULL, ""}};
    for (int i = 0; i < 8; i++) {
        double v = probe(r, tq, order[i][0], order[i][1], key);
        if (v > 0) {
            if (by_user)
                *by_user = order[i][0] != NULL;
            if (by_client)
                *by_client = order[i][1] != NULL;
            return v;
        }
    }
    return 0;
}

double mk_quota_client_limit(mk_quota_registry_t *r, const char *tenant, const char *user, const char *client_id,
                             int key)
{
    return mk_quota_client_match(r, tenant, user, client_id, key, NULL, NULL);
}

double mk_quota_ip_limit(mk_quota_registry_t *r, const char *tenant, const char *ip, int key)
{
    tenant_q_t *tq = r ? tq_get(r, tenant, false) : NULL;
    if (!tq || tq->entities.count == 0)
        return 0;
    const char *order[2] = {ip ? ip : "", ""};
    for (int i = 0; i < 2; i++) {
        mk_quota_entity_t e = {NULL, NULL, order[i]};
        entity_str(&r->scratch, &e);
        double v = mk_buf_ok(&r->scratch) ? mk_quota_limit(mk_map_get(&tq->entities, (const char *)r->scratch.data), key) : 0;
        if (v > 0)
            return v;
    }
    return 0;
}

int mk_quota_each(mk_quota_registry_t *r, const char *tenant, mk_quota_each_cb cb, void *arg)
{
    tenant_q_t *tq = r ? tq_get(r, tenant, false) : NULL;
    if (!tq)
        return 0;
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&tq->entities, &it, &k, &v);) {
        char user[NAME_MAX_LEN], client[NAME_MAX_LEN], ip[NAME_MAX_LEN];
        mk_quota_entity_t e;
        if (!entity_parse(k, &e, user, client, ip))
            continue;
        int rc = cb(&e, v, arg);
        if (rc)
            return rc;
    }
    return 0;
}

/* ================================================================== loading */

static int load_cb(const char *key, const char *value, void *arg)
{
    mk_quota_registry_t *r = arg;
    const char *t = key + strlen("quota/");
    const char *slash = strchr(t, '/');
    char tenant[64];
    size_t tl = slash ? (size_t)(slash - t) : strlen(t);
    mk_quota_limits_t l;
    if (tl == 0 || tl >= sizeof(tenant) || !limits_parse(value, &l)) {
        mk_warn("quotas: stored entry %s is malformed: skipped", key);
        return 0;
    }
    memcpy(tenant, t, tl);
    tenant[tl] = 0;
    tenant_q_t *tq = tq_get(r, tenant, true);
    if (!tq)
        return MK_ERR_NOMEM;
    if (!slash) {
        tq->wide = l;
        return 0;
    }
    char user[NAME_MAX_LEN], client[NAME_MAX_LEN], ip[NAME_MAX_LEN];
    mk_quota_entity_t e;
    if (!entity_parse(slash + 1, &e, user, client, ip)) {
        mk_warn("quotas: stored entity %s is malformed: skipped", key);
        return 0;
    }
    for (int k = 0; k < MK_QUOTA__COUNT; k++)
        if ((l.set >> k & 1) && !mk_quota_entity_valid(&e, k)) {
            mk_warn("quotas: stored entry %s sets %s, which its entity cannot carry: skipped", key, key_names[k]);
            return 0;
        }
    mk_quota_limits_t *copy = mk_malloc(sizeof(*copy));
    entity_str(&r->scratch, &e);
    if (!copy || !mk_buf_ok(&r->scratch)) {
        mk_free(copy);
        return MK_ERR_NOMEM;
    }
    *copy = l;
    mk_free(mk_map_get(&tq->entities, (const char *)r->scratch.data));
    if (mk_map_put(&tq->entities, (const char *)r->scratch.data, copy) < 0) {
        mk_free(copy);
        return MK_ERR_NOMEM;
    }
    return 0;
}

int mk_quota_registry_open(uv_loop_t *loop, struct mk_meta_s *meta, mk_quota_registry_t **out)
{
    mk_quota_registry_t *r = mk_calloc(1, sizeof(*r));
    if (!r)
        return MK_ERR_NOMEM;
    r->loop = loop;
    r->meta = meta;
    mk_map_init(&r->tenants);
    mk_buf_init(&r->scratch);
    int rc = meta ? mk_meta_kv_foreach(meta, "quota/", load_cb, r) : 0;
    if (rc < 0) {
        mk_quota_registry_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void mk_quota_registry_close(mk_quota_registry_t *r)
{
    if (!r)
        return;
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&r->tenants, &it, &k, &v);)
        tq_free(v);
    mk_map_free(&r->tenants);
    mk_buf_free(&r->scratch);
    mk_free(r);
}
