/*
 * throttle.c -- quota enforcement: what each tenant uses on each broker, the
 * limits that apply there, and KIP-219 throttling of the answers.
 *
 * Measures (loop thread, cheap on the data path).  Per tenant per broker
 * (qb_t): bytes produced (the Produce request's size, as Kafka counts it),
 * bytes fetched (the records of the Fetch answer) and request time (loop
 * time spent on the tenant's requests, in % of one thread: a handler's run,
 * a parked request's re-checks, the answer's encoding; never the time a
 * request waits parked for acks=all or a Fetch's MaxWaitMs).  Each is a
 * windowed rate of quota.window.num windows of quota.window.size.seconds
 * (quota/measure.c).  Per quota entity (KIP-546 user / client-id limits)
 * there is one more rate per broker, keyed by the client's user and/or
 * client id as far as the matched entity names them, so that the clients
 * one limit covers share it, as Kafka's sensors do; that map is bounded
 * (MAX_SENSORS) and idle entries expire.
 *
 * Limits.  A tenant-wide producer_byte_rate, consumer_byte_rate or
 * request_percentage is split over the brokers that lead the tenant's
 * partitions (and any other broker it uses) by the coordinator tick, every
 * second, by use (mk_quota_split with a small floor): each broker keeps what
 * it uses, and the rest of the limit goes to the brokers that want more, so
 * a tenant whose load sits on one broker gets nearly all of its quota there.
 * What a broker wants is its rate scaled up by the part of the last second
 * the tenant's connections spent muted there (smoothed over ticks).  A broker with
 * minikora.broker.quota.{bytes.in,bytes.out}.per.sec or
 * .request.percentage set, and more demand than that, scales every tenant's
 * allowance with mk_quota_scale (tenants with a quota in proportion to it,
 * the others share what is left).  Entity limits apply per client per
 * broker, as in Kafka.  A request's throttle time is the largest of those
 * that apply: Kafka's (rate - limit) / limit x the measured span (longer in
 * a measure's first seconds, see rate_throttle), capped at one window as
 * Kafka caps it; and for byte rates the time a token bucket at the limit,
 * with a burst of one window, needs to pay back what was taken in
 * (bucket_charge: a client cannot save up more than one window of quota,
 * however long it was idle or muted).
 *
 * Enforcement (req.c calls mk_broker_throttle_response once per answer):
 * the throttle time goes in the answer's ThrottleTimeMs.  A Produce is
 * appended first and answered at once; a Fetch from a client already over
 * its fetch quota is answered at once with no records (not counted), and
 * one that takes it over gets its records and the throttle time (see
 * mk_broker_throttle_response); other requests are answered normally.  A
 * CreateTopics or DeleteTopics over controller_mutation_rate (quotas.c,
 * KIP-599) comes with the throttle time its handler set, and is throttled
 * the same way when that time is the longer.  Then, for a client that
 * throttles itself at that version (the table below, Kafka's
 * shouldClientThrottle), the connection is muted for the throttle time
 * (mk_net_conn_mute: nothing read, no frame handled); for an older client
 * the answer itself is held that long.  Each throttled answer is counted
 * for its tenant, by the quota whose time was the longest
 * (mk_broker_quota_use: the admin API, /metrics, the throttle events).
 *
 * Threads: the loop thread.
 */
#include "broker/broker_int.h"
#include "partition/partition.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QMAX_BROKERS 64       /* broker ids 1..64 (cluster.c allocates 64) */
#define NKEYS 3               /* the measured keys, which are the first three of quota.h */
#define K_PRODUCE MK_QUOTA_PRODUCER_BYTE_RATE
#define K_FETCH MK_QUOTA_CONSUMER_BYTE_RATE
#define K_REQUEST MK_QUOTA_REQUEST_PERCENTAGE
#define TICK_MS 1000
/* Each broker of a split gets at least this share of the limit over the
 * brokers: enough for a broker that starts being used to be measured. */
#define FLOOR_FRAC 0.05
#define MAX_SENSORS 4096
#define SENSOR_IDLE_MS (10 * 60 * 1000)

_Static_assert(K_PRODUCE == 0 && K_FETCH == 1 && K_REQUEST == 2, "measured keys are quota.h's first three");

/* ===================================================================== state */

/* One tenant on one broker. */
typedef struct qb_s {
    mk_quota_rate_t rate[NKEYS];
    /* Byte rates are also metered by a token bucket at the limit here with
     * a burst of one window (bucket_charge()); bucket_on: it has a limit. */
    mk_quota_bucket_t bucket[NKEYS];
    bool bucket_on[NKEYS];
    double share[NKEYS];           /* its part of the tenant-wide limit here (0: no limit) */
    double cap[NKEYS];             /* a saturated broker's allowance (0: none) */
    double demand[NKEYS];          /* smoothed demand estimate (demand_update(), each tick) */
    /* Time its connections here spent muted: the mutes given form intervals
     * that only ever extend mute_until_ms, so their union is muted_total_ms
     * of which what lies after now has not passed yet. */
    int64_t mute_until_ms;
    double muted_total_ms;
    double muted_seen_ms;          /* muted time passed at the last tick */
} qb_t;

/* One tenant. */
typedef struct mk_qt_s {
    char id[MK_TENANT_ID_MAX + 1];
    int refs;                      /* sessions holding it */
    qb_t *on[QMAX_BROKERS];        /* by broker id - 1; NULL until used or planned */
    uint64_t leaders;              /* brokers leading its partitions (bit id - 1), at the last split */
    double outside[NKEYS];         /* the share on a broker outside the split */
    uint64_t throttle_ms_total, throttled;
    uint64_t by_key_ms[MK_QUOTA__COUNT], by_key_n[MK_QUOTA__COUNT]; /* the same by the quota that set it */
    uint32_t minute_ms[60];        /* throttle ms given in each of the last 60 seconds */
    int64_t minute_sec[60];
} mk_qt_t;

/* A quota entity's rate on one broker. */
typedef struct sensor_s {
    mk_quota_rate_t rate;
    mk_quota_bucket_t bucket;      /* byte rates only, as qb_t's */
    bool bucket_on;
    int64_t last_ms;
} sensor_t;

/* A session's view: its tenant's measures, and the entity limits for its
 * user and client id, cached per registry version. */
struct mk_qsess_s {
    mk_qt_t *qt;
    const mk_tenant_t *tenant;     /* the tenant qt was resolved for */
    uint64_t version;              /* registry version of the entity cache; UINT64_MAX: none */
    char *client;                  /* owned: the client id the cache is for */
    double elimit[NKEYS];
    char *sensor[NKEYS];           /* owned keys into mk_qos_t.sensors, NULL without a limit */
};

struct mk_qos_s {
    mk_broker_t *b;
    uv_timer_t *tick;              /* owned; freed in its close callback */
    int windows;
    int64_t window_ms;
    double bcap[QMAX_BROKERS][NKEYS]; /* broker-wide capacity, by broker id - 1 (0: none);
                                         minikora.broker.quota.*, dynamic (mk_broker_throttle_reconfig) */
    mk_map_t tenants;              /* id -> owned mk_qt_t* */
    mk_map_t sensors;              /* "<broker>|<key>|<tenant>|<len>:<user>|<len>:<client id>" -> owned sensor_t* */
    uint64_t version;              /* registry version the shares are for */
    int topics;                    /* topic count the shares are for */
    bool dirty;                    /* recompute the shares before the next use */
    int64_t last_tick_ms;
};

static mk_quota_registry_t *registry(mk_qos_t *q) { return q->b->quotas; }

static int64_t max_throttle_ms(const mk_qos_t *q, int key)
{
    /* Kafka bounds a windowed rate's throttle time by one window (its
     * ClientQuotaManager does so for byte rates and request time alike).  A
     * longer mute would let the windows empty meanwhile, and the client
     * would come back with the whole span's quota to spend at once. */
    (void)key;
    return q->window_ms;
}

static qb_t *qb_of(mk_qos_t *q, mk_qt_t *qt, int32_t broker)
{
    if (broker < 1 || broker > QMAX_BROKERS)
        return NULL;
    qb_t *qb = qt->on[broker - 1];
    if (qb)
        return qb;
    qb = mk_calloc(1, sizeof(*qb));
    if (!qb)
        return NULL;
    for (int k = 0; k < NKEYS; k++) {
        mk_quota_rate_init(&qb->rate[k], q->windows, q->window_ms);
        qb->share[k] = qt->outside[k];
    }
    qt->on[broker - 1] = qb;
    return qb;
}

static void qt_free(mk_qt_t *qt)
{
    for (int i = 0; i < QMAX_BROKERS; i++)
        mk_free(qt->on[i]);
    mk_free(qt);
}

static mk_qt_t *qt_get(mk_qos_t *q, const char *id)
{
    mk_qt_t *qt = mk_map_get(&q->tenants, id);
    if (qt)
        return qt;
    qt = mk_calloc(1, sizeof(*qt));
    if (!qt)
        return NULL;
    snprintf(qt->id, sizeof(qt->id), "%s", id);
    if (mk_map_put(&q->tenants, id, qt) < 0) {
        mk_free(qt);
        return NULL;
    }
    q->dirty = true; /* its shares, if it has limits */
    return qt;
}

/* The session's tenant measures, following a change of tenant (SASL). */
static mk_qt_t *sess_qt(mk_qos_t *q, mk_session_t *s)
{
    if (!s->q) {
        s->q = mk_calloc(1, sizeof(*s->q));
        if (!s->q)
            return NULL;
        s->q->version = UINT64_MAX;
    }
    mk_qsess_t *qs = s->q;
    if (qs->tenant == s->tenant && qs->qt)
        return qs->qt;
    if (qs->qt)
        qs->qt->refs--;
    qs->qt = qt_get(q, s->tenant->id);
    qs->tenant = s->tenant;
    qs->version = UINT64_MAX; /* another tenant: other entity limits */
    if (qs->qt)
        qs->qt->refs++;
    return qs->qt;
}

void mk_broker_throttle_session_close(mk_session_t *s)
{
    mk_qsess_t *qs = s->q;
    if (!qs)
        return;
    if (qs->qt)
        qs->qt->refs--;
    mk_free(qs->client);
    for (int k = 0; k < NKEYS; k++)
        mk_free(qs->sensor[k]);
    mk_free(qs);
    s->q = NULL;
}

/* ============================================================ entity limits */

/* Drop idle sensors; when still full, the least recently used one. */
static void sensors_sweep(mk_qos_t *q, int64_t now, bool make_room)
{
    const char *k, *oldest_k = NULL;
    void *v;
    int64_t oldest = INT64_MAX;
    for (size_t it = 0; mk_map_next(&q->sensors, &it, &k, &v);) {
        sensor_t *se = v;
        if (now - se->last_ms > SENSOR_IDLE_MS) {
            mk_free(mk_map_del(&q->sensors, k));
            continue;
        }
        if (se->last_ms < oldest) {
            oldest = se->last_ms;
            oldest_k = k;
        }
    }
    if (make_room && q->sensors.count >= MAX_SENSORS && oldest_k)
        mk_free(mk_map_del(&q->sensors, oldest_k));
}

static sensor_t *sensor_get(mk_qos_t *q, const char *key, int64_t now)
{
    sensor_t *se = mk_map_get(&q->sensors, key);
    if (!se) {
        if (q->sensors.count >= MAX_SENSORS)
            sensors_sweep(q, now, true);
        se = mk_calloc(1, sizeof(*se));
        if (!se)
            return NULL;
        mk_quota_rate_init(&se->rate, q->windows, q->window_ms);
        if (mk_map_put(&q->sensors, key, se) < 0) {
            mk_free(se);
            return NULL;
        }
    }
    se->last_ms = now;
    return se;
}

/* Refresh the session's entity limits when the registry or the client id
 * changed. */
static void sess_entities(mk_qos_t *q, mk_session_t *s, mk_req_t *req)
{
    mk_qsess_t *qs = s->q;
    const char *client = req->hdr.ClientId.ptr ? req->hdr.ClientId.ptr : "";
    uint64_t v = mk_quota_version(registry(q));
    if (qs->version == v && qs->client && strcmp(qs->client, client) == 0)
        return;
    qs->version = v;
    mk_free(qs->client);
    qs->client = mk_strdup(client);
    /* Kafka's user is the principal's name: the API key, or ANONYMOUS. */
    const char *user = s->key[0] ? s->key : "ANONYMOUS";
    for (int k = 0; k < NKEYS; k++) {
        bool by_user = false, by_client = false;
        mk_free(qs->sensor[k]);
        qs->sensor[k] = NULL;
        qs->elimit[k] = mk_quota_client_match(registry(q), s->tenant->id, user, client, k, &by_user, &by_client);
        if (qs->elimit[k] <= 0)
            continue;
        /* One measure per matched entity as the client fills it in: a limit
         * on user alice (or on <default> user, for each user apart) is
         * shared by all of that user's clients on this broker. */
        const char *u = by_user ? user : "", *c = by_client ? client : "";
        size_t n = strlen(u) + strlen(c) + strlen(s->tenant->id) + 64;
        qs->sensor[k] = mk_malloc(n);
        if (qs->sensor[k])
            snprintf(qs->sensor[k], n, "%d|%d|%s|%zu:%s|%zu:%s", (int)req->node->id, k, s->tenant->id, strlen(u), u,
                     strlen(c), c);
        else
            qs->elimit[k] = 0;
    }
    if (!qs->client)
        qs->version = UINT64_MAX;
}

/* ==================================================================== shares */

/* The owner of an internal name: the text before its first '~' (tenant.h),
 * the default tenant when there is none or it is empty. */
static void owner_of(const char *internal, char *id, size_t cap)
{
    const char *t = strchr(internal, '~');
    size_t n = t ? (size_t)(t - internal) : 0;
    if (n == 0 || n >= cap)
        snprintf(id, cap, "default");
    else
        snprintf(id, cap, "%.*s", (int)n, internal);
}

/* Muted time of the tenant's connections on this broker that has passed. */
static double muted_passed(const qb_t *qb, int64_t now)
{
    double ahead = qb->mute_until_ms > now ? (double)(qb->mute_until_ms - now) : 0;
    return qb->muted_total_ms - ahead;
}

/* A mute of ms from now given to one of the tenant's connections here. */
static void note_mute(qb_t *qb, int64_t now, int64_t ms)
{
    int64_t from = qb->mute_until_ms > now ? qb->mute_until_ms : now, until = now + ms;
    if (until > from) {
        qb->muted_total_ms += (double)(until - from);
        qb->mute_until_ms = until;
    }
}

/* The tick's estimate of what the tenant would use on a broker if not held
 * back: its rate, scaled up by the part of the last tick its connections
 * spent muted there (a client muted half the time would send about twice
 * as much), smoothed over ticks so that shares move steadily: when a share
 * moves, bytes measured under the old one still count in the window. */
static void demand_update(qb_t *qb, int64_t now, double elapsed_ms)
{
    double passed = muted_passed(qb, now);
    double f = elapsed_ms > 0 ? (passed - qb->muted_seen_ms) / elapsed_ms : 0;
    qb->muted_seen_ms = passed;
    f = f < 0 ? 0 : f > 0.9 ? 0.9 : f;
    for (int k = 0; k < NKEYS; k++) {
        double d = mk_quota_rate_get(&qb->rate[k], now) / (1 - f);
        qb->demand[k] = qb->demand[k] > 0 ? 0.5 * qb->demand[k] + 0.5 * d : d;
    }
}

/* Split each tenant-wide limit over brokers, then scale the allowances of
 * saturated brokers.  The coordinator's work: every tick, and before the
 * next request after the limits changed. */
static void shares_compute(mk_qos_t *q, int64_t now, bool tick)
{
    mk_cluster_t *c = q->b->c;
    q->version = mk_quota_version(registry(q));
    q->topics = mk_cluster_topic_count(c);
    q->dirty = false;
    double elapsed = q->last_tick_ms ? (double)(now - q->last_tick_ms) : TICK_MS;
    if (elapsed < 1)
        elapsed = 1;

    const char *k;
    void *v;
    if (tick) {
        for (size_t it = 0; mk_map_next(&q->tenants, &it, &k, &v);)
            for (int i = 0; i < QMAX_BROKERS; i++)
                if (((mk_qt_t *)v)->on[i])
                    demand_update(((mk_qt_t *)v)->on[i], now, elapsed);
        q->last_tick_ms = now;
    }
    for (size_t it = 0; mk_map_next(&q->tenants, &it, &k, &v);)
        ((mk_qt_t *)v)->leaders = 0;
    size_t ti = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(c, &ti))) {
        char id[MK_TENANT_ID_MAX + 1];
        owner_of(t->name, id, sizeof(id));
        mk_qt_t *qt = mk_map_get(&q->tenants, id);
        if (!qt)
            continue;
        for (int32_t i = 0; i < t->partition_count; i++) {
            int32_t l = mk_partition_leader(mk_cluster_topic_partition(t, i));
            if (l >= 1 && l <= QMAX_BROKERS)
                qt->leaders |= 1ull << (l - 1);
        }
    }
    uint64_t running = 0;
    for (int i = 0; i < mk_cluster_broker_count(c); i++) {
        mk_cluster_broker_t *br = mk_cluster_broker_at(c, i);
        if (br->running && br->id >= 1 && br->id <= QMAX_BROKERS)
            running |= 1ull << (br->id - 1);
    }

    /* The split of each tenant-wide limit. */
    for (size_t it = 0; mk_map_next(&q->tenants, &it, &k, &v);) {
        mk_qt_t *qt = v;
        const mk_quota_limits_t *lim = mk_quota_tenant(registry(q), qt->id);
        for (int key = 0; key < NKEYS; key++) {
            double limit = mk_quota_limit(lim, key);
            qt->outside[key] = 0;
            if (limit <= 0) {
                for (int i = 0; i < QMAX_BROKERS; i++)
                    if (qt->on[i])
                        qt->on[i]->share[key] = 0;
                continue;
            }
            uint64_t set = qt->leaders & running;
            for (int i = 0; i < QMAX_BROKERS; i++)
                if (qt->on[i] && mk_quota_rate_get(&qt->on[i]->rate[key], now) > 0)
                    set |= 1ull << i;
            if (!set)
                set = running;
            int ids[QMAX_BROKERS], n = 0;
            double rate[QMAX_BROKERS], want[QMAX_BROKERS], use[QMAX_BROKERS], out[QMAX_BROKERS];
            double used = 0, wanted = 0;
            for (int i = 0; i < QMAX_BROKERS; i++) {
                if (!(set >> i & 1))
                    continue;
                qb_t *qb = qb_of(q, qt, i + 1);
                if (!qb)
                    continue;
                ids[n] = i;
                rate[n] = mk_quota_rate_get(&qb->rate[key], now);
                want[n] = qb->demand[key] > rate[n] ? qb->demand[key] - rate[n] : 0;
                used += rate[n];
                wanted += want[n];
                n++;
            }
            if (n == 0)
                continue;
            /* What a broker has used is spent there (it stays in its window):
             * only the rest of the limit moves, towards the brokers that want
             * more.  Moving spent quota would let a tenant use it twice. */
            double rest = limit * (1 - FLOOR_FRAC) - used;
            for (int j = 0; j < n; j++)
                use[j] = rest <= 0 ? rate[j]
                         : rate[j] + (wanted > 0 ? rest * want[j] / wanted : used > 0 ? rest * rate[j] / used : rest / n);
            mk_quota_split(use, n, limit, FLOOR_FRAC, out);
            /* No broker the tenant uses starves: a share far below an even
             * one turns one answer into seconds of throttle, which keeps its
             * use, and so its next share, low.  Each broker with use or
             * demand gets at least half of an even share among those; the
             * shares are scaled back to sum to the limit.  (Idle leaders get
             * no such minimum: a tenant whose load sits on one broker still
             * gets nearly all of its quota there.) */
            int busy = 0;
            for (int j = 0; j < n; j++)
                busy += rate[j] > 0 || want[j] > 0;
            double min_each = busy ? limit / (2.0 * busy) : 0, sum = 0;
            for (int j = 0; j < n; j++) {
                if ((rate[j] > 0 || want[j] > 0) && out[j] < min_each)
                    out[j] = min_each;
                sum += out[j];
            }
            for (int j = 0; sum > limit && j < n; j++)
                out[j] *= limit / sum;
            qt->outside[key] = limit * FLOOR_FRAC / n;
            for (int i = 0; i < QMAX_BROKERS; i++)
                if (qt->on[i])
                    qt->on[i]->share[key] = qt->outside[key];
            for (int j = 0; j < n; j++)
                qt->on[ids[j]]->share[key] = out[j];
        }
    }

    /* Saturated brokers. */
    size_t nt = q->tenants.count;
    double *quota = nt ? mk_malloc(sizeof(double) * nt * 3) : NULL;
    qb_t **qbs = nt ? mk_malloc(sizeof(qb_t *) * nt) : NULL;
    for (int i = 0; quota && qbs && i < QMAX_BROKERS; i++) {
        for (int key = 0; key < NKEYS; key++) {
            double *dem = quota + nt, *allow = quota + 2 * nt;
            int n = 0;
            for (size_t it = 0; mk_map_next(&q->tenants, &it, &k, &v);) {
                qb_t *qb = ((mk_qt_t *)v)->on[i];
                if (!qb)
                    continue;
                qb->cap[key] = 0;
                if (q->bcap[i][key] <= 0)
                    continue;
                qbs[n] = qb;
                quota[n] = qb->share[key];
                dem[n] = qb->demand[key];
                n++;
            }
            if (n == 0)
                continue;
            mk_quota_scale(quota, dem, n, q->bcap[i][key], allow);
            for (int j = 0; j < n; j++)
                if (allow[j] < dem[j] * 0.999) /* held back: this is its limit here */
                    qbs[j]->cap[key] = allow[j] > 1e-6 ? allow[j] : 1e-6;
        }
    }
    mk_free(quota);
    mk_free(qbs);
}

/* The coordinator: shares every second; idle sensors expire; the measures
 * of a deleted tenant go once no session holds them. */
static void tick_cb(uv_timer_t *h)
{
    mk_qos_t *q = h->data;
    int64_t now = (int64_t)mk_mono_ms();
    shares_compute(q, now, true);
    sensors_sweep(q, now, false);
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&q->tenants, &it, &k, &v);) {
        mk_qt_t *qt = v;
        if (qt->refs == 0 && q->b->tenants && !mk_tenant_find(q->b->tenants, qt->id)) {
            mk_map_del(&q->tenants, k);
            qt_free(qt);
        }
    }
}

/* ================================================================ life cycle */

static double cfg_double(const mk_config_t *cfg, int32_t broker, const char *name)
{
    const char *s = mk_cluster_config_get_for(cfg, broker, name, NULL);
    double x = s ? strtod(s, NULL) : 0;
    return isfinite(x) && x > 0 ? x : 0;
}

void mk_broker_throttle_reconfig(mk_broker_t *b)
{
    mk_qos_t *q = b->qos;
    if (!q)
        return;
    const mk_config_t *cfg = mk_cluster_config(b->c);
    for (int i = 0; i < QMAX_BROKERS; i++) {
        q->bcap[i][K_PRODUCE] = cfg_double(cfg, i + 1, "minikora.broker.quota.bytes.in.per.sec");
        q->bcap[i][K_FETCH] = cfg_double(cfg, i + 1, "minikora.broker.quota.bytes.out.per.sec");
        q->bcap[i][K_REQUEST] = cfg_double(cfg, i + 1, "minikora.broker.quota.request.percentage");
    }
}

int mk_broker_throttle_init(mk_broker_t *b)
{
    mk_qos_t *q = mk_calloc(1, sizeof(*q));
    if (!q)
        return MK_ERR_NOMEM;
    q->b = b;
    const mk_config_t *cfg = mk_cluster_config(b->c);
    q->windows = (int)mk_cluster_config_get_i64(cfg, "quota.window.num");
    q->window_ms = mk_cluster_config_get_i64(cfg, "quota.window.size.seconds") * 1000;
    mk_map_init(&q->tenants);
    mk_map_init(&q->sensors);
    q->version = UINT64_MAX;
    q->tick = mk_malloc(sizeof(*q->tick));
    if (!q->tick) {
        mk_free(q);
        return MK_ERR_NOMEM;
    }
    uv_timer_init(b->loop, q->tick);
    q->tick->data = q;
    uv_timer_start(q->tick, tick_cb, TICK_MS, TICK_MS);
    uv_unref((uv_handle_t *)q->tick);
    b->qos = q;
    mk_broker_throttle_reconfig(b);
    return 0;
}

void mk_broker_throttle_close(mk_broker_t *b)
{
    mk_qos_t *q = b->qos;
    if (!q)
        return;
    /* Sessions outlive the layer (broker.c detaches them): drop their views now. */
    for (mk_session_t *s = b->sessions; s; s = s->next)
        mk_broker_throttle_session_close(s);
    uv_timer_stop(q->tick);
    uv_close((uv_handle_t *)q->tick, (uv_close_cb)mk_free);
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&q->tenants, &it, &k, &v);)
        qt_free(v);
    mk_map_free(&q->tenants);
    for (size_t it = 0; mk_map_next(&q->sensors, &it, &k, &v);)
        mk_free(v);
    mk_map_free(&q->sensors);
    mk_free(q);
    b->qos = NULL;
}

/* ==================================================================== slices */

/* SASL requests are not charged: they come before the tenant is known. */
static bool measured_api(int16_t key) { return key != MK_API_SaslHandshake && key != MK_API_SaslAuthenticate; }

void mk_broker_slice_begin(mk_broker_t *b, mk_broker_slice_t *sl, mk_req_t *req)
{
    memset(sl, 0, sizeof(*sl));
    sl->begin_ns = sl->t0_ns = mk_mono_ns();
    sl->req = req;
    sl->outer = b->slice;
    b->slice = sl;
    if (b->qos && req->sess && req->api && measured_api(req->api->key)) {
        sl->qt = sess_qt(b->qos, req->sess);
        sl->broker = req->node->id;
    }
}

/* Charge the slice's time so far to its tenant and start it again. */
static void slice_flush(mk_broker_t *b, mk_broker_slice_t *sl, uint64_t now_ns)
{
    uint64_t spent = now_ns - sl->t0_ns;
    spent = spent > sl->nested_ns ? spent - sl->nested_ns : 0;
    sl->t0_ns = now_ns;
    sl->nested_ns = 0;
    qb_t *qb = sl->qt && b->qos ? qb_of(b->qos, sl->qt, sl->broker) : NULL;
    if (qb && spent)
        /* ns -> % of one thread over a second: ns x 100 / 1e9 per second */
        mk_quota_rate_record(&qb->rate[K_REQUEST], (int64_t)(now_ns / 1000000), (double)spent * 1e-7);
}

void mk_broker_slice_end(mk_broker_t *b, mk_broker_slice_t *sl)
{
    uint64_t now = mk_mono_ns();
    slice_flush(b, sl, now);
    b->slice = sl->outer;
    if (sl->outer)
        sl->outer->nested_ns += now - sl->begin_ns;
}

/* ================================================================ throttling */

/* Kafka's AbstractResponse.shouldClientThrottle, as of Apache Kafka 3.9:
 * from which version a client throttles itself on a nonzero ThrottleTimeMs
 * (KIP-219).  The APIs of KIP-219's time throttle from the version that
 * brought it; some later ones from version 0.  Every API not listed (among
 * them OffsetForLeaderEpoch, DescribeCluster, DescribeProducers,
 * DescribeTransactions, ListTransactions, DescribeClientQuotas and
 * AlterClientQuotas, whose responses do not override it) never does: the
 * broker holds the answer instead.  The one table of this rule. */
static const struct {
    int16_t key, from;
} client_throttles[] = {
    {MK_API_Produce, 6},
    {MK_API_Fetch, 8},
    {MK_API_ListOffsets, 3},
    {MK_API_Metadata, 6},
    {MK_API_OffsetCommit, 4},
    {MK_API_OffsetFetch, 4},
    {MK_API_FindCoordinator, 2},
    {MK_API_JoinGroup, 3},
    {MK_API_Heartbeat, 2},
    {MK_API_LeaveGroup, 2},
    {MK_API_SyncGroup, 2},
    {MK_API_DescribeGroups, 2},
    {MK_API_ListGroups, 2},
    {MK_API_ApiVersions, 2},
    {MK_API_CreateTopics, 3},
    {MK_API_DeleteTopics, 2},
    {MK_API_DeleteRecords, 1},
    {MK_API_InitProducerId, 1},
    {MK_API_AddPartitionsToTxn, 1},
    {MK_API_AddOffsetsToTxn, 1},
    {MK_API_EndTxn, 1},
    {MK_API_TxnOffsetCommit, 1},
    {MK_API_DescribeAcls, 1},
    {MK_API_CreateAcls, 1},
    {MK_API_DeleteAcls, 1},
    {MK_API_DescribeConfigs, 2},
    {MK_API_AlterConfigs, 1},
    {MK_API_AlterReplicaLogDirs, 1},
    {MK_API_DescribeLogDirs, 1},
    {MK_API_CreatePartitions, 1},
    {MK_API_CreateDelegationToken, 1},
    {MK_API_RenewDelegationToken, 1},
    {MK_API_ExpireDelegationToken, 1},
    {MK_API_DescribeDelegationToken, 1},
    {MK_API_DeleteGroups, 1},
    {MK_API_ElectLeaders, 0},
    {MK_API_IncrementalAlterConfigs, 0},
    {MK_API_AlterPartitionReassignments, 0},
    {MK_API_ListPartitionReassignments, 0},
    {MK_API_OffsetDelete, 0},
    {MK_API_DescribeUserScramCredentials, 0},
    {MK_API_AlterUserScramCredentials, 0},
    {MK_API_DescribeTopicPartitions, 0},
};

bool mk_broker_throttle_client_side(int16_t api_key, int16_t version)
{
    for (size_t i = 0; i < MK_ARRAY_LEN(client_throttles); i++)
        if (client_throttles[i].key == api_key)
            return version >= client_throttles[i].from;
    return false;
}

/* The top-level ThrottleTimeMs of a response at this version, or NULL. */
static int32_t *throttle_field(mk_req_t *req)
{
    const mk_pstruct_t *d = req->api->resp_msg->body;
    for (uint16_t i = 0; i < d->nfields; i++) {
        const mk_pfield_t *f = &d->fields[i];
        if (f->type == MK_PT_INT32 && strcmp(f->name, "ThrottleTimeMs") == 0)
            return req->version >= f->vmin && req->version <= f->vmax ? (int32_t *)((uint8_t *)req->resp + f->offset)
                                                                      : NULL;
    }
    return NULL;
}

/* The limit of key for the tenant on this broker: its share of the
 * tenant-wide limit, or a saturated broker's allowance, the lower. */
static double tenant_limit(const qb_t *qb, int key)
{
    double a = qb->share[key], c = qb->cap[key];
    return a > 0 && c > 0 ? (a < c ? a : c) : a > 0 ? a : c;
}

/* The throttle time of a rate over limit: Kafka's, (rate - limit) / limit x
 * the span measured, except while the span is still padded to n - 1
 * windows (the first seconds of a measure).  Then the rate does not fall as
 * time passes until real time has filled the span, so Kafka's time is too
 * short: the client comes back, its next request is taken and throttled
 * again, and a burst of several requests more than the quota gets through.
 * There the wait is how long until the rate is back at the limit:
 * total / limit - elapsed. */
static int64_t rate_throttle(const mk_quota_rate_t *r, int64_t now, double limit, int64_t max)
{
    int64_t t = mk_quota_rate_throttle_ms(r, now, limit, max);
    if (t <= 0)
        return 0;
    double total = 0;
    int64_t oldest = now;
    for (int i = 0; i < r->n; i++) {
        if (r->start_ms[i] == INT64_MIN || now - r->start_ms[i] >= (int64_t)r->n * r->window_ms)
            continue;
        total += r->sum[i];
        if (r->start_ms[i] < oldest)
            oldest = r->start_ms[i];
    }
    double elapsed = (double)(now - oldest), padded = (double)(r->n - 1) * (double)r->window_ms;
    if (elapsed < padded) {
        double wait = total * 1000.0 / limit - elapsed;
        if (wait > (double)max)
            wait = (double)max;
        if (wait > (double)t)
            t = (int64_t)wait;
    }
    return t;
}

/* A byte-rate bucket (a tenant's on one broker, or an entity's sensor),
 * following the limit in force (a split or a saturated broker's allowance
 * changes a tenant's every tick):
 * refilled at the limit, at most one window of it saved up.  Charges n
 * bytes; returns the bucket's throttle time (0 without a limit).
 *
 * Why a bucket beside Kafka's windows: the windowed rate lets a client that
 * was idle, or muted, for the span spend the whole span's quota (about ten
 * windows) at once, and appending and replicating such a burst holds the
 * other tenants of the cell behind it (issue 11's noisy neighbour).  The
 * bucket keeps the flow at the limit with at most one window ahead.  Its
 * time is the debt over the limit, not capped at a window: the debt is the
 * bytes already taken in, and a bucket does not save up while muted. */
static int64_t bucket_charge(mk_qos_t *q, mk_quota_bucket_t *bk, bool *on, double lim, int64_t now, double n)
{
    if (lim <= 0) {
        *on = false;
        return 0;
    }
    double burst = lim * (double)q->window_ms / 1000.0;
    if (!*on) {
        mk_quota_bucket_init(bk, lim, burst, now);
        *on = true;
    } else if (bk->rate != lim || bk->burst != burst) {
        mk_quota_bucket_set(bk, lim, burst, now);
    }
    if (n > 0)
        mk_quota_bucket_take(bk, now, n);
    int64_t t = mk_quota_bucket_throttle_ms(bk, now);
    int64_t max = q->window_ms * q->windows;
    return t > max ? max : t;
}

/* Throttle time of key: the tenant's measure on this broker (its windowed
 * rate and its bucket), then the entity's, the largest. */
static int64_t key_throttle(mk_qos_t *q, qb_t *qb, sensor_t *se, double elimit, int key, int64_t now)
{
    int64_t t = 0, max = max_throttle_ms(q, key);
    double lim = tenant_limit(qb, key);
    if (lim > 0)
        t = rate_throttle(&qb->rate[key], now, lim, max);
    if (key != K_REQUEST) {
        int64_t tb = bucket_charge(q, &qb->bucket[key], &qb->bucket_on[key], lim, now, 0);
        if (tb > t)
            t = tb;
        if (se) {
            tb = bucket_charge(q, &se->bucket, &se->bucket_on, elimit, now, 0);
            if (tb > t)
                t = tb;
        }
    }
    if (se && elimit > 0) {
        int64_t te = rate_throttle(&se->rate, now, elimit, max);
        if (te > t)
            t = te;
    }
    return t;
}

/* One answer throttled for ms, by the quota key whose time was the longest. */
static void count_throttle(mk_qt_t *qt, int64_t ms, int key, int64_t now)
{
    qt->throttle_ms_total += (uint64_t)ms;
    qt->throttled++;
    qt->by_key_ms[key] += (uint64_t)ms;
    qt->by_key_n[key]++;
    int64_t sec = now / 1000;
    int slot = (int)(sec % 60);
    if (qt->minute_sec[slot] != sec) {
        qt->minute_sec[slot] = sec;
        qt->minute_ms[slot] = 0;
    }
    qt->minute_ms[slot] += (uint32_t)ms;
}

/* Shares are recomputed at once when the limits changed, a tenant appeared
 * or topics came or went (a new topic's leaders are where its tenant's
 * traffic will go); leadership moves wait for the tick. */
static void shares_fresh(mk_qos_t *q, int64_t now)
{
    if (q->dirty || q->version != mk_quota_version(registry(q)) || q->topics != mk_cluster_topic_count(q->b->c))
        shares_compute(q, now, false);
}

bool mk_broker_throttle_fetch_over(mk_req_t *req)
{
    /* Only the fetch quota: request time over quota throttles a Fetch's
     * answer but does not empty it. */
    mk_qos_t *q = req->b->qos;
    mk_session_t *s = req->sess;
    if (!q || !s)
        return false;
    int64_t now = (int64_t)mk_mono_ms();
    mk_qt_t *qt = sess_qt(q, s);
    shares_fresh(q, now);
    qb_t *qb = qt ? qb_of(q, qt, req->node->id) : NULL;
    if (!qb)
        return false;
    sess_entities(q, s, req);
    sensor_t *se = s->q->sensor[K_FETCH] ? mk_map_get(&q->sensors, s->q->sensor[K_FETCH]) : NULL;
    return key_throttle(q, qb, se, s->q->elimit[K_FETCH], K_FETCH, now) > 0;
}

int32_t mk_broker_throttle_response(mk_req_t *req)
{
    mk_broker_t *b = req->b;
    mk_qos_t *q = b->qos;
    mk_session_t *s = req->sess;
    req->quota_done = true;
    if (!q || !s || !req->api || !measured_api(req->api->key))
        return 0;
    /* The time spent on it in this stretch counts before its answer is judged. */
    uint64_t req_ns = 0;
    if (b->slice && b->slice->req == req) {
        uint64_t now_ns = mk_mono_ns();
        req_ns = now_ns - b->slice->t0_ns;
        req_ns = req_ns > b->slice->nested_ns ? req_ns - b->slice->nested_ns : 0;
        slice_flush(b, b->slice, now_ns);
    }
    int64_t now = (int64_t)mk_mono_ms();
    mk_qt_t *qt = sess_qt(q, s);
    shares_fresh(q, now);
    qb_t *qb = qt ? qb_of(q, qt, req->node->id) : NULL;
    if (!qb)
        return 0;
    sess_entities(q, s, req);
    mk_qsess_t *qs = s->q;

    int16_t api = req->api->key;
    double v[NKEYS] = {0};
    v[K_REQUEST] = (double)req_ns * 1e-7;
    sensor_t *se[NKEYS] = {0};
    for (int key = 0; key < NKEYS; key++)
        if (qs->sensor[key])
            se[key] = sensor_get(q, qs->sensor[key], now);
    int64_t t = 0;
    int why = -1; /* the key whose throttle time is t */
    if (api == MK_API_Produce) {
        v[K_PRODUCE] = (double)req->frame_len;
    } else if (api == MK_API_Fetch) {
        /* A Fetch from a client already over its fetch quota here carries no
         * records, and they are not counted (KIP-219).  One that only takes
         * it over is answered with its records and a throttle time, as a
         * Produce is: Kafka would drop it too, but a tenant's quota here is
         * split over brokers, and a share smaller than one answer would then
         * never let a record through. */
        t = key_throttle(q, qb, se[K_FETCH], qs->elimit[K_FETCH], K_FETCH, now);
        why = K_FETCH;
        if (t > 0) {
            mk_FetchResponse_t *r = req->resp;
            r->Responses.count = 0;
            r->NodeEndpoints.count = 0;
        } else {
            v[K_FETCH] = (double)req->data.len;
        }
    }
    for (int key = 0; key < NKEYS; key++) {
        if (key != K_REQUEST && v[key] > 0) {
            mk_quota_rate_record(&qb->rate[key], now, v[key]);
            bucket_charge(q, &qb->bucket[key], &qb->bucket_on[key], tenant_limit(qb, key), now, v[key]);
        }
        if (se[key] && v[key] > 0) {
            mk_quota_rate_record(&se[key]->rate, now, v[key]);
            if (key != K_REQUEST)
                bucket_charge(q, &se[key]->bucket, &se[key]->bucket_on, qs->elimit[key], now, v[key]);
        }
    }
    for (int key = 0; key < NKEYS; key++) {
        if ((key == K_PRODUCE && api != MK_API_Produce) || (key == K_FETCH && api != MK_API_Fetch))
            continue;
        int64_t tk = key_throttle(q, qb, se[key], qs->elimit[key], key, now);
        if (tk > t) {
            t = tk;
            why = key;
        }
    }
    if (t > INT32_MAX)
        t = INT32_MAX;
    /* A throttle time the handler already set (quotas.c: a partition
     * mutation over controller_mutation_rate, KIP-599) is kept when it is
     * longer, and then it is the one that mutes the connection (or delays
     * an old client's answer), as Kafka's controller mutation quota does. */
    int32_t *field = throttle_field(req);
    int64_t rate_t = t;
    if (field && *field > t) {
        t = *field;
        why = MK_QUOTA_CONTROLLER_MUTATION_RATE;
    }
    if (t <= 0)
        return 0;
    if (why < 0)
        why = K_REQUEST; /* not reached: every nonzero t above names its key */
    if (field)
        *field = (int32_t)t;
    count_throttle(qt, t, why, now);
    /* Only a byte-rate or request-time throttle tells the split where the
     * tenant was held back. */
    if (rate_t > 0)
        note_mute(qb, now, rate_t);
    return (int32_t)t;
}

/* ============================================================ for admin/ */

void mk_broker_quota_use(mk_broker_t *b, const char *tenant, mk_broker_quota_use_t *out)
{
    memset(out, 0, sizeof(*out));
    mk_qos_t *q = b->qos;
    mk_qt_t *qt = q ? mk_map_get(&q->tenants, tenant) : NULL;
    if (!qt)
        return;
    int64_t now = (int64_t)mk_mono_ms();
    for (int i = 0; i < QMAX_BROKERS; i++)
        for (int k = 0; qt->on[i] && k < NKEYS; k++)
            out->rate[k] += mk_quota_rate_get(&qt->on[i]->rate[k], now);
    out->throttle_ms_total = qt->throttle_ms_total;
    out->throttled = qt->throttled;
    memcpy(out->throttle_ms_by, qt->by_key_ms, sizeof(out->throttle_ms_by));
    memcpy(out->throttled_by, qt->by_key_n, sizeof(out->throttled_by));
    int64_t sec = now / 1000;
    for (int i = 0; i < 60; i++)
        if (sec - qt->minute_sec[i] < 60)
            out->throttle_ms_minute += qt->minute_ms[i];
}

int mk_broker_quota_each_broker(mk_broker_t *b, const char *tenant, mk_broker_quota_broker_cb cb, void *arg)
{
    mk_qos_t *q = b->qos;
    mk_qt_t *qt = q ? mk_map_get(&q->tenants, tenant) : NULL;
    if (!qt)
        return 0;
    int64_t now = (int64_t)mk_mono_ms();
    for (int i = 0; i < QMAX_BROKERS; i++) {
        qb_t *qb = qt->on[i];
        if (!qb)
            continue;
        mk_broker_quota_broker_t o = {.broker = i + 1};
        for (int k = 0; k < NKEYS; k++) {
            o.rate[k] = mk_quota_rate_get(&qb->rate[k], now);
            o.share[k] = qb->share[k];
            o.cap[k] = qb->cap[k];
        }
        int rc = cb(&o, arg);
        if (rc)
            return rc;
    }
    return 0;
}
