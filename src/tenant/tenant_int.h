/*
 * tenant_int.h -- internals shared by tenant.c and scram.c (not a public
 * header: other modules include tenant/tenant.h).
 */
#ifndef MK_TENANT_INT_H
#define MK_TENANT_INT_H

#include "tenant/tenant.h"

#define MK_TENANT_SALT_LEN 16     /* the salts this module draws */
#define MK_TENANT_SALT_MAX 64     /* a salt a client sets (AlterUserScramCredentials) */

/* The SCRAM credential of one hash function (RFC 5802 section 5): salt and
 * iterations are per mechanism, as in Kafka. */
typedef struct mk_tenant_cred_s {
    int32_t iterations;                  /* 0: the key has no credential for this hash */
    uint8_t salt_len;
    uint8_t salt[MK_TENANT_SALT_MAX];
    uint8_t stored[64], server[64];      /* StoredKey, ServerKey (32 bytes used for SHA-256) */
} mk_tenant_cred_t;

/* One API key: its SCRAM credentials, never the secret.  A key has at least
 * one credential (one with none left is revoked). */
typedef struct mk_tenant_key_s {
    char id[MK_TENANT_KEY_LEN + 1];
    mk_tenant_t *tenant;                 /* borrowed: the registry owns both */
    mk_tenant_cred_t sha256, sha512;
} mk_tenant_key_t;

/* k's credential for mech (SCRAM_SHA_256 or _512; anything else: SHA-256). */
static inline mk_tenant_cred_t *mk_tenant_key_cred(mk_tenant_key_t *k, int mech)
{
    return mech == MK_TENANT_MECH_SCRAM_SHA_512 ? &k->sha512 : &k->sha256;
}

struct mk_tenant_registry_s {
    uv_loop_t *loop;
    struct mk_meta_s *meta;
    mk_map_t tenants;          /* id -> owned mk_tenant_t (one registry reference) */
    mk_map_t keys;             /* key id -> owned mk_tenant_key_t */
    mk_map_t acls;             /* tenant id -> owned mk_tenant_acls_t ("default" included) */
};

/* A key by id, or NULL. */
mk_tenant_key_t *mk_tenant_key_find(mk_tenant_registry_t *r, const char *id);

/* ========================================================== scram.c */

/* Fill p with n random bytes.  0 or MK_ERR_IO. */
int mk_tenant_random(void *p, size_t n);
/* StoredKey and ServerKey of password for hash mech (SCRAM_SHA_256 or _512):
 * PBKDF2 with salt and iterations, then HMAC and H as RFC 5802 says.
 * stored/server get 32 or 64 bytes.  0 or MK_ERR_INVALID. */
int mk_tenant_scram_derive(int mech, const char *password, size_t pw_len, const uint8_t *salt, size_t salt_len,
                           int32_t iterations, uint8_t *stored, uint8_t *server);
/* StoredKey and ServerKey from a SaltedPassword of the hash's length (32 or
 * 64 bytes), as mk_tenant_scram_derive after its PBKDF2.  0 or MK_ERR_INVALID. */
int mk_tenant_scram_from_salted(int mech, const uint8_t *salted, size_t len, uint8_t *stored, uint8_t *server);

#endif /* MK_TENANT_INT_H */
