/*
 * s3.c -- tier's S3 client (libs3, the one module that links it) and its
 * worker threads.
 *
 * Threads.  Two queues of jobs, each served by two threads of its own:
 * WRITE (segment copies, deletes) and READ (chunk reads), so that a long
 * upload never delays a consumer's read and neither ever takes one of
 * libuv's threadpool threads (which fsyncs and SQLite commits need).  A job's
 * work() runs on a worker; when it returns the job goes on a done list and
 * an async handle wakes the loop, which calls the jobs' done() in the order
 * they finished.  Queues and the done list are guarded by one mutex.
 *
 * Requests.  libs3 2.0 has no timeouts of its own, so every request runs in
 * a request context of its own, driven here with select() in steps of at
 * most 100 ms: past the deadline (minikora.tier.request.timeout.ms), or
 * when the client is stopping, the context is destroyed, which aborts the
 * request.  A request never retries by itself; tier.c decides about
 * retries and backoff.  The status libs3 reports is mapped to MK_ERR_*: 0,
 * MK_ERR_NOT_FOUND for a 404, MK_ERR_IO for anything else (with a sentence
 * naming libs3's status and S3's message).
 *
 * Signature V2 (libs3 2.0) needs no region; path style unless the target
 * asks for virtual-hosted buckets.
 */
#include "fault/fault.h"
#include "tier/tier_int.h"

#include <errno.h>
#include <inttypes.h>
#include <libs3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#define THREADS_PER_QUEUE 2
#define STEP_MS 100

typedef struct worker_arg_s {
    tier_s3_t *s3;
    int queue;
} worker_arg_t;

struct tier_s3_s {
    uv_loop_t *loop;
    mk_tier_target_t target;
    S3BucketContext bucket;
    int32_t timeout_ms;
    pthread_mutex_t lock;
    pthread_cond_t cond[TIER_NQUEUES];
    tier_job_t *head[TIER_NQUEUES], *tail[TIER_NQUEUES];
    int pending[TIER_NQUEUES];          /* queued or running (loop reads it under lock) */
    tier_job_t *done_head, *done_tail;
    uv_async_t *async;                  /* owned: freed in its close callback */
    pthread_t threads[TIER_NQUEUES * THREADS_PER_QUEUE];
    worker_arg_t wargs[TIER_NQUEUES * THREADS_PER_QUEUE];
    int nthreads;
    _Atomic int stop;
    tier_s3_counters_t ctr;
    char last_error[160];               /* under lock */
};

/* ================================================================= workers */

static void *worker_main(void *arg);

/* Loop thread: the finished jobs' done(), in order. */
static void async_cb(uv_async_t *a)
{
    tier_s3_t *s3 = a->data;
    pthread_mutex_lock(&s3->lock);
    tier_job_t *j = s3->done_head;
    s3->done_head = s3->done_tail = NULL;
    pthread_mutex_unlock(&s3->lock);
    while (j) {
        tier_job_t *next = j->next;
        j->next = NULL;
        j->done(j);
        j = next;
    }
}

static void *worker_main(void *arg)
{
    worker_arg_t *wa = arg;
    tier_s3_t *s3 = wa->s3;
    int q = wa->queue;
    for (;;) {
        pthread_mutex_lock(&s3->lock);
        while (!s3->head[q] && !atomic_load(&s3->stop))
            pthread_cond_wait(&s3->cond[q], &s3->lock);
        if (atomic_load(&s3->stop)) {
            pthread_mutex_unlock(&s3->lock);
            return NULL;
        }
        tier_job_t *j = s3->head[q];
        s3->head[q] = j->next;
        if (!s3->head[q])
            s3->tail[q] = NULL;
        j->next = NULL;
        pthread_mutex_unlock(&s3->lock);

        j->rc = 0;
        j->why[0] = 0;
        j->work(j, s3);

        pthread_mutex_lock(&s3->lock);
        s3->pending[q]--;
        if (s3->done_tail)
            s3->done_tail->next = j;
        else
            s3->done_head = j;
        s3->done_tail = j;
        pthread_mutex_unlock(&s3->lock);
        uv_async_send(s3->async);
    }
}

int tier_s3_new(uv_loop_t *loop, const mk_tier_target_t *target, int32_t timeout_ms, tier_s3_t **out)
{
    static int initialized;
    if (!initialized) {
        /* Once per process (not thread-safe: called on the loop thread at
         * start).  The default host is never used: every bucket context
         * names its own. */
        S3Status st = S3_initialize("minikora", S3_INIT_ALL, target->host);
        if (st != S3StatusOK) {
            mk_error("tier: libs3 cannot start: %s", S3_get_status_name(st));
            return MK_ERR_IO;
        }
        initialized = 1;
    }
    tier_s3_t *s3 = mk_calloc(1, sizeof(*s3));
    if (!s3)
        return MK_ERR_NOMEM;
    s3->loop = loop;
    s3->target = *target;
    s3->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
    s3->bucket.hostName = s3->target.host;
    s3->bucket.bucketName = s3->target.bucket;
    s3->bucket.protocol = s3->target.https ? S3ProtocolHTTPS : S3ProtocolHTTP;
    s3->bucket.uriStyle = s3->target.virtual_style ? S3UriStyleVirtualHost : S3UriStylePath;
    s3->bucket.accessKeyId = s3->target.access_key;
    s3->bucket.secretAccessKey = s3->target.secret_key;
    pthread_mutex_init(&s3->lock, NULL);
    for (int q = 0; q < TIER_NQUEUES; q++)
        pthread_cond_init(&s3->cond[q], NULL);
    s3->async = mk_malloc(sizeof(uv_async_t));
    if (!s3->async || uv_async_init(loop, s3->async, async_cb) < 0) {
        mk_free(s3->async);
        mk_free(s3);
        return MK_ERR_NOMEM;
    }
    s3->async->data = s3;
    for (int q = 0; q < TIER_NQUEUES; q++)
        for (int k = 0; k < THREADS_PER_QUEUE; k++) {
            worker_arg_t *wa = &s3->wargs[s3->nthreads];
            wa->s3 = s3;
            wa->queue = q;
            if (pthread_create(&s3->threads[s3->nthreads], NULL, worker_main, wa) != 0) {
                mk_error("tier: cannot start a worker thread");
                tier_s3_free(s3);
                return MK_ERR_IO;
            }
            s3->nthreads++;
        }
    *out = s3;
    return 0;
}

void tier_s3_free(tier_s3_t *s3)
{
    if (!s3)
        return;
    pthread_mutex_lock(&s3->lock);
    atomic_store(&s3->stop, 1);
    for (int q = 0; q < TIER_NQUEUES; q++)
        pthread_cond_broadcast(&s3->cond[q]);
    pthread_mutex_unlock(&s3->lock);
    for (int i = 0; i < s3->nthreads; i++)
        pthread_join(s3->threads[i], NULL);
    /* Jobs that never ran and jobs whose done() never came: released. */
    for (int q = 0; q < TIER_NQUEUES; q++)
        for (tier_job_t *j = s3->head[q], *n; j; j = n) {
            n = j->next;
            j->release(j);
        }
    for (tier_job_t *j = s3->done_head, *n; j; j = n) {
        n = j->next;
        j->release(j);
    }
    uv_close((uv_handle_t *)s3->async, (uv_close_cb)mk_free);
    for (int q = 0; q < TIER_NQUEUES; q++)
        pthread_cond_destroy(&s3->cond[q]);
    pthread_mutex_destroy(&s3->lock);
    memset(s3->target.secret_key, 0, sizeof(s3->target.secret_key));
    mk_free(s3);
}

void tier_s3_submit(tier_s3_t *s3, tier_job_t *j)
{
    int q = j->queue;
    j->next = NULL;
    pthread_mutex_lock(&s3->lock);
    if (s3->tail[q])
        s3->tail[q]->next = j;
    else
        s3->head[q] = j;
    s3->tail[q] = j;
    s3->pending[q]++;
    pthread_cond_signal(&s3->cond[q]);
    pthread_mutex_unlock(&s3->lock);
}

int tier_s3_pending(const tier_s3_t *s3, int queue)
{
    tier_s3_t *m = (tier_s3_t *)s3;
    pthread_mutex_lock(&m->lock);
    int n = m->pending[queue];
    pthread_mutex_unlock(&m->lock);
    return n;
}

tier_s3_counters_t *tier_s3_counters(tier_s3_t *s3) { return &s3->ctr; }

void tier_s3_last_error(tier_s3_t *s3, char *out, size_t n)
{
    pthread_mutex_lock(&s3->lock);
    snprintf(out, n, "%s", s3->last_error);
    pthread_mutex_unlock(&s3->lock);
}

/* ================================================================ requests */

/* One request's state, shared with libs3's callbacks (worker thread). */
typedef struct req_s {
    S3Status status;
    bool completed;
    char message[120];            /* S3's error message, if any */
    uint64_t content_length;
    char etag[80];
    /* PUT source */
    int fd;
    uint64_t off, left;
    const uint8_t *mem;
    /* GET destination */
    uint8_t *dst;
    uint64_t want, got;
    uint64_t bytes;               /* body bytes moved */
} req_t;

static S3Status props_cb(const S3ResponseProperties *p, void *ud)
{
    req_t *r = ud;
    r->content_length = p->contentLength;
    if (p->eTag) {
        const char *e = p->eTag;
        size_t n = strlen(e);
        if (n >= 2 && e[0] == '"' && e[n - 1] == '"') {
            e++;
            n -= 2;
        }
        snprintf(r->etag, sizeof(r->etag), "%.*s", (int)MK_MIN(n, sizeof(r->etag) - 1), e);
    }
    return S3StatusOK;
}

static void complete_cb(S3Status status, const S3ErrorDetails *e, void *ud)
{
    req_t *r = ud;
    r->status = status;
    r->completed = true;
    if (e && e->message)
        snprintf(r->message, sizeof(r->message), "%s", e->message);
}

static int put_data_cb(int cap, char *buf, void *ud)
{
    req_t *r = ud;
    if (r->left == 0 || cap <= 0)
        return 0;
    size_t want = (size_t)MK_MIN((uint64_t)cap, r->left);
    if (r->mem) {
        memcpy(buf, r->mem, want);
        r->mem += want;
    } else {
        ssize_t got;
        do
            got = pread(r->fd, buf, want, (off_t)r->off);
        while (got < 0 && errno == EINTR);
        if (got <= 0)
            return -1; /* aborts the request */
        want = (size_t)got;
        r->off += want;
    }
    r->left -= want;
    r->bytes += want;
    return (int)want;
}

static S3Status get_data_cb(int n, const char *buf, void *ud)
{
    req_t *r = ud;
    if (n < 0 || (uint64_t)n > r->want - r->got)
        return S3StatusAbortedByCallback; /* more than asked for: not a range answer */
    memcpy(r->dst + r->got, buf, (size_t)n);
    r->got += (uint64_t)n;
    r->bytes += (uint64_t)n;
    return S3StatusOK;
}

/* Drive ctx until the request completes, the deadline passes or the client
 * stops; the context is destroyed in every case.  Returns 0 when it
 * completed (r->status says how), MK_ERR_IO on a timeout, MK_ERR_STATE when
 * stopping. */
static int drive(tier_s3_t *s3, S3RequestContext *ctx, req_t *r, char *why, size_t why_len)
{
    uint64_t deadline = mk_mono_ms() + (uint64_t)s3->timeout_ms;
    int rc = 0;
    for (;;) {
        int remaining = 0;
        S3Status st = S3_runonce_request_context(ctx, &remaining);
        if (st != S3StatusOK) {
            snprintf(why, why_len, "libs3: %s", S3_get_status_name(st));
            rc = MK_ERR_IO;
            break;
        }
        if (remaining == 0 || r->completed)
            break;
        if (atomic_load(&s3->stop)) {
            snprintf(why, why_len, "stopping");
            rc = MK_ERR_STATE;
            break;
        }
        uint64_t now = mk_mono_ms();
        if (now >= deadline) {
            snprintf(why, why_len, "no answer within %d ms", (int)s3->timeout_ms);
            rc = MK_ERR_IO;
            break;
        }
        fd_set rd, wr, ex;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        FD_ZERO(&ex);
        int maxfd = -1;
        if (S3_get_request_context_fdsets(ctx, &rd, &wr, &ex, &maxfd) != S3StatusOK) {
            snprintf(why, why_len, "libs3: cannot wait for the connection");
            rc = MK_ERR_IO;
            break;
        }
        int64_t wait = S3_get_request_context_timeout(ctx);
        if (wait < 0 || wait > STEP_MS)
            wait = STEP_MS;
        if ((uint64_t)wait > deadline - now)
            wait = (int64_t)(deadline - now);
        if (maxfd < 0 && wait > 10)
            wait = 10; /* curl has nothing to wait on yet (resolving, connecting) */
        struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
        if (select(maxfd + 1, &rd, &wr, &ex, &tv) < 0 && errno != EINTR) {
            snprintf(why, why_len, "select: %s", strerror(errno));
            rc = MK_ERR_IO;
            break;
        }
    }
    S3_destroy_request_context(ctx); /* aborts a request still running */
    return rc;
}

/* After a request: its result as MK_ERR_*, counted, with why. */
static int finish(tier_s3_t *s3, int op, const char *key, int rc, req_t *r, char *why, size_t why_len)
{
    atomic_fetch_add(&s3->ctr.requests[op], 1);
    if (rc == 0) {
        if (!r->completed) {
            snprintf(why, why_len, "libs3: the request did not complete");
            rc = MK_ERR_IO;
        } else if (r->status == S3StatusOK) {
            rc = 0;
        } else if (r->status == S3StatusErrorNoSuchKey || r->status == S3StatusHttpErrorNotFound) {
            snprintf(why, why_len, "%s: not found", key);
            rc = MK_ERR_NOT_FOUND;
        } else {
            snprintf(why, why_len, "%s%s%s", S3_get_status_name(r->status), r->message[0] ? ": " : "", r->message);
            rc = MK_ERR_IO;
        }
    }
    static const char *const ops[] = {"PUT", "GET", "HEAD", "DELETE"};
    if (rc == 0 || rc == MK_ERR_NOT_FOUND) {
        atomic_store(&s3->ctr.last_ok_ms, mk_now_ms());
    } else if (rc != MK_ERR_STATE) {
        atomic_fetch_add(&s3->ctr.errors, 1);
        atomic_store(&s3->ctr.last_error_ms, mk_now_ms());
        pthread_mutex_lock(&s3->lock);
        snprintf(s3->last_error, sizeof(s3->last_error), "%s %s: %s", ops[op], key, why);
        pthread_mutex_unlock(&s3->lock);
    }
    return rc;
}

/* A client-side S3 fault (fault/, "side": "client"), on this worker before
 * the request leaves: s3-down and s3-error fail it as an unreachable or
 * failing service would (MK_ERR_IO, which tier.c retries with backoff);
 * s3-slow waits delay_ms first (here, on tier's own worker thread; a stop
 * cuts the wait short). */
static int client_fault(tier_s3_t *s3, const char *key, char *why, size_t why_len)
{
    int type;
    int64_t delay;
    if (!mk_fault_s3_client(&type, &delay))
        return 0;
    if (type == MK_FAULT_S3_SLOW) {
        for (int64_t waited = 0; waited < delay && !atomic_load(&s3->stop); waited += 10)
            usleep(10000);
        return 0;
    }
    snprintf(why, why_len, "%s (injected client-side fault)",
             type == MK_FAULT_S3_DOWN ? "S3 endpoint unreachable" : "S3 answered 500 InternalError");
    /* counted as a failed request, as finish() counts one */
    atomic_fetch_add(&s3->ctr.errors, 1);
    atomic_store(&s3->ctr.last_error_ms, mk_now_ms());
    pthread_mutex_lock(&s3->lock);
    snprintf(s3->last_error, sizeof(s3->last_error), "%s: %s", why, key);
    pthread_mutex_unlock(&s3->lock);
    return MK_ERR_IO;
}

static S3RequestContext *new_context(char *why, size_t why_len)
{
    S3RequestContext *ctx = NULL;
    if (S3_create_request_context(&ctx) != S3StatusOK) {
        snprintf(why, why_len, "libs3: out of memory");
        return NULL;
    }
    return ctx;
}

static int put(tier_s3_t *s3, const char *key, int fd, uint64_t off, const void *mem, uint64_t len,
               const char *md5_b64, char *why, size_t why_len)
{
    req_t r;
    memset(&r, 0, sizeof(r));
    r.fd = fd;
    r.off = off;
    r.left = len;
    r.mem = mem;
    int frc = client_fault(s3, key, why, why_len);
    if (frc < 0)
        return frc;
    S3RequestContext *ctx = new_context(why, why_len);
    if (!ctx)
        return MK_ERR_NOMEM;
    S3PutProperties props;
    memset(&props, 0, sizeof(props));
    props.contentType = "application/octet-stream";
    props.md5 = md5_b64;
    props.expires = -1;
    S3PutObjectHandler h = {{props_cb, complete_cb}, put_data_cb};
    S3_put_object(&s3->bucket, key, len, &props, ctx, &h, &r);
    int rc = drive(s3, ctx, &r, why, why_len);
    rc = finish(s3, TIER_OP_PUT, key, rc, &r, why, why_len);
    if (rc == 0 && r.left) {
        snprintf(why, why_len, "%s: the body was cut short", key);
        rc = MK_ERR_IO;
    }
    atomic_fetch_add(&s3->ctr.bytes_up, r.bytes);
    return rc;
}

int tier_s3_put_fd(tier_s3_t *s3, const char *key, int fd, uint64_t off, uint64_t len, const char *md5_b64,
                   char *why, size_t why_len)
{
    return put(s3, key, fd, off, NULL, len, md5_b64, why, why_len);
}

int tier_s3_put_mem(tier_s3_t *s3, const char *key, const void *p, size_t n, const char *md5_b64, char *why,
                    size_t why_len)
{
    static const uint8_t empty[1];
    return put(s3, key, -1, 0, p ? p : empty, n, md5_b64, why, why_len);
}

int tier_s3_get_range(tier_s3_t *s3, const char *key, uint64_t off, uint64_t len, uint8_t *dst, char *why,
                      size_t why_len)
{
    req_t r;
    memset(&r, 0, sizeof(r));
    r.dst = dst;
    r.want = len;
    int frc = client_fault(s3, key, why, why_len);
    if (frc < 0)
        return frc;
    S3RequestContext *ctx = new_context(why, why_len);
    if (!ctx)
        return MK_ERR_NOMEM;
    S3GetObjectHandler h = {{props_cb, complete_cb}, get_data_cb};
    S3_get_object(&s3->bucket, key, NULL, off, len, ctx, &h, &r);
    int rc = drive(s3, ctx, &r, why, why_len);
    rc = finish(s3, TIER_OP_GET, key, rc, &r, why, why_len);
    atomic_fetch_add(&s3->ctr.bytes_down, r.bytes);
    if (rc == 0 && r.got != len) {
        snprintf(why, why_len, "%s: %" PRIu64 " of %" PRIu64 " bytes came back", key, r.got, len);
        rc = MK_ERR_IO;
    }
    return rc;
}

int tier_s3_head(tier_s3_t *s3, const char *key, uint64_t *len, char *etag, size_t etag_len, char *why,
                 size_t why_len)
{
    req_t r;
    memset(&r, 0, sizeof(r));
    int frc = client_fault(s3, key, why, why_len);
    if (frc < 0)
        return frc;
    S3RequestContext *ctx = new_context(why, why_len);
    if (!ctx)
        return MK_ERR_NOMEM;
    S3ResponseHandler h = {props_cb, complete_cb};
    S3_head_object(&s3->bucket, key, ctx, &h, &r);
    int rc = drive(s3, ctx, &r, why, why_len);
    rc = finish(s3, TIER_OP_HEAD, key, rc, &r, why, why_len);
    if (rc == 0) {
        *len = r.content_length;
        snprintf(etag, etag_len, "%s", r.etag);
    }
    return rc;
}

int tier_s3_delete(tier_s3_t *s3, const char *key, char *why, size_t why_len)
{
    req_t r;
    memset(&r, 0, sizeof(r));
    int frc = client_fault(s3, key, why, why_len);
    if (frc < 0)
        return frc;
    S3RequestContext *ctx = new_context(why, why_len);
    if (!ctx)
        return MK_ERR_NOMEM;
    S3ResponseHandler h = {props_cb, complete_cb};
    S3_delete_object(&s3->bucket, key, ctx, &h, &r);
    int rc = drive(s3, ctx, &r, why, why_len);
    rc = finish(s3, TIER_OP_DELETE, key, rc, &r, why, why_len);
    return rc == MK_ERR_NOT_FOUND ? 0 : rc;
}
