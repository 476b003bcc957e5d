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
 *   tenant/<id>/key/<key id>    "c256=<iterations>:<salt hex>:<StoredKey hex>:<ServerKey hex>
 *                                c512=<same for SHA-512>"   (one line; either may be absent)
 *
 * Keys stored before salts were per mechanism read as
 * "i=<iterations> s=<salt hex> k256=<Stored>:<Server> k512=<Stored>:<Server>"
 * (one salt and count for both); they are rewritten in the new form at
 * their next change.
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
    if (n < 1 || n > MK_TENANT_ID_MAX || strcmp(id, "default") == 0 || strcmp(id, "minikora-health") == 0)
        return false; /* minikora-health: health/'s probe topics (MK_HEALTH_TENANT) */
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
    char val[1024];
    size_t n = 0;
    for (int m = MK_TENANT_MECH_SCRAM_SHA_256; m <= MK_TENANT_MECH_SCRAM_SHA_512; m++) {
        const mk_tenant_cred_t *c = mk_tenant_key_cred((mk_tenant_key_t *)k, m);
        size_t hl = m == MK_TENANT_MECH_SCRAM_SHA_512 ? 64 : 32;
        if (!c->iterations)
            continue;
        char salt[2 * MK_TENANT_SALT_MAX + 1], a[129], b[129];
        hex_put(salt, c->salt, c->salt_len);
        hex_put(a, c->stored, hl);
        hex_put(b, c->server, hl);
        n += (size_t)snprintf(val + n, sizeof(val) - n, "%sc%d=%d:%s:%s:%s", n ? " " : "", (int)hl * 8,
                              c->iterations, salt, a, b);
    }
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

/* Field "name=<iterations>:<salt hex>:<Stored hex>:<Server hex>" into c,
 * hash length hl; an absent field leaves c empty (true). */
static bool field_cred(const char *line, const char *name, mk_tenant_cred_t *c, size_t hl)
{
    size_t len;
    const char *v = field(line, name, &len);
    if (!v)
        return true;
    const char *c1 = memchr(v, ':', len);
    const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - v)) : NULL;
    if (!c1 || !c2 || c1 == v || c1 - v > 9)
        return false;
    size_t sl = (size_t)(c2 - c1 - 1), rest = len - (size_t)(c2 + 1 - v);
    char buf[12];
    memcpy(buf, v, (size_t)(c1 - v));
    buf[c1 - v] = 0;
    char *end;
    long it = strtol(buf, &end, 10);
    if (*end || it < 1 || it > 1000000 || sl % 2 || sl / 2 > MK_TENANT_SALT_MAX || sl == 0 ||
        rest != 4 * hl + 1 || c2[1 + 2 * hl] != ':' || !hex_get(c1 + 1, sl, c->salt, sl / 2) ||
        !hex_get(c2 + 1, 2 * hl, c->stored, hl) || !hex_get(c2 + 2 + 2 * hl, 2 * hl, c->server, hl))
        return false;
    c->iterations = (int32_t)it;
    c->salt_len = (uint8_t)(sl / 2);
    return true;
}

/* The form before per-mechanism salts: one salt and count for both hashes. */
static bool key_load_old(const char *value, mk_tenant_key_t *k)
{
    int64_t it;
    size_t sl;
    const char *s = field(value, "s", &sl);
    if (!field_i64(value, "i", 1, 1000000, &it) || !s || !hex_get(s, sl, k->sha256.salt, MK_TENANT_SALT_LEN) ||
        !field_pair(value, "k256", k->sha256.stored, k->sha256.server, 32) ||
        !field_pair(value, "k512", k->sha512.stored, k->sha512.server, 64))
        return false;
    k->sha256.iterations = k->sha512.iterations = (int32_t)it;
    k->sha256.salt_len = k->sha512.salt_len = MK_TENANT_SALT_LEN;
    memcpy(k->sha512.salt, k->sha256.salt, MK_TENANT_SALT_LEN);
    return true;
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
    if (!slash && strcmp(tid, "default") == 0) {
        /* The default tenant is built in; only its cell is stored. */
        int64_t cell;
        if (!l->keys && field_i64(value, "cell", -1, 1000000, &cell))
            default_tenant.cell = (int32_t)cell;
        return 0;
    }
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
    if (!(field_cred(value, "c256", &k->sha256, 32) && field_cred(value, "c512", &k->sha512, 64) &&
          (k->sha256.iterations || k->sha512.iterations)) &&
        !key_load_old(value, k)) {
        mk_free(k);
        goto corrupt;
    }
    if (mk_map_put(&r->keys, k->id, k) < 0) {
        mk_free(k);
        return MK_ERR_NOMEM;
    }
    return 0;
corrupt:
    mk_error("tenant registry: unreadable stored entry %s", key);
    return MK_ERR_CORRUPT;
}

/* ==================================================================== ACLs */

/* Stored as kv "acl/<tenant id>" = the set's text form (acl.c); a set that
 * became empty is deleted from the store. */
static int acl_load_cb(const char *key, const char *value, void *arg)
{
    mk_tenant_registry_t *r = arg;
    const char *id = key + 4;
    mk_tenant_t *t = mk_tenant_find(r, id);
    if (!t) {
        mk_warn("tenant registry: ACLs stored for unknown tenant %s are ignored", id);
        return 0;
    }
    mk_tenant_acls_t *s = mk_tenant_acls_of(r, t, true);
    if (!s)
        return MK_ERR_NOMEM;
    if (mk_tenant_acls_decode(s, value, strlen(value)) < 0) {
        mk_error("tenant registry: unreadable ACLs of tenant %s", id);
        return MK_ERR_CORRUPT;
    }
    return 0;
}

mk_tenant_acls_t *mk_tenant_acls_of(mk_tenant_registry_t *r, const mk_tenant_t *t, bool create)
{
    mk_tenant_acls_t *s = mk_map_get(&r->acls, t->id);
    if (s || !create)
        return s;
    if (mk_tenant_acls_new(&s) < 0)
        return NULL;
    if (mk_map_put(&r->acls, t->id, s) < 0) {
        mk_tenant_acls_free(s);
        return NULL;
    }
    return s;
}

int mk_tenant_acls_save(mk_tenant_registry_t *r, const mk_tenant_t *t)
{
    mk_tenant_acls_t *s = mk_map_get(&r->acls, t->id);
    char name[64];
    snprintf(name, sizeof(name), "acl/%s", t->id);
    if (!s || mk_tenant_acls_count(s) == 0)
        return kv_set(r, name, NULL);
    mk_buf_t b;
    mk_buf_init(&b);
    int rc = mk_tenant_acls_encode(s, &b);
    mk_buf_put(&b, "", 1);
    if (rc == 0 && mk_buf_ok(&b))
        rc = kv_set(r, name, (const char *)b.data);
    else if (rc == 0)
        rc = MK_ERR_NOMEM;
    mk_buf_free(&b);
    return rc;
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
    mk_map_init(&r->acls);
    default_tenant.cell = -1; /* until the store or the broker says */
    int rc = 0;
    if (meta) {
        load_t l = {r, false};
        rc = mk_meta_kv_foreach(meta, "tenant/", load_cb, &l);
        l.keys = true;
        if (rc == 0)
            rc = mk_meta_kv_foreach(meta, "tenant/", load_cb, &l);
        if (rc == 0)
            rc = mk_meta_kv_foreach(meta, "acl/", acl_load_cb, r);
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
    for (size_t it = 0; mk_map_next(&r->acls, &it, &k, &v);)
        mk_tenant_acls_free(v);
    mk_map_free(&r->acls);
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

int mk_tenant_set_cell(mk_tenant_registry_t *r, mk_tenant_t *t, int32_t cell)
{
    if (cell < -1)
        return MK_ERR_INVALID;
    t->cell = cell;
    return tenant_persist(r, t);
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
    mk_tenant_acls_t *acls = mk_map_get(&r->acls, t->id);
    if (acls) {
        mk_map_del(&r->acls, t->id);
        mk_tenant_acls_free(acls);
        mk_tenant_acls_save(r, t); /* deletes the stored set */
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

/* Derive k's SCRAM credentials from secret with a fresh salt, then register
 * and persist k.  On error k is freed.  0 or an error. */
static int key_add(mk_tenant_registry_t *r, mk_tenant_t *t, mk_tenant_key_t *k, const char *secret, size_t len)
{
    k->tenant = t;
    int rc = 0;
    for (int m = MK_TENANT_MECH_SCRAM_SHA_256; rc == 0 && m <= MK_TENANT_MECH_SCRAM_SHA_512; m++) {
        mk_tenant_cred_t *c = mk_tenant_key_cred(k, m);
        c->iterations = MK_TENANT_SCRAM_ITERATIONS;
        c->salt_len = MK_TENANT_SALT_LEN;
        rc = mk_tenant_random(c->salt, MK_TENANT_SALT_LEN);
        if (rc == 0)
            rc = mk_tenant_scram_derive(m, secret, len, c->salt, c->salt_len, c->iterations, c->stored, c->server);
    }
    if (rc == 0)
        rc = mk_map_put(&r->keys, k->id, k);
    if (rc == 0) {
        rc = key_persist(r, k, false);
        if (rc < 0)
            mk_map_del(&r->keys, k->id);
    }
    if (rc < 0)
        mk_free(k);
    return rc;
}

int mk_tenant_key_declare(mk_tenant_registry_t *r, mk_tenant_t *t, const char *key, const char *secret)
{
    size_t kl = strlen(key), sl = strlen(secret);
    if (kl != MK_TENANT_KEY_LEN || strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != kl || sl < 8 ||
        sl > 128)
        return MK_ERR_INVALID;
    for (size_t i = 0; i < sl; i++)
        if (secret[i] <= ' ' || secret[i] > '~')
            return MK_ERR_INVALID;
    mk_tenant_key_t *old = mk_map_get(&r->keys, key);
    if (old)
        return old->tenant == t ? 0 : MK_ERR_EXISTS; /* declared before: kept as stored */
    mk_tenant_key_t *k = mk_calloc(1, sizeof(*k));
    if (!k)
        return MK_ERR_NOMEM;
    memcpy(k->id, key, MK_TENANT_KEY_LEN + 1);
    int rc = key_add(r, t, k, secret, sl);
    if (rc == 0)
        mk_info("tenant %s: API key %s declared", t->id, key);
    return rc;
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
    if (rc < 0) {
        mk_free(k);
        memset(secret, 0, MK_TENANT_SECRET_LEN + 1);
        return rc;
    }
    rc = key_add(r, t, k, secret, MK_TENANT_SECRET_LEN);
    if (rc < 0) {
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

/* ========================================================= SCRAM credentials */

static bool scram_mech(int mech) { return mech == MK_TENANT_MECH_SCRAM_SHA_256 || mech == MK_TENANT_MECH_SCRAM_SHA_512; }

int32_t mk_tenant_key_scram_iterations(mk_tenant_registry_t *r, const mk_tenant_t *t, const char *key, int mech)
{
    mk_tenant_key_t *k = mk_map_get(&r->keys, key);
    if (!k || k->tenant != t || !scram_mech(mech))
        return 0;
    return mk_tenant_key_cred(k, mech)->iterations;
}

int mk_tenant_key_scram_set(mk_tenant_registry_t *r, mk_tenant_t *t, const char *key, int mech, int32_t iterations,
                            const uint8_t *salt, size_t salt_len, const uint8_t *salted, size_t salted_len)
{
    size_t kl = strlen(key);
    if (!scram_mech(mech) || iterations < MK_TENANT_SCRAM_MIN_ITERATIONS ||
        iterations > MK_TENANT_SCRAM_MAX_ITERATIONS || salt_len == 0 || salt_len > MK_TENANT_SALT_MAX ||
        kl != MK_TENANT_KEY_LEN || strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != kl)
        return MK_ERR_INVALID;
    mk_tenant_key_t *k = mk_map_get(&r->keys, key), *fresh = NULL;
    if (k && k->tenant != t)
        return MK_ERR_EXISTS;
    if (!k) {
        fresh = k = mk_calloc(1, sizeof(*k));
        if (!k)
            return MK_ERR_NOMEM;
        memcpy(k->id, key, MK_TENANT_KEY_LEN + 1);
        k->tenant = t;
    }
    mk_tenant_cred_t c = {.iterations = iterations, .salt_len = (uint8_t)salt_len};
    memcpy(c.salt, salt, salt_len);
    int rc = mk_tenant_scram_from_salted(mech, salted, salted_len, c.stored, c.server);
    if (rc == 0 && fresh)
        rc = mk_map_put(&r->keys, k->id, k);
    if (rc < 0) {
        mk_free(fresh);
        return rc;
    }
    *mk_tenant_key_cred(k, mech) = c;
    key_persist(r, k, false);
    mk_info("tenant %s: API key %s: SCRAM credential %s", t->id, k->id, fresh ? "created" : "set");
    return 0;
}

int mk_tenant_key_scram_delete(mk_tenant_registry_t *r, mk_tenant_t *t, const char *key, int mech)
{
    mk_tenant_key_t *k = mk_map_get(&r->keys, key);
    if (!k || k->tenant != t || !scram_mech(mech) || !mk_tenant_key_cred(k, mech)->iterations)
        return MK_ERR_NOT_FOUND;
    memset(mk_tenant_key_cred(k, mech), 0, sizeof(mk_tenant_cred_t));
    if (!k->sha256.iterations && !k->sha512.iterations)
        return mk_tenant_key_revoke(r, t, key);
    key_persist(r, k, false);
    return 0;
}
