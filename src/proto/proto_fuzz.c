/*
 * proto_fuzz.c -- libFuzzer target for the request decoder.
 *
 * Input = one request frame without its size prefix, exactly as a broker's
 * connection hands it to the dispatcher: header, then body.  The header picks
 * the API and version; any spec'd request at any of its versions is decoded.
 * A decoded request is encoded again to exercise the encoder on whatever the
 * decoder accepted.  Nothing may crash, leak or read out of bounds.
 */
#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mk_arena_t a;
    mk_arena_init(&a);
    mk_reader_t r;
    mk_rd_init(&r, data, size);
    mk_req_header_t h;
    if (mk_proto_req_header_decode(&r, &a, &h) == 0 && h.req) {
        void *body = mk_arena_alloc(&a, h.req->body->size);
        if (body && mk_proto_decode(h.req, h.RequestApiVersion, &r, &a, body) == 0) {
            mk_buf_t w;
            mk_buf_init(&w);
            mk_proto_encode(h.req, h.RequestApiVersion, body, &w);
            mk_buf_free(&w);
        }
    }
    mk_arena_free(&a);
    return 0;
}
