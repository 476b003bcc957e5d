/*
 * tenant.h -- L2: tenants (logical clusters), their API keys, SASL, and
 * their namespaces.  The only public header of tenant/.
 *
 *   names     Every request is handled on behalf of the tenant bound to its
 *             connection.  Topic, group and transactional-id names pass
 *             through this module in one place: to_internal() when a name
 *             comes from a client, to_external() / visible() when one goes
 *             back (tenant.c).
 *   registry  Tenants and their API keys, persisted in meta/'s kv store
 *             under "tenant/" and loaded at start (tenant.c).
 *   SASL      The server side of PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
 *             against the stored keys (scram.c, the one user of OpenSSL in
 *             this module).
 *
 * Internal names.  Tenant "acme" owns the internal names "acme~<name>": a
 * tenant id is [a-z0-9-]{1,32} and '~' is in no tenant id nor in any topic
 * name a client may create (Kafka's [a-zA-Z0-9._-]), so the owner of an
 * internal name is the text before its first '~'.  The default tenant keeps
 * the identity (prefix ""), so nothing that existed before tenants changes;
 * a name of the default tenant that itself contains '~' (group and
 * transactional ids may) is stored as "~<name>", which no other tenant can
 * own.  Internal topic names become log directory names ("acme~orders-0"):
 * '~' is a plain file-name character.  Clients never see an internal name:
 * every answer goes through to_external().
 *
 * Life of a tenant.  A session holds a reference (mk_tenant_ref/unref) to
 * its tenant; a removed tenant leaves the registry at once and is freed when
 * the last reference goes.  Keys are found by key id (unique over all
 * tenants); only SCRAM credentials are stored, never a secret.
 *
 * Threads: the loop thread (registry writes are submitted to meta/ and run
 * on its worker thread in order).
 */
#ifndef MK_TENANT_H
#define MK_TENANT_H

#include "base/base.h"

#include <uv.h>

struct mk_meta_s;

#define MK_TENANT_ID_MAX 32
#define MK_TENANT_KEY_LEN 16       /* API key ids: [A-Z0-9]{16}, as Confluent Cloud's */
#define MK_TENANT_SECRET_LEN 48    /* secrets: [A-Za-z0-9]{48} */
#define MK_TENANT_SCRAM_ITERATIONS 4096

typedef struct mk_tenant_s {
    const char *id;        /* "default", or [a-z0-9-]{1,32} */
    const char *prefix;    /* internal name prefix: "" for the default tenant, else "<id>~" */
    int32_t cell;          /* the cell its topics go to; -1: any (the default tenant) */
    int64_t created_ms;
    int refs;              /* sessions and the registry (tenant.c only) */
    bool removed;          /* deleted; freed when refs reach 0 (tenant.c only) */
} mk_tenant_t;

/* ==================================================================== names */

/* The tenant of unauthenticated connections. */
const mk_tenant_t *mk_tenant_default(void);
/* Internal name of a client-supplied resource name (allocated in a when it
 * differs; may return name itself; NULL for a NULL name). */
const char *mk_tenant_to_internal(const mk_tenant_t *t, const char *name, mk_arena_t *a);
/* Whether an internal name belongs to tenant t. */
bool mk_tenant_visible(const mk_tenant_t *t, const char *internal);
/* The name a client of tenant t sees for an internal name of t (points into
 * it).  Only meaningful when mk_tenant_visible(t, internal). */
const char *mk_tenant_to_external(const mk_tenant_t *t, const char *internal);
/* Tenant ids: 1..32 of [a-z0-9-], not "default". */
bool mk_tenant_id_valid(const char *id);

/* ================================================================= registry */

typedef struct mk_tenant_registry_s mk_tenant_registry_t;

/* Open the registry on meta's kv store: load every tenant and key stored
 * under "tenant/" (blocking: startup only).  Writes later go through
 * mk_meta_op_submit() on loop.  Returns 0 and *out, MK_ERR_NOMEM, or the
 * store's error; MK_ERR_CORRUPT for an unreadable entry (logged). */
int mk_tenant_registry_open(uv_loop_t *loop, struct mk_meta_s *meta, mk_tenant_registry_t **out);
/* Free the registry; tenants still referenced by sessions stay until their
 * last unref.  NULL is a no-op. */
void mk_tenant_registry_close(mk_tenant_registry_t *r);
/* A tenant by id ("default" gives the default tenant, as a const-cast), or NULL. */
mk_tenant_t *mk_tenant_find(mk_tenant_registry_t *r, const char *id);
/* Iterate the registered tenants (not the default one), in no order:
 * for (size_t it = 0; (t = mk_tenant_next(r, &it));) */
mk_tenant_t *mk_tenant_next(mk_tenant_registry_t *r, size_t *iter);
/* Create tenant id placed in cell and persist it in the background.
 * Returns 0 (and *out, borrowed), MK_ERR_INVALID (bad id), MK_ERR_EXISTS,
 * MK_ERR_NOMEM. */
int mk_tenant_create(mk_tenant_registry_t *r, const char *id, int32_t cell, mk_tenant_t **out);
/* Remove t and its keys from the registry and the store.  The caller has
 * deleted its resources and closed its sessions; t stays valid until the
 * last mk_tenant_unref(). */
int mk_tenant_remove(mk_tenant_registry_t *r, mk_tenant_t *t);
/* A session's reference.  The default tenant is not counted. */
void mk_tenant_ref(const mk_tenant_t *t);
void mk_tenant_unref(const mk_tenant_t *t);

/* Create an API key of t: a fresh key id and secret (NUL-terminated into
 * key and secret), of which only SCRAM credentials are kept and persisted.
 * Runs PBKDF2 twice (4096 iterations, a few ms) on the calling thread.
 * Returns 0, MK_ERR_NOMEM, MK_ERR_IO (no randomness). */
int mk_tenant_key_create(mk_tenant_registry_t *r, mk_tenant_t *t, char key[MK_TENANT_KEY_LEN + 1],
                         char secret[MK_TENANT_SECRET_LEN + 1]);
/* Revoke key of t.  0 or MK_ERR_NOT_FOUND. */
int mk_tenant_key_revoke(mk_tenant_registry_t *r, mk_tenant_t *t, const char *key);
/* Iterate t's key ids: for (size_t it = 0; (k = mk_tenant_key_next(r, t, &it));) */
const char *mk_tenant_key_next(mk_tenant_registry_t *r, const mk_tenant_t *t, size_t *iter);

/* ===================================================================== SASL */

enum {
    MK_TENANT_MECH_PLAIN = 1,
    MK_TENANT_MECH_SCRAM_SHA_256,
    MK_TENANT_MECH_SCRAM_SHA_512,
};

/* The mechanism of that name (Kafka's spelling), or 0. */
int mk_tenant_mech_find(const char *name, size_t len);
/* The enabled mechanisms' names: n of them. */
const char *const *mk_tenant_mechs(int *n);

/* One authentication exchange of a connection. */
typedef struct mk_tenant_sasl_s mk_tenant_sasl_t;

/* Start an exchange with mechanism mech (MK_TENANT_MECH_*).  NULL on OOM. */
mk_tenant_sasl_t *mk_tenant_sasl_new(mk_tenant_registry_t *r, int mech);
void mk_tenant_sasl_free(mk_tenant_sasl_t *s);

enum { MK_TENANT_SASL_CONTINUE = 0, MK_TENANT_SASL_DONE = 1 };

/* Feed the client's next token (bytes from the wire, read through a checked
 * reader; any content is safe).  Returns MK_TENANT_SASL_CONTINUE with the
 * challenge appended to out, MK_TENANT_SASL_DONE (authenticated; out holds
 * the server's last message, possibly empty), or MK_ERR_INVALID with a sentence
 * for the client and the log in why (no secret, no internal name in it).
 * After DONE or an error the exchange is over.  PLAIN and SCRAM each run
 * one PBKDF2 or a few HMACs on the calling thread (bounded, ~1-3 ms). */
int mk_tenant_sasl_step(mk_tenant_sasl_t *s, const uint8_t *token, size_t len, mk_buf_t *out, char *why,
                        size_t why_len);
/* After DONE: the tenant (referenced for the caller: mk_tenant_unref() it)
 * and the key id (valid until mk_tenant_sasl_free()). */
const mk_tenant_t *mk_tenant_sasl_tenant(mk_tenant_sasl_t *s);
const char *mk_tenant_sasl_key(const mk_tenant_sasl_t *s);

#endif /* MK_TENANT_H */
