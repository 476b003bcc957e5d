/*
 * cluster.c -- topology (cells, brokers, AZs), topics and partitions, and
 * their persistence.
 *
 * Topology: broker ids 1..N; broker i (0-based) is in AZ az-(i % azs + 1) and
 * cell i / azs, so each cell has one broker per AZ.  Each broker owns a log
 * directory <data>/broker-<id>/ holding one directory per partition it leads,
 * named <topic>-<partition> as Kafka names them.
 *
 * Placement: a new topic goes to the less loaded of two random cells (power
 * of two choices, by partition count); its partition leaders go round-robin
 * over the cell's running brokers from a random start.
 *
 * Validity: mk_cluster_topic_spec_check() is the one check of a new topic's
 * partitions, replication factor and configs.  CreateTopics and the admin
 * API call it to word their own errors; mk_cluster_topic_create() calls it
 * again, so no path can create a topic that check refuses.
 *
 * Persistence: topics, ids, assignments and overrides live in meta/ (SQLite).
 * Changes are applied in memory at once and written on a worker thread;
 * callers that must answer only once the change is durable pass a callback.
 *
 * Listeners: every broker has a PLAINTEXT listener and, unless TLS is off,
 * an SSL one (both run the same Kafka handler; the session asks net/ which
 * kind it came in on to pick the ports it advertises).  The TLS context is
 * made once at open from minikora.tls.{cert,key} or from the files net/
 * makes in <data>/tls/ (blocking, before the loop serves).
 *
 * Advertised addresses: mk_cluster_broker_endpoint() is the one place that
 * says which host:port clients are told for a broker.  By default it is the
 * advertise host (never a wildcard: 0.0.0.0 becomes this machine's name or
 * loopback) and the bound port; a mapping (--advertise-ports, PUT
 * /v1/advertised) replaces a broker's PLAINTEXT host and port, for clients
 * that reach minikora through published or forwarded ports.
 *
 * Data directory layout:
 *   <data>/meta.db              metadata store
 *   <data>/broker-<id>/<t>-<p>/ partition logs (see log/)
 *   <data>/tls/                 generated CA and server certificate (see net/tls.c)
 */
#define MK_PARTITION_FIELDS
#include "cluster/cluster.h"
#include "batch/batch.h"
#include "meta/meta.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

struct mk_cluster_s {
    uv_loop_t *loop;
    bool synced;                      /* closing: every broker's log directory was syncfs()ed */
    char *data_dir;
    char *host;
    char *advertise_host;
    const char *advertise_why;        /* static text: why the cluster chose advertise_host, or NULL */
    char cluster_id[32];
    mk_config_t *config;              /* borrowed */
    mk_net_config_t net_cfg;
    mk_net_handler_t handler;
    void *handler_ud;
    int nbrokers, ncells, nazs;
    int cells_added;                  /* cells added at runtime (persisted: cluster.cells.added) */
    int initial;                      /* brokers of minikora.brokers; those after came at runtime */
    mk_cluster_broker_t *brokers;     /* owned array of MK_CLUSTER_MAX_BROKERS: pointers stay valid */
    uint64_t rng;                     /* placement randomness (minikora.placement.seed), 0: getrandom */
    mk_cluster_cell_load_fn load_fn;  /* registered by the balancer, or NULL: partitions */
    void *load_arg;
    mk_map_t topics;                  /* name -> owned mk_topic_t* */
    mk_map_t topic_ids;               /* hex topic id -> the same topics (borrowed) */
    mk_meta_t *meta;
    mk_net_tls_t *tls;                /* owned; NULL without TLS */
    char *tls_ca_file;                /* owned; what clients trust */
    mk_cluster_segment_cb segment_cb;  /* registered by partition/, or NULL */
    void *segment_arg;
    mk_cluster_config_cb config_cb;    /* dynamic broker settings changed (broker/), or NULL */
    void *config_arg;
    bool tiering;                     /* tier/ runs (mk_cluster_set_tiering) */
    long clean_next;            /* compacted replica log offered a cleaning first (logs_tick) */
};

static int layout_persist(mk_cluster_t *c);
static int layout_load(mk_cluster_t *c, const char *s, int tls_port);
static void retired_load(mk_cluster_t *c);

/* Where dynamic broker settings live in meta's kv store. */
#define DYN_PREFIX "config/broker/"

/* ================================================================== helpers */

static void random_bytes(void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom((uint8_t *)p + got, n - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    for (; got < n; got++) /* getrandom cannot fail here in practice; still fill */
        ((uint8_t *)p)[got] = (uint8_t)rand();
}

static uint32_t random_u32(void)
{
    uint32_t v;
    random_bytes(&v, sizeof(v));
    return v;
}

/* Placement's random numbers: splitmix64 from minikora.placement.seed when
 * one is set, so tests can replay a placement; else the system's. */
uint32_t mk_cluster_random(mk_cluster_t *c)
{
    if (!c->rng)
        return random_u32();
    uint64_t z = (c->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* Remove a partition directory left behind (deleted topic, stopped leader). */
static void remove_dir(const char *dir)
{
    if (mk_rm_rf(dir) < 0)
        mk_warn("cannot remove %s: %s", dir, strerror(errno));
}

void mk_cluster_uuid_str(const uint8_t id[16], char out[MK_CLUSTER_UUID_STR_LEN])
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)id[i] << 16 | (i + 1 < 16 ? (uint32_t)id[i + 1] << 8 : 0) |
                     (i + 2 < 16 ? id[i + 2] : 0);
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        if (i + 1 < 16)
            out[o++] = tbl[(v >> 6) & 63];
        if (i + 2 < 16)
            out[o++] = tbl[v & 63];
    }
    out[o] = 0;
}

/* ============================================================ topic configs */

const char *mk_cluster_topic_config(const mk_cluster_t *c, const mk_topic_t *t, const char *name, int *source)
{
    const char *v = t ? mk_map_get(&t->overrides, name) : NULL;
    if (v) {
        if (source)
            *source = MK_CFG_SRC_DYNAMIC_TOPIC;
        return v;
    }
    const mk_cfg_def_t *d = mk_cluster_cfg_topic_def(name);
    if (!d)
        return NULL;
    if (!d->broker_name) {
        if (source)
            *source = MK_CFG_SRC_DEFAULT;
        return d->dflt;
    }
    /* The broker synonym: its cluster-wide dynamic default, static value or
     * default (a topic's partitions span brokers, so a per-broker value of
     * a topic default is not consulted). */
    return mk_cluster_config_get_for(c->config, -1, d->broker_name, source);
}

static int64_t topic_i64(const mk_cluster_t *c, const mk_topic_t *t, const char *name)
{
    const char *v = mk_cluster_topic_config(c, t, name, NULL);
    return v ? strtoll(v, NULL, 10) : 0;
}

/* Log recovery uses the one integrity validator (header, CRC, record
 * framing), in its compacted mode: a compacted log holds batches with fewer
 * records than offsets (and replicas copy them from their leader). */
static int recovery_validate(const uint8_t *p, size_t n, void *arg)
{
    (void)arg;
    return mk_batch_validate_ex(p, n, MK_BATCH_VALIDATE_COMPACTED, 0, NULL, NULL, 0);
}

/* Parse a topic's settings into t->cfg (at create and load; again whenever
 * they change, through topic_reconfig). */
static void topic_config_parse(mk_cluster_t *c, mk_topic_t *t)
{
    mk_log_config_t *lc = &t->cfg.log;
    mk_log_config_default(lc);
    lc->segment_bytes = topic_i64(c, t, "segment.bytes");
    lc->segment_ms = topic_i64(c, t, "segment.ms");
    lc->retention_ms = topic_i64(c, t, "retention.ms");
    lc->retention_bytes = topic_i64(c, t, "retention.bytes");
    lc->index_interval_bytes = (int32_t)topic_i64(c, t, "index.interval.bytes");
    lc->segment_index_bytes = (int32_t)topic_i64(c, t, "segment.index.bytes");
    lc->flush_messages = topic_i64(c, t, "flush.messages");
    lc->flush_ms = topic_i64(c, t, "flush.ms");
    lc->loop = c->loop;
    lc->validate = recovery_validate;
    t->cfg.max_message_bytes = topic_i64(c, t, "max.message.bytes");
    t->cfg.min_insync_replicas = (int32_t)topic_i64(c, t, "min.insync.replicas");
    const char *tt = mk_cluster_topic_config(c, t, "message.timestamp.type", NULL);
    t->cfg.log_append_time = tt && strcmp(tt, "LogAppendTime") == 0;
    /* cleanup.policy: a topic without "delete" keeps its data whatever its
     * retention settings say, as in Kafka (compaction is another module). */
    const char *cp = mk_cluster_topic_config(c, t, "cleanup.policy", NULL);
    t->cfg.cleanup_delete = !cp || strstr(cp, "delete") != NULL;
    t->cfg.cleanup_compact = cp && strstr(cp, "compact") != NULL;
    /* compaction: the log's cleaner (log/clean.c) */
    lc->compact = t->cfg.cleanup_compact;
    const char *ratio = mk_cluster_topic_config(c, t, "min.cleanable.dirty.ratio", NULL);
    lc->min_cleanable_ratio = ratio ? strtod(ratio, NULL) : 0.5;
    lc->min_compaction_lag_ms = topic_i64(c, t, "min.compaction.lag.ms");
    lc->max_compaction_lag_ms = topic_i64(c, t, "max.compaction.lag.ms");
    lc->delete_retention_ms = topic_i64(c, t, "delete.retention.ms");
    if (!t->cfg.cleanup_delete) {
        lc->retention_ms = -1;
        lc->retention_bytes = -1;
    }
    const char *ct = mk_cluster_topic_config(c, t, "compression.type", NULL);
    t->cfg.compression_zstd = ct && strcmp(ct, "zstd") == 0;
    const char *ul = mk_cluster_topic_config(c, t, "unclean.leader.election.enable", NULL);
    t->cfg.unclean_leader_election = ul && strcmp(ul, "true") == 0;
    /* Tiered storage (KIP-405): local retention never exceeds the total. */
    const char *rs = mk_cluster_topic_config(c, t, "remote.storage.enable", NULL);
    t->cfg.remote_storage = rs && strcmp(rs, "true") == 0 && !t->cfg.cleanup_compact &&
                            mk_cluster_config_get_bool(c->config, "remote.log.storage.system.enable");
    t->cfg.tiered = t->cfg.remote_storage && c->tiering;
    t->cfg.retention_ms = lc->retention_ms;
    t->cfg.retention_bytes = lc->retention_bytes;
    int64_t lms = topic_i64(c, t, "local.retention.ms"), lbytes = topic_i64(c, t, "local.retention.bytes");
    if (lms == -2 || (lc->retention_ms >= 0 && (lms < 0 || lms > lc->retention_ms)))
        lms = lc->retention_ms;
    if (lbytes == -2 || (lc->retention_bytes >= 0 && (lbytes < 0 || lbytes > lc->retention_bytes)))
        lbytes = lc->retention_bytes;
    t->cfg.local_retention_ms = lms;
    t->cfg.local_retention_bytes = lbytes;
    if (t->cfg.tiered) {
        lc->retention_ms = -1;
        lc->retention_bytes = -1;
        int64_t cap = mk_cluster_config_get_i64(c->config, "minikora.tier.segment.max.bytes");
        if (cap >= 14 && lc->segment_bytes > cap)
            lc->segment_bytes = cap;
    }
}

/* Settings changed at runtime: parse them again and hand the log settings
 * to every open replica log (they apply from the next append, roll or
 * retention pass). */
static void topic_reconfig(mk_cluster_t *c, mk_topic_t *t)
{
    topic_config_parse(c, t);
    for (int32_t i = 0; i < t->partition_count; i++)
        for (int32_t k = 0; k < t->partitions[i].replica_count; k++)
            if (t->partitions[i].replicas[k].log &&
                mk_log_set_config(t->partitions[i].replicas[k].log, &t->cfg.log) < 0)
                mk_warn("topic %s: log settings out of range, kept the old ones", t->name);
}

void mk_cluster_set_tiering(mk_cluster_t *c, bool on)
{
    c->tiering = on;
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(c, &it)))
        topic_reconfig(c, t);
}

/* ================================================================ partitions */

static void replica_dir(const mk_cluster_t *c, const mk_partition_t *p, int32_t broker, char *buf, size_t n)
{
    const mk_cluster_broker_t *b = &c->brokers[broker - 1];
    snprintf(buf, n, "%s/%s-%d", b->log_dir, p->topic->name, p->index);
}

/* A replica log's segment event goes to the registered receiver. */
static void replica_segment_cb(const mk_log_segment_event_t *ev, void *arg)
{
    mk_replica_t *r = arg;
    mk_cluster_t *c = r->partition->topic->cluster;
    if (c->segment_cb)
        c->segment_cb(c->segment_arg, r->partition, r->broker, ev);
}

void mk_cluster_set_segment_cb(mk_cluster_t *c, mk_cluster_segment_cb cb, void *arg)
{
    c->segment_cb = cb;
    c->segment_arg = arg;
}

static int replica_open(mk_cluster_t *c, mk_partition_t *p, mk_replica_t *r)
{
    if (r->log)
        return 0;
    char dir[4096];
    replica_dir(c, p, r->broker, dir, sizeof(dir));
    /* The log's storage operations pass its broker's I/O gate (log.h). */
    mk_log_config_t lc = p->topic->cfg.log;
    lc.io_domain = r->broker;
    int rc = mk_log_open(dir, &lc, &r->log);
    if (rc < 0)
        mk_error("cannot open log %s: %s", dir, mk_strerror(rc));
    else
        mk_log_set_segment_cb(r->log, replica_segment_cb, r);
    if (p->leader == r->broker)
        p->log = r->log;
    return rc;
}

/* With a loop the fsyncs run on its threadpool (a broker stop must not
 * block the loop); a reopen need not wait for them (mk_log_close_async). */
static void replica_close(mk_partition_t *p, mk_replica_t *r, uv_loop_t *loop)
{
    if (!r->log)
        return;
    if (p->log == r->log)
        p->log = NULL;
    if (!loop && p->topic->cluster->synced)
        mk_log_close_synced(r->log);
    else if (!loop || mk_log_close_async(r->log, loop, NULL, NULL) < 0)
        mk_log_close(r->log);
    r->log = NULL;
}

mk_replica_t *mk_cluster_partition_replica(mk_partition_t *p, int32_t broker)
{
    for (int32_t i = 0; p && i < p->replica_count; i++)
        if (p->replicas[i].broker == broker)
            return &p->replicas[i];
    return NULL;
}

int mk_cluster_cell_size(const mk_cluster_t *c) { return c->nbrokers < c->nazs ? c->nbrokers : c->nazs; }

const char *mk_cluster_broker_az(mk_cluster_t *c, int32_t id)
{
    mk_cluster_broker_t *b = mk_cluster_broker_find(c, id);
    return b ? b->az : "";
}

mk_partition_t *mk_cluster_topic_partition(const mk_topic_t *t, int32_t index)
{
    if (!t || index < 0 || index >= t->partition_count)
        return NULL;
    return &t->partitions[index];
}

/* ==================================================================== topics */

static void topic_free(mk_topic_t *t)
{
    if (!t)
        return;
    if (t->partitions)
        for (int32_t i = 0; i < t->partition_count; i++) {
            mk_partition_t *p = &t->partitions[i];
            for (int32_t r = 0; p->replicas && r < p->replica_count; r++)
                replica_close(p, &p->replicas[r], NULL);
            mk_free(p->replicas);
        }
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&t->overrides, &it, &k, &v))
        mk_free(v);
    mk_map_free(&t->overrides);
    mk_free(t->partitions);
    mk_free(t->name);
    mk_free(t);
}

/* Give every partition of t rf replica slots (broker ids filled by the caller). */
static int topic_alloc_replicas(mk_topic_t *t, int32_t rf)
{
    for (int32_t i = 0; i < t->partition_count; i++) {
        t->partitions[i].replicas = mk_calloc((size_t)rf, sizeof(mk_replica_t));
        if (!t->partitions[i].replicas)
            return MK_ERR_NOMEM;
        t->partitions[i].replica_count = rf;
        for (int32_t k = 0; k < rf; k++)
            t->partitions[i].replicas[k].partition = &t->partitions[i];
    }
    return 0;
}

static mk_topic_t *topic_new(mk_cluster_t *c, const char *name, int32_t partitions)
{
    mk_topic_t *t = mk_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->cluster = c;
    mk_map_init(&t->overrides);
    t->name = mk_strdup(name);
    t->partitions = mk_calloc((size_t)partitions, sizeof(mk_partition_t));
    if (!t->name || !t->partitions) {
        topic_free(t);
        return NULL;
    }
    t->partition_count = partitions;
    for (int32_t i = 0; i < partitions; i++) {
        t->partitions[i].topic = t;
        t->partitions[i].index = i;
        t->partitions[i].leader = -1;
    }
    return t;
}

mk_topic_t *mk_cluster_topic_find(mk_cluster_t *c, const char *name) { return mk_map_get(&c->topics, name); }

bool mk_cluster_topic_internal(const char *name)
{
    return strncmp(name, MK_CLUSTER_INTERNAL_TENANT "~", sizeof(MK_CLUSTER_INTERNAL_TENANT)) == 0;
}

static void id_key(const uint8_t id[16], char out[33])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[id[i] >> 4];
        out[2 * i + 1] = hx[id[i] & 15];
    }
    out[32] = 0;
}

/* Index a topic by name and by id; 0 or MK_ERR_NOMEM (then in neither). */
static int topics_add(mk_cluster_t *c, mk_topic_t *t)
{
    char k[33];
    id_key(t->id, k);
    if (mk_map_put(&c->topics, t->name, t) < 0)
        return MK_ERR_NOMEM;
    if (mk_map_put(&c->topic_ids, k, t) < 0) {
        mk_map_del(&c->topics, t->name);
        return MK_ERR_NOMEM;
    }
    return 0;
}

static void topics_remove(mk_cluster_t *c, mk_topic_t *t)
{
    char k[33];
    id_key(t->id, k);
    mk_map_del(&c->topics, t->name);
    mk_map_del(&c->topic_ids, k);
}

mk_topic_t *mk_cluster_topic_find_id(mk_cluster_t *c, const uint8_t id[16])
{
    char k[33];
    id_key(id, k);
    return mk_map_get(&c->topic_ids, k);
}

mk_topic_t *mk_cluster_topic_next(mk_cluster_t *c, size_t *iter)
{
    const char *k;
    void *v;
    return mk_map_next(&c->topics, iter, &k, &v) ? v : NULL;
}

int mk_cluster_topic_count(const mk_cluster_t *c) { return (int)c->topics.count; }

bool mk_cluster_topic_name_valid(const char *name, char *why, size_t why_len)
{
    size_t n = strlen(name);
    if (n == 0 || n > 249) {
        snprintf(why, why_len, "topic name must be 1 to 249 characters long");
        return false;
    }
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        snprintf(why, why_len, "topic name cannot be '.' or '..'");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '_' || ch == '-')) {
            snprintf(why, why_len, "topic name '%s' has a character outside [a-zA-Z0-9._-]", name);
            return false;
        }
    }
    return true;
}

int64_t mk_cluster_cell_replicas(mk_cluster_t *c, int32_t cell)
{
    int64_t n = 0;
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(c, &it)))
        for (int32_t p = 0; p < t->partition_count; p++)
            for (int32_t k = 0; k < t->partitions[p].replica_count; k++) {
                mk_cluster_broker_t *b = mk_cluster_broker_find(c, t->partitions[p].replicas[k].broker);
                n += b && b->cell == cell;
            }
    return n;
}

int mk_cluster_cell_count(const mk_cluster_t *c) { return c->ncells; }

void mk_cluster_set_cell_load_fn(mk_cluster_t *c, mk_cluster_cell_load_fn fn, void *arg)
{
    c->load_fn = fn;
    c->load_arg = arg;
}

double mk_cluster_cell_load(mk_cluster_t *c, int32_t cell)
{
    return c->load_fn ? c->load_fn(c->load_arg, cell) : (double)mk_cluster_cell_replicas(c, cell);
}

int32_t mk_cluster_cell_pick(mk_cluster_t *c)
{
    if (c->ncells <= 1)
        return 0;
    int a = (int)(mk_cluster_random(c) % (uint32_t)c->ncells);
    int b = (int)(mk_cluster_random(c) % (uint32_t)(c->ncells - 1));
    if (b >= a)
        b++;
    double la = mk_cluster_cell_load(c, a), lb = mk_cluster_cell_load(c, b);
    return la < lb || (la == lb && a < b) ? a : b;
}

/* Replicas: rf brokers of the topic's cell, so each in a distinct AZ, the
 * list rotated per partition from a random start so leaders (the first
 * replica) spread over the cell's brokers. */
static void place_replicas(mk_cluster_t *c, mk_topic_t *t)
{
    int32_t cand[MK_CLUSTER_MAX_BROKERS];
    int n = 0;
    for (int i = 0; i < c->nbrokers; i++)
        if (c->brokers[i].cell == t->cell && !c->brokers[i].retired)
            cand[n++] = c->brokers[i].id;
    uint32_t start = mk_cluster_random(c) % (uint32_t)n;
    for (int32_t p = 0; p < t->partition_count; p++)
        for (int32_t k = 0; k < t->partitions[p].replica_count; k++)
            t->partitions[p].replicas[k].broker = cand[(start + (uint32_t)p + (uint32_t)k) % (uint32_t)n];
}

/* The first running replica leads a new partition. */
static void pick_initial_leader(mk_cluster_t *c, mk_partition_t *p)
{
    p->leader = -1;
    for (int32_t k = 0; k < p->replica_count && p->leader < 0; k++)
        if (c->brokers[p->replicas[k].broker - 1].running)
            p->leader = p->replicas[k].broker;
}

/* The meta/ image of a topic; arrays in arena a. */
static int topic_to_meta(const mk_topic_t *t, mk_arena_t *a, mk_meta_topic_t *m)
{
    memset(m, 0, sizeof(*m));
    m->name = t->name;
    memcpy(m->topic_id, t->id, 16);
    m->partition_count = t->partition_count;
    m->replication_factor = t->replication_factor;
    m->created_ms = t->created_ms;
    m->cell_id = t->cell;
    m->partitions = mk_arena_alloc(a, sizeof(mk_meta_partition_t) * (size_t)t->partition_count);
    if (!m->partitions)
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < t->partition_count; i++) {
        mk_meta_partition_t *mp = &m->partitions[i];
        mp->partition = i;
        mp->leader = t->partitions[i].leader;
        mp->leader_epoch = t->partitions[i].leader_epoch;
        mp->replica_count = t->partitions[i].replica_count;
        mp->replicas = mk_arena_alloc(a, sizeof(int32_t) * (size_t)(mp->replica_count + 1));
        if (!mp->replicas)
            return MK_ERR_NOMEM;
        for (int32_t r = 0; r < mp->replica_count; r++)
            mp->replicas[r] = t->partitions[i].replicas[r].broker;
    }
    m->configs = mk_arena_alloc(a, sizeof(mk_meta_config_t) * (t->overrides.count + 1));
    if (!m->configs)
        return MK_ERR_NOMEM;
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&t->overrides, &it, &k, &v)) {
        m->configs[m->config_count].key = k;
        m->configs[m->config_count].value = v;
        m->config_count++;
    }
    return 0;
}

static void persist_log_done(int status, void *arg)
{
    (void)arg;
    if (status < 0)
        mk_error("metadata write failed: %s", mk_strerror(status));
}

typedef struct persist_s {
    mk_cluster_done_cb cb;
    void *arg;
} persist_t;

static void persist_done(int status, void *arg)
{
    persist_t *p = arg;
    if (status < 0)
        mk_error("metadata write failed: %s", mk_strerror(status));
    if (p->cb)
        p->cb(status, p->arg);
    mk_free(p);
}

static int topic_persist(mk_cluster_t *c, mk_topic_t *t, mk_cluster_done_cb cb, void *arg)
{
    mk_arena_t a;
    mk_arena_init(&a);
    mk_meta_topic_t mt;
    int rc = topic_to_meta(t, &a, &mt);
    persist_t *p = rc == 0 ? mk_malloc(sizeof(*p)) : NULL;
    if (rc == 0 && !p)
        rc = MK_ERR_NOMEM;
    if (rc == 0) {
        p->cb = cb;
        p->arg = arg;
        mk_meta_op_t op = {.kind = MK_META_TOPIC_PUT, .t = &mt};
        rc = mk_meta_op_submit(c->meta, c->loop, &op, persist_done, p);
        if (rc < 0)
            mk_free(p);
    }
    mk_arena_free(&a);
    return rc;
}

/* Kafka refuses tiered storage for compacted topics: cleanup.policy with
 * compact and remote.storage.enable=true given together (minikora's
 * default of remote.storage.enable, true, simply does not apply to a
 * compacted topic: see topic_config_parse). */
static bool compact_tiered_conflict(const char *policy, const char *remote)
{
    return policy && remote && strstr(policy, "compact") && strcmp(remote, "true") == 0;
}

int mk_cluster_topic_spec_check(const mk_cluster_t *c, const mk_topic_spec_t *spec, int32_t *bad)
{
    if (spec->partitions < 1 || spec->partitions > MK_CLUSTER_MAX_PARTITIONS)
        return MK_CLUSTER_SPEC_PARTITIONS;
    if (spec->replication_factor < 1 || spec->replication_factor > mk_cluster_cell_size(c))
        return MK_CLUSTER_SPEC_REPLICATION;
    for (int32_t i = 0; i < spec->config_count; i++) {
        const mk_cfg_def_t *d = mk_cluster_cfg_topic_def(spec->config_keys[i]);
        int problem = !d ? MK_CLUSTER_SPEC_CONFIG_NAME
                      : !spec->config_values[i] || !mk_cluster_config_value_valid(d, spec->config_values[i])
                          ? MK_CLUSTER_SPEC_CONFIG_VALUE
                          : MK_CLUSTER_SPEC_OK;
        if (problem) {
            if (bad)
                *bad = i;
            return problem;
        }
    }
    /* KIP-405: a local retention given with the topic may not exceed the
     * total given with it (one taken from a default is capped instead). */
    static const char *const pairs[][2] = {{"local.retention.ms", "retention.ms"},
                                           {"local.retention.bytes", "retention.bytes"}};
    for (size_t k = 0; k < MK_ARRAY_LEN(pairs); k++) {
        int32_t li = -1, ti = -1;
        for (int32_t i = 0; i < spec->config_count; i++) {
            if (strcmp(spec->config_keys[i], pairs[k][0]) == 0)
                li = i;
            else if (strcmp(spec->config_keys[i], pairs[k][1]) == 0)
                ti = i;
        }
        if (li < 0 || ti < 0)
            continue;
        long long lv = strtoll(spec->config_values[li], NULL, 10), tv = strtoll(spec->config_values[ti], NULL, 10);
        if (tv >= 0 && (lv == -1 || lv > tv)) {
            if (bad)
                *bad = li;
            return MK_CLUSTER_SPEC_CONFIG_VALUE;
        }
    }
    int32_t pi = -1, ri = -1;
    for (int32_t i = 0; i < spec->config_count; i++) {
        if (strcmp(spec->config_keys[i], "cleanup.policy") == 0)
            pi = i;
        else if (strcmp(spec->config_keys[i], "remote.storage.enable") == 0)
            ri = i;
    }
    if (pi >= 0 && ri >= 0 && compact_tiered_conflict(spec->config_values[pi], spec->config_values[ri])) {
        if (bad)
            *bad = ri;
        return MK_CLUSTER_SPEC_CONFIG_VALUE;
    }
    return MK_CLUSTER_SPEC_OK;
}

int mk_cluster_topic_create(mk_cluster_t *c, const mk_topic_spec_t *spec, mk_cluster_done_cb cb, void *arg,
                            mk_topic_t **out)
{
    if (mk_map_get(&c->topics, spec->name))
        return MK_ERR_EXISTS;
    if (mk_cluster_topic_spec_check(c, spec, NULL) != MK_CLUSTER_SPEC_OK)
        return MK_ERR_INVALID;
    mk_topic_t *t = topic_new(c, spec->name, spec->partitions);
    if (!t)
        return MK_ERR_NOMEM;
    do {
        random_bytes(t->id, 16);
    } while (mk_cluster_topic_find_id(c, t->id));
    t->created_ms = mk_now_ms();
    for (int32_t i = 0; i < spec->config_count; i++) {
        char *v = mk_strdup(spec->config_values[i]);
        char *old = mk_map_get(&t->overrides, spec->config_keys[i]);
        if (!v || mk_map_put(&t->overrides, spec->config_keys[i], v) < 0) {
            mk_free(v);
            topic_free(t);
            return MK_ERR_NOMEM;
        }
        mk_free(old);
    }
    topic_config_parse(c, t);
    t->cell = spec->pin_cell && spec->cell >= 0 && spec->cell < c->ncells ? spec->cell : mk_cluster_cell_pick(c);
    int16_t rf = spec->replication_factor;
    t->replication_factor = rf;
    if (topic_alloc_replicas(t, rf) < 0) {
        topic_free(t);
        return MK_ERR_NOMEM;
    }
    if (spec->assignment) {
        for (int32_t p = 0; p < t->partition_count; p++)
            for (int32_t k = 0; k < rf; k++)
                t->partitions[p].replicas[k].broker = spec->assignment[p * rf + k];
        t->cell = c->brokers[spec->assignment[0] - 1].cell;
    } else {
        place_replicas(c, t);
    }
    int rc = 0;
    for (int32_t p = 0; p < t->partition_count && rc == 0; p++) {
        mk_partition_t *part = &t->partitions[p];
        pick_initial_leader(c, part);
        for (int32_t k = 0; k < part->replica_count && rc == 0; k++) {
            mk_replica_t *r = &part->replicas[k];
            if (!c->brokers[r->broker - 1].running)
                continue;
            /* A directory left by an earlier topic of the same name goes first. */
            char dir[4096];
            replica_dir(c, part, r->broker, dir, sizeof(dir));
            remove_dir(dir);
            rc = replica_open(c, part, r);
            r->in_isr = rc == 0;
        }
    }
    if (rc == 0)
        rc = topics_add(c, t);
    if (rc == 0) {
        rc = topic_persist(c, t, cb, arg);
        if (rc < 0)
            topics_remove(c, t);
    }
    if (rc < 0) {
        for (int32_t p = 0; p < t->partition_count; p++)
            for (int32_t k = 0; k < t->partitions[p].replica_count; k++)
                if (t->partitions[p].replicas[k].log) {
                    if (t->partitions[p].log == t->partitions[p].replicas[k].log)
                        t->partitions[p].log = NULL;
                    mk_log_destroy(t->partitions[p].replicas[k].log);
                    t->partitions[p].replicas[k].log = NULL;
                }
        topic_free(t);
        return rc == MK_ERR_NOMEM || rc == MK_ERR_NOFILES ? rc : MK_ERR_IO;
    }
    mk_info("created topic %s: %d partitions in cell %d", t->name, t->partition_count, t->cell);
    if (out)
        *out = t;
    return 0;
}

int mk_cluster_topic_delete(mk_cluster_t *c, mk_topic_t *t, mk_cluster_done_cb cb, void *arg)
{
    persist_t *p = mk_malloc(sizeof(*p));
    if (!p)
        return MK_ERR_NOMEM;
    p->cb = cb;
    p->arg = arg;
    mk_meta_op_t op = {.kind = MK_META_TOPIC_DELETE, .topic = t->name};
    int rc = mk_meta_op_submit(c->meta, c->loop, &op, persist_done, p);
    if (rc < 0) {
        mk_free(p);
        return rc;
    }
    topics_remove(c, t);
    for (int32_t i = 0; i < t->partition_count; i++) {
        mk_partition_t *part = &t->partitions[i];
        for (int32_t k = 0; k < part->replica_count; k++) {
            mk_replica_t *r = &part->replicas[k];
            if (r->log) {
                if (part->log == r->log)
                    part->log = NULL;
                mk_log_destroy(r->log);
                r->log = NULL;
            } else {
                /* Broker stopped: remove the directory it would reopen. */
                char dir[4096];
                replica_dir(c, part, r->broker, dir, sizeof(dir));
                remove_dir(dir);
            }
        }
    }
    mk_info("deleted topic %s", t->name);
    topic_free(t);
    return 0;
}

static void partition_persist(mk_cluster_t *c, mk_partition_t *p)
{
    int32_t reps[64];
    mk_meta_partition_t mp = {p->index, p->leader, p->leader_epoch, MK_MIN(p->replica_count, 64), reps};
    for (int32_t k = 0; k < mp.replica_count; k++)
        reps[k] = p->replicas[k].broker;
    mk_meta_op_t op = {.kind = MK_META_PARTITION_PUT, .topic = p->topic->name, .p = &mp};
    mk_meta_op_submit(c->meta, c->loop, &op, persist_log_done, NULL);
}

void mk_cluster_partition_set_leader(mk_cluster_t *c, mk_partition_t *p, int32_t broker, int32_t epoch)
{
    mk_replica_t *r = broker > 0 ? mk_cluster_partition_replica(p, broker) : NULL;
    p->leader = r ? broker : -1;
    p->leader_epoch = epoch;
    p->log = r ? r->log : NULL;
    if (p->log)
        mk_log_epoch_begin(p->log, epoch);
    mk_info("partition %s-%d: leader %d, epoch %d", p->topic->name, p->index, p->leader, epoch);
    partition_persist(c, p);
}

/* Offers a cleaning to the compacted replica logs numbered from..to-1 (in
 * topic, partition, replica order) until one starts; returns its number, or
 * -1 when none did (none due, or a cleaning is already running). */
static long clean_offer(mk_cluster_t *c, long from, long to, int64_t now_ms)
{
    size_t it = 0;
    long n = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(c, &it)) && n < to) {
        if (!t->cfg.cleanup_compact || t->cfg.tiered)
            continue;
        for (int32_t p = 0; p < t->partition_count && n < to; p++)
            for (int32_t k = 0; k < t->partitions[p].replica_count && n < to; k++) {
                mk_log_t *log = t->partitions[p].replicas[k].log;
                if (!log)
                    continue;
                /* Compaction stops at the high watermark: only committed
                 * offsets are cleaned, on every replica alike. */
                if (n >= from && mk_log_clean_maybe(log, t->partitions[p].hw, now_ms) == 1)
                    return n;
                n++;
            }
    }
    return -1;
}

void mk_cluster_logs_tick(mk_cluster_t *c, int64_t now_ms, bool retain)
{
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(c, &it)))
        for (int32_t p = 0; p < t->partition_count; p++)
            for (int32_t k = 0; k < t->partitions[p].replica_count; k++) {
                mk_log_t *log = t->partitions[p].replicas[k].log;
                if (!log)
                    continue;
                mk_log_tick(log, now_ms);
                if (retain)
                    mk_log_retain(log, now_ms);
            }
    /* One cleaning at a time in the process: the offer goes round the
     * compacted replica logs, starting after the one that cleaned last, so
     * a log that is always dirty again (its leader takes writes) cannot
     * keep the others' replicas from their turn. */
    long got = clean_offer(c, c->clean_next, LONG_MAX, now_ms);
    if (got < 0 && c->clean_next > 0)
        got = clean_offer(c, 0, c->clean_next, now_ms);
    if (got >= 0)
        c->clean_next = got + 1;
}

void mk_cluster_partition_set_offline(mk_cluster_t *c, mk_partition_t *p)
{
    (void)c;
    p->leader = -1;
    p->log = NULL;
}

/* ================================================================== startup */

static int load_topic_cb(const mk_meta_topic_t *mt, void *arg)
{
    mk_cluster_t *c = arg;
    mk_topic_t *t = topic_new(c, mt->name, mt->partition_count);
    if (!t)
        return MK_ERR_NOMEM;
    memcpy(t->id, mt->topic_id, 16);
    t->replication_factor = mt->replication_factor;
    t->created_ms = mt->created_ms;
    t->cell = mt->cell_id >= 0 && mt->cell_id < c->ncells ? mt->cell_id : 0;
    for (int32_t i = 0; i < mt->config_count; i++) {
        char *v = mk_strdup(mt->configs[i].value);
        if (!v || mk_map_put(&t->overrides, mt->configs[i].key, v) < 0) {
            mk_free(v);
            topic_free(t);
            return MK_ERR_NOMEM;
        }
    }
    int32_t rf = 1;
    for (int32_t i = 0; mt->partitions && i < t->partition_count; i++)
        rf = MK_MAX(rf, mt->partitions[i].replica_count);
    if (topic_alloc_replicas(t, rf) < 0) {
        topic_free(t);
        return MK_ERR_NOMEM;
    }
    t->replication_factor = (int16_t)rf;
    for (int32_t i = 0; i < t->partition_count; i++) {
        mk_partition_t *p = &t->partitions[i];
        const mk_meta_partition_t *mp = mt->partitions ? &mt->partitions[i] : NULL;
        int32_t n = mp && mp->replica_count > 0 ? mp->replica_count : 0;
        p->replica_count = n > 0 ? n : 1;
        for (int32_t k = 0; k < p->replica_count; k++) {
            int32_t b = n > 0 ? mp->replicas[k] : (mp ? mp->leader : -1);
            if (b < 1 || b > c->nbrokers) {
                mk_warn("topic %s partition %d: stored replica %d is not a broker of this cluster; using %d",
                        t->name, i, b, c->brokers[(i + k) % c->nbrokers].id);
                b = c->brokers[(i + k) % c->nbrokers].id;
            }
            p->replicas[k].broker = b;
        }
        p->leader = mp && mk_cluster_partition_replica(p, mp->leader) ? mp->leader : p->replicas[0].broker;
        p->leader_epoch = mp && mp->leader_epoch >= 0 ? mp->leader_epoch : 0;
    }
    topic_config_parse(c, t);
    if (topics_add(c, t) < 0) {
        topic_free(t);
        return MK_ERR_NOMEM;
    }
    return 0;
}

/* A stored dynamic broker setting: config/broker/<id|default>/<name>.  One
 * that no longer parses (a setting renamed or made stricter) is skipped
 * with a warning. */
static int load_dynamic_cb(const char *key, const char *value, void *arg)
{
    mk_cluster_t *c = arg;
    const char *rest = key + strlen(DYN_PREFIX), *slash = strchr(rest, '/');
    if (!slash)
        return 0;
    int32_t broker = -1;
    if (strncmp(rest, "default/", 8) != 0)
        broker = (int32_t)strtol(rest, NULL, 10);
    const mk_cfg_def_t *d = mk_cluster_cfg_def_find(slash + 1);
    if (!d || d->read_only || !mk_cluster_config_value_valid(d, value) || broker == 0) {
        mk_warn("stored dynamic setting %s=%s is not valid any more; ignored", key, value);
        return 0;
    }
    return mk_cluster_config_set_dynamic(c->config, broker, d->name, value);
}

/* Broker slot i (id i + 1) in AZ az-(z + 1) and cell, its log directory made. */
static int broker_init(mk_cluster_t *c, int i, int z, int cell, int port, int tls_port)
{
    mk_cluster_broker_t *b = &c->brokers[i];
    char path[4096];
    b->id = i + 1;
    b->cluster = c;
    snprintf(b->az, sizeof(b->az), "az-%d", z + 1);
    b->cell = cell;
    b->port = port;
    b->tls_port = tls_port;
    snprintf(path, sizeof(path), "%s/broker-%d", c->data_dir, b->id);
    b->log_dir = mk_strdup(path);
    if (!b->log_dir)
        return MK_ERR_NOMEM;
    int rc = mk_mkdir_p(b->log_dir);
    if (rc < 0)
        return rc;
    b->running = true;
    return 0;
}

static int broker_listen(mk_cluster_t *c, mk_cluster_broker_t *b)
{
    int rc = mk_net_listener_open(c->loop, c->host, b->port, &c->net_cfg, &c->handler, b, &b->listener);
    if (rc < 0) {
        mk_error("broker %d: cannot listen on %s:%d: %s", b->id, c->host, b->port, uv_strerror(rc));
        return rc;
    }
    b->port = mk_net_listener_port(b->listener);
    if (!c->tls)
        return 0;
    rc = mk_net_listener_open(c->loop, c->host, b->tls_port, &c->net_cfg, &c->handler, b, &b->tls_listener);
    if (rc < 0) {
        mk_error("broker %d: cannot listen (TLS) on %s:%d: %s", b->id, c->host, b->tls_port, uv_strerror(rc));
        mk_net_listener_close(b->listener);
        b->listener = NULL;
        return rc;
    }
    mk_net_listener_set_tls(b->tls_listener, c->tls);
    b->tls_port = mk_net_listener_port(b->tls_listener);
    return 0;
}

static void broker_unlisten(mk_cluster_broker_t *b)
{
    if (b->listener)
        mk_net_listener_close(b->listener);
    if (b->tls_listener)
        mk_net_listener_close(b->tls_listener);
    b->listener = b->tls_listener = NULL;
}

/* The TLS context: the operator's files (minikora.tls.cert/key, and .ca for
 * what clients trust, else the certificate itself), or the ones net/ makes
 * in <data>/tls/.  Blocking: startup only. */
static int tls_setup(mk_cluster_t *c)
{
    char why[600], dir[4096], cert[4200], key[4200];
    const char *ca;
    if (mk_cluster_config_is_set(c->config, "minikora.tls.cert") ||
        mk_cluster_config_is_set(c->config, "minikora.tls.key")) {
        if (!mk_cluster_config_is_set(c->config, "minikora.tls.cert") ||
            !mk_cluster_config_is_set(c->config, "minikora.tls.key")) {
            mk_error("tls: minikora.tls.cert and minikora.tls.key go together");
            return MK_ERR_INVALID;
        }
        snprintf(cert, sizeof(cert), "%s", mk_cluster_config_get(c->config, "minikora.tls.cert"));
        snprintf(key, sizeof(key), "%s", mk_cluster_config_get(c->config, "minikora.tls.key"));
        ca = mk_cluster_config_is_set(c->config, "minikora.tls.ca") ? mk_cluster_config_get(c->config, "minikora.tls.ca")
                                                                     : cert;
    } else {
        snprintf(dir, sizeof(dir), "%s/tls", c->data_dir);
        int rc = mk_net_tls_certs_ensure(dir, c->advertise_host, why, sizeof(why));
        if (rc < 0) {
            mk_error("tls: %s", why);
            return rc;
        }
        snprintf(cert, sizeof(cert), "%s/server.pem", dir);
        snprintf(key, sizeof(key), "%s/server.key", dir);
        snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/ca.pem");
        ca = dir;
    }
    int rc = mk_net_tls_new(cert, key, &c->tls, why, sizeof(why));
    if (rc < 0) {
        mk_error("tls: %s", why);
        return rc;
    }
    c->tls_ca_file = mk_strdup(ca);
    return c->tls_ca_file ? 0 : MK_ERR_NOMEM;
}

int mk_cluster_open(uv_loop_t *loop, const mk_cluster_opts_t *o, mk_cluster_t **out)
{
    mk_cluster_t *c = mk_calloc(1, sizeof(*c));
    if (!c)
        return MK_ERR_NOMEM;
    int rc = MK_ERR_NOMEM;
    c->loop = loop;
    c->config = o->config;
    c->handler = o->handler;
    c->handler_ud = o->handler_ud;
    c->data_dir = mk_strdup(o->data_dir);
    c->host = mk_strdup(o->host);
    if (o->advertise_host) {
        c->advertise_host = mk_strdup(o->advertise_host);
    } else if (mk_net_host_is_wildcard(o->host)) {
        /* A wildcard bind address is no address for a client: never advertise it. */
        char h[256];
        c->advertise_why = mk_net_wildcard_advertise(o->host, h, sizeof(h));
        c->advertise_host = mk_strdup(h);
        mk_info("--host %s without --advertise-host: advertising %s (%s)", o->host, h, c->advertise_why);
    } else {
        c->advertise_host = mk_strdup(o->host);
    }
    mk_map_init(&c->topics);
    mk_map_init(&c->topic_ids);
    mk_net_config_default(&c->net_cfg);
    c->net_cfg.max_frame = (size_t)mk_cluster_config_get_i64(c->config, "socket.request.max.bytes");
    c->net_cfg.max_connections = (int)mk_cluster_config_get_i64(c->config, "max.connections");
    c->net_cfg.max_connections_per_ip = (int)mk_cluster_config_get_i64(c->config, "max.connections.per.ip");
    c->net_cfg.idle_ms = mk_cluster_config_get_i64(c->config, "connections.max.idle.ms");
    /* Kafka's limit for SASL tokens before authentication (512 KiB). */
    if (mk_cluster_config_get_bool(c->config, "minikora.auth.required"))
        c->net_cfg.pre_auth_max_frame = 524288;
    c->nbrokers = o->brokers > 0 ? o->brokers : 6;
    c->nazs = o->azs > 0 ? o->azs : 3;
    if (c->nbrokers > MK_CLUSTER_MAX_BROKERS)
        c->nbrokers = MK_CLUSTER_MAX_BROKERS;
    c->ncells = (c->nbrokers + c->nazs - 1) / c->nazs;
    c->rng = (uint64_t)mk_cluster_config_get_i64(c->config, "minikora.placement.seed");
    c->brokers = mk_calloc(MK_CLUSTER_MAX_BROKERS, sizeof(mk_cluster_broker_t));
    if (!c->data_dir || !c->host || !c->advertise_host || !c->brokers)
        goto fail;

    rc = mk_mkdir_p(c->data_dir);
    if (rc < 0) {
        mk_error("cannot create data directory %s: %s", c->data_dir, strerror(errno));
        goto fail;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/meta.db", c->data_dir);
    rc = mk_meta_open(path, &c->meta);
    if (rc < 0)
        goto fail;

    char *cid = NULL;
    if (mk_meta_kv_get(c->meta, "cluster.id", &cid) == 0 && cid && strlen(cid) < sizeof(c->cluster_id)) {
        snprintf(c->cluster_id, sizeof(c->cluster_id), "%s", cid);
    } else {
        uint8_t raw[16];
        random_bytes(raw, sizeof(raw));
        mk_cluster_uuid_str(raw, c->cluster_id);
        mk_meta_op_t op = {.kind = MK_META_KV_SET, .key = "cluster.id", .value = c->cluster_id};
        rc = mk_meta_op_run(c->meta, &op);
        if (rc < 0) {
            mk_free(cid);
            goto fail;
        }
    }
    mk_free(cid);

    for (int i = 0; i < c->nbrokers; i++) {
        int port = o->base_port > 0 ? o->base_port + i : 0;
        int tls_port = o->tls_base_port < 0 ? -1 : o->tls_base_port > 0 ? o->tls_base_port + i : 0;
        if ((rc = broker_init(c, i, i % c->nazs, i / c->nazs, port, tls_port)) < 0)
            goto fail;
        if (o->advertise_ports)
            c->brokers[i].adv_port = o->advertise_ports[i];
        if (o->advertise_tls_ports && c->brokers[i].tls_port >= 0)
            c->brokers[i].adv_tls_port = o->advertise_tls_ports[i];
    }
    c->initial = c->nbrokers;
    /* Brokers added at runtime come back in id order, on free ports: the
     * layout (every one's AZ and cell) when
     * there is one, else the older count of cells added. */
    char *layout = NULL;
    bool have_layout = mk_meta_kv_get(c->meta, "cluster.brokers.added", &layout) == 0 && layout;
    if (have_layout) {
        rc = layout_load(c, layout, o->tls_base_port < 0 ? -1 : 0);
        mk_free(layout);
        if (rc < 0)
            goto fail;
    }
    char *added = NULL;
    if (!have_layout && mk_meta_kv_get(c->meta, "cluster.cells.added", &added) == 0 && added) {
        int n = atoi(added);
        for (int k = 0; k < n && c->nbrokers + c->nazs <= MK_CLUSTER_MAX_BROKERS; k++) {
            for (int z = 0; z < c->nazs; z++)
                if ((rc = broker_init(c, c->nbrokers + z, z, c->ncells, 0, o->tls_base_port < 0 ? -1 : 0)) < 0) {
                    mk_free(added);
                    goto fail;
                }
            c->nbrokers += c->nazs;
            c->ncells++;
            c->cells_added++;
        }
    }
    mk_free(added);
    retired_load(c);

    /* Dynamic broker settings before the topics: their defaults come from them. */
    rc = mk_meta_kv_foreach(c->meta, DYN_PREFIX, load_dynamic_cb, c);
    if (rc < 0)
        mk_warn("cannot load dynamic broker settings: %s", mk_strerror(rc));
    rc = mk_meta_topic_foreach(c->meta, load_topic_cb, c);
    if (rc < 0) {
        mk_error("cannot load topics from %s/meta.db: %s", c->data_dir, mk_strerror(rc));
        goto fail;
    }
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(c, &it)))
        for (int32_t p = 0; p < t->partition_count; p++)
            for (int32_t k = 0; k < t->partitions[p].replica_count; k++)
                if ((rc = replica_open(c, &t->partitions[p], &t->partitions[p].replicas[k])) < 0)
                    goto fail;

    if (o->tls_base_port >= 0 && (rc = tls_setup(c)) < 0)
        goto fail;
    for (int i = 0; i < c->nbrokers; i++) {
        if (c->brokers[i].retired)
            continue;
        rc = broker_listen(c, &c->brokers[i]);
        if (rc < 0)
            goto fail;
    }
    *out = c;
    return 0;

fail:
    mk_cluster_close(c);
    return rc < 0 ? rc : MK_ERR_IO;
}

void mk_cluster_close(mk_cluster_t *c)
{
    if (!c)
        return;
    for (int i = 0; c->brokers && i < c->nbrokers; i++) {
        broker_unlisten(&c->brokers[i]);
        c->brokers[i].running = false;
    }
    mk_net_tls_free(c->tls); /* open connections keep their own reference */
    mk_free(c->tls_ca_file);
    size_t it = 0;
    const char *k;
    void *v;
    /* The logs were last written before this: one syncfs instead of an
     * fsync per file (mk_log_syncfs). */
    c->synced = c->brokers && c->nbrokers > 0;
    for (int i = 0; c->synced && i < c->nbrokers; i++)
        c->synced = c->brokers[i].log_dir && mk_log_syncfs(c->brokers[i].log_dir) == 0;
    while (mk_map_next(&c->topics, &it, &k, &v))
        topic_free(v);
    mk_map_free(&c->topics);
    mk_map_free(&c->topic_ids);
    if (c->meta)
        mk_meta_close(c->meta);
    for (int i = 0; c->brokers && i < c->nbrokers; i++) {
        mk_free(c->brokers[i].log_dir);
        mk_free(c->brokers[i].adv_host);
        mk_free(c->brokers[i].adv_tls_host);
    }
    mk_free(c->brokers);
    mk_free(c->data_dir);
    mk_free(c->host);
    mk_free(c->advertise_host);
    mk_free(c);
}

/* ================================================================= topology */

struct mk_meta_s *mk_cluster_meta(mk_cluster_t *c) { return c->meta; }
void *mk_cluster_handler_ud(const mk_cluster_t *c) { return c->handler_ud; }
const char *mk_cluster_id(const mk_cluster_t *c) { return c->cluster_id; }
const mk_config_t *mk_cluster_config(const mk_cluster_t *c) { return c->config; }
const char *mk_cluster_advertise_host(const mk_cluster_t *c) { return c->advertise_host; }
const char *mk_cluster_advertise_why(const mk_cluster_t *c) { return c->advertise_why; }

const char *mk_cluster_broker_endpoint(const mk_cluster_t *c, const mk_cluster_broker_t *b, bool tls, int *port)
{
    if (tls) {
        *port = b->adv_tls_port > 0 ? b->adv_tls_port : b->tls_port;
        return b->adv_tls_host ? b->adv_tls_host : c->advertise_host;
    }
    *port = b->adv_port > 0 ? b->adv_port : b->port;
    return b->adv_host ? b->adv_host : c->advertise_host;
}

int mk_cluster_broker_advertise(mk_cluster_t *c, int32_t id, bool tls, const char *host, int port)
{
    mk_cluster_broker_t *b = mk_cluster_broker_find(c, id);
    if (!b)
        return MK_ERR_NOT_FOUND;
    if (port < 0 || port > 65535 || (host && !host[0]) || (tls && b->tls_port < 0))
        return MK_ERR_INVALID;
    char *h = NULL;
    if (host && !(h = mk_strdup(host)))
        return MK_ERR_NOMEM;
    char **hp = tls ? &b->adv_tls_host : &b->adv_host;
    mk_free(*hp);
    *hp = h;
    *(tls ? &b->adv_tls_port : &b->adv_port) = port;
    return 0;
}
int mk_cluster_broker_count(const mk_cluster_t *c) { return c->nbrokers; }
mk_cluster_broker_t *mk_cluster_broker_at(mk_cluster_t *c, int i) { return &c->brokers[i]; }

mk_cluster_broker_t *mk_cluster_broker_find(mk_cluster_t *c, int32_t id)
{
    return id >= 1 && id <= c->nbrokers ? &c->brokers[id - 1] : NULL;
}

int32_t mk_cluster_controller_id(const mk_cluster_t *c)
{
    for (int i = 0; i < c->nbrokers; i++)
        if (c->brokers[i].running)
            return c->brokers[i].id;
    return -1;
}

/* "h:p,h:p..." of the running brokers ("[h]:p" for IPv6): which = 0 the advertise
 * host and bound PLAINTEXT ports, 1 their endpoints (mapping applied), 2 the TLS ports,
 * 3 the TLS endpoints (mapping applied). */
static void bootstrap_list(const mk_cluster_t *c, char *buf, size_t n, int which)
{
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < c->nbrokers && o < n; i++) {
        const mk_cluster_broker_t *b = &c->brokers[i];
        if (!b->running || (which >= 2 && !c->tls))
            continue;
        int port;
        const char *host = which == 1 || which == 3 ? mk_cluster_broker_endpoint(c, b, which == 3, &port)
                                                    : c->advertise_host;
        if (which == 0)
            port = b->port;
        else if (which == 2)
            port = b->tls_port;
        char hp[300];
        mk_net_host_port(host, port, hp, sizeof(hp));
        int w = snprintf(buf + o, n - o, "%s%s", o ? "," : "", hp);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

void mk_cluster_bootstrap(const mk_cluster_t *c, char *buf, size_t n) { bootstrap_list(c, buf, n, 0); }
void mk_cluster_advertised_bootstrap(const mk_cluster_t *c, char *buf, size_t n) { bootstrap_list(c, buf, n, 1); }
void mk_cluster_tls_bootstrap(const mk_cluster_t *c, char *buf, size_t n) { bootstrap_list(c, buf, n, 2); }
void mk_cluster_advertised_tls_bootstrap(const mk_cluster_t *c, char *buf, size_t n) { bootstrap_list(c, buf, n, 3); }

const char *mk_cluster_tls_ca_file(const mk_cluster_t *c) { return c->tls ? c->tls_ca_file : NULL; }

int mk_cluster_broker_stop(mk_cluster_t *c, int32_t id)
{
    mk_cluster_broker_t *b = mk_cluster_broker_find(c, id);
    if (!b)
        return MK_ERR_NOT_FOUND;
    if (!b->running)
        return MK_ERR_STATE;
    broker_unlisten(b);
    b->running = false;
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(c, &it)))
        for (int32_t p = 0; p < t->partition_count; p++) {
            mk_replica_t *r = mk_cluster_partition_replica(&t->partitions[p], id);
            if (r)
                replica_close(&t->partitions[p], r, c->loop);
        }
    mk_info("broker %d stopped", id);
    return 0;
}

int mk_cluster_broker_logs_offline(mk_cluster_t *c, int32_t id)
{
    mk_cluster_broker_t *b = mk_cluster_broker_find(c, id);
    if (!b)
        return MK_ERR_NOT_FOUND;
    if (!b->running || b->logs_offline)
        return MK_ERR_STATE;
    b->logs_offline = true;
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(c, &it)))
        for (int32_t p = 0; p < t->partition_count; p++) {
            mk_replica_t *r = mk_cluster_partition_replica(&t->partitions[p], id);
            if (r)
                replica_close(&t->partitions[p], r, c->loop);
        }
    mk_warn("broker %d: its log directory is offline (storage error): its replicas are offline until it restarts",
            id);
    return 0;
}

int mk_cluster_broker_start(mk_cluster_t *c, int32_t id)
{
    mk_cluster_broker_t *b = mk_cluster_broker_find(c, id);
    if (!b)
        return MK_ERR_NOT_FOUND;
    if (b->running || b->retired)
        return MK_ERR_STATE;
    mk_log_io_online(id); /* a restart brings an offline log directory back */
    b->logs_offline = false;
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(c, &it)))
        for (int32_t p = 0; p < t->partition_count; p++) {
            mk_replica_t *r = mk_cluster_partition_replica(&t->partitions[p], id);
            if (r && replica_open(c, &t->partitions[p], r) == 0)
                r->needs_truncate = true;
        }
    int rc = broker_listen(c, b);
    if (rc < 0)
        return rc;
    b->running = true;
    mk_info("broker %d started on port %d", id, b->port);
    return 0;
}

/* ==================================================================== cells */

/* cluster.brokers.added: every broker after the initial ones, in id
 * order, as "<az index>:<cell>" separated by commas; and
 * cluster.brokers.retired: the ids of retired brokers, "1,5".  Both fit
 * in MK_CLUSTER_MAX_BROKERS * 12 bytes. */
static int layout_persist(mk_cluster_t *c)
{
    char added[MK_CLUSTER_MAX_BROKERS * 12 + 1] = "", retired[MK_CLUSTER_MAX_BROKERS * 12 + 1] = "";
    size_t na = 0, nr = 0;
    for (int i = 0; i < c->nbrokers; i++) {
        const mk_cluster_broker_t *b = &c->brokers[i];
        if (i >= c->initial)
            na += (size_t)snprintf(added + na, sizeof(added) - na, "%s%d:%d", na ? "," : "", atoi(b->az + 3) - 1,
                                   b->cell);
        if (b->retired)
            nr += (size_t)snprintf(retired + nr, sizeof(retired) - nr, "%s%d", nr ? "," : "", b->id);
    }
    mk_meta_op_t op = {.kind = MK_META_KV_SET, .key = "cluster.brokers.added", .value = added};
    int rc = mk_meta_op_submit(c->meta, c->loop, &op, persist_log_done, NULL);
    mk_meta_op_t op2 = {.kind = MK_META_KV_SET, .key = "cluster.brokers.retired", .value = retired};
    if (rc == 0)
        rc = mk_meta_op_submit(c->meta, c->loop, &op2, persist_log_done, NULL);
    return rc;
}

/* At open, once every broker is there: cluster.brokers.retired. */
static void retired_load(mk_cluster_t *c)
{
    char *v = NULL;
    if (mk_meta_kv_get(c->meta, "cluster.brokers.retired", &v) < 0 || !v)
        return;
    for (const char *s = v; *s;) {
        char *end;
        long id = strtol(s, &end, 10);
        if (end == s)
            break;
        mk_cluster_broker_t *b = mk_cluster_broker_find(c, (int32_t)id);
        if (b) {
            b->retired = true;
            b->running = false;
        }
        s = end + (*end == ',');
    }
    mk_free(v);
}

/* At open: the brokers of cluster.brokers.added (stored text, checked). */
static int layout_load(mk_cluster_t *c, const char *s, int tls_port)
{
    int max_cell = c->ncells - 1;
    while (*s) {
        char *end;
        long z = strtol(s, &end, 10);
        if (end == s || *end != ':' || z < 0 || z >= c->nazs)
            goto bad;
        s = end + 1;
        long cell = strtol(s, &end, 10);
        if (end == s || cell < 0 || cell >= MK_CLUSTER_MAX_BROKERS || c->nbrokers >= MK_CLUSTER_MAX_BROKERS)
            goto bad;
        s = end;
        if (*s && *s != ',')
            goto bad;
        s += *s == ',';
        int rc = broker_init(c, c->nbrokers, (int)z, (int)cell, 0, tls_port);
        if (rc < 0)
            return rc;
        c->nbrokers++;
        if (cell > max_cell)
            max_cell = (int)cell;
    }
    c->cells_added = max_cell + 1 - c->ncells;
    c->ncells = max_cell + 1;
    return 0;
bad:
    mk_warn("stored cluster.brokers.added is not valid; the rest of the brokers added at runtime are not loaded");
    return 0;
}

int mk_cluster_cell_add(mk_cluster_t *c, int32_t *cell_out)
{
    if (c->nbrokers + c->nazs > MK_CLUSTER_MAX_BROKERS)
        return MK_ERR_RANGE;
    int first = c->nbrokers, rc = 0;
    int tls_port = c->tls ? 0 : -1;
    for (int z = 0; z < c->nazs && rc == 0; z++) {
        rc = broker_init(c, first + z, z, c->ncells, 0, tls_port);
        if (rc == 0) {
            c->brokers[first + z].running = false; /* until it listens */
            rc = broker_listen(c, &c->brokers[first + z]);
        }
    }
    if (rc < 0) {
        for (int z = 0; z < c->nazs; z++) {
            mk_cluster_broker_t *b = &c->brokers[first + z];
            broker_unlisten(b);
            mk_free(b->log_dir);
            memset(b, 0, sizeof(*b));
        }
        return rc;
    }
    for (int z = 0; z < c->nazs; z++)
        c->brokers[first + z].running = true;
    c->nbrokers += c->nazs;
    int32_t cell = c->ncells++;
    c->cells_added++;
    char v[16];
    snprintf(v, sizeof(v), "%d", c->cells_added);
    mk_meta_op_t op = {.kind = MK_META_KV_SET, .key = "cluster.cells.added", .value = v};
    rc = mk_meta_op_submit(c->meta, c->loop, &op, persist_log_done, NULL);
    if (rc == 0)
        rc = layout_persist(c);
    mk_info("cell %d added: brokers %d..%d", cell, first + 1, c->nbrokers);
    if (cell_out)
        *cell_out = cell;
    return rc < 0 ? rc : 0;
}

int mk_cluster_broker_add(mk_cluster_t *c, const char *az, int32_t cell, int32_t *id_out)
{
    if (c->nbrokers >= MK_CLUSTER_MAX_BROKERS)
        return MK_ERR_RANGE;
    int z = -1;
    if (strncmp(az, "az-", 3) == 0)
        z = atoi(az + 3) - 1;
    if (z < 0 || z >= c->nazs || cell < 0 || cell >= c->ncells)
        return MK_ERR_INVALID;
    int i = c->nbrokers;
    int rc = broker_init(c, i, z, cell, 0, c->tls ? 0 : -1);
    if (rc == 0) {
        c->brokers[i].running = false; /* until it listens */
        rc = broker_listen(c, &c->brokers[i]);
    }
    if (rc < 0) {
        broker_unlisten(&c->brokers[i]);
        mk_free(c->brokers[i].log_dir);
        memset(&c->brokers[i], 0, sizeof(c->brokers[i]));
        return rc;
    }
    c->brokers[i].running = true;
    c->nbrokers++;
    mk_info("broker %d added in %s, cell %d", c->brokers[i].id, az, cell);
    if (id_out)
        *id_out = c->brokers[i].id;
    return layout_persist(c);
}

int mk_cluster_broker_retire(mk_cluster_t *c, int32_t id)
{
    mk_cluster_broker_t *b = mk_cluster_broker_find(c, id);
    if (!b)
        return MK_ERR_NOT_FOUND;
    if (b->running)
        return MK_ERR_STATE;
    if (b->retired)
        return 0;
    b->retired = true;
    mk_info("broker %d retired", id);
    return layout_persist(c);
}

int mk_cluster_topic_set_cell(mk_cluster_t *c, mk_topic_t *t, int32_t cell)
{
    if (cell < 0 || cell >= c->ncells)
        return MK_ERR_INVALID;
    t->cell = cell;
    return topic_persist(c, t, NULL, NULL);
}

/* Replicas keep their place in memory only while the array stays: after a
 * change every log's segment callback and back-pointer are set again. */
static void replicas_rebind(mk_partition_t *p)
{
    for (int32_t k = 0; k < p->replica_count; k++) {
        mk_replica_t *r = &p->replicas[k];
        r->partition = p;
        if (r->log)
            mk_log_set_segment_cb(r->log, replica_segment_cb, r);
    }
}

int mk_cluster_partition_set_replicas(mk_cluster_t *c, mk_partition_t *p, const int32_t *brokers, int32_t n)
{
    if (n < 1 || n > MK_CLUSTER_MAX_BROKERS)
        return MK_ERR_INVALID;
    bool has_leader = p->leader < 0;
    for (int32_t i = 0; i < n; i++) {
        if (!mk_cluster_broker_find(c, brokers[i]))
            return MK_ERR_INVALID;
        for (int32_t j = 0; j < i; j++)
            if (brokers[j] == brokers[i])
                return MK_ERR_INVALID;
        has_leader |= brokers[i] == p->leader;
    }
    if (!has_leader)
        return MK_ERR_INVALID;
    mk_replica_t *nr = mk_calloc((size_t)n, sizeof(mk_replica_t));
    if (!nr)
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        mk_replica_t *old = mk_cluster_partition_replica(p, brokers[i]);
        if (old) {
            nr[i] = *old;
            old->log = NULL; /* moved */
            continue;
        }
        nr[i].broker = brokers[i];
        nr[i].partition = p;
    }
    /* Replicas that leave: their logs go, or the directory a stopped broker would reopen. */
    for (int32_t k = 0; k < p->replica_count; k++) {
        mk_replica_t *r = &p->replicas[k];
        bool kept = false;
        for (int32_t i = 0; i < n; i++)
            kept |= brokers[i] == r->broker;
        if (kept)
            continue;
        if (r->log) {
            if (p->log == r->log)
                p->log = NULL;
            mk_log_destroy(r->log);
            r->log = NULL;
        } else {
            char dir[4096];
            replica_dir(c, p, r->broker, dir, sizeof(dir));
            remove_dir(dir);
        }
        mk_info("partition %s-%d: replica on broker %d removed", p->topic->name, p->index, r->broker);
    }
    mk_free(p->replicas);
    p->replicas = nr;
    p->replica_count = n;
    replicas_rebind(p);
    int rc = 0;
    for (int32_t i = 0; i < n; i++) {
        mk_replica_t *r = &p->replicas[i];
        if (r->log || !c->brokers[r->broker - 1].running)
            continue;
        /* A new replica starts from an empty directory, out of the ISR. */
        char dir[4096];
        replica_dir(c, p, r->broker, dir, sizeof(dir));
        remove_dir(dir);
        int orc = replica_open(c, p, r);
        if (orc < 0 && rc == 0)
            rc = orc;
        else
            mk_info("partition %s-%d: replica on broker %d added", p->topic->name, p->index, r->broker);
    }
    partition_persist(c, p);
    return rc;
}

/* ===================================================== partitions, grown */

/* Grow t to count partitions.  The partition array is reallocated: every
 * pointer into it moves.  That is safe because nothing keeps an
 * mk_partition_t* across a return to the loop -- replication rounds,
 * reassignments, parked produces and fetches, and producer state all key a
 * partition by (topic id, index) and look it up again (cluster.h) -- and
 * the one pointer inside the array, each replica's back-pointer (also the
 * segment callback's argument holds the replica, whose array does not
 * move), is set again here. */
int mk_cluster_topic_add_partitions(mk_cluster_t *c, mk_topic_t *t, int32_t count, const int32_t *assignment,
                                    int16_t rf, mk_cluster_done_cb cb, void *arg)
{
    int32_t old = t->partition_count;
    if (count <= old || count > MK_CLUSTER_MAX_PARTITIONS)
        return MK_ERR_INVALID;
    if (rf < 1 || rf > MK_CLUSTER_MAX_BROKERS)
        return MK_ERR_INVALID;
    if (assignment)
        for (int32_t i = 0; i < (count - old) * rf; i++)
            if (!mk_cluster_broker_find(c, assignment[i]))
                return MK_ERR_INVALID;
    mk_partition_t *np = mk_realloc(t->partitions, sizeof(mk_partition_t) * (size_t)count);
    if (!np)
        return MK_ERR_NOMEM;
    t->partitions = np;
    for (int32_t i = 0; i < old; i++)
        replicas_rebind(&t->partitions[i]);
    memset(&t->partitions[old], 0, sizeof(mk_partition_t) * (size_t)(count - old));
    int rc = 0;
    int32_t made = old;
    for (int32_t i = old; i < count && rc == 0; i++) {
        mk_partition_t *p = &t->partitions[i];
        p->topic = t;
        p->index = i;
        p->leader = -1;
        p->replicas = mk_calloc((size_t)rf, sizeof(mk_replica_t));
        if (!p->replicas) {
            rc = MK_ERR_NOMEM;
            break;
        }
        p->replica_count = rf;
        made = i + 1;
        for (int32_t k = 0; k < rf; k++)
            p->replicas[k].partition = p;
    }
    if (rc == 0) {
        if (assignment) {
            for (int32_t i = old; i < count; i++)
                for (int32_t k = 0; k < rf; k++)
                    t->partitions[i].replicas[k].broker = assignment[(i - old) * rf + k];
        } else {
            /* As place_replicas: the topic's cell, one broker per AZ, the
             * list rotated per partition so leaders spread. */
            int32_t cand[MK_CLUSTER_MAX_BROKERS];
            int n = 0;
            for (int i = 0; i < c->nbrokers; i++)
                if (c->brokers[i].cell == t->cell && !c->brokers[i].retired)
                    cand[n++] = c->brokers[i].id;
            if (n < rf)
                rc = MK_ERR_INVALID;
            uint32_t start = n ? mk_cluster_random(c) % (uint32_t)n : 0;
            for (int32_t i = old; rc == 0 && i < count; i++)
                for (int32_t k = 0; k < rf; k++)
                    t->partitions[i].replicas[k].broker = cand[(start + (uint32_t)i + (uint32_t)k) % (uint32_t)n];
        }
    }
    for (int32_t i = old; rc == 0 && i < count; i++) {
        mk_partition_t *p = &t->partitions[i];
        pick_initial_leader(c, p);
        for (int32_t k = 0; k < p->replica_count && rc == 0; k++) {
            mk_replica_t *r = &p->replicas[k];
            if (!c->brokers[r->broker - 1].running)
                continue;
            char dir[4096];
            replica_dir(c, p, r->broker, dir, sizeof(dir));
            remove_dir(dir);
            rc = replica_open(c, p, r);
            r->in_isr = rc == 0;
        }
    }
    if (rc == 0) {
        t->partition_count = count;
        rc = topic_persist(c, t, cb, arg);
        if (rc < 0)
            t->partition_count = old;
    }
    if (rc < 0) {
        /* Nothing added: the new partitions' logs and replicas go. */
        for (int32_t i = old; i < made; i++) {
            mk_partition_t *p = &t->partitions[i];
            for (int32_t k = 0; k < p->replica_count; k++)
                if (p->replicas[k].log) {
                    mk_log_destroy(p->replicas[k].log);
                    p->replicas[k].log = NULL;
                }
            mk_free(p->replicas);
            p->replicas = NULL;
        }
        return rc == MK_ERR_NOMEM || rc == MK_ERR_INVALID ? rc : MK_ERR_IO;
    }
    mk_info("topic %s: %d partitions (was %d)", t->name, count, old);
    return 0;
}

/* ======================================================= settings, changed */

void mk_cluster_set_config_cb(mk_cluster_t *c, mk_cluster_config_cb cb, void *arg)
{
    c->config_cb = cb;
    c->config_arg = arg;
}

int mk_cluster_topic_config_alter(mk_cluster_t *c, mk_topic_t *t, const char *const *keys,
                                  const char *const *values, int32_t n, mk_cluster_done_cb cb, void *arg)
{
    for (int32_t i = 0; i < n; i++) {
        const mk_cfg_def_t *d = mk_cluster_cfg_topic_def(keys[i]);
        if (!d || (values[i] && !mk_cluster_config_value_valid(d, values[i])))
            return MK_ERR_INVALID;
    }
    /* Keep the old values until the new ones are all in place. */
    mk_map_t next;
    mk_map_init(&next);
    size_t it = 0;
    const char *k;
    void *v;
    int rc = 0;
    while (rc == 0 && mk_map_next(&t->overrides, &it, &k, &v)) {
        char *copy = mk_strdup(v);
        if (!copy || mk_map_put(&next, k, copy) < 0) {
            mk_free(copy);
            rc = MK_ERR_NOMEM;
        }
    }
    for (int32_t i = 0; rc == 0 && i < n; i++) {
        char *old = mk_map_del(&next, keys[i]);
        mk_free(old);
        if (!values[i])
            continue;
        char *copy = mk_strdup(values[i]);
        if (!copy || mk_map_put(&next, keys[i], copy) < 0) {
            mk_free(copy);
            rc = MK_ERR_NOMEM;
        }
    }
    if (rc == 0 && compact_tiered_conflict(mk_map_get(&next, "cleanup.policy"), mk_map_get(&next, "remote.storage.enable")))
        rc = MK_ERR_INVALID;
    if (rc < 0) {
        it = 0;
        while (mk_map_next(&next, &it, &k, &v))
            mk_free(v);
        mk_map_free(&next);
        return rc;
    }
    it = 0;
    while (mk_map_next(&t->overrides, &it, &k, &v))
        mk_free(v);
    mk_map_free(&t->overrides);
    t->overrides = next;
    topic_reconfig(c, t);
    for (int32_t i = 0; i < n; i++)
        mk_info("topic %s: %s %s%s", t->name, keys[i], values[i] ? "set to " : "removed", values[i] ? values[i] : "");
    return topic_persist(c, t, cb, arg);
}

typedef struct alter_s {
    int outstanding;
    int status;
    mk_cluster_done_cb cb;
    void *arg;
} alter_t;

static void alter_done(int status, void *arg)
{
    alter_t *a = arg;
    if (status < 0 && a->status == 0)
        a->status = status;
    if (--a->outstanding > 0)
        return;
    if (a->status < 0)
        mk_error("dynamic broker settings could not be persisted: %s", mk_strerror(a->status));
    if (a->cb)
        a->cb(a->status, a->arg);
    mk_free(a);
}

bool mk_cluster_broker_config_alterable(const char *name)
{
    const mk_cfg_def_t *d = mk_cluster_cfg_def_find(name);
    return d && d->scope == MK_CFG_SCOPE_BROKER && !d->read_only;
}

int mk_cluster_broker_config_alter(mk_cluster_t *c, int32_t broker, const char *const *keys,
                                   const char *const *values, int32_t n, mk_cluster_done_cb cb, void *arg)
{
    if (broker >= 0 && !mk_cluster_broker_find(c, broker))
        return MK_ERR_NOT_FOUND;
    for (int32_t i = 0; i < n; i++) {
        if (!mk_cluster_broker_config_alterable(keys[i]))
            return MK_ERR_INVALID;
        if (values[i] && !mk_cluster_config_value_valid(mk_cluster_cfg_def_find(keys[i]), values[i]))
            return MK_ERR_INVALID;
    }
    alter_t *a = mk_calloc(1, sizeof(*a));
    if (!a)
        return MK_ERR_NOMEM;
    a->cb = cb;
    a->arg = arg;
    a->outstanding = 1;
    int rc = 0;
    for (int32_t i = 0; i < n; i++) {
        rc = mk_cluster_config_set_dynamic(c->config, broker, keys[i], values[i]);
        if (rc < 0)
            break;
        char key[MK_META_MAX_NAME];
        if (broker < 0)
            snprintf(key, sizeof(key), DYN_PREFIX "default/%s", keys[i]);
        else
            snprintf(key, sizeof(key), DYN_PREFIX "%d/%s", (int)broker, keys[i]);
        mk_meta_op_t op = {.kind = MK_META_KV_SET, .key = key, .value = values[i]};
        a->outstanding++;
        if (mk_meta_op_submit(c->meta, c->loop, &op, alter_done, a) < 0) {
            a->outstanding--;
            a->status = MK_ERR_IO;
        }
        if (broker < 0)
            mk_info("broker settings (cluster default): %s %s%s", keys[i], values[i] ? "set to " : "removed",
                    values[i] ? values[i] : "");
        else
            mk_info("broker %d settings: %s %s%s", (int)broker, keys[i], values[i] ? "set to " : "removed",
                    values[i] ? values[i] : "");
    }
    /* Topic defaults come from broker settings: every topic's parsed form. */
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(c, &it)))
        topic_reconfig(c, t);
    if (c->config_cb)
        c->config_cb(c->config_arg);
    alter_done(rc, a);
    return 0;
}
