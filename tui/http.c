/*
 * http.c -- the TUI's HTTP client: libcurl's multi interface on the UI
 * thread, never blocking it.
 *
 * Why multi: the TUI has one thread and must answer a key press at once
 * even while the admin API is slow or gone.  Every request is an easy
 * handle inside one multi handle; mk_tui_http_wait() sleeps in
 * curl_multi_poll() on the sockets of every transfer *and* the terminal's
 * fd, so a key press or a finished transfer wakes the loop, whichever comes
 * first.  A transfer never outlives its own timeout (CURLOPT_TIMEOUT_MS),
 * so a hung server costs one missed refresh, not a frozen screen.
 *
 * Bounds: a response body larger than MK_TUI_MAX_BODY aborts its transfer;
 * only http:// and https:// are allowed; no redirects are followed (so the
 * admin token, sent as an Authorization header on every request once set,
 * never goes to another host).
 *
 * Ownership: a transfer (xfer_t) owns its easy handle, its URL copy and
 * its body buffer; it is freed right after its callback returns, or by
 * mk_tui_http_free() if it never finished.
 */
#include "tui_int.h"

#include <curl/curl.h>
#include <poll.h>
#include <string.h>

typedef struct xfer_s {
    struct xfer_s *next;
    CURL *easy;
    mk_tui_req_t kind;
    char *arg;                /* owned */
    char *body;               /* owned, NUL-terminated */
    size_t len, cap;
    bool too_large;
    uint64_t started_ns;
    char errbuf[CURL_ERROR_SIZE];
} xfer_t;

struct mk_tui_http_s {
    CURLM *multi;
    char *base;               /* owned */
    mk_tui_http_done_cb cb;
    void *ud;
    xfer_t *xfers;            /* in flight */
    int inflight;
    struct curl_slist *headers; /* owned: Authorization, or NULL */
};

/* curl_global_init is not thread-safe and must run once; the TUI is the
 * only user of libcurl in the process. */
static bool curl_ready;

int mk_tui_http_new(const char *base_url, mk_tui_http_done_cb cb, void *ud, mk_tui_http_t **out)
{
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return MK_ERR_INVALID;
        curl_ready = true;
    }
    mk_tui_http_t *h = mk_calloc(1, sizeof(*h));
    if (!h)
        return MK_ERR_NOMEM;
    h->base = mk_strdup(base_url);
    h->multi = curl_multi_init();
    if (!h->base || !h->multi) {
        int rc = h->multi ? MK_ERR_NOMEM : MK_ERR_INVALID;
        if (h->multi)
            curl_multi_cleanup(h->multi);
        mk_free(h->base);
        mk_free(h);
        return rc;
    }
    /* A few keep-alive connections are plenty for one admin server. */
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 4L);
    h->cb = cb;
    h->ud = ud;
    *out = h;
    return 0;
}

static void xfer_free(mk_tui_http_t *h, xfer_t *x)
{
    curl_multi_remove_handle(h->multi, x->easy);
    curl_easy_cleanup(x->easy);
    mk_free(x->arg);
    mk_free(x->body);
    mk_free(x);
}

void mk_tui_http_free(mk_tui_http_t *h)
{
    if (!h)
        return;
    while (h->xfers) {
        xfer_t *x = h->xfers;
        h->xfers = x->next;
        xfer_free(h, x);
    }
    curl_multi_cleanup(h->multi);
    curl_slist_free_all(h->headers); /* after every transfer that used it */
    mk_free(h->base);
    mk_free(h);
}

int mk_tui_http_set_token(mk_tui_http_t *h, const char *token)
{
    for (const char *p = token; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return MK_ERR_INVALID;
    char line[600];
    if (!token[0] || (size_t)snprintf(line, sizeof(line), "Authorization: Bearer %s", token) >= sizeof(line))
        return MK_ERR_INVALID;
    struct curl_slist *l = curl_slist_append(NULL, line);
    memset(line, 0, sizeof(line));
    if (!l)
        return MK_ERR_NOMEM;
    curl_slist_free_all(h->headers); /* only before any transfer uses the old list */
    h->headers = l;
    return 0;
}

/* Body bytes from libcurl: appended, bounded by MK_TUI_MAX_BODY. */
static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer_t *x = ud;
    size_t n = size * nmemb;
    if (x->len + n + 1 > MK_TUI_MAX_BODY) {
        x->too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n + 1)
            cap *= 2;
        char *b = mk_realloc(x->body, cap);
        if (!b)
            return 0;
        x->body = b;
        x->cap = cap;
    }
    memcpy(x->body + x->len, p, n);
    x->len += n;
    x->body[x->len] = 0;
    return n;
}

int mk_tui_http_start(mk_tui_http_t *h, mk_tui_req_t kind, bool post, const char *path, const char *arg,
                      long timeout_ms)
{
    size_t blen = strlen(h->base), plen = strlen(path);
    char *url = mk_malloc(blen + plen + 1);
    xfer_t *x = mk_calloc(1, sizeof(*x));
    if (!url || !x) {
        mk_free(url);
        mk_free(x);
        return MK_ERR_NOMEM;
    }
    memcpy(url, h->base, blen);
    memcpy(url + blen, path, plen + 1);
    x->kind = kind;
    x->arg = mk_strdup(arg ? arg : "");
    x->easy = curl_easy_init();
    if (!x->arg || !x->easy) {
        if (x->easy)
            curl_easy_cleanup(x->easy);
        mk_free(x->arg);
        mk_free(x);
        mk_free(url);
        return MK_ERR_NOMEM;
    }
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, url); /* libcurl copies the string */
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 1000 ? timeout_ms : 1000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "minikora-tui");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (h->headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
    if (post) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    }
    mk_free(url);
    x->started_ns = mk_mono_ns();
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        mk_free(x->arg);
        mk_free(x);
        return MK_ERR_INVALID;
    }
    x->next = h->xfers;
    h->xfers = x;
    h->inflight++;
    return 0;
}

int mk_tui_http_inflight(const mk_tui_http_t *h) { return h->inflight; }

bool mk_tui_http_escape(mk_tui_http_t *h, const char *seg, char *out, size_t n)
{
    (void)h; /* libcurl >= 7.82 ignores the handle */
    char *s = curl_easy_escape(NULL, seg, 0);
    if (!s)
        return false;
    bool ok = strlen(s) < n;
    if (ok)
        memcpy(out, s, strlen(s) + 1);
    curl_free(s);
    return ok;
}

/* Hand every finished transfer to the callback, then free it. */
static void reap(mk_tui_http_t *h)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        xfer_t *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (!x)
            continue;
        CURLcode rc = msg->data.result;
        mk_tui_http_result_t r = {x->kind, x->arg, 0, x->body ? x->body : "", x->len, "", 0};
        r.elapsed_ms = (double)(mk_mono_ns() - x->started_ns) / 1e6;
        if (rc == CURLE_OK) {
            curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r.status);
        } else if (x->too_large) {
            r.err = "response too large";
        } else {
            r.err = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
        }
        /* Unlink before the callback: it may start new transfers. */
        for (xfer_t **pp = &h->xfers; *pp; pp = &(*pp)->next)
            if (*pp == x) {
                *pp = x->next;
                break;
            }
        h->inflight--;
        h->cb(h->ud, &r);
        xfer_free(h, x);
    }
}

int mk_tui_http_wait(mk_tui_http_t *h, int fd, int timeout_ms)
{
    int running = 0, numfds = 0;
    curl_multi_perform(h->multi, &running);
    reap(h);
    struct curl_waitfd wfd = {fd, CURL_WAIT_POLLIN, 0};
    curl_multi_poll(h->multi, fd >= 0 ? &wfd : NULL, fd >= 0 ? 1 : 0, timeout_ms, &numfds);
    curl_multi_perform(h->multi, &running);
    reap(h);
    if (fd < 0)
        return 0;
    /* libcurl does not report revents for extra fds: look for a hang-up
     * ourselves, or a closed terminal would wake us forever. */
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)))
        return -1;
    return 0;
}
