/*
 * meta.c -- the SQLite metadata store (see meta.h for the contract).
 *
 * Sections, in reading order:
 *   schema      the tables, one migration per schema version
 *   store       struct, error mapping, statement helpers
 *   open/close  pragmas, identity and integrity checks, migrations
 *   kv          cluster key/values: get, walk, the set operation
 *   topics      the put / delete / config / partition operations, the walk
 *   offsets     consumer-group committed offsets: the put, delete and expiry
 *               operations (and the one expiry rule), the walk
 *   operations  the table of write operations, run (sync) and submit (the
 *               FIFO of writes run one at a time on libuv workers)
 *
 * Design.  One connection, opened SQLITE_OPEN_NOMUTEX and guarded by our own
 * mutex (m->lock), because prepared statements are shared state too: every
 * function that touches m->db or m->st[] holds m->lock, so the loop thread
 * (sync calls at startup) and a worker (submitted writes) never interleave.
 *
 * Writes are data.  Each kind of mk_meta_op_t has one row in meta_ops[]: its
 * argument check, which of its arguments are strings, how to deep-copy the
 * rest, and its body, which runs with m->lock held.  mk_meta_op_run() and
 * the worker of mk_meta_op_submit() are the only callers of a body, so adding
 * a write is one body and one row.  A submitted job's arguments are copied
 * into the job's arena on the loop thread (code on workers never calls
 * mk_malloc: the fault hook is not thread-safe) and freed with it, after its
 * callback; a write's only result is its int status.  The queue itself
 * (m->q_head .. m->in_cb) is touched only on the loop thread: submission and
 * completion (uv after_work) both run there, and only the head job is ever
 * on a worker, which is what keeps writes in order.
 *
 * The file.  PRAGMA application_id = MK_META_APP_ID marks a minikora store;
 * PRAGMA user_version is the schema version.  journal_mode=WAL (readers never
 * block the writer, commits append), synchronous=NORMAL (a commit survives a
 * process crash; an OS crash may lose the last commits but never corrupts),
 * foreign_keys=ON (configs and assignments go with their topic).
 *
 * Schema v4 (all tables but audit WITHOUT ROWID, keyed as shown); v3 is
 * the same without remote_segments, v2 without audit either, v1 without
 * group_offsets either:
 *
 *   kv(key TEXT PK, value TEXT)
 *   topics(name TEXT PK, topic_id BLOB[16] UNIQUE, partition_count INT,
 *          replication_factor INT, created_ms INT, cell_id INT)
 *   topic_configs(topic -> topics.name, key TEXT, value TEXT; PK(topic, key))
 *   partitions(topic -> topics.name, partition_index INT, leader INT,
 *              leader_epoch INT, replicas BLOB; PK(topic, partition_index))
 *
 *   group_offsets(group_id TEXT, topic TEXT, partition_index INT,
 *                 committed_offset INT, leader_epoch INT, metadata TEXT NULL,
 *                 commit_timestamp_ms INT, expire_timestamp_ms INT;
 *                 PK(group_id, topic, partition_index)), indexed by topic
 *
 *   audit(seq INTEGER PK (rowid: increasing), ts_ms INT, kind TEXT,
 *         topic TEXT, topic_id TEXT, partition_index INT, broker INT,
 *         start_before, start_after, base_offset, end_offset, largest_ts,
 *         retention_ms, retention_bytes, log_bytes (INT or NULL),
 *         rule TEXT, detail TEXT), indexed by (kind, topic_id,
 *         partition_index, broker): the durability audit's events
 *         (mk_meta_audit_t says what each kind fills in).  Append-only
 *         but for MK_META_AUDIT_PRUNE.
 *   remote_segments(topic_id BLOB[16], partition_index INT, segment_id TEXT,
 *                   topic TEXT, start_offset INT, end_offset INT,
 *                   max_timestamp INT, size_bytes INT, state INT 0..3,
 *                   broker INT, leader_epoch INT, crc32c INT, sha256 TEXT,
 *                   epochs BLOB, chunks BLOB, aborted BLOB, event_ms INT;
 *                   PK(topic_id, partition_index, segment_id))   (v4)
 *   The blobs are tier/'s (layouts in src/tier/tier_int.h); the store
 *   bounds their size only.
 *
 *   group_offsets.topic deliberately has no foreign key to topics: offsets
 *   are kept by name, commits and topic writes travel as separate async
 *   jobs, and a group may hold offsets of a topic this store never saw.
 *   mk_meta_topic_delete() removes the topic's offsets in its own
 *   transaction instead, so no crash can leave them behind.
 *
 *   partitions.replicas layout:
 *     offset  size  field
 *     4*i     4     broker id of replica i, int32 big-endian
 *   length = 4 * replica_count, at most 4 * MK_META_MAX_REPLICAS.
 *
 * Every value read back is range-checked before use (MK_ERR_CORRUPT).  To add
 * tables (tenants, ACLs): append one SQL script to
 * meta_migrations[] and bump MK_META_SCHEMA_VERSION; scripts never change
 * once released.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "meta/meta.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#define MK_META_APP_ID 0x6d6b6d74   /* "mkmt" */
#define MK_META_BUSY_TIMEOUT_MS 5000

/* =================================================================== schema */

/* meta_migrations[v] takes the schema from version v to v + 1.  Append only. */
static const char *const meta_migrations[] = {
    /* v0 -> v1: cluster key/values, topics, topic configs, assignments. */
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
    ") WITHOUT ROWID;",

    /* v1 -> v2: consumer-group committed offsets. */
    "CREATE TABLE group_offsets("
    "  group_id            TEXT NOT NULL,"
    "  topic               TEXT NOT NULL,"
    "  partition_index     INTEGER NOT NULL CHECK(partition_index >= 0),"
    "  committed_offset    INTEGER NOT NULL,"
    "  leader_epoch        INTEGER NOT NULL CHECK(leader_epoch >= -1),"
    "  metadata            TEXT,"
    "  commit_timestamp_ms INTEGER NOT NULL,"
    "  expire_timestamp_ms INTEGER NOT NULL CHECK(expire_timestamp_ms >= -1),"
    "  PRIMARY KEY(group_id, topic, partition_index)"
    ") WITHOUT ROWID;"
    "CREATE INDEX group_offsets_by_topic ON group_offsets(topic);",

    /* v2 -> v3: the durability audit's events (scrub/). */
    "CREATE TABLE audit("
    "  seq             INTEGER PRIMARY KEY,"
    "  ts_ms           INTEGER NOT NULL CHECK(ts_ms >= 0),"
    "  kind            TEXT NOT NULL,"
    "  topic           TEXT NOT NULL,"
    "  topic_id        TEXT NOT NULL,"
    "  partition_index INTEGER NOT NULL CHECK(partition_index >= -1),"
    "  broker          INTEGER NOT NULL CHECK(broker >= -1),"
    "  start_before    INTEGER,"
    "  start_after     INTEGER,"
    "  base_offset     INTEGER,"
    "  end_offset      INTEGER,"
    "  largest_ts      INTEGER,"
    "  retention_ms    INTEGER,"
    "  retention_bytes INTEGER,"
    "  log_bytes       INTEGER,"
    "  rule            TEXT NOT NULL,"
    "  detail          TEXT NOT NULL"
    ");"
    "CREATE INDEX audit_by_key ON audit(kind, topic_id, partition_index, broker);",

    /* v3 -> v4: tiered storage's remote log metadata. */
    "CREATE TABLE remote_segments("
    "  topic_id        BLOB NOT NULL CHECK(length(topic_id) = 16),"
    "  partition_index INTEGER NOT NULL CHECK(partition_index >= 0),"
    "  segment_id      TEXT NOT NULL,"
    "  topic           TEXT NOT NULL,"
    "  start_offset    INTEGER NOT NULL CHECK(start_offset >= 0),"
    "  end_offset      INTEGER NOT NULL CHECK(end_offset >= start_offset),"
    "  max_timestamp   INTEGER NOT NULL,"
    "  size_bytes      INTEGER NOT NULL CHECK(size_bytes >= 0),"
    "  state           INTEGER NOT NULL CHECK(state BETWEEN 0 AND 3),"
    "  broker          INTEGER NOT NULL,"
    "  leader_epoch    INTEGER NOT NULL,"
    "  crc32c          INTEGER NOT NULL,"
    "  sha256          TEXT NOT NULL,"
    "  epochs          BLOB NOT NULL,"
    "  chunks          BLOB NOT NULL,"
    "  aborted         BLOB NOT NULL,"
    "  event_ms        INTEGER NOT NULL,"
    "  PRIMARY KEY(topic_id, partition_index, segment_id)"
    ") WITHOUT ROWID;",
};

_Static_assert(MK_ARRAY_LEN(meta_migrations) == MK_META_SCHEMA_VERSION,
               "one migration per schema version");

/* ==================================================================== store */

/* The expiry rule in SQL is mk_meta_offset_expired() itself, registered on
 * the connection under this name (never used by the schema, so other tools
 * can still read the file): ?1 = now, ?2 = retention. */
#define META_OFFSET_EXPIRED                                                          \
    "mk_offset_expired(commit_timestamp_ms, expire_timestamp_ms, ?1, ?2)"

/* Prepared statements, prepared once at open. */
#define META_STATEMENTS(X)                                                             \
    X(ST_BEGIN, "BEGIN IMMEDIATE")                                                     \
    X(ST_COMMIT, "COMMIT")                                                             \
    X(ST_ROLLBACK, "ROLLBACK")                                                         \
    X(ST_KV_GET, "SELECT value FROM kv WHERE key = ?1")                                \
    X(ST_KV_SET, "INSERT INTO kv(key, value) VALUES(?1, ?2)"                           \
                 " ON CONFLICT(key) DO UPDATE SET value = excluded.value")             \
    X(ST_KV_DEL, "DELETE FROM kv WHERE key = ?1")                                      \
    X(ST_TOPIC_SET, "INSERT INTO topics(name, topic_id, partition_count,"              \
                    " replication_factor, created_ms, cell_id)"                        \
                    " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name) DO UPDATE SET"  \
                    " topic_id = excluded.topic_id,"                                   \
                    " partition_count = excluded.partition_count,"                     \
                    " replication_factor = excluded.replication_factor,"               \
                    " created_ms = excluded.created_ms, cell_id = excluded.cell_id")   \
    X(ST_TOPIC_DEL, "DELETE FROM topics WHERE name = ?1")                              \
    X(ST_TOPIC_COUNT, "SELECT partition_count FROM topics WHERE name = ?1")            \
    X(ST_TOPIC_LIST, "SELECT name, topic_id, partition_count, replication_factor,"     \
                     " created_ms, cell_id FROM topics ORDER BY name")                 \
    X(ST_CONFIG_CLEAR, "DELETE FROM topic_configs WHERE topic = ?1")                   \
    X(ST_CONFIG_SET, "INSERT INTO topic_configs(topic, key, value) VALUES(?1, ?2, ?3)" \
                     " ON CONFLICT(topic, key) DO UPDATE SET value = excluded.value")  \
    X(ST_CONFIG_DEL, "DELETE FROM topic_configs WHERE topic = ?1 AND key = ?2")        \
    X(ST_CONFIG_LIST, "SELECT key, value FROM topic_configs WHERE topic = ?1"          \
                      " ORDER BY key")                                                 \
    X(ST_PART_CLEAR, "DELETE FROM partitions WHERE topic = ?1")                        \
    X(ST_PART_SET, "INSERT INTO partitions(topic, partition_index, leader,"            \
                   " leader_epoch, replicas) VALUES(?1, ?2, ?3, ?4, ?5)"               \
                   " ON CONFLICT(topic, partition_index) DO UPDATE SET"                \
                   " leader = excluded.leader, leader_epoch = excluded.leader_epoch,"  \
                   " replicas = excluded.replicas")                                    \
    X(ST_PART_LIST, "SELECT partition_index, leader, leader_epoch, replicas"           \
                    " FROM partitions WHERE topic = ?1 ORDER BY partition_index")      \
    X(ST_OFFSET_SET, "INSERT INTO group_offsets(group_id, topic, partition_index,"     \
                     " committed_offset, leader_epoch, metadata, commit_timestamp_ms," \
                     " expire_timestamp_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"    \
                     " ON CONFLICT(group_id, topic, partition_index) DO UPDATE SET"    \
                     " committed_offset = excluded.committed_offset,"                  \
                     " leader_epoch = excluded.leader_epoch,"                          \
                     " metadata = excluded.metadata,"                                  \
                     " commit_timestamp_ms = excluded.commit_timestamp_ms,"            \
                     " expire_timestamp_ms = excluded.expire_timestamp_ms")            \
    X(ST_OFFSET_DEL_GROUP, "DELETE FROM group_offsets WHERE group_id = ?1")            \
    X(ST_OFFSET_DEL_PART, "DELETE FROM group_offsets WHERE group_id = ?1"              \
                          " AND topic = ?2 AND partition_index = ?3")                  \
    X(ST_OFFSET_DEL_TOPIC, "DELETE FROM group_offsets WHERE topic = ?1")               \
    X(ST_OFFSET_EXPIRE, "DELETE FROM group_offsets WHERE " META_OFFSET_EXPIRED)        \
    X(ST_OFFSET_EXPIRE_GROUP, "DELETE FROM group_offsets WHERE group_id = ?3"          \
                              " AND " META_OFFSET_EXPIRED)                             \
    X(ST_OFFSET_LIST, "SELECT group_id, topic, partition_index, committed_offset,"     \
                      " leader_epoch, metadata, commit_timestamp_ms,"                  \
                      " expire_timestamp_ms FROM group_offsets"                        \
                      " ORDER BY group_id, topic, partition_index")                    \
    X(ST_AUDIT_PUT, "INSERT INTO audit(ts_ms, kind, topic, topic_id, partition_index," \
                    " broker, start_before, start_after, base_offset, end_offset,"     \
                    " largest_ts, retention_ms, retention_bytes, log_bytes, rule,"    \
                    " detail) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"    \
                    " ?12, ?13, ?14, ?15, ?16)")                                       \
    X(ST_AUDIT_PRUNE, "DELETE FROM audit WHERE seq <= (SELECT max(seq) FROM audit)"    \
                      " - ?1 AND seq NOT IN (SELECT max(seq) FROM audit WHERE kind IN" \
                      " ('log_start', 'retention')"                                    \
                      " GROUP BY kind, topic_id, partition_index, broker)")           \
    X(ST_RSEG_SET, "INSERT INTO remote_segments(topic_id, partition_index, segment_id," \
                   " topic, start_offset, end_offset, max_timestamp, size_bytes, state," \
                   " broker, leader_epoch, crc32c, sha256, epochs, chunks, aborted,"   \
                   " event_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"   \
                   " ?12, ?13, ?14, ?15, ?16, ?17)"                                     \
                   " ON CONFLICT(topic_id, partition_index, segment_id) DO UPDATE SET"  \
                   " topic = excluded.topic, start_offset = excluded.start_offset,"    \
                   " end_offset = excluded.end_offset,"                                \
                   " max_timestamp = excluded.max_timestamp,"                          \
                   " size_bytes = excluded.size_bytes, state = excluded.state,"        \
                   " broker = excluded.broker, leader_epoch = excluded.leader_epoch,"  \
                   " crc32c = excluded.crc32c, sha256 = excluded.sha256,"              \
                   " epochs = excluded.epochs, chunks = excluded.chunks,"              \
                   " aborted = excluded.aborted, event_ms = excluded.event_ms")        \
    X(ST_RSEG_STATE, "UPDATE remote_segments SET state = ?4, event_ms = ?5"             \
                     " WHERE topic_id = ?1 AND partition_index = ?2 AND segment_id = ?3") \
    X(ST_RSEG_DEL, "DELETE FROM remote_segments WHERE topic_id = ?1"                    \
                   " AND partition_index = ?2 AND segment_id = ?3")                     \
    X(ST_RSEG_LIST, "SELECT topic_id, partition_index, segment_id, topic, start_offset," \
                    " end_offset, max_timestamp, size_bytes, state, broker, leader_epoch," \
                    " crc32c, sha256, epochs, chunks, aborted, event_ms"                \
                    " FROM remote_segments ORDER BY topic_id, partition_index, start_offset")

enum {
#define META_ST_ENUM(name, sql) name,
    META_STATEMENTS(META_ST_ENUM)
#undef META_ST_ENUM
    ST__COUNT
};

static const char *const meta_sql[ST__COUNT] = {
#define META_ST_SQL(name, sql) [name] = sql,
    META_STATEMENTS(META_ST_SQL)
#undef META_ST_SQL
};

typedef struct meta_job_s meta_job_t;

struct mk_meta_s {
    sqlite3 *db;                   /* owned; used under lock only */
    char *path;                    /* owned, for log lines */
    uv_mutex_t lock;               /* guards db and st[] */
    sqlite3_stmt *st[ST__COUNT];   /* owned, prepared at open */

    /* Submitted writes: loop thread only.  q_head, when set, is on a worker. */
    uv_loop_t *loop;               /* loop of the pending jobs */
    meta_job_t *q_head, *q_tail;
    size_t pending;                /* jobs in the queue */
    int in_cb;                     /* > 0 while a done callback runs */
    bool closing;                  /* mk_meta_close() called */
    bool readonly;                 /* mk_meta_open_readonly(): no writes */
    int64_t schema;                /* the file's schema version (read-only: as found) */
};

/* Maps a SQLite result code to MK_ERR_* and logs it.  Constraint failures are
 * the caller's mistakes and are logged at debug level only. */
static int meta_err(mk_meta_t *m, int rc, const char *what)
{
    int err;
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        err = MK_ERR_NOMEM;
        break;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
        err = MK_ERR_IO;
        break;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            err = MK_ERR_NOT_FOUND;
        else if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            err = MK_ERR_EXISTS;
        else
            err = MK_ERR_INVALID;
        mk_debug("meta: %s: %s: %s", m->path, what, sqlite3_errmsg(m->db));
        return err;
    default:
        err = MK_ERR_DB;
        break;
    }
    mk_error("meta: %s: %s failed: %s (sqlite error %d)", m->path, what,
             m->db ? sqlite3_errmsg(m->db) : sqlite3_errstr(rc), rc);
    return err;
}

/* Logs a value read back from the file that breaks our rules. */
static int meta_corrupt(mk_meta_t *m, const char *topic, const char *what)
{
    mk_error("meta: %s: corrupt store: topic '%s': %s", m->path, topic ? topic : "?", what);
    return MK_ERR_CORRUPT;
}

static int meta_offset_corrupt(mk_meta_t *m, const char *group, const char *topic,
                               const char *what)
{
    mk_error("meta: %s: corrupt store: offset of group '%s' topic '%s': %s", m->path,
             group ? group : "?", topic ? topic : "?", what);
    return MK_ERR_CORRUPT;
}

static void meta_reset(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Binding helpers chain a SQLite rc so a run of binds is checked once.
 * Bound pointers are SQLITE_STATIC: every statement is reset before the
 * caller's memory can go away. */
static int bind_text(sqlite3_stmt *s, int i, const char *v, int rc)
{
    return rc != SQLITE_OK ? rc : sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static int bind_int(sqlite3_stmt *s, int i, int64_t v, int rc)
{
    return rc != SQLITE_OK ? rc : sqlite3_bind_int64(s, i, v);
}

static int bind_blob(sqlite3_stmt *s, int i, const void *p, int n, int rc)
{
    return rc != SQLITE_OK ? rc : sqlite3_bind_blob(s, i, p, n, SQLITE_STATIC);
}

/* Steps a bound write statement to completion and resets it. */
static int meta_run(mk_meta_t *m, sqlite3_stmt *s, int bind_rc, const char *what)
{
    int rc = bind_rc == SQLITE_OK ? sqlite3_step(s) : bind_rc;
    int err = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : meta_err(m, rc, what);
    meta_reset(s);
    return err;
}

/* meta_run() for a DELETE: the number of rows it removed, or the error. */
static int meta_run_count(mk_meta_t *m, sqlite3_stmt *s, int bind_rc, const char *what)
{
    int err = meta_run(m, s, bind_rc, what);
    return err ? err : sqlite3_changes(m->db);
}

static int meta_tx_begin(mk_meta_t *m)
{
    return meta_run(m, m->st[ST_BEGIN], SQLITE_OK, "begin");
}

/* Ends the transaction: commits when err is 0, else rolls back.  Returns the
 * first error. */
static int meta_tx_end(mk_meta_t *m, int err)
{
    if (err == 0) {
        err = meta_run(m, m->st[ST_COMMIT], SQLITE_OK, "commit");
        if (err == 0)
            return 0;
    }
    if (!sqlite3_get_autocommit(m->db))
        meta_run(m, m->st[ST_ROLLBACK], SQLITE_OK, "rollback");
    return err;
}

/* 1..MK_META_MAX_NAME bytes. */
static bool meta_name_ok(const char *s)
{
    if (!s || !*s)
        return false;
    return strnlen(s, MK_META_MAX_NAME + 1) <= MK_META_MAX_NAME;
}

/* Copies s into a (the arena of a submitted job); NULL stays NULL.  Sets
 * *oom on failure.  Loop thread. */
static const char *meta_arena_str(mk_arena_t *a, const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = mk_arena_strndup(a, s, strlen(s));
    if (!d)
        *oom = true;
    return d;
}

/* ================================================================ open/close */

/* Runs a one-row pragma and copies its first column as text (or ""). */
static int meta_pragma_text(mk_meta_t *m, const char *sql, char *out, size_t n)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(m->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        snprintf(out, n, "%s", t ? (const char *)t : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        snprintf(out, n, "%s", "");
        rc = SQLITE_OK;
    }
    int err = rc == SQLITE_OK ? 0 : meta_err(m, rc, sql);
    sqlite3_finalize(s);
    return err;
}

static int meta_pragma_int(mk_meta_t *m, const char *sql, int64_t *out)
{
    char buf[32];
    int err = meta_pragma_text(m, sql, buf, sizeof(buf));
    if (err == 0)
        *out = strtoll(buf, NULL, 10);
    return err;
}

static int meta_exec(mk_meta_t *m, const char *sql, const char *what)
{
    char *msg = NULL;
    int rc = sqlite3_exec(m->db, sql, NULL, NULL, &msg);
    sqlite3_free(msg);
    return rc == SQLITE_OK ? 0 : meta_err(m, rc, what);
}

/* Collects the rows of PRAGMA quick_check and foreign_key_check into why.
 * Returns 0 (clean), MK_ERR_CORRUPT or another error. */
static int meta_check_locked(mk_meta_t *m, char *why, size_t n)
{
    char dummy[1];
    if (!why || n == 0) {
        why = dummy;
        n = sizeof(dummy);
    }
    why[0] = 0;
    size_t used = 0;
    bool bad = false;
    sqlite3_stmt *s = NULL;

    int rc = sqlite3_prepare_v2(m->db, "PRAGMA quick_check(20)", -1, &s, NULL);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        if ((rc = sqlite3_step(s)) != SQLITE_ROW)
            break;
        const char *t = (const char *)sqlite3_column_text(s, 0);
        if (t && strcmp(t, "ok") == 0)
            continue;
        bad = true;
        used += (size_t)snprintf(why + MK_MIN(used, n - 1), n - MK_MIN(used, n - 1), "%s%s",
                                 used ? "; " : "", t ? t : "?");
    }
    sqlite3_finalize(s);
    s = NULL;
    if (rc != SQLITE_DONE)
        return meta_err(m, rc, "quick_check");

    rc = sqlite3_prepare_v2(m->db, "PRAGMA foreign_key_check", -1, &s, NULL);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        if ((rc = sqlite3_step(s)) != SQLITE_ROW)
            break;
        const char *table = (const char *)sqlite3_column_text(s, 0);
        const char *parent = (const char *)sqlite3_column_text(s, 2);
        bad = true;
        used += (size_t)snprintf(why + MK_MIN(used, n - 1), n - MK_MIN(used, n - 1),
                                 "%srow of %s refers to a missing %s", used ? "; " : "",
                                 table ? table : "?", parent ? parent : "?");
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return meta_err(m, rc, "foreign_key_check");

    if (!bad)
        snprintf(why, n, "ok");
    return bad ? MK_ERR_CORRUPT : 0;
}

/* Checks that the file is ours and brings its schema up to date. */
static int meta_migrate(mk_meta_t *m)
{
    int64_t app_id = 0, version = 0, objects = 0;
    int err = meta_pragma_int(m, "PRAGMA application_id", &app_id);
    if (!err)
        err = meta_pragma_int(m, "PRAGMA user_version", &version);
    if (!err)
        err = meta_pragma_int(m, "SELECT count(*) FROM sqlite_master", &objects);
    if (err)
        return MK_ERR_DB;
    if (app_id != MK_META_APP_ID && (app_id != 0 || version != 0 || objects != 0)) {
        mk_error("meta: %s: not a minikora metadata store (application_id %lld)", m->path,
                 (long long)app_id);
        return MK_ERR_DB;
    }
    if (version > MK_META_SCHEMA_VERSION) {
        mk_error("meta: %s: schema version %lld is newer than this build's %d", m->path,
                 (long long)version, MK_META_SCHEMA_VERSION);
        return MK_ERR_UNSUPPORTED;
    }
    m->schema = version;
    if (m->readonly)
        return app_id == MK_META_APP_ID ? 0 : MK_ERR_DB;
    m->schema = MK_META_SCHEMA_VERSION;
    for (int64_t v = version; v < MK_META_SCHEMA_VERSION; v++) {
        char pragmas[96];
        snprintf(pragmas, sizeof(pragmas), "PRAGMA user_version = %lld; PRAGMA application_id = %d;",
                 (long long)(v + 1), MK_META_APP_ID);
        err = meta_exec(m, "BEGIN IMMEDIATE", "begin migration");
        if (!err)
            err = meta_exec(m, meta_migrations[v], "migration");
        if (!err)
            err = meta_exec(m, pragmas, "set schema version");
        if (!err)
            err = meta_exec(m, "COMMIT", "commit migration");
        if (err) {
            if (!sqlite3_get_autocommit(m->db))
                sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
            mk_error("meta: %s: migration to schema v%lld failed", m->path, (long long)(v + 1));
            return err == MK_ERR_NOMEM || err == MK_ERR_IO ? err : MK_ERR_DB;
        }
        mk_info("meta: %s: schema migrated to v%lld", m->path, (long long)(v + 1));
    }
    return 0;
}

static void meta_destroy(mk_meta_t *m)
{
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(m->st[i]);
    if (m->db) {
        int rc = sqlite3_close(m->db);
        if (rc != SQLITE_OK)
            mk_error("meta: %s: close failed: %s", m->path, sqlite3_errstr(rc));
    }
    uv_mutex_destroy(&m->lock);
    mk_free(m->path);
    mk_free(m);
}

/* SQL form of mk_meta_offset_expired(), used by ST_OFFSET_EXPIRE*.  Runs on
 * whichever thread steps the statement. */
static void meta_sql_offset_expired(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    sqlite3_result_int(ctx, mk_meta_offset_expired(sqlite3_value_int64(argv[0]),
                                                   sqlite3_value_int64(argv[1]),
                                                   sqlite3_value_int64(argv[2]),
                                                   sqlite3_value_int64(argv[3])));
}

/* Everything after sqlite3_open_v2: pragmas, checks, migrations, the SQL
 * function, statements. */
static int meta_setup(mk_meta_t *m)
{
    char buf[256];
    sqlite3_extended_result_codes(m->db, 1);
    sqlite3_busy_timeout(m->db, MK_META_BUSY_TIMEOUT_MS);
    int err = meta_exec(m, "PRAGMA foreign_keys = ON", "enable foreign keys");
    if (!err && !m->readonly)
        err = meta_pragma_text(m, "PRAGMA journal_mode = WAL", buf, sizeof(buf));
    if (err)
        return err == MK_ERR_NOMEM ? err : MK_ERR_DB;
    if (!m->readonly && strcmp(buf, "wal") != 0 && strcmp(buf, "memory") != 0)
        mk_warn("meta: %s: journal_mode is '%s', not wal", m->path, buf);
    if (!m->readonly && meta_exec(m, "PRAGMA synchronous = NORMAL", "set synchronous"))
        return MK_ERR_DB;

    err = meta_check_locked(m, buf, sizeof(buf));
    if (err == MK_ERR_CORRUPT)
        mk_error("meta: %s: integrity check failed: %s", m->path, buf);
    if (err)
        return err == MK_ERR_NOMEM ? err : MK_ERR_DB;

    err = meta_migrate(m);
    if (err)
        return err;

    int rc = sqlite3_create_function_v2(m->db, "mk_offset_expired", 4,
                                        SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
                                        NULL, meta_sql_offset_expired, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        err = meta_err(m, rc, "register mk_offset_expired");
        return err == MK_ERR_NOMEM ? err : MK_ERR_DB;
    }

    for (int i = 0; i < ST__COUNT; i++) {
        rc = sqlite3_prepare_v3(m->db, meta_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &m->st[i], NULL);
        if (rc != SQLITE_OK && m->readonly) {
            /* An older schema, read as it is: what it lacks is never asked
             * for (writes are refused; the audit walk checks the schema). */
            m->st[i] = NULL;
            continue;
        }
        if (rc != SQLITE_OK) {
            err = meta_err(m, rc, meta_sql[i]);
            return err == MK_ERR_NOMEM ? err : MK_ERR_DB;
        }
    }
    return 0;
}

/* A read-only open must not leave files behind: a store closed cleanly has
 * no WAL content, so it is opened as immutable (no -shm, no -wal made).
 * With WAL content (a crash), that content matters and the plain read-only
 * open is used (SQLite then makes the -shm it needs).  Returns the URI to
 * open (mk_free it), or NULL for the plain path. */
static char *meta_readonly_uri(const char *path)
{
    char wal[4096];
    struct stat sb;
    if (snprintf(wal, sizeof(wal), "%s-wal", path) >= (int)sizeof(wal) || (stat(wal, &sb) == 0 && sb.st_size > 0))
        return NULL;
    size_t n = strlen(path);
    char *uri = mk_malloc(n * 3 + 32);
    if (!uri)
        return NULL;
    char *o = uri + sprintf(uri, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("/-._~", *p))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    strcpy(o, "?immutable=1");
    return uri;
}

/* mk_meta_open() and mk_meta_open_readonly(). */
static int meta_open(const char *path, bool readonly, mk_meta_t **out)
{
    *out = NULL;
    if (!path || !*path)
        return MK_ERR_INVALID;
    if (readonly && access(path, F_OK) != 0)
        return MK_ERR_NOT_FOUND;
    mk_meta_t *m = mk_calloc(1, sizeof(*m));
    if (!m)
        return MK_ERR_NOMEM;
    m->readonly = readonly;
    m->path = mk_strdup(path);
    if (!m->path || uv_mutex_init(&m->lock) != 0) {
        mk_free(m->path);
        mk_free(m);
        return MK_ERR_NOMEM;
    }

    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    char *uri = readonly ? meta_readonly_uri(path) : NULL;
    if (uri)
        flags |= SQLITE_OPEN_URI;
    int rc = sqlite3_open_v2(uri ? uri : path, &m->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    mk_free(uri);
    int err;
    if (rc != SQLITE_OK) {
        err = meta_err(m, rc, "open");
        if (err != MK_ERR_NOMEM)
            err = MK_ERR_DB;
    } else {
        err = meta_setup(m);
    }
    if (err) {
        mk_error("meta: %s: cannot open metadata store: %s", path, mk_strerror(err));
        meta_destroy(m);
        return err;
    }
    mk_info("meta: %s: opened%s (schema v%lld)", path, readonly ? " read-only" : "", (long long)m->schema);
    *out = m;
    return 0;
}

int mk_meta_open(const char *path, mk_meta_t **out) { return meta_open(path, false, out); }

int mk_meta_open_readonly(const char *path, mk_meta_t **out) { return meta_open(path, true, out); }

void mk_meta_close(mk_meta_t *m)
{
    if (!m)
        return;
    m->closing = true;
    if (m->pending == 0 && m->in_cb == 0)
        meta_destroy(m);
    /* else the last completion frees it (meta_after_work). */
}

size_t mk_meta_pending(const mk_meta_t *m)
{
    return m->pending;
}

int mk_meta_check(mk_meta_t *m, char *why, size_t n)
{
    uv_mutex_lock(&m->lock);
    int err = meta_check_locked(m, why, n);
    uv_mutex_unlock(&m->lock);
    if (err == MK_ERR_CORRUPT)
        mk_warn("meta: %s: integrity check: %s", m->path, why && n ? why : "problems found");
    return err;
}

/* ======================================================================= kv */

int mk_meta_kv_get(mk_meta_t *m, const char *key, char **value_out)
{
    *value_out = NULL;
    if (!meta_name_ok(key))
        return MK_ERR_INVALID;
    uv_mutex_lock(&m->lock);
    sqlite3_stmt *s = m->st[ST_KV_GET];
    int rc = bind_text(s, 1, key, SQLITE_OK);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    int err;
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(s, 0);
        *value_out = mk_strdup(v ? v : "");
        err = *value_out ? 0 : MK_ERR_NOMEM;
    } else if (rc == SQLITE_DONE) {
        err = MK_ERR_NOT_FOUND;
    } else {
        err = meta_err(m, rc, "kv get");
    }
    meta_reset(s);
    uv_mutex_unlock(&m->lock);
    return err;
}

static bool meta_kv_set_ok(const mk_meta_op_t *op)
{
    return meta_name_ok(op->key);
}

static int meta_kv_set_locked(mk_meta_t *m, const mk_meta_op_t *op)
{
    if (op->value) {
        sqlite3_stmt *s = m->st[ST_KV_SET];
        return meta_run(m, s, bind_text(s, 2, op->value, bind_text(s, 1, op->key, SQLITE_OK)),
                        "kv set");
    }
    sqlite3_stmt *s = m->st[ST_KV_DEL];
    return meta_run(m, s, bind_text(s, 1, op->key, SQLITE_OK), "kv delete");
}

/* Walk the keys that start with prefix (startup loads of coordinator state).
 * The callback must not call into the store.  Returns 0, the callback's
 * nonzero value, or an error.  Blocking. */
int mk_meta_kv_foreach(mk_meta_t *m, const char *prefix, mk_meta_kv_cb cb, void *arg)
{
    uv_mutex_lock(&m->lock);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(m->db, "SELECT key, value FROM kv WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
                                -1, &s, NULL);
    int err = 0;
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 1, prefix, -1, SQLITE_TRANSIENT);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
            break;
        const char *k = (const char *)sqlite3_column_text(s, 0);
        const char *v = (const char *)sqlite3_column_text(s, 1);
        if (k && (err = cb(k, v ? v : "", arg)) != 0)
            break;
    }
    if (!err && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = meta_err(m, rc, "kv walk");
    sqlite3_finalize(s);
    uv_mutex_unlock(&m->lock);
    return err;
}

/* =================================================================== topics */

static bool meta_partition_ok(const mk_meta_partition_t *p)
{
    return p->replica_count >= 0 && p->replica_count <= MK_META_MAX_REPLICAS &&
           (p->replica_count == 0 || p->replicas != NULL);
}

static bool meta_topic_ok(const mk_meta_topic_t *t)
{
    if (!t || !meta_name_ok(t->name) || t->partition_count < 1 ||
        t->partition_count > MK_META_MAX_PARTITIONS || t->config_count < 0 ||
        (t->config_count > 0 && !t->configs))
        return false;
    for (int32_t i = 0; i < t->config_count; i++)
        if (!meta_name_ok(t->configs[i].key) || !t->configs[i].value)
            return false;
    if (t->partitions)
        for (int32_t i = 0; i < t->partition_count; i++)
            if (t->partitions[i].partition != i || !meta_partition_ok(&t->partitions[i]))
                return false;
    return true;
}

/* Writes one assignment row; the replica list is encoded on the stack so no
 * allocation happens here (this runs on workers). */
static int meta_partition_write(mk_meta_t *m, const char *topic, const mk_meta_partition_t *p)
{
    uint8_t blob[4 * MK_META_MAX_REPLICAS];
    for (int32_t i = 0; i < p->replica_count; i++) {
        uint32_t v = (uint32_t)p->replicas[i];
        blob[4 * i] = (uint8_t)(v >> 24);
        blob[4 * i + 1] = (uint8_t)(v >> 16);
        blob[4 * i + 2] = (uint8_t)(v >> 8);
        blob[4 * i + 3] = (uint8_t)v;
    }
    sqlite3_stmt *s = m->st[ST_PART_SET];
    int rc = bind_text(s, 1, topic, SQLITE_OK);
    rc = bind_int(s, 2, p->partition, rc);
    rc = bind_int(s, 3, p->leader, rc);
    rc = bind_int(s, 4, p->leader_epoch, rc);
    rc = bind_blob(s, 5, blob, 4 * p->replica_count, rc);
    return meta_run(m, s, rc, "partition put");
}

static bool meta_topic_put_ok(const mk_meta_op_t *op)
{
    return meta_topic_ok(op->t);
}

static int meta_topic_put_locked(mk_meta_t *m, const mk_meta_op_t *op)
{
    const mk_meta_topic_t *t = op->t;
    int err = meta_tx_begin(m);
    if (err)
        return err;
    sqlite3_stmt *s = m->st[ST_TOPIC_SET];
    int rc = bind_text(s, 1, t->name, SQLITE_OK);
    rc = bind_blob(s, 2, t->topic_id, 16, rc);
    rc = bind_int(s, 3, t->partition_count, rc);
    rc = bind_int(s, 4, t->replication_factor, rc);
    rc = bind_int(s, 5, t->created_ms, rc);
    rc = bind_int(s, 6, t->cell_id, rc);
    err = meta_run(m, s, rc, "topic put");

    if (!err) {
        s = m->st[ST_CONFIG_CLEAR];
        err = meta_run(m, s, bind_text(s, 1, t->name, SQLITE_OK), "topic configs clear");
    }
    for (int32_t i = 0; !err && i < t->config_count; i++) {
        s = m->st[ST_CONFIG_SET];
        rc = bind_text(s, 1, t->name, SQLITE_OK);
        rc = bind_text(s, 2, t->configs[i].key, rc);
        rc = bind_text(s, 3, t->configs[i].value, rc);
        err = meta_run(m, s, rc, "topic config put");
    }

    if (!err) {
        s = m->st[ST_PART_CLEAR];
        err = meta_run(m, s, bind_text(s, 1, t->name, SQLITE_OK), "partitions clear");
    }
    for (int32_t i = 0; !err && t->partitions && i < t->partition_count; i++)
        err = meta_partition_write(m, t->name, &t->partitions[i]);
    return meta_tx_end(m, err);
}

/* The topic row (configs and assignments follow by cascade) and, in the
 * same transaction, every group's offsets of it: they have no foreign key
 * (see the file header). */
static int meta_topic_delete_locked(mk_meta_t *m, const mk_meta_op_t *op)
{
    const char *name = op->topic;
    int err = meta_tx_begin(m);
    if (err)
        return err;
    sqlite3_stmt *s = m->st[ST_TOPIC_DEL];
    err = meta_run(m, s, bind_text(s, 1, name, SQLITE_OK), "topic delete");
    if (!err && sqlite3_changes(m->db) == 0)
        err = MK_ERR_NOT_FOUND;
    if (!err) {
        s = m->st[ST_OFFSET_DEL_TOPIC];
        err = meta_run(m, s, bind_text(s, 1, name, SQLITE_OK), "topic offsets delete");
    }
    return meta_tx_end(m, err);
}

/* partition_count of a topic into *count, or MK_ERR_NOT_FOUND. */
static int meta_topic_count(mk_meta_t *m, const char *name, int64_t *count)
{
    sqlite3_stmt *s = m->st[ST_TOPIC_COUNT];
    int rc = bind_text(s, 1, name, SQLITE_OK);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    int err = 0;
    if (rc == SQLITE_ROW)
        *count = sqlite3_column_int64(s, 0);
    else if (rc == SQLITE_DONE)
        err = MK_ERR_NOT_FOUND;
    else
        err = meta_err(m, rc, "topic lookup");
    meta_reset(s);
    return err;
}

/* MK_META_TOPIC_DELETE and MK_META_OFFSETS_DELETE_TOPIC. */
static bool meta_topic_name_ok(const mk_meta_op_t *op)
{
    return meta_name_ok(op->topic);
}

static bool meta_config_set_ok(const mk_meta_op_t *op)
{
    return meta_name_ok(op->topic) && meta_name_ok(op->key);
}

static int meta_config_set_locked(mk_meta_t *m, const mk_meta_op_t *op)
{
    const char *topic = op->topic, *key = op->key, *value = op->value;
    int64_t count = 0;
    int err = meta_tx_begin(m);
    if (err)
        return err;
    err = meta_topic_count(m, topic, &count);
    if (!err && value) {
        sqlite3_stmt *s = m->st[ST_CONFIG_SET];
        int rc = bind_text(s, 1, topic, SQLITE_OK);
        rc = bind_text(s, 2, key, rc);
        rc = bind_text(s, 3, value, rc);
        err = meta_run(m, s, rc, "topic config set");
    } else if (!err) {
        sqlite3_stmt *s = m->st[ST_CONFIG_DEL];
        err = meta_run(m, s, bind_text(s, 2, key, bind_text(s, 1, topic, SQLITE_OK)),
                       "topic config delete");
    }
    return meta_tx_end(m, err);
}

static bool meta_partition_put_ok(const mk_meta_op_t *op)
{
    return meta_name_ok(op->topic) && op->p && op->p->partition >= 0 && meta_partition_ok(op->p);
}

static int meta_partition_put_locked(mk_meta_t *m, const mk_meta_op_t *op)
{
    const char *topic = op->topic;
    const mk_meta_partition_t *p = op->p;
    int64_t count = 0;
    int err = meta_tx_begin(m);
    if (err)
        return err;
    err = meta_topic_count(m, topic, &count);
    if (!err && p->partition >= count)
        err = MK_ERR_INVALID;
    if (!err)
        err = meta_partition_write(m, topic, p);
    return meta_tx_end(m, err);
}

/* Copies a partition's replica list into a (at least one slot). */
static int32_t *meta_replicas_copy(mk_arena_t *a, const mk_meta_partition_t *p, bool *oom)
{
    int32_t *r = mk_arena_alloc(a, sizeof(int32_t) * (size_t)MK_MAX(p->replica_count, 1));
    if (!r) {
        *oom = true;
        return NULL;
    }
    if (p->replica_count)
        memcpy(r, p->replicas, sizeof(int32_t) * (size_t)p->replica_count);
    return r;
}

/* Deep copy of op->t for a submitted MK_META_TOPIC_PUT. */
static void meta_topic_put_copy(mk_arena_t *a, mk_meta_op_t *c, const mk_meta_op_t *op, bool *oom)
{
    const mk_meta_topic_t *t = op->t;
    mk_meta_topic_t *ct = mk_arena_alloc(a, sizeof(*ct));
    c->t = ct;
    if (!ct) {
        *oom = true;
        return;
    }
    *ct = *t;
    ct->name = meta_arena_str(a, t->name, oom);
    ct->configs = NULL;
    ct->partitions = NULL;
    if (!*oom && t->config_count > 0) {
        ct->configs = mk_arena_alloc(a, sizeof(*ct->configs) * (size_t)t->config_count);
        *oom = !ct->configs;
        for (int32_t i = 0; !*oom && i < t->config_count; i++) {
            ct->configs[i].key = meta_arena_str(a, t->configs[i].key, oom);
            ct->configs[i].value = meta_arena_str(a, t->configs[i].value, oom);
        }
    }
    if (!*oom && t->partitions) {
        ct->partitions = mk_arena_alloc(a, sizeof(*ct->partitions) * (size_t)t->partition_count);
        *oom = !ct->partitions;
        for (int32_t i = 0; !*oom && i < t->partition_count; i++) {
            ct->partitions[i] = t->partitions[i];
            ct->partitions[i].replicas = meta_replicas_copy(a, &t->partitions[i], oom);
        }
    }
}

/* Deep copy of op->p for a submitted MK_META_PARTITION_PUT. */
static void meta_partition_put_copy(mk_arena_t *a, mk_meta_op_t *c, const mk_meta_op_t *op,
                                    bool *oom)
{
    mk_meta_partition_t *cp = mk_arena_alloc(a, sizeof(*cp));
    c->p = cp;
    if (!cp) {
        *oom = true;
        return;
    }
    *cp = *op->p;
    cp->replicas = meta_replicas_copy(a, op->p, oom);
}

/* Reads the configs of t->name into the arena.  The array grows by doubling;
 * old copies stay in the arena until the topic is done. */
static int meta_configs_load(mk_meta_t *m, mk_arena_t *a, mk_meta_topic_t *t)
{
    sqlite3_stmt *s = m->st[ST_CONFIG_LIST];
    int32_t cap = 0;
    int err = 0;
    int rc = bind_text(s, 1, t->name, SQLITE_OK);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        if ((rc = sqlite3_step(s)) != SQLITE_ROW)
            break;
        if (t->config_count == cap) {
            cap = cap ? 2 * cap : 8;
            mk_meta_config_t *grown = mk_arena_alloc(a, sizeof(*grown) * (size_t)cap);
            if (!grown) {
                err = MK_ERR_NOMEM;
                break;
            }
            if (t->config_count)
                memcpy(grown, t->configs, sizeof(*grown) * (size_t)t->config_count);
            t->configs = grown;
        }
        const char *k = (const char *)sqlite3_column_text(s, 0);
        int klen = sqlite3_column_bytes(s, 0);
        const char *v = (const char *)sqlite3_column_text(s, 1);
        int vlen = sqlite3_column_bytes(s, 1);
        if (!k || !v) {   /* NOT NULL columns: NULL here means out of memory */
            err = MK_ERR_NOMEM;
            break;
        }
        mk_meta_config_t *c = &t->configs[t->config_count];
        c->key = mk_arena_strndup(a, k, (size_t)klen);
        c->value = mk_arena_strndup(a, v, (size_t)vlen);
        if (!c->key || !c->value) {
            err = MK_ERR_NOMEM;
            break;
        }
        t->config_count++;
    }
    if (!err && rc != SQLITE_DONE)
        err = meta_err(m, rc, "topic configs list");
    meta_reset(s);
    return err;
}

/* Reads the assignments of t->name into partition_count entries. */
static int meta_partitions_load(mk_meta_t *m, mk_arena_t *a, mk_meta_topic_t *t)
{
    t->partitions = mk_arena_alloc(a, sizeof(*t->partitions) * (size_t)t->partition_count);
    if (!t->partitions)
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < t->partition_count; i++) {
        t->partitions[i].partition = i;
        t->partitions[i].leader = -1;
        t->partitions[i].leader_epoch = -1;
    }
    sqlite3_stmt *s = m->st[ST_PART_LIST];
    int err = 0;
    int rc = bind_text(s, 1, t->name, SQLITE_OK);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        if ((rc = sqlite3_step(s)) != SQLITE_ROW)
            break;
        int64_t idx = sqlite3_column_int64(s, 0);
        int64_t leader = sqlite3_column_int64(s, 1);
        int64_t epoch = sqlite3_column_int64(s, 2);
        const void *blob = sqlite3_column_blob(s, 3);
        int n = sqlite3_column_bytes(s, 3);
        if (idx < 0 || idx >= t->partition_count) {
            err = meta_corrupt(m, t->name, "partition index out of range");
            break;
        }
        if (leader < INT32_MIN || leader > INT32_MAX || epoch < INT32_MIN || epoch > INT32_MAX) {
            err = meta_corrupt(m, t->name, "leader or leader epoch out of range");
            break;
        }
        if (n < 0 || n % 4 != 0 || n > 4 * MK_META_MAX_REPLICAS || (n > 0 && !blob)) {
            err = meta_corrupt(m, t->name, "bad replica list");
            break;
        }
        mk_meta_partition_t *p = &t->partitions[idx];
        p->leader = (int32_t)leader;
        p->leader_epoch = (int32_t)epoch;
        p->replica_count = n / 4;
        p->replicas = mk_arena_alloc(a, sizeof(int32_t) * (size_t)MK_MAX(p->replica_count, 1));
        if (!p->replicas) {
            err = MK_ERR_NOMEM;
            break;
        }
        mk_reader_t r;
        mk_rd_init(&r, blob, (size_t)n);
        for (int32_t i = 0; i < p->replica_count; i++)
            p->replicas[i] = mk_rd_i32(&r);
        assert(mk_rd_ok(&r) && mk_rd_remaining(&r) == 0);
    }
    if (!err && rc != SQLITE_DONE)
        err = meta_err(m, rc, "partitions list");
    meta_reset(s);
    return err;
}

/* Builds the topic at the current row of ST_TOPIC_LIST in the arena. */
static int meta_topic_load(mk_meta_t *m, sqlite3_stmt *s, mk_arena_t *a, mk_meta_topic_t *t)
{
    memset(t, 0, sizeof(*t));
    const char *name = (const char *)sqlite3_column_text(s, 0);
    int name_len = sqlite3_column_bytes(s, 0);
    if (!name)
        return meta_corrupt(m, NULL, "topic without a name");
    t->name = mk_arena_strndup(a, name, (size_t)name_len);
    if (!t->name)
        return MK_ERR_NOMEM;
    const void *id = sqlite3_column_blob(s, 1);
    int64_t count = sqlite3_column_int64(s, 2);
    int64_t rf = sqlite3_column_int64(s, 3);
    int64_t cell = sqlite3_column_int64(s, 5);
    if (!id || sqlite3_column_bytes(s, 1) != 16)
        return meta_corrupt(m, t->name, "topic id is not 16 bytes");
    if (count < 1 || count > MK_META_MAX_PARTITIONS)
        return meta_corrupt(m, t->name, "partition count out of range");
    if (rf < INT16_MIN || rf > INT16_MAX || cell < INT32_MIN || cell > INT32_MAX)
        return meta_corrupt(m, t->name, "replication factor or cell id out of range");
    memcpy(t->topic_id, id, 16);
    t->partition_count = (int32_t)count;
    t->replication_factor = (int16_t)rf;
    t->created_ms = sqlite3_column_int64(s, 4);
    t->cell_id = (int32_t)cell;

    int err = meta_configs_load(m, a, t);
    if (!err)
        err = meta_partitions_load(m, a, t);
    return err;
}

static int meta_topic_foreach_locked(mk_meta_t *m, mk_meta_topic_cb cb, void *arg)
{
    sqlite3_stmt *s = m->st[ST_TOPIC_LIST];
    mk_arena_t a;
    mk_arena_init(&a);
    int err = 0;
    for (;;) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            err = meta_err(m, rc, "topics list");
            break;
        }
        mk_arena_free(&a);
        mk_arena_init(&a);
        mk_meta_topic_t t;
        err = meta_topic_load(m, s, &a, &t);
        if (!err)
            err = cb(&t, arg);
        if (err)
            break;
    }
    meta_reset(s);
    mk_arena_free(&a);
    return err;
}

int mk_meta_topic_foreach(mk_meta_t *m, mk_meta_topic_cb cb, void *arg)
{
    if (!cb)
        return MK_ERR_INVALID;
    uv_mutex_lock(&m->lock);
    int err = meta_topic_foreach_locked(m, cb, arg);
    uv_mutex_unlock(&m->lock);
    return err;
}

/* ================================================================== offsets */

static bool meta_offset_ok(const mk_meta_offset_t *o)
{
    return meta_name_ok(o->group_id) && meta_name_ok(o->topic) && o->partition >= 0 &&
           o->partition < MK_META_MAX_PARTITIONS && o->leader_epoch >= -1 &&
           (!o->metadata ||
            strnlen(o->metadata, MK_META_MAX_OFFSET_METADATA + 1) <= MK_META_MAX_OFFSET_METADATA) &&
           o->commit_ms >= 0 && o->expire_ms >= -1;
}

/* Every row is checked before anything is written: a batch is all or nothing
 * already at the argument level. */
static bool meta_offsets_ok(const mk_meta_offset_t *offs, int n)
{
    if (n < 0 || (n > 0 && !offs))
        return false;
    for (int i = 0; i < n; i++)
        if (!meta_offset_ok(&offs[i]))
            return false;
    return true;
}

static bool meta_offsets_put_ok(const mk_meta_op_t *op)
{
    return meta_offsets_ok(op->offsets, op->n);
}

static int meta_offsets_put_locked(mk_meta_t *m, const mk_meta_op_t *op)
{
    const mk_meta_offset_t *offs = op->offsets;
    int n = op->n;
    if (n == 0)
        return 0;
    int err = meta_tx_begin(m);
    if (err)
        return err;
    sqlite3_stmt *s = m->st[ST_OFFSET_SET];
    for (int i = 0; !err && i < n; i++) {
        const mk_meta_offset_t *o = &offs[i];
        int rc = bind_text(s, 1, o->group_id, SQLITE_OK);
        rc = bind_text(s, 2, o->topic, rc);
        rc = bind_int(s, 3, o->partition, rc);
        rc = bind_int(s, 4, o->offset, rc);
        rc = bind_int(s, 5, o->leader_epoch, rc);
        rc = bind_text(s, 6, o->metadata, rc);   /* NULL binds SQL NULL */
        rc = bind_int(s, 7, o->commit_ms, rc);
        rc = bind_int(s, 8, o->expire_ms, rc);
        err = meta_run(m, s, rc, "offset put");
    }
    return meta_tx_end(m, err);
}

/* Deep copy of op->offsets for a submitted MK_META_OFFSETS_PUT.  Rows of
 * one commit usually share the group and a few topics: a row whose group or
 * topic equals the previous row's shares its copy. */
static void meta_offsets_put_copy(mk_arena_t *a, mk_meta_op_t *c, const mk_meta_op_t *op,
                                  bool *oom)
{
    mk_meta_offset_t *co = NULL;
    if (op->n > 0) {
        co = mk_arena_alloc(a, sizeof(*co) * (size_t)op->n);
        *oom = !co;
    }
    for (int i = 0; !*oom && i < op->n; i++) {
        const mk_meta_offset_t *o = &op->offsets[i];
        const mk_meta_offset_t *prev = i ? &co[i - 1] : NULL;   /* a copy */
        co[i] = *o;
        co[i].group_id = prev && strcmp(prev->group_id, o->group_id) == 0
                             ? prev->group_id : meta_arena_str(a, o->group_id, oom);
        co[i].topic = prev && strcmp(prev->topic, o->topic) == 0
                          ? prev->topic : meta_arena_str(a, o->topic, oom);
        co[i].metadata = meta_arena_str(a, o->metadata, oom);
    }
    c->offsets = co;
}

static bool meta_group_name_ok(const mk_meta_op_t *op)
{
    return meta_name_ok(op->group_id);
}

static int meta_offsets_delete_group_locked(mk_meta_t *m, const mk_meta_op_t *op)
{
    sqlite3_stmt *s = m->st[ST_OFFSET_DEL_GROUP];
    return meta_run_count(m, s, bind_text(s, 1, op->group_id, SQLITE_OK), "group offsets delete");
}

static bool meta_offset_delete_ok(const mk_meta_op_t *op)
{
    return meta_name_ok(op->group_id) && meta_name_ok(op->topic) && op->partition >= 0;
}

static int meta_offsets_delete_partition_locked(mk_meta_t *m, const mk_meta_op_t *op)
{
    sqlite3_stmt *s = m->st[ST_OFFSET_DEL_PART];
    int rc = bind_text(s, 1, op->group_id, SQLITE_OK);
    rc = bind_text(s, 2, op->topic, rc);
    rc = bind_int(s, 3, op->partition, rc);
    return meta_run_count(m, s, rc, "offset delete");
}

static int meta_offsets_delete_topic_locked(mk_meta_t *m, const mk_meta_op_t *op)
{
    sqlite3_stmt *s = m->st[ST_OFFSET_DEL_TOPIC];
    return meta_run_count(m, s, bind_text(s, 1, op->topic, SQLITE_OK), "topic offsets delete");
}

/* The one copy of the expiry rule (meta.h); also the SQL function
 * mk_offset_expired that ST_OFFSET_EXPIRE* call. */
bool mk_meta_offset_expired(int64_t commit_ms, int64_t expire_ms, int64_t now_ms,
                            int64_t retention_ms)
{
    if (expire_ms >= 0)
        return expire_ms <= now_ms;
    return expire_ms == -1 && retention_ms >= 0 && commit_ms <= now_ms - retention_ms;
}

static bool meta_expire_ok(const mk_meta_op_t *op)
{
    return (!op->group_id || meta_name_ok(op->group_id)) && op->now_ms >= 0 &&
           op->retention_ms >= -1;
}

static int meta_offsets_expire_locked(mk_meta_t *m, const mk_meta_op_t *op)
{
    sqlite3_stmt *s = m->st[op->group_id ? ST_OFFSET_EXPIRE_GROUP : ST_OFFSET_EXPIRE];
    int rc = bind_int(s, 1, op->now_ms, SQLITE_OK);
    rc = bind_int(s, 2, op->retention_ms, rc);
    if (op->group_id)
        rc = bind_text(s, 3, op->group_id, rc);
    return meta_run_count(m, s, rc, "offsets expire");
}

/* A stored name read back: text of 1..MK_META_MAX_NAME bytes without an
 * embedded NUL.  Sets *out (pointing into SQLite's row) or returns why not. */
static const char *meta_column_name(sqlite3_stmt *s, int col, int type, const char **out)
{
    if (type != SQLITE_TEXT)
        return "name is not text";
    const char *v = (const char *)sqlite3_column_text(s, col);
    int n = sqlite3_column_bytes(s, col);
    if (!v)
        return NULL;   /* TEXT read as NULL: out of memory, *out stays NULL */
    if (n < 1 || n > MK_META_MAX_NAME || strnlen(v, (size_t)n) != (size_t)n)
        return "name empty, too long or with a NUL byte";
    *out = v;
    return NULL;
}

/* Fills o from the current row of ST_OFFSET_LIST.  Strings point into
 * SQLite's row and are valid until the next step.  Column types are read
 * first: they are undefined after a conversion. */
static int meta_offset_load(mk_meta_t *m, sqlite3_stmt *s, mk_meta_offset_t *o)
{
    enum { C_GROUP, C_TOPIC, C_PART, C_OFFSET, C_EPOCH, C_META, C_COMMIT, C_EXPIRE, C__N };
    int type[C__N];
    for (int c = 0; c < C__N; c++)
        type[c] = sqlite3_column_type(s, c);
    memset(o, 0, sizeof(*o));
    const char *why = meta_column_name(s, C_GROUP, type[C_GROUP], &o->group_id);
    if (!why)
        why = meta_column_name(s, C_TOPIC, type[C_TOPIC], &o->topic);
    if (why)
        return meta_offset_corrupt(m, o->group_id, o->topic, why);
    if (!o->group_id || !o->topic)
        return MK_ERR_NOMEM;
    if (type[C_PART] != SQLITE_INTEGER || type[C_OFFSET] != SQLITE_INTEGER ||
        type[C_EPOCH] != SQLITE_INTEGER || type[C_COMMIT] != SQLITE_INTEGER ||
        type[C_EXPIRE] != SQLITE_INTEGER)
        return meta_offset_corrupt(m, o->group_id, o->topic, "number is not an integer");
    int64_t part = sqlite3_column_int64(s, C_PART);
    int64_t epoch = sqlite3_column_int64(s, C_EPOCH);
    o->offset = sqlite3_column_int64(s, C_OFFSET);
    o->commit_ms = sqlite3_column_int64(s, C_COMMIT);
    o->expire_ms = sqlite3_column_int64(s, C_EXPIRE);
    if (part < 0 || part >= MK_META_MAX_PARTITIONS)
        return meta_offset_corrupt(m, o->group_id, o->topic, "partition out of range");
    if (epoch < -1 || epoch > INT32_MAX)
        return meta_offset_corrupt(m, o->group_id, o->topic, "leader epoch out of range");
    if (o->commit_ms < 0 || o->expire_ms < -1)
        return meta_offset_corrupt(m, o->group_id, o->topic, "timestamp out of range");
    o->partition = (int32_t)part;
    o->leader_epoch = (int32_t)epoch;
    if (type[C_META] != SQLITE_NULL) {
        if (type[C_META] != SQLITE_TEXT)
            return meta_offset_corrupt(m, o->group_id, o->topic, "metadata is not text");
        o->metadata = (const char *)sqlite3_column_text(s, C_META);
        int n = sqlite3_column_bytes(s, C_META);
        if (!o->metadata)
            return MK_ERR_NOMEM;
        if (n > MK_META_MAX_OFFSET_METADATA || strnlen(o->metadata, (size_t)n) != (size_t)n)
            return meta_offset_corrupt(m, o->group_id, o->topic, "metadata length out of range");
    }
    return 0;
}

static int meta_offsets_foreach_locked(mk_meta_t *m, mk_meta_offset_cb cb, void *arg)
{
    sqlite3_stmt *s = m->st[ST_OFFSET_LIST];
    int err = 0;
    for (;;) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            err = meta_err(m, rc, "offsets list");
            break;
        }
        mk_meta_offset_t o;
        err = meta_offset_load(m, s, &o);
        if (!err)
            err = cb(&o, arg);
        if (err)
            break;
    }
    meta_reset(s);
    return err;
}

int mk_meta_offsets_foreach(mk_meta_t *m, mk_meta_offset_cb cb, void *arg)
{
    if (!cb)
        return MK_ERR_INVALID;
    uv_mutex_lock(&m->lock);
    int err = meta_offsets_foreach_locked(m, cb, arg);
    uv_mutex_unlock(&m->lock);
    return err;
}

/* ==================================================================== audit */

#define META_AUDIT_MAX_TOKEN 64   /* bytes of kind and rule */

static bool meta_token_ok(const char *s, bool empty_ok)
{
    size_t n = s ? strnlen(s, META_AUDIT_MAX_TOKEN + 1) : 0;
    return (empty_ok || n > 0) && n <= META_AUDIT_MAX_TOKEN;
}

static bool meta_audit_row_ok(const mk_meta_audit_t *a)
{
    return a->ts_ms >= 0 && meta_token_ok(a->kind, false) && meta_token_ok(a->rule, true) &&
           a->partition >= -1 && a->broker >= -1 &&
           (!a->topic || strnlen(a->topic, MK_META_MAX_NAME + 1) <= MK_META_MAX_NAME) &&
           (!a->topic_id || strnlen(a->topic_id, 64) < 64) &&
           (!a->detail || strnlen(a->detail, MK_META_MAX_AUDIT_DETAIL + 1) <= MK_META_MAX_AUDIT_DETAIL);
}

static bool meta_audit_append_ok(const mk_meta_op_t *op)
{
    if (op->n < 1 || !op->audit)
        return false;
    for (int i = 0; i < op->n; i++)
        if (!meta_audit_row_ok(&op->audit[i]))
            return false;
    return true;
}

static void meta_audit_append_copy(mk_arena_t *a, mk_meta_op_t *c, const mk_meta_op_t *op, bool *oom)
{
    mk_meta_audit_t *rows = mk_arena_alloc(a, sizeof(*rows) * (size_t)op->n);
    if (!rows) {
        *oom = true;
        return;
    }
    for (int i = 0; i < op->n; i++) {
        rows[i] = op->audit[i];
        rows[i].kind = meta_arena_str(a, op->audit[i].kind, oom);
        rows[i].topic = meta_arena_str(a, op->audit[i].topic, oom);
        rows[i].topic_id = meta_arena_str(a, op->audit[i].topic_id, oom);
        rows[i].rule = meta_arena_str(a, op->audit[i].rule, oom);
        rows[i].detail = meta_arena_str(a, op->audit[i].detail, oom);
    }
    c->audit = rows;
}

/* An audit number: NULL for MK_META_AUDIT_NONE. */
static int bind_opt(sqlite3_stmt *s, int i, int64_t v, int rc)
{
    if (rc != SQLITE_OK)
        return rc;
    return v == MK_META_AUDIT_NONE ? sqlite3_bind_null(s, i) : sqlite3_bind_int64(s, i, v);
}

static int meta_audit_append_locked(mk_meta_t *m, const mk_meta_op_t *op)
{
    int err = meta_tx_begin(m);
    sqlite3_stmt *s = m->st[ST_AUDIT_PUT];
    for (int i = 0; !err && i < op->n; i++) {
        const mk_meta_audit_t *a = &op->audit[i];
        int rc = bind_int(s, 1, a->ts_ms, SQLITE_OK);
        rc = bind_text(s, 2, a->kind, rc);
        rc = bind_text(s, 3, a->topic ? a->topic : "", rc);
        rc = bind_text(s, 4, a->topic_id ? a->topic_id : "", rc);
        rc = bind_int(s, 5, a->partition, rc);
        rc = bind_int(s, 6, a->broker, rc);
        rc = bind_opt(s, 7, a->start_before, rc);
        rc = bind_opt(s, 8, a->start_after, rc);
        rc = bind_opt(s, 9, a->base_offset, rc);
        rc = bind_opt(s, 10, a->end_offset, rc);
        rc = bind_opt(s, 11, a->largest_ts, rc);
        rc = bind_opt(s, 12, a->retention_ms, rc);
        rc = bind_opt(s, 13, a->retention_bytes, rc);
        rc = bind_opt(s, 14, a->log_bytes, rc);
        rc = bind_text(s, 15, a->rule ? a->rule : "", rc);
        rc = bind_text(s, 16, a->detail ? a->detail : "", rc);
        err = meta_run(m, s, rc, "audit append");
    }
    return meta_tx_end(m, err);
}

static bool meta_audit_prune_ok(const mk_meta_op_t *op) { return op->n >= 1; }

static int meta_audit_prune_locked(mk_meta_t *m, const mk_meta_op_t *op)
{
    sqlite3_stmt *s = m->st[ST_AUDIT_PRUNE];
    return meta_run_count(m, s, bind_int(s, 1, op->n, SQLITE_OK), "audit prune");
}

/* A text column of an audit row: NULL reads as "", a NUL byte or more than
 * max bytes is corrupt. */
static const char *meta_audit_text(sqlite3_stmt *s, int col, size_t max, bool *bad)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return "";
    const char *v = (const char *)sqlite3_column_text(s, col);
    int n = sqlite3_column_bytes(s, col);
    if (!v || n < 0 || (size_t)n > max || strnlen(v, (size_t)n) != (size_t)n) {
        *bad = true;
        return "";
    }
    return v;
}

static int64_t meta_audit_num(sqlite3_stmt *s, int col, bool *bad)
{
    int type = sqlite3_column_type(s, col);
    if (type == SQLITE_NULL)
        return MK_META_AUDIT_NONE;
    if (type != SQLITE_INTEGER) {
        *bad = true;
        return MK_META_AUDIT_NONE;
    }
    return sqlite3_column_int64(s, col);
}

int mk_meta_audit_foreach(mk_meta_t *m, int64_t after_seq, const char *kind, mk_meta_audit_cb cb, void *arg)
{
    if (!cb)
        return MK_ERR_INVALID;
    uv_mutex_lock(&m->lock);
    if (m->schema < 3) {
        uv_mutex_unlock(&m->lock);
        return 0;
    }
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(m->db,
                                "SELECT seq, ts_ms, kind, topic, topic_id, partition_index, broker, start_before,"
                                " start_after, base_offset, end_offset, largest_ts, retention_ms, retention_bytes,"
                                " log_bytes, rule, detail FROM audit WHERE seq > ?1 AND (?2 IS NULL OR kind = ?2)"
                                " ORDER BY seq",
                                -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 1, after_seq);
    if (rc == SQLITE_OK)
        rc = kind ? sqlite3_bind_text(s, 2, kind, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, 2);
    int err = 0;
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
            break;
        bool bad = false;
        mk_meta_audit_t a;
        a.seq = meta_audit_num(s, 0, &bad);
        a.ts_ms = meta_audit_num(s, 1, &bad);
        a.kind = meta_audit_text(s, 2, META_AUDIT_MAX_TOKEN, &bad);
        a.topic = meta_audit_text(s, 3, MK_META_MAX_NAME, &bad);
        a.topic_id = meta_audit_text(s, 4, 63, &bad);
        int64_t part = meta_audit_num(s, 5, &bad), broker = meta_audit_num(s, 6, &bad);
        a.start_before = meta_audit_num(s, 7, &bad);
        a.start_after = meta_audit_num(s, 8, &bad);
        a.base_offset = meta_audit_num(s, 9, &bad);
        a.end_offset = meta_audit_num(s, 10, &bad);
        a.largest_ts = meta_audit_num(s, 11, &bad);
        a.retention_ms = meta_audit_num(s, 12, &bad);
        a.retention_bytes = meta_audit_num(s, 13, &bad);
        a.log_bytes = meta_audit_num(s, 14, &bad);
        a.rule = meta_audit_text(s, 15, META_AUDIT_MAX_TOKEN, &bad);
        a.detail = meta_audit_text(s, 16, MK_META_MAX_AUDIT_DETAIL, &bad);
        if (bad || a.seq == MK_META_AUDIT_NONE || a.ts_ms < 0 || part < -1 || part >= MK_META_MAX_PARTITIONS ||
            broker < -1 || broker > INT32_MAX) {
            mk_error("meta: %s: corrupt store: audit row %lld out of range", m->path, (long long)a.seq);
            err = MK_ERR_CORRUPT;
            break;
        }
        a.partition = (int32_t)part;
        a.broker = (int32_t)broker;
        if ((err = cb(&a, arg)) != 0)
            break;
    }
    if (!err && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = meta_err(m, rc, "audit walk");
    sqlite3_finalize(s);
    uv_mutex_unlock(&m->lock);
    return err;
}

/* ========================================================== remote segments */

static bool meta_rseg_key_ok(const mk_meta_remote_segment_t *r)
{
    return r && r->partition >= 0 && r->partition < MK_META_MAX_PARTITIONS && r->segment_id &&
           *r->segment_id && strnlen(r->segment_id, MK_META_MAX_RSEG_ID + 1) <= MK_META_MAX_RSEG_ID;
}

static bool meta_rseg_blob_ok(const uint8_t *p, int32_t n)
{
    return n >= 0 && n <= MK_META_MAX_RSEG_BLOB && (n == 0 || p);
}

static bool meta_rseg_put_ok(const mk_meta_op_t *op)
{
    const mk_meta_remote_segment_t *r = op->rs;
    return meta_rseg_key_ok(r) && meta_name_ok(r->topic) && r->start_offset >= 0 &&
           r->end_offset >= r->start_offset && r->size_bytes >= 0 && r->state >= MK_META_RSEG_COPY_STARTED &&
           r->state <= MK_META_RSEG_DELETE_FINISHED && r->sha256 && strlen(r->sha256) <= 64 &&
           meta_rseg_blob_ok(r->epochs, r->epochs_len) && meta_rseg_blob_ok(r->chunks, r->chunks_len) &&
           meta_rseg_blob_ok(r->aborted, r->aborted_len);
}

static bool meta_rseg_state_ok(const mk_meta_op_t *op)
{
    return meta_rseg_key_ok(op->rs) && op->rs->state >= MK_META_RSEG_COPY_STARTED &&
           op->rs->state <= MK_META_RSEG_DELETE_FINISHED;
}

static bool meta_rseg_delete_ok(const mk_meta_op_t *op) { return meta_rseg_key_ok(op->rs); }

/* Binds the key (?1 topic id, ?2 partition, ?3 segment id). */
static int meta_rseg_bind_key(sqlite3_stmt *s, const mk_meta_remote_segment_t *r)
{
    int rc = bind_blob(s, 1, r->topic_id, 16, SQLITE_OK);
    rc = bind_int(s, 2, r->partition, rc);
    return bind_text(s, 3, r->segment_id, rc);
}

static int meta_rseg_put_locked(mk_meta_t *m, const mk_meta_op_t *op)
{
    const mk_meta_remote_segment_t *r = op->rs;
    static const uint8_t none[1];
    sqlite3_stmt *s = m->st[ST_RSEG_SET];
    int rc = meta_rseg_bind_key(s, r);
    rc = bind_text(s, 4, r->topic, rc);
    rc = bind_int(s, 5, r->start_offset, rc);
    rc = bind_int(s, 6, r->end_offset, rc);
    rc = bind_int(s, 7, r->max_timestamp, rc);
    rc = bind_int(s, 8, r->size_bytes, rc);
    rc = bind_int(s, 9, r->state, rc);
    rc = bind_int(s, 10, r->broker, rc);
    rc = bind_int(s, 11, r->leader_epoch, rc);
    rc = bind_int(s, 12, r->crc32c, rc);
    rc = bind_text(s, 13, r->sha256, rc);
    rc = bind_blob(s, 14, r->epochs_len ? r->epochs : none, r->epochs_len, rc);
    rc = bind_blob(s, 15, r->chunks_len ? r->chunks : none, r->chunks_len, rc);
    rc = bind_blob(s, 16, r->aborted_len ? r->aborted : none, r->aborted_len, rc);
    rc = bind_int(s, 17, r->event_ms, rc);
    return meta_run(m, s, rc, "remote segment put");
}

static int meta_rseg_state_locked(mk_meta_t *m, const mk_meta_op_t *op)
{
    sqlite3_stmt *s = m->st[ST_RSEG_STATE];
    int rc = meta_rseg_bind_key(s, op->rs);
    rc = bind_int(s, 4, op->rs->state, rc);
    rc = bind_int(s, 5, op->rs->event_ms, rc);
    int n = meta_run_count(m, s, rc, "remote segment state");
    return n < 0 ? n : n == 0 ? MK_ERR_NOT_FOUND : 0;
}

static int meta_rseg_delete_locked(mk_meta_t *m, const mk_meta_op_t *op)
{
    sqlite3_stmt *s = m->st[ST_RSEG_DEL];
    int n = meta_run_count(m, s, meta_rseg_bind_key(s, op->rs), "remote segment delete");
    return n < 0 ? n : 0;
}

/* Deep copy of op->rs for a submitted write. */
static void meta_rseg_copy(mk_arena_t *a, mk_meta_op_t *c, const mk_meta_op_t *op, bool *oom)
{
    mk_meta_remote_segment_t *r = mk_arena_alloc(a, sizeof(*r));
    if (!r) {
        *oom = true;
        return;
    }
    *r = *op->rs;
    r->segment_id = meta_arena_str(a, op->rs->segment_id, oom);
    r->topic = meta_arena_str(a, op->rs->topic, oom);
    r->sha256 = meta_arena_str(a, op->rs->sha256, oom);
    const uint8_t **blobs[] = {&r->epochs, &r->chunks, &r->aborted};
    const int32_t lens[] = {r->epochs_len, r->chunks_len, r->aborted_len};
    for (int i = 0; i < 3 && !*oom; i++) {
        if (!*blobs[i] || lens[i] <= 0) {
            *blobs[i] = NULL;
            continue;
        }
        uint8_t *d = mk_arena_alloc(a, (size_t)lens[i]);
        if (!d) {
            *oom = true;
            break;
        }
        memcpy(d, *blobs[i], (size_t)lens[i]);
        *blobs[i] = d;
    }
    c->rs = r;
}

static int meta_rseg_corrupt(mk_meta_t *m, const char *what)
{
    mk_error("meta: %s: corrupt store: remote segment: %s", m->path, what);
    return MK_ERR_CORRUPT;
}

int mk_meta_remote_segments_foreach(mk_meta_t *m, mk_meta_remote_segment_cb cb, void *arg)
{
    if (!cb)
        return MK_ERR_INVALID;
    uv_mutex_lock(&m->lock);
    if (m->schema < 4) { /* a store older than tiering (read-only open): no rows */
        uv_mutex_unlock(&m->lock);
        return 0;
    }
    sqlite3_stmt *s = m->st[ST_RSEG_LIST];
    int err = 0;
    for (;;) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            err = meta_err(m, rc, "remote segments list");
            break;
        }
        enum { C_TID, C_PART, C_SID, C_TOPIC, C_START, C_END, C_MAXTS, C_SIZE, C_STATE, C_BROKER, C_EPOCH,
               C_CRC, C_SHA, C_EPOCHS, C_CHUNKS, C_ABORTED, C_EVENT, C__N };
        int type[C__N];
        for (int c = 0; c < C__N; c++)
            type[c] = sqlite3_column_type(s, c);
        mk_meta_remote_segment_t r;
        memset(&r, 0, sizeof(r));
        const void *tid = sqlite3_column_blob(s, C_TID);
        if (type[C_TID] != SQLITE_BLOB || sqlite3_column_bytes(s, C_TID) != 16 || !tid) {
            err = meta_rseg_corrupt(m, "topic id is not 16 bytes");
            break;
        }
        memcpy(r.topic_id, tid, 16);
        const char *why = meta_column_name(s, C_SID, type[C_SID], &r.segment_id);
        if (!why)
            why = meta_column_name(s, C_TOPIC, type[C_TOPIC], &r.topic);
        if (!why && (type[C_SHA] != SQLITE_TEXT || type[C_EPOCHS] != SQLITE_BLOB || type[C_CHUNKS] != SQLITE_BLOB ||
                     type[C_ABORTED] != SQLITE_BLOB))
            why = "a text or blob column has another type";
        static const int ints[] = {C_PART, C_START, C_END, C_MAXTS, C_SIZE, C_STATE, C_BROKER, C_EPOCH, C_CRC, C_EVENT};
        for (size_t i = 0; !why && i < MK_ARRAY_LEN(ints); i++)
            if (type[ints[i]] != SQLITE_INTEGER)
                why = "number is not an integer";
        if (why) {
            err = meta_rseg_corrupt(m, why);
            break;
        }
        if (!r.segment_id || !r.topic) {
            err = MK_ERR_NOMEM;
            break;
        }
        int64_t part = sqlite3_column_int64(s, C_PART), state = sqlite3_column_int64(s, C_STATE);
        r.start_offset = sqlite3_column_int64(s, C_START);
        r.end_offset = sqlite3_column_int64(s, C_END);
        r.max_timestamp = sqlite3_column_int64(s, C_MAXTS);
        r.size_bytes = sqlite3_column_int64(s, C_SIZE);
        int64_t broker = sqlite3_column_int64(s, C_BROKER), epoch = sqlite3_column_int64(s, C_EPOCH);
        int64_t crc = sqlite3_column_int64(s, C_CRC);
        r.event_ms = sqlite3_column_int64(s, C_EVENT);
        r.sha256 = (const char *)sqlite3_column_text(s, C_SHA);
        const uint8_t **blobs[] = {&r.epochs, &r.chunks, &r.aborted};
        int32_t *lens[] = {&r.epochs_len, &r.chunks_len, &r.aborted_len};
        for (int i = 0; i < 3; i++) {
            *blobs[i] = sqlite3_column_blob(s, C_EPOCHS + i);
            int n = sqlite3_column_bytes(s, C_EPOCHS + i);
            if (n > MK_META_MAX_RSEG_BLOB)
                why = "blob too large";
            *lens[i] = n;
        }
        if (!why && (part < 0 || part >= MK_META_MAX_PARTITIONS || state < 0 || state > 3 || r.start_offset < 0 ||
                     r.end_offset < r.start_offset || r.size_bytes < 0 || broker < INT32_MIN || broker > INT32_MAX ||
                     epoch < INT32_MIN || epoch > INT32_MAX || crc < 0 || crc > UINT32_MAX || !r.sha256 ||
                     strlen(r.sha256) > 64))
            why = "value out of range";
        if (why) {
            err = meta_rseg_corrupt(m, why);
            break;
        }
        r.partition = (int32_t)part;
        r.state = (int32_t)state;
        r.broker = (int32_t)broker;
        r.leader_epoch = (int32_t)epoch;
        r.crc32c = (uint32_t)crc;
        if ((err = cb(&r, arg)) != 0)
            break;
    }
    meta_reset(s);
    uv_mutex_unlock(&m->lock);
    return err;
}

/* =============================================================== operations */

/* String arguments of an operation (meta_op_def_t.strings). */
enum { ARG_TOPIC = 1, ARG_GROUP = 2, ARG_KEY = 4, ARG_VALUE = 8 };

/* One row per kind of write: everything run and submit need to know. */
typedef struct meta_op_def_s {
    bool (*ok)(const mk_meta_op_t *op);      /* argument check, before anything else */
    unsigned strings;                        /* ARG_*: string arguments it reads */
    /* Deep copy of its other pointer arguments into a job's arena (NULL =
     * none); sets *oom on failure.  Loop thread. */
    void (*copy)(mk_arena_t *a, mk_meta_op_t *c, const mk_meta_op_t *op, bool *oom);
    /* The write itself, with m->lock held; any thread, allocates nothing. */
    int (*locked)(mk_meta_t *m, const mk_meta_op_t *op);
} meta_op_def_t;

static const meta_op_def_t meta_ops[MK_META_OP__COUNT] = {
    [MK_META_KV_SET] = {meta_kv_set_ok, ARG_KEY | ARG_VALUE, NULL, meta_kv_set_locked},
    [MK_META_TOPIC_PUT] = {meta_topic_put_ok, 0, meta_topic_put_copy, meta_topic_put_locked},
    [MK_META_TOPIC_DELETE] = {meta_topic_name_ok, ARG_TOPIC, NULL, meta_topic_delete_locked},
    [MK_META_TOPIC_CONFIG_SET] = {meta_config_set_ok, ARG_TOPIC | ARG_KEY | ARG_VALUE, NULL,
                                  meta_config_set_locked},
    [MK_META_PARTITION_PUT] = {meta_partition_put_ok, ARG_TOPIC, meta_partition_put_copy,
                               meta_partition_put_locked},
    [MK_META_OFFSETS_PUT] = {meta_offsets_put_ok, 0, meta_offsets_put_copy,
                             meta_offsets_put_locked},
    [MK_META_OFFSETS_DELETE_GROUP] = {meta_group_name_ok, ARG_GROUP, NULL,
                                      meta_offsets_delete_group_locked},
    [MK_META_OFFSETS_DELETE_PARTITION] = {meta_offset_delete_ok, ARG_GROUP | ARG_TOPIC, NULL,
                                          meta_offsets_delete_partition_locked},
    [MK_META_OFFSETS_DELETE_TOPIC] = {meta_topic_name_ok, ARG_TOPIC, NULL,
                                      meta_offsets_delete_topic_locked},
    [MK_META_OFFSETS_EXPIRE] = {meta_expire_ok, ARG_GROUP, NULL, meta_offsets_expire_locked},
    [MK_META_AUDIT_APPEND] = {meta_audit_append_ok, 0, meta_audit_append_copy, meta_audit_append_locked},
    [MK_META_AUDIT_PRUNE] = {meta_audit_prune_ok, 0, NULL, meta_audit_prune_locked},
    [MK_META_REMOTE_SEGMENT_PUT] = {meta_rseg_put_ok, 0, meta_rseg_copy, meta_rseg_put_locked},
    [MK_META_REMOTE_SEGMENT_STATE] = {meta_rseg_state_ok, 0, meta_rseg_copy, meta_rseg_state_locked},
    [MK_META_REMOTE_SEGMENT_DELETE] = {meta_rseg_delete_ok, 0, meta_rseg_copy, meta_rseg_delete_locked},
};

/* The row of op, or NULL when op is not a valid write. */
static const meta_op_def_t *meta_op_check(const mk_meta_op_t *op)
{
    if (!op || (unsigned)op->kind >= MK_META_OP__COUNT)
        return NULL;
    const meta_op_def_t *d = &meta_ops[op->kind];
    return d->ok(op) ? d : NULL;
}

/* The synchronous path: check, then the row's body under the lock, on the
 * caller's thread.  Returns the body's status. */
int mk_meta_op_run(mk_meta_t *m, const mk_meta_op_t *op)
{
    const meta_op_def_t *d = meta_op_check(op);
    if (!d)
        return MK_ERR_INVALID;
    if (m->readonly)
        return MK_ERR_STATE;
    uv_mutex_lock(&m->lock);
    int status = d->locked(m, op);
    uv_mutex_unlock(&m->lock);
    return status;
}

/* One submitted write.  op and everything it points to live in arena,
 * copied on the loop thread at submission. */
struct meta_job_s {
    uv_work_t req;                /* req.data = this job */
    mk_meta_t *m;
    meta_job_t *next;             /* FIFO link */
    mk_meta_op_t op;              /* the copy */
    int status;                   /* written by the worker, read in after_work */
    mk_arena_t arena;             /* owns every copy in op */
    mk_meta_done_cb cb;
    void *arg;
};

static void meta_job_free(meta_job_t *job)
{
    mk_arena_free(&job->arena);
    mk_free(job);
}

/* Worker thread: run the write under the connection lock. */
static void meta_work(uv_work_t *req)
{
    meta_job_t *job = req->data;
    mk_meta_t *m = job->m;
    uv_mutex_lock(&m->lock);
    job->status = meta_ops[job->op.kind].locked(m, &job->op);
    uv_mutex_unlock(&m->lock);
}

static void meta_after_work(uv_work_t *req, int status);

static int meta_queue_start(mk_meta_t *m)
{
    meta_job_t *job = m->q_head;
    job->req.data = job;
    int rc = uv_queue_work(m->loop, &job->req, meta_work, meta_after_work);
    return rc == 0 ? 0 : MK_ERR_STATE;
}

/* Loop thread: pop the finished head, start the next, then report. */
static void meta_after_work(uv_work_t *req, int status)
{
    meta_job_t *job = req->data;
    mk_meta_t *m = job->m;
    assert(job == m->q_head);
    m->q_head = job->next;
    if (!m->q_head)
        m->q_tail = NULL;
    m->pending--;
    if (m->q_head) {
        int err = meta_queue_start(m);
        assert(err == 0);   /* uv_queue_work fails only for a NULL work_cb */
        (void)err;
    }
    m->in_cb++;
    if (job->cb)
        job->cb(status == UV_ECANCELED ? MK_ERR_STATE : job->status, job->arg);
    m->in_cb--;
    meta_job_free(job);
    if (m->closing && m->pending == 0 && m->in_cb == 0)
        meta_destroy(m);
}

/* A job holding a copy of op: its scalars, the strings its row names, and
 * what the row's copy function copies; every other pointer stays NULL.
 * NULL when out of memory. */
static meta_job_t *meta_job_new(const meta_op_def_t *d, const mk_meta_op_t *op)
{
    meta_job_t *job = mk_calloc(1, sizeof(*job));
    if (!job)
        return NULL;
    mk_arena_init(&job->arena);
    mk_arena_t *a = &job->arena;
    mk_meta_op_t *c = &job->op;
    c->kind = op->kind;
    c->partition = op->partition;
    c->n = op->n;
    c->now_ms = op->now_ms;
    c->retention_ms = op->retention_ms;
    bool oom = false;
    if (d->strings & ARG_TOPIC)
        c->topic = meta_arena_str(a, op->topic, &oom);
    if (d->strings & ARG_GROUP)
        c->group_id = meta_arena_str(a, op->group_id, &oom);
    if (d->strings & ARG_KEY)
        c->key = meta_arena_str(a, op->key, &oom);
    if (d->strings & ARG_VALUE)
        c->value = meta_arena_str(a, op->value, &oom);
    if (!oom && d->copy)
        d->copy(a, c, op, &oom);
    if (oom) {
        meta_job_free(job);
        return NULL;
    }
    return job;
}

/* The asynchronous path: check, copy into a job, append to the FIFO and
 * start it if it is the head.  Loop thread; fails without queueing (and
 * without calling cb). */
int mk_meta_op_submit(mk_meta_t *m, uv_loop_t *loop, const mk_meta_op_t *op,
                      mk_meta_done_cb cb, void *arg)
{
    const meta_op_def_t *d = meta_op_check(op);
    if (!d)
        return MK_ERR_INVALID;
    if (m->closing || m->readonly)
        return MK_ERR_STATE;
    if (!loop || (m->q_head && m->loop != loop))
        return MK_ERR_INVALID;
    meta_job_t *job = meta_job_new(d, op);
    if (!job)
        return MK_ERR_NOMEM;
    job->m = m;
    job->cb = cb;
    job->arg = arg;
    if (!m->q_head)
        m->loop = loop;
    if (m->q_tail)
        m->q_tail->next = job;
    else
        m->q_head = job;
    m->q_tail = job;
    m->pending++;
    int err = 0;
    if (m->q_head == job && (err = meta_queue_start(m)) != 0) {
        m->q_head = m->q_tail = NULL;
        m->pending--;
        meta_job_free(job);
    }
    return err;
}
