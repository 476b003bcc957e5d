/*
 * routes.c -- the admin API's route table and its JSON handlers.
 *
 * The table below is the index of the API (GET /v1 prints it, and
 * docs/ADMIN-API.md documents each row).  A pattern's "{}" matches exactly
 * one path segment, which is percent-decoded and handed to the handler.
 * Every response is JSON (jansson) except /metrics; every error is
 *   {"error": "<code>", "message": "<sentence>"}
 * with a 4xx status for bad requests (400 bad JSON or fields, 404 unknown
 * route / broker / topic / group / AZ, 405 wrong method, 409 conflicting
 * state) and 5xx only for our own failures.
 *
 * Acting routes call the same library functions as the Kafka API and
 * --control-stdin (mk_repl_broker_*, mk_repl_az_*, mk_broker_topic_*), record
 * an event, and sample the cluster at once so that the consequences
 * (leader moves, ISR changes) follow in the event ring.
 *
 * Names: topics and groups are shown by their internal names; with the one
 * default tenant these are the names clients use.
 */
#include "admin/admin_int.h"
#include "batch/batch.h"
#include "group/group.h"
#include "partition/partition.h"
#include "proto/proto.h"
#include "repl/repl.h"
#include "scrub/scrub.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* Kafka connections of a broker: its PLAINTEXT and TLS listeners. */
static int broker_conns(const mk_cluster_broker_t *b)
{
    return (b->listener ? mk_net_listener_conn_count(b->listener) : 0) +
           (b->tls_listener ? mk_net_listener_conn_count(b->tls_listener) : 0);
}
/* ================================================================ helpers */

/* A JSON string of s; bytes that are not valid UTF-8 become '?'. */
static json_t *jstr(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    char *copy = mk_strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
            *p = '?';
    j = json_string(copy);
    mk_free(copy);
    return j;
}

static json_t *jint(int64_t v) { return json_integer((json_int_t)v); }

/* A decimal int32 path segment; false if it is anything else. */
static bool parse_id(const char *s, int32_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < INT32_MIN || v > INT32_MAX)
        return false;
    *out = (int32_t)v;
    return true;
}

/* ========================================================== path matching */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mk_admin_url_decode(const char *s, size_t n, char *out, size_t out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            ch = (char)(h * 16 + l);
            i += 2;
        }
        if (ch == 0 || o + 1 >= out_len)
            return -1;
        out[o++] = ch;
    }
    if (o >= out_len)
        return -1;
    out[o] = 0;
    return (int)o;
}

bool mk_admin_path_match(const char *pattern, const char *path, mk_admin_caps_t *caps)
{
    caps->n = 0;
    const char *p = pattern, *s = path;
    size_t plen = strlen(path);
    if (plen > 1 && path[plen - 1] == '/')
        plen--; /* "/v1/topics/" is "/v1/topics" */
    const char *send = path + plen;
    if (*p != '/' || *s != '/')
        return false;
    while (*p == '/' && s < send && *s == '/') {
        p++;
        s++;
        const char *pseg = p, *sseg = s;
        while (*p && *p != '/')
            p++;
        while (s < send && *s != '/')
            s++;
        size_t pl = (size_t)(p - pseg), sl = (size_t)(s - sseg);
        if (sl == 0 && pl == 0 && !*p && s == send)
            return true; /* the root "/" */
        if (sl == 0)
            return false; /* empty segment: "//" */
        if (pl == 2 && pseg[0] == '{' && pseg[1] == '}') {
            if (caps->n >= MK_ADMIN_MAX_CAPS)
                return false;
            int n = mk_admin_url_decode(sseg, sl, caps->v[caps->n], MK_ADMIN_CAP_LEN);
            if (n <= 0 || strchr(caps->v[caps->n], '/'))
                return false;
            caps->n++;
        } else if (pl != sl || memcmp(pseg, sseg, pl) != 0) {
            return false;
        }
    }
    return !*p && s == send;
}

bool mk_admin_query_get(const char *query, const char *key, char *out, size_t out_len)
{
    size_t kl = strlen(key);
    const char *q = query;
    while (q && *q) {
        const char *end = strchr(q, '&');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t name_len = eq ? (size_t)(eq - q) : len;
        if (name_len == kl && memcmp(q, key, kl) == 0) {
            if (!eq) {
                if (out_len)
                    out[0] = 0;
                return out_len > 0;
            }
            return mk_admin_url_decode(eq + 1, len - name_len - 1, out, out_len) >= 0;
        }
        q = end ? end + 1 : NULL;
    }
    return false;
}

/* ======================================================= cluster snapshots */

/* Leader and replica counts per broker index, in one pass over partitions. */
typedef struct counts_s {
    int n;
    int32_t *leaders, *replicas, *under_replicated;
    int32_t topics, partitions, offline, urp;
} counts_t;

static bool counts_take(mk_admin_t *a, counts_t *k)
{
    memset(k, 0, sizeof(*k));
    k->n = mk_cluster_broker_count(a->c);
    k->leaders = mk_calloc((size_t)k->n * 3, sizeof(int32_t));
    if (!k->leaders)
        return false;
    k->replicas = k->leaders + k->n;
    k->under_replicated = k->replicas + k->n;
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(a->c, &it))) {
        if (mk_cluster_topic_internal(t->name))
            continue; /* the health manager's probes: internal */
        k->topics++;
        for (int32_t i = 0; i < t->partition_count; i++) {
            mk_partition_t *p = mk_cluster_topic_partition(t, i);
            k->partitions++;
            bool urp = mk_partition_leader(p) >= 0 && mk_partition_isr_size(p) < mk_partition_replica_count(p);
            if (mk_partition_leader(p) < 0)
                k->offline++;
            if (urp)
                k->urp++;
            if (mk_partition_leader(p) >= 1 && mk_partition_leader(p) <= k->n) {
                k->leaders[mk_partition_leader(p) - 1]++;
                if (urp)
                    k->under_replicated[mk_partition_leader(p) - 1]++;
            }
            for (int32_t r = 0; r < mk_partition_replica_count(p); r++) {
                int32_t id = mk_partition_replica_broker(p, r);
                if (id >= 1 && id <= k->n)
                    k->replicas[id - 1]++;
            }
        }
    }
    return true;
}

static void counts_free(counts_t *k) { mk_free(k->leaders); }

/* The ids of the tenants placed in cell, the default one first when it is
 * there (one whose cell is -1, any cell, is in none). */
static json_t *cell_tenants_json(mk_admin_t *a, int32_t cell)
{
    json_t *ids = json_array();
    mk_tenant_registry_t *r = mk_broker_tenants(a->b);
    mk_tenant_t *t = r ? mk_tenant_find(r, "default") : NULL;
    for (size_t it = 0; t; t = mk_tenant_next(r, &it))
        if (t->cell == cell)
            json_array_append_new(ids, json_string(t->id));
    return ids;
}

/* A broker's state word: retired (removed, or replaced by the health
 * manager), draining (its replicas are moving off), drained (none left, not
 * yet removed), else running, stopped (controlled) or crashed. */
static const char *broker_state(mk_admin_t *a, const mk_cluster_broker_t *b)
{
    const mk_admin_drain_t *d = b->retired ? NULL : mk_admin_drain_of(a, b->id);
    if (b->retired)
        return "retired";
    if (d)
        return d->done ? "drained" : "draining";
    return b->running ? "running" : b->crashed ? "crashed" : "stopped";
}

/* A drain's progress, or null. */
static json_t *drain_json(mk_admin_t *a, const mk_cluster_broker_t *b)
{
    const mk_admin_drain_t *d = mk_admin_drain_of(a, b->id);
    if (!d)
        return json_null();
    return json_pack("{s:i, s:i, s:i, s:b, s:I, s:o}", "replicas", d->replicas, "replicas_left", d->left,
                     "stuck", d->stuck, "done", d->done, "started_ms", (json_int_t)d->started_ms, "done_ms",
                     d->done_ms ? json_integer(d->done_ms) : json_null());
}

/* "host:port" clients are told for b's PLAINTEXT listener (after any mapping). */
static void broker_advertised(mk_admin_t *a, const mk_cluster_broker_t *b, char *out, size_t n)
{
    int port;
    const char *host = mk_cluster_broker_endpoint(a->c, b, false, &port);
    mk_net_host_port(host, port, out, n);
}

static json_t *broker_json(mk_admin_t *a, mk_cluster_broker_t *b, const counts_t *k)
{
    int i = b->id - 1;
    char adv[300];
    broker_advertised(a, b, adv, sizeof(adv));
    return json_pack("{s:i, s:s, s:i, s:s, s:i, s:s, s:b, s:s, s:o, s:i, s:i, s:i, s:i}", "id", (int)b->id, "az",
                     b->az, "cell", (int)b->cell, "host", mk_cluster_advertise_host(a->c), "port", b->port,
                     "advertised", adv, "running", b->running, "state", broker_state(a, b), "drain",
                     drain_json(a, b), "leaders",
                     k && i >= 0 && i < k->n ? (int)k->leaders[i] : 0, "replicas",
                     k && i >= 0 && i < k->n ? (int)k->replicas[i] : 0, "under_replicated",
                     k && i >= 0 && i < k->n ? (int)k->under_replicated[i] : 0, "connections",
                     broker_conns(b));
}

/* ================================================================ handlers */

static void h_index(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    int n;
    const mk_admin_route_t *r = mk_admin_routes(&n);
    json_t *routes = json_array();
    for (int i = 0; i < n; i++) {
        char m[16];
        mk_admin_http_allow_str(r[i].method, m, sizeof(m));
        json_array_append_new(routes, json_pack("{s:s, s:s, s:s}", "method", m, "path", r[i].pattern,
                                                "summary", r[i].summary));
    }
    mk_admin_http_json(resp, 200, json_pack("{s:s, s:s, s:o}", "name", "minikora admin API", "version", a->version,
                                       "routes", routes));
}

static void h_healthz(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    mk_admin_http_json(resp, 200, json_pack("{s:s, s:I}", "status", "ok", "uptime_ms",
                                       (json_int_t)(mk_mono_ms() - a->started_mono_ms)));
}

static void h_readyz(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    int n = mk_cluster_broker_count(a->c), up = 0;
    for (int i = 0; i < n; i++)
        up += mk_cluster_broker_at(a->c, i)->running;
    bool ready = up > 0 && mk_cluster_controller_id(a->c) >= 0;
    mk_admin_http_json(resp, ready ? 200 : 503,
                  json_pack("{s:s, s:i, s:i}", "status", ready ? "ready" : "not_ready", "brokers_running", up,
                            "brokers", n));
}

static void h_cluster(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    counts_t k;
    if (!counts_take(a, &k)) {
        mk_admin_http_error(resp, 500, "internal", "out of memory");
        return;
    }
    json_t *brokers = json_array(), *azs = json_array(), *cells = json_array();
    int n = mk_cluster_broker_count(a->c);
    int up = 0;
    for (int i = 0; i < n; i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(a->c, i);
        up += b->running;
        json_array_append_new(brokers, broker_json(a, b, &k));
        /* AZs and cells in order of first appearance (broker ids run 1..N). */
        bool seen = false;
        for (size_t z = 0; z < json_array_size(azs); z++)
            if (strcmp(json_string_value(json_object_get(json_array_get(azs, z), "name")), b->az) == 0) {
                json_array_append_new(json_object_get(json_array_get(azs, z), "brokers"), json_integer(b->id));
                seen = true;
            }
        if (!seen)
            json_array_append_new(azs, json_pack("{s:s, s:[i]}", "name", b->az, "brokers", (int)b->id));
        json_t *cell = NULL;
        for (size_t z = 0; z < json_array_size(cells); z++)
            if (json_integer_value(json_object_get(json_array_get(cells, z), "id")) == b->cell)
                cell = json_array_get(cells, z);
        if (cell)
            json_array_append_new(json_object_get(cell, "brokers"), json_integer(b->id));
        else
            json_array_append_new(cells, json_pack("{s:i, s:[i]}", "id", (int)b->cell, "brokers", (int)b->id));
    }
    /* The tenants of each cell. */
    for (size_t z = 0; z < json_array_size(cells); z++) {
        json_t *cell = json_array_get(cells, z);
        json_object_set_new(cell, "tenants",
                            cell_tenants_json(a, (int32_t)json_integer_value(json_object_get(cell, "id"))));
    }
    /* Running counts per AZ, now that the lists are complete. */
    for (size_t z = 0; z < json_array_size(azs); z++) {
        json_t *az = json_array_get(azs, z);
        int run = 0;
        json_t *ids = json_object_get(az, "brokers");
        for (size_t x = 0; x < json_array_size(ids); x++) {
            mk_cluster_broker_t *b = mk_cluster_broker_find(a->c, (int32_t)json_integer_value(json_array_get(ids, x)));
            run += b && b->running;
        }
        json_object_set_new(az, "running", json_integer(run));
        json_object_set_new(az, "state", json_string(run == 0 ? "down" : run < (int)json_array_size(ids) ? "degraded" : "up"));
    }
    /* Each cell's load (balance.c), a fraction of its capacity. */
    for (size_t z = 0; z < json_array_size(cells); z++) {
        json_t *cell = json_array_get(cells, z);
        mk_admin_cell_load_t l;
        mk_admin_cell_load(a, (int32_t)json_integer_value(json_object_get(cell, "id")), &l);
        json_object_set_new(cell, "load", json_real(round(l.load * 1000) / 1000));
    }
    char boot[4096];
    mk_cluster_bootstrap(a->c, boot, sizeof(boot));
    json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:o, s:o, s:o}", "cluster_id",
                          mk_cluster_id(a->c), "version", a->version, "controller",
                          (int)mk_cluster_controller_id(a->c), "bootstrap", boot, "brokers_running", up,
                          "cell_size", mk_cluster_cell_size(a->c), "topics", (int)k.topics, "partitions",
                          (int)k.partitions, "under_replicated_partitions", (int)k.urp, "offline_partitions",
                          (int)k.offline, "uptime_ms", (json_int_t)(mk_mono_ms() - a->started_mono_ms), "azs", azs,
                          "cells", cells, "brokers", brokers);
    counts_free(&k);
    mk_admin_http_json(resp, 200, j);
}

static void h_brokers(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    counts_t k;
    if (!counts_take(a, &k)) {
        mk_admin_http_error(resp, 500, "internal", "out of memory");
        return;
    }
    json_t *arr = json_array();
    for (int i = 0; i < mk_cluster_broker_count(a->c); i++)
        json_array_append_new(arr, broker_json(a, mk_cluster_broker_at(a->c, i), &k));
    counts_free(&k);
    mk_admin_http_json(resp, 200, json_pack("{s:o}", "brokers", arr));
}

static mk_cluster_broker_t *broker_or_404(mk_admin_t *a, const char *seg, mk_http_resp_t *resp)
{
    int32_t id;
    mk_cluster_broker_t *b = parse_id(seg, &id) ? mk_cluster_broker_find(a->c, id) : NULL;
    if (!b)
        mk_admin_http_error(resp, 404, "unknown_broker", "no broker '%s' (ids run 1..%d)", seg,
                       mk_cluster_broker_count(a->c));
    return b;
}

static void h_broker(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    mk_cluster_broker_t *b = broker_or_404(a, caps->v[0], resp);
    if (!b)
        return;
    counts_t k;
    bool have = counts_take(a, &k);
    json_t *j = broker_json(a, b, have ? &k : NULL);
    if (have)
        counts_free(&k);
    mk_admin_http_json(resp, 200, json_pack("{s:o}", "broker", j));
}

enum { ACT_STOP, ACT_CRASH, ACT_START, ACT_RESTART };

static void broker_action(mk_admin_t *a, const mk_admin_caps_t *caps, mk_http_resp_t *resp, int act)
{
    static const char *names[] = {"stop", "crash", "start", "restart"};
    mk_cluster_broker_t *b = broker_or_404(a, caps->v[0], resp);
    if (!b)
        return;
    mk_repl_t *r = mk_broker_repl(a->b);
    bool was = b->running;
    int rc;
    switch (act) {
    case ACT_STOP: rc = mk_repl_broker_shutdown(r, b->id); break;
    case ACT_CRASH: rc = mk_repl_broker_crash(r, b->id); break;
    case ACT_START: rc = mk_repl_broker_start(r, b->id); break;
    default:
        rc = b->running ? mk_repl_broker_shutdown(r, b->id) : 0;
        if (rc == 0)
            rc = mk_repl_broker_start(r, b->id);
        break;
    }
    if (rc == MK_ERR_STATE) {
        /* "already" when the broker is where the action would take it */
        const char *st = broker_state(a, b);
        bool already = (act == ACT_CRASH && strcmp(st, "crashed") == 0) ||
                       (act == ACT_STOP && (strcmp(st, "stopped") == 0 || strcmp(st, "crashed") == 0)) ||
                       (act == ACT_START && strcmp(st, "running") == 0);
        mk_admin_http_error(resp, 409, "broker_state", "broker %d is %s%s", b->id, already ? "already " : "", st);
        return;
    }
    if (rc < 0) {
        mk_admin_http_error(resp, 500, "action_failed", "%s of broker %d failed: %s", names[act], b->id,
                       rc > -100 ? mk_strerror(rc) : uv_strerror(rc));
        return;
    }
    static const char *causes[] = {"admin API: stop", "admin API: crash", "admin API: start",
                                   "admin API: restart"};
    if (act == ACT_RESTART && was)
        mk_admin_event(a, "broker_restarted", b->id, "broker %d restarted (admin API: restart)", b->id);
    mk_admin_observe(a, causes[act], false);
    counts_t k;
    bool have = counts_take(a, &k);
    json_t *j = broker_json(a, b, have ? &k : NULL);
    if (have)
        counts_free(&k);
    mk_admin_http_json(resp, 200, json_pack("{s:s, s:o}", "action", names[act], "broker", j));
}

static void h_broker_stop(mk_admin_t *a, const mk_http_req_t *q, const mk_admin_caps_t *c, mk_http_resp_t *r)
{
    broker_action(a, c, r, ACT_STOP);
}
static void h_broker_crash(mk_admin_t *a, const mk_http_req_t *q, const mk_admin_caps_t *c, mk_http_resp_t *r)
{
    broker_action(a, c, r, ACT_CRASH);
}
static void h_broker_start(mk_admin_t *a, const mk_http_req_t *q, const mk_admin_caps_t *c, mk_http_resp_t *r)
{
    broker_action(a, c, r, ACT_START);
}
static void h_broker_restart(mk_admin_t *a, const mk_http_req_t *q, const mk_admin_caps_t *c, mk_http_resp_t *r)
{
    broker_action(a, c, r, ACT_RESTART);
}

/* The answer of the elasticity routes: the broker as GET shows it. */
static void broker_reply(mk_admin_t *a, mk_cluster_broker_t *b, int status, mk_http_resp_t *resp)
{
    counts_t k;
    bool have = counts_take(a, &k);
    json_t *j = broker_json(a, b, have ? &k : NULL);
    if (have)
        counts_free(&k);
    mk_admin_http_json(resp, status, json_pack("{s:o}", "broker", j));
}

/* POST /v1/brokers {"az": "az-1", "cell": 0}: one more broker in a cell. */
static void h_broker_add(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    const char *az = NULL;
    json_int_t cell = -1;
    if (!body || json_unpack(body, "{s:s, s:I}", "az", &az, "cell", &cell) < 0) {
        json_decref(body);
        mk_admin_http_error(resp, 400, "bad_request",
                            "the body must be a JSON object with a string \"az\" and an integer \"cell\"");
        return;
    }
    char azc[16];
    snprintf(azc, sizeof(azc), "%s", az);
    json_decref(body);
    int32_t id = -1;
    int rc = cell >= 0 && cell < mk_cluster_cell_count(a->c) ? mk_cluster_broker_add(a->c, azc, (int32_t)cell, &id)
                                                             : MK_ERR_INVALID;
    if (rc == MK_ERR_INVALID) {
        mk_admin_http_error(resp, 400, "bad_placement", "no cell %lld or no AZ '%s' (cells 0..%d)", (long long)cell,
                            azc, mk_cluster_cell_count(a->c) - 1);
        return;
    }
    if (rc == MK_ERR_RANGE) {
        mk_admin_http_error(resp, 409, "too_many_brokers", "at most %d brokers in all", MK_CLUSTER_MAX_BROKERS);
        return;
    }
    mk_cluster_broker_t *b = id > 0 ? mk_cluster_broker_find(a->c, id) : NULL;
    if (!b) {
        mk_admin_http_error(resp, 500, "internal", "cannot add a broker: %s", mk_strerror(rc));
        return;
    }
    if (rc < 0)
        mk_warn("admin: broker %d added but not yet persisted: %s", id, mk_strerror(rc));
    mk_admin_event(a, "broker_added", id, "broker %d added in %s, cell %d (admin API)", (int)id, b->az, b->cell);
    mk_admin_observe(a, "broker added", false);
    broker_reply(a, b, 201, resp);
}

/* POST /v1/brokers/{id}/drain: move every replica off it, online. */
static void h_broker_drain(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                           mk_http_resp_t *resp)
{
    mk_cluster_broker_t *b = broker_or_404(a, caps->v[0], resp);
    if (!b)
        return;
    int rc = mk_admin_broker_drain(a, b->id);
    if (rc == MK_ERR_STATE)
        mk_admin_http_error(resp, 409, "broker_state", "broker %d is retired", b->id);
    else if (rc == MK_ERR_EXISTS)
        mk_admin_http_error(resp, 409, "already_draining", "broker %d is already %s", b->id, broker_state(a, b));
    else if (rc < 0)
        mk_admin_http_error(resp, 500, "internal", "cannot drain broker %d: %s", b->id, mk_strerror(rc));
    else
        broker_reply(a, b, 202, resp);
}

/* DELETE /v1/brokers/{id}/drain: stop draining (moved replicas stay). */
static void h_broker_drain_cancel(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                                  mk_http_resp_t *resp)
{
    mk_cluster_broker_t *b = broker_or_404(a, caps->v[0], resp);
    if (!b)
        return;
    if (mk_admin_broker_drain_cancel(a, b->id) < 0)
        mk_admin_http_error(resp, 409, "not_draining", "broker %d is not draining", b->id);
    else
        broker_reply(a, b, 200, resp);
}

/* DELETE /v1/brokers/{id} (and POST .../remove): retire a drained broker. */
static void h_broker_remove(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                            mk_http_resp_t *resp)
{
    mk_cluster_broker_t *b = broker_or_404(a, caps->v[0], resp);
    if (!b)
        return;
    int64_t left = 0;
    int rc = mk_admin_broker_remove(a, b->id, &left);
    if (rc == MK_ERR_EXISTS)
        mk_admin_http_error(resp, 409, "broker_state", "broker %d is already retired", b->id);
    else if (rc == MK_ERR_STATE)
        mk_admin_http_error(resp, 409, "broker_has_replicas",
                            "broker %d still holds %lld replicas: drain it first (POST /v1/brokers/%d/drain)%s",
                            b->id, (long long)left, b->id,
                            mk_admin_drain_of(a, b->id) ? " -- its drain is still running" : "");
    else if (rc == MK_ERR_RANGE)
        mk_admin_http_error(resp, 409, "last_in_az",
                            "broker %d is the last broker of %s in cell %d: removing it would leave the cell without "
                            "that AZ (add a broker there first: POST /v1/brokers)",
                            b->id, b->az, b->cell);
    else if (rc < 0)
        mk_admin_http_error(resp, 500, "internal", "cannot remove broker %d: %s", b->id, mk_strerror(rc));
    else {
        mk_admin_event(a, "broker_removed", b->id, "broker %d removed from %s, cell %d (admin API)", b->id, b->az,
                       b->cell);
        mk_admin_observe(a, "broker removed", false);
        broker_reply(a, b, 200, resp);
    }
}

static void az_action(mk_admin_t *a, const mk_admin_caps_t *caps, mk_http_resp_t *resp, bool up)
{
    const char *az = caps->v[0];
    json_t *ids = json_array();
    bool known = false;
    for (int i = 0; i < mk_cluster_broker_count(a->c); i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(a->c, i);
        if (strcmp(b->az, az) == 0) {
            known = true;
            json_array_append_new(ids, json_integer(b->id));
        }
    }
    if (!known) {
        json_decref(ids);
        mk_admin_http_error(resp, 404, "unknown_az", "no availability zone '%s'", az);
        return;
    }
    mk_repl_t *r = mk_broker_repl(a->b);
    int n = up ? mk_repl_az_up(r, az) : mk_repl_az_down(r, az);
    mk_admin_event(a, up ? "az_up" : "az_down", -1, "%s %s: %d brokers %s (admin API)", az, up ? "up" : "down",
                   n, up ? "started" : "crashed");
    mk_admin_observe(a, up ? "admin API: AZ up" : "admin API: AZ down", false);
    mk_admin_http_json(resp, 200, json_pack("{s:s, s:s, s:o, s:i}", "az", az, "action", up ? "up" : "down", "brokers",
                                       ids, "brokers_changed", n));
}

static void h_az_down(mk_admin_t *a, const mk_http_req_t *q, const mk_admin_caps_t *c, mk_http_resp_t *r)
{
    az_action(a, c, r, false);
}
static void h_az_up(mk_admin_t *a, const mk_http_req_t *q, const mk_admin_caps_t *c, mk_http_resp_t *r)
{
    az_action(a, c, r, true);
}

/* ------------------------------------------------------------------ topics */

/* Bytes and records of a topic's partition logs on their leaders (a
 * partition without a leader log counts nothing): the topic's size_bytes
 * and messages, and what a tenant's storage_bytes sums. */
static void topic_log_totals(mk_topic_t *t, uint64_t *size, int64_t *records)
{
    *size = 0;
    *records = 0;
    for (int32_t i = 0; i < t->partition_count; i++) {
        mk_partition_t *p = mk_cluster_topic_partition(t, i);
        if (mk_partition_log(p)) {
            mk_log_stats_t st;
            mk_log_stats(mk_partition_log(p), &st);
            *size += st.size_bytes;
            *records += mk_partition_hw(p) - st.start_offset > 0 ? mk_partition_hw(p) - st.start_offset : 0;
        }
    }
}

static json_t *topic_summary_json(mk_admin_t *a, mk_topic_t *t)
{
    char id[MK_CLUSTER_UUID_STR_LEN];
    mk_cluster_uuid_str(t->id, id);
    int urp = 0, offline = 0;
    for (int32_t i = 0; i < t->partition_count; i++) {
        mk_partition_t *p = mk_cluster_topic_partition(t, i);
        if (mk_partition_leader(p) < 0)
            offline++;
        else if (mk_partition_isr_size(p) < mk_partition_replica_count(p))
            urp++;
    }
    uint64_t size;
    int64_t records;
    topic_log_totals(t, &size, &records);
    return json_pack("{s:o, s:s, s:i, s:i, s:i, s:I, s:i, s:i, s:I, s:I}", "name", jstr(t->name), "id", id,
                     "partitions", (int)t->partition_count, "replication_factor", (int)t->replication_factor, "cell",
                     (int)t->cell, "created_ms", (json_int_t)t->created_ms, "under_replicated_partitions", urp,
                     "offline_partitions", offline, "size_bytes", (json_int_t)size, "messages",
                     (json_int_t)records);
}

static void h_topics(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    json_t *arr = json_array();
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(a->c, &it)))
        if (!mk_cluster_topic_internal(t->name)) /* probe topics: GET /v1/health */
            json_array_append_new(arr, topic_summary_json(a, t));
    mk_admin_http_json(resp, 200, json_pack("{s:o}", "topics", arr));
}

static json_t *topic_detail_json(mk_admin_t *a, mk_topic_t *t)
{
    json_t *j = topic_summary_json(a, t);
    json_t *parts = json_array();
    for (int32_t i = 0; i < t->partition_count; i++) {
        mk_partition_t *p = mk_cluster_topic_partition(t, i);
        json_t *reps = json_array(), *isr = json_array(), *offline = json_array(), *states = json_array();
        for (int32_t r = 0; r < mk_partition_replica_count(p); r++) {
            int32_t id = mk_partition_replica_broker(p, r);
            mk_log_t *rlog = mk_partition_replica_log(p, id);
            bool in_sync = mk_partition_replica_in_isr(p, id);
            mk_cluster_broker_t *b = mk_cluster_broker_find(a->c, id);
            bool online = b && b->running && rlog;
            json_array_append_new(reps, json_integer(id));
            if (in_sync)
                json_array_append_new(isr, json_integer(id));
            if (!online)
                json_array_append_new(offline, json_integer(id));
            json_array_append_new(states, json_pack("{s:i, s:b, s:b, s:o}", "broker", (int)id, "online",
                                                    online, "in_sync", in_sync, "log_end_offset",
                                                    rlog ? jint(mk_log_end_offset(rlog)) : json_null()));
        }
        json_t *pj = json_pack("{s:i, s:i, s:i, s:o, s:o, s:o, s:o}", "partition", (int)mk_partition_index(p), "leader",
                               (int)mk_partition_leader(p), "leader_epoch", (int)mk_partition_leader_epoch(p), "replicas", reps, "isr", isr,
                               "offline_replicas", offline, "replica_states", states);
        mk_tier_t *tier = mk_broker_tier(a->b);
        if (tier) {
            /* Tiered storage: where the log starts locally and in S3. */
            mk_tier_partition_info_t ti;
            mk_tier_partition_info(tier, p, &ti);
            json_object_set_new(pj, "tiered", json_boolean(ti.tiered));
            json_object_set_new(pj, "local_log_start_offset", ti.local_log_start >= 0 ? jint(ti.local_log_start) : json_null());
            json_object_set_new(pj, "remote_log_start_offset", ti.remote_log_start >= 0 ? jint(ti.remote_log_start) : json_null());
            json_object_set_new(pj, "remote_log_end_offset", ti.remote_end >= 0 ? jint(ti.remote_end) : json_null());
            json_object_set_new(pj, "remote_size_bytes", jint(ti.remote_bytes));
            json_object_set_new(pj, "remote_segments",
                                json_pack("{s:i, s:i, s:i}", "COPY_STARTED", ti.segments[0], "COPY_FINISHED",
                                          ti.segments[1], "DELETE_STARTED", ti.segments[2]));
            json_object_set_new(pj, "upload_pending_segments", json_integer(ti.upload_pending));
            json_object_set_new(pj, "upload_pending_bytes", jint(ti.upload_pending_bytes));
            json_object_set_new(pj, "uploads_failed", jint((int64_t)ti.uploads_failed));
            json_object_set_new(pj, "upload_error", ti.last_error[0] ? json_string(ti.last_error) : json_null());
            json_object_set_new(pj, "cache_memory_bytes", jint((int64_t)ti.cache_memory_bytes));
        }
        if (mk_partition_log(p)) {
            mk_log_stats_t st;
            mk_log_stats(mk_partition_log(p), &st);
            if (!tier)
                json_object_set_new(pj, "local_log_start_offset", jint(st.start_offset));
            json_object_set_new(pj, "log_start_offset", jint(mk_tier_log_start(tier, p, st.start_offset)));
            json_object_set_new(pj, "log_end_offset", jint(st.end_offset));
            json_object_set_new(pj, "high_watermark", jint(mk_partition_hw(p)));
            json_object_set_new(pj, "size_bytes", jint((int64_t)st.size_bytes));
            json_object_set_new(pj, "segments", jint(st.segment_count));
            if (t->cfg.cleanup_compact) {
                /* compaction on the leader's log (each replica compacts its own) */
                mk_log_clean_info_t ci;
                mk_log_clean_info(mk_partition_log(p), &ci);
                json_object_set_new(pj, "cleaner",
                                    json_pack("{s:o, s:f, s:o, s:o, s:b, s:o, s:o}", "cleaned_offset",
                                              jint(ci.cleaned_offset), "dirty_ratio", ci.dirty_ratio, "dirty_bytes",
                                              jint((int64_t)ci.dirty_bytes), "clean_bytes",
                                              jint((int64_t)ci.clean_bytes), "running", ci.running, "runs",
                                              jint((int64_t)ci.runs), "tombstone_horizon_ms",
                                              ci.tombstone_horizon >= 0 ? jint(ci.tombstone_horizon) : json_null()));
            }
        } else {
            json_object_set_new(pj, "log_start_offset", json_null());
            json_object_set_new(pj, "log_end_offset", json_null());
            json_object_set_new(pj, "high_watermark", jint(mk_partition_hw(p)));
            json_object_set_new(pj, "size_bytes", json_null());
            json_object_set_new(pj, "segments", json_null());
        }
        json_array_append_new(parts, pj);
    }
    json_t *cfg = json_object();
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&t->overrides, &it, &k, &v))
        json_object_set_new(cfg, k, jstr(v));
    json_object_set_new(j, "configs", cfg);
    json_object_set_new(j, "partition_details", parts);
    return j;
}

static void h_topic(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    mk_topic_t *t = mk_cluster_topic_find(a->c, caps->v[0]);
    if (!t) {
        mk_admin_http_error(resp, 404, "unknown_topic", "no topic '%s'", caps->v[0]);
        return;
    }
    mk_admin_http_json(resp, 200, json_pack("{s:o}", "topic", topic_detail_json(a, t)));
}

/* ----------------------------------------------------------- topic records */

#define RECORDS_LIMIT_DEFAULT 20
#define RECORDS_LIMIT_MAX 500
#define RECORDS_MAX_BYTES ((size_t)1 << 20)   /* read per answer at most (one batch more if larger) */
#define RECORDS_KEY_PREVIEW 128               /* bytes of a key, a header key or value shown */
#define RECORDS_VALUE_PREVIEW 512             /* bytes of a value shown */

/* A preview of bytes as JSON text: printable ASCII as it is, every other
 * byte as \xNN (as kcat -e does), at most max source bytes; NULL data is
 * JSON null.  *cut says whether bytes were left out. */
static json_t *preview_json(const uint8_t *d, int32_t len, size_t max, bool *cut)
{
    *cut = false;
    if (len < 0 || !d)
        return json_null();
    size_t n = (size_t)len < max ? (size_t)len : max;
    *cut = n < (size_t)len;
    char *buf = mk_malloc(n * 4 + 1);
    if (!buf)
        return json_null();
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = d[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, 5, "\\x%02x", c);
    }
    json_t *j = json_stringn(buf, o);
    mk_free(buf);
    return j ? j : json_null();
}

typedef struct records_ctx_s {
    json_t *arr;
    int64_t from, upto;       /* offsets served: [from, upto) */
    int limit;
    int64_t last;             /* last offset added, -1 none */
} records_ctx_t;

static int record_cb(const mk_record_t *rec, void *arg)
{
    records_ctx_t *c = arg;
    if (rec->offset < c->from)
        return 0;
    if (rec->offset >= c->upto || (int)json_array_size(c->arr) >= c->limit)
        return 1;
    bool kcut, vcut;
    json_t *headers = json_array();
    mk_reader_t r;
    mk_rd_init(&r, rec->headers, rec->headers_len);
    mk_record_header_t h;
    while (mk_batch_record_header_next(&r, &h) == 1) {
        bool hk, hv;
        json_array_append_new(headers, json_pack("{s:o, s:o}", "key",
                                                 preview_json(h.key, h.key_len, RECORDS_KEY_PREVIEW, &hk), "value",
                                                 preview_json(h.value, h.value_len, RECORDS_KEY_PREVIEW, &hv)));
    }
    json_t *e = json_pack("{s:I, s:I, s:o, s:i, s:o, s:i, s:o}", "offset", (json_int_t)rec->offset, "timestamp",
                          (json_int_t)rec->timestamp, "key",
                          preview_json(rec->key, rec->key_len, RECORDS_KEY_PREVIEW, &kcut), "key_size",
                          (int)rec->key_len, "value",
                          preview_json(rec->value, rec->value_len, RECORDS_VALUE_PREVIEW, &vcut), "value_size",
                          (int)rec->value_len, "headers", headers);
    if (e) {
        json_object_set_new(e, "truncated", json_boolean(kcut || vcut));
        json_array_append_new(c->arr, e);
    }
    c->last = rec->offset;
    return 0;
}

/* GET /v1/topics/{name}/records?partition=P&offset=O&limit=N: at most N
 * records of one partition from offset O, as a consumer (read_uncommitted)
 * would get them -- the same read path and checks as Fetch
 * (mk_broker_records_read): committed offsets only, lost data refused, one
 * bounded disk read, never a wait.  O -1 (the default) means the newest N
 * records, -2 the oldest.  next_offset is where a tail continues. */
static void h_topic_records(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                            mk_http_resp_t *resp)
{
    char v[32];
    int32_t part = 0, limit = RECORDS_LIMIT_DEFAULT;
    int64_t offset = -1;
    if (mk_admin_query_get(req->query, "partition", v, sizeof(v)) && (!parse_id(v, &part) || part < 0)) {
        mk_admin_http_error(resp, 400, "bad_request", "partition must be a non-negative integer");
        return;
    }
    if (mk_admin_query_get(req->query, "limit", v, sizeof(v)) &&
        (!parse_id(v, &limit) || limit < 1 || limit > RECORDS_LIMIT_MAX)) {
        mk_admin_http_error(resp, 400, "bad_request", "limit must be 1..%d", RECORDS_LIMIT_MAX);
        return;
    }
    if (mk_admin_query_get(req->query, "offset", v, sizeof(v))) {
        char *end;
        errno = 0;
        long long o = strtoll(v, &end, 10);
        if (errno || end == v || *end || o < -2) {
            mk_admin_http_error(resp, 400, "bad_request",
                                "offset must be an offset, -1 (the newest records) or -2 (the oldest)");
            return;
        }
        offset = o;
    }
    mk_topic_t *t = mk_cluster_topic_find(a->c, caps->v[0]);
    if (!t) {
        mk_admin_http_error(resp, 404, "unknown_topic", "no topic '%s'", caps->v[0]);
        return;
    }
    mk_partition_t *p = mk_cluster_topic_partition(t, part);
    if (!p) {
        mk_admin_http_error(resp, 404, "unknown_partition", "topic '%s' has no partition %d", caps->v[0], (int)part);
        return;
    }
    /* The newest N: start N before the high watermark (or the log start). */
    mk_broker_records_info_t info;
    mk_buf_t buf;
    mk_buf_init(&buf);
    int16_t err = 0;
    if (offset == -1) {
        err = mk_broker_records_read(a->b, p, -1, 0, &buf, &info); /* bounds only: reads nothing */
        if (!err) {
            offset = MK_MAX(info.served_upto - limit, MK_MAX(info.log_start_offset, info.local_log_start_offset));
            if (offset > info.served_upto)
                offset = info.served_upto;
        }
    }
    if (!err) {
        buf.len = 0;
        err = mk_broker_records_read(a->b, p, offset, RECORDS_MAX_BYTES, &buf, &info);
    }
    if (err) {
        mk_buf_free(&buf);
        int status = err == MK_KERR_OFFSET_OUT_OF_RANGE ? 416 : err == MK_KERR_CORRUPT_MESSAGE ? 409 : 503;
        mk_admin_http_error(resp, status,
                            err == MK_KERR_CORRUPT_MESSAGE        ? "data_lost"
                            : err == MK_KERR_OFFSET_OUT_OF_RANGE ? "offset_out_of_range"
                                                                 : "read_failed",
                            "%s%s", mk_kafka_strerror(err),
                            err == MK_KERR_CORRUPT_MESSAGE ? ": these offsets were found lost (GET /v1/integrity)"
                            : err == MK_KERR_OFFSET_OUT_OF_RANGE ? ": the offset is outside the partition's log"
                                                                 : "");
        return;
    }
    int64_t from = info.offset;
    records_ctx_t rc = {json_array(), from, info.served_upto, limit, -1};
    mk_buf_t scratch;
    mk_buf_init(&scratch);
    size_t pos = 0;
    mk_batch_view_t bv;
    while (mk_batch_view_next(buf.data, buf.len, &pos, &bv) == 1) {
        if (mk_batch_hdr_is_control(&bv.hdr))
            continue; /* transaction markers are not records */
        int r = mk_batch_records_foreach(buf.data + bv.pos, bv.size, &scratch, 0, record_cb, &rc);
        if (r != 0)
            break; /* the limit (r > 0), or a damaged batch: what came before it is served; the scrubber has its own checks */
    }
    mk_buf_free(&scratch);
    mk_buf_free(&buf);
    /* Past the last record given; without one, past what was read (control batches only). */
    int64_t next = rc.last >= 0 ? rc.last + 1 : MK_MAX(from, MK_MIN(info.next_offset, info.served_upto));
    json_t *j = json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:o}", "topic", caps->v[0], "partition", (int)part,
                          "log_start_offset", (json_int_t)info.log_start_offset, "high_watermark",
                          (json_int_t)info.high_watermark, "offset", (json_int_t)from, "next_offset",
                          (json_int_t)next, "records", rc.arr);
    if (j && info.skipped_remote)
        json_object_set_new(j, "skipped_remote", json_true());
    if (j && info.served_upto < info.high_watermark)
        json_object_set_new(j, "lost_from", jint(info.served_upto));
    mk_admin_http_json(resp, 200, j);
}

/* A config value as text: strings as they are, numbers and booleans printed. */
static bool config_text(json_t *v, char *out, size_t n)
{
    if (json_is_string(v))
        return (size_t)snprintf(out, n, "%s", json_string_value(v)) < n;
    if (json_is_integer(v))
        return (size_t)snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < n;
    if (json_is_real(v))
        return (size_t)snprintf(out, n, "%.17g", json_real_value(v)) < n;
    if (json_is_boolean(v))
        return (size_t)snprintf(out, n, "%s", json_is_true(v) ? "true" : "false") < n;
    return false;
}

static void h_topic_create(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                           mk_http_resp_t *resp)
{
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body) {
        mk_admin_http_error(resp, 400, "bad_json", "the body is not valid JSON: %s (line %d, column %d)", jerr.text,
                       jerr.line, jerr.column);
        return;
    }
    const mk_config_t *cfg = mk_cluster_config(a->c);
    int cell = mk_cluster_cell_size(a->c);
    const char *name = NULL;
    json_int_t parts = mk_cluster_config_get_i64(cfg, "num.partitions");
    json_int_t rf = MK_MIN(mk_cluster_config_get_i64(cfg, "default.replication.factor"), cell);
    json_t *configs = NULL;
    char why[300] = "";
    const char *key;
    json_t *v;
    if (!json_is_object(body))
        snprintf(why, sizeof(why), "the body must be a JSON object");
    json_object_foreach(body, key, v)
    {
        if (why[0])
            break;
        if (strcmp(key, "name") == 0 && json_is_string(v))
            name = json_string_value(v);
        else if (strcmp(key, "partitions") == 0 && json_is_integer(v))
            parts = json_integer_value(v);
        else if (strcmp(key, "replication_factor") == 0 && json_is_integer(v))
            rf = json_integer_value(v);
        else if (strcmp(key, "configs") == 0 && (json_is_object(v) || json_is_null(v)))
            configs = json_is_object(v) ? v : NULL;
        else if (strcmp(key, "name") == 0 || strcmp(key, "partitions") == 0 ||
                 strcmp(key, "replication_factor") == 0 || strcmp(key, "configs") == 0)
            snprintf(why, sizeof(why), "field '%s' has the wrong type", key);
        else
            snprintf(why, sizeof(why), "unknown field '%.100s' (known: name, partitions, replication_factor, "
                                       "configs)", key);
    }
    if (!why[0] && !name)
        snprintf(why, sizeof(why), "field 'name' is required");
    if (why[0]) {
        json_decref(body);
        mk_admin_http_error(resp, 400, "bad_request", "%s", why);
        return;
    }
    if (!mk_cluster_topic_name_valid(name, why, sizeof(why))) {
        mk_admin_http_error(resp, 400, "invalid_topic", "%s", why);
        json_decref(body);
        return;
    }
    if (mk_cluster_topic_find(a->c, name)) {
        mk_admin_http_error(resp, 409, "topic_exists", "topic '%s' already exists", name);
        json_decref(body);
        return;
    }
    size_t nc = configs ? json_object_size(configs) : 0;
    const char **keys = mk_calloc(nc + 1, sizeof(char *));
    char **vals = mk_calloc(nc + 1, sizeof(char *));
    int32_t ci = 0;
    int status = 0;
    if (!keys || !vals) {
        status = 500;
        snprintf(why, sizeof(why), "out of memory");
    }
    if (configs && !status) {
        /* A value that has no text form stays NULL: the check below calls
         * it invalid, after any unknown name before it. */
        json_object_foreach(configs, key, v)
        {
            char text[1024];
            keys[ci] = key;
            if (config_text(v, text, sizeof(text)) && !(vals[ci] = mk_strdup(text))) {
                status = 500;
                snprintf(why, sizeof(why), "out of memory");
                break;
            }
            ci++;
        }
    }
    /* Partitions, replication factor and configs: the cluster's one check.
     * Values beyond the spec's integer types are out of range as they are. */
    mk_topic_spec_t spec = {name, parts < 1 || parts > INT32_MAX ? 0 : (int32_t)parts,
                            (int16_t)(rf < 1 || rf > INT16_MAX ? 0 : rf), ci, keys, (const char *const *)vals, NULL, false, 0};
    int32_t bad = 0;
    switch (status ? MK_CLUSTER_SPEC_OK : mk_cluster_topic_spec_check(a->c, &spec, &bad)) {
    case MK_CLUSTER_SPEC_PARTITIONS:
        status = 400;
        mk_admin_http_error(resp, 400, "invalid_partitions", "partitions must be 1..%d, not %lld",
                            MK_CLUSTER_MAX_PARTITIONS, (long long)parts);
        break;
    case MK_CLUSTER_SPEC_REPLICATION:
        status = 400;
        mk_admin_http_error(resp, 400, "invalid_replication_factor",
                            "replication_factor must be 1..%d (the brokers of a cell, one per AZ), not %lld", cell,
                            (long long)rf);
        break;
    case MK_CLUSTER_SPEC_CONFIG_NAME:
        status = 400;
        mk_admin_http_error(resp, 400, "invalid_config", "unknown topic config '%.100s'", keys[bad]);
        break;
    case MK_CLUSTER_SPEC_CONFIG_VALUE:
        status = 400;
        mk_admin_http_error(resp, 400, "invalid_config", "invalid value for topic config '%s'", keys[bad]);
        break;
    }
    mk_topic_t *t = NULL;
    if (!status) {
        int rc = mk_broker_topic_create(a->b, &spec, &t);
        if (rc == MK_ERR_EXISTS) {
            status = 409;
            snprintf(why, sizeof(why), "topic '%s' already exists", name);
        } else if (rc < 0) {
            status = 500;
            snprintf(why, sizeof(why), "cannot create topic '%s': %s", name, mk_strerror(rc));
        }
    }
    for (int32_t i = 0; vals && i < ci; i++)
        mk_free(vals[i]);
    mk_free(keys);
    mk_free(vals);
    if (status) {
        if (status != 400) /* the 400s are answered above */
            mk_admin_http_error(resp, status, status == 409 ? "topic_exists" : "internal", "%s", why);
        json_decref(body);
        return;
    }
    mk_admin_observe(a, "admin API", false);
    json_decref(body);
    mk_admin_http_json(resp, 201, json_pack("{s:o}", "topic", topic_detail_json(a, t)));
}

static void h_topic_delete(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                           mk_http_resp_t *resp)
{
    mk_topic_t *t = mk_cluster_topic_find(a->c, caps->v[0]);
    if (!t) {
        mk_admin_http_error(resp, 404, "unknown_topic", "no topic '%s'", caps->v[0]);
        return;
    }
    if (!mk_cluster_config_get_bool(mk_cluster_config(a->c), "delete.topic.enable")) {
        mk_admin_http_error(resp, 403, "topic_deletion_disabled", "delete.topic.enable is false");
        return;
    }
    char id[MK_CLUSTER_UUID_STR_LEN];
    mk_cluster_uuid_str(t->id, id);
    int rc = mk_broker_topic_delete(a->b, t);
    if (rc < 0) {
        mk_admin_http_error(resp, 500, "internal", "cannot delete topic '%s': %s", caps->v[0], mk_strerror(rc));
        return;
    }
    mk_admin_observe(a, "admin API", false);
    mk_admin_http_json(resp, 200, json_pack("{s:s, s:s}", "deleted", caps->v[0], "id", id));
}

/* ------------------------------------------------------------------ groups */

typedef struct group_ctx_s {
    mk_admin_t *a;
    json_t *arr;
    int count;
    bool detail;
    int64_t lag;              /* sum of the known lags */
    bool lag_known;           /* at least one lag was known */
} group_ctx_t;

static void offset_cb(const char *topic, int32_t partition, const mk_group_offset_t *o, void *arg)
{
    group_ctx_t *g = arg;
    g->count++;
    mk_topic_t *t = mk_cluster_topic_find(g->a->c, topic);
    mk_partition_t *p = t ? mk_cluster_topic_partition(t, partition) : NULL;
    int64_t lag = p && o->offset >= 0 ? MK_MAX(mk_partition_hw(p) - o->offset, 0) : -1;
    if (lag >= 0) {
        g->lag += lag;
        g->lag_known = true;
    }
    if (!g->detail)
        return;
    json_t *e = json_pack("{s:o, s:i, s:I, s:i, s:o}", "topic", jstr(topic), "partition", (int)partition, "offset",
                          (json_int_t)o->offset, "leader_epoch", (int)o->leader_epoch, "metadata",
                          jstr(o->metadata));
    json_object_set_new(e, "lag", lag >= 0 ? jint(lag) : json_null());
    json_array_append_new(g->arr, e);
}

/* A member's assignment of the "consumer" protocol (ConsumerProtocolAssignment:
 * int16 version, [string topic, [int32 partition]], bytes user data) as
 * [{"topic", "partitions"}]; null when it is empty, another protocol's or
 * does not parse.  Every count is checked against the bytes left. */
static json_t *assignment_json(const uint8_t *b, int32_t len)
{
    if (!b || len < 2)
        return json_null();
    mk_reader_t r;
    mk_rd_init(&r, b, (size_t)len);
    int16_t version = mk_rd_i16(&r);
    int32_t ntopics = mk_rd_i32(&r);
    if (!mk_rd_ok(&r) || version < 0 || ntopics < 0 || (size_t)ntopics > mk_rd_remaining(&r) / 6)
        return json_null();
    json_t *arr = json_array();
    for (int32_t i = 0; i < ntopics && mk_rd_ok(&r); i++) {
        int16_t tl = mk_rd_i16(&r);
        const uint8_t *tn = tl >= 0 ? mk_rd_bytes(&r, (size_t)tl) : NULL;
        int32_t np = mk_rd_i32(&r);
        if (!mk_rd_ok(&r) || !tn || np < 0 || (size_t)np > mk_rd_remaining(&r) / 4)
            break;
        json_t *parts = json_array();
        for (int32_t k = 0; k < np; k++)
            json_array_append_new(parts, json_integer(mk_rd_i32(&r)));
        json_t *name = json_stringn((const char *)tn, (size_t)tl);
        if (!name) { /* not UTF-8: not a topic name */
            json_decref(parts);
            break;
        }
        json_array_append_new(arr, json_pack("{s:o, s:o}", "topic", name, "partitions", parts));
    }
    if (!mk_rd_ok(&r)) {
        json_decref(arr);
        return json_null();
    }
    return arr;
}

static json_t *group_json(mk_admin_t *a, const mk_group_desc_t *d, bool detail)
{
    mk_group_coord_t *gc = mk_broker_groups(a->b);
    json_t *members = json_array();
    for (int32_t i = 0; i < d->member_count; i++) {
        const mk_group_member_info_t *m = &d->members[i];
        json_t *mj = json_pack("{s:o, s:o, s:o, s:o}", "member_id", jstr(m->member_id), "group_instance_id",
                               jstr(m->group_instance_id), "client_id", jstr(m->client_id), "client_host",
                               jstr(m->client_host));
        if (mj && d->protocol_type && strcmp(d->protocol_type, "consumer") == 0)
            json_object_set_new(mj, "assignment", assignment_json(m->assignment, m->assignment_len));
        json_array_append_new(members, mj);
    }
    group_ctx_t oc = {a, json_array(), 0, detail, 0, false};
    mk_group_offsets_foreach(gc, d->group_id, offset_cb, &oc);
    json_t *j = json_pack("{s:o, s:s, s:o, s:o, s:i, s:i, s:o}", "group_id", jstr(d->group_id), "state", d->state,
                          "protocol_type", jstr(d->protocol_type), "protocol", jstr(d->protocol_name),
                          "coordinator", (int)mk_group_coordinator(gc, d->group_id), "committed_offsets", oc.count,
                          "members", members);
    json_object_set_new(j, "type", json_string(d->type ? d->type : "classic"));
    json_object_set_new(j, "lag", oc.lag_known ? jint(oc.lag) : json_null());
    if (detail)
        json_object_set_new(j, "offsets", oc.arr);
    else
        json_decref(oc.arr);
    return j;
}

static void list_cb(const mk_group_desc_t *d, void *arg)
{
    group_ctx_t *g = arg;
    json_array_append_new(g->arr, group_json(g->a, d, g->detail));
}

static void h_groups(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    group_ctx_t g = {a, json_array(), 0, false, 0, false};
    mk_group_coord_t *gc = mk_broker_groups(a->b);
    if (gc)
        mk_group_list(gc, -1, list_cb, &g);
    mk_admin_http_json(resp, 200, json_pack("{s:o}", "groups", g.arr));
}

static void describe_cb(const mk_group_desc_t *d, void *arg)
{
    group_ctx_t *g = arg;
    if (strcmp(d->state, "Dead") != 0)
        g->arr = group_json(g->a, d, true);
}

static void h_group(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    group_ctx_t g = {a, NULL, 0, true, 0, false};
    mk_group_coord_t *gc = mk_broker_groups(a->b);
    if (gc)
        mk_group_describe(gc, caps->v[0], describe_cb, &g);
    if (!g.arr) {
        mk_admin_http_error(resp, 404, "unknown_group", "no group '%s'", caps->v[0]);
        return;
    }
    mk_admin_http_json(resp, 200, json_pack("{s:o}", "group", g.arr));
}

/* ------------------------------------------------------------------- reset */

typedef struct names_s {
    char **v;
    int n, cap;
    bool oom;
} names_t;

static void names_add(names_t *ns, const char *s)
{
    if (ns->n == ns->cap) {
        int cap = ns->cap ? ns->cap * 2 : 16;
        char **v = mk_realloc(ns->v, sizeof(char *) * (size_t)cap);
        if (!v) {
            ns->oom = true;
            return;
        }
        ns->v = v;
        ns->cap = cap;
    }
    char *c = mk_strdup(s ? s : "");
    if (!c) {
        ns->oom = true;
        return;
    }
    ns->v[ns->n++] = c;
}

static void names_free(names_t *ns)
{
    for (int i = 0; i < ns->n; i++)
        mk_free(ns->v[i]);
    mk_free(ns->v);
    memset(ns, 0, sizeof(*ns));
}

static void group_id_cb(const mk_group_desc_t *d, void *arg) { names_add(arg, d->group_id); }

static void member_id_cb(const mk_group_desc_t *d, void *arg)
{
    for (int32_t i = 0; i < d->member_count; i++)
        names_add(arg, d->members[i].member_id);
}

/* Delete the topics and groups (with their committed offsets) that tenant
 * owns, or every one when tenant is NULL (reset).  Counts into *topics,
 * *groups and *failed; false when memory ran out. */
static bool delete_owned(mk_admin_t *a, const mk_tenant_t *tenant, int *topics, int *groups, int *failed)
{
    /* Topics: collect first, the map changes under the deletes. */
    names_t tn = {0};
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(a->c, &it)))
        if ((!tenant || mk_tenant_visible(tenant, t->name)) && !mk_cluster_topic_internal(t->name))
            names_add(&tn, t->name);
    for (int i = 0; i < tn.n; i++) {
        t = mk_cluster_topic_find(a->c, tn.v[i]);
        if (t && mk_broker_topic_delete(a->b, t) == 0)
            (*topics)++;
        else if (t)
            (*failed)++;
    }
    /* Groups: members are removed (their pending joins answered), then the
     * group and its committed offsets are deleted. */
    mk_group_coord_t *gc = mk_broker_groups(a->b);
    names_t gn = {0};
    if (gc)
        mk_group_list(gc, -1, group_id_cb, &gn);
    for (int i = 0; gc && i < gn.n; i++) {
        if (tenant && !mk_tenant_visible(tenant, gn.v[i]))
            continue;
        names_t mn = {0};
        mk_group_describe(gc, gn.v[i], member_id_cb, &mn);
        for (int m = 0; m < mn.n; m++)
            mk_group_leave(gc, gn.v[i], mn.v[m], NULL);
        names_free(&mn);
        if (mk_group_delete(gc, gn.v[i]) == 0)
            (*groups)++;
        else
            (*failed)++;
    }
    bool oom = tn.oom || gn.oom;
    names_free(&tn);
    names_free(&gn);
    return !oom;
}

static void h_reset(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    uint64_t t0 = mk_mono_ns();
    int topics = 0, groups = 0, failed = 0;
    /* Tenants and their keys stay: only data goes. */
    bool oom = !delete_owned(a, NULL, &topics, &groups, &failed);
    mk_admin_stats_prune(a->stats);
    a->resets++;
    double ms = (double)(mk_mono_ns() - t0) / 1e6;
    mk_admin_event(a, "reset", -1, "reset: %d topics and %d groups deleted in %.2f ms (admin API)", topics, groups,
                   ms);
    mk_admin_observe(a, NULL, true); /* one event for the reset, not one per topic */
    if (oom || failed) {
        mk_admin_http_error(resp, 500, "reset_incomplete", "reset deleted %d topics and %d groups; %d could not be deleted%s",
                       topics, groups, failed, oom ? " (out of memory)" : "");
        return;
    }
    mk_admin_http_json(resp, 200, json_pack("{s:i, s:i, s:f}", "topics_deleted", topics, "groups_deleted", groups,
                                       "elapsed_ms", ms));
}

/* ------------------------------------------------------------------- cells */

static json_t *cell_json(mk_admin_t *a, int32_t cell)
{
    mk_admin_cell_load_t l;
    mk_admin_cell_load(a, cell, &l);
    json_t *brokers = json_array(), *tenants = cell_tenants_json(a, cell);
    for (int i = 0; i < mk_cluster_broker_count(a->c); i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(a->c, i);
        if (b->cell == cell)
            json_array_append_new(brokers, json_integer(b->id));
    }
#define R3(x) json_real(round((x) * 1000) / 1000)
    json_t *j = json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:f, s:o, s:f, s:o}", "id", (int)cell,
                          "brokers", brokers, "tenants", tenants, "load", R3(l.load), "broker_load", R3(l.broker),
                          "replica_load", R3(l.replica), "bandwidth_load", R3(l.bandwidth), "replicas",
                          (json_int_t)l.replicas, "replica_capacity", l.replica_capacity, "bytes_per_sec",
                          R3(l.bytes_per_sec), "bytes_capacity", l.bytes_capacity, "requests_per_sec",
                          R3(l.requests_per_sec));
#undef R3
    return j;
}

static json_t *move_json(const mk_admin_move_t *m)
{
    return json_pack("{s:s, s:i, s:i, s:i, s:i, s:I}", "tenant", m->tenant, "from", (int)m->from, "to", (int)m->to,
                     "partitions", m->partitions, "partitions_left", m->left, "started_ms",
                     (json_int_t)m->started_ms);
}

static void h_cells(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    json_t *cells = json_array(), *moves = json_array();
    for (int32_t c = 0; c < mk_cluster_cell_count(a->c); c++)
        json_array_append_new(cells, cell_json(a, c));
    for (int i = 0; i < a->bal.nmoves; i++)
        json_array_append_new(moves, move_json(&a->bal.moves[i]));
    const mk_config_t *cfg = mk_cluster_config(a->c);
    json_t *drains = json_array();
    for (int i = 0; i < a->bal.ndrains; i++) {
        const mk_admin_drain_t *d = &a->bal.drains[i];
        json_array_append_new(drains, json_pack("{s:i, s:i, s:i, s:i, s:b}", "broker", (int)d->broker, "replicas",
                                                d->replicas, "replicas_left", d->left, "stuck", d->stuck, "done",
                                                d->done));
    }
    json_t *pb = json_pack("{s:b, s:I, s:I, s:I}", "enabled",
                           mk_cluster_config_get_bool(cfg, "minikora.balancer.partitions.enable"), "replica_moves",
                           (json_int_t)a->bal.part_replica_moves, "leader_moves",
                           (json_int_t)a->bal.part_leader_moves, "passes_with_moves", (json_int_t)a->bal.part_runs);
    mk_admin_http_json(resp, 200,
                       json_pack("{s:o, s:o, s:f, s:b, s:I, s:o, s:o}", "cells", cells, "moves", moves, "threshold",
                                 strtod(mk_cluster_config_get(cfg, "minikora.cell.load.threshold"), NULL),
                                 "balancer", mk_cluster_config_get_bool(cfg, "minikora.balancer.enable"),
                                 "moves_done", (json_int_t)a->bal.moves_done, "drains", drains,
                                 "partition_balancer", pb));
}

static void h_cell_add(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    int32_t cell;
    int rc = mk_cluster_cell_add(a->c, &cell);
    if (rc == MK_ERR_RANGE) {
        mk_admin_http_error(resp, 409, "too_many_brokers", "a cell adds %d brokers; at most %d brokers in all",
                            mk_cluster_cell_size(a->c), MK_CLUSTER_MAX_BROKERS);
        return;
    }
    if (rc < 0) {
        mk_admin_http_error(resp, 500, "internal", "cannot add a cell: %s", mk_strerror(rc));
        return;
    }
    mk_admin_event(a, "cell_added", -1, "cell %d added with %d brokers (admin API)", (int)cell,
                   mk_cluster_cell_size(a->c));
    mk_admin_observe(a, "cell added", false);
    mk_admin_http_json(resp, 201, cell_json(a, cell));
}

/* POST /v1/cells/{n}/rebalance: one pass of the partition balancer now. */
static void h_cell_rebalance(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                             mk_http_resp_t *resp)
{
    int32_t cell = -1;
    int skew = 0;
    int rc = parse_id(caps->v[0], &cell) ? mk_admin_cell_rebalance(a, cell, "admin API", &skew) : MK_ERR_INVALID;
    if (rc < 0) {
        mk_admin_http_error(resp, 404, "unknown_cell", "no cell '%s': cells are 0..%d", caps->v[0],
                            mk_cluster_cell_count(a->c) - 1);
        return;
    }
    mk_admin_observe(a, "rebalance", false);
    mk_admin_http_json(resp, 200, json_pack("{s:i, s:i, s:i, s:o}", "cell", (int)cell, "moves", rc, "replica_skew",
                                            skew, "state", cell_json(a, cell)));
}

/* ----------------------------------------------------------------- tenants */

/* A limit or a measure: an integer when it is one, else a real. */
static json_t *jnum(double v)
{
    if (isfinite(v) && v == floor(v) && fabs(v) < 9007199254740992.0)
        return json_integer((json_int_t)v);
    return json_real(isfinite(v) ? round(v * 1000) / 1000 : 0);
}

static json_t *limits_json(const mk_quota_limits_t *l)
{
    json_t *o = json_object();
    for (int k = 0; l && k < MK_QUOTA__COUNT; k++)
        if (l->set >> k & 1)
            json_object_set_new(o, mk_quota_key_name(k), jnum(l->v[k]));
    return o;
}

static int quota_entity_cb(const mk_quota_entity_t *e, const mk_quota_limits_t *l, void *arg)
{
    json_t *ent = json_object();
    if (e->user)
        json_object_set_new(ent, "user", *e->user ? jstr(e->user) : json_null());
    if (e->client_id)
        json_object_set_new(ent, "client-id", *e->client_id ? jstr(e->client_id) : json_null());
    if (e->ip)
        json_object_set_new(ent, "ip", *e->ip ? jstr(e->ip) : json_null());
    json_array_append_new(arg, json_pack("{s:o, s:o}", "entity", ent, "limits", limits_json(l)));
    return 0;
}

static int quota_broker_cb(const mk_broker_quota_broker_t *qb, void *arg)
{
    json_t *o = json_pack("{s:i}", "broker", (int)qb->broker);
    for (int k = 0; k < 3; k++)
        json_object_set_new(o, mk_quota_key_name(k),
                            json_pack("{s:o, s:o, s:o}", "rate", jnum(qb->rate[k]), "share",
                                      qb->share[k] > 0 ? jnum(qb->share[k]) : json_null(), "broker_cap",
                                      qb->cap[k] > 0 ? jnum(qb->cap[k]) : json_null()));
    json_array_append_new(arg, o);
    return 0;
}

/* A tenant's partitions and the bytes of their leader logs (storage). */
static void tenant_totals(mk_admin_t *a, const mk_tenant_t *t, int64_t *partitions, uint64_t *stored)
{
    *partitions = 0;
    *stored = 0;
    size_t it = 0;
    mk_topic_t *tp;
    while ((tp = mk_cluster_topic_next(a->c, &it))) {
        if (!mk_tenant_visible(t, tp->name))
            continue;
        uint64_t size;
        int64_t records;
        topic_log_totals(tp, &size, &records);
        *partitions += tp->partition_count;
        *stored += size;
    }
}

/* What a tenant uses of each quota key that has a measure now: the rates
 * over the quota windows (throttle.c), open connections, partitions and
 * stored bytes; has[k] false for the two rates the request layer keeps as
 * token buckets and windows of its own (controller_mutation_rate,
 * connection_creation_rate).  The one source of "use" for the quota JSON
 * and /metrics. */
static void tenant_quota_use(mk_admin_t *a, const mk_tenant_t *t, const mk_broker_quota_use_t *u,
                             int64_t partitions, uint64_t stored, double use[MK_QUOTA__COUNT],
                             bool has[MK_QUOTA__COUNT])
{
    for (int k = 0; k < MK_QUOTA__COUNT; k++) {
        use[k] = 0;
        has[k] = true;
    }
    use[MK_QUOTA_PRODUCER_BYTE_RATE] = u->rate[0];
    use[MK_QUOTA_CONSUMER_BYTE_RATE] = u->rate[1];
    use[MK_QUOTA_REQUEST_PERCENTAGE] = u->rate[2];
    use[MK_QUOTA_MAX_CONNECTIONS] = mk_broker_sessions_count(a->b, t);
    use[MK_QUOTA_MAX_PARTITIONS] = (double)partitions;
    use[MK_QUOTA_MAX_STORAGE_BYTES] = (double)stored;
    has[MK_QUOTA_CONTROLLER_MUTATION_RATE] = has[MK_QUOTA_CONNECTION_CREATION_RATE] = false;
}

/* A tenant's quotas: the tenant-wide limits, what it uses of each (rates
 * over Kafka's quota windows, counts now), the throttle time its clients
 * were given, and with detail each broker's part and the entity limits
 * inside it.  partitions and stored as tenant_totals() gives them. */
static json_t *quotas_json(mk_admin_t *a, const mk_tenant_t *t, int64_t partitions, uint64_t stored, bool detail)
{
    mk_quota_registry_t *qr = mk_broker_quotas(a->b);
    mk_broker_quota_use_t u;
    mk_broker_quota_use(a->b, t->id, &u);
    double v[MK_QUOTA__COUNT];
    bool has[MK_QUOTA__COUNT];
    tenant_quota_use(a, t, &u, partitions, stored, v, has);
    json_t *use = json_object();
    for (int k = 0; k < MK_QUOTA__COUNT; k++)
        if (has[k])
            json_object_set_new(use, mk_quota_key_name(k), jnum(v[k]));
    json_t *throttle = json_pack("{s:I, s:I, s:I}", "time_ms_total", (json_int_t)u.throttle_ms_total,
                                 "throttled_requests", (json_int_t)u.throttled, "time_ms_last_minute",
                                 (json_int_t)u.throttle_ms_minute);
    json_t *j = json_pack("{s:s, s:o, s:o, s:o}", "tenant", t->id, "limits",
                          limits_json(qr ? mk_quota_tenant(qr, t->id) : NULL), "use", use, "throttle", throttle);
    if (!detail || !j)
        return j;
    json_t *brokers = json_array(), *entities = json_array();
    mk_broker_quota_each_broker(a->b, t->id, quota_broker_cb, brokers);
    if (qr)
        mk_quota_each(qr, t->id, quota_entity_cb, entities);
    json_object_set_new(j, "brokers", brokers);
    json_object_set_new(j, "entities", entities);
    return j;
}

/* GET /v1/tenants/{id}/quotas: quotas_json with every detail. */
static json_t *tenant_quotas_json(mk_admin_t *a, const mk_tenant_t *t)
{
    int64_t partitions;
    uint64_t stored;
    tenant_totals(a, t, &partitions, &stored);
    return quotas_json(a, t, partitions, stored, true);
}

/* The tenant's busiest client ids that GET /v1/tenants/{id} lists. */
#define TENANT_TOP_CLIENTS 10

/* One tenant as JSON: id, cell, connections, partitions, storage_bytes (its
 * partition logs on their leaders) and its entry of /v1/rates (rates and
 * totals).  With detail also its topics, groups and key ids (client names,
 * as the tenant's clients see them) and its busiest clients. */
static json_t *tenant_json(mk_admin_t *a, const mk_tenant_t *t, bool detail)
{
    json_t *j = json_pack("{s:s, s:i, s:I, s:i}", "id", t->id, "cell", t->cell, "created_ms",
                          (json_int_t)t->created_ms, "connections", mk_broker_sessions_count(a->b, t));
    if (!j)
        return NULL;
    json_t *topics = json_array();
    size_t it = 0;
    mk_topic_t *tp;
    int partitions = 0;
    uint64_t storage = 0;
    while ((tp = mk_cluster_topic_next(a->c, &it)))
        if (mk_tenant_visible(t, tp->name)) {
            uint64_t size;
            int64_t records;
            topic_log_totals(tp, &size, &records);
            storage += size;
            partitions += tp->partition_count;
            if (detail)
                json_array_append_new(topics, json_string(mk_tenant_to_external(t, tp->name)));
        }
    json_object_set_new(j, "partitions", json_integer(partitions));
    json_object_set_new(j, "storage_bytes", json_integer((json_int_t)storage));
    json_t *rates = mk_admin_stats_tenant_json(a->stats, t->id);
    json_object_update(j, rates);
    json_decref(rates);
    /* The list has the limits, use and throttle time (the TUI's Tenants
     * view); one tenant has its brokers' shares and entities too. */
    json_object_set_new(j, "quotas", quotas_json(a, t, partitions, storage, detail));
    if (!detail) {
        json_decref(topics);
        return j;
    }
    json_t *groups = json_array(), *keys = json_array();
    mk_group_coord_t *gc = mk_broker_groups(a->b);
    names_t gn = {0};
    if (gc)
        mk_group_list(gc, -1, group_id_cb, &gn);
    for (int i = 0; i < gn.n; i++)
        if (mk_tenant_visible(t, gn.v[i]))
            json_array_append_new(groups, json_string(mk_tenant_to_external(t, gn.v[i])));
    names_free(&gn);
    const char *k;
    mk_tenant_registry_t *r = mk_broker_tenants(a->b);
    for (size_t ki = 0; r && (k = mk_tenant_key_next(r, t, &ki));)
        json_array_append_new(keys, json_string(k));
    json_object_set_new(j, "topics", topics);
    json_object_set_new(j, "groups", groups);
    json_object_set_new(j, "keys", keys);
    json_object_set_new(j, "clients", mk_admin_stats_tenant_clients_json(a->stats, t->id, TENANT_TOP_CLIENTS));
    const mk_admin_move_t *m = mk_admin_move_of(a, t->id);
    if (m)
        json_object_set_new(j, "move", move_json(m));
    json_object_set_new(j, "cross_az", mk_admin_stats_tenant_cross_az_json(a->stats, t->id));
    return j;
}

static mk_tenant_t *tenant_or_404(mk_admin_t *a, const char *id, mk_http_resp_t *resp)
{
    mk_tenant_registry_t *r = mk_broker_tenants(a->b);
    mk_tenant_t *t = r ? mk_tenant_find(r, id) : NULL;
    if (!t || t == mk_tenant_default())
        mk_admin_http_error(resp, 404, "unknown_tenant", "no tenant '%s'", id);
    return t && t != mk_tenant_default() ? t : NULL;
}

static void h_tenants(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    json_t *arr = json_array();
    mk_tenant_registry_t *r = mk_broker_tenants(a->b);
    mk_tenant_t *t;
    /* The default tenant first: the clients that did not authenticate. */
    json_array_append_new(arr, tenant_json(a, mk_tenant_default(), false));
    for (size_t it = 0; r && (t = mk_tenant_next(r, &it));)
        json_array_append_new(arr, tenant_json(a, t, false));
    mk_admin_http_json(resp, 200, json_pack("{s:o}", "tenants", arr));
}

static void h_tenant_create(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                            mk_http_resp_t *resp)
{
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    const char *id = NULL;
    if (!body || json_unpack(body, "{s:s}", "id", &id) < 0) {
        json_decref(body);
        mk_admin_http_error(resp, 400, "bad_request", "the body must be a JSON object with a string \"id\"");
        return;
    }
    if (!mk_tenant_id_valid(id)) {
        mk_admin_http_error(resp, 400, "invalid_tenant_id",
                            "tenant id '%.64s' must be 1 to %d characters of [a-z0-9-], and not \"default\"", id,
                            MK_TENANT_ID_MAX);
        json_decref(body);
        return;
    }
    mk_tenant_registry_t *r = mk_broker_tenants(a->b);
    mk_tenant_t *t = NULL;
    /* Placement: the less loaded of two random cells (partitions led there). */
    int rc = r ? mk_tenant_create(r, id, mk_cluster_cell_pick(a->c), &t) : MK_ERR_STATE;
    if (rc == MK_ERR_EXISTS)
        mk_admin_http_error(resp, 409, "tenant_exists", "tenant '%s' exists", id);
    else if (rc < 0)
        mk_admin_http_error(resp, 500, "internal", "cannot create tenant '%s': %s", id, mk_strerror(rc));
    else {
        mk_admin_event(a, "tenant", -1, "tenant %s created in cell %d (admin API)", t->id, t->cell);
        mk_admin_http_json(resp, 201, tenant_json(a, t, true));
    }
    json_decref(body);
}

static void h_tenant(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    /* The default tenant can be read, not changed (tenant_or_404 refuses it). */
    const mk_tenant_t *t =
        strcmp(caps->v[0], "default") == 0 ? mk_tenant_default() : tenant_or_404(a, caps->v[0], resp);
    if (t)
        mk_admin_http_json(resp, 200, tenant_json(a, t, true));
}

static void h_tenant_delete(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                            mk_http_resp_t *resp)
{
    mk_tenant_t *t = tenant_or_404(a, caps->v[0], resp);
    if (!t)
        return;
    int topics = 0, groups = 0, failed = 0;
    mk_tenant_ref(t);
    int conns = mk_broker_sessions_close(a->b, t, NULL, "tenant deleted");
    bool ok = delete_owned(a, t, &topics, &groups, &failed);
    mk_quota_tenant_remove(mk_broker_quotas(a->b), t->id);
    mk_tenant_remove(mk_broker_tenants(a->b), t);
    mk_admin_event(a, "tenant", -1, "tenant %s deleted with %d topics and %d groups (admin API)", t->id, topics,
                   groups);
    mk_admin_observe(a, NULL, true);
    json_t *j = json_pack("{s:s, s:i, s:i, s:i}", "deleted", t->id, "topics_deleted", topics, "groups_deleted",
                          groups, "connections_closed", conns);
    mk_tenant_unref(t);
    if (!ok || failed) {
        json_decref(j);
        mk_admin_http_error(resp, 500, "delete_incomplete", "tenant deleted; %d of its topics or groups could not be%s",
                            failed, ok ? "" : " (out of memory)");
        return;
    }
    mk_admin_http_json(resp, 200, j);
}

/* The tenant of a quota route: any tenant, "default" too (its clients are
 * the unauthenticated ones). */
static mk_tenant_t *quota_tenant_or_404(mk_admin_t *a, const char *id, mk_http_resp_t *resp)
{
    mk_tenant_registry_t *r = mk_broker_tenants(a->b);
    mk_tenant_t *t = r ? mk_tenant_find(r, id) : NULL;
    if (!t)
        mk_admin_http_error(resp, 404, "unknown_tenant", "no tenant '%s'", id);
    return t;
}

static void h_tenant_quotas(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                            mk_http_resp_t *resp)
{
    mk_tenant_t *t = quota_tenant_or_404(a, caps->v[0], resp);
    if (t)
        mk_admin_http_json(resp, 200, tenant_quotas_json(a, t));
}

/* PUT /v1/tenants/{id}/quotas {"producer_byte_rate": 1048576, "max_partitions": null, ...}: set (a number)
 * or remove (null) tenant-wide limits.  All or nothing: every key and value
 * is checked before the first is applied, so a bad one leaves the limits in
 * force as they were. */
static void h_tenant_quotas_put(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                                mk_http_resp_t *resp)
{
    mk_tenant_t *t = quota_tenant_or_404(a, caps->v[0], resp);
    mk_quota_registry_t *qr = mk_broker_quotas(a->b);
    if (!t)
        return;
    if (!qr) {
        mk_admin_http_error(resp, 503, "not_ready", "the quota registry is not open");
        return;
    }
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body || !json_is_object(body) || json_object_size(body) == 0) {
        json_decref(body);
        mk_admin_http_error(resp, 400, "bad_request",
                            "the body must be a JSON object of limits, e.g. {\"producer_byte_rate\": 1048576}; "
                            "null removes one");
        return;
    }
    double val[MK_QUOTA__COUNT] = {0};
    int act[MK_QUOTA__COUNT] = {0}; /* 0 untouched, 1 set, 2 remove */
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        int k = mk_quota_key_find(key);
        if (k < 0) {
            mk_admin_http_error(resp, 400, "unknown_quota_key",
                                "'%.64s' is not a quota; known: producer_byte_rate, consumer_byte_rate, "
                                "request_percentage, controller_mutation_rate, connection_creation_rate, "
                                "max_connections, max_partitions, max_storage_bytes",
                                key);
            json_decref(body);
            return;
        }
        if (json_is_null(v)) {
            act[k] = 2;
            continue;
        }
        double x = json_is_number(v) ? json_number_value(v) : NAN;
        bool whole = k == MK_QUOTA_MAX_CONNECTIONS || k == MK_QUOTA_MAX_PARTITIONS || k == MK_QUOTA_MAX_STORAGE_BYTES;
        if (!json_is_number(v) || !mk_quota_value_valid(k, x) || (whole && x != floor(x))) {
            mk_admin_http_error(resp, 400, "invalid_quota_value",
                                "%s must be a %s number above 0 and below %s, or null to remove it", key,
                                whole ? "whole" : "", k == MK_QUOTA_REQUEST_PERCENTAGE ? "100000 (inclusive)"
                                : k <= MK_QUOTA_CONSUMER_BYTE_RATE || k == MK_QUOTA_MAX_STORAGE_BYTES ? "2^50"
                                                                                                     : "2^31");
            json_decref(body);
            return;
        }
        act[k] = 1;
        val[k] = x;
    }
    json_decref(body);
    char what[512];
    size_t n = 0;
    what[0] = 0;
    for (int k = 0; k < MK_QUOTA__COUNT; k++) {
        if (!act[k])
            continue;
        int rc = mk_quota_set(qr, t->id, NULL, k, val[k], act[k] == 2);
        if (rc < 0) {
            mk_admin_http_error(resp, 500, "internal", "cannot set %s of tenant '%s': %s", mk_quota_key_name(k),
                                t->id, mk_strerror(rc));
            return;
        }
        if (n < sizeof(what)) {
            int w = act[k] == 2 ? snprintf(what + n, sizeof(what) - n, "%s%s removed", n ? ", " : "", mk_quota_key_name(k))
                                : snprintf(what + n, sizeof(what) - n, "%s%s=%.17g", n ? ", " : "", mk_quota_key_name(k),
                                           val[k]);
            n += w > 0 ? (size_t)w : 0;
        }
    }
    mk_admin_event(a, "quota", -1, "tenant %s quotas: %s (admin API)", t->id, what);
    mk_admin_http_json(resp, 200, tenant_quotas_json(a, t));
}

static void h_tenant_move(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                          mk_http_resp_t *resp)
{
    mk_tenant_registry_t *r = mk_broker_tenants(a->b);
    mk_tenant_t *t = r ? mk_tenant_find(r, caps->v[0]) : NULL;
    if (!t) {
        mk_admin_http_error(resp, 404, "unknown_tenant", "no tenant '%s'", caps->v[0]);
        return;
    }
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    json_int_t cell = -1;
    if (!body || json_unpack(body, "{s:I}", "cell", &cell) < 0) {
        json_decref(body);
        mk_admin_http_error(resp, 400, "bad_request", "the body must be a JSON object with an integer \"cell\"");
        return;
    }
    json_decref(body);
    int rc = cell >= 0 && cell < mk_cluster_cell_count(a->c) ? mk_admin_tenant_move(a, t, (int32_t)cell, "admin API")
                                                             : MK_ERR_INVALID;
    if (rc == MK_ERR_INVALID)
        mk_admin_http_error(resp, 400, "unknown_cell", "no cell %lld: cells are 0..%d", (long long)cell,
                            mk_cluster_cell_count(a->c) - 1);
    else if (rc == MK_ERR_EXISTS)
        mk_admin_http_error(resp, 409, "already_there", "tenant '%s' is in cell %lld", t->id, (long long)cell);
    else if (rc == MK_ERR_STATE)
        mk_admin_http_error(resp, 409, "too_many_moves", "%d tenant moves are running; wait for one to end",
                            MK_ADMIN_MAX_MOVES);
    else if (rc < 0)
        mk_admin_http_error(resp, 500, "internal", "cannot move tenant '%s': %s", t->id, mk_strerror(rc));
    else
        mk_admin_http_json(resp, 202, move_json(mk_admin_move_of(a, t->id)));
}

static void h_tenant_key_create(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                                mk_http_resp_t *resp)
{
    mk_tenant_t *t = tenant_or_404(a, caps->v[0], resp);
    if (!t)
        return;
    char key[MK_TENANT_KEY_LEN + 1], secret[MK_TENANT_SECRET_LEN + 1];
    int rc = mk_tenant_key_create(mk_broker_tenants(a->b), t, key, secret);
    if (rc < 0) {
        mk_admin_http_error(resp, 500, "internal", "cannot create a key: %s", mk_strerror(rc));
        return;
    }
    mk_admin_http_json(resp, 201, json_pack("{s:s, s:s, s:s}", "tenant", t->id, "key", key, "secret", secret));
    memset(secret, 0, sizeof(secret));
}

static void h_tenant_key_delete(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                                mk_http_resp_t *resp)
{
    mk_tenant_t *t = tenant_or_404(a, caps->v[0], resp);
    if (!t)
        return;
    if (mk_tenant_key_revoke(mk_broker_tenants(a->b), t, caps->v[1]) < 0) {
        mk_admin_http_error(resp, 404, "unknown_key", "tenant '%s' has no key '%.32s'", t->id, caps->v[1]);
        return;
    }
    int conns = mk_broker_sessions_close(a->b, t, caps->v[1], "API key revoked");
    mk_admin_http_json(resp, 200, json_pack("{s:s, s:i}", "revoked", caps->v[1], "connections_closed", conns));
}

/* -------------------------------------------------------------- advertised */

static json_t *advertised_json(mk_admin_t *a)
{
    json_t *arr = json_array();
    for (int i = 0; i < mk_cluster_broker_count(a->c); i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(a->c, i);
        int port;
        const char *host = mk_cluster_broker_endpoint(a->c, b, false, &port);
        char adv[300];
        mk_net_host_port(host, port, adv, sizeof(adv));
        json_t *bj = json_pack("{s:i, s:s, s:o, s:i, s:i, s:b, s:b}", "id", (int)b->id, "advertised", adv, "host",
                               jstr(host), "port", port, "listen_port", b->port, "mapped",
                               b->adv_host != NULL || b->adv_port > 0, "running", b->running);
        /* The SSL listener's own mapping, when the broker has one. */
        json_t *tj = json_null();
        if (b->tls_port >= 0) {
            int tport;
            const char *thost = mk_cluster_broker_endpoint(a->c, b, true, &tport);
            char tadv[300];
            mk_net_host_port(thost, tport, tadv, sizeof(tadv));
            tj = json_pack("{s:s, s:o, s:i, s:i, s:b}", "advertised", tadv, "host", jstr(thost), "port", tport,
                           "listen_port", b->tls_port, "mapped", b->adv_tls_host != NULL || b->adv_tls_port > 0);
        }
        if (bj)
            json_object_set_new(bj, "ssl", tj ? tj : json_null());
        json_array_append_new(arr, bj);
    }
    char boot[4096], tboot[4096];
    mk_cluster_advertised_bootstrap(a->c, boot, sizeof(boot));
    mk_cluster_advertised_tls_bootstrap(a->c, tboot, sizeof(tboot));
    return json_pack("{s:s, s:s, s:o, s:o}", "advertise_host", mk_cluster_advertise_host(a->c), "bootstrap", boot,
                     "ssl_bootstrap", tboot[0] ? json_string(tboot) : json_null(), "brokers", arr);
}

static void h_advertised(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    mk_admin_http_json(resp, 200, advertised_json(a));
}

/* One address of PUT /v1/advertised: "host:port", "[v6]:port", a port (an
 * integer: the cluster's advertise host with that port), or null (the
 * mapping goes).  host gets "" for the advertise host.  false for anything
 * else. */
static bool advertised_value(json_t *v, char host[256], int *port)
{
    host[0] = 0;
    *port = 0;
    if (json_is_null(v))
        return true;
    if (json_is_integer(v)) {
        json_int_t p = json_integer_value(v);
        *port = (int)p;
        return p >= 1 && p <= 65535;
    }
    const char *s = json_string_value(v);
    if (!s)
        return false;
    const char *colon = strrchr(s, ':'), *h = s;
    size_t hl = colon ? (size_t)(colon - s) : 0;
    if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
        h = s + 1;
        hl -= 2;
    } else if (colon && memchr(s, ':', hl)) {
        return false; /* an IPv6 address needs its brackets */
    }
    if (!colon || hl == 0 || hl >= 256)
        return false;
    for (size_t i = 0; i < hl; i++)
        if (!(h[i] >= 'a' && h[i] <= 'z') && !(h[i] >= 'A' && h[i] <= 'Z') && !(h[i] >= '0' && h[i] <= '9') &&
            !strchr(".-_:%", h[i]))
            return false;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 1 || p > 65535)
        return false;
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (int)p;
    return true;
}

/* One broker's entry of PUT /v1/advertised: an address (advertised_value)
 * for its PLAINTEXT listener, or an object {"plaintext": address, "ssl":
 * address}, either key optional (absent: that mapping stays).  The value
 * for each listener goes to v[0] (PLAINTEXT) and v[1] (SSL), NULL when
 * absent.  NULL on success, else why not. */
static const char *advertised_entry(json_t *e, const mk_cluster_broker_t *b, json_t *v[2])
{
    char host[256];
    int port;
    v[0] = v[1] = NULL;
    if (!json_is_object(e)) {
        v[0] = e;
        return advertised_value(e, host, &port) ? NULL : "want \"host:port\" (\"[v6]:port\"), a port 1..65535, or null";
    }
    const char *key;
    json_t *x;
    json_object_foreach(e, key, x) {
        bool ssl = strcmp(key, "ssl") == 0;
        if (!ssl && strcmp(key, "plaintext") != 0)
            return "an object takes the keys \"plaintext\" and \"ssl\"";
        if (!advertised_value(x, host, &port))
            return "want \"host:port\" (\"[v6]:port\"), a port 1..65535, or null for each listener";
        if (ssl && b->tls_port < 0)
            return "this broker has no SSL listener (TLS is off)";
        v[ssl] = x;
    }
    return NULL;
}

static void h_advertised_put(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                             mk_http_resp_t *resp)
{
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        mk_admin_http_error(resp, 400, "bad_request",
                            "the body must be a JSON object from broker id to \"host:port\", a port, null, or "
                            "{\"plaintext\": ..., \"ssl\": ...}");
        return;
    }
    /* Check every entry before changing any: a bad one changes nothing. */
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        int32_t id;
        mk_cluster_broker_t *b = parse_id(key, &id) ? mk_cluster_broker_find(a->c, id) : NULL;
        /* The answer before the body goes: key lives in it. */
        if (!b) {
            mk_admin_http_error(resp, 404, "unknown_broker", "no broker '%s' (ids run 1..%d)", key,
                                mk_cluster_broker_count(a->c));
            json_decref(body);
            return;
        }
        json_t *lv[2];
        const char *why = advertised_entry(v, b, lv);
        if (why) {
            mk_admin_http_error(resp, 400, "bad_request", "broker %s: %s", key, why);
            json_decref(body);
            return;
        }
    }
    int changed = 0;
    json_object_foreach(body, key, v) {
        int32_t id;
        parse_id(key, &id);
        json_t *lv[2];
        advertised_entry(v, mk_cluster_broker_find(a->c, id), lv);
        for (int tls = 0; tls < 2; tls++) {
            char host[256];
            int port;
            if (!lv[tls])
                continue;
            advertised_value(lv[tls], host, &port);
            int rc = mk_cluster_broker_advertise(a->c, id, tls, host[0] ? host : NULL, port);
            if (rc < 0) {
                json_decref(body);
                mk_admin_http_error(resp, 500, "internal", "broker %d: %s", id, mk_strerror(rc));
                return;
            }
        }
        changed++;
    }
    json_decref(body);
    char boot[4096];
    mk_cluster_advertised_bootstrap(a->c, boot, sizeof(boot));
    mk_info("admin API: advertised addresses of %d broker(s) changed; clients are told %s", changed, boot);
    mk_admin_http_json(resp, 200, advertised_json(a));
}

/* ------------------------------------------------------------------ events */

static void h_events(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    char v[32];
    int32_t since = 0, limit = MK_ADMIN_EVENTS;
    if (mk_admin_query_get(req->query, "since", v, sizeof(v)) && (!parse_id(v, &since) || since < 0)) {
        mk_admin_http_error(resp, 400, "bad_request", "since must be a non-negative integer");
        return;
    }
    if (mk_admin_query_get(req->query, "limit", v, sizeof(v)) && (!parse_id(v, &limit) || limit < 1)) {
        mk_admin_http_error(resp, 400, "bad_request", "limit must be a positive integer");
        return;
    }
    char type[24] = "", tv[MK_ADMIN_CAP_LEN];
    if (mk_admin_query_get(req->query, "type", tv, sizeof(tv)) && tv[0]) {
        if (strlen(tv) >= sizeof(type) || !mk_admin_event_type_known(tv)) {
            mk_admin_http_error(resp, 400, "bad_request", "unknown event type '%s' (see docs/ADMIN-API.md, Events)",
                                tv);
            return;
        }
        snprintf(type, sizeof(type), "%s", tv);
    }
    /* The newest `limit` matching events after since, oldest first. */
    uint64_t last = mk_admin_events_last(a);
    uint64_t first = last > MK_ADMIN_EVENTS ? last - MK_ADMIN_EVENTS + 1 : 1;
    if ((uint64_t)since + 1 > first)
        first = (uint64_t)since + 1;
    uint64_t from = first;
    int n = 0;
    for (uint64_t s = last; s >= first && s > 0 && n < limit; s--) {
        const mk_admin_event_t *e = mk_admin_events_at(a, s);
        if (e && (!type[0] || strcmp(type, e->type) == 0)) {
            from = s;
            n++;
        }
    }
    json_t *arr = json_array();
    for (uint64_t s = from; n > 0 && s <= last; s++) {
        const mk_admin_event_t *e = mk_admin_events_at(a, s);
        if (!e || (type[0] && strcmp(type, e->type) != 0))
            continue;
        json_t *ej = json_pack("{s:I, s:I, s:s, s:o}", "seq", (json_int_t)e->seq, "time_ms", (json_int_t)e->time_ms,
                               "type", e->type, "message", jstr(e->message));
        json_object_set_new(ej, "broker", e->broker >= 0 ? json_integer(e->broker) : json_null());
        json_array_append_new(arr, ej);
    }
    mk_admin_http_json(resp, 200, json_pack("{s:o, s:I, s:i}", "events", arr, "last_seq", (json_int_t)last,
                                       "capacity", MK_ADMIN_EVENTS));
}

/* ---------------------------------------------------------------- integrity */

static json_t *jms(int64_t ms) { return ms >= 0 ? json_integer((json_int_t)ms) : json_null(); }

static json_t *integrity_counts_json(const mk_scrub_counts_t *c)
{
    json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:i, s:I}", "batches_verified", (json_int_t)c->batches,
                          "bytes_verified", (json_int_t)c->bytes, "corruptions_found", (json_int_t)c->corruptions,
                          "divergences", (json_int_t)c->divergences, "corruptions_repaired", (json_int_t)c->repaired,
                          "unrepairable_partitions", c->unrepairable, "audit_incidents", (json_int_t)c->incidents);
    json_object_set_new(j, "last_full_pass_ms", jms(c->last_pass_ms));
    return j;
}

static void integrity_lost_cb(const mk_scrub_lost_t *l, void *arg)
{
    json_t *ranges = json_array();
    for (int i = 0; i < l->nranges; i++)
        json_array_append_new(ranges, json_pack("[I, o]", (json_int_t)l->ranges[i][0],
                                                l->ranges[i][1] == INT64_MAX ? json_null()
                                                                             : json_integer((json_int_t)l->ranges[i][1])));
    json_array_append_new(arg, json_pack("{s:o, s:i, s:i, s:o, s:o, s:I}", "topic", jstr(l->topic), "partition",
                                         l->partition, "broker", l->broker, "offsets", ranges, "why", jstr(l->why),
                                         "since_ms", (json_int_t)l->since_ms));
}

static void integrity_note_cb(const mk_scrub_note_t *n, void *arg)
{
    json_t *j = json_pack("{s:I, s:o, s:o, s:o}", "time_ms", (json_int_t)n->ts_ms, "kind", jstr(n->kind), "topic",
                          n->topic[0] ? jstr(n->topic) : json_null(), "message", jstr(n->text));
    json_object_set_new(j, "partition", n->partition >= 0 ? json_integer(n->partition) : json_null());
    json_object_set_new(j, "broker", n->broker >= 0 ? json_integer(n->broker) : json_null());
    json_object_set_new(j, "from", n->from >= 0 ? json_integer((json_int_t)n->from) : json_null());
    json_object_set_new(j, "to", n->to >= 0 ? json_integer((json_int_t)n->to) : json_null());
    json_array_append_new(arg, j);
}

static void h_integrity(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    mk_scrub_t *s = mk_broker_scrub(a->b);
    if (!s) {
        mk_admin_http_error(resp, 503, "unavailable", "the scrubber is not running");
        return;
    }
    mk_scrub_status_t st;
    mk_scrub_status(s, &st);
    json_t *scrubber = json_pack("{s:b, s:I, s:I, s:I, s:b, s:{s:I, s:I}}", "enabled", st.enabled, "rate_bytes_per_sec",
                                 (json_int_t)st.rate_bytes_per_sec, "interval_ms", (json_int_t)st.interval_ms, "passes",
                                 (json_int_t)st.passes, "pass_running", st.pass_running, "pass_progress", "done",
                                 (json_int_t)st.pass_done, "total", (json_int_t)st.pass_total);
    json_object_set_new(scrubber, "pass_started_ms", jms(st.pass_started_ms));
    json_t *brokers = json_array();
    for (int i = 0; i < mk_cluster_broker_count(a->c); i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(a->c, i);
        mk_scrub_counts_t c;
        mk_scrub_broker_counts(s, b->id, &c);
        json_t *bj = integrity_counts_json(&c);
        json_object_set_new(bj, "id", json_integer(b->id));
        json_object_set_new(bj, "running", json_boolean(b->running));
        json_array_append_new(brokers, bj);
    }
    json_t *lost = json_array(), *incidents = json_array(), *recent = json_array();
    mk_scrub_lost_foreach(s, integrity_lost_cb, lost);
    mk_scrub_incidents_foreach(s, integrity_note_cb, incidents);
    mk_scrub_audit_recent_foreach(s, integrity_note_cb, recent);
    json_t *audit = json_pack("{s:I, s:I, s:o}", "events_written", (json_int_t)st.audit_events, "incidents",
                              (json_int_t)st.total.incidents, "recent", recent);
    mk_scrub_remote_counts_t rc;
    mk_scrub_remote_counts(s, &rc);
    json_t *remote = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "checked", rc.checked,
                               "segments_verified", (json_int_t)rc.segments, "bytes_verified", (json_int_t)rc.bytes,
                               "corrupt", (json_int_t)rc.corrupt, "reuploaded", (json_int_t)rc.reuploaded,
                               "unrepairable", (json_int_t)rc.unrepairable, "reupload_failed",
                               (json_int_t)rc.reupload_failed, "skipped", (json_int_t)rc.skipped);
    mk_tier_t *tier = mk_broker_tier(a->b);
    if (tier) {
        mk_tier_stats_t ts;
        mk_tier_stats(tier, &ts);
        json_object_set_new(remote, "unrepairable_now", json_integer(ts.remote_unrepairable));
    } else {
        json_object_set_new(remote, "unrepairable_now", json_integer(0));
    }
    mk_admin_http_json(resp, 200,
                       json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "scrubber", scrubber, "total",
                                 integrity_counts_json(&st.total), "brokers", brokers, "unrepairable", lost,
                                 "incidents", incidents, "audit", audit, "remote", remote));
}

/* GET /v1/health: the storage health manager, per broker (state, ladder
 * step, storage I/O, probes) and its thresholds. */
static void h_health(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    if (!a->health) {
        mk_admin_http_error(resp, 503, "unavailable", "the storage health manager is not running");
        return;
    }
    const mk_health_config_t *cfg = mk_health_config(a->health);
    json_t *th = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I}", "check_interval_ms",
                           (json_int_t)cfg->check_interval_ms, "probe_interval_ms", (json_int_t)cfg->probe_interval_ms,
                           "stall_ms", (json_int_t)cfg->stall_ms, "restart_grace_ms", (json_int_t)cfg->restart_grace_ms,
                           "replace_after_ms", (json_int_t)cfg->replace_after_ms, "recover_ms",
                           (json_int_t)cfg->recover_ms, "slow_factor", cfg->slow_factor, "slow_min_ms",
                           (json_int_t)cfg->slow_min_ms, "slow_for_ms", (json_int_t)cfg->slow_for_ms);
    json_t *brokers = json_array();
    int n = 0;
    const mk_health_broker_t *hb = mk_health_brokers(a->health, &n);
    for (int i = 0; i < n; i++) {
        const mk_health_broker_t *x = &hb[i];
        mk_cluster_broker_t *b = mk_cluster_broker_find(a->c, x->id);
        char topic[64];
        snprintf(topic, sizeof(topic), "%s~probe-%d", MK_HEALTH_TENANT, (int)x->id);
        json_t *io = json_pack("{s:I, s:I, s:I, s:I, s:f, s:f}", "ops", (json_int_t)x->io.ops, "errors",
                               (json_int_t)x->io.errors, "inflight", (json_int_t)x->io.inflight, "oldest_inflight_ms",
                               (json_int_t)x->io.oldest_inflight_ms, "p50_ms", x->io.p50_ms, "p99_ms", x->io.p99_ms);
        json_t *probes = json_pack("{s:s, s:I, s:I, s:f, s:f, s:o, s:o}", "topic", topic, "ok",
                                   (json_int_t)x->probes_ok, "failed", (json_int_t)x->probes_failed, "produce_ms",
                                   x->probe_produce_ms, "consume_ms", x->probe_consume_ms, "last_ok_ms",
                                   x->probe_last_ok_ms ? jms(x->probe_last_ok_ms) : json_null(),
                                   "error", x->probe_error[0] ? json_string(x->probe_error) : json_null());
        json_t *bj = json_pack("{s:i, s:s, s:i, s:b, s:s, s:i, s:o, s:b, s:I, s:o, s:o, s:I, s:o, s:o, s:I}", "id",
                               (int)x->id, "az", b ? b->az : "", "cell", b ? (int)b->cell : -1, "running",
                               b && b->running, "state", mk_health_state_name(x->state), "step", x->step, "since_ms",
                               jms(x->since_ms), "fenced", x->fenced, "no_progress_ms",
                               (json_int_t)x->no_progress_ms, "io", io, "probes", probes, "restarts",
                               (json_int_t)x->restarts, "replaced_by",
                               x->replaced_by ? json_integer(x->replaced_by) : json_null(), "replaces",
                               x->replaces ? json_integer(x->replaces) : json_null(), "recover_ms",
                               (json_int_t)x->recover_ms);
        json_array_append_new(brokers, bj);
    }
    mk_admin_http_json(resp, 200, json_pack("{s:b, s:s, s:o, s:o}", "enabled", cfg->enable, "probe_tenant",
                                            MK_HEALTH_TENANT, "thresholds", th, "brokers", brokers));
}

static void h_integrity_scrub(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                              mk_http_resp_t *resp)
{
    mk_scrub_t *s = mk_broker_scrub(a->b);
    if (!s) {
        mk_admin_http_error(resp, 503, "unavailable", "the scrubber is not running");
        return;
    }
    mk_scrub_status_t st;
    mk_scrub_status(s, &st);
    if (!st.enabled) {
        mk_admin_http_error(resp, 409, "conflict", "scrubber passes are off (minikora.scrub.interval.ms=-1)");
        return;
    }
    if (mk_scrub_run_now(s) < 0) {
        mk_admin_http_error(resp, 409, "conflict", "a scrubber pass is running (%zu of %zu partitions done)",
                            st.pass_done, st.pass_total);
        return;
    }
    mk_admin_event(a, "scrub_requested", -1, "a scrubber pass was requested through the admin API");
    mk_admin_http_json(resp, 202, json_pack("{s:b, s:I}", "started", 1, "passes", (json_int_t)st.passes));
}

/* Prometheus lines of the scrubber and the audit (h_metrics). */
static void integrity_prometheus(mk_admin_t *a, mk_buf_t *o)
{
    mk_scrub_t *s = mk_broker_scrub(a->b);
    if (!s)
        return;
    static const struct {
        const char *name, *type, *help;
    } fams[] = {
        {"minikora_scrub_batches_verified_total", "counter", "Stored batches the scrubber read and checked."},
        {"minikora_scrub_bytes_verified_total", "counter", "Stored bytes the scrubber read and checked."},
        {"minikora_scrub_corruptions_total", "counter", "Replicas found holding corrupt or diverged batches."},
        {"minikora_scrub_repairs_total", "counter", "Replicas repaired (truncated and fetched again)."},
        {"minikora_scrub_unrepairable_partitions", "gauge", "Partitions with lost data (no sound copy) on the broker."},
        {"minikora_scrub_last_pass_timestamp_seconds", "gauge", "End of the last scrubber pass that read every replica of the broker."},
        {"minikora_audit_incidents_total", "counter", "Durability audit rules that failed."},
    };
    char id[16];
    for (size_t f = 0; f < MK_ARRAY_LEN(fams); f++) {
        mk_prom_help(o, fams[f].name, fams[f].type, fams[f].help);
        for (int i = 0; i < mk_cluster_broker_count(a->c); i++) {
            mk_cluster_broker_t *b = mk_cluster_broker_at(a->c, i);
            mk_scrub_counts_t c;
            mk_scrub_broker_counts(s, b->id, &c);
            double v[] = {(double)c.batches, (double)c.bytes, (double)c.corruptions, (double)c.repaired,
                          (double)c.unrepairable, c.last_pass_ms >= 0 ? (double)c.last_pass_ms / 1000.0 : 0,
                          (double)c.incidents};
            snprintf(id, sizeof(id), "%d", b->id);
            mk_prom_sample(o, fams[f].name, v[f], "broker", id, NULL);
        }
    }
    mk_scrub_status_t st;
    mk_scrub_status(s, &st);
    mk_prom_help(o, "minikora_scrub_passes_total", "counter", "Full scrubber passes since start.");
    mk_prom_sample(o, "minikora_scrub_passes_total", (double)st.passes, NULL);
    mk_prom_help(o, "minikora_integrity_data_lost_partitions", "gauge",
                 "Partitions marked as having lost data: their lost offsets are refused to readers.");
    mk_prom_sample(o, "minikora_integrity_data_lost_partitions", st.total.unrepairable, NULL);
    mk_prom_help(o, "minikora_audit_events_total", "counter", "Durability audit events written since start.");
    mk_prom_sample(o, "minikora_audit_events_total", (double)st.audit_events, NULL);
    mk_scrub_remote_counts_t rc;
    mk_scrub_remote_counts(s, &rc);
    if (!rc.checked)
        return;
    static const struct {
        const char *name, *help;
    } rfams[] = {
        {"minikora_scrub_remote_segments_verified_total", "Remote (S3) segments read whole and found to match their manifest."},
        {"minikora_scrub_remote_bytes_verified_total", "Remote (S3) bytes the scrubber read back."},
        {"minikora_scrub_remote_corruptions_total", "Remote (S3) segments found corrupt or missing (each once)."},
        {"minikora_scrub_remote_reuploads_total", "Corrupt remote segments uploaded again from a local copy."},
        {"minikora_scrub_remote_unrepairable_total", "Corrupt remote segments with no local copy to repair them (each once)."},
    };
    double rv[] = {(double)rc.segments, (double)rc.bytes, (double)rc.corrupt, (double)rc.reuploaded,
                   (double)rc.unrepairable};
    for (size_t f = 0; f < MK_ARRAY_LEN(rfams); f++) {
        mk_prom_help(o, rfams[f].name, "counter", rfams[f].help);
        mk_prom_sample(o, rfams[f].name, rv[f], NULL);
    }
}

/* Prometheus lines of the storage health manager (h_metrics): per broker
 * its state (one series per state, 1 for the current one), ladder step,
 * storage I/O and probes. */
static void health_prometheus(mk_admin_t *a, mk_buf_t *o)
{
    if (!a->health)
        return;
    int n = 0;
    const mk_health_broker_t *hb = mk_health_brokers(a->health, &n);
    char id[16];
    mk_prom_help(o, "minikora_health_state", "gauge",
                 "The storage health manager's state of the broker: 1 for the current state, 0 for the others.");
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%d", hb[i].id);
        for (int st = MK_HEALTH_HEALTHY; st <= MK_HEALTH_STOPPED; st++)
            mk_prom_sample(o, "minikora_health_state", hb[i].state == st, "broker", id, "state",
                           mk_health_state_name(st), NULL);
    }
    static const struct {
        const char *name, *type, *help;
    } fams[] = {
        {"minikora_health_ladder_step", "gauge",
         "Remediation ladder step last taken for the broker: 0 none, 1 restarted, 2 demoted, 3 replaced, 4 slow (out of the ISRs)."},
        {"minikora_health_fenced", "gauge", "1 while the health manager keeps the broker out of the ISRs and leadership."},
        {"minikora_health_no_progress_seconds", "gauge", "How long the broker's storage has made no progress (0: it does)."},
        {"minikora_health_io_ops_total", "counter", "Storage operations of the broker (the log layer's I/O gate)."},
        {"minikora_health_io_errors_total", "counter", "Storage operations of the broker that failed."},
        {"minikora_health_io_inflight_oldest_seconds", "gauge", "Age of the broker's oldest storage operation in flight."},
        {"minikora_health_io_latency_p99_seconds", "gauge", "99th percentile latency of the broker's recent storage operations."},
        {"minikora_health_probes_total", "counter", "Synthetic produce and consume probes of the broker that succeeded."},
        {"minikora_health_probe_failures_total", "counter", "Synthetic probes of the broker that failed."},
        {"minikora_health_probe_produce_seconds", "gauge", "Append latency of the broker's last successful probe."},
        {"minikora_health_probe_consume_seconds", "gauge", "Read-back latency of the broker's last successful probe."},
        {"minikora_health_restarts_total", "counter", "Restarts of the broker by the remediation ladder (step 1)."},
    };
    for (size_t f = 0; f < MK_ARRAY_LEN(fams); f++) {
        mk_prom_help(o, fams[f].name, fams[f].type, fams[f].help);
        for (int i = 0; i < n; i++) {
            const mk_health_broker_t *x = &hb[i];
            double v[] = {x->step, x->fenced, (double)x->no_progress_ms / 1000.0, (double)x->io.ops,
                          (double)x->io.errors, (double)x->io.oldest_inflight_ms / 1000.0, x->io.p99_ms / 1000.0,
                          (double)x->probes_ok, (double)x->probes_failed, x->probe_produce_ms / 1000.0,
                          x->probe_consume_ms / 1000.0, (double)x->restarts};
            snprintf(id, sizeof(id), "%d", x->id);
            mk_prom_sample(o, fams[f].name, v[f], "broker", id, NULL);
        }
    }
}

/* ------------------------------------------------------- latency and rates */

static void h_latency(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    char v[16];
    int32_t broker = -1;
    if (mk_admin_query_get(req->query, "broker", v, sizeof(v))) {
        if (!parse_id(v, &broker)) {
            mk_admin_http_error(resp, 400, "bad_request", "broker must be a broker id");
            return;
        }
        if (!broker_or_404(a, v, resp))
            return;
    }
    mk_admin_http_json(resp, 200, mk_admin_stats_latency_json(a->stats, broker));
}

static void h_rates(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    mk_admin_http_json(resp, 200, mk_admin_stats_rates_json(a->stats));
}

/* ----------------------------------------------------------------- metrics */

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * sysconf(_SC_PAGESIZE);
}

/* Per-partition figures, each with topic and partition labels, under the
 * names Kafka's JMX metrics get from the Prometheus JMX exporter
 * (kafka.log:type=Log,name=Size,topic=T,partition=P -> kafka_log_log_size). */
static void partition_metrics(mk_admin_t *a, mk_buf_t *o)
{
    static const struct { const char *name, *help; } fams[] = {
        {"kafka_log_log_size", "Bytes of the partition's leader log."},
        {"kafka_log_log_logstartoffset", "First offset of the partition's leader log."},
        {"kafka_log_log_logendoffset", "Offset after the last record of the partition's leader log."},
        {"minikora_partition_high_watermark", "High watermark: the end of what consumers can read."},
        {"kafka_cluster_partition_replicascount", "Replicas of the partition."},
        {"kafka_cluster_partition_insyncreplicascount", "In-sync replicas of the partition."},
        {"kafka_cluster_partition_underreplicated", "1 if the partition has fewer in-sync replicas than replicas."},
    };
    char num[16];
    for (size_t f = 0; f < MK_ARRAY_LEN(fams); f++) {
        mk_prom_help(o, fams[f].name, "gauge", fams[f].help);
        size_t it = 0;
        mk_topic_t *t;
        while ((t = mk_cluster_topic_next(a->c, &it)))
            for (int32_t i = 0; i < t->partition_count && !mk_cluster_topic_internal(t->name); i++) {
                mk_partition_t *p = mk_cluster_topic_partition(t, i);
                mk_log_t *log = mk_partition_log(p);
                mk_log_stats_t st = {0};
                if (f <= 2) {
                    if (!log)
                        continue; /* offline: no leader log to read */
                    mk_log_stats(log, &st);
                }
                int32_t isr = mk_partition_isr_size(p), rc = mk_partition_replica_count(p);
                double v = f == 0 ? (double)st.size_bytes
                           : f == 1 ? (double)st.start_offset
                           : f == 2 ? (double)st.end_offset
                           : f == 3 ? (double)mk_partition_hw(p)
                           : f == 4 ? rc
                           : f == 5 ? isr
                           : (mk_partition_leader(p) >= 0 && isr < rc);
                snprintf(num, sizeof(num), "%d", (int)i);
                mk_prom_sample(o, fams[f].name, v, "topic", t->name, "partition", num, NULL);
            }
    }
}

/* The log cleaner (compaction), under the names of Kafka's LogCleaner and
 * LogCleanerManager JMX metrics as the Prometheus JMX exporter spells them,
 * plus minikora's counters and, per compacted partition (its leader log),
 * the cleaner checkpoint and the dirty ratio. */
static void cleaner_metrics(mk_admin_t *a, mk_buf_t *o)
{
    mk_log_cleaner_stats_t cs;
    mk_log_cleaner_stats(&cs);
    double max_dirty = 0;
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(a->c, &it)))
        for (int32_t i = 0; t->cfg.cleanup_compact && i < t->partition_count; i++) {
            mk_log_t *log = mk_partition_log(mk_cluster_topic_partition(t, i));
            if (!log)
                continue;
            mk_log_clean_info_t ci;
            mk_log_clean_info(log, &ci);
            max_dirty = MK_MAX(max_dirty, 100.0 * ci.dirty_ratio);
        }
    mk_prom_help(o, "kafka_log_logcleaner_cleaner_recopy_percent", "gauge",
                 "Bytes written / bytes read by the last cleaning, in percent.");
    mk_prom_sample(o, "kafka_log_logcleaner_cleaner_recopy_percent", cs.last_recopy_percent, NULL);
    mk_prom_help(o, "kafka_log_logcleaner_max_clean_time_secs", "gauge", "Duration of the last cleaning, in seconds.");
    mk_prom_sample(o, "kafka_log_logcleaner_max_clean_time_secs", cs.max_clean_time_secs, NULL);
    mk_prom_help(o, "kafka_log_logcleaner_max_buffer_utilization_percent", "gauge",
                 "Fill of the key map of the last cleaning, in percent of the keys one cleaning can map.");
    mk_prom_sample(o, "kafka_log_logcleaner_max_buffer_utilization_percent", cs.max_buffer_utilization_percent, NULL);
    mk_prom_help(o, "kafka_log_logcleaner_deadthreadcount", "gauge", "Cleaner threads that died (always 0).");
    mk_prom_sample(o, "kafka_log_logcleaner_deadthreadcount", 0, NULL);
    mk_prom_help(o, "kafka_log_logcleanermanager_max_dirty_percent", "gauge",
                 "Largest dirty ratio of a compacted partition's leader log, in percent.");
    mk_prom_sample(o, "kafka_log_logcleanermanager_max_dirty_percent", max_dirty, NULL);
    mk_prom_help(o, "kafka_log_logcleanermanager_time_since_last_run_seconds", "gauge",
                 "Seconds since the last cleaning was swapped in (Kafka's time-since-last-run-ms; 0 before the "
                 "first).");
    mk_prom_sample(o, "kafka_log_logcleanermanager_time_since_last_run_seconds",
                   cs.last_run_ms < 0 ? 0 : (double)(mk_now_ms() - cs.last_run_ms) / 1000.0, NULL);
    static const struct { const char *name, *help; } ctr[] = {
        {"minikora_log_cleaner_runs_total", "Cleanings swapped in."},
        {"minikora_log_cleaner_failures_total", "Cleanings that failed (see the log)."},
        {"minikora_log_cleaner_aborted_total", "Cleanings given up because the log changed under them."},
        {"minikora_log_cleaner_read_bytes_total", "Bytes of segments read by cleanings."},
        {"minikora_log_cleaner_written_bytes_total", "Bytes of segments written by cleanings."},
        {"minikora_log_cleaner_removed_records_total", "Records removed by compaction."},
    };
    double vals[] = {(double)cs.runs, (double)cs.failures, (double)cs.aborted, (double)cs.bytes_read,
                     (double)cs.bytes_written, (double)cs.records_removed};
    for (size_t k = 0; k < MK_ARRAY_LEN(ctr); k++) {
        mk_prom_help(o, ctr[k].name, "counter", ctr[k].help);
        mk_prom_sample(o, ctr[k].name, vals[k], NULL);
    }
    mk_prom_help(o, "minikora_log_cleaner_running", "gauge", "Cleanings in flight.");
    mk_prom_sample(o, "minikora_log_cleaner_running", cs.running, NULL);
    static const struct { const char *name, *help; } fams[] = {
        {"minikora_log_cleaner_cleaned_offset", "Compacted partitions: offsets below were compacted (leader log)."},
        {"minikora_log_cleaner_dirty_ratio", "Compacted partitions: dirty bytes / sealed bytes (leader log)."},
    };
    char num[16];
    for (size_t f = 0; f < MK_ARRAY_LEN(fams); f++) {
        mk_prom_help(o, fams[f].name, "gauge", fams[f].help);
        it = 0;
        while ((t = mk_cluster_topic_next(a->c, &it)))
            for (int32_t i = 0; t->cfg.cleanup_compact && i < t->partition_count; i++) {
                mk_log_t *log = mk_partition_log(mk_cluster_topic_partition(t, i));
                if (!log)
                    continue;
                mk_log_clean_info_t ci;
                mk_log_clean_info(log, &ci);
                snprintf(num, sizeof(num), "%d", (int)i);
                mk_prom_sample(o, fams[f].name, f == 0 ? (double)ci.cleaned_offset : ci.dirty_ratio, "topic", t->name,
                               "partition", num, NULL);
            }
    }
}

typedef struct lag_ctx_s {
    mk_admin_t *a;
    mk_buf_t *o;
    const char *group;
    int which;                /* 0: committed offset, 1: lag */
} lag_ctx_t;

static void lag_cb(const char *topic, int32_t partition, const mk_group_offset_t *off, void *arg)
{
    lag_ctx_t *l = arg;
    mk_topic_t *t = mk_cluster_topic_find(l->a->c, topic);
    mk_partition_t *p = t ? mk_cluster_topic_partition(t, partition) : NULL;
    if (!p || off->offset < 0)
        return;
    char num[16];
    snprintf(num, sizeof(num), "%d", (int)partition);
    double v = l->which ? (double)MK_MAX(mk_partition_hw(p) - off->offset, 0) : (double)off->offset;
    mk_prom_sample(l->o, l->which ? "kafka_consumergroup_lag" : "kafka_consumergroup_current_offset", v,
                   "consumergroup", l->group, "topic", topic, "partition", num, NULL);
}

/* Consumer-group lag per partition: the high watermark minus the committed
 * offset (what GET /v1/groups/{id} shows), under kafka_exporter's names. */
static void group_lag_metrics(mk_admin_t *a, mk_group_coord_t *gc, const names_t *groups, mk_buf_t *o)
{
    mk_prom_help(o, "kafka_consumergroup_current_offset", "gauge", "Committed offset of the group, per partition.");
    lag_ctx_t l = {a, o, NULL, 0};
    for (int i = 0; i < groups->n; i++) {
        l.group = groups->v[i];
        mk_group_offsets_foreach(gc, l.group, lag_cb, &l);
    }
    mk_prom_help(o, "kafka_consumergroup_lag", "gauge",
                 "Records the group has not committed yet: high watermark minus committed offset, per partition.");
    l.which = 1;
    for (int i = 0; i < groups->n; i++) {
        l.group = groups->v[i];
        mk_group_offsets_foreach(gc, l.group, lag_cb, &l);
    }
}
static void tier_metrics(mk_admin_t *a, mk_buf_t *o);

/* The segment descriptor cache (log/, issue 16): one for the process. */
static void open_files_metrics(mk_buf_t *o)
{
    mk_log_open_files_stats_t st;
    mk_log_open_files_stats(&st);
    mk_prom_help(o, "minikora_log_open_files", "gauge", "Segment file descriptors held open by the cache.");
    mk_prom_sample(o, "minikora_log_open_files", (double)st.open, NULL);
    mk_prom_help(o, "minikora_log_open_files_limit", "gauge",
                 "Bound of the segment descriptor cache (minikora.log.max.open.files, at most half the limit).");
    mk_prom_sample(o, "minikora_log_open_files_limit", (double)st.limit, NULL);
    mk_prom_help(o, "minikora_log_open_files_evictions_total", "counter",
                 "Segments whose files were closed to make room in the cache.");
    mk_prom_sample(o, "minikora_log_open_files_evictions_total", (double)st.evictions, NULL);
    mk_prom_help(o, "minikora_log_open_files_reopens_total", "counter", "Evicted segments opened again on use.");
    mk_prom_sample(o, "minikora_log_open_files_reopens_total", (double)st.reopens, NULL);
    mk_prom_help(o, "minikora_log_open_files_emfile_total", "counter",
                 "Segment opens that failed with EMFILE or ENFILE even after emptying the cache.");
    mk_prom_sample(o, "minikora_log_open_files_emfile_total", (double)st.emfile, NULL);
}

/* Per tenant (the default one first): the throttle time and throttled
 * responses by the quota that set them (counters; the four keys that
 * throttle, zeros included, so each series exists from the start), and
 * each quota's use beside its limit (gauges, in the key's own unit: bytes/s,
 * % of a request-handling thread, connections, partitions, bytes).  A use
 * is exported where there is a measure, a limit where one is set. */
static void tenant_quota_metrics(mk_admin_t *a, mk_buf_t *o)
{
    static const int throttling[] = {MK_QUOTA_PRODUCER_BYTE_RATE, MK_QUOTA_CONSUMER_BYTE_RATE,
                                     MK_QUOTA_REQUEST_PERCENTAGE, MK_QUOTA_CONTROLLER_MUTATION_RATE};
    static const char *const names[] = {"minikora_tenant_throttle_time_seconds_total",
                                        "minikora_tenant_throttled_responses_total", "minikora_tenant_quota_usage",
                                        "minikora_tenant_quota_limit"};
    static const char *const helps[] = {
        "Throttle time given to the tenant's responses (KIP-219), by the quota whose time was the longest.",
        "Responses of the tenant answered with a throttle time, by the quota whose time was the longest.",
        "What the tenant uses of each quota, in the quota's unit: bytes/s over the quota windows "
        "(producer_byte_rate, consumer_byte_rate), % of a request-handling thread (request_percentage), "
        "open connections, partitions, stored bytes.",
        "The tenant-wide quota limit in force, in the quota's unit (only the limits that are set).",
    };
    mk_tenant_registry_t *r = mk_broker_tenants(a->b);
    mk_quota_registry_t *qr = mk_broker_quotas(a->b);
    for (int m = 0; m < 4; m++) {
        mk_prom_help(o, names[m], m < 2 ? "counter" : "gauge", helps[m]);
        const mk_tenant_t *t = mk_tenant_default();
        for (size_t it = 0; t; t = r ? mk_tenant_next(r, &it) : NULL) {
            mk_broker_quota_use_t u;
            mk_broker_quota_use(a->b, t->id, &u);
            if (m < 2) {
                for (size_t i = 0; i < MK_ARRAY_LEN(throttling); i++) {
                    int k = throttling[i];
                    double v = m == 0 ? (double)u.throttle_ms_by[k] / 1000.0 : (double)u.throttled_by[k];
                    mk_prom_sample(o, names[m], v, "tenant", t->id, "quota", mk_quota_key_name(k), NULL);
                }
                continue;
            }
            const mk_quota_limits_t *lim = qr ? mk_quota_tenant(qr, t->id) : NULL;
            double use[MK_QUOTA__COUNT];
            bool has[MK_QUOTA__COUNT];
            if (m == 2) {
                int64_t partitions;
                uint64_t stored;
                tenant_totals(a, t, &partitions, &stored);
                tenant_quota_use(a, t, &u, partitions, stored, use, has);
            }
            for (int k = 0; k < MK_QUOTA__COUNT; k++) {
                if (m == 2 && has[k])
                    mk_prom_sample(o, names[m], use[k], "tenant", t->id, "quota", mk_quota_key_name(k), NULL);
                else if (m == 3 && lim && (lim->set >> k & 1))
                    mk_prom_sample(o, names[m], lim->v[k], "tenant", t->id, "quota", mk_quota_key_name(k), NULL);
            }
        }
    }
}

static void h_metrics(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    mk_buf_t *o = &resp->body;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    counts_t k;
    if (!counts_take(a, &k)) {
        mk_admin_http_error(resp, 500, "internal", "out of memory");
        return;
    }
    char id[16], num[16];
    int n = mk_cluster_broker_count(a->c), up = 0;
    mk_prom_help(o, "minikora_broker_up", "gauge", "1 if the broker is running, else 0.");
    for (int i = 0; i < n; i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(a->c, i);
        snprintf(id, sizeof(id), "%d", b->id);
        snprintf(num, sizeof(num), "%d", b->cell);
        mk_prom_sample(o, "minikora_broker_up", b->running, "broker", id, "az", b->az, "cell", num, NULL);
        up += b->running;
    }
    mk_prom_help(o, "minikora_brokers_up", "gauge", "Brokers running.");
    mk_prom_sample(o, "minikora_brokers_up", up, NULL);
    mk_prom_help(o, "minikora_brokers", "gauge", "Brokers configured.");
    mk_prom_sample(o, "minikora_brokers", n, NULL);
    mk_prom_help(o, "kafka_controller_kafkacontroller_activebrokercount", "gauge", "Brokers running (Kafka's name).");
    mk_prom_sample(o, "kafka_controller_kafkacontroller_activebrokercount", up, NULL);

    static const struct { const char *name, *help; int which; } per_broker[] = {
        {"kafka_server_replicamanager_leadercount", "Partitions this broker leads.", 0},
        {"kafka_server_replicamanager_partitioncount", "Partition replicas on this broker.", 1},
        {"kafka_server_replicamanager_underreplicatedpartitions",
         "Partitions led by this broker with fewer in-sync replicas than replicas.", 2},
        /* Kafka's JMX attribute is connection-count; "_count" is reserved for
         * histograms and summaries in Prometheus, so the gauge is named for what it counts. */
        {"kafka_server_socketservermetrics_connections", "Open client connections of this broker.", 3},
    };
    for (size_t m = 0; m < MK_ARRAY_LEN(per_broker); m++) {
        mk_prom_help(o, per_broker[m].name, "gauge", per_broker[m].help);
        for (int i = 0; i < n; i++) {
            mk_cluster_broker_t *b = mk_cluster_broker_at(a->c, i);
            snprintf(id, sizeof(id), "%d", b->id);
            int idx = b->id - 1;
            double v = per_broker[m].which == 0   ? k.leaders[idx]
                       : per_broker[m].which == 1 ? k.replicas[idx]
                       : per_broker[m].which == 2 ? k.under_replicated[idx]
                       : broker_conns(b);
            mk_prom_sample(o, per_broker[m].name, v, "broker", id, NULL);
        }
    }
    /* Elasticity: drains, removals, the partition balancer. */
    mk_prom_help(o, "minikora_broker_drain_replicas_left", "gauge",
                 "Replicas still on a broker being drained (only brokers with a drain).");
    for (int i = 0; i < a->bal.ndrains; i++) {
        snprintf(id, sizeof(id), "%d", (int)a->bal.drains[i].broker);
        mk_prom_sample(o, "minikora_broker_drain_replicas_left", a->bal.drains[i].left, "broker", id, NULL);
    }
    mk_prom_help(o, "minikora_broker_drains_done_total", "counter", "Drains that reached zero replicas.");
    mk_prom_sample(o, "minikora_broker_drains_done_total", (double)a->bal.drains_done, NULL);
    mk_prom_help(o, "minikora_brokers_removed_total", "counter", "Brokers removed (retired) through the admin API.");
    mk_prom_sample(o, "minikora_brokers_removed_total", (double)a->bal.brokers_removed, NULL);
    mk_prom_help(o, "minikora_partition_balancer_moves_total", "counter",
                 "Moves the within-cell partition balancer started, by kind.");
    mk_prom_sample(o, "minikora_partition_balancer_moves_total", (double)a->bal.part_replica_moves, "kind", "replica",
                   NULL);
    mk_prom_sample(o, "minikora_partition_balancer_moves_total", (double)a->bal.part_leader_moves, "kind", "leader",
                   NULL);
    mk_prom_help(o, "kafka_controller_kafkacontroller_offlinepartitionscount", "gauge",
                 "Partitions without a leader.");
    mk_prom_sample(o, "kafka_controller_kafkacontroller_offlinepartitionscount", k.offline, NULL);
    mk_prom_help(o, "minikora_under_replicated_partitions", "gauge",
                 "Partitions with fewer in-sync replicas than replicas (cluster-wide).");
    mk_prom_sample(o, "minikora_under_replicated_partitions", k.urp, NULL);
    mk_prom_help(o, "kafka_controller_kafkacontroller_globaltopiccount", "gauge", "Topics.");
    mk_prom_sample(o, "kafka_controller_kafkacontroller_globaltopiccount", k.topics, NULL);
    mk_prom_help(o, "kafka_controller_kafkacontroller_globalpartitioncount", "gauge", "Partitions.");
    mk_prom_sample(o, "kafka_controller_kafkacontroller_globalpartitioncount", k.partitions, NULL);
    counts_free(&k);

    /* Per topic: partitions and bytes stored (leader replicas). */
    mk_prom_help(o, "minikora_topic_partitions", "gauge", "Partitions of the topic.");
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(a->c, &it)))
        if (!mk_cluster_topic_internal(t->name))
            mk_prom_sample(o, "minikora_topic_partitions", t->partition_count, "topic", t->name, NULL);
    mk_prom_help(o, "minikora_topic_size_bytes", "gauge", "Bytes of the topic's leader logs, all partitions.");
    it = 0;
    while ((t = mk_cluster_topic_next(a->c, &it))) {
        if (mk_cluster_topic_internal(t->name))
            continue;
        uint64_t size;
        int64_t records;
        topic_log_totals(t, &size, &records);
        mk_prom_sample(o, "minikora_topic_size_bytes", (double)size, "topic", t->name, NULL);
    }
    partition_metrics(a, o);
    cleaner_metrics(a, o);
    mk_group_coord_t *gc = mk_broker_groups(a->b);
    if (gc) {
        names_t gn = {0};
        mk_group_list(gc, -1, group_id_cb, &gn);
        mk_prom_help(o, "kafka_coordinator_group_groupmetadatamanager_numgroups", "gauge", "Consumer groups.");
        mk_prom_sample(o, "kafka_coordinator_group_groupmetadatamanager_numgroups", gn.n, NULL);
        group_lag_metrics(a, gc, &gn, o);
        names_free(&gn);
    }

    mk_repl_t *r = mk_broker_repl(a->b);
    if (r) {
        uint64_t reads = 0, total = mk_repl_cross_az_total(r, &reads);
        mk_prom_help(o, "minikora_cross_az_bytes_total", "counter", "Bytes that crossed AZs, by kind.");
        mk_prom_sample(o, "minikora_cross_az_bytes_total", (double)(total - reads), "kind", "replication", NULL);
        mk_prom_sample(o, "minikora_cross_az_bytes_total", (double)reads, "kind", "client_read", NULL);
        uint64_t copies = 0, acks = 0, acked = mk_broker_acks_all_acked(a->b);
        mk_repl_round_counts(r, &copies, &acks);
        mk_prom_help(o, "minikora_repl_rounds_total", "counter",
                     "Replication rounds: copy (one per follower and round), ack (acknowledgements back across AZs).");
        mk_prom_sample(o, "minikora_repl_rounds_total", (double)copies, "kind", "copy", NULL);
        mk_prom_sample(o, "minikora_repl_rounds_total", (double)acks, "kind", "ack", NULL);
        mk_prom_help(o, "minikora_produce_acks_all_acknowledged_total", "counter",
                     "acks=all partition writes acknowledged (replicated to the ISR).");
        mk_prom_sample(o, "minikora_produce_acks_all_acknowledged_total", (double)acked, NULL);
        mk_prom_help(o, "minikora_repl_copy_rounds_per_ack", "gauge",
                     "Copy rounds per acknowledged acks=all partition write since start (RF 3: 2 is one round per follower).");
        mk_prom_sample(o, "minikora_repl_copy_rounds_per_ack", acked ? (double)copies / (double)acked : 0.0, NULL);
    }

    mk_admin_stats_prometheus(a->stats, o);
    integrity_prometheus(a, o);
    health_prometheus(a, o);
    tenant_quota_metrics(a, o);
    tier_metrics(a, o);
    mk_admin_faults_prometheus(a, o);
    open_files_metrics(o);

    mk_prom_help(o, "minikora_admin_http_responses_total", "counter", "Admin API responses by status class.");
    for (int c = 1; c <= 5; c++) {
        char cls[8];
        snprintf(cls, sizeof(cls), "%dxx", c);
        mk_prom_sample(o, "minikora_admin_http_responses_total", (double)a->http_by_class[c], "code", cls, NULL);
    }
    mk_prom_help(o, "minikora_admin_connections", "gauge", "Open admin API connections.");
    mk_prom_sample(o, "minikora_admin_connections", mk_admin_http_conn_count(a->http), NULL);
    mk_prom_help(o, "minikora_events_total", "counter", "Events recorded (GET /v1/events).");
    mk_prom_sample(o, "minikora_events_total", (double)mk_admin_events_last(a), NULL);
    mk_prom_help(o, "minikora_resets_total", "counter", "POST /v1/reset calls.");
    mk_prom_sample(o, "minikora_resets_total", (double)a->resets, NULL);
    /* The event loop's idle time (time blocked in poll, measured by libuv
     * when main.c configured UV_METRICS_IDLE_TIME); the busy fraction over
     * an interval is 1 - d(idle) / d(wall), with loop_wall from the same
     * scrape. */
    mk_prom_help(o, "minikora_loop_idle_seconds_total", "counter",
                 "Time the event loop spent idle in its poll (libuv uv_metrics_idle_time).");
    mk_prom_sample(o, "minikora_loop_idle_seconds_total", (double)uv_metrics_idle_time(a->loop) / 1e9, NULL);
    mk_prom_help(o, "minikora_loop_wall_seconds_total", "counter",
                 "Monotonic clock, seconds (the denominator of the loop's busy fraction).");
    mk_prom_sample(o, "minikora_loop_wall_seconds_total", (double)uv_hrtime() / 1e9, NULL);
    mk_prom_help(o, "minikora_uptime_seconds", "gauge", "Seconds since the admin API started.");
    mk_prom_sample(o, "minikora_uptime_seconds", (double)(mk_mono_ms() - a->started_mono_ms) / 1000.0, NULL);
    long rss = rss_bytes();
    if (rss >= 0) {
        mk_prom_help(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        mk_prom_sample(o, "process_resident_memory_bytes", (double)rss, NULL);
    }
    mk_prom_help(o, "process_start_time_seconds", "gauge", "Start time of the process since the epoch, seconds.");
    mk_prom_sample(o, "process_start_time_seconds", (double)a->started_wall_ms / 1000.0, NULL);
}

/* ---------------------------------------------------------- tiered storage */

static double hit_rate(uint64_t hits, uint64_t misses)
{
    return hits + misses ? (double)hits / (double)(hits + misses) : 0.0;
}

/* GET /v1/tier: tiering's target and S3 status, the chunk cache, copies and
 * deletes, and per broker its uploads, transfers and cache hit rate. */
static void h_tier(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    mk_tier_t *tier = mk_broker_tier(a->b);
    if (!tier) {
        mk_admin_http_json(resp, 200, json_pack("{s:b}", "enabled", false));
        return;
    }
    const mk_tier_target_t *tg = mk_tier_target(tier);
    mk_tier_stats_t st;
    mk_tier_stats(tier, &st);
    json_t *brokers = json_array();
    int32_t pend = 0;
    int64_t pend_bytes = 0;
    for (int i = 0; i < mk_cluster_broker_count(a->c); i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(a->c, i);
        mk_tier_broker_stats_t bs;
        mk_tier_broker_stats(tier, b->id, &bs);
        pend += bs.uploads_pending;
        pend_bytes += bs.uploads_pending_bytes;
        json_array_append_new(
            brokers,
            json_pack("{s:i, s:i, s:I, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I}", "id",
                      (int)b->id, "uploads_pending", (int)bs.uploads_pending, "uploads_pending_bytes",
                      (json_int_t)bs.uploads_pending_bytes, "uploads_in_flight", (int)bs.uploads_in_flight,
                      "uploads_done", (json_int_t)bs.uploads_done, "uploads_failed", (json_int_t)bs.uploads_failed,
                      "upload_bytes", (json_int_t)bs.upload_bytes, "download_bytes", (json_int_t)bs.download_bytes,
                      "remote_fetch_bytes", (json_int_t)bs.fetch_bytes, "remote_fetch_requests",
                      (json_int_t)bs.fetch_requests, "remote_fetch_errors", (json_int_t)bs.fetch_errors, "cache_hits",
                      (json_int_t)bs.cache_hits, "cache_misses", (json_int_t)bs.cache_misses, "deletes_done",
                      (json_int_t)bs.deletes_done, "cache_hit_rate", hit_rate(bs.cache_hits, bs.cache_misses),
                      "deletes_failed", (json_int_t)bs.deletes_failed, "cache_lookups",
                      (json_int_t)(bs.cache_hits + bs.cache_misses)));
    }
    json_t *s3 = json_pack("{s:s, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I}, s:I, s:I, s:I}", "status",
                           mk_tier_s3_status_name(st.s3_status), "error",
                           st.s3_error[0] ? json_string(st.s3_error) : json_null(), "last_ok_ms",
                           st.s3_last_ok_ms ? jint(st.s3_last_ok_ms) : json_null(), "last_error_ms",
                           st.s3_last_error_ms ? jint(st.s3_last_error_ms) : json_null(), "requests", "PutObject",
                           (json_int_t)st.requests[0], "GetObject", (json_int_t)st.requests[1], "HeadObject",
                           (json_int_t)st.requests[2], "DeleteObject", (json_int_t)st.requests[3], "errors",
                           (json_int_t)st.errors, "upload_bytes", (json_int_t)st.upload_bytes, "download_bytes",
                           (json_int_t)st.download_bytes);
    json_t *cache = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:i}", "memory_bytes",
                              (json_int_t)st.cache_memory_bytes, "memory_chunks", (json_int_t)st.cache_memory_chunks,
                              "memory_max_bytes", (json_int_t)st.cache_memory_max, "disk_bytes",
                              (json_int_t)st.cache_disk_bytes, "disk_chunks", (json_int_t)st.cache_disk_chunks,
                              "disk_max_bytes", (json_int_t)st.cache_disk_max, "hits", (json_int_t)st.cache_hits,
                              "disk_hits", (json_int_t)st.cache_disk_hits, "misses", (json_int_t)st.cache_misses,
                              "hit_rate", hit_rate(st.cache_hits, st.cache_disk_hits + st.cache_misses),
                              "reads_in_flight", (int)st.downloads_in_flight);
    json_t *j = json_pack(
        "{s:b, s:{s:s, s:s, s:s, s:b, s:s}, s:o, s:o, s:{s:i, s:I, s:i, s:I, s:I}, s:{s:i, s:I, s:I}, "
        "s:{s:I, s:I, s:{s:i, s:i, s:i}}, s:{s:I, s:I}, s:o}",
        "enabled", true, "target", "url", tg->url, "bucket", tg->bucket, "region", tg->region, "bundled", tg->bundled,
        "uri_style", tg->virtual_style ? "virtual" : "path", "s3", s3, "cache", cache, "uploads", "pending", (int)pend,
        "pending_bytes", (json_int_t)pend_bytes, "in_flight", (int)st.uploads_in_flight, "done",
        (json_int_t)st.uploads_done, "failed", (json_int_t)st.uploads_failed, "deletes", "in_flight",
        (int)st.deletes_in_flight, "done", (json_int_t)st.deletes_done, "failed", (json_int_t)st.deletes_failed,
        "remote", "bytes", (json_int_t)st.remote_bytes, "segments", (json_int_t)st.remote_segments, "by_state",
        "COPY_STARTED", st.segments[0], "COPY_FINISHED", st.segments[1], "DELETE_STARTED", st.segments[2],
        "remote_fetch", "requests", (json_int_t)st.fetch_requests, "errors", (json_int_t)st.fetch_errors, "brokers",
        brokers);
    mk_admin_http_json(resp, 200, j);
}

/* One topic's bytes in the three tiers (memory: its chunks in the cache;
 * local: its leader logs; S3: its COPY_FINISHED segments) and its upload
 * backlog. */
typedef struct tiers_s {
    uint64_t memory, local, remote, backlog;
    int64_t backlog_segments, remote_segments;
} tiers_t;

static void topic_tiers(mk_tier_t *tier, mk_topic_t *t, tiers_t *out)
{
    memset(out, 0, sizeof(*out));
    for (int32_t i = 0; i < t->partition_count; i++) {
        mk_partition_t *p = mk_cluster_topic_partition(t, i);
        if (mk_partition_log(p)) {
            mk_log_stats_t st;
            mk_log_stats(mk_partition_log(p), &st);
            out->local += st.size_bytes;
        }
        if (tier) {
            mk_tier_partition_info_t ti;
            mk_tier_partition_info(tier, p, &ti);
            out->memory += ti.cache_memory_bytes;
            out->remote += (uint64_t)ti.remote_bytes;
            out->backlog += (uint64_t)ti.upload_pending_bytes;
            out->backlog_segments += ti.upload_pending;
            out->remote_segments += ti.segments[1];
        }
    }
}

static json_t *tiers_json(const tiers_t *x)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "memory_bytes", (json_int_t)x->memory, "local_bytes",
                     (json_int_t)x->local, "remote_bytes", (json_int_t)x->remote, "upload_backlog_bytes",
                     (json_int_t)x->backlog, "upload_backlog_segments", (json_int_t)x->backlog_segments,
                     "remote_segments", (json_int_t)x->remote_segments);
}

/* GET /v1/storage: per tenant and topic, the bytes in memory, on local disk
 * and in S3 and the upload backlog; tiering's S3 status and counters (the
 * TUI's Storage view). */
static json_t *storage_tenant_json(mk_admin_t *a, mk_tier_t *tier, const mk_tenant_t *tn)
{
    tiers_t sum = {0};
    json_t *topics = json_array();
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(a->c, &it))) {
        if (!mk_tenant_visible(tn, t->name))
            continue;
        tiers_t x;
        topic_tiers(tier, t, &x);
        sum.memory += x.memory;
        sum.local += x.local;
        sum.remote += x.remote;
        sum.backlog += x.backlog;
        sum.backlog_segments += x.backlog_segments;
        sum.remote_segments += x.remote_segments;
        json_t *tj = tiers_json(&x);
        json_object_set_new(tj, "name", json_string(mk_tenant_to_external(tn, t->name)));
        json_object_set_new(tj, "tiered", json_boolean(t->cfg.tiered));
        json_array_append_new(topics, tj);
    }
    json_t *j = tiers_json(&sum);
    json_object_set_new(j, "id", json_string(tn->id));
    json_object_set_new(j, "topics", topics);
    return j;
}

static void h_storage(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    mk_tier_t *tier = mk_broker_tier(a->b);
    json_t *tenants = json_array();
    mk_tenant_registry_t *reg = mk_broker_tenants(a->b);
    mk_tenant_t *tn;
    json_array_append_new(tenants, storage_tenant_json(a, tier, mk_tenant_default()));
    for (size_t ti = 0; reg && (tn = mk_tenant_next(reg, &ti));)
        json_array_append_new(tenants, storage_tenant_json(a, tier, tn));
    json_t *out = json_pack("{s:b, s:o}", "tiering", tier != NULL, "tenants", tenants);
    if (tier) {
        mk_tier_stats_t st;
        mk_tier_stats(tier, &st);
        json_object_set_new(out, "s3_status", json_string(mk_tier_s3_status_name(st.s3_status)));
        json_object_set_new(out, "s3_error", st.s3_error[0] ? json_string(st.s3_error) : json_null());
        json_object_set_new(out, "s3_url", json_string(mk_tier_target(tier)->url));
        json_object_set_new(out, "upload_bytes", jint((int64_t)st.upload_bytes));
        json_object_set_new(out, "download_bytes", jint((int64_t)st.download_bytes));
        json_object_set_new(out, "s3_requests", jint((int64_t)st.requests[4]));
        json_object_set_new(out, "s3_errors", jint((int64_t)st.errors));
        json_object_set_new(out, "cache_memory_bytes", jint((int64_t)st.cache_memory_bytes));
        json_object_set_new(out, "cache_memory_max_bytes", jint((int64_t)st.cache_memory_max));
        json_object_set_new(out, "cache_disk_bytes", jint((int64_t)st.cache_disk_bytes));
        json_object_set_new(out, "cache_hit_rate", json_real(hit_rate(st.cache_hits, st.cache_disk_hits + st.cache_misses)));
        json_object_set_new(out, "uploads_in_flight", json_integer(st.uploads_in_flight));
        json_object_set_new(out, "uploads_failed", jint((int64_t)st.uploads_failed));
    }
    mk_admin_http_json(resp, 200, out);
}

static json_t *s3_fault_json(mk_s3d_t *s3d)
{
    mk_s3d_fault_t f;
    uint64_t injected;
    mk_s3d_fault_get(s3d, &f, &injected);
    json_t *j = json_pack("{s:s, s:I}", "type", mk_s3d_fault_name(f.type), "injected", (json_int_t)injected);
    if (f.type == MK_S3D_FAULT_SLOW)
        json_object_set_new(j, "delay_ms", json_integer(f.delay_ms));
    if (f.type == MK_S3D_FAULT_ERROR) {
        json_object_set_new(j, "error_pct", json_integer(f.error_pct ? f.error_pct : 100));
        json_object_set_new(j, "status", json_integer(f.status));
    }
    return j;
}

/* GET /v1/s3: the bundled S3 server: objects, bytes, requests by operation,
 * errors, and the fault it injects. */
static void h_s3(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    if (!a->s3d) {
        mk_admin_http_json(resp, 200, json_pack("{s:b}", "enabled", false));
        return;
    }
    mk_s3d_stats_t st;
    mk_s3d_stats(a->s3d, &st);
    json_t *ops = json_object();
    for (int i = 0; i < MK_S3D_OP_COUNT; i++)
        if (st.requests_by_op[i])
            json_object_set_new(ops, mk_s3d_op_name(i), jint((int64_t)st.requests_by_op[i]));
    json_t *j = json_pack("{s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
                          "enabled", true, "url", mk_s3d_url(a->s3d), "bucket", mk_s3d_bucket(a->s3d), "buckets",
                          (json_int_t)st.buckets, "objects", (json_int_t)st.objects, "bytes", (json_int_t)st.bytes,
                          "multipart_uploads", (json_int_t)st.uploads, "requests", (json_int_t)st.requests,
                          "requests_by_op", ops, "errors", (json_int_t)st.errors, "errors_5xx",
                          (json_int_t)st.errors_5xx, "auth_failures", (json_int_t)st.auth_failures, "bytes_in",
                          (json_int_t)st.bytes_in, "bytes_out", (json_int_t)st.bytes_out, "connections",
                          (json_int_t)st.connections, "fault", s3_fault_json(a->s3d));
    mk_admin_http_json(resp, 200, j);
}

/* POST /v1/s3/fault {"type": "down"|"slow"|"error"|"none", "delay_ms",
 * "error_pct", "status"}: the bundled server's fault switch (s3d.h). */
static void h_s3_fault(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps, mk_http_resp_t *resp)
{
    if (!a->s3d) {
        mk_admin_http_error(resp, 409, "no_s3", "the bundled S3 server is not running (--s3-port -1)");
        return;
    }
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body || !json_is_object(body)) {
        json_decref(body);
        mk_admin_http_error(resp, 400, "bad_json", "the body must be a JSON object");
        return;
    }
    mk_s3d_fault_t f = {0};
    char why[160] = "";
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (why[0])
            break;
        if (strcmp(key, "type") == 0 && json_is_string(v)) {
            f.type = mk_s3d_fault_find(json_string_value(v));
            if (f.type < 0)
                snprintf(why, sizeof(why), "unknown fault type (known: none, down, slow, error)");
        } else if (strcmp(key, "delay_ms") == 0 && json_is_integer(v) && json_integer_value(v) <= INT32_MAX &&
                   json_integer_value(v) >= 0) {
            f.delay_ms = (int32_t)json_integer_value(v);
        } else if (strcmp(key, "error_pct") == 0 && json_is_integer(v) && json_integer_value(v) >= 0 &&
                   json_integer_value(v) <= 100) {
            f.error_pct = (int32_t)json_integer_value(v);
        } else if (strcmp(key, "status") == 0 && json_is_integer(v) &&
                   (json_integer_value(v) == 500 || json_integer_value(v) == 503)) {
            f.status = (int32_t)json_integer_value(v);
        } else {
            snprintf(why, sizeof(why), "bad field '%.60s' (type, delay_ms, error_pct 0..100, status 500|503)", key);
        }
    }
    json_decref(body);
    if (!why[0] && mk_s3d_fault_set(a->s3d, &f) < 0)
        snprintf(why, sizeof(why), "invalid fault (slow needs delay_ms 1..600000)");
    if (why[0]) {
        mk_admin_http_error(resp, 400, "bad_request", "%s", why);
        return;
    }
    mk_admin_event(a, "s3_fault", 0, "bundled S3 server fault: %s", mk_s3d_fault_name(f.type));
    mk_admin_http_json(resp, 200, json_pack("{s:o}", "fault", s3_fault_json(a->s3d)));
}

static void h_s3_fault_clear(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                             mk_http_resp_t *resp)
{
    if (!a->s3d) {
        mk_admin_http_error(resp, 409, "no_s3", "the bundled S3 server is not running (--s3-port -1)");
        return;
    }
    mk_s3d_fault_t f = {0};
    mk_s3d_fault_set(a->s3d, &f);
    mk_admin_event(a, "s3_fault", 0, "bundled S3 server fault cleared");
    mk_admin_http_json(resp, 200, json_pack("{s:o}", "fault", s3_fault_json(a->s3d)));
}

/* /metrics: Kafka's remote-storage metric names (BrokerTopicMetrics
 * RemoteCopyBytesPerSec and the rest, as counters per broker; the lag and
 * size gauges per topic), the cache, and the bundled server. */
static void tier_metrics(mk_admin_t *a, mk_buf_t *o)
{
    mk_tier_t *tier = mk_broker_tier(a->b);
    char id[16];
    int n = mk_cluster_broker_count(a->c);
    if (tier) {
        static const struct { const char *name, *help; int which; } per_broker[] = {
            {"kafka_server_brokertopicmetrics_remotecopybytes_total", "Segment bytes copied to S3 (RemoteCopyBytesPerSec).", 0},
            {"kafka_server_brokertopicmetrics_remotecopyrequests_total", "Segment copies done (RemoteCopyRequestsPerSec).", 1},
            {"kafka_server_brokertopicmetrics_remotecopyerrors_total", "Segment copies that failed (RemoteCopyErrorsPerSec).", 2},
            {"kafka_server_brokertopicmetrics_remotefetchbytes_total", "Record bytes served from S3 (RemoteFetchBytesPerSec).", 3},
            {"kafka_server_brokertopicmetrics_remotefetchrequests_total", "Fetches served from S3 (RemoteFetchRequestsPerSec).", 4},
            {"kafka_server_brokertopicmetrics_remotefetcherrors_total", "Fetches from S3 that failed (RemoteFetchErrorsPerSec).", 5},
            {"kafka_server_brokertopicmetrics_remotedeleterequests_total", "Remote segments deleted (RemoteDeleteRequestsPerSec).", 6},
            {"kafka_server_brokertopicmetrics_remotedeleteerrors_total", "Remote segment deletes that failed (RemoteDeleteErrorsPerSec).", 7},
            {"minikora_tier_download_bytes_total", "Chunk bytes read from S3 for this broker's fetches.", 8},
            {"minikora_tier_cache_hits_total", "Chunk lookups of this broker's remote reads served from memory.", 9},
            {"minikora_tier_cache_misses_total", "Chunk lookups of this broker's remote reads that had to read disk or S3.", 10},
            {"kafka_server_brokertopicmetrics_remotecopylagsegments", "Sealed segments its leaders have not copied yet (RemoteCopyLagSegments).", 11},
            {"kafka_server_brokertopicmetrics_remotecopylagbytes", "Bytes of those segments (RemoteCopyLagBytes).", 12},
        };
        mk_tier_broker_stats_t bs[MK_CLUSTER_MAX_BROKERS];
        for (int i = 0; i < n && i < MK_CLUSTER_MAX_BROKERS; i++)
            mk_tier_broker_stats(tier, mk_cluster_broker_at(a->c, i)->id, &bs[i]);
        for (size_t m = 0; m < MK_ARRAY_LEN(per_broker); m++) {
            mk_prom_help(o, per_broker[m].name, per_broker[m].which >= 11 ? "gauge" : "counter", per_broker[m].help);
            for (int i = 0; i < n && i < MK_CLUSTER_MAX_BROKERS; i++) {
                const mk_tier_broker_stats_t *x = &bs[i];
                double v[] = {(double)x->upload_bytes, (double)x->uploads_done, (double)x->uploads_failed,
                              (double)x->fetch_bytes, (double)x->fetch_requests, (double)x->fetch_errors,
                              (double)x->deletes_done, (double)x->deletes_failed, (double)x->download_bytes,
                              (double)x->cache_hits, (double)x->cache_misses, (double)x->uploads_pending,
                              (double)x->uploads_pending_bytes};
                snprintf(id, sizeof(id), "%d", mk_cluster_broker_at(a->c, i)->id);
                mk_prom_sample(o, per_broker[m].name, v[per_broker[m].which], "broker", id, NULL);
            }
        }
        mk_prom_help(o, "kafka_server_brokertopicmetrics_remotelogsizebytes", "gauge",
                     "Bytes of the topic's segments in S3 (RemoteLogSizeBytes).");
        size_t it = 0;
        mk_topic_t *t;
        while ((t = mk_cluster_topic_next(a->c, &it))) {
            tiers_t x;
            topic_tiers(tier, t, &x);
            mk_prom_sample(o, "kafka_server_brokertopicmetrics_remotelogsizebytes", (double)x.remote, "topic", t->name,
                           NULL);
        }
        mk_tier_stats_t st;
        mk_tier_stats(tier, &st);
        mk_prom_help(o, "kafka_server_brokertopicmetrics_remotelogmetadatacount", "gauge",
                     "Remote segments, by state (RemoteLogMetadataCount).");
        static const char *const states[] = {"COPY_STARTED", "COPY_FINISHED", "DELETE_STARTED"};
        for (int i = 0; i < 3; i++)
            mk_prom_sample(o, "kafka_server_brokertopicmetrics_remotelogmetadatacount", st.segments[i], "state",
                           states[i], NULL);
        mk_prom_help(o, "kafka_log_remote_remotestoragethreadpool_remotelogreadertaskqueuesize", "gauge",
                     "Chunk reads from S3 queued or running (RemoteLogReaderTaskQueueSize).");
        mk_prom_sample(o, "kafka_log_remote_remotestoragethreadpool_remotelogreadertaskqueuesize",
                       st.downloads_in_flight, NULL);
        mk_prom_help(o, "minikora_tier_cache_bytes", "gauge", "Bytes of chunks cached, by tier.");
        mk_prom_sample(o, "minikora_tier_cache_bytes", (double)st.cache_memory_bytes, "tier", "memory", NULL);
        mk_prom_sample(o, "minikora_tier_cache_bytes", (double)st.cache_disk_bytes, "tier", "disk", NULL);
        mk_prom_help(o, "minikora_tier_s3_requests_total", "counter", "S3 requests tiering made, by operation.");
        static const char *const ops[] = {"PutObject", "GetObject", "HeadObject", "DeleteObject"};
        for (int i = 0; i < 4; i++)
            mk_prom_sample(o, "minikora_tier_s3_requests_total", (double)st.requests[i], "op", ops[i], NULL);
        mk_prom_help(o, "minikora_tier_s3_errors_total", "counter", "S3 requests of tiering that failed.");
        mk_prom_sample(o, "minikora_tier_s3_errors_total", (double)st.errors, NULL);
        mk_prom_help(o, "minikora_tier_s3_up", "gauge", "1 while tiering's last S3 request succeeded.");
        mk_prom_sample(o, "minikora_tier_s3_up", st.s3_status == MK_TIER_S3_FAILING ? 0 : 1, NULL);
    }
    if (a->s3d) {
        mk_s3d_stats_t ss;
        mk_s3d_stats(a->s3d, &ss);
        mk_prom_help(o, "minikora_s3_objects", "gauge", "Objects stored by the bundled S3 server.");
        mk_prom_sample(o, "minikora_s3_objects", (double)ss.objects, NULL);
        mk_prom_help(o, "minikora_s3_bytes", "gauge", "Object bytes stored by the bundled S3 server.");
        mk_prom_sample(o, "minikora_s3_bytes", (double)ss.bytes, NULL);
        mk_prom_help(o, "minikora_s3_requests_total", "counter", "Requests the bundled S3 server answered, by operation.");
        for (int i = 0; i < MK_S3D_OP_COUNT; i++)
            if (ss.requests_by_op[i])
                mk_prom_sample(o, "minikora_s3_requests_total", (double)ss.requests_by_op[i], "op", mk_s3d_op_name(i),
                               NULL);
        mk_prom_help(o, "minikora_s3_errors_total", "counter", "Answers of the bundled S3 server with status >= 400.");
        mk_prom_sample(o, "minikora_s3_errors_total", (double)ss.errors, NULL);
    }
}

/* ============================================================== route table */

static const mk_admin_route_t routes[] = {
    {MK_HTTP_GET, "/", h_index, "this index"},
    {MK_HTTP_GET, "/v1", h_index, "this index"},
    {MK_HTTP_GET, "/healthz", h_healthz, "liveness: 200 while the event loop answers"},
    {MK_HTTP_GET, "/readyz", h_readyz, "readiness: 200 once a broker and the controller are up, else 503"},
    {MK_HTTP_GET, "/metrics", h_metrics, "Prometheus text format"},
    {MK_HTTP_GET, "/v1/cluster", h_cluster, "cluster id, controller, AZs, cells (brokers, tenants), brokers with counts"},
    {MK_HTTP_GET, "/v1/brokers", h_brokers, "brokers with state, port, leader and replica counts"},
    {MK_HTTP_GET, "/v1/brokers/{}", h_broker, "one broker"},
    {MK_HTTP_POST, "/v1/brokers/{}/stop", h_broker_stop, "controlled shutdown (leadership moved first)"},
    {MK_HTTP_POST, "/v1/brokers/{}/crash", h_broker_crash, "abrupt stop (leaders elected afterwards)"},
    {MK_HTTP_POST, "/v1/brokers/{}/start", h_broker_start, "start a stopped broker (logs recovered, catch up)"},
    {MK_HTTP_POST, "/v1/brokers/{}/restart", h_broker_restart, "controlled shutdown, then start"},
    {MK_HTTP_POST, "/v1/brokers", h_broker_add, "add a broker at runtime {az, cell}"},
    {MK_HTTP_POST, "/v1/brokers/{}/drain", h_broker_drain, "move every replica off the broker, online (state draining)"},
    {MK_HTTP_DELETE, "/v1/brokers/{}/drain", h_broker_drain_cancel, "stop draining (moved replicas stay)"},
    {MK_HTTP_DELETE, "/v1/brokers/{}", h_broker_remove, "retire a drained broker (409 with replicas or last of its AZ)"},
    {MK_HTTP_POST, "/v1/brokers/{}/remove", h_broker_remove, "the same as DELETE /v1/brokers/{id}"},
    {MK_HTTP_POST, "/v1/azs/{}/down", h_az_down, "crash every broker of an AZ"},
    {MK_HTTP_POST, "/v1/azs/{}/up", h_az_up, "start every stopped broker of an AZ"},
    {MK_HTTP_GET, "/v1/topics", h_topics, "topics with partition counts, health and size"},
    {MK_HTTP_POST, "/v1/topics", h_topic_create, "create a topic {name, partitions, replication_factor, configs}"},
    {MK_HTTP_GET, "/v1/topics/{}", h_topic, "one topic with its partitions, replicas, ISR and offsets"},
    {MK_HTTP_DELETE, "/v1/topics/{}", h_topic_delete, "delete a topic"},
    {MK_HTTP_GET, "/v1/topics/{}/records", h_topic_records,
     "a partition's records from an offset (?partition=P&offset=O&limit=N; -1 newest, -2 oldest), as Fetch reads them"},
    {MK_HTTP_GET, "/v1/groups", h_groups, "consumer groups with state and members"},
    {MK_HTTP_GET, "/v1/groups/{}", h_group, "one group with members, committed offsets and lag"},
    {MK_HTTP_POST, "/v1/reset", h_reset, "delete every topic, group and committed offset (tenants and keys stay)"},
    {MK_HTTP_GET, "/v1/cells", h_cells, "cells with their brokers, tenants and load; tenant moves in progress"},
    {MK_HTTP_POST, "/v1/cells", h_cell_add, "add a cell at runtime: one new broker per AZ"},
    {MK_HTTP_POST, "/v1/cells/{}/rebalance", h_cell_rebalance, "even replicas and leaders over the cell's brokers now"},
    {MK_HTTP_POST, "/v1/tenants/{}/move", h_tenant_move, "move a tenant (\"default\" too) to a cell {cell}, online"},
    {MK_HTTP_GET, "/v1/tenants", h_tenants, "tenants (the default one first) with cell, connections, partitions, storage, rates"},
    {MK_HTTP_POST, "/v1/tenants", h_tenant_create, "create a tenant {id}, placed in a cell"},
    {MK_HTTP_GET, "/v1/tenants/{}", h_tenant, "one tenant: as listed, plus topics, groups, keys, busiest clients"},
    {MK_HTTP_DELETE, "/v1/tenants/{}", h_tenant_delete, "delete a tenant with its topics, groups and keys"},
    {MK_HTTP_GET, "/v1/tenants/{}/quotas", h_tenant_quotas, "a tenant's (\"default\" too) quota limits, use and throttle time"},
    {MK_HTTP_PUT, "/v1/tenants/{}/quotas", h_tenant_quotas_put, "set (a number) or remove (null) tenant-wide quota limits, all or nothing"},
    {MK_HTTP_POST, "/v1/tenants/{}/keys", h_tenant_key_create, "create an API key and secret (SASL PLAIN/SCRAM)"},
    {MK_HTTP_DELETE, "/v1/tenants/{}/keys/{}", h_tenant_key_delete, "revoke a key and close its connections"},
    {MK_HTTP_GET, "/v1/advertised", h_advertised, "the host:port clients are told for each broker (Metadata)"},
    {MK_HTTP_PUT, "/v1/advertised", h_advertised_put,
     "map brokers to the host:port clients use {\"1\": \"host:port\", ...} or {\"1\": {\"plaintext\": ..., \"ssl\": ...}} (port mapping)"},
    {MK_HTTP_GET, "/v1/events", h_events, "recent events (?since=SEQ&limit=N&type=T)"},
    {MK_HTTP_GET, "/v1/latency", h_latency, "request latency p50/p95/p99/max per broker and API, last 60 s"},
    {MK_HTTP_GET, "/v1/rates", h_rates, "bytes and records in/out per second per broker, topic and client"},
    {MK_HTTP_GET, "/v1/health", h_health, "storage health manager: per broker state, ladder step, storage I/O, probes; thresholds"},
    {MK_HTTP_GET, "/v1/integrity", h_integrity, "scrubber and durability audit: verified, corrupt, repaired, lost data, incidents"},
    {MK_HTTP_POST, "/v1/integrity/scrub", h_integrity_scrub, "start a scrubber pass now (409 while one runs)"},
    {MK_HTTP_GET, "/v1/tier", h_tier, "tiered storage: S3 target and status, cache, uploads and deletes, per broker"},
    {MK_HTTP_GET, "/v1/storage", h_storage, "per tenant and topic: bytes in memory, on local disk and in S3, upload backlog"},
    {MK_HTTP_GET, "/v1/s3", h_s3, "the bundled S3 server: objects, bytes, requests by operation, errors, fault"},
    {MK_HTTP_POST, "/v1/s3/fault", h_s3_fault, "make the bundled S3 server fail {type: down|slow|error, delay_ms, error_pct, status}"},
    {MK_HTTP_DELETE, "/v1/s3/fault", h_s3_fault_clear, "clear the bundled S3 server's fault"},
    {MK_HTTP_POST, "/v1/faults", mk_admin_h_faults_post, "inject a fault {type, broker, az, delay_ms, ops, topic, partition, side, duration_ms}: 201 {id}"},
    {MK_HTTP_GET, "/v1/faults", mk_admin_h_faults_get, "active faults, injected totals, each broker's storage I/O gate"},
    {MK_HTTP_DELETE, "/v1/faults", mk_admin_h_faults_delete, "clear every active fault"},
    {MK_HTTP_DELETE, "/v1/faults/{}", mk_admin_h_fault_delete, "clear one fault (404: no such active fault)"},
    {MK_HTTP_POST, "/v1/chaos", mk_admin_h_chaos_post, "start a seeded schedule of random faults {seed, rate_per_min, types, duration_ms, fault_duration_ms, brokers}"},
    {MK_HTTP_GET, "/v1/chaos", mk_admin_h_chaos_get, "the chaos run: parameters and the faults injected so far"},
    {MK_HTTP_DELETE, "/v1/chaos", mk_admin_h_chaos_delete, "stop the chaos run and clear its faults"},
};

const mk_admin_route_t *mk_admin_routes(int *count)
{
    *count = (int)MK_ARRAY_LEN(routes);
    return routes;
}

const mk_admin_route_t *mk_admin_route_find(int method, const char *path, mk_admin_caps_t *caps, int *allow)
{
    *allow = 0;
    int want = method == MK_HTTP_HEAD ? MK_HTTP_GET : method;
    const mk_admin_route_t *found = NULL;
    mk_admin_caps_t tmp;
    for (size_t i = 0; i < MK_ARRAY_LEN(routes); i++) {
        if (!mk_admin_path_match(routes[i].pattern, path, &tmp))
            continue;
        *allow |= routes[i].method | (routes[i].method == MK_HTTP_GET ? MK_HTTP_HEAD : 0);
        if (!found && routes[i].method == want) {
            found = &routes[i];
            *caps = tmp;
        }
    }
    return found;
}
