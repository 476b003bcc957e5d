/*
 * meta_test.c -- unit test of the metadata store.  Standalone program; exits
 * 0 when every check passes.
 *
 * Each test works in a fresh temporary directory.  Covered: create and
 * integrity check, key/values, topics with configs and assignments (put,
 * replace, walk, delete, per-config and per-partition updates), persistence
 * across reopen, async writes through a libuv loop (order, errors, close with
 * writes pending, close from a callback), refusal of corrupt, foreign and
 * newer files with a log line, and allocation failures.  Group offsets: put,
 * overwrite, walk order, all-or-nothing batches (bad argument, and a write
 * failing mid-transaction), each kind of delete, topic deletion taking its
 * offsets, expiry (and the rule itself), persistence, async order mixed
 * with topic writes, refusal of an unknown kind of write, range
 * checks on read-back, allocation failures, and the v1 -> v2 migration of a
 * store written by the v1 schema (kept frozen below).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "meta/meta.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)
#define CHECK_EQ(a, b)                                                                \
    do {                                                                              \
        long long a_ = (long long)(a), b_ = (long long)(b);                           \
        if (a_ != b_) {                                                               \
            fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__,     \
                    __LINE__, #a, a_, #b, b_);                                        \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

#define CHECK_STREQ(a, b)                                                             \
    do {                                                                              \
        const char *a_ = (a), *b_ = (b);                                              \
        if (strcmp(a_, b_) != 0) {                                                    \
            fprintf(stderr, "%s:%d: %s is\n  \"%s\"\nexpected\n  \"%s\"\n", __FILE__,  \
                    __LINE__, #a, a_, b_);                                            \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

/* Every write goes through the generic paths: RUN(m, KIND, .field = ...)
 * runs one now, SUBMIT(m, loop, cb, arg, KIND, .field = ...) queues one. */
#define RUN(m, ...) mk_meta_op_run((m), &(mk_meta_op_t){__VA_ARGS__})
#define SUBMIT(m, loop, cb, arg, ...)                                                 \
    mk_meta_op_submit((m), (loop), &(mk_meta_op_t){__VA_ARGS__}, (cb), (arg))

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

/* ------------------------------------------------------------ stderr capture */

static int saved_stderr = -1;

static void capture_begin(void)
{
    fflush(stderr);
    saved_stderr = dup(2);
    int fd = open(tmp_path("stderr.log"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    dup2(fd, 2);
    close(fd);
}

/* Restores stderr, echoes what was captured and says whether it has needle. */
static bool capture_end(const char *needle)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    char buf[8192] = {0};
    FILE *f = fopen(tmp_path("stderr.log"), "r");
    CHECK(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    fprintf(stderr, "  [captured] %s", buf);
    return strstr(buf, needle) != NULL;
}

/* ------------------------------------------------------------------ fixtures */

static void make_id(uint8_t id[16], int seed)
{
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(seed * 31 + i);
}

/* A topic with n partitions, replicas {b, b+1, b+2}, leader b, and configs. */
typedef struct fixture_s {
    mk_meta_topic_t t;
    mk_meta_partition_t parts[8];
    int32_t replicas[8][3];
    mk_meta_config_t configs[4];
} fixture_t;

static void fixture_init(fixture_t *f, const char *name, int seed, int32_t n, int32_t nconf)
{
    memset(f, 0, sizeof(*f));
    CHECK(n <= 8 && nconf <= 4);
    f->t.name = name;
    make_id(f->t.topic_id, seed);
    f->t.partition_count = n;
    f->t.replication_factor = 3;
    f->t.created_ms = 1700000000000LL + seed;
    f->t.cell_id = seed % 3;
    for (int32_t i = 0; i < n; i++) {
        f->parts[i].partition = i;
        f->parts[i].leader = seed + i;
        f->parts[i].leader_epoch = i * 10;
        f->parts[i].replica_count = 3;
        f->parts[i].replicas = f->replicas[i];
        for (int r = 0; r < 3; r++)
            f->replicas[i][r] = seed + i + r;
    }
    f->t.partitions = f->parts;
    static const char *keys[] = {"cleanup.policy", "retention.ms", "segment.bytes", "x.y"};
    static const char *vals[] = {"delete", "86400000", "1048576", "z"};
    for (int32_t i = 0; i < nconf; i++) {
        f->configs[i].key = keys[i];
        f->configs[i].value = vals[i];
    }
    f->t.config_count = nconf;
    f->t.configs = nconf ? f->configs : NULL;
}

/* Snapshot of what mk_meta_topic_foreach() saw, in a flat form. */
typedef struct seen_s {
    int count;
    char names[8][64];
    int32_t partition_count[8];
    int32_t cell[8];
    int16_t rf[8];
    int64_t created[8];
    uint8_t id[8][16];
    int32_t config_count[8];
    char config[8][128];          /* "k=v,k=v" */
    int32_t leader[8][8];
    int32_t epoch[8][8];
    int32_t rcount[8][8];
    int32_t replica0[8][8];
    int stop_after;               /* return 99 after this many topics (0 = never) */
} seen_t;

static int seen_cb(const mk_meta_topic_t *t, void *arg)
{
    seen_t *s = arg;
    CHECK(s->count < 8);
    int i = s->count++;
    snprintf(s->names[i], sizeof(s->names[i]), "%s", t->name);
    s->partition_count[i] = t->partition_count;
    s->cell[i] = t->cell_id;
    s->rf[i] = t->replication_factor;
    s->created[i] = t->created_ms;
    memcpy(s->id[i], t->topic_id, 16);
    s->config_count[i] = t->config_count;
    s->config[i][0] = 0;
    for (int32_t c = 0; c < t->config_count; c++) {
        size_t len = strlen(s->config[i]);
        snprintf(s->config[i] + len, sizeof(s->config[i]) - len, "%s%s=%s", c ? "," : "",
                 t->configs[c].key, t->configs[c].value);
    }
    CHECK(t->partitions != NULL);
    for (int32_t p = 0; p < t->partition_count && p < 8; p++) {
        CHECK_EQ(t->partitions[p].partition, p);
        s->leader[i][p] = t->partitions[p].leader;
        s->epoch[i][p] = t->partitions[p].leader_epoch;
        s->rcount[i][p] = t->partitions[p].replica_count;
        s->replica0[i][p] = t->partitions[p].replica_count ? t->partitions[p].replicas[0] : -99;
        for (int32_t r = 0; r < t->partitions[p].replica_count; r++)
            CHECK(t->partitions[p].replicas[r] >= 0);
    }
    if (s->stop_after && s->count == s->stop_after)
        return 99;
    return 0;
}

static void walk(mk_meta_t *m, seen_t *s)
{
    memset(s, 0, sizeof(*s));
    CHECK_EQ(mk_meta_topic_foreach(m, seen_cb, s), 0);
}

static mk_meta_t *open_ok(const char *name)
{
    mk_meta_t *m = NULL;
    CHECK_EQ(mk_meta_open(tmp_path(name), &m), 0);
    CHECK(m);
    return m;
}

/* --------------------------------------------------------------------- tests */

static void test_open_kv(void)
{
    mk_meta_t *m = open_ok("kv.db");
    char why[128];
    CHECK_EQ(mk_meta_check(m, why, sizeof(why)), 0);
    CHECK(strcmp(why, "ok") == 0);
    CHECK_EQ(mk_meta_check(m, NULL, 0), 0);

    char *v = (char *)1;
    CHECK_EQ(mk_meta_kv_get(m, "cluster.id", &v), MK_ERR_NOT_FOUND);
    CHECK(v == NULL);
    CHECK_EQ(RUN(m, MK_META_KV_SET, .key = "cluster.id", .value = "abc"), 0);
    CHECK_EQ(mk_meta_kv_get(m, "cluster.id", &v), 0);
    CHECK(strcmp(v, "abc") == 0);
    mk_free(v);
    CHECK_EQ(RUN(m, MK_META_KV_SET, .key = "cluster.id", .value = "def"), 0);
    CHECK_EQ(RUN(m, MK_META_KV_SET, .key = "empty", .value = ""), 0);
    CHECK_EQ(mk_meta_kv_get(m, "empty", &v), 0);
    CHECK(strcmp(v, "") == 0);
    mk_free(v);
    CHECK_EQ(RUN(m, MK_META_KV_SET, .key = "empty", .value = NULL), 0);
    CHECK_EQ(RUN(m, MK_META_KV_SET, .key = "empty", .value = NULL), 0);   /* absent: fine */
    CHECK_EQ(mk_meta_kv_get(m, "empty", &v), MK_ERR_NOT_FOUND);
    CHECK_EQ(RUN(m, MK_META_KV_SET, .key = "", .value = "x"), MK_ERR_INVALID);
    CHECK_EQ(mk_meta_kv_get(m, NULL, &v), MK_ERR_INVALID);
    mk_meta_close(m);

    m = open_ok("kv.db");
    CHECK_EQ(mk_meta_kv_get(m, "cluster.id", &v), 0);
    CHECK(strcmp(v, "def") == 0);
    mk_free(v);
    mk_meta_close(m);
    mk_meta_close(NULL);
}

static void test_topics(void)
{
    mk_meta_t *m = open_ok("topics.db");
    fixture_t a, b;
    fixture_init(&a, "orders", 1, 3, 2);
    fixture_init(&b, "clicks", 2, 2, 0);
    CHECK_EQ(RUN(m, MK_META_TOPIC_PUT, .t = &a.t), 0);
    CHECK_EQ(RUN(m, MK_META_TOPIC_PUT, .t = &b.t), 0);

    seen_t s;
    walk(m, &s);
    CHECK_EQ(s.count, 2);
    CHECK(strcmp(s.names[0], "clicks") == 0);   /* name order */
    CHECK(strcmp(s.names[1], "orders") == 0);
    CHECK_EQ(s.partition_count[1], 3);
    CHECK_EQ(s.rf[1], 3);
    CHECK_EQ(s.cell[1], 1);
    CHECK_EQ(s.created[1], 1700000000001LL);
    CHECK(memcmp(s.id[1], a.t.topic_id, 16) == 0);
    CHECK(strcmp(s.config[1], "cleanup.policy=delete,retention.ms=86400000") == 0);
    CHECK_EQ(s.config_count[0], 0);
    CHECK_EQ(s.leader[1][2], 3);
    CHECK_EQ(s.epoch[1][2], 20);
    CHECK_EQ(s.rcount[1][2], 3);
    CHECK_EQ(s.replica0[1][2], 3);

    /* The callback's nonzero return stops the walk. */
    memset(&s, 0, sizeof(s));
    s.stop_after = 1;
    CHECK_EQ(mk_meta_topic_foreach(m, seen_cb, &s), 99);
    CHECK_EQ(s.count, 1);

    /* Replace: fewer partitions, other configs, no assignments. */
    fixture_t a2;
    fixture_init(&a2, "orders", 1, 2, 4);
    a2.t.cell_id = 7;
    a2.t.partitions = NULL;
    CHECK_EQ(RUN(m, MK_META_TOPIC_PUT, .t = &a2.t), 0);
    walk(m, &s);
    CHECK_EQ(s.count, 2);
    CHECK_EQ(s.partition_count[1], 2);
    CHECK_EQ(s.cell[1], 7);
    CHECK_EQ(s.config_count[1], 4);
    CHECK_EQ(s.leader[1][0], -1);
    CHECK_EQ(s.epoch[1][0], -1);
    CHECK_EQ(s.rcount[1][1], 0);

    /* Per-partition and per-config updates. */
    int32_t reps[2] = {5, 6};
    mk_meta_partition_t p = {.partition = 1, .leader = 5, .leader_epoch = 4,
                             .replica_count = 2, .replicas = reps};
    CHECK_EQ(RUN(m, MK_META_PARTITION_PUT, .topic = "orders", .p = &p), 0);
    p.leader = 6;
    p.leader_epoch = 5;
    CHECK_EQ(RUN(m, MK_META_PARTITION_PUT, .topic = "orders", .p = &p), 0);
    p.partition = 2;
    CHECK_EQ(RUN(m, MK_META_PARTITION_PUT, .topic = "orders", .p = &p), MK_ERR_INVALID);
    p.partition = 0;
    CHECK_EQ(RUN(m, MK_META_PARTITION_PUT, .topic = "nope", .p = &p), MK_ERR_NOT_FOUND);
    p.replica_count = MK_META_MAX_REPLICAS + 1;
    CHECK_EQ(RUN(m, MK_META_PARTITION_PUT, .topic = "orders", .p = &p), MK_ERR_INVALID);
    CHECK_EQ(RUN(m, MK_META_TOPIC_CONFIG_SET, .topic = "orders", .key = "retention.ms",
                 .value = "1000"), 0);
    CHECK_EQ(RUN(m, MK_META_TOPIC_CONFIG_SET, .topic = "orders", .key = "x.y", .value = NULL), 0);
    CHECK_EQ(RUN(m, MK_META_TOPIC_CONFIG_SET, .topic = "orders", .key = "absent",
                 .value = NULL), 0);
    CHECK_EQ(RUN(m, MK_META_TOPIC_CONFIG_SET, .topic = "nope", .key = "a",
                 .value = "b"), MK_ERR_NOT_FOUND);
    CHECK_EQ(RUN(m, MK_META_TOPIC_CONFIG_SET, .topic = "nope", .key = "a",
                 .value = NULL), MK_ERR_NOT_FOUND);
    walk(m, &s);
    CHECK_EQ(s.leader[1][1], 6);
    CHECK_EQ(s.epoch[1][1], 5);
    CHECK_EQ(s.rcount[1][1], 2);
    CHECK_EQ(s.replica0[1][1], 5);
    CHECK_EQ(s.leader[1][0], -1);
    CHECK(strcmp(s.config[1], "cleanup.policy=delete,retention.ms=1000,segment.bytes=1048576") == 0);

    /* Rule breaking. */
    fixture_t bad;
    fixture_init(&bad, "other", 1, 1, 0);   /* same topic id as "orders" */
    CHECK_EQ(RUN(m, MK_META_TOPIC_PUT, .t = &bad.t), MK_ERR_EXISTS);
    fixture_init(&bad, "other", 9, 2, 0);
    bad.parts[1].partition = 0;
    CHECK_EQ(RUN(m, MK_META_TOPIC_PUT, .t = &bad.t), MK_ERR_INVALID);
    bad.parts[1].partition = 1;
    bad.t.partition_count = 0;
    CHECK_EQ(RUN(m, MK_META_TOPIC_PUT, .t = &bad.t), MK_ERR_INVALID);
    bad.t.partition_count = 2;
    bad.t.name = "";
    CHECK_EQ(RUN(m, MK_META_TOPIC_PUT, .t = &bad.t), MK_ERR_INVALID);
    walk(m, &s);
    CHECK_EQ(s.count, 2);   /* failed puts left nothing behind */

    /* Delete. */
    CHECK_EQ(RUN(m, MK_META_TOPIC_DELETE, .topic = "missing"), MK_ERR_NOT_FOUND);
    CHECK_EQ(RUN(m, MK_META_TOPIC_DELETE, .topic = "clicks"), 0);
    CHECK_EQ(RUN(m, MK_META_TOPIC_DELETE, .topic = "clicks"), MK_ERR_NOT_FOUND);
    walk(m, &s);
    CHECK_EQ(s.count, 1);
    CHECK(strcmp(s.names[0], "orders") == 0);
    /* Re-create with the old id: the cascade removed the old rows. */
    CHECK_EQ(RUN(m, MK_META_TOPIC_PUT, .t = &b.t), 0);
    char why[256];
    CHECK_EQ(mk_meta_check(m, why, sizeof(why)), 0);
    mk_meta_close(m);

    /* Reopen: everything persisted. */
    m = open_ok("topics.db");
    walk(m, &s);
    CHECK_EQ(s.count, 2);
    CHECK(strcmp(s.names[0], "clicks") == 0);
    CHECK_EQ(s.leader[0][1], 3);
    CHECK_EQ(s.leader[1][1], 6);
    CHECK(strcmp(s.config[1], "cleanup.policy=delete,retention.ms=1000,segment.bytes=1048576") == 0);
    mk_meta_close(m);
}

/* --------------------------------------------------------------- async tests */

typedef struct order_s {
    int n;
    int seq[32];
    int status[32];
    mk_meta_t *close_in_cb;   /* close this store from the callback with tag 100 */
} order_t;

typedef struct tag_s {
    order_t *o;
    int tag;
} tag_t;

static void done_cb(int status, void *arg)
{
    tag_t *t = arg;
    CHECK(t->o->n < 32);
    t->o->seq[t->o->n] = t->tag;
    t->o->status[t->o->n] = status;
    t->o->n++;
    if (t->tag == 100 && t->o->close_in_cb)
        mk_meta_close(t->o->close_in_cb);
}

static void test_async(void)
{
    uv_loop_t loop, other;
    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(uv_loop_init(&other), 0);
    mk_meta_t *m = open_ok("async.db");
    order_t o = {0};
    tag_t tags[16];
    for (int i = 0; i < 16; i++)
        tags[i] = (tag_t){&o, i};

    fixture_t *a = mk_malloc(sizeof(*a)), *b = mk_malloc(sizeof(*b));
    fixture_init(a, "alpha", 3, 4, 3);
    fixture_init(b, "beta", 4, 1, 1);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[0], MK_META_TOPIC_PUT, .t = &a->t), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[1], MK_META_TOPIC_PUT, .t = &b->t), 0);
    /* The arguments were copied: scribble over and free them. */
    memset(a, 0xAB, sizeof(*a));
    memset(b, 0xAB, sizeof(*b));
    mk_free(a);
    mk_free(b);

    char topic[16], key[16], val[16];
    snprintf(topic, sizeof(topic), "alpha");
    snprintf(key, sizeof(key), "retention.ms");
    snprintf(val, sizeof(val), "42");
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[2], MK_META_TOPIC_CONFIG_SET, .topic = topic,
                    .key = key, .value = val), 0);
    memset(val, 0, sizeof(val));
    int32_t reps[1] = {9};
    mk_meta_partition_t p = {.partition = 3, .leader = 9, .leader_epoch = 77,
                             .replica_count = 1, .replicas = reps};
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[3], MK_META_PARTITION_PUT, .topic = "alpha",
                    .p = &p), 0);
    reps[0] = -5;
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[4], MK_META_TOPIC_DELETE, .topic = "beta"), 0);
    /* gone */
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[5], MK_META_TOPIC_DELETE, .topic = "beta"), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[6], MK_META_KV_SET, .key = "cluster.id",
                    .value = "c1"), 0);
    CHECK_EQ(SUBMIT(m, &loop, NULL, NULL, MK_META_KV_SET, .key = "tmp", .value = "t"), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[7], MK_META_KV_SET, .key = "tmp", .value = NULL), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[8], MK_META_TOPIC_CONFIG_SET, .topic = "nope",
                    .key = "k", .value = "v"), 0);
    CHECK_EQ(mk_meta_pending(m), 10);

    /* Refused at submission: the callback must never run. */
    CHECK_EQ(SUBMIT(m, &other, done_cb, &tags[15], MK_META_TOPIC_DELETE,
                    .topic = "alpha"), MK_ERR_INVALID);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[15], MK_META_TOPIC_DELETE,
                    .topic = ""), MK_ERR_INVALID);
    p.replica_count = -1;
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[15], MK_META_PARTITION_PUT, .topic = "alpha",
                    .p = &p), MK_ERR_INVALID);
    mk_mem_fail_at(1);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[15], MK_META_TOPIC_DELETE,
                    .topic = "alpha"), MK_ERR_NOMEM);
    mk_mem_fail_at(2);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[15], MK_META_TOPIC_DELETE,
                    .topic = "alpha"), MK_ERR_NOMEM);
    mk_mem_fail_at(0);

    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ(mk_meta_pending(m), 0);
    CHECK_EQ(o.n, 9);
    static const int want_status[9] = {0, 0, 0, 0, 0, MK_ERR_NOT_FOUND, 0, 0, MK_ERR_NOT_FOUND};
    for (int i = 0; i < 9; i++) {
        CHECK_EQ(o.seq[i], i);
        CHECK_EQ(o.status[i], want_status[i]);
    }

    seen_t s;
    walk(m, &s);
    CHECK_EQ(s.count, 1);
    CHECK(strcmp(s.names[0], "alpha") == 0);
    CHECK(strcmp(s.config[0], "cleanup.policy=delete,retention.ms=42,segment.bytes=1048576") == 0);
    CHECK_EQ(s.leader[0][3], 9);
    CHECK_EQ(s.epoch[0][3], 77);
    CHECK_EQ(s.replica0[0][3], 9);
    char *v;
    CHECK_EQ(mk_meta_kv_get(m, "cluster.id", &v), 0);
    CHECK(strcmp(v, "c1") == 0);
    mk_free(v);
    CHECK_EQ(mk_meta_kv_get(m, "tmp", &v), MK_ERR_NOT_FOUND);

    /* The loop is free again: another loop may be used now. */
    o.n = 0;
    CHECK_EQ(SUBMIT(m, &other, done_cb, &tags[0], MK_META_KV_SET, .key = "k2", .value = "v2"), 0);
    CHECK_EQ(uv_run(&other, UV_RUN_DEFAULT), 0);
    CHECK_EQ(o.n, 1);

    /* Close with writes pending: they still run, in order, then it frees. */
    o.n = 0;
    fixture_t c;
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "t%d", i);
        fixture_init(&c, name, 10 + i, 2, 1);
        CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[i], MK_META_TOPIC_PUT, .t = &c.t), 0);
    }
    mk_meta_close(m);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[15], MK_META_KV_SET, .key = "late",
                    .value = "x"), MK_ERR_STATE);
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ(o.n, 5);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(o.seq[i], i);
        CHECK_EQ(o.status[i], 0);
    }

    /* Close from inside a callback, with one more write queued behind it. */
    m = open_ok("async.db");
    walk(m, &s);
    CHECK_EQ(s.count, 6);
    o.n = 0;
    o.close_in_cb = m;
    tag_t t100 = {&o, 100};
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &t100, MK_META_TOPIC_DELETE, .topic = "t0"), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[1], MK_META_TOPIC_DELETE, .topic = "t1"), 0);
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ(o.n, 2);
    CHECK_EQ(o.seq[0], 100);
    CHECK_EQ(o.seq[1], 1);
    CHECK_EQ(o.status[1], 0);

    /* ... and from the last callback, with nothing behind it. */
    m = open_ok("async.db");
    o.n = 0;
    o.close_in_cb = m;
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &t100, MK_META_TOPIC_DELETE, .topic = "t2"), 0);
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ(o.n, 1);

    m = open_ok("async.db");
    walk(m, &s);
    CHECK_EQ(s.count, 3);   /* alpha, t3, t4 */
    mk_meta_close(m);
    CHECK_EQ(uv_loop_close(&loop), 0);
    CHECK_EQ(uv_loop_close(&other), 0);
}

/* ---------------------------------------------------------- refusal tests */

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f);
    CHECK(fwrite(p, 1, n, f) == n);
    fclose(f);
}

static void test_corrupt(void)
{
    mk_meta_t *m = (mk_meta_t *)1;

    /* Not a SQLite file at all. */
    char junk[8192];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)(i * 7 + 3);
    write_file(tmp_path("junk.db"), junk, sizeof(junk));
    capture_begin();
    int err = mk_meta_open(tmp_path("junk.db"), &m);
    CHECK(capture_end("not a database"));
    CHECK_EQ(err, MK_ERR_DB);
    CHECK(m == NULL);

    /* A real store whose pages after the first were overwritten. */
    m = open_ok("pages.db");
    for (int i = 0; i < 40; i++) {
        fixture_t f;
        char name[16];
        snprintf(name, sizeof(name), "topic-%03d", i);
        fixture_init(&f, name, 100 + i, 8, 4);
        CHECK_EQ(RUN(m, MK_META_TOPIC_PUT, .t = &f.t), 0);
    }
    mk_meta_close(m);   /* checkpoints the WAL into the file */
    FILE *f = fopen(tmp_path("pages.db"), "r+b");
    CHECK(f);
    CHECK(fseek(f, 0, SEEK_END) == 0);
    long size = ftell(f);
    CHECK(size > 3 * 4096);
    memset(junk, 0x5A, 4096);
    for (long off = 4096; off < size; off += 4096) {
        CHECK(fseek(f, off, SEEK_SET) == 0);
        CHECK(fwrite(junk, 1, 4096, f) == 4096);
    }
    fclose(f);
    capture_begin();
    err = mk_meta_open(tmp_path("pages.db"), &m);
    CHECK(capture_end("meta: "));
    CHECK_EQ(err, MK_ERR_DB);
    CHECK(m == NULL);

    /* A SQLite file of someone else. */
    sqlite3 *db;
    CHECK_EQ(sqlite3_open(tmp_path("foreign.db"), &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    capture_begin();
    err = mk_meta_open(tmp_path("foreign.db"), &m);
    CHECK(capture_end("not a minikora metadata store"));
    CHECK_EQ(err, MK_ERR_DB);

    /* A store written by a newer build. */
    m = open_ok("newer.db");
    mk_meta_close(m);
    CHECK_EQ(sqlite3_open(tmp_path("newer.db"), &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    capture_begin();
    err = mk_meta_open(tmp_path("newer.db"), &m);
    CHECK(capture_end("newer than this build"));
    CHECK_EQ(err, MK_ERR_UNSUPPORTED);

    /* A dangling row that only the foreign key check sees. */
    m = open_ok("fk.db");
    mk_meta_close(m);
    CHECK_EQ(sqlite3_open(tmp_path("fk.db"), &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "INSERT INTO topic_configs VALUES('ghost', 'k', 'v')", NULL, NULL,
                          NULL), SQLITE_OK);
    sqlite3_close(db);
    capture_begin();
    err = mk_meta_open(tmp_path("fk.db"), &m);
    CHECK(capture_end("refers to a missing topics"));
    CHECK_EQ(err, MK_ERR_DB);

    /* Out-of-range values written behind our back are caught on the walk. */
    m = open_ok("range.db");
    fixture_t fx;
    fixture_init(&fx, "r", 1, 2, 0);
    CHECK_EQ(RUN(m, MK_META_TOPIC_PUT, .t = &fx.t), 0);
    mk_meta_close(m);
    CHECK_EQ(sqlite3_open(tmp_path("range.db"), &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "UPDATE partitions SET replicas = x'00000001000002'", NULL, NULL,
                          NULL), SQLITE_CONSTRAINT);
    CHECK_EQ(sqlite3_exec(db, "UPDATE partitions SET leader = 4294967296", NULL, NULL, NULL),
             SQLITE_OK);
    sqlite3_close(db);
    m = open_ok("range.db");
    seen_t s;
    memset(&s, 0, sizeof(s));
    capture_begin();
    err = mk_meta_topic_foreach(m, seen_cb, &s);
    CHECK(capture_end("corrupt store"));
    CHECK_EQ(err, MK_ERR_CORRUPT);
    mk_meta_close(m);

    CHECK_EQ(mk_meta_open("", &m), MK_ERR_INVALID);
    capture_begin();
    err = mk_meta_open(tmp_path("no/such/dir.db"), &m);
    capture_end("");
    CHECK_EQ(err, MK_ERR_DB);
}

/* Every allocation of ours fails in turn: each call fails cleanly (ASAN and
 * LeakSanitizer check the rest) and works again once the hook is off. */
static void test_oom(void)
{
    mk_meta_t *m = open_ok("oom.db");
    fixture_t f;
    fixture_init(&f, "oom", 5, 8, 4);
    CHECK_EQ(RUN(m, MK_META_TOPIC_PUT, .t = &f.t), 0);
    mk_meta_close(m);

    int failures = 0;
    for (long n = 1; n < 64; n++) {
        mk_mem_fail_at(n);
        int err = mk_meta_open(tmp_path("oom.db"), &m);
        if (err == 0) {
            seen_t s;
            memset(&s, 0, sizeof(s));
            err = mk_meta_topic_foreach(m, seen_cb, &s);
            char *v = NULL;
            if (err == 0)
                err = mk_meta_kv_get(m, "absent", &v) == MK_ERR_NOT_FOUND ? 0 : MK_ERR_NOMEM;
            mk_free(v);
            mk_meta_close(m);
        }
        mk_mem_fail_at(0);
        if (err) {
            CHECK_EQ(err, MK_ERR_NOMEM);
            failures++;
        }
    }
    CHECK(failures > 2);
    m = open_ok("oom.db");
    seen_t s;
    walk(m, &s);
    CHECK_EQ(s.count, 1);
    mk_meta_close(m);
}

/* ------------------------------------------------------------- group offsets */

/* Every offset the walk saw, as "group/topic/partition=offset:epoch:metadata:
 * commit:expire" joined by spaces; metadata longer than 16 bytes shows as
 * "#length", a null one as "-". */
typedef struct oseen_s {
    int count;
    int stop_after;   /* return 77 after this many offsets (0 = never) */
    size_t used;
    char all[8192];
} oseen_t;

static int oseen_cb(const mk_meta_offset_t *o, void *arg)
{
    oseen_t *s = arg;
    char meta[32];
    if (!o->metadata)
        snprintf(meta, sizeof(meta), "-");
    else if (strlen(o->metadata) > 16)
        snprintf(meta, sizeof(meta), "#%zu", strlen(o->metadata));
    else
        snprintf(meta, sizeof(meta), "%s", o->metadata);
    int n = snprintf(s->all + s->used, sizeof(s->all) - s->used, "%s%s/%s/%d=%lld:%d:%s:%lld:%lld",
                     s->count ? " " : "", o->group_id, o->topic, o->partition,
                     (long long)o->offset, o->leader_epoch, meta, (long long)o->commit_ms,
                     (long long)o->expire_ms);
    CHECK(n > 0 && (size_t)n < sizeof(s->all) - s->used);
    s->used += (size_t)n;
    s->count++;
    return s->stop_after && s->count == s->stop_after ? 77 : 0;
}

/* The walk of m as one string. */
static const char *owalk(mk_meta_t *m)
{
    static oseen_t s;
    memset(&s, 0, sizeof(s));
    CHECK_EQ(mk_meta_offsets_foreach(m, oseen_cb, &s), 0);
    return s.all;
}

static mk_meta_offset_t off(const char *g, const char *t, int32_t p, int64_t o, const char *meta)
{
    return (mk_meta_offset_t){.group_id = g, .topic = t, .partition = p, .offset = o,
                              .leader_epoch = 1, .metadata = meta, .commit_ms = 1000,
                              .expire_ms = -1};
}

static void test_offsets(void)
{
    mk_meta_t *m = open_ok("offsets.db");
    CHECK_STREQ(owalk(m), "");

    /* One commit, rows out of order: the walk sorts by group, topic, partition. */
    mk_meta_offset_t c1[5] = {
        off("g2", "orders", 0, 7, NULL), off("g1", "orders", 1, 11, ""),
        off("g1", "clicks", 0, 3, "m"), off("g1", "orders", 0, 10, NULL),
        off("g1", "orders", 10, 12, NULL),
    };
    c1[1].leader_epoch = -1;
    c1[2].expire_ms = 5000;
    c1[3].offset = INT64_MAX;
    CHECK_EQ(RUN(m, MK_META_OFFSETS_PUT, .offsets = c1, .n = 5), 0);
    CHECK_STREQ(owalk(m), "g1/clicks/0=3:1:m:1000:5000 g1/orders/0=9223372036854775807:1:-:1000:-1 "
                          "g1/orders/1=11:-1::1000:-1 g1/orders/10=12:1:-:1000:-1 "
                          "g2/orders/0=7:1:-:1000:-1");

    /* Overwrite; a key repeated in one batch: the last row wins. */
    mk_meta_offset_t c2[3] = {off("g1", "orders", 1, 20, "x"), off("g2", "orders", 0, 8, NULL),
                              off("g2", "orders", 0, 9, "last")};
    c2[0].commit_ms = 2000;
    CHECK_EQ(RUN(m, MK_META_OFFSETS_PUT, .offsets = c2, .n = 3), 0);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_PUT, .offsets = c2, .n = 0), 0);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_PUT, .offsets = NULL, .n = 0), 0);
    const char *after_c2 = "g1/clicks/0=3:1:m:1000:5000 "
                           "g1/orders/0=9223372036854775807:1:-:1000:-1 "
                           "g1/orders/1=20:1:x:2000:-1 g1/orders/10=12:1:-:1000:-1 "
                           "g2/orders/0=9:1:last:1000:-1";
    CHECK_STREQ(owalk(m), after_c2);

    /* The callback's nonzero return stops the walk. */
    oseen_t os;
    memset(&os, 0, sizeof(os));
    os.stop_after = 2;
    CHECK_EQ(mk_meta_offsets_foreach(m, oseen_cb, &os), 77);
    CHECK_EQ(os.count, 2);
    CHECK_EQ(mk_meta_offsets_foreach(m, NULL, NULL), MK_ERR_INVALID);

    /* One bad row anywhere in a batch: nothing of it is written. */
    static char big[MK_META_MAX_OFFSET_METADATA + 2];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    for (int bad = 0; bad < 10; bad++) {
        mk_meta_offset_t b[3] = {off("g1", "orders", 1, 99, NULL), off("g9", "new", 0, 1, NULL),
                                 off("g9", "new", 1, 1, NULL)};
        mk_meta_offset_t *o = &b[2];
        int n = 3;
        switch (bad) {
        case 0: o->partition = -1; break;
        case 1: o->partition = MK_META_MAX_PARTITIONS; break;
        case 2: o->group_id = ""; break;
        case 3: o->topic = NULL; break;
        case 4: o->leader_epoch = -2; break;
        case 5: o->commit_ms = -1; break;
        case 6: o->expire_ms = -2; break;
        case 7: o->metadata = big; break;
        case 8: n = -1; break;
        case 9: CHECK_EQ(RUN(m, MK_META_OFFSETS_PUT, .offsets = NULL,
                             .n = 1), MK_ERR_INVALID); continue;
        }
        CHECK_EQ(RUN(m, MK_META_OFFSETS_PUT, .offsets = b, .n = n), MK_ERR_INVALID);
    }
    big[MK_META_MAX_OFFSET_METADATA] = 0;   /* exactly at the limit: fine */
    mk_meta_offset_t edge = off("g0", "t", MK_META_MAX_PARTITIONS - 1, -1, big);
    edge.commit_ms = 0;
    CHECK_EQ(RUN(m, MK_META_OFFSETS_PUT, .offsets = &edge, .n = 1), 0);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_DELETE_GROUP, .group_id = "g0"), 1);
    CHECK_STREQ(owalk(m), after_c2);

    /* Deletes: one offset, a group, a topic across groups; none matching is 0. */
    CHECK_EQ(RUN(m, MK_META_OFFSETS_DELETE_PARTITION, .group_id = "g1", .topic = "orders",
                 .partition = 10), 1);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_DELETE_PARTITION, .group_id = "g1", .topic = "orders",
                 .partition = 10), 0);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_DELETE_PARTITION, .group_id = "g1", .topic = "orders",
                 .partition = -1), MK_ERR_INVALID);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_DELETE_PARTITION, .group_id = "", .topic = "orders",
                 .partition = 0), MK_ERR_INVALID);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_DELETE_TOPIC, .topic = "orders"), 3);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_DELETE_TOPIC, .topic = "orders"), 0);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_DELETE_TOPIC, .topic = NULL), MK_ERR_INVALID);
    CHECK_STREQ(owalk(m), "g1/clicks/0=3:1:m:1000:5000");
    CHECK_EQ(RUN(m, MK_META_OFFSETS_DELETE_GROUP, .group_id = "g1"), 1);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_DELETE_GROUP, .group_id = "g1"), 0);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_DELETE_GROUP, .group_id = ""), MK_ERR_INVALID);
    CHECK_STREQ(owalk(m), "");

    /* Deleting a stored topic takes every group's offsets of it; offsets of a
     * topic the store does not know stay until deleted by name. */
    fixture_t f;
    fixture_init(&f, "orders", 1, 2, 1);
    CHECK_EQ(RUN(m, MK_META_TOPIC_PUT, .t = &f.t), 0);
    mk_meta_offset_t c3[4] = {off("g1", "orders", 0, 1, NULL), off("g2", "orders", 1, 2, NULL),
                              off("g2", "ghost", 0, 3, NULL), off("g2", "orders2", 0, 4, NULL)};
    CHECK_EQ(RUN(m, MK_META_OFFSETS_PUT, .offsets = c3, .n = 4), 0);
    CHECK_EQ(RUN(m, MK_META_TOPIC_DELETE, .topic = "ghost"), MK_ERR_NOT_FOUND);
    CHECK_EQ(RUN(m, MK_META_TOPIC_DELETE, .topic = "orders"), 0);
    CHECK_STREQ(owalk(m), "g2/ghost/0=3:1:-:1000:-1 g2/orders2/0=4:1:-:1000:-1");
    CHECK_EQ(RUN(m, MK_META_OFFSETS_DELETE_TOPIC, .topic = "ghost"), 1);

    /* Expiry: explicit expire_ms, then retention for the rest, per group or all. */
    mk_meta_offset_t c4[5] = {off("a", "t", 0, 1, NULL), off("a", "t", 1, 1, NULL),
                              off("a", "t", 2, 1, NULL), off("b", "t", 0, 1, NULL),
                              off("b", "t", 1, 1, NULL)};
    c4[0].expire_ms = 100;
    c4[1].expire_ms = 200;
    c4[2].commit_ms = 50;
    c4[3].commit_ms = 50;
    c4[4].commit_ms = 500;
    c4[4].expire_ms = 0;
    CHECK_EQ(RUN(m, MK_META_OFFSETS_PUT, .offsets = c4, .n = 5), 0);
    /* b/t/1 (expire 0) */
    CHECK_EQ(RUN(m, MK_META_OFFSETS_EXPIRE, .group_id = NULL, .now_ms = 99, .retention_ms = -1), 1);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_EXPIRE, .group_id = "a", .now_ms = 100,
                 .retention_ms = 1000), 1);  /* a/t/0; retention not yet */
    CHECK_EQ(RUN(m, MK_META_OFFSETS_EXPIRE, .group_id = "a", .now_ms = 150,
                 .retention_ms = 100), 1);  /* a/t/2: 50 <= 150 - 100 */
    CHECK_STREQ(owalk(m), "a/t/1=1:1:-:1000:200 b/t/0=1:1:-:50:-1 g2/orders2/0=4:1:-:1000:-1");
    CHECK_EQ(RUN(m, MK_META_OFFSETS_EXPIRE, .group_id = NULL, .now_ms = 150,
                 .retention_ms = 100), 1);  /* b/t/0 */
    /* explicit expiry wins */
    CHECK_EQ(RUN(m, MK_META_OFFSETS_EXPIRE, .group_id = NULL, .now_ms = 199, .retention_ms = 0), 0);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_EXPIRE, .group_id = NULL, .now_ms = 200,
                 .retention_ms = -1), 1);  /* a/t/1 */
    CHECK_EQ(RUN(m, MK_META_OFFSETS_EXPIRE, .group_id = NULL, .now_ms = 999, .retention_ms = 0), 0);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_EXPIRE, .group_id = NULL, .now_ms = -1,
                 .retention_ms = 0), MK_ERR_INVALID);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_EXPIRE, .group_id = NULL, .now_ms = 0,
                 .retention_ms = -2), MK_ERR_INVALID);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_EXPIRE, .group_id = "", .now_ms = 0,
                 .retention_ms = 0), MK_ERR_INVALID);
    /* The rule itself, as the group coordinator calls it. */
    CHECK(mk_meta_offset_expired(50, -1, 150, 100));
    CHECK(!mk_meta_offset_expired(51, -1, 150, 100));
    CHECK(!mk_meta_offset_expired(0, -1, 150, -1));    /* explicit expiry only */
    CHECK(mk_meta_offset_expired(1000, 200, 200, -1));
    CHECK(!mk_meta_offset_expired(0, 200, 199, 0));    /* explicit expiry wins */
    CHECK(mk_meta_offset_expired(500, 0, 0, -1));
    /* Not a kind of write. */
    CHECK_EQ(RUN(m, .kind = MK_META_OP__COUNT), MK_ERR_INVALID);
    CHECK_EQ(RUN(m, .kind = (mk_meta_op_kind_t)-1), MK_ERR_INVALID);
    CHECK_EQ(mk_meta_op_run(m, NULL), MK_ERR_INVALID);
    CHECK_STREQ(owalk(m), "g2/orders2/0=4:1:-:1000:-1");

    /* Reopen: everything persisted. */
    CHECK_EQ(RUN(m, MK_META_OFFSETS_PUT, .offsets = c2, .n = 3), 0);
    char why[256];
    CHECK_EQ(mk_meta_check(m, why, sizeof(why)), 0);
    mk_meta_close(m);
    m = open_ok("offsets.db");
    CHECK_STREQ(owalk(m), "g1/orders/1=20:1:x:2000:-1 g2/orders/0=9:1:last:1000:-1 "
                          "g2/orders2/0=4:1:-:1000:-1");
    mk_meta_close(m);
}

/* A write failing inside the transaction (a trigger added behind our back
 * refuses topic "boom") rolls back the rows of the batch already written. */
static void test_offsets_atomic(void)
{
    mk_meta_t *m = open_ok("atomic.db");
    mk_meta_offset_t first = off("g", "a", 0, 1, NULL);
    CHECK_EQ(RUN(m, MK_META_OFFSETS_PUT, .offsets = &first, .n = 1), 0);
    mk_meta_close(m);
    sqlite3 *db;
    CHECK_EQ(sqlite3_open(tmp_path("atomic.db"), &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "CREATE TRIGGER boom BEFORE INSERT ON group_offsets"
                              " WHEN NEW.topic = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END",
                          NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    m = open_ok("atomic.db");
    mk_meta_offset_t b[3] = {off("g", "a", 0, 2, NULL), off("g", "a", 1, 2, NULL),
                             off("g", "boom", 0, 2, NULL)};
    CHECK_EQ(RUN(m, MK_META_OFFSETS_PUT, .offsets = b, .n = 3), MK_ERR_INVALID);
    CHECK_STREQ(owalk(m), "g/a/0=1:1:-:1000:-1");

    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    order_t o = {0};
    tag_t t0 = {&o, 0}, t1 = {&o, 1};
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &t0, MK_META_OFFSETS_PUT, .offsets = b, .n = 3), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &t1, MK_META_OFFSETS_PUT, .offsets = b, .n = 2), 0);
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ(o.n, 2);
    CHECK_EQ(o.status[0], MK_ERR_INVALID);
    CHECK_EQ(o.status[1], 0);
    CHECK_STREQ(owalk(m), "g/a/0=2:1:-:1000:-1 g/a/1=2:1:-:1000:-1");
    mk_meta_close(m);
    CHECK_EQ(uv_loop_close(&loop), 0);
}

/* Offset writes queue in one FIFO with topic and kv writes. */
static void test_offsets_async(void)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    mk_meta_t *m = open_ok("oasync.db");
    order_t o = {0};
    tag_t tags[16];
    for (int i = 0; i < 16; i++)
        tags[i] = (tag_t){&o, i};

    fixture_t f;
    fixture_init(&f, "tp", 5, 2, 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[0], MK_META_TOPIC_PUT, .t = &f.t), 0);
    /* Arguments are copied: the strings are rewritten after submission. */
    char g[8], t[8], md[8];
    snprintf(g, sizeof(g), "g1");
    snprintf(t, sizeof(t), "tp");
    snprintf(md, sizeof(md), "meta");
    mk_meta_offset_t c[3] = {off(g, t, 0, 10, md), off(g, t, 1, 11, NULL),
                             off("g2", "other", 0, 12, NULL)};
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[1], MK_META_OFFSETS_PUT, .offsets = c, .n = 3), 0);
    memset(g, 'X', sizeof(g) - 1);
    memset(t, 'Y', sizeof(t) - 1);
    memset(md, 0, sizeof(md));
    memset(c, 0, sizeof(c));
    mk_meta_offset_t late = off("g2", "tp", 1, 13, NULL);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[2], MK_META_OFFSETS_PUT, .offsets = &late, .n = 1), 0);
    /* takes 3 */
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[3], MK_META_TOPIC_DELETE, .topic = "tp"), 0);
    late.group_id = "g3";
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[4], MK_META_OFFSETS_PUT, .offsets = &late, .n = 1), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[5], MK_META_OFFSETS_DELETE_TOPIC, .topic = "tp"), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[6], MK_META_OFFSETS_PUT, .offsets = NULL, .n = 0), 0);
    mk_meta_offset_t e[2] = {off("g3", "x", 0, 1, NULL), off("g3", "x", 1, 1, NULL)};
    e[0].expire_ms = 10;
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[7], MK_META_OFFSETS_PUT, .offsets = e, .n = 2), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[8], MK_META_OFFSETS_EXPIRE, .group_id = NULL,
                    .now_ms = 10, .retention_ms = -1), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[9], MK_META_OFFSETS_EXPIRE, .group_id = "g3",
                    .now_ms = 1000, .retention_ms = 0), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[10], MK_META_OFFSETS_DELETE_PARTITION,
                    .group_id = "g2", .topic = "other", .partition = 0), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[11], MK_META_OFFSETS_PUT, .offsets = e, .n = 2), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[12], MK_META_OFFSETS_DELETE_GROUP,
                    .group_id = "g3"), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[13], MK_META_KV_SET, .key = "k", .value = "v"), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[14], MK_META_OFFSETS_PUT, .offsets = e, .n = 1), 0);
    CHECK_EQ(mk_meta_pending(m), 15);

    /* Refused at submission: the callback never runs. */
    mk_meta_offset_t bad[2] = {off("g", "t", 0, 1, NULL), off("g", "t", -1, 1, NULL)};
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[15], MK_META_OFFSETS_PUT, .offsets = bad,
                    .n = 2), MK_ERR_INVALID);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[15], MK_META_OFFSETS_PUT, .offsets = bad,
                    .n = -1), MK_ERR_INVALID);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[15], MK_META_OFFSETS_DELETE_GROUP,
                    .group_id = ""), MK_ERR_INVALID);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[15], MK_META_OFFSETS_DELETE_PARTITION, .group_id = "g",
                    .topic = "t", .partition = -1),
             MK_ERR_INVALID);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[15], MK_META_OFFSETS_DELETE_TOPIC, .topic = NULL),
             MK_ERR_INVALID);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[15], MK_META_OFFSETS_EXPIRE, .group_id = NULL,
                    .now_ms = 0, .retention_ms = -2),
             MK_ERR_INVALID);
    CHECK_EQ(SUBMIT(m, NULL, done_cb, &tags[15], MK_META_OFFSETS_EXPIRE, .group_id = NULL,
                    .now_ms = 0, .retention_ms = 0),
             MK_ERR_INVALID);
    CHECK_EQ(mk_meta_pending(m), 15);

    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ(o.n, 15);
    /* status: 0 for puts, the count for deletes and expiry. */
    static const int want[15] = {0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 0, 2, 0, 0};
    for (int i = 0; i < 15; i++) {
        CHECK_EQ(o.seq[i], i);
        CHECK_EQ(o.status[i], want[i]);
    }
    CHECK_STREQ(owalk(m), "g3/x/0=1:1:-:1000:10");
    seen_t s;
    walk(m, &s);
    CHECK_EQ(s.count, 0);

    /* Close with offset writes pending: they still run, in order. */
    o.n = 0;
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[0], MK_META_OFFSETS_DELETE_GROUP,
                    .group_id = "g3"), 0);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[1], MK_META_OFFSETS_PUT, .offsets = e, .n = 2), 0);
    mk_meta_close(m);
    CHECK_EQ(SUBMIT(m, &loop, done_cb, &tags[15], MK_META_OFFSETS_DELETE_GROUP, .group_id = "g3"),
             MK_ERR_STATE);
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ(o.n, 2);
    CHECK_EQ(o.status[0], 1);
    CHECK_EQ(o.status[1], 0);
    m = open_ok("oasync.db");
    CHECK_STREQ(owalk(m), "g3/x/0=1:1:-:1000:10 g3/x/1=1:1:-:1000:-1");
    mk_meta_close(m);
    CHECK_EQ(uv_loop_close(&loop), 0);
}

/* Values written behind our back are range-checked on the walk. */
static void test_offsets_corrupt(void)
{
    static const char *const breakage[] = {
        "UPDATE group_offsets SET committed_offset = 'abc'",
        "UPDATE group_offsets SET partition_index = 1000000",
        "UPDATE group_offsets SET leader_epoch = 2147483648",
        "UPDATE group_offsets SET metadata = x'00'",
        "UPDATE group_offsets SET group_id = x'6700'",
        "UPDATE group_offsets SET commit_timestamp_ms = -5",
        "UPDATE group_offsets SET topic = ''",
    };
    for (size_t i = 0; i < MK_ARRAY_LEN(breakage); i++) {
        char name[32];
        snprintf(name, sizeof(name), "ocorrupt%zu.db", i);
        mk_meta_t *m = open_ok(name);
        mk_meta_offset_t o = off("g", "t", 0, 1, "m");
        CHECK_EQ(RUN(m, MK_META_OFFSETS_PUT, .offsets = &o, .n = 1), 0);
        mk_meta_close(m);
        sqlite3 *db;
        CHECK_EQ(sqlite3_open(tmp_path(name), &db), SQLITE_OK);
        CHECK_EQ(sqlite3_exec(db, breakage[i], NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        m = open_ok(name);
        oseen_t os;
        memset(&os, 0, sizeof(os));
        capture_begin();
        int err = mk_meta_offsets_foreach(m, oseen_cb, &os);
        CHECK(capture_end("corrupt store: offset of group"));
        CHECK_EQ(err, MK_ERR_CORRUPT);
        CHECK_EQ(os.count, 0);
        mk_meta_close(m);
    }
    /* The CHECK constraints refuse the rest outright. */
    sqlite3 *db;
    CHECK_EQ(sqlite3_open(tmp_path("ocorrupt0.db"), &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "UPDATE group_offsets SET leader_epoch = -2", NULL, NULL, NULL),
             SQLITE_CONSTRAINT);
    CHECK_EQ(sqlite3_exec(db, "UPDATE group_offsets SET partition_index = -1", NULL, NULL, NULL),
             SQLITE_CONSTRAINT);
    sqlite3_close(db);
}

/* --------------------------------------------------------- remote segments */

typedef struct rseen_s {
    int count;
    int64_t starts[8];
    int32_t states[8];
    int32_t chunks_len[8];
    char ids[8][16];
} rseen_t;

static int rseen_cb(const mk_meta_remote_segment_t *r, void *arg)
{
    rseen_t *s = arg;
    if (s->count < 8) {
        s->starts[s->count] = r->start_offset;
        s->states[s->count] = r->state;
        s->chunks_len[s->count] = r->chunks_len;
        snprintf(s->ids[s->count], sizeof(s->ids[0]), "%s", r->segment_id);
    }
    s->count++;
    return 0;
}

static mk_meta_remote_segment_t rseg(const char *id, int64_t start, int64_t end, int32_t state)
{
    static const uint8_t blob[24] = {1, 2, 3};
    mk_meta_remote_segment_t r = {.topic_id = {7}, .partition = 2, .segment_id = id, .topic = "orders",
                                  .start_offset = start, .end_offset = end, .max_timestamp = 99,
                                  .size_bytes = 4096, .state = state, .broker = 3, .leader_epoch = 1,
                                  .crc32c = 0xdeadbeef, .sha256 = "ab", .chunks = blob, .chunks_len = 24,
                                  .event_ms = 5};
    return r;
}

/* Tiered storage's rows: put, state, delete, the walk in offset order,
 * argument checks, and values out of range read back as corrupt. */
static void test_remote_segments(void)
{
    mk_meta_t *m = open_ok("rseg.db");
    mk_meta_remote_segment_t a = rseg("B", 100, 199, MK_META_RSEG_COPY_STARTED);
    mk_meta_remote_segment_t b = rseg("A", 0, 99, MK_META_RSEG_COPY_FINISHED);
    CHECK_EQ(RUN(m, MK_META_REMOTE_SEGMENT_PUT, .rs = &a), 0);
    CHECK_EQ(RUN(m, MK_META_REMOTE_SEGMENT_PUT, .rs = &b), 0);
    a.state = MK_META_RSEG_COPY_FINISHED;
    CHECK_EQ(RUN(m, MK_META_REMOTE_SEGMENT_STATE, .rs = &a), 0);
    mk_meta_remote_segment_t none = rseg("Z", 0, 1, MK_META_RSEG_DELETE_STARTED);
    CHECK_EQ(RUN(m, MK_META_REMOTE_SEGMENT_STATE, .rs = &none), MK_ERR_NOT_FOUND);
    CHECK_EQ(RUN(m, MK_META_REMOTE_SEGMENT_DELETE, .rs = &none), 0); /* absent: fine */
    mk_meta_remote_segment_t bad = rseg("X", 10, 5, 0);               /* end before start */
    CHECK_EQ(RUN(m, MK_META_REMOTE_SEGMENT_PUT, .rs = &bad), MK_ERR_INVALID);
    bad = rseg("", 0, 5, 0);
    CHECK_EQ(RUN(m, MK_META_REMOTE_SEGMENT_PUT, .rs = &bad), MK_ERR_INVALID);
    bad = rseg("X", 0, 5, 7);
    CHECK_EQ(RUN(m, MK_META_REMOTE_SEGMENT_PUT, .rs = &bad), MK_ERR_INVALID);
    rseen_t rs;
    memset(&rs, 0, sizeof(rs));
    CHECK_EQ(mk_meta_remote_segments_foreach(m, rseen_cb, &rs), 0);
    CHECK_EQ(rs.count, 2);
    CHECK(rs.starts[0] == 0 && rs.starts[1] == 100 && strcmp(rs.ids[0], "A") == 0);
    CHECK(rs.states[1] == MK_META_RSEG_COPY_FINISHED && rs.chunks_len[0] == 24);
    CHECK_EQ(RUN(m, MK_META_REMOTE_SEGMENT_DELETE, .rs = &b), 0);
    memset(&rs, 0, sizeof(rs));
    CHECK_EQ(mk_meta_remote_segments_foreach(m, rseen_cb, &rs), 0);
    CHECK(rs.count == 1 && strcmp(rs.ids[0], "B") == 0);
    mk_meta_close(m);

    /* A value the store would never write, read back: corrupt, not trusted. */
    sqlite3 *db;
    CHECK_EQ(sqlite3_open(tmp_path("rseg.db"), &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "UPDATE remote_segments SET crc32c = -1", NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "UPDATE remote_segments SET state = 9", NULL, NULL, NULL), SQLITE_CONSTRAINT);
    sqlite3_close(db);
    m = open_ok("rseg.db");
    memset(&rs, 0, sizeof(rs));
    capture_begin();
    int err = mk_meta_remote_segments_foreach(m, rseen_cb, &rs);
    CHECK(capture_end("corrupt store: remote segment"));
    CHECK_EQ(err, MK_ERR_CORRUPT);
    CHECK_EQ(rs.count, 0);
    mk_meta_close(m);
}

/* --------------------------------------------------------------- migration */

/* The v1 schema exactly as released (meta_migrations[0]); never edit. */
static const char v1_schema[] =
    "CREATE TABLE kv("
    "  key   TEXT NOT NULL PRIMARY KEY,"
    "  value TEXT NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE topics("
    "  name               TEXT NOT NULL PRIMARY KEY,"
    "  topic_id           BLOB NOT NULL UNIQUE CHECK(length(topic_id) = 16),"
    "  partition_count    INTEGER NOT NULL CHECK(partition_count > 0),"
    "  replication_factor INTEGER NOT NULL,"
    "  created_ms         INTEGER NOT NULL,"
    "  cell_id            INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE topic_configs("
    "  topic TEXT NOT NULL REFERENCES topics(name) ON DELETE CASCADE,"
    "  key   TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY(topic, key)"
    ") WITHOUT ROWID;"
    "CREATE TABLE partitions("
    "  topic           TEXT NOT NULL REFERENCES topics(name) ON DELETE CASCADE,"
    "  partition_index INTEGER NOT NULL CHECK(partition_index >= 0),"
    "  leader          INTEGER NOT NULL,"
    "  leader_epoch    INTEGER NOT NULL,"
    "  replicas        BLOB NOT NULL CHECK(length(replicas) % 4 = 0),"
    "  PRIMARY KEY(topic, partition_index)"
    ") WITHOUT ROWID;";

/* Writes a v1 store the way a v1 build left it, with a kv, two topics,
 * configs and assignments, plus extra_sql (may be NULL). */
static void write_v1(const char *name, const char *extra_sql)
{
    sqlite3 *db;
    CHECK_EQ(sqlite3_open(tmp_path(name), &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db,
                          "PRAGMA user_version = 1; PRAGMA application_id = 1835756916;"
                          "INSERT INTO kv VALUES('cluster.id', 'v1-cluster');"
                          "INSERT INTO topics VALUES('orders', x'000102030405060708090a0b0c0d0e0f',"
                          " 2, 3, 1700000000000, 1);"
                          "INSERT INTO topics VALUES('clicks', x'100102030405060708090a0b0c0d0e0f',"
                          " 1, 1, 1700000000001, 0);"
                          "INSERT INTO topic_configs VALUES('orders', 'retention.ms', '1000');"
                          "INSERT INTO partitions VALUES('orders', 1, 7, 4,"
                          " x'000000070000000800000009');",
                          NULL, NULL, NULL), SQLITE_OK);
    if (extra_sql)
        CHECK_EQ(sqlite3_exec(db, extra_sql, NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* "type name sql; ..." of a file's schema, and its user_version. */
static void schema_of(const char *name, char *out, size_t n, int *version)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    CHECK_EQ(sqlite3_open(tmp_path(name), &db), SQLITE_OK);
    CHECK_EQ(sqlite3_prepare_v2(db, "SELECT type || ' ' || name || ' ' || ifnull(sql, '') FROM"
                                    " sqlite_master ORDER BY name", -1, &s, NULL), SQLITE_OK);
    size_t used = 0;
    out[0] = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        used += (size_t)snprintf(out + used, n - used, "%s; ", sqlite3_column_text(s, 0));
        CHECK(used < n);
    }
    sqlite3_finalize(s);
    CHECK_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
    CHECK_EQ(sqlite3_step(s), SQLITE_ROW);
    *version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_migrate_v1(void)
{
    write_v1("v1.db", NULL);
    mk_meta_t *m = open_ok("v1.db");
    seen_t s;
    walk(m, &s);
    CHECK_EQ(s.count, 2);
    CHECK(strcmp(s.names[1], "orders") == 0);
    CHECK_EQ(s.partition_count[1], 2);
    CHECK_EQ(s.rf[1], 3);
    CHECK_EQ(s.cell[1], 1);
    CHECK_EQ(s.created[1], 1700000000000LL);
    CHECK(strcmp(s.config[1], "retention.ms=1000") == 0);
    CHECK_EQ(s.leader[1][0], -1);
    CHECK_EQ(s.leader[1][1], 7);
    CHECK_EQ(s.epoch[1][1], 4);
    CHECK_EQ(s.rcount[1][1], 3);
    CHECK_EQ(s.replica0[1][1], 7);
    char *v;
    CHECK_EQ(mk_meta_kv_get(m, "cluster.id", &v), 0);
    CHECK(strcmp(v, "v1-cluster") == 0);
    mk_free(v);
    CHECK_STREQ(owalk(m), "");
    mk_meta_offset_t c[2] = {off("g", "orders", 1, 5, NULL), off("g", "clicks", 0, 6, "x")};
    CHECK_EQ(RUN(m, MK_META_OFFSETS_PUT, .offsets = c, .n = 2), 0);
    CHECK_EQ(mk_meta_check(m, NULL, 0), 0);
    mk_meta_close(m);

    /* The upgraded file has exactly the schema of a store created at v2. */
    char got[4096], want[4096];
    int got_v = 0, want_v = 0;
    mk_meta_close(open_ok("v2.db"));
    schema_of("v1.db", got, sizeof(got), &got_v);
    schema_of("v2.db", want, sizeof(want), &want_v);
    CHECK_STREQ(got, want);
    CHECK_EQ(got_v, MK_META_SCHEMA_VERSION);
    CHECK_EQ(want_v, MK_META_SCHEMA_VERSION);

    m = open_ok("v1.db");   /* no second migration */
    walk(m, &s);
    CHECK_EQ(s.count, 2);
    CHECK_STREQ(owalk(m), "g/clicks/0=6:1:x:1000:-1 g/orders/1=5:1:-:1000:-1");
    CHECK_EQ(RUN(m, MK_META_TOPIC_DELETE, .topic = "orders"), 0);
    CHECK_STREQ(owalk(m), "g/clicks/0=6:1:x:1000:-1");
    mk_meta_close(m);

    /* A migration that fails rolls back: the v1 store is left as it was. */
    write_v1("v1bad.db", "CREATE TABLE group_offsets(x);");
    schema_of("v1bad.db", want, sizeof(want), &want_v);
    capture_begin();
    int err = mk_meta_open(tmp_path("v1bad.db"), &m);
    CHECK(capture_end("migration to schema v2 failed"));
    CHECK_EQ(err, MK_ERR_DB);
    schema_of("v1bad.db", got, sizeof(got), &got_v);
    CHECK_STREQ(got, want);
    CHECK_EQ(got_v, 1);
    sqlite3 *db;
    CHECK_EQ(sqlite3_open(tmp_path("v1bad.db"), &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "DROP TABLE group_offsets", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    m = open_ok("v1bad.db");
    walk(m, &s);
    CHECK_EQ(s.count, 2);
    mk_meta_close(m);
}

/* Allocation failures while copying a large async commit (several arena
 * chunks): refused cleanly with the callback never called, until it fits. */
static void test_offsets_oom(void)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    mk_meta_t *m = open_ok("ooff.db");
    static char names[40][16];
    static char meta[40][400];
    mk_meta_offset_t c[40];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "topic-%02d", i / 4);
        memset(meta[i], 'a' + i % 26, sizeof(meta[i]) - 1);
        c[i] = off(i < 20 ? "g1" : "g2", names[i], i % 4, i, meta[i]);
    }
    order_t o = {0};
    tag_t t = {&o, 5};
    int failures = 0, ok = 0;
    for (long n = 1; n < 64 && !ok; n++) {
        mk_mem_fail_at(n);
        int err = SUBMIT(m, &loop, done_cb, &t, MK_META_OFFSETS_PUT, .offsets = c, .n = 40);
        mk_mem_fail_at(0);
        if (err) {
            CHECK_EQ(err, MK_ERR_NOMEM);
            CHECK_EQ(mk_meta_pending(m), 0);
            failures++;
        } else {
            ok = 1;
        }
    }
    CHECK(ok && failures >= 4);   /* the job and three arena chunks */
    for (int i = 1; i <= 2; i++) {   /* the job, then the copy of a name */
        mk_mem_fail_at(i);
        int e1 = SUBMIT(m, &loop, done_cb, &t, MK_META_OFFSETS_DELETE_GROUP, .group_id = "g1");
        mk_mem_fail_at(i);
        int e2 = SUBMIT(m, &loop, done_cb, &t, MK_META_OFFSETS_DELETE_PARTITION, .group_id = "g1",
                        .topic = "t", .partition = 0);
        mk_mem_fail_at(i);
        int e3 = SUBMIT(m, &loop, done_cb, &t, MK_META_OFFSETS_DELETE_TOPIC, .topic = "t");
        mk_mem_fail_at(i);
        int e4 = SUBMIT(m, &loop, done_cb, &t, MK_META_OFFSETS_EXPIRE, .group_id = "g1",
                        .now_ms = 0, .retention_ms = -1);
        mk_mem_fail_at(0);
        CHECK_EQ(e1, MK_ERR_NOMEM);
        CHECK_EQ(e2, MK_ERR_NOMEM);
        CHECK_EQ(e3, MK_ERR_NOMEM);
        CHECK_EQ(e4, MK_ERR_NOMEM);
    }
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ(o.n, 1);
    CHECK_EQ(o.status[0], 0);
    mk_meta_close(m);

    /* Open and walk with allocations failing: clean errors, then all 40
     * back.  The walk itself allocates nothing of ours. */
    int fails = 0;
    for (long n = 1; n < 16; n++) {
        mk_mem_fail_at(n);
        int err = mk_meta_open(tmp_path("ooff.db"), &m);
        oseen_t os;
        memset(&os, 0, sizeof(os));
        if (err == 0) {
            err = mk_meta_offsets_foreach(m, oseen_cb, &os);
            mk_meta_close(m);
        }
        mk_mem_fail_at(0);
        if (err) {
            CHECK_EQ(err, MK_ERR_NOMEM);
            fails++;
        } else {
            CHECK_EQ(os.count, 40);
        }
    }
    CHECK(fails >= 2);
    m = open_ok("ooff.db");
    mk_mem_fail_at(1);
    const char *all = owalk(m);
    mk_mem_fail_at(0);
    CHECK(strncmp(all, "g1/topic-00/0=0:1:#399:1000:-1 g1/topic-00/1=1:1:#399", 53) == 0);
    CHECK(strstr(all, " g2/topic-09/3=39:1:#399:1000:-1") != NULL);
    mk_meta_close(m);
    CHECK_EQ(uv_loop_close(&loop), 0);
}

/* ================================================================== audit */

typedef struct audit_seen_s {
    int n;
    int64_t last_seq;
    char text[1024];
} audit_seen_t;

static int audit_cb(const mk_meta_audit_t *a, void *arg)
{
    audit_seen_t *s = arg;
    CHECK(a->seq > s->last_seq);
    s->last_seq = a->seq;
    size_t used = strlen(s->text);
    snprintf(s->text + used, sizeof(s->text) - used, "%s%s:%s/%d/%d:%lld>%lld:%s", s->n ? " " : "", a->kind,
             a->topic, a->partition, a->broker, a->start_before == MK_META_AUDIT_NONE ? -9LL : (long long)a->start_before,
             a->start_after == MK_META_AUDIT_NONE ? -9LL : (long long)a->start_after, a->rule);
    s->n++;
    return 0;
}

static mk_meta_audit_t audit_row(const char *kind, int32_t broker, int64_t before, int64_t after, const char *rule)
{
    return (mk_meta_audit_t){.ts_ms = 5, .kind = kind, .topic = "t", .topic_id = "ID", .partition = 0,
                             .broker = broker, .start_before = before, .start_after = after,
                             .base_offset = MK_META_AUDIT_NONE, .end_offset = MK_META_AUDIT_NONE,
                             .largest_ts = MK_META_AUDIT_NONE, .retention_ms = -1,
                             .retention_bytes = MK_META_AUDIT_NONE, .log_bytes = MK_META_AUDIT_NONE,
                             .rule = rule, .detail = "d"};
}

static void test_audit(void)
{
    mk_meta_t *m = open_ok("audit.db");
    audit_seen_t s = {0};
    CHECK_EQ(mk_meta_audit_foreach(m, 0, NULL, audit_cb, &s), 0);
    CHECK_EQ(s.n, 0);
    mk_meta_audit_t rows[4] = {audit_row("log_start", 1, MK_META_AUDIT_NONE, 0, "first_seen"),
                               audit_row("log_start", 1, 0, 10, "retention"),
                               audit_row("incident", 2, MK_META_AUDIT_NONE, MK_META_AUDIT_NONE, "coverage"),
                               audit_row("log_start", 1, 10, 20, "retention")};
    CHECK_EQ(RUN(m, MK_META_AUDIT_APPEND, .audit = rows, .n = 4), 0);
    CHECK_EQ(mk_meta_audit_foreach(m, 0, NULL, audit_cb, &s), 0);
    CHECK_STREQ(s.text, "log_start:t/0/1:-9>0:first_seen log_start:t/0/1:0>10:retention incident:t/0/2:-9>-9:coverage "
                        "log_start:t/0/1:10>20:retention");
    /* By kind, and after a sequence number. */
    audit_seen_t k = {0};
    CHECK_EQ(mk_meta_audit_foreach(m, 0, "incident", audit_cb, &k), 0);
    CHECK_STREQ(k.text, "incident:t/0/2:-9>-9:coverage");
    audit_seen_t after = {0};
    CHECK_EQ(mk_meta_audit_foreach(m, s.last_seq - 1, NULL, audit_cb, &after), 0);
    CHECK_EQ(after.n, 1);
    /* Bad rows are refused whole. */
    mk_meta_audit_t bad[2] = {audit_row("log_start", 1, 0, 1, "x"), audit_row("", 1, 0, 1, "x")};
    CHECK_EQ(RUN(m, MK_META_AUDIT_APPEND, .audit = bad, .n = 2), MK_ERR_INVALID);
    bad[1] = audit_row("log_start", -2, 0, 1, "x");
    CHECK_EQ(RUN(m, MK_META_AUDIT_APPEND, .audit = bad, .n = 2), MK_ERR_INVALID);
    CHECK_EQ(RUN(m, MK_META_AUDIT_APPEND, .audit = bad, .n = 0), MK_ERR_INVALID);
    /* Prune to one row: the newest log_start of each replica stays. */
    CHECK_EQ(RUN(m, MK_META_AUDIT_PRUNE, .n = 1), 3);
    audit_seen_t p = {0};
    CHECK_EQ(mk_meta_audit_foreach(m, 0, NULL, audit_cb, &p), 0);
    CHECK_STREQ(p.text, "log_start:t/0/1:10>20:retention");
    mk_meta_close(m);

    /* Read-only: the rows are there, writes are refused, no file is made. */
    CHECK_EQ(mk_meta_open_readonly(tmp_path("absent.db"), &m), MK_ERR_NOT_FOUND);
    CHECK_EQ(mk_meta_open_readonly(tmp_path("audit.db"), &m), 0);
    audit_seen_t r = {0};
    CHECK_EQ(mk_meta_audit_foreach(m, 0, NULL, audit_cb, &r), 0);
    CHECK_EQ(r.n, 1);
    CHECK_EQ(RUN(m, MK_META_KV_SET, .key = "a", .value = "b"), MK_ERR_STATE);
    seen_t ts;
    walk(m, &ts);
    mk_meta_close(m);
    CHECK(access(tmp_path("audit.db-shm"), F_OK) != 0);
    CHECK(access(tmp_path("absent.db"), F_OK) != 0);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/meta_test.XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
    mk_logger_set_level(MK_LOGGER_WARN);

    test_open_kv();
    test_topics();
    test_async();
    test_corrupt();
    test_oom();
    test_offsets();
    test_offsets_atomic();
    test_offsets_async();
    test_offsets_corrupt();
    test_migrate_v1();
    test_offsets_oom();
    test_audit();
    test_remote_segments();

    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "meta_test: could not remove %s\n", tmpdir);
    printf("meta_test: ok\n");
    return 0;
}
