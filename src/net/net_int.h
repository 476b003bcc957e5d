/*
 * net_int.h -- internal to net/: the per-connection TLS engine that tls.c
 * gives net.c.  Nothing outside src/net/ includes this file.
 *
 * A TLS connection is an OpenSSL SSL object between two memory BIOs: net.c
 * feeds the ciphertext that libuv read into one (feed), takes plaintext out
 * (read), puts plaintext in for sending (write) and takes the ciphertext to
 * hand to uv_write (take).  No socket is ever given to OpenSSL, so nothing
 * here blocks and everything runs on the loop thread.
 */
#ifndef MK_NET_INT_H
#define MK_NET_INT_H

#include "net/net.h"

#include <sys/types.h>

typedef struct mk_net_tls_conn_s mk_net_tls_conn_t;

/* A server-side TLS session of t (accept state).  NULL when out of memory.
 * The session holds its own reference to t's SSL_CTX, so t may be freed
 * while sessions still live. */
mk_net_tls_conn_t *mk_net_tls_conn_new(mk_net_tls_t *t);
void mk_net_tls_conn_free(mk_net_tls_conn_t *tc);
/* Hand n bytes of ciphertext from the peer to the session.  0 or MK_ERR_NOMEM. */
int mk_net_tls_conn_feed(mk_net_tls_conn_t *tc, const uint8_t *p, size_t n);
/* Decrypt into buf (cap bytes): > 0 bytes of plaintext, 0 when OpenSSL needs
 * more ciphertext first, < 0 (MK_ERR_INVALID, why filled) when the handshake
 * failed, the peer sent something that is not TLS, or the peer closed the
 * TLS session.  Drives the handshake as a side effect: call take() after. */
ssize_t mk_net_tls_conn_read(mk_net_tls_conn_t *tc, uint8_t *buf, size_t cap, char *why, size_t why_len);
/* Encrypt n bytes of plaintext into the outgoing buffer.  0, or
 * MK_ERR_STATE (why filled) when the session cannot send (handshake not done
 * or failed). */
int mk_net_tls_conn_write(mk_net_tls_conn_t *tc, const uint8_t *p, size_t n, char *why, size_t why_len);
/* The ciphertext waiting to be sent, as one mk_malloc'd buffer the caller
 * owns, with its length in *len; NULL when there is none (or out of memory:
 * *len is then nonzero). */
uint8_t *mk_net_tls_conn_take(mk_net_tls_conn_t *tc, size_t *len);
/* Has the handshake completed? */
bool mk_net_tls_conn_ready(const mk_net_tls_conn_t *tc);

#endif /* MK_NET_INT_H */
