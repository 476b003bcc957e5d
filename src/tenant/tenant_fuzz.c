/*
 * tenant_fuzz.c -- libFuzzer target for the server side of SASL: a registry
 * with one known key, and the input split into up to two client tokens
 * (at the first 0xff byte) fed to an exchange of the mechanism chosen by the
 * first byte.  The key id is kept at a fixed place so the fuzzer reaches the
 * SCRAM final step.  Nothing may crash, leak or read out of bounds.
 */
#include "tenant/tenant_int.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mk_tenant_registry_t *reg;

static void setup(void)
{
    if (reg)
        return;
    mk_logger_set_level(MK_LOGGER_ERROR + 1);
    mk_tenant_t *t;
    char key[MK_TENANT_KEY_LEN + 1], secret[MK_TENANT_SECRET_LEN + 1];
    if (mk_tenant_registry_open(NULL, NULL, &reg) < 0 || mk_tenant_create(reg, "fuzz", 0, &t) < 0 ||
        mk_tenant_key_create(reg, t, key, secret) < 0)
        __builtin_trap();
    /* A fixed key id, so inputs can name it: re-key the map entry. */
    mk_tenant_key_t *k = mk_map_del(&reg->keys, key);
    memcpy(k->id, "FUZZKEY000000000", MK_TENANT_KEY_LEN + 1);
    if (mk_map_put(&reg->keys, k->id, k) < 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 1)
        return 0;
    int mech = 1 + data[0] % 3;
    data++;
    size--;
    const uint8_t *cut = memchr(data, 0xff, size);
    size_t n1 = cut ? (size_t)(cut - data) : size;
    mk_tenant_sasl_t *s = mk_tenant_sasl_new(reg, mech);
    if (!s)
        return 0;
    mk_buf_t out;
    mk_buf_init(&out);
    char why[160];
    int rc = mk_tenant_sasl_step(s, data, n1, &out, why, sizeof(why));
    if (rc == MK_TENANT_SASL_CONTINUE && cut) {
        mk_buf_reset(&out);
        rc = mk_tenant_sasl_step(s, cut + 1, size - n1 - 1, &out, why, sizeof(why));
    }
    if (rc == MK_TENANT_SASL_DONE)
        mk_tenant_unref(mk_tenant_sasl_tenant(s));
    mk_buf_free(&out);
    mk_tenant_sasl_free(s);
    return 0;
}
