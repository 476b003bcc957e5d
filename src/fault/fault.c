/*
 * fault.c -- the registry of injected faults (fault.h).
 *
 * A small table of active faults under one mutex, oldest first, with an
 * atomic count beside it so that the I/O paths that ask on every operation
 * pay one atomic load while nothing is injected.  Ids grow from 1 and are
 * never reused in a process.  Observers are called after the mutex is
 * released, with a copy of the fault, so an observer may query (or even
 * change) the registry.
 */
#include "fault/fault.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static const char *const type_names[MK_FAULT_TYPE_END] = {
    [MK_FAULT_DISK_STALL] = "disk-stall",       [MK_FAULT_DISK_SLOW] = "disk-slow",
    [MK_FAULT_DISK_ERROR] = "disk-error",       [MK_FAULT_CORRUPT] = "corrupt",
    [MK_FAULT_S3_DOWN] = "s3-down",             [MK_FAULT_S3_SLOW] = "s3-slow",
    [MK_FAULT_S3_ERROR] = "s3-error",           [MK_FAULT_NET_PARTITION] = "net-partition",
    [MK_FAULT_BROKER_SLOW] = "broker-slow",     [MK_FAULT_CRASH] = "crash",
    [MK_FAULT_AZ_DOWN] = "az-down",
};

typedef struct observer_s {
    mk_fault_cb cb;
    void *arg;
} observer_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static mk_fault_t table[MK_FAULT_MAX_ACTIVE];
static size_t nactive;            /* guarded by mu; mirrored in active_hint */
static int active_hint;           /* atomic: nactive, for the lock-free fast path */
static uint64_t next_id = 1;
static uint64_t injected[MK_FAULT_TYPE_END];
static observer_t observers[8];
static int nobservers;

/* ================================================================= names */

const char *mk_fault_type_name(int type)
{
    return type > 0 && type < MK_FAULT_TYPE_END ? type_names[type] : NULL;
}

int mk_fault_type_parse(const char *s)
{
    for (int t = 1; s && t < MK_FAULT_TYPE_END; t++)
        if (strcmp(s, type_names[t]) == 0)
            return t;
    return 0;
}

int mk_fault_ops_parse(const char *s)
{
    if (!s)
        return 0;
    if (strcmp(s, "writes") == 0)
        return MK_FAULT_OPS_WRITES;
    if (strcmp(s, "reads") == 0)
        return MK_FAULT_OPS_READS;
    if (strcmp(s, "fsync") == 0)
        return MK_FAULT_OPS_FSYNC;
    if (strcmp(s, "all") == 0)
        return MK_FAULT_OPS_ALL;
    return 0;
}

const char *mk_fault_ops_name(int ops)
{
    switch (ops) {
    case MK_FAULT_OPS_WRITES: return "writes";
    case MK_FAULT_OPS_READS: return "reads";
    case MK_FAULT_OPS_FSYNC: return "fsync";
    default: return "all";
    }
}

void mk_fault_spec_init(mk_fault_spec_t *s, int type)
{
    memset(s, 0, sizeof(*s));
    s->type = type;
    s->broker = -1;
    s->partition = -1;
    snprintf(s->source, sizeof(s->source), "lib");
}

/* ================================================================ checks */

static bool needs_broker(int t)
{
    return t == MK_FAULT_DISK_STALL || t == MK_FAULT_DISK_SLOW || t == MK_FAULT_DISK_ERROR ||
           t == MK_FAULT_BROKER_SLOW || t == MK_FAULT_CRASH;
}

static bool needs_delay(int t) { return t == MK_FAULT_DISK_SLOW || t == MK_FAULT_BROKER_SLOW || t == MK_FAULT_S3_SLOW; }

int mk_fault_spec_check(const mk_fault_spec_t *s, char *why, size_t n)
{
    const char *name = mk_fault_type_name(s->type);
    if (!name) {
        snprintf(why, n, "unknown fault type");
        return MK_ERR_INVALID;
    }
    if (needs_broker(s->type) && s->broker < 0) {
        snprintf(why, n, "%s needs \"broker\"", name);
        return MK_ERR_INVALID;
    }
    if (s->broker != -1 && (s->broker < 1 || s->broker > 1000)) {
        snprintf(why, n, "\"broker\" must be a broker id (1..1000)");
        return MK_ERR_INVALID;
    }
    if ((s->type == MK_FAULT_NET_PARTITION || s->type == MK_FAULT_AZ_DOWN) && !s->az[0]) {
        snprintf(why, n, "%s needs \"az\"", name);
        return MK_ERR_INVALID;
    }
    if (needs_delay(s->type) && (s->delay_ms < 1 || s->delay_ms > MK_FAULT_MAX_DELAY_MS)) {
        snprintf(why, n, "%s needs \"delay_ms\" between 1 and %d", name, MK_FAULT_MAX_DELAY_MS);
        return MK_ERR_INVALID;
    }
    if (!needs_delay(s->type) && s->delay_ms != 0) {
        snprintf(why, n, "\"delay_ms\" does not apply to %s", name);
        return MK_ERR_INVALID;
    }
    if (s->ops < 0 || s->ops > MK_FAULT_OPS_ALL || (s->ops && s->type != MK_FAULT_DISK_ERROR)) {
        snprintf(why, n, "\"ops\" applies to disk-error only (writes, reads, fsync or all)");
        return MK_ERR_INVALID;
    }
    if (s->duration_ms < 0 || s->duration_ms > MK_FAULT_MAX_DURATION_MS) {
        snprintf(why, n, "\"duration_ms\" must be between 0 (until cleared) and %lld",
                 (long long)MK_FAULT_MAX_DURATION_MS);
        return MK_ERR_INVALID;
    }
    if (s->partition < -1 || (s->partition >= 0 && s->type != MK_FAULT_CORRUPT)) {
        snprintf(why, n, "\"partition\" applies to corrupt only, and is >= 0");
        return MK_ERR_INVALID;
    }
    if (s->topic[0] && s->type != MK_FAULT_CORRUPT) {
        snprintf(why, n, "\"topic\" applies to corrupt only");
        return MK_ERR_INVALID;
    }
    if (s->client_side && s->type != MK_FAULT_S3_DOWN && s->type != MK_FAULT_S3_SLOW && s->type != MK_FAULT_S3_ERROR) {
        snprintf(why, n, "\"side\" applies to s3-* only");
        return MK_ERR_INVALID;
    }
    if (s->az[0] && s->type != MK_FAULT_NET_PARTITION && s->type != MK_FAULT_AZ_DOWN) {
        snprintf(why, n, "\"az\" applies to net-partition and az-down only");
        return MK_ERR_INVALID;
    }
    if (s->broker != -1 && (s->type == MK_FAULT_NET_PARTITION || s->type == MK_FAULT_AZ_DOWN ||
                            s->type == MK_FAULT_S3_DOWN || s->type == MK_FAULT_S3_SLOW ||
                            s->type == MK_FAULT_S3_ERROR)) {
        snprintf(why, n, "\"broker\" does not apply to %s", name);
        return MK_ERR_INVALID;
    }
    return 0;
}

/* ============================================================= the table */

static void notify(const mk_fault_t *f, bool added)
{
    observer_t obs[8];
    pthread_mutex_lock(&mu);
    int n = nobservers;
    memcpy(obs, observers, sizeof(obs));
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < n; i++)
        obs[i].cb(obs[i].arg, f, added);
}

int mk_fault_add(const mk_fault_spec_t *s, uint64_t *id_out)
{
    char why[160];
    if (mk_fault_spec_check(s, why, sizeof(why)) < 0)
        return MK_ERR_INVALID;
    pthread_mutex_lock(&mu);
    if (nactive == MK_FAULT_MAX_ACTIVE) {
        pthread_mutex_unlock(&mu);
        return MK_ERR_TOO_LARGE;
    }
    mk_fault_t *f = &table[nactive++];
    f->id = next_id++;
    f->spec = *s;
    f->spec.az[sizeof(f->spec.az) - 1] = 0;
    f->spec.topic[sizeof(f->spec.topic) - 1] = 0;
    f->spec.source[sizeof(f->spec.source) - 1] = 0;
    f->started_ms = mk_now_ms();
    injected[s->type]++;
    __atomic_store_n(&active_hint, (int)nactive, __ATOMIC_RELEASE);
    mk_fault_t copy = *f;
    pthread_mutex_unlock(&mu);
    if (id_out)
        *id_out = copy.id;
    notify(&copy, true);
    return 0;
}

int mk_fault_remove(uint64_t id, mk_fault_t *out)
{
    pthread_mutex_lock(&mu);
    size_t i = 0;
    while (i < nactive && table[i].id != id)
        i++;
    if (i == nactive) {
        pthread_mutex_unlock(&mu);
        return MK_ERR_NOT_FOUND;
    }
    mk_fault_t copy = table[i];
    memmove(&table[i], &table[i + 1], (nactive - i - 1) * sizeof(table[0]));
    nactive--;
    __atomic_store_n(&active_hint, (int)nactive, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mu);
    if (out)
        *out = copy;
    notify(&copy, false);
    return 0;
}

int mk_fault_get(uint64_t id, mk_fault_t *out)
{
    int rc = MK_ERR_NOT_FOUND;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nactive; i++)
        if (table[i].id == id) {
            *out = table[i];
            rc = 0;
        }
    pthread_mutex_unlock(&mu);
    return rc;
}

size_t mk_fault_list(mk_fault_t *out, size_t cap)
{
    pthread_mutex_lock(&mu);
    size_t n = nactive;
    memcpy(out, table, MK_MIN(n, cap) * sizeof(table[0]));
    pthread_mutex_unlock(&mu);
    return n;
}

size_t mk_fault_count(int type)
{
    size_t n = 0;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nactive; i++)
        n += type == 0 || table[i].spec.type == type;
    pthread_mutex_unlock(&mu);
    return n;
}

uint64_t mk_fault_injected_total(int type)
{
    uint64_t n = 0;
    pthread_mutex_lock(&mu);
    for (int t = 1; t < MK_FAULT_TYPE_END; t++)
        if (type == 0 || type == t)
            n += injected[t];
    pthread_mutex_unlock(&mu);
    return n;
}

void mk_fault_reset(void)
{
    pthread_mutex_lock(&mu);
    nactive = 0;
    memset(injected, 0, sizeof(injected));
    __atomic_store_n(&active_hint, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mu);
}

/* =============================================================== queries */

static bool none_active(void) { return __atomic_load_n(&active_hint, __ATOMIC_ACQUIRE) == 0; }

bool mk_fault_disk(int32_t broker, mk_fault_disk_t *out)
{
    memset(out, 0, sizeof(*out));
    if (none_active())
        return false;
    bool any = false;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nactive; i++) {
        const mk_fault_spec_t *s = &table[i].spec;
        if (s->broker != broker)
            continue;
        if (s->type == MK_FAULT_DISK_STALL) {
            out->stall = any = true;
        } else if (s->type == MK_FAULT_DISK_SLOW) {
            out->slow_ms = MK_MAX(out->slow_ms, s->delay_ms);
            any = true;
        } else if (s->type == MK_FAULT_DISK_ERROR) {
            out->error_ops |= s->ops ? s->ops : MK_FAULT_OPS_ALL;
            any = true;
        }
    }
    pthread_mutex_unlock(&mu);
    return any;
}

int64_t mk_fault_broker_delay_ms(int32_t broker)
{
    if (none_active())
        return 0;
    int64_t d = 0;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nactive; i++)
        if (table[i].spec.type == MK_FAULT_BROKER_SLOW && table[i].spec.broker == broker)
            d = MK_MAX(d, table[i].spec.delay_ms);
    pthread_mutex_unlock(&mu);
    return d;
}

bool mk_fault_net_cut(const char *az_a, const char *az_b)
{
    if (none_active() || !az_a || !az_b || strcmp(az_a, az_b) == 0)
        return false;
    bool cut = false;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nactive && !cut; i++)
        if (table[i].spec.type == MK_FAULT_NET_PARTITION &&
            (strcmp(table[i].spec.az, az_a) == 0 || strcmp(table[i].spec.az, az_b) == 0))
            cut = true;
    pthread_mutex_unlock(&mu);
    return cut;
}

bool mk_fault_net_isolated(const char *az)
{
    if (none_active() || !az)
        return false;
    bool cut = false;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nactive && !cut; i++)
        cut = table[i].spec.type == MK_FAULT_NET_PARTITION && strcmp(table[i].spec.az, az) == 0;
    pthread_mutex_unlock(&mu);
    return cut;
}

bool mk_fault_s3_client(int *type, int64_t *delay_ms)
{
    if (none_active())
        return false;
    bool any = false;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nactive && !any; i++) {
        const mk_fault_spec_t *s = &table[i].spec;
        if (s->client_side &&
            (s->type == MK_FAULT_S3_DOWN || s->type == MK_FAULT_S3_SLOW || s->type == MK_FAULT_S3_ERROR)) {
            *type = s->type;
            *delay_ms = s->delay_ms;
            any = true;
        }
    }
    pthread_mutex_unlock(&mu);
    return any;
}

/* ============================================================= observers */

int mk_fault_observe(mk_fault_cb cb, void *arg)
{
    pthread_mutex_lock(&mu);
    int rc = MK_ERR_TOO_LARGE;
    if (nobservers < (int)MK_ARRAY_LEN(observers)) {
        observers[nobservers++] = (observer_t){cb, arg};
        rc = 0;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

void mk_fault_unobserve(void *arg)
{
    pthread_mutex_lock(&mu);
    int k = 0;
    for (int i = 0; i < nobservers; i++)
        if (observers[i].arg != arg)
            observers[k++] = observers[i];
    nobservers = k;
    pthread_mutex_unlock(&mu);
}
