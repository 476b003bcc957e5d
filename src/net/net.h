/*
 * net.h -- L1: libuv TCP listeners and Kafka framing.
 *
 * A listener accepts connections; a connection turns the byte stream into
 * frames (int32 size + payload), checks the size against a limit before
 * allocating anything, and hands frames up one at a time: the next frame is
 * delivered only after the upper layer calls mk_net_conn_done() for the
 * current one.  That gives Kafka's per-connection ordering (responses in
 * request order) without the upper layer queueing anything.
 *
 * Backpressure: reading stops while queued input frames or unsent output pass
 * their high-water marks, and resumes below them.  A connection is given at
 * most a few frames per loop turn before the others have theirs, and can be
 * muted for a while (quota throttling).
 *
 * Limits (Kafka's names): max.connections and max.connections.per.ip refuse a
 * connection at accept; connections.max.idle.ms closes one that has read and
 * written nothing for that long and has no frame in progress.
 *
 * TLS (tls.c): a listener given a TLS context with mk_net_listener_set_tls()
 * speaks TLS on every connection it accepts.  The TLS runs between OpenSSL
 * memory BIOs driven from the read callback and the send path, so the frame
 * parser and the upper layer see the same plaintext bytes as on a PLAINTEXT
 * listener, and nothing blocks the loop.  A failed handshake or bytes that
 * are not TLS close the connection with a log line.
 *
 * Threads: everything here runs on the loop thread.
 * Ownership: a connection is freed only in its libuv close callback, after the
 * handler's close_cb has run; the upper layer must drop its pointer there.
 */
#ifndef MK_NET_H
#define MK_NET_H

#include "base/base.h"
#include <uv.h>

typedef struct mk_net_listener_s mk_net_listener_t;
typedef struct mk_net_conn_s mk_net_conn_t;

typedef struct mk_net_config_s {
    size_t max_frame;          /* socket.request.max.bytes (104857600) */
    size_t pre_auth_max_frame; /* limit until mk_net_conn_set_authenticated(); 0 = none */
    size_t in_high_water;      /* queued input bytes that pause reading */
    size_t out_high_water;     /* unsent output bytes that pause reading */
    /* Connection limits, checked at accept before any byte is read (so
     * before authentication).  A connection past a limit is closed at once
     * with a log line; the handler never hears of it. */
    int max_connections;       /* max.connections, per listener (INT32_MAX) */
    int max_connections_per_ip;/* max.connections.per.ip, per listener (INT32_MAX) */
    int64_t idle_ms;           /* connections.max.idle.ms (600000); <= 0: never */
} mk_net_config_t;

typedef struct mk_net_handler_s {
    /* A new connection; may set user data with mk_net_conn_set_data(). */
    void (*accept_cb)(mk_net_conn_t *c, void *ud);
    /* One complete frame (size prefix removed).  Takes ownership of frame
     * (free with mk_free).  No other frame arrives until mk_net_conn_done(). */
    void (*frame_cb)(mk_net_conn_t *c, uint8_t *frame, size_t len, void *ud);
    /* The connection is closing: drop every reference to it.  Runs once. */
    void (*close_cb)(mk_net_conn_t *c, void *ud);
} mk_net_handler_t;

void mk_net_config_default(mk_net_config_t *cfg);

/* Listen on host:port (port 0 picks a free one).  Returns 0 or a negative
 * libuv/MK error; on error nothing is left open. */
int mk_net_listener_open(uv_loop_t *loop, const char *host, int port, const mk_net_config_t *cfg,
                         const mk_net_handler_t *h, void *ud, mk_net_listener_t **out);
/* The port actually bound. */
int mk_net_listener_port(const mk_net_listener_t *l);

/* Shared by every listener of the process (Kafka and admin HTTP): initialise
 * tcp on loop, bind host:port (port 0 picks one) and listen.  Returns 0 and
 * the bound port in *bound_port, or a negative libuv error; on error tcp has
 * been initialised and the caller must uv_close() it. */
int mk_net_tcp_listen(uv_loop_t *loop, uv_tcp_t *tcp, const char *host, int port, int backlog,
                      uv_connection_cb cb, int *bound_port);
/* Whether host is a wildcard bind address ("0.0.0.0", "::"): one that no
 * client can connect to, so it must never be advertised. */
bool mk_net_host_is_wildcard(const char *host);
/* The address to advertise for a listener bound to a wildcard: this
 * machine's host name when it resolves to an address of this machine (one
 * that can be bound), else "127.0.0.1" (or "::1" for "::").  Copies it into
 * out (at most n bytes) and returns why in a few words ("host name
 * resolves to 127.0.1.1", ...).  Blocking (getaddrinfo): startup only. */
const char *mk_net_wildcard_advertise(const char *host, char *out, size_t n);
/* "host:port", or "[host]:port" when host is an IPv6 address, into out. */
void mk_net_host_port(const char *host, int port, char *out, size_t n);
/* Stop accepting and close every connection of this listener.  Memory is
 * released from close callbacks; the pointer is invalid after this call. */
void mk_net_listener_close(mk_net_listener_t *l);
/* Number of open connections (metrics). */
int mk_net_listener_conn_count(const mk_net_listener_t *l);
/* Connections refused at accept (limits) and closed as idle, since open. */
uint64_t mk_net_listener_refused_count(const mk_net_listener_t *l);
uint64_t mk_net_listener_idle_closed_count(const mk_net_listener_t *l);

/* Queue bytes for sending.  Takes ownership of data (mk_malloc'd).  On a
 * closing connection the data is simply freed. */
void mk_net_conn_send(mk_net_conn_t *c, uint8_t *data, size_t len);
/* The current frame is finished; deliver the next one.  May be called from
 * inside frame_cb (the next frame is delivered after frame_cb returns). */
void mk_net_conn_done(mk_net_conn_t *c);
/* Mute the connection for ms (KIP-219 throttling): nothing is read and no
 * frame is delivered until then; a mute in force is only ever extended.
 * The frame in progress is not affected: call this before mk_net_conn_done()
 * so that the next frame waits.  Unmuting is automatic. */
void mk_net_conn_mute(mk_net_conn_t *c, uint64_t ms);
bool mk_net_conn_is_muted(const mk_net_conn_t *c);
/* Close with a reason for the log. */
void mk_net_conn_close(mk_net_conn_t *c, const char *reason);
void mk_net_conn_set_data(mk_net_conn_t *c, void *data);
void *mk_net_conn_get_data(const mk_net_conn_t *c);
/* The peer has authenticated: frames may now be as large as max_frame
 * (before, pre_auth_max_frame holds when set; STYLE.md 6). */
void mk_net_conn_set_authenticated(mk_net_conn_t *c);
/* "ip:port" of the peer, for logs. */
const char *mk_net_conn_peer(const mk_net_conn_t *c);
/* Did the connection come in on a TLS listener?  (The request layer tells
 * such a client the TLS ports of the brokers.) */
bool mk_net_conn_is_tls(const mk_net_conn_t *c);

/* ====================================================================== TLS */

/* A server TLS context: certificate chain and private key (an SSL_CTX). */
typedef struct mk_net_tls_s mk_net_tls_t;

/* Make sure dir holds a self-signed CA (ca.pem, ca.key) and a server
 * certificate it signed (server.pem, server.key), EC P-256, whose
 * subjectAltName covers localhost, 127.0.0.1 and host.  Files already there
 * are reused; a server certificate that does not cover host is issued again
 * by the same CA.  Keys are written mode 0600, each file through a temporary
 * name and a rename.  Blocking (key generation and file I/O): call it at
 * startup, before the loop serves.  Returns 0 or MK_ERR_IO / MK_ERR_NOMEM
 * with a sentence in why. */
int mk_net_tls_certs_ensure(const char *dir, const char *host, char *why, size_t why_len);
/* Load a PEM certificate chain and PEM private key into a new server
 * context (TLS 1.2 and later).  Blocking (file I/O): startup only.  Returns 0
 * and *out (free with mk_net_tls_free) or MK_ERR_INVALID with why. */
int mk_net_tls_new(const char *cert_file, const char *key_file, mk_net_tls_t **out, char *why, size_t why_len);
/* Drop the context.  Connections still open keep their own reference. */
void mk_net_tls_free(mk_net_tls_t *t);
/* Make every connection this listener accepts from now on speak TLS with t
 * (borrowed: keep t until the listener is closed).  Call right after
 * mk_net_listener_open(), before the loop runs. */
void mk_net_listener_set_tls(mk_net_listener_t *l, mk_net_tls_t *t);

#endif /* MK_NET_H */
