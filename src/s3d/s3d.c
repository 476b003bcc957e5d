/*
 * s3d.c -- the bundled S3 server as a module: its key pair, its thread and
 * loop, and its counters.
 *
 * mk_s3d_open() does everything that can fail before it returns: the key
 * pair is settled, DATA/s3 is loaded (store.c), the default bucket made,
 * the listener bound (so the ready line can name the port).  Only then the
 * thread starts, with a libuv loop of its own that runs the listener, a 1 s
 * sweep of idle connections, and an async handle by which mk_s3d_close()
 * asks it to stop.  Nothing of the brokers' loop is touched from that
 * thread, and nothing of the s3d loop from the caller's: the two share
 * only the counters (atomics) and the immutable strings set at open.
 *
 * The key pair: given (--s3-access-key/--s3-secret-key), else the pair in
 * DATA/s3/_credentials, else a new one from getrandom(2) (an access key of
 * 20 characters A-Z 0-9, a secret of 40 of A-Z a-z 0-9).  The pair in use
 * is written to DATA/s3/_credentials (mode 0600, temporary file and
 * rename), so it survives restarts: objects stored for tiering stay
 * reachable, and clients configured once keep working.
 */
#include "s3d/s3d_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

struct mk_s3d_s {
    uv_loop_t loop;
    uv_thread_t thread;
    bool thread_started;
    uv_async_t stop;
    uv_timer_t sweep;
    mk_s3_http_t *http;
    mk_s3_ops_t *ops;
    mk_s3_store_t *store;
    mk_s3_store_counts_t counts;
    mk_s3_counters_t ctr;
    mk_s3_fault_state_t fault;
    int port;
    char url[300];
    char access_key[129];
    char secret_key[129];
    char bucket[64];
    char region[64];
};

/* ============================================================ credentials */

bool mk_s3d_access_key_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 3 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

bool mk_s3d_secret_key_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 8 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    return true;
}

static int random_chars(char *out, size_t n, const char *alphabet)
{
    size_t an = strlen(alphabet);
    uint8_t raw[64];
    if (n > sizeof(raw))
        return -1;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(raw + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[raw[i] % an]; /* 256 % 36 and % 62 bias is irrelevant here */
    out[n] = 0;
    memset(raw, 0, sizeof(raw));
    return 0;
}

/* DATA/s3/_credentials: "access_key=...\nsecret_key=...\n". */
static bool creds_read(const char *root, char *ak, char *sk)
{
    char path[4300];
    snprintf(path, sizeof(path), "%s/_credentials", root);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[300];
    ak[0] = sk[0] = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = 0;
        /* a longer value is refused, never cut into another key */
        char *dst = strncmp(line, "access_key=", 11) == 0 ? ak : strncmp(line, "secret_key=", 11) == 0 ? sk : NULL;
        size_t n = strlen(line + 11);
        if (dst) {
            n = n <= 128 ? n : 0;
            memcpy(dst, line + 11, n);
            dst[n] = 0;
        }
    }
    fclose(f);
    return mk_s3d_access_key_valid(ak) && mk_s3d_secret_key_valid(sk);
}

static int creds_write(const char *root, const char *ak, const char *sk)
{
    char path[4300], text[300];
    snprintf(path, sizeof(path), "%s/_credentials", root);
    int n = snprintf(text, sizeof(text), "access_key=%s\nsecret_key=%s\n", ak, sk);
    int rc = mk_file_write_private(path, text, (size_t)n, true);
    int e = errno;
    memset(text, 0, sizeof(text));
    errno = e;
    return rc;
}

/* ================================================================= thread */

static void sweep_cb(uv_timer_t *t)
{
    mk_s3d_t *s = t->data;
    mk_s3_http_sweep(s->http, mk_mono_ms());
}

static void stop_cb(uv_async_t *a)
{
    mk_s3d_t *s = a->data;
    mk_s3_http_close(s->http); /* ends the requests in flight: uploads are dropped */
    s->http = NULL;
    uv_timer_stop(&s->sweep);
    uv_close((uv_handle_t *)&s->sweep, NULL);
    uv_close((uv_handle_t *)&s->stop, NULL);
}

static void thread_main(void *arg)
{
    mk_s3d_t *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
}

/* ================================================================== module */

static void s3d_free(mk_s3d_t *s)
{
    /* run the loop to the end: close callbacks free what they own */
    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&s->loop) < 0)
        mk_warn("s3: event loop closed with handles still open");
    mk_s3_ops_free(s->ops);
    mk_s3_store_close(s->store);
    OPENSSL_cleanse(s->secret_key, sizeof(s->secret_key));
    mk_free(s);
}

int mk_s3d_open(const mk_s3d_opts_t *o, mk_s3d_t **out, char *why, size_t why_len)
{
    char scratch[8];
    if (!why) {
        why = scratch;
        why_len = sizeof(scratch);
    }
    why[0] = 0;
    mk_s3d_t *s = mk_calloc(1, sizeof(*s));
    if (!s)
        return MK_ERR_NOMEM;
    snprintf(s->bucket, sizeof(s->bucket), "%s", o->bucket && *o->bucket ? o->bucket : "minikora");
    snprintf(s->region, sizeof(s->region), "%s", o->region && *o->region ? o->region : "us-east-1");
    if (!mk_s3_bucket_name_valid(s->bucket)) {
        snprintf(why, why_len, "'%s' is not a valid S3 bucket name", s->bucket);
        mk_free(s);
        return MK_ERR_INVALID;
    }
    if ((o->access_key != NULL) != (o->secret_key != NULL) ||
        (o->access_key && (!mk_s3d_access_key_valid(o->access_key) || !mk_s3d_secret_key_valid(o->secret_key)))) {
        snprintf(why, why_len, "the S3 access key (3..128 of A-Z a-z 0-9) and secret key (8..128 visible "
                               "characters) go together");
        mk_free(s);
        return MK_ERR_INVALID;
    }
    if (uv_loop_init(&s->loop) < 0) {
        mk_free(s);
        return MK_ERR_NOMEM;
    }
    int rc = mk_s3_store_open(o->data_dir, &s->counts, &s->store, why, why_len);
    if (rc < 0)
        goto fail;
    const char *root = mk_s3_store_root(s->store);
    if (o->access_key) {
        snprintf(s->access_key, sizeof(s->access_key), "%s", o->access_key);
        snprintf(s->secret_key, sizeof(s->secret_key), "%s", o->secret_key);
    } else if (!creds_read(root, s->access_key, s->secret_key)) {
        if (random_chars(s->access_key, 20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") < 0 ||
            random_chars(s->secret_key, 40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") < 0) {
            snprintf(why, why_len, "cannot generate S3 keys: %s", strerror(errno));
            rc = MK_ERR_IO;
            goto fail;
        }
        memcpy(s->access_key, "MK", 2); /* recognisable, as AWS's start with AKIA */
    }
    char ak[129], sk[129];
    if (!creds_read(root, ak, sk) || strcmp(ak, s->access_key) != 0 || strcmp(sk, s->secret_key) != 0) {
        if (creds_write(root, s->access_key, s->secret_key) < 0) {
            snprintf(why, why_len, "cannot write %s/_credentials: %s", root, strerror(errno));
            rc = MK_ERR_IO;
            goto fail;
        }
    }
    OPENSSL_cleanse(sk, sizeof(sk));
    if (!mk_s3_store_bucket(s->store, s->bucket)) {
        rc = mk_s3_store_bucket_create(s->store, s->bucket, mk_now_ms());
        if (rc < 0) {
            snprintf(why, why_len, "cannot create the bucket %s: %s", s->bucket, mk_strerror(rc));
            goto fail;
        }
    }
    mk_s3_ops_opts_t oo = {s->store, {s->access_key, s->secret_key}, s->region, o->max_object_bytes, &s->ctr};
    s->ops = mk_s3_ops_new(&oo);
    if (!s->ops) {
        rc = MK_ERR_NOMEM;
        goto fail;
    }
    rc = mk_s3_http_open(&s->loop, o->host, o->port, mk_s3_ops_handler(), s->ops, &s->http);
    if (rc < 0) {
        snprintf(why, why_len, "cannot listen on %s:%d: %s", o->host, o->port,
                 rc < 0 && rc > -4096 && strcmp(mk_strerror(rc), "unknown error") == 0 ? uv_strerror(rc)
                                                                                       : mk_strerror(rc));
        goto fail;
    }
    s->port = mk_s3_http_port(s->http);
    mk_s3_http_set_fault(s->http, &s->fault);
    const char *h = o->advertise_host && *o->advertise_host ? o->advertise_host : o->host;
    snprintf(s->url, sizeof(s->url), strchr(h, ':') ? "http://[%s]:%d" : "http://%s:%d", h, s->port);
    uv_timer_init(&s->loop, &s->sweep);
    s->sweep.data = s;
    uv_timer_start(&s->sweep, sweep_cb, 1000, 1000);
    uv_async_init(&s->loop, &s->stop, stop_cb);
    s->stop.data = s;
    if (uv_thread_create(&s->thread, thread_main, s) != 0) {
        snprintf(why, why_len, "cannot start the S3 thread");
        stop_cb(&s->stop);
        rc = MK_ERR_IO;
        goto fail;
    }
    s->thread_started = true;
    *out = s;
    return 0;
fail:
    if (s->http) {
        mk_s3_http_close(s->http);
        s->http = NULL;
    }
    s3d_free(s);
    return rc;
}

int mk_s3d_port(const mk_s3d_t *s) { return s->port; }
const char *mk_s3d_url(const mk_s3d_t *s) { return s->url; }
const char *mk_s3d_access_key(const mk_s3d_t *s) { return s->access_key; }
const char *mk_s3d_secret_key(const mk_s3d_t *s) { return s->secret_key; }
const char *mk_s3d_bucket(const mk_s3d_t *s) { return s->bucket; }
const char *mk_s3d_region(const mk_s3d_t *s) { return s->region; }

void mk_s3d_stats(const mk_s3d_t *s, mk_s3d_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    mk_s3d_t *m = (mk_s3d_t *)s; /* atomics are read, never written, here */
    out->buckets = atomic_load(&m->counts.buckets);
    out->objects = atomic_load(&m->counts.objects);
    out->bytes = atomic_load(&m->counts.bytes);
    out->uploads = atomic_load(&m->counts.uploads);
    out->requests = atomic_load(&m->ctr.requests);
    for (int i = 0; i < MK_S3D_OP_COUNT; i++)
        out->requests_by_op[i] = atomic_load(&m->ctr.by_op[i]);
    out->errors = atomic_load(&m->ctr.errors);
    out->errors_5xx = atomic_load(&m->ctr.errors_5xx);
    out->auth_failures = atomic_load(&m->ctr.auth_failures);
    out->bytes_in = atomic_load(&m->ctr.bytes_in);
    out->bytes_out = atomic_load(&m->ctr.bytes_out);
    out->connections = atomic_load(&m->ctr.connections);
}

/* ================================================================== faults */

static const char *const fault_names[] = {"none", "down", "slow", "error"};

const char *mk_s3d_fault_name(int type)
{
    return type >= 0 && type < (int)MK_ARRAY_LEN(fault_names) ? fault_names[type] : NULL;
}

int mk_s3d_fault_find(const char *name)
{
    for (size_t i = 0; name && i < MK_ARRAY_LEN(fault_names); i++)
        if (strcmp(name, fault_names[i]) == 0)
            return (int)i;
    return -1;
}

int mk_s3d_fault_set(mk_s3d_t *s, const mk_s3d_fault_t *f)
{
    int32_t status = f->status ? f->status : 500;
    if (f->type < MK_S3D_FAULT_NONE || f->type > MK_S3D_FAULT_ERROR ||
        (f->type == MK_S3D_FAULT_SLOW && (f->delay_ms < 1 || f->delay_ms > 600000)) ||
        (f->type == MK_S3D_FAULT_ERROR && (f->error_pct < 0 || f->error_pct > 100 || (status != 500 && status != 503))))
        return MK_ERR_INVALID;
    uint64_t w = (uint64_t)f->type;
    if (f->type == MK_S3D_FAULT_ERROR)
        w |= (uint64_t)f->error_pct << 8 | (uint64_t)status << 16;
    if (f->type == MK_S3D_FAULT_SLOW)
        w |= (uint64_t)f->delay_ms << 32;
    atomic_store(&s->fault.word, w);
    if (f->type)
        mk_info("s3: fault injected: %s", mk_s3d_fault_name(f->type));
    else
        mk_info("s3: fault cleared");
    return 0;
}

void mk_s3d_fault_get(const mk_s3d_t *s, mk_s3d_fault_t *out, uint64_t *injected)
{
    mk_s3d_t *m = (mk_s3d_t *)s; /* atomics are read here */
    uint64_t w = atomic_load(&m->fault.word);
    out->type = (int)(w & 0xff);
    out->error_pct = out->type == MK_S3D_FAULT_ERROR ? (int32_t)((w >> 8) & 0xff) : 0;
    out->status = out->type == MK_S3D_FAULT_ERROR ? (int32_t)((w >> 16) & 0xffff) : 0;
    out->delay_ms = (int32_t)(w >> 32);
    if (injected)
        *injected = atomic_load(&m->fault.injected);
}

void mk_s3d_close(mk_s3d_t *s)
{
    if (!s)
        return;
    if (s->thread_started) {
        uv_async_send(&s->stop);
        uv_thread_join(&s->thread);
    }
    s3d_free(s);
}
