/*
 * fault.h -- L1: the registry of injected faults (the only public header of
 * src/fault/).
 *
 * A fault is a spec (type, broker or AZ, parameters) with an id.  The
 * registry only records what is active and answers cheap questions about
 * it; each fault acts in the layer whose I/O it disturbs, which asks here:
 *   disk-stall, disk-slow, disk-error  log/'s storage I/O gate (mk_fault_disk)
 *   net-partition                      repl/'s rounds and ISR (mk_fault_net_cut,
 *                                      mk_fault_net_isolated)
 *   broker-slow                        broker/'s request life (mk_fault_broker_delay_ms)
 *   s3-* with side=client              tier/'s S3 calls (mk_fault_s3_client)
 * and the faults that are an action rather than a state (corrupt, crash,
 * az-down, s3-* on the bundled server) are carried out by admin/ (L5),
 * which also owns the routes, the timers of duration_ms and the chaos
 * schedule.  Observers hear every add and remove (the gate releases held
 * operations when a stall clears).
 *
 * Threads: the queries may come from any thread (a mutex guards the table;
 * with no fault active a query is one atomic load; tier/'s S3 workers ask).
 * Observers run on the thread that added or removed the fault, and log/'s
 * gate observes on the loop: in minikora, add and remove on the loop thread
 * (admin/ does).
 */
#ifndef MK_FAULT_H
#define MK_FAULT_H

#include "base/base.h"

/* The types, in the order of their names (mk_fault_type_name). */
typedef enum {
    MK_FAULT_DISK_STALL = 1,
    MK_FAULT_DISK_SLOW,
    MK_FAULT_DISK_ERROR,
    MK_FAULT_CORRUPT,
    MK_FAULT_S3_DOWN,
    MK_FAULT_S3_SLOW,
    MK_FAULT_S3_ERROR,
    MK_FAULT_NET_PARTITION,
    MK_FAULT_BROKER_SLOW,
    MK_FAULT_CRASH,
    MK_FAULT_AZ_DOWN,
    MK_FAULT_TYPE_END
} mk_fault_type_t;

/* disk-error's `ops`: which storage operations fail with EIO. */
enum { MK_FAULT_OPS_WRITES = 1, MK_FAULT_OPS_READS = 2, MK_FAULT_OPS_FSYNC = 4, MK_FAULT_OPS_ALL = 7 };

/* Bounds of the parameters (400 beyond them). */
#define MK_FAULT_MAX_DELAY_MS 60000
#define MK_FAULT_MAX_DURATION_MS (7LL * 24 * 3600 * 1000)
#define MK_FAULT_MAX_ACTIVE 256

typedef struct mk_fault_spec_s {
    int type;                 /* mk_fault_type_t */
    int32_t broker;           /* disk-*, broker-slow, crash, corrupt (optional); -1 none */
    char az[32];              /* net-partition, az-down; "" none */
    int64_t delay_ms;         /* disk-slow, broker-slow, s3-slow */
    int ops;                  /* disk-error: MK_FAULT_OPS_* (0 = all) */
    int64_t duration_ms;      /* > 0: cleared by itself after it (admin/'s timer); 0 = until cleared */
    char topic[256];          /* corrupt: "" = a random partition */
    int32_t partition;        /* corrupt: -1 = random */
    bool client_side;         /* s3-*: side "client" (tier/'s calls) rather than the bundled server */
    char source[16];          /* who injected it: "api", "chaos", "lib" */
} mk_fault_spec_t;

typedef struct mk_fault_s {
    uint64_t id;              /* > 0, never reused in a process */
    mk_fault_spec_t spec;
    int64_t started_ms;       /* wall clock */
} mk_fault_t;

/* "disk-stall", ...; NULL for an unknown type. */
const char *mk_fault_type_name(int type);
/* The type named s, or 0. */
int mk_fault_type_parse(const char *s);
/* "writes", "reads", "fsync", "all" -> MK_FAULT_OPS_*, or 0. */
int mk_fault_ops_parse(const char *s);
const char *mk_fault_ops_name(int ops);

/* A spec with nothing set: broker and partition -1, source "lib". */
void mk_fault_spec_init(mk_fault_spec_t *s, int type);

/* The checks that need no cluster: a known type, the fields its type needs
 * (broker for disk-*, broker-slow and crash; az for net-partition and
 * az-down; delay_ms for the slow ones), ranges (delay 1..60000 ms, duration
 * 0..7 days, a broker id 1..1000).  Whether the broker or AZ exists is the
 * caller's to check.  0, or MK_ERR_INVALID with why filled. */
int mk_fault_spec_check(const mk_fault_spec_t *s, char *why, size_t n);

/* Records a fault (spec checked as above; copied).  *id_out its id.
 * Observers hear of it.  0, MK_ERR_INVALID, MK_ERR_TOO_LARGE (too many
 * active). */
int mk_fault_add(const mk_fault_spec_t *s, uint64_t *id_out);
/* Removes fault id, copied into *out (may be NULL) first.  Observers hear of
 * it.  0 or MK_ERR_NOT_FOUND. */
int mk_fault_remove(uint64_t id, mk_fault_t *out);
/* Fault id into *out.  0 or MK_ERR_NOT_FOUND. */
int mk_fault_get(uint64_t id, mk_fault_t *out);
/* Copies up to cap active faults, oldest first; returns how many are
 * active (may be more than cap). */
size_t mk_fault_list(mk_fault_t *out, size_t cap);
/* Active faults of one type (0: all). */
size_t mk_fault_count(int type);
/* Faults injected since start, by type (0: all). */
uint64_t mk_fault_injected_total(int type);
/* Removes every fault without telling observers, and resets the counters
 * (unit tests; a process that starts over). */
void mk_fault_reset(void);

/* ============================================================== queries */

/* What the disk faults of one broker say, merged. */
typedef struct mk_fault_disk_s {
    bool stall;               /* operations hang */
    int64_t slow_ms;          /* added delay per operation (the largest) */
    int error_ops;            /* MK_FAULT_OPS_* failing with EIO */
} mk_fault_disk_t;

/* Fills *out; returns whether any disk fault concerns broker. */
bool mk_fault_disk(int32_t broker, mk_fault_disk_t *out);
/* Whether a net-partition cuts az away from the others (az is the
 * partitioned side, the minority). */
bool mk_fault_net_isolated(const char *az);
/* Added latency of every request of broker (broker-slow), 0 if none. */
int64_t mk_fault_broker_delay_ms(int32_t broker);
/* Whether a net-partition cuts replication between AZs a and b (one of
 * them is partitioned away and they differ). */
bool mk_fault_net_cut(const char *az_a, const char *az_b);
/* The client-side S3 fault, if any: its type (MK_FAULT_S3_*) and delay.
 * Returns false when there is none. */
bool mk_fault_s3_client(int *type, int64_t *delay_ms);

/* ============================================================ observers */

/* Called after fault f was added (added) or removed.  f is a copy, valid
 * during the call. */
typedef void (*mk_fault_cb)(void *arg, const mk_fault_t *f, bool added);
/* At most 8 observers; 0 or MK_ERR_TOO_LARGE. */
int mk_fault_observe(mk_fault_cb cb, void *arg);
/* Removes the observers registered with arg. */
void mk_fault_unobserve(void *arg);

#endif /* MK_FAULT_H */
