/*
 * measure.c -- windowed rates and the throttle time of an excess, token
 * buckets, and the split of a limit over brokers (quota.h).  Pure
 * arithmetic on the caller's clock: no state outside the structs.
 */
#include "quota/quota.h"

#include <math.h>
#include <string.h>

/* ===================================================================== rate */

void mk_quota_rate_init(mk_quota_rate_t *r, int windows, int64_t window_ms)
{
    memset(r, 0, sizeof(*r));
    r->n = windows < 2 ? 2 : windows > MK_QUOTA_MAX_WINDOWS ? MK_QUOTA_MAX_WINDOWS : windows;
    r->window_ms = window_ms < 1 ? 1 : window_ms;
    for (int i = 0; i < r->n; i++)
        r->start_ms[i] = INT64_MIN;
}

/* Windows older than n windows are stale: they no longer count. */
static bool stale(const mk_quota_rate_t *r, int i, int64_t now_ms)
{
    return r->start_ms[i] == INT64_MIN || now_ms - r->start_ms[i] >= (int64_t)r->n * r->window_ms;
}

void mk_quota_rate_record(mk_quota_rate_t *r, int64_t now_ms, double v)
{
    int64_t cur = r->start_ms[r->cur];
    if (cur == INT64_MIN || now_ms - cur >= r->window_ms) {
        /* A new window starts at now (Kafka's samples start at their first event). */
        r->cur = (r->cur + 1) % r->n;
        r->start_ms[r->cur] = now_ms;
        r->sum[r->cur] = 0;
    }
    r->sum[r->cur] += v;
}

/* The total of current windows and the span they cover, in ms. */
static double span_total(const mk_quota_rate_t *r, int64_t now_ms, double *span_ms)
{
    double total = 0;
    int64_t oldest = now_ms;
    for (int i = 0; i < r->n; i++) {
        if (stale(r, i, now_ms))
            continue;
        total += r->sum[i];
        if (r->start_ms[i] < oldest)
            oldest = r->start_ms[i];
    }
    double span = (double)(now_ms - oldest);
    /* At least n - 1 whole windows, as Kafka's Rate.windowSize. */
    double min_span = (double)(r->n - 1) * (double)r->window_ms;
    *span_ms = span < min_span ? min_span : span;
    return total;
}

double mk_quota_rate_get(const mk_quota_rate_t *r, int64_t now_ms)
{
    double span;
    double total = span_total(r, now_ms, &span);
    return span > 0 ? total * 1000.0 / span : 0;
}

int64_t mk_quota_rate_throttle_ms(const mk_quota_rate_t *r, int64_t now_ms, double limit, int64_t max_ms)
{
    if (limit <= 0)
        return 0;
    double span;
    double total = span_total(r, now_ms, &span);
    double rate = span > 0 ? total * 1000.0 / span : 0;
    if (rate <= limit)
        return 0;
    double t = (rate - limit) / limit * span;
    if (!isfinite(t) || t > (double)max_ms)
        return max_ms;
    return (int64_t)llround(t);
}

/* =================================================================== bucket */

void mk_quota_bucket_init(mk_quota_bucket_t *b, double rate, double burst, int64_t now_ms)
{
    b->rate = rate > 0 ? rate : 0;
    b->burst = burst > 0 ? burst : b->rate;
    b->tokens = b->burst;
    b->last_ms = now_ms;
}

static void refill(mk_quota_bucket_t *b, int64_t now_ms)
{
    if (now_ms > b->last_ms) {
        b->tokens += b->rate * (double)(now_ms - b->last_ms) / 1000.0;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->last_ms = now_ms;
    }
}

bool mk_quota_bucket_ready(mk_quota_bucket_t *b, int64_t now_ms)
{
    refill(b, now_ms);
    return b->tokens > 0;
}

void mk_quota_bucket_take(mk_quota_bucket_t *b, int64_t now_ms, double n)
{
    refill(b, now_ms);
    b->tokens -= n;
}

int64_t mk_quota_bucket_throttle_ms(mk_quota_bucket_t *b, int64_t now_ms)
{
    refill(b, now_ms);
    if (b->tokens > 0 || b->rate <= 0)
        return 0;
    return (int64_t)ceil(-b->tokens / b->rate * 1000.0) + 1;
}

void mk_quota_bucket_set(mk_quota_bucket_t *b, double rate, double burst, int64_t now_ms)
{
    refill(b, now_ms);
    b->rate = rate > 0 ? rate : 0;
    b->burst = burst > 0 ? burst : b->rate;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
}

/* ==================================================================== share */

void mk_quota_split(const double *use, int n, double limit, double floor_frac, double *out)
{
    if (n <= 0)
        return;
    if (floor_frac < 0)
        floor_frac = 0;
    if (floor_frac > 1)
        floor_frac = 1;
    double total = 0;
    for (int i = 0; i < n; i++)
        total += use[i] > 0 ? use[i] : 0;
    double floor_each = limit * floor_frac / n, rest = limit - floor_each * n;
    for (int i = 0; i < n; i++)
        out[i] = floor_each + (total > 0 ? rest * (use[i] > 0 ? use[i] : 0) / total : rest / n);
}

void mk_quota_scale(const double *quota, const double *demand, int n, double capacity, double *allow)
{
    double want = 0;
    for (int i = 0; i < n; i++) {
        allow[i] = 0;
        want += demand[i] > 0 ? demand[i] : 0;
    }
    if (want <= capacity) {
        for (int i = 0; i < n; i++)
            allow[i] = demand[i] > 0 ? demand[i] : 0;
        return;
    }
    /* Water-filling in two classes: tenants with a quota share by weight
     * (their quota), then what they leave goes equally to those without. */
    double left = capacity;
    for (int pass = 0; pass < 2; pass++) {
        for (int round = 0; round < n && left > 1e-9; round++) {
            double weight = 0;
            for (int i = 0; i < n; i++) {
                bool cls = pass == 0 ? quota[i] > 0 : quota[i] <= 0;
                if (cls && allow[i] < demand[i])
                    weight += pass == 0 ? quota[i] : 1;
            }
            if (weight <= 0)
                break;
            double given = 0, unit = left / weight;
            for (int i = 0; i < n; i++) {
                bool cls = pass == 0 ? quota[i] > 0 : quota[i] <= 0;
                if (!cls || allow[i] >= demand[i])
                    continue;
                double add = unit * (pass == 0 ? quota[i] : 1);
                if (allow[i] + add > demand[i])
                    add = demand[i] - allow[i];
                allow[i] += add;
                given += add;
            }
            left -= given;
            if (given <= 1e-9)
                break;
        }
    }
}
