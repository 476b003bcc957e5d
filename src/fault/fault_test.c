/*
 * fault_test.c -- unit test of fault/: names, the spec checks, the registry
 * (add, get, list, remove, counts, ids never reused), the queries the I/O
 * paths ask (disk, broker delay, net cut, S3 client side), observers; and
 * the storage I/O gate of log/ acting on a real log under each disk fault
 * (held appends, a slow one that runs after its delay, EIO that fails the
 * log and takes the domain offline), with its figures.  Standalone program;
 * exits 0 when every check passes.
 */
#include "fault/fault.h"
#include "log/log.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

static void test_names(void)
{
    for (int t = 1; t < MK_FAULT_TYPE_END; t++)
        CHECK(mk_fault_type_parse(mk_fault_type_name(t)) == t);
    CHECK(mk_fault_type_parse("disk-melt") == 0 && mk_fault_type_parse(NULL) == 0);
    CHECK(mk_fault_type_name(0) == NULL && mk_fault_type_name(MK_FAULT_TYPE_END) == NULL);
    CHECK(mk_fault_ops_parse("writes") == MK_FAULT_OPS_WRITES && mk_fault_ops_parse("all") == MK_FAULT_OPS_ALL);
    CHECK(mk_fault_ops_parse("some") == 0);
    CHECK(strcmp(mk_fault_ops_name(MK_FAULT_OPS_FSYNC), "fsync") == 0);
}

static int check(int type, void (*set)(mk_fault_spec_t *))
{
    mk_fault_spec_t s;
    mk_fault_spec_init(&s, type);
    if (set)
        set(&s);
    char why[200];
    return mk_fault_spec_check(&s, why, sizeof(why));
}

static void b2(mk_fault_spec_t *s) { s->broker = 2; }
static void b2_slow(mk_fault_spec_t *s) { s->broker = 2, s->delay_ms = 100; }
static void b2_slow_big(mk_fault_spec_t *s) { s->broker = 2, s->delay_ms = MK_FAULT_MAX_DELAY_MS + 1; }
static void b2_delay(mk_fault_spec_t *s) { s->broker = 2, s->delay_ms = 5; }
static void b2_neg_dur(mk_fault_spec_t *s) { s->broker = 2, s->duration_ms = -1; }
static void b2000(mk_fault_spec_t *s) { s->broker = 2000; }
static void az1(mk_fault_spec_t *s) { snprintf(s->az, sizeof(s->az), "az-1"); }
static void az1_b2(mk_fault_spec_t *s) { snprintf(s->az, sizeof(s->az), "az-1"), s->broker = 2; }
static void b2_ops(mk_fault_spec_t *s) { s->broker = 2, s->ops = MK_FAULT_OPS_READS; }
static void client(mk_fault_spec_t *s) { s->client_side = true; }
static void topic(mk_fault_spec_t *s) { snprintf(s->topic, sizeof(s->topic), "t"), s->partition = 0; }

static void test_checks(void)
{
    CHECK(check(0, NULL) == MK_ERR_INVALID);
    CHECK(check(MK_FAULT_DISK_STALL, NULL) == MK_ERR_INVALID); /* no broker */
    CHECK(check(MK_FAULT_DISK_STALL, b2) == 0);
    CHECK(check(MK_FAULT_DISK_STALL, b2000) == MK_ERR_INVALID);
    CHECK(check(MK_FAULT_DISK_STALL, b2_neg_dur) == MK_ERR_INVALID);
    CHECK(check(MK_FAULT_DISK_STALL, b2_delay) == MK_ERR_INVALID); /* delay does not apply */
    CHECK(check(MK_FAULT_DISK_SLOW, b2) == MK_ERR_INVALID);        /* no delay */
    CHECK(check(MK_FAULT_DISK_SLOW, b2_slow) == 0);
    CHECK(check(MK_FAULT_DISK_SLOW, b2_slow_big) == MK_ERR_INVALID);
    CHECK(check(MK_FAULT_DISK_ERROR, b2_ops) == 0);
    CHECK(check(MK_FAULT_DISK_STALL, b2_ops) == MK_ERR_INVALID);
    CHECK(check(MK_FAULT_NET_PARTITION, NULL) == MK_ERR_INVALID);
    CHECK(check(MK_FAULT_NET_PARTITION, az1) == 0);
    CHECK(check(MK_FAULT_NET_PARTITION, az1_b2) == MK_ERR_INVALID);
    CHECK(check(MK_FAULT_AZ_DOWN, az1) == 0);
    CHECK(check(MK_FAULT_CRASH, b2) == 0);
    CHECK(check(MK_FAULT_S3_DOWN, client) == 0 && check(MK_FAULT_S3_DOWN, NULL) == 0);
    CHECK(check(MK_FAULT_CRASH, client) == MK_ERR_INVALID);
    CHECK(check(MK_FAULT_CORRUPT, NULL) == 0 && check(MK_FAULT_CORRUPT, topic) == 0);
    CHECK(check(MK_FAULT_DISK_STALL, topic) == MK_ERR_INVALID);
}

static int seen_added, seen_removed;
static uint64_t seen_id;
static void obs(void *arg, const mk_fault_t *f, bool added)
{
    CHECK(arg == &seen_id);
    seen_id = f->id;
    if (added)
        seen_added++;
    else
        seen_removed++;
}

static void test_registry(void)
{
    mk_fault_reset();
    CHECK(mk_fault_observe(obs, &seen_id) == 0);
    mk_fault_disk_t d;
    CHECK(!mk_fault_disk(2, &d) && !d.stall && d.slow_ms == 0 && d.error_ops == 0);
    mk_fault_spec_t s;
    uint64_t a, b, c, e;
    mk_fault_spec_init(&s, MK_FAULT_DISK_STALL);
    CHECK(mk_fault_add(&s, &a) == MK_ERR_INVALID); /* no broker */
    s.broker = 2;
    CHECK(mk_fault_add(&s, &a) == 0 && a > 0 && seen_added == 1 && seen_id == a);
    mk_fault_spec_init(&s, MK_FAULT_DISK_SLOW);
    s.broker = 2;
    s.delay_ms = 40;
    CHECK(mk_fault_add(&s, &b) == 0 && b > a);
    mk_fault_spec_init(&s, MK_FAULT_DISK_ERROR);
    s.broker = 3;
    CHECK(mk_fault_add(&s, &c) == 0); /* ops 0: all */
    CHECK(mk_fault_disk(2, &d) && d.stall && d.slow_ms == 40 && d.error_ops == 0);
    CHECK(mk_fault_disk(3, &d) && !d.stall && d.error_ops == MK_FAULT_OPS_ALL);
    CHECK(!mk_fault_disk(1, &d));
    mk_fault_spec_init(&s, MK_FAULT_NET_PARTITION);
    snprintf(s.az, sizeof(s.az), "az-2");
    CHECK(mk_fault_add(&s, &e) == 0);
    CHECK(mk_fault_net_cut("az-1", "az-2") && mk_fault_net_cut("az-2", "az-3"));
    CHECK(!mk_fault_net_cut("az-1", "az-3") && !mk_fault_net_cut("az-2", "az-2"));
    CHECK(mk_fault_net_isolated("az-2") && !mk_fault_net_isolated("az-1"));
    CHECK(mk_fault_count(0) == 4 && mk_fault_count(MK_FAULT_DISK_SLOW) == 1);
    mk_fault_t list[8];
    CHECK(mk_fault_list(list, 8) == 4 && list[0].id == a && list[3].id == e);
    CHECK(mk_fault_list(list, 2) == 4); /* says how many even when capped */
    mk_fault_t f;
    CHECK(mk_fault_get(b, &f) == 0 && f.spec.delay_ms == 40 && strcmp(f.spec.source, "lib") == 0);
    CHECK(mk_fault_remove(b, &f) == 0 && f.id == b && seen_removed == 1);
    CHECK(mk_fault_remove(b, NULL) == MK_ERR_NOT_FOUND && mk_fault_get(b, &f) == MK_ERR_NOT_FOUND);
    CHECK(mk_fault_disk(2, &d) && d.slow_ms == 0);
    CHECK(mk_fault_broker_delay_ms(2) == 0);
    mk_fault_spec_init(&s, MK_FAULT_BROKER_SLOW);
    s.broker = 2;
    s.delay_ms = 7;
    uint64_t g;
    CHECK(mk_fault_add(&s, &g) == 0 && mk_fault_broker_delay_ms(2) == 7 && mk_fault_broker_delay_ms(1) == 0);
    int type;
    int64_t delay;
    CHECK(!mk_fault_s3_client(&type, &delay));
    mk_fault_spec_init(&s, MK_FAULT_S3_SLOW);
    s.delay_ms = 9;
    s.client_side = true;
    uint64_t h;
    CHECK(mk_fault_add(&s, &h) == 0 && mk_fault_s3_client(&type, &delay) && type == MK_FAULT_S3_SLOW && delay == 9);
    CHECK(mk_fault_injected_total(0) == 6 && mk_fault_injected_total(MK_FAULT_DISK_SLOW) == 1);
    /* ids are never reused */
    CHECK(h > g && g > e);
    mk_fault_unobserve(&seen_id);
    mk_fault_reset();
    CHECK(mk_fault_count(0) == 0 && !mk_fault_disk(2, &d) && mk_fault_injected_total(0) == 0);
}

/* ================================================================ the gate */

static void one_batch(mk_buf_t *b)
{
    mk_buf_reset(b);
    mk_batch_rec_in_t r = {0};
    r.value = "value";
    r.value_len = 5;
    r.timestamp = mk_now_ms();
    CHECK(mk_batch_build(b, 0, 0, &r, 1) == 0);
}

static int offline_calls;
static void offline_cb(void *arg, int32_t broker)
{
    (void)arg;
    CHECK(broker == 5);
    offline_calls++;
}

static void test_gate(const char *root)
{
    mk_fault_reset();
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/p-0", root);
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.io_domain = 5;
    mk_log_t *log;
    CHECK(mk_log_open(dir, &cfg, &log) == 0);
    mk_buf_t b;
    mk_buf_init(&b);
    one_batch(&b);
    CHECK(mk_log_append(log, b.data, b.len, 0, mk_now_ms(), NULL) == 0);
    mk_log_io_stats_t st;
    CHECK(mk_log_io_stats(5, &st) == 0 && st.ops == 2 && st.errors == 0 && st.oldest_inflight_ms == 0);
    CHECK(mk_log_io_stats(0, &st) == MK_ERR_NOT_FOUND);

    /* stall: held before any byte, counted in flight, ageing */
    mk_fault_spec_t s;
    mk_fault_spec_init(&s, MK_FAULT_DISK_STALL);
    s.broker = 5;
    uint64_t id;
    CHECK(mk_fault_add(&s, &id) == 0);
    one_batch(&b);
    CHECK(mk_log_append(log, b.data, b.len, 0, mk_now_ms(), NULL) == MK_ERR_AGAIN);
    CHECK(mk_log_end_offset(log) == 1);
    mk_buf_t out;
    mk_buf_init(&out);
    int64_t next;
    CHECK(mk_log_read(log, 0, 1 << 20, true, &out, &next) == MK_ERR_AGAIN && out.len == 0);
    CHECK(mk_log_read(log, 1, 1 << 20, true, &out, &next) == 0 && next == 1); /* at the end: no I/O */
    mk_log_cursor_t *cur;
    CHECK(mk_log_cursor_open(log, &cur) == MK_ERR_AGAIN); /* a scan waits too */
    usleep(30000);
    CHECK(mk_log_io_stats(5, &st) == 0 && st.stalled && st.inflight == 2 && st.oldest_inflight_ms >= 25);
    CHECK(st.held == 2);
    CHECK(mk_fault_remove(id, NULL) == 0);
    /* released: the retry runs, its latency includes the wait */
    CHECK(mk_log_append(log, b.data, b.len, 0, mk_now_ms(), NULL) == 0 && mk_log_end_offset(log) == 2);
    CHECK(mk_log_read(log, 0, 1 << 20, true, &out, &next) == 0 && next == 2);
    CHECK(mk_log_cursor_open(log, &cur) == 0);
    mk_log_cursor_close(cur);
    CHECK(mk_log_io_stats(5, &st) == 0 && st.inflight == 0 && st.oldest_inflight_ms == 0);
    CHECK(st.p99_us >= 25000);

    /* slow: held until delay_ms after the first ask */
    mk_fault_spec_init(&s, MK_FAULT_DISK_SLOW);
    s.broker = 5;
    s.delay_ms = 40;
    CHECK(mk_fault_add(&s, &id) == 0);
    one_batch(&b);
    uint64_t t0 = mk_mono_ms();
    int rc;
    while ((rc = mk_log_append(log, b.data, b.len, 0, mk_now_ms(), NULL)) == MK_ERR_AGAIN)
        usleep(2000);
    CHECK(rc == 0 && mk_mono_ms() - t0 >= 40 && mk_log_end_offset(log) == 3);
    CHECK(mk_fault_remove(id, NULL) == 0);

    /* error on reads only: a read fails with EIO and the log goes offline */
    mk_log_io_set_offline_cb(offline_cb, NULL);
    mk_fault_spec_init(&s, MK_FAULT_DISK_ERROR);
    s.broker = 5;
    s.ops = MK_FAULT_OPS_READS;
    CHECK(mk_fault_add(&s, &id) == 0);
    uint64_t errs = (mk_log_io_stats(5, &st), st.errors);
    CHECK(mk_log_read(log, 0, 1 << 20, true, &out, &next) == MK_ERR_IO);
    CHECK(mk_log_io_stats(5, &st) == 0 && st.errors == errs + 1 && st.offline);
    mk_log_stats_t ls;
    mk_log_stats(log, &ls);
    CHECK(ls.io_error == MK_ERR_IO);
    one_batch(&b);
    CHECK(mk_log_append(log, b.data, b.len, 0, mk_now_ms(), NULL) == MK_ERR_IO); /* the failed log */
    CHECK(offline_calls == 0); /* deferred to the loop's timer (none here) */
    CHECK(mk_fault_remove(id, NULL) == 0);
    mk_log_io_online(5);
    CHECK(mk_log_io_stats(5, &st) == 0 && !st.offline);
    mk_log_io_set_offline_cb(NULL, NULL);
    mk_log_close(log);

    /* writes failing: a log cannot even be opened */
    mk_fault_spec_init(&s, MK_FAULT_DISK_ERROR);
    s.broker = 5;
    CHECK(mk_fault_add(&s, &id) == 0);
    CHECK(mk_log_open(dir, &cfg, &log) == MK_ERR_IO);
    CHECK(mk_log_io_stats(5, &st) == 0 && st.offline);
    cfg.io_domain = 0; /* another domain is untouched */
    CHECK(mk_log_open(dir, &cfg, &log) == 0);
    mk_log_close(log);
    mk_fault_reset();
    mk_buf_free(&b);
    mk_buf_free(&out);
}

int main(void)
{
    mk_logger_set_level(MK_LOGGER_ERROR + 1);
    test_names();
    test_checks();
    test_registry();
    char root[] = "/tmp/fault_test-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    test_gate(root);
    mk_rm_rf(root);
    printf("fault_test: ok\n");
    return 0;
}
