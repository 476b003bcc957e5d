/*
 * tenant.c -- the namespaces (the one place names are namespaced) and the
 * registry of tenants and API keys.
 *
 * Names: see tenant.h.  Internal = prefix + client name, prefix "<id>~"; the
 * default tenant keeps the identity and escapes a name holding '~' as
 * "~<name>".
 *
 * Persistence, in meta/'s kv store (one MK_META_KV_SET per change, submitted
 * in order on the loop; loaded at start by mk_tenant_registry_open()):
 *
 *   tenant/<id>                 "cell=<n> created=<ms>"
 *   tenant/<id>/key/<key id>    "i=<iterations> s=<salt hex> k256=<StoredKey hex>:<ServerKey hex>
 *                                k512=<StoredKey hex>:<ServerKey hex>"   (one line)
 *
 * A secret is never stored: only what SCRAM needs (RFC 5802 section 5), from
 * which PLAIN logins are checked too (scram.c).  Every stored value is
 * parsed back with lengths checked; an unreadable one fails the start
 * (MK_ERR_CORRUPT) rather than being half-loaded.
 */
#include "tenant/tenant_int.h"

#include "meta/meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==================================================================== names */

static mk_tenant_t default_tenant = {"default", "", -1, 0, 0, false};

const mk_tenant_t *mk_tenant_default(void) { return &default_tenant; }

const char *mk_tenant_to_internal(const mk_tenant_t *t, const char *name, mk_arena_t *a)
{
    if (!name)
        return NULL;
    if (!t->prefix[0])
        return strchr(name, '~') ? mk_arena_sprintf(a, "~%s", name) : name;
    return mk_arena_sprintf(a, "%s%s", t->prefix, name);
}

bool mk_tenant_visible(const mk_tenant_t *t, const char *internal)
{
    if (!t->prefix[0])
        return internal[0] == '~' || !strchr(internal, '~');
    return strncmp(internal, t->prefix, strlen(t->prefix)) == 0;
}

const char *mk_tenant_to_external(const mk_tenant_t *t, const char *internal)
{
    if (!t->prefix[0])
        return internal[0] == '~' ? internal + 1 : internal;
    size_t n = strlen(t->prefix);
    return strncmp(internal, t->prefix, n) == 0 ? internal + n : internal;
}

bool mk_tenant_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > MK_TENANT_ID_MAX || strcmp(id, "default") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
            return false;
    return true;
}

/* ================================================================ tenants */

static mk_tenant_t *tenant_new(const char *id, int32_t cell, int64_t created_ms)
{
    size_t n = strlen(id);
    mk_tenant_t *t = mk_calloc(1, sizeof(*t) + 2 * n + 3);
    if (!t)
        return NULL;
    char *idc = (char *)(t + 1);
    char *prefix = idc + n + 1;
    memcpy(idc, id, n + 1);
    memcpy(prefix, id, n);
    prefix[n] = '~';
    prefix[n + 1] = 0;
    t->id = idc;
    t->prefix = prefix;
    t->cell = cell;
    t->created_ms = created_ms;
    t->refs = 1; /* the registry's */
    return t;
}

void mk_tenant_ref(const mk_tenant_t *t)
{
    if (t != &default_tenant)
        ((mk_tenant_t *)t)->refs++;
}

void mk_tenant_unref(const mk_tenant_t *t)
{
    if (!t || t == &default_tenant)
        return;
    mk_tenant_t *m = (mk_tenant_t *)t;
    if (--m->refs == 0)
        mk_free(m);
}

mk_tenant_t *mk_tenant_find(mk_tenant_registry_t *r, const char *id)
{
    if (strcmp(id, "default") == 0)
        return &default_tenant;
    return mk_map_get(&r->tenants, id);
}

mk_tenant_t *mk_tenant_next(mk_tenant_registry_t *r, size_t *iter)
{
    const char *k;
    void *v;
    return mk_map_next(&r->tenants, iter, &k, &v) ? v : NULL;
}

mk_tenant_key_t *mk_tenant_key_find(mk_tenant_registry_t *r, const char *id) { return mk_map_get(&r->keys, id); }

/* ============================================================ persistence */

static void persist_done(int status, void *arg)
{
    if (status < 0)
        mk_error("tenant registry: a write to the metadata store failed: %s", mk_strerror(status));
}

static int kv_set(mk_tenant_registry_t *r, const char *key, const char *value)
{
    if (!r->meta)
        return 0;
    mk_meta_op_t op = {.kind = MK_META_KV_SET, .key = key, .value = value};
    if (r->loop)
        return mk_meta_op_submit(r->meta, r->loop, &op, persist_done, NULL);
    return mk_meta_op_run(r->meta, &op);
}

static void hex_put(char *out, const uint8_t *p, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Exactly 2n hex digits at s into out; true on success. */
static bool hex_get(const char *s, size_t slen, uint8_t *out, size_t n)
{
    if (slen != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static int tenant_persist(mk_tenant_registry_t *r, const mk_tenant_t *t)
{
    char key[64], val[96];
    snprintf(key, sizeof(key), "tenant/%s", t->id);
    snprintf(val, sizeof(val), "cell=%d created=%lld", t->cell, (long long)t->created_ms);
    return kv_set(r, key, val);
}

static int key_persist(mk_tenant_registry_t *r, const mk_tenant_key_t *k, bool del)
{
    char name[96];
    snprintf(name, sizeof(name), "tenant/%s/key/%s", k->tenant->id, k->id);
    if (del)
        return kv_set(r, name, NULL);
    char s[2 * MK_TENANT_SALT_LEN + 1], a[65], b[65], c[129], d[129], val[512];
    hex_put(s, k->salt, sizeof(k->salt));
    hex_put(a, k->stored256, 32);
    hex_put(b, k->server256, 32);
    hex_put(c, k->stored512, 64);
    hex_put(d, k->server512, 64);
    snprintf(val, sizeof(val), "i=%d s=%s k256=%s:%s k512=%s:%s", k->iterations, s, a, b, c, d);
    return kv_set(r, name, val);
}

/* The value of field "name=" in a space-separated stored line: pointer and
 * length, or NULL. */
static const char *field(const char *line, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (const char *p = line; *p;) {
        const char *end = strchr(p, ' ');
        size_t fl = end ? (size_t)(end - p) : strlen(p);
        if (fl > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            *len = fl - n - 1;
            return p + n + 1;
        }
        p += fl;
        while (*p == ' ')
            p++;
    }
    return NULL;
}

static bool field_i64(const char *line, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    size_t n;
    const char *v = field(line, name, &n);
    if (!v || n == 0 || n > 20)
        return false;
    char buf[24];
    memcpy(buf, v, n);
    buf[n] = 0;
    char *end;
    long long x = strtoll(buf, &end, 10);
    if (*end || x < lo || x > hi)
        return false;
    *out = x;
    return true;
}

static bool field_pair(const char *line, const char *name, uint8_t *a, uint8_t *b, size_t n)
{
    size_t len;
    const char *v = field(line, name, &len);
    return v && len == 4 * n + 1 && v[2 * n] == ':' && hex_get(v, 2 * n, a, n) && hex_get(v + 2 * n + 1, 2 * n, b, n);
}

typedef struct load_s {
    mk_tenant_registry_t *r;
    bool keys;                 /* second pass: keys (tenants are all loaded) */
} load_t;

static int load_cb(const char *key, const char *value, void *arg)
{
    load_t *l = arg;
    mk_tenant_registry_t *r = l->r;
    const char *id = key + strlen("tenant/");
    const char *slash = strchr(id, '/');
    char tid[MK_TENANT_ID_MAX + 1];
    size_t idlen = slash ? (size_t)(slash - id) : strlen(id);
    if (idlen == 0 || idlen > MK_TENANT_ID_MAX)
        goto corrupt;
    memcpy(tid, id, idlen);
    tid[idlen] = 0;
    if (!mk_tenant_id_valid(tid))
        goto corrupt;
    if (!slash) {
        if (l->keys)
            return 0;
        int64_t cell, created;
        if (!field_i64(value, "cell", -1, 1000000, &cell) || !field_i64(value, "created", 0, INT64_MAX, &created))
            goto corrupt;
        mk_tenant_t *t = tenant_new(tid, (int32_t)cell, created);
        if (!t || mk_map_put(&r->tenants, tid, t) < 0) {
            mk_free(t);
            return MK_ERR_NOMEM;
        }
        return 0;
    }
    if (!l->keys)
        return 0;
    const char *kid = slash + 1;
    if (strncmp(kid, "key/", 4) != 0)
        goto corrupt;
    kid += 4;
    mk_tenant_t *t = mk_map_get(&r->tenants, tid);
    if (!t || strlen(kid) != MK_TENANT_KEY_LEN)
        goto corrupt;
    mk_tenant_key_t *k = mk_calloc(1, sizeof(*k));
    if (!k)
        return MK_ERR_NOMEM;
    memcpy(k->id, kid, MK_TENANT_KEY_LEN + 1);
    k->tenant = t;
    int64_t it;
    size_t sl;
    const char *s = field(value, "s", &sl);
    if (!field_i64(value, "i", 1, 1000000, &it) || !s || !hex_get(s, sl, k->salt, MK_TENANT_SALT_LEN) ||
        !field_pair(value, "k256", k->stored256, k->server256, 32) ||
        !field_pair(value, "k512", k->stored512, k->server512, 64)) {
        mk_free(k);
        goto corrupt;
    }
    k->iterations = (int32_t)it;
    if (mk_map_put(&r->keys, k->id, k) < 0) {
        mk_free(k);
        return MK_ERR_NOMEM;
    }
    return 0;
corrupt:
    mk_error("tenant registry: unreadable stored entry %s", key);
    return MK_ERR_CORRUPT;
}

/* ================================================================ registry */

int mk_tenant_registry_open(uv_loop_t *loop, struct mk_meta_s *meta, mk_tenant_registry_t **out)
{
    mk_tenant_registry_t *r = mk_calloc(1, sizeof(*r));
    if (!r)
        return MK_ERR_NOMEM;
    r->loop = loop;
    r->meta = meta;
    mk_map_init(&r->tenants);
    mk_map_init(&r->keys);
    int rc = 0;
    if (meta) {
        load_t l = {r, false};
        rc = mk_meta_kv_foreach(meta, "tenant/", load_cb, &l);
        l.keys = true;
        if (rc == 0)
            rc = mk_meta_kv_foreach(meta, "tenant/", load_cb, &l);
    }
    if (rc < 0) {
        mk_tenant_registry_close(r);
        return rc;
    }
    if (r->tenants.count)
        mk_info("tenants: %zu loaded with %zu API keys", (size_t)r->tenants.count, (size_t)r->keys.count);
    *out = r;
    return 0;
}

void mk_tenant_registry_close(mk_tenant_registry_t *r)
{
    if (!r)
        return;
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&r->keys, &it, &k, &v);)
        mk_free(v);
    for (size_t it = 0; mk_map_next(&r->tenants, &it, &k, &v);) {
        ((mk_tenant_t *)v)->removed = true;
        mk_tenant_unref(v);
    }
    mk_map_free(&r->keys);
    mk_map_free(&r->tenants);
    mk_free(r);
}

int mk_tenant_create(mk_tenant_registry_t *r, const char *id, int32_t cell, mk_tenant_t **out)
{
    if (!mk_tenant_id_valid(id))
        return MK_ERR_INVALID;
    if (mk_map_get(&r->tenants, id))
        return MK_ERR_EXISTS;
    mk_tenant_t *t = tenant_new(id, cell, mk_now_ms());
    if (!t || mk_map_put(&r->tenants, id, t) < 0) {
        mk_free(t);
        return MK_ERR_NOMEM;
    }
    int rc = tenant_persist(r, t);
    if (rc < 0) {
        mk_map_del(&r->tenants, id);
        mk_free(t);
        return rc;
    }
    mk_info("tenant %s created in cell %d", id, cell);
    if (out)
        *out = t;
    return 0;
}

int mk_tenant_remove(mk_tenant_registry_t *r, mk_tenant_t *t)
{
    if (t == &default_tenant || mk_map_get(&r->tenants, t->id) != t)
        return MK_ERR_NOT_FOUND;
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&r->keys, &it, &k, &v);) {
        mk_tenant_key_t *key = v;
        if (key->tenant == t) {
            key_persist(r, key, true);
            mk_map_del(&r->keys, key->id);
            mk_free(key);
        }
    }
    char name[64];
    snprintf(name, sizeof(name), "tenant/%s", t->id);
    kv_set(r, name, NULL);
    mk_map_del(&r->tenants, t->id);
    mk_info("tenant %s removed", t->id);
    t->removed = true;
    mk_tenant_unref(t);
    return 0;
}

/* ==================================================================== keys */

/* n characters of alphabet from the kernel's randomness (rejection sampling
 * keeps the characters uniform). */
static int random_chars(char *out, size_t n, const char *alphabet)
{
    size_t an = strlen(alphabet), lim = 256 - 256 % an, got = 0;
    while (got < n) {
        uint8_t buf[64];
        if (mk_tenant_random(buf, sizeof(buf)) < 0)
            return MK_ERR_IO;
        for (size_t i = 0; i < sizeof(buf) && got < n; i++)
            if (buf[i] < lim)
                out[got++] = alphabet[buf[i] % an];
    }
    out[n] = 0;
    return 0;
}

int mk_tenant_key_create(mk_tenant_registry_t *r, mk_tenant_t *t, char key[MK_TENANT_KEY_LEN + 1],
                         char secret[MK_TENANT_SECRET_LEN + 1])
{
    mk_tenant_key_t *k = mk_calloc(1, sizeof(*k));
    if (!k)
        return MK_ERR_NOMEM;
    int rc;
    do {
        rc = random_chars(k->id, MK_TENANT_KEY_LEN, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
    } while (rc == 0 && mk_map_get(&r->keys, k->id));
    if (rc == 0)
        rc = random_chars(secret, MK_TENANT_SECRET_LEN,
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
    if (rc == 0)
        rc = mk_tenant_random(k->salt, sizeof(k->salt));
    k->tenant = t;
    k->iterations = MK_TENANT_SCRAM_ITERATIONS;
    if (rc == 0)
        rc = mk_tenant_scram_derive(MK_TENANT_MECH_SCRAM_SHA_256, secret, MK_TENANT_SECRET_LEN, k->salt,
                                    sizeof(k->salt), k->iterations, k->stored256, k->server256);
    if (rc == 0)
        rc = mk_tenant_scram_derive(MK_TENANT_MECH_SCRAM_SHA_512, secret, MK_TENANT_SECRET_LEN, k->salt,
                                    sizeof(k->salt), k->iterations, k->stored512, k->server512);
    if (rc == 0)
        rc = mk_map_put(&r->keys, k->id, k);
    if (rc == 0) {
        rc = key_persist(r, k, false);
        if (rc < 0)
            mk_map_del(&r->keys, k->id);
    }
    if (rc < 0) {
        mk_free(k);
        memset(secret, 0, MK_TENANT_SECRET_LEN + 1);
        return rc;
    }
    memcpy(key, k->id, MK_TENANT_KEY_LEN + 1);
    mk_info("tenant %s: API key %s created", t->id, k->id);
    return 0;
}

int mk_tenant_key_revoke(mk_tenant_registry_t *r, mk_tenant_t *t, const char *key)
{
    mk_tenant_key_t *k = mk_map_get(&r->keys, key);
    if (!k || k->tenant != t)
        return MK_ERR_NOT_FOUND;
    key_persist(r, k, true);
    mk_map_del(&r->keys, key);
    mk_info("tenant %s: API key %s revoked", t->id, k->id);
    mk_free(k);
    return 0;
}

const char *mk_tenant_key_next(mk_tenant_registry_t *r, const mk_tenant_t *t, size_t *iter)
{
    const char *k;
    void *v;
    while (mk_map_next(&r->keys, iter, &k, &v))
        if (((mk_tenant_key_t *)v)->tenant == t)
            return ((mk_tenant_key_t *)v)->id;
    return NULL;
}
