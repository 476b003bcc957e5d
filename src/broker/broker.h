/*
 * broker.h -- L4: the Kafka request layer.
 *
 * The broker layer registers a net handler with the cluster; every frame a
 * broker's listener receives comes here, is decoded through proto/, checked
 * against the dispatch table (the one place that says which APIs and versions
 * minikora supports), handled on behalf of the connection's tenant, and
 * answered in order.
 *
 * Threads: loop thread only.
 */
#ifndef MK_BROKER_H
#define MK_BROKER_H

#include <stdio.h>

#include "cluster/cluster.h"

typedef struct mk_broker_s mk_broker_t;

/* State of the request layer; attach it to a cluster before traffic. */
int mk_broker_new(uv_loop_t *loop, mk_broker_t **out);
/* The net handler to pass in mk_cluster_opts_t (with handler_ud = the broker). */
mk_net_handler_t mk_broker_net_handler(void);
/* Attach to the opened cluster: starts the group coordinator (loads committed
 * offsets).  0 or an error. */
int mk_broker_attach(mk_broker_t *b, mk_cluster_t *c);
/* The replication manager (broker lifecycle calls go through it). */
struct mk_repl_s *mk_broker_repl(mk_broker_t *b);
/* Answer parked requests and release everything; call before
 * mk_cluster_close().  Handles are closed through the loop. */
void mk_broker_free(mk_broker_t *b);

/* Print the dispatch table as the Markdown of docs/COMPATIBILITY.md. */
void mk_broker_apis_markdown(FILE *out);

#endif /* MK_BROKER_H */
