/*
 * tenant_int.h -- internals shared by tenant.c and scram.c (not a public
 * header: other modules include tenant/tenant.h).
 */
#ifndef MK_TENANT_INT_H
#define MK_TENANT_INT_H

#include "tenant/tenant.h"

#define MK_TENANT_SALT_LEN 16

/* One API key: its SCRAM credentials (RFC 5802), never the secret.  One salt
 * and iteration count serve both hash functions. */
typedef struct mk_tenant_key_s {
    char id[MK_TENANT_KEY_LEN + 1];
    mk_tenant_t *tenant;                 /* borrowed: the registry owns both */
    uint8_t salt[MK_TENANT_SALT_LEN];
    int32_t iterations;
    uint8_t stored256[32], server256[32];   /* StoredKey, ServerKey for SHA-256 */
    uint8_t stored512[64], server512[64];   /* and for SHA-512 */
} mk_tenant_key_t;

struct mk_tenant_registry_s {
    uv_loop_t *loop;
    struct mk_meta_s *meta;
    mk_map_t tenants;          /* id -> owned mk_tenant_t (one registry reference) */
    mk_map_t keys;             /* key id -> owned mk_tenant_key_t */
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

#endif /* MK_TENANT_INT_H */
