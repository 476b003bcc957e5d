/*
 * broker.c -- the request layer as a whole: its state, what it owns (group
 * coordinator, partition write path, replication, transactions), and the
 * calls admin/ and main.c make on it.
 *
 * The files of broker/, in reading order:
 *   dispatch.c   the dispatch table, frame handling and sessions
 *   req.c        the life of a request: answer, park, wake, free
 *   topics.c     Metadata, CreateTopics, DeleteTopics, DescribeConfigs,
 *                DescribeCluster
 *   data.c       Produce, Fetch, ListOffsets, OffsetForLeaderEpoch
 *   groups.c     the group APIs
 *   txns.c       the producer and transaction APIs
 *   quotas.c     the client quota APIs, and the limits enforced here:
 *                partition mutations, partitions, storage, connections
 *   throttle.c   byte-rate and request-time quotas: measures and KIP-219
 *                throttling
 * dispatch.c calls the handlers, the handlers call req.c, and nothing calls
 * back up that chain.
 */
#include "broker/broker_int.h"
#include "group/group.h"
#include "repl/repl.h"
#include "scrub/scrub.h"
#include "txn/txn.h"

#include <stdlib.h>
#include <string.h>

/* ==================================================================== broker */

int mk_broker_new(uv_loop_t *loop, mk_broker_t **out)
{
    mk_broker_t *b = mk_calloc(1, sizeof(*b));
    if (!b)
        return MK_ERR_NOMEM;
    b->loop = loop;
    int rc = mk_broker_req_init(b);
    if (rc < 0) {
        mk_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

/* Appends, or high watermarks or ISRs moved: parked Produce and Fetch
 * requests re-check. */
static void repl_progress_cb(void *arg) { mk_broker_req_wake_soon(arg); }

mk_repl_t *mk_broker_repl(mk_broker_t *b) { return b->repl; }
mk_partition_writer_t *mk_broker_writer(mk_broker_t *b) { return b->writer; }
uint64_t mk_broker_acks_all_acked(const mk_broker_t *b) { return b->acks_all_acked; }

mk_group_coord_t *mk_broker_groups(mk_broker_t *b) { return b->groups; }

mk_scrub_t *mk_broker_scrub(mk_broker_t *b) { return b->scrub; }

mk_tenant_registry_t *mk_broker_tenants(mk_broker_t *b) { return b->tenants; }
mk_quota_registry_t *mk_broker_quotas(mk_broker_t *b) { return b->quotas; }

int mk_broker_sessions_close(mk_broker_t *b, const mk_tenant_t *t, const char *key, const char *reason)
{
    int n = 0;
    mk_session_t *s = b->sessions, *next;
    for (; s; s = next) {
        next = s->next; /* closing frees s (the net close_cb runs now) */
        if (s->tenant == t && (!key || strcmp(s->key, key) == 0)) {
            mk_net_conn_close(s->conn, reason);
            n++;
        }
    }
    return n;
}

int mk_broker_sessions_count(mk_broker_t *b, const mk_tenant_t *t)
{
    int n = 0;
    for (mk_session_t *s = b->sessions; s; s = s->next)
        n += s->tenant == t;
    return n;
}

void mk_broker_set_req_cb(mk_broker_t *b, mk_broker_req_cb cb, void *ud)
{
    b->req_cb = cb;
    b->req_cb_ud = ud;
}

int mk_broker_topic_create(mk_broker_t *b, const mk_topic_spec_t *spec, mk_topic_t **out)
{
    int rc = mk_cluster_topic_create(b->c, spec, NULL, NULL, out);
    if (rc == 0 && b->repl)
        mk_repl_topic_created(b->repl, *out);
    return rc;
}

int mk_broker_topic_delete(mk_broker_t *b, mk_topic_t *t)
{
    char *name = mk_strdup(t->name);
    if (!name)
        return MK_ERR_NOMEM;
    int rc = mk_cluster_topic_delete(b->c, t, NULL, NULL);
    if (rc == 0 && b->groups)
        mk_group_topic_deleted(b->groups, name);
    mk_free(name);
    /* Parked fetches may name the deleted topic: let them see it go. */
    mk_broker_req_wake_soon(b);
    return rc;
}

/* Tenants and keys declared in the configuration, so that a CI job starts
 * with them ready:  minikora.tenant.<id>.keys=KEY:SECRET[,KEY:SECRET...]
 * (an empty value declares the tenant alone).  Existing ones are kept as
 * they are.  0, or MK_ERR_INVALID with a log line naming the setting. */
static int declare_tenants(mk_broker_t *b, const mk_config_t *cfg)
{
    size_t it = 0;
    const char *name;
    void *v;
    while (mk_map_next(&cfg->values, &it, &name, &v)) {
        char id[MK_TENANT_ID_MAX + 2];
        size_t idl = mk_cluster_cfg_tenant_keys_id(name, id, sizeof(id));
        if (idl == 0)
            continue;
        if (idl >= sizeof(id)) {
            mk_error("%s: the tenant id is too long", name);
            return MK_ERR_INVALID;
        }
        mk_tenant_t *t = mk_tenant_find(b->tenants, id);
        int rc = 0;
        if (!t)
            rc = mk_tenant_create(b->tenants, id, mk_cluster_cell_pick(b->c), &t);
        if (rc < 0) {
            mk_error("%s: cannot declare tenant %s: %s", name, id, mk_strerror(rc));
            return MK_ERR_INVALID;
        }
        char *list = mk_strdup((const char *)v), *save = NULL;
        if (!list)
            return MK_ERR_NOMEM;
        for (char *pair = strtok_r(list, ",", &save); pair; pair = strtok_r(NULL, ",", &save)) {
            char *colon = strchr(pair, ':');
            if (colon)
                *colon = 0;
            rc = colon ? mk_tenant_key_declare(b->tenants, t, pair, colon + 1) : MK_ERR_INVALID;
            if (rc < 0) {
                mk_error("%s: key %s: %s (a key is 16 of A-Z0-9, then ':' and a secret of 8..128 "
                         "printable characters)", name, pair, mk_strerror(rc));
                mk_free(list);
                return MK_ERR_INVALID;
            }
        }
        mk_free(list);
    }
    return 0;
}

/* The replication settings, as the configuration has them now. */
static mk_repl_config_t repl_config(const mk_config_t *cfg)
{
    mk_repl_config_t rcfg = {
        mk_cluster_config_get_i64(cfg, "replica.lag.time.max.ms"),
        (int32_t)mk_cluster_config_get_i64(cfg, "minikora.cross.az.latency.ms"),
        mk_cluster_config_get_bool(cfg, "auto.leader.rebalance.enable"),
        mk_cluster_config_get_bool(cfg, "unclean.leader.election.enable"),
    };
    return rcfg;
}

/* Dynamic broker settings changed (AlterConfigs): what this layer keeps
 * parsed is read again. */
static void config_changed_cb(void *arg)
{
    mk_broker_t *b = arg;
    mk_repl_config_t rcfg = repl_config(mk_cluster_config(b->c));
    if (b->repl)
        mk_repl_set_config(b->repl, &rcfg);
    mk_broker_throttle_reconfig(b);
}

int mk_broker_attach(mk_broker_t *b, mk_cluster_t *c)
{
    b->c = c;
    const mk_config_t *cfg = mk_cluster_config(c);
    mk_group_config_t gcfg = {
        (int32_t)mk_cluster_config_get_i64(cfg, "group.initial.rebalance.delay.ms"),
        (int32_t)mk_cluster_config_get_i64(cfg, "group.min.session.timeout.ms"),
        (int32_t)mk_cluster_config_get_i64(cfg, "group.max.session.timeout.ms"),
        (int32_t)mk_cluster_config_get_i64(cfg, "group.max.size"),
        mk_cluster_config_get_i64(cfg, "offsets.retention.minutes") * 60000,
        (int32_t)mk_cluster_config_get_i64(cfg, "offset.metadata.max.bytes"),
        (int32_t)mk_cluster_config_get_i64(cfg, "group.consumer.session.timeout.ms"),
        (int32_t)mk_cluster_config_get_i64(cfg, "group.consumer.heartbeat.interval.ms"),
        (int32_t)mk_cluster_config_get_i64(cfg, "group.consumer.max.size"),
        mk_cluster_config_get(cfg, "group.consumer.assignors"),
        mk_cluster_config_get(cfg, "group.consumer.migration.policy"),
    };
    /* Kafka refuses to start with these outside their bounds; here they are
     * brought within them, with a warning. */
    int32_t lo = (int32_t)mk_cluster_config_get_i64(cfg, "group.consumer.min.session.timeout.ms");
    int32_t hi = (int32_t)mk_cluster_config_get_i64(cfg, "group.consumer.max.session.timeout.ms");
    if (gcfg.cg_session_timeout_ms < lo || gcfg.cg_session_timeout_ms > hi) {
        int32_t v = MK_MAX(lo, MK_MIN(hi, gcfg.cg_session_timeout_ms));
        mk_warn("group.consumer.session.timeout.ms %d is outside [%d, %d]; using %d", gcfg.cg_session_timeout_ms,
                lo, hi, v);
        gcfg.cg_session_timeout_ms = v;
    }
    lo = (int32_t)mk_cluster_config_get_i64(cfg, "group.consumer.min.heartbeat.interval.ms");
    hi = (int32_t)mk_cluster_config_get_i64(cfg, "group.consumer.max.heartbeat.interval.ms");
    if (gcfg.cg_heartbeat_interval_ms < lo || gcfg.cg_heartbeat_interval_ms > hi ||
        gcfg.cg_heartbeat_interval_ms >= gcfg.cg_session_timeout_ms) {
        int32_t v = MK_MAX(lo, MK_MIN(hi, gcfg.cg_heartbeat_interval_ms));
        if (v >= gcfg.cg_session_timeout_ms)
            v = MK_MAX(1, gcfg.cg_session_timeout_ms / 3);
        mk_warn("group.consumer.heartbeat.interval.ms %d is outside [%d, %d] or not below the session timeout; "
                "using %d", gcfg.cg_heartbeat_interval_ms, lo, hi, v);
        gcfg.cg_heartbeat_interval_ms = v;
    }
    int rc = mk_group_coord_new(b->loop, c, &gcfg, &b->groups);
    if (rc < 0)
        return rc;
    mk_repl_config_t rcfg = repl_config(cfg);
    /* The storage I/O gate of every broker's logs (log.h): its timer. */
    mk_log_io_open(b->loop);
    /* The one leader write path; repl and txn observe it, in that order. */
    rc = mk_partition_writer_new(c, &b->writer);
    if (rc < 0)
        return rc;
    mk_partition_writer_set_progress_cb(b->writer, repl_progress_cb, b);
    rc = mk_repl_new(b->loop, c, &rcfg, b->writer, &b->repl);
    if (rc < 0)
        return rc;
    mk_repl_start_all(b->repl);
    mk_cluster_set_config_cb(c, config_changed_cb, b);
    b->auth_required = mk_cluster_config_get_bool(cfg, "minikora.auth.required");
    /* Checked by config.c: empty (leader only) or RackAwareReplicaSelector. */
    b->rack_aware_reads = *mk_cluster_config_get(cfg, "replica.selector.class") != 0;
    b->remote_fetch_wait_ms = (int32_t)mk_cluster_config_get_i64(cfg, "remote.fetch.max.wait.ms");
    rc = mk_tenant_registry_open(b->loop, mk_cluster_meta(c), &b->tenants);
    if (rc < 0)
        return rc;
    /* The default tenant is an ordinary tenant: it has a cell, chosen at
     * first start as any tenant's is, and kept. */
    mk_tenant_t *dt = mk_tenant_find(b->tenants, "default");
    if (dt && (dt->cell < 0 || dt->cell >= mk_cluster_cell_count(c)))
        mk_tenant_set_cell(b->tenants, dt, mk_cluster_cell_pick(c));
    rc = declare_tenants(b, cfg);
    if (rc < 0)
        return rc;
    rc = mk_quota_registry_open(b->loop, mk_cluster_meta(c), &b->quotas);
    if (rc < 0)
        return rc;
    rc = mk_broker_limits_init(b);
    if (rc < 0)
        return rc;
    rc = mk_broker_limits_declare(b, cfg);
    if (rc < 0)
        return rc;
    rc = mk_broker_throttle_init(b);
    if (rc < 0)
        return rc;
    rc = mk_txn_new(b->loop, c, b->groups, b->writer, &b->txn);
    if (rc < 0)
        return rc;
    /* Integrity checks: observes the writer after repl and txn. */
    mk_scrub_config_t scfg = {
        mk_cluster_config_get_i64(cfg, "minikora.scrub.rate.bytes.per.sec"),
        mk_cluster_config_get_i64(cfg, "minikora.scrub.interval.ms"),
    };
    return mk_scrub_new(b->loop, c, b->writer, b->repl, &scfg, &b->scrub);
}

/* ============================================================ tiering */

static int64_t tier_stable(void *arg, mk_partition_t *p)
{
    mk_broker_t *b = arg;
    return b->txn ? mk_txn_lso(b->txn, p) : mk_partition_hw(p);
}

static void tier_aborted(void *arg, mk_partition_t *p, int64_t from, int64_t to,
                         void (*cb)(int64_t pid, int64_t first, int64_t last, void *cbarg), void *cbarg)
{
    mk_broker_t *b = arg;
    if (b->txn)
        mk_txn_aborted_ended(b->txn, p, from, to, cb, cbarg);
}

static void tier_producers(void *arg, mk_partition_t *p,
                           void (*cb)(int64_t pid, int16_t epoch, int32_t last_seq, int64_t last_ts, int64_t txn_start,
                                      void *cbarg),
                           void *cbarg)
{
    mk_broker_t *b = arg;
    if (b->txn)
        mk_txn_producers(b->txn, p, cb, cbarg);
}

static void tier_progress(void *arg) { mk_broker_req_wake_soon(arg); }

static int tier_rebuild(void *arg, mk_partition_t *p, int32_t broker, mk_log_t *log, int64_t start)
{
    mk_broker_t *b = arg;
    return mk_tier_follower_rebuild(b->tier, p, broker, log, start);
}

/* The scrubber's remote hook, on tier's remote checks: the same report,
 * field by field (neither module knows the other). */
static void tier_check_report(void *arg, const mk_tier_check_report_t *r)
{
    mk_broker_t *b = arg;
    if (!b->scrub)
        return;
    int outcome = r->outcome == MK_TIER_CHECK_REUPLOADED     ? MK_SCRUB_REMOTE_REUPLOADED
                  : r->outcome == MK_TIER_CHECK_UNREPAIRABLE ? MK_SCRUB_REMOTE_UNREPAIRABLE
                                                             : MK_SCRUB_REMOTE_REUPLOAD_FAILED;
    mk_scrub_remote_report_t sr = {.done = r->done, .segments = r->segments, .bytes = r->bytes,
                                   .skipped = r->skipped, .outcome = outcome, .repeat = r->repeat,
                                   .topic = r->topic, .partition = r->partition, .start = r->start, .end = r->end,
                                   .segment_id = r->segment_id, .broker = r->broker, .why = r->why};
    mk_scrub_remote_report(b->scrub, &sr);
}

static int scrub_remote_check(void *arg, const uint8_t topic_id[16], int32_t partition, int64_t rate)
{
    mk_broker_t *b = arg;
    return b->tier ? mk_tier_check(b->tier, topic_id, partition, rate, tier_check_report, b) : MK_ERR_STATE;
}

static void scrub_remote_cancel(void *arg)
{
    mk_broker_t *b = arg;
    if (b->tier)
        mk_tier_check_cancel(b->tier);
}

int mk_broker_tier_start(mk_broker_t *b, const mk_tier_target_t *target, const char *data_dir)
{
    mk_tier_hooks_t h = {b, tier_stable, tier_aborted, tier_producers, tier_progress};
    int rc = mk_tier_new(b->loop, b->c, b->writer, target, &h, data_dir, &b->tier);
    if (rc == 0 && b->repl)
        mk_repl_set_rebuild_cb(b->repl, tier_rebuild, b);
    if (rc == 0 && b->scrub) {
        mk_scrub_remote_hook_t hook = {scrub_remote_check, scrub_remote_cancel, b};
        mk_scrub_set_remote_hook(b->scrub, &hook);
    }
    return rc;
}

mk_tier_t *mk_broker_tier(mk_broker_t *b) { return b->tier; }

void mk_broker_free(mk_broker_t *b)
{
    if (!b)
        return;
    b->closing = true;
    if (b->c)
        mk_cluster_set_config_cb(b->c, NULL, NULL);
    mk_broker_req_close(b);
    /* Tiering observes the writer and calls into txn: it goes first. */
    if (b->repl)
        mk_repl_set_rebuild_cb(b->repl, NULL, NULL);
    if (b->scrub)
        mk_scrub_set_remote_hook(b->scrub, NULL); /* cancels a remote check while tier is there */
    mk_tier_free(b->tier);
    b->tier = NULL;
    mk_scrub_free(b->scrub);
    b->scrub = NULL;
    mk_broker_throttle_close(b);
    mk_txn_free(b->txn);
    b->txn = NULL;
    mk_group_coord_free(b->groups);
    b->groups = NULL;
    mk_repl_free(b->repl);
    b->repl = NULL;
    mk_partition_writer_free(b->writer);
    b->writer = NULL;
    mk_log_io_close();
    /* Connections outlive the layer until the cluster closes its listeners:
     * detach their sessions (close_cb then finds no broker to unlink from). */
    for (mk_session_t *s = b->sessions, *next; s; s = next) {
        next = s->next;
        s->prev = s->next = NULL;
        s->b = NULL;
    }
    b->sessions = NULL;
    mk_tenant_registry_close(b->tenants);
    b->tenants = NULL;
    mk_quota_registry_close(b->quotas);
    b->quotas = NULL;
    mk_broker_limits_free(b);
    mk_free(b);
}
