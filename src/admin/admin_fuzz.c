/*
 * admin_fuzz.c -- libFuzzer target for the admin API's own request handling:
 * route matching (with path captures), URL decoding and query lookup, the
 * parts of an HTTP request that our code parses (http_parser and jansson do
 * the rest).  Input: "<method digit><path>[?query]".  Nothing may crash or
 * read out of bounds.
 */
#include "admin/admin_int.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    char buf[4097];
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = 0;
    int method = data[0] % 8;
    char *q = strchr(buf, '?');
    if (q)
        *q++ = 0;
    mk_admin_caps_t caps;
    int allow = 0;
    (void)mk_admin_route_find(method, buf, &caps, &allow); /* routes take the raw path */
    char path[4097];
    (void)mk_admin_url_decode(buf, strlen(buf), path, sizeof(path));
    if (q) {
        char val[256];
        (void)mk_admin_query_get(q, "since", val, sizeof(val));
        (void)mk_admin_query_get(q, "limit", val, sizeof(val));
        (void)mk_admin_query_get(q, "", val, sizeof(val));
    }
    return 0;
}
