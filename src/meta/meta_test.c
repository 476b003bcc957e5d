/*
 * meta_test.c -- unit test of the metadata store.  Standalone program; exits
 * 0 when every check passes.
 *
 * Each test works in a fresh temporary directory.  Covered: create and
 * integrity check, key/values, topics with configs and assignments (put,
 * replace, walk, delete, per-config and per-partition updates), persistence
 * across reopen, async writes through a libuv loop (order, errors, close with
 * writes pending, close from a callback), refusal of corrupt, foreign and
 * newer files with a log line, and allocation failures.
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
    CHECK_EQ(mk_meta_kv_set(m, "cluster.id", "abc"), 0);
    CHECK_EQ(mk_meta_kv_get(m, "cluster.id", &v), 0);
    CHECK(strcmp(v, "abc") == 0);
    mk_free(v);
    CHECK_EQ(mk_meta_kv_set(m, "cluster.id", "def"), 0);
    CHECK_EQ(mk_meta_kv_set(m, "empty", ""), 0);
    CHECK_EQ(mk_meta_kv_get(m, "empty", &v), 0);
    CHECK(strcmp(v, "") == 0);
    mk_free(v);
    CHECK_EQ(mk_meta_kv_set(m, "empty", NULL), 0);
    CHECK_EQ(mk_meta_kv_set(m, "empty", NULL), 0);   /* absent: fine */
    CHECK_EQ(mk_meta_kv_get(m, "empty", &v), MK_ERR_NOT_FOUND);
    CHECK_EQ(mk_meta_kv_set(m, "", "x"), MK_ERR_INVALID);
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
    CHECK_EQ(mk_meta_topic_put(m, &a.t), 0);
    CHECK_EQ(mk_meta_topic_put(m, &b.t), 0);

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
    CHECK_EQ(mk_meta_topic_put(m, &a2.t), 0);
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
    CHECK_EQ(mk_meta_partition_put(m, "orders", &p), 0);
    p.leader = 6;
    p.leader_epoch = 5;
    CHECK_EQ(mk_meta_partition_put(m, "orders", &p), 0);
    p.partition = 2;
    CHECK_EQ(mk_meta_partition_put(m, "orders", &p), MK_ERR_INVALID);
    p.partition = 0;
    CHECK_EQ(mk_meta_partition_put(m, "nope", &p), MK_ERR_NOT_FOUND);
    p.replica_count = MK_META_MAX_REPLICAS + 1;
    CHECK_EQ(mk_meta_partition_put(m, "orders", &p), MK_ERR_INVALID);
    CHECK_EQ(mk_meta_topic_config_set(m, "orders", "retention.ms", "1000"), 0);
    CHECK_EQ(mk_meta_topic_config_set(m, "orders", "x.y", NULL), 0);
    CHECK_EQ(mk_meta_topic_config_set(m, "orders", "absent", NULL), 0);
    CHECK_EQ(mk_meta_topic_config_set(m, "nope", "a", "b"), MK_ERR_NOT_FOUND);
    CHECK_EQ(mk_meta_topic_config_set(m, "nope", "a", NULL), MK_ERR_NOT_FOUND);
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
    CHECK_EQ(mk_meta_topic_put(m, &bad.t), MK_ERR_EXISTS);
    fixture_init(&bad, "other", 9, 2, 0);
    bad.parts[1].partition = 0;
    CHECK_EQ(mk_meta_topic_put(m, &bad.t), MK_ERR_INVALID);
    bad.parts[1].partition = 1;
    bad.t.partition_count = 0;
    CHECK_EQ(mk_meta_topic_put(m, &bad.t), MK_ERR_INVALID);
    bad.t.partition_count = 2;
    bad.t.name = "";
    CHECK_EQ(mk_meta_topic_put(m, &bad.t), MK_ERR_INVALID);
    walk(m, &s);
    CHECK_EQ(s.count, 2);   /* failed puts left nothing behind */

    /* Delete. */
    CHECK_EQ(mk_meta_topic_delete(m, "missing"), MK_ERR_NOT_FOUND);
    CHECK_EQ(mk_meta_topic_delete(m, "clicks"), 0);
    CHECK_EQ(mk_meta_topic_delete(m, "clicks"), MK_ERR_NOT_FOUND);
    walk(m, &s);
    CHECK_EQ(s.count, 1);
    CHECK(strcmp(s.names[0], "orders") == 0);
    /* Re-create with the old id: the cascade removed the old rows. */
    CHECK_EQ(mk_meta_topic_put(m, &b.t), 0);
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
    CHECK_EQ(mk_meta_topic_put_async(m, &loop, &a->t, done_cb, &tags[0]), 0);
    CHECK_EQ(mk_meta_topic_put_async(m, &loop, &b->t, done_cb, &tags[1]), 0);
    /* The arguments were copied: scribble over and free them. */
    memset(a, 0xAB, sizeof(*a));
    memset(b, 0xAB, sizeof(*b));
    mk_free(a);
    mk_free(b);

    char topic[16], key[16], val[16];
    snprintf(topic, sizeof(topic), "alpha");
    snprintf(key, sizeof(key), "retention.ms");
    snprintf(val, sizeof(val), "42");
    CHECK_EQ(mk_meta_topic_config_set_async(m, &loop, topic, key, val, done_cb, &tags[2]), 0);
    memset(val, 0, sizeof(val));
    int32_t reps[1] = {9};
    mk_meta_partition_t p = {.partition = 3, .leader = 9, .leader_epoch = 77,
                             .replica_count = 1, .replicas = reps};
    CHECK_EQ(mk_meta_partition_put_async(m, &loop, "alpha", &p, done_cb, &tags[3]), 0);
    reps[0] = -5;
    CHECK_EQ(mk_meta_topic_delete_async(m, &loop, "beta", done_cb, &tags[4]), 0);
    CHECK_EQ(mk_meta_topic_delete_async(m, &loop, "beta", done_cb, &tags[5]), 0);   /* gone */
    CHECK_EQ(mk_meta_kv_set_async(m, &loop, "cluster.id", "c1", done_cb, &tags[6]), 0);
    CHECK_EQ(mk_meta_kv_set_async(m, &loop, "tmp", "t", NULL, NULL), 0);
    CHECK_EQ(mk_meta_kv_set_async(m, &loop, "tmp", NULL, done_cb, &tags[7]), 0);
    CHECK_EQ(mk_meta_topic_config_set_async(m, &loop, "nope", "k", "v", done_cb, &tags[8]), 0);
    CHECK_EQ(mk_meta_pending(m), 10);

    /* Refused at submission: the callback must never run. */
    CHECK_EQ(mk_meta_topic_delete_async(m, &other, "alpha", done_cb, &tags[15]), MK_ERR_INVALID);
    CHECK_EQ(mk_meta_topic_delete_async(m, &loop, "", done_cb, &tags[15]), MK_ERR_INVALID);
    p.replica_count = -1;
    CHECK_EQ(mk_meta_partition_put_async(m, &loop, "alpha", &p, done_cb, &tags[15]), MK_ERR_INVALID);
    mk_mem_fail_at(1);
    CHECK_EQ(mk_meta_topic_delete_async(m, &loop, "alpha", done_cb, &tags[15]), MK_ERR_NOMEM);
    mk_mem_fail_at(2);
    CHECK_EQ(mk_meta_topic_delete_async(m, &loop, "alpha", done_cb, &tags[15]), MK_ERR_NOMEM);
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
    CHECK_EQ(mk_meta_kv_set_async(m, &other, "k2", "v2", done_cb, &tags[0]), 0);
    CHECK_EQ(uv_run(&other, UV_RUN_DEFAULT), 0);
    CHECK_EQ(o.n, 1);

    /* Close with writes pending: they still run, in order, then it frees. */
    o.n = 0;
    fixture_t c;
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "t%d", i);
        fixture_init(&c, name, 10 + i, 2, 1);
        CHECK_EQ(mk_meta_topic_put_async(m, &loop, &c.t, done_cb, &tags[i]), 0);
    }
    mk_meta_close(m);
    CHECK_EQ(mk_meta_kv_set_async(m, &loop, "late", "x", done_cb, &tags[15]), MK_ERR_STATE);
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
    CHECK_EQ(mk_meta_topic_delete_async(m, &loop, "t0", done_cb, &t100), 0);
    CHECK_EQ(mk_meta_topic_delete_async(m, &loop, "t1", done_cb, &tags[1]), 0);
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ(o.n, 2);
    CHECK_EQ(o.seq[0], 100);
    CHECK_EQ(o.seq[1], 1);
    CHECK_EQ(o.status[1], 0);

    /* ... and from the last callback, with nothing behind it. */
    m = open_ok("async.db");
    o.n = 0;
    o.close_in_cb = m;
    CHECK_EQ(mk_meta_topic_delete_async(m, &loop, "t2", done_cb, &t100), 0);
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
        CHECK_EQ(mk_meta_topic_put(m, &f.t), 0);
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
    CHECK_EQ(mk_meta_topic_put(m, &fx.t), 0);
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
    CHECK_EQ(mk_meta_topic_put(m, &f.t), 0);
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

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/meta_test.XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
    mk_log_set_level(MK_LOG_WARN);

    test_open_kv();
    test_topics();
    test_async();
    test_corrupt();
    test_oom();

    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "meta_test: could not remove %s\n", tmpdir);
    printf("meta_test: ok\n");
    return 0;
}
