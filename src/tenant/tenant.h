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
    int32_t cell;          /* the cell its topics go to (-1: any, until the broker places it) */
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
/* Tenant ids: 1..32 of [a-z0-9-], not "default" nor "minikora-health" (the
 * storage health manager's internal tenant: its probe topics). */
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
/* Place t (the default tenant too) in cell: where its new topics go.  Its
 * existing topics move through the balancer.  Persisted in the background.
 * 0 or MK_ERR_INVALID. */
int mk_tenant_set_cell(mk_tenant_registry_t *r, mk_tenant_t *t, int32_t cell);
/* A session's reference.  The default tenant is not counted. */
void mk_tenant_ref(const mk_tenant_t *t);
void mk_tenant_unref(const mk_tenant_t *t);

/* Create an API key of t: a fresh key id and secret (NUL-terminated into
 * key and secret), of which only SCRAM credentials are kept and persisted.
 * Runs PBKDF2 twice (4096 iterations, a few ms) on the calling thread.
 * Returns 0, MK_ERR_NOMEM, MK_ERR_IO (no randomness). */
int mk_tenant_key_create(mk_tenant_registry_t *r, mk_tenant_t *t, char key[MK_TENANT_KEY_LEN + 1],
                         char secret[MK_TENANT_SECRET_LEN + 1]);
/* Declare a key of t with a given id (16 of [A-Z0-9]) and secret (8..128
 * printable characters, no space), e.g. from the config file: as
 * mk_tenant_key_create but not random.  A key already stored for t is kept
 * as it is (0); one of another tenant gives MK_ERR_EXISTS; bad forms
 * MK_ERR_INVALID. */
int mk_tenant_key_declare(mk_tenant_registry_t *r, mk_tenant_t *t, const char *key, const char *secret);
/* Revoke key of t.  0 or MK_ERR_NOT_FOUND. */
int mk_tenant_key_revoke(mk_tenant_registry_t *r, mk_tenant_t *t, const char *key);
/* Iterate t's key ids: for (size_t it = 0; (k = mk_tenant_key_next(r, t, &it));) */
const char *mk_tenant_key_next(mk_tenant_registry_t *r, const mk_tenant_t *t, size_t *iter);

/* SCRAM credentials of one key (Describe/AlterUserScramCredentials).  mech is
 * MK_TENANT_MECH_SCRAM_SHA_256 or _512; salt and iterations are per mechanism. */
#define MK_TENANT_SCRAM_MIN_ITERATIONS 4096    /* Kafka's bounds */
#define MK_TENANT_SCRAM_MAX_ITERATIONS 16384
/* The iterations of key's credential for mech, or 0 when key is not t's or
 * has no such credential. */
int32_t mk_tenant_key_scram_iterations(mk_tenant_registry_t *r, const mk_tenant_t *t, const char *key, int mech);
/* Set key's credential for mech from a client's salt and SaltedPassword
 * (the hash's length): StoredKey and ServerKey are derived (a few HMACs) and
 * persisted in the background.  A valid new key id (16 of [A-Z0-9]) becomes a
 * key of t.  Returns 0, MK_ERR_INVALID (bad mech, salt of 1..64 bytes,
 * password length, iterations or key id), MK_ERR_EXISTS (key of another
 * tenant), MK_ERR_NOMEM. */
int mk_tenant_key_scram_set(mk_tenant_registry_t *r, mk_tenant_t *t, const char *key, int mech, int32_t iterations,
                            const uint8_t *salt, size_t salt_len, const uint8_t *salted, size_t salted_len);
/* Delete key's credential for mech; a key left without one is revoked.
 * 0 or MK_ERR_NOT_FOUND (not t's key, or no such credential). */
int mk_tenant_key_scram_delete(mk_tenant_registry_t *r, mk_tenant_t *t, const char *key, int mech);

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

/* ===================================================================== ACLs */

/* Kafka's codes, as the ACL APIs carry them. */
enum { MK_ACL_RES_ANY = 1, MK_ACL_RES_TOPIC = 2, MK_ACL_RES_GROUP = 3, MK_ACL_RES_CLUSTER = 4,
       MK_ACL_RES_TRANSACTIONAL_ID = 5, MK_ACL_RES_DELEGATION_TOKEN = 6, MK_ACL_RES_USER = 7 };
enum { MK_ACL_PAT_ANY = 1, MK_ACL_PAT_MATCH = 2, MK_ACL_PAT_LITERAL = 3, MK_ACL_PAT_PREFIXED = 4 };
enum { MK_ACL_OP_ANY = 1, MK_ACL_OP_ALL = 2, MK_ACL_OP_READ = 3, MK_ACL_OP_WRITE = 4, MK_ACL_OP_CREATE = 5,
       MK_ACL_OP_DELETE = 6, MK_ACL_OP_ALTER = 7, MK_ACL_OP_DESCRIBE = 8, MK_ACL_OP_CLUSTER_ACTION = 9,
       MK_ACL_OP_DESCRIBE_CONFIGS = 10, MK_ACL_OP_ALTER_CONFIGS = 11, MK_ACL_OP_IDEMPOTENT_WRITE = 12,
       MK_ACL_OP_CREATE_TOKENS = 13, MK_ACL_OP_DESCRIBE_TOKENS = 14 };
enum { MK_ACL_PERM_ANY = 1, MK_ACL_PERM_DENY = 2, MK_ACL_PERM_ALLOW = 3 };
/* The cluster resource's one name. */
#define MK_ACL_CLUSTER_NAME "kafka-cluster"

/* One binding; names are the tenant's client-visible names. */
typedef struct mk_tenant_acl_s {
    int8_t resource_type;     /* MK_ACL_RES_* (not ANY) */
    char *name;               /* "*" with LITERAL: every resource of the type */
    int8_t pattern_type;      /* LITERAL or PREFIXED */
    char *principal;          /* "User:<key>" or "User:*" */
    char *host;               /* "*" or an address */
    int8_t operation;         /* MK_ACL_OP_* (not ANY) */
    int8_t permission;        /* DENY or ALLOW */
} mk_tenant_acl_t;

/* A filter (DescribeAcls, DeleteAcls): ANY codes and NULL strings match
 * everything; pattern MATCH selects the bindings that apply to `name`. */
typedef struct mk_tenant_acl_filter_s {
    int8_t resource_type;
    const char *name;
    int8_t pattern_type;
    const char *principal;
    const char *host;
    int8_t operation;
    int8_t permission;
} mk_tenant_acl_filter_t;

/* One tenant's set of bindings (acl.c). */
typedef struct mk_tenant_acls_s mk_tenant_acls_t;
typedef void (*mk_tenant_acl_cb)(const mk_tenant_acl_t *a, void *arg);

int mk_tenant_acls_new(mk_tenant_acls_t **out);
void mk_tenant_acls_free(mk_tenant_acls_t *s);
int mk_tenant_acls_count(const mk_tenant_acls_t *s);
/* NULL when a is a valid binding, else why not (for INVALID_REQUEST). */
const char *mk_tenant_acl_check(const mk_tenant_acl_t *a);
/* NULL when f is a valid filter, else why not. */
const char *mk_tenant_acl_filter_check(const mk_tenant_acl_filter_t *f);
/* Add a copy of a (an existing equal binding is not added twice).  0,
 * MK_ERR_INVALID (see mk_tenant_acl_check), MK_ERR_NOMEM. */
int mk_tenant_acls_add(mk_tenant_acls_t *s, const mk_tenant_acl_t *a);
/* Call cb for each binding f matches. */
void mk_tenant_acls_describe(const mk_tenant_acls_t *s, const mk_tenant_acl_filter_t *f, mk_tenant_acl_cb cb,
                             void *arg);
/* Delete the bindings f matches, calling cb (may be NULL) for each before
 * it goes.  Returns how many were deleted. */
int mk_tenant_acls_delete(mk_tenant_acls_t *s, const mk_tenant_acl_filter_t *f, mk_tenant_acl_cb cb, void *arg);
/* Kafka's decision for principal at host doing op on (resource_type, name):
 * any matching DENY refuses, a matching ALLOW (or one implying op) permits,
 * and a resource no binding names is allowed (allow.everyone.if.no.acl.found:
 * a tenant without ACLs allows its principals everything).  s may be NULL. */
bool mk_tenant_acls_authorize(const mk_tenant_acls_t *s, const char *principal, const char *host,
                              int8_t resource_type, const char *name, int8_t op);
/* Whether principal at host may do op on at least one resource of
 * resource_type (Kafka's authorizeByResourceType; see acl.c).  s may be NULL. */
bool mk_tenant_acls_authorize_any(const mk_tenant_acls_t *s, const char *principal, const char *host,
                                  int8_t resource_type, int8_t op);
/* The ACL set of tenant t in registry r (the default tenant's too): NULL when
 * it has none and create is false (then everything is allowed), or on OOM. */
mk_tenant_acls_t *mk_tenant_acls_of(mk_tenant_registry_t *r, const mk_tenant_t *t, bool create);
/* Persist t's set after a change (in the background, through meta/). */
int mk_tenant_acls_save(mk_tenant_registry_t *r, const mk_tenant_t *t);
/* The set as text (appended to out), and back (bindings added to s; a bad
 * line gives MK_ERR_CORRUPT).  For persistence through meta/. */
int mk_tenant_acls_encode(const mk_tenant_acls_t *s, mk_buf_t *out);
int mk_tenant_acls_decode(mk_tenant_acls_t *s, const char *text, size_t len);

#endif /* MK_TENANT_H */
