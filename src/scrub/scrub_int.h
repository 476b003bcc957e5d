/*
 * scrub_int.h -- internals shared by the files of src/scrub/.  Nothing
 * outside src/scrub/ includes this file.
 *
 *   walk.c     the walk: one partition's replica logs read side by side
 *              through cursors, every batch through the validator, the
 *              replicas compared; pure over its cursors (any thread)
 *   scrub.c    the live scrubber: passes, pacing, jobs on the threadpool,
 *              repair decisions, lost-data marks, counts, the read check
 *   audit.c    the durability audit: events, rules, incidents
 *   verify.c   `minikora verify`: the walk and the audit rules offline
 *
 * scrub.c calls walk.c and audit.c; verify.c calls walk.c and audit.c's
 * replay; walk.c and audit.c call no other file of the module.
 */
#ifndef MK_SCRUB_INT_H
#define MK_SCRUB_INT_H

#include "meta/meta.h"
#include "scrub/scrub.h"

/* ===================================================================== walk */

#define SCRUB_MAX_REPLICAS 16   /* replicas of one partition walked together */
#define SCRUB_MAX_RANGES 8      /* bad ranges kept per replica; more are merged */

enum { SCRUB_BAD_CORRUPT = 1, SCRUB_BAD_DIVERGED = 2, SCRUB_BAD_GAP = 3 };

/* Offsets [from, to] (to inclusive; INT64_MAX: to the end) of bad data. */
typedef struct scrub_range_s {
    int64_t from, to;
    int kind;                   /* SCRUB_BAD_* */
} scrub_range_t;

/* One replica in a walk. */
typedef struct scrub_rep_s {
    /* in (scrub_walk_add) */
    int32_t broker;
    mk_log_cursor_t *cur;       /* owned by the walk */
    int64_t start;              /* the log start offset when the cursor was opened */
    bool compare;               /* compared with the others (a settled replica) */
    bool leader;
    /* walk state */
    bool done;                  /* no more batches */
    bool have;                  /* v holds the current sound batch, not yet compared */
    mk_batch_view_t v;
    bool has_prev;              /* prev: the batch before, for the neighbour rules */
    mk_batch_hdr_t prev;
    int open_range;             /* index of a range whose end is the next sound batch, or -1 */
    /* out */
    int io_error;               /* the log could not be read (MK_ERR_IO, _NOMEM): the walk of
                                   it stopped there, and says nothing of its data */
    uint64_t batches, bytes;    /* read and checked */
    int64_t bad_from;           /* first bad offset, INT64_MAX: none */
    scrub_range_t ranges[SCRUB_MAX_RANGES];
    int nranges;
    char why[320];              /* the first finding, a sentence */
} scrub_rep_t;

/* The replicas of one partition, walked side by side by offset. */
typedef struct scrub_walk_s {
    scrub_rep_t reps[SCRUB_MAX_REPLICAS];
    int n;
    /* Offsets below it were committed: any difference between compared
     * replicas there is a divergence.  At or above it, only batches of one
     * leader epoch must match (0 offline: the high watermark is unknown). */
    int64_t committed;
    /* Offsets below it were compacted on some replica (the largest cleaner
     * checkpoint among them): replicas compact their logs independently,
     * as in Kafka, so batches there are not compared, and offsets no batch
     * holds there are compaction's gaps, not lost data.  0: none. */
    int64_t compacted_to;
    const char *name;           /* "topic-partition" for the sentences (borrowed) */
    mk_buf_t buf;               /* one batch */
    bool finished;
} scrub_walk_t;

void scrub_walk_init(scrub_walk_t *w, const char *name, int64_t committed);
/* Adds a replica (the walk takes cur, also on error).  0 or MK_ERR_RANGE. */
int scrub_walk_add(scrub_walk_t *w, int32_t broker, mk_log_cursor_t *cur, int64_t start, bool compare,
                   bool leader);
/* Reads on until about budget bytes were read (0: to the end) or the walk
 * is over; returns the bytes read.  w->finished says whether it is over.
 * Any thread, one at a time. */
uint64_t scrub_walk_step(scrub_walk_t *w, uint64_t budget);
void scrub_walk_free(scrub_walk_t *w);
/* "corrupt", "diverged", "gap". */
const char *scrub_bad_name(int kind);

/* =================================================================== audit */

#define SCRUB_NOTES 64

/* A ring of notes (incidents, recent audit rows), owned strings. */
typedef struct scrub_notes_s {
    mk_scrub_note_t v[SCRUB_NOTES];
    size_t next, count;
} scrub_notes_t;

void scrub_notes_push(scrub_notes_t *r, const mk_scrub_note_t *n);
void scrub_notes_foreach(const scrub_notes_t *r, mk_scrub_note_cb cb, void *arg);
void scrub_notes_free(scrub_notes_t *r);

/* The audit's state of one replica (key "<topic id>/<partition>/<broker>"). */
typedef struct audit_rep_s {
    uint64_t log_id, truncs;   /* the log last looked at; log_id 0: none open */
    int64_t start;             /* last log start recorded, -1: never */
    int64_t covered_to;        /* deleted segments since reach up to here */
    uint64_t sweep;            /* tick that last saw the replica */
} audit_rep_t;

/* Replays one stored audit row into reps (owned audit_rep_t values): the
 * last log start recorded and how far deletions reach since.  audit.c at
 * start and verify.c offline.  0 or MK_ERR_NOMEM. */
int scrub_audit_replay(mk_map_t *reps, const mk_meta_audit_t *row);

typedef struct scrub_audit_s {
    mk_map_t reps;              /* "<topic id>/<partition>/<broker>" -> owned audit_rep_t */
    mk_map_t topics;            /* "<topic id>" -> owned audit_topic_t */
    mk_meta_audit_t *pending;   /* owned rows (with owned strings) not yet submitted */
    size_t npending, cap;
    uint64_t written;           /* rows submitted since start */
    uint64_t incidents_total;   /* recorded, all runs */
    uint64_t incidents[MK_CLUSTER_MAX_BROKERS + 1];
    uint64_t sweep;             /* tick generation, to forget deleted topics */
    uint64_t ticks;
    scrub_notes_t incident_notes, recent;
} scrub_audit_t;

/* ================================================================ scrubber */

typedef struct scrub_job_s scrub_job_t;
typedef struct scrub_lost_s scrub_lost_t;

/* A finding already told: topic id, partition, broker, first bad offset. */
#define SCRUB_SEEN 256
typedef struct scrub_seen_s {
    uint8_t topic_id[16];
    int32_t partition, broker;
    int64_t from;
} scrub_seen_t;

typedef struct scrub_bcounts_s {
    uint64_t batches, bytes, corruptions, divergences, repaired;
    int64_t last_pass_ms;
} scrub_bcounts_t;

struct mk_scrub_s {
    uv_loop_t *loop;
    mk_cluster_t *c;
    mk_partition_writer_t *writer;   /* borrowed */
    mk_repl_t *repl;                 /* borrowed */
    mk_meta_t *meta;                 /* borrowed (the cluster's) */
    mk_scrub_config_t cfg;
    uv_timer_t *timer;          /* owned: next pass, next chunk */
    uv_timer_t *tick;           /* owned: the audit, once a second */
    /* the pass */
    bool in_pass;
    int64_t pass_started_ms;
    uint64_t passes;
    struct scrub_part_s *todo;  /* owned: partitions of the pass */
    size_t ntodo, itodo;
    bool covered[MK_CLUSTER_MAX_BROKERS + 1];   /* every replica of the broker read in this pass */
    scrub_job_t *job;           /* the partition being read, or NULL */
    mk_scrub_remote_hook_t remote;
    /* counts, by broker id */
    scrub_bcounts_t counts[MK_CLUSTER_MAX_BROKERS + 1];
    bool remote_busy;           /* the hook's check of the last partition runs: the pass waits */
    mk_scrub_remote_counts_t remote_counts;
    /* lost data, and the findings told recently (each is told once) */
    scrub_lost_t *lost;         /* owned list */
    scrub_seen_t seen[SCRUB_SEEN];
    size_t seen_next;
    /* audit */
    scrub_audit_t audit;
    mk_scrub_event_cb event_cb;
    void *event_ud;
};

/* An event to the observer and a log line (warn). */
void scrub_event(mk_scrub_t *s, const char *type, int32_t broker, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* audit.c, called by scrub.c.  init loads the store's audit state
 * (blocking). */
int scrub_audit_init(mk_scrub_t *s);
void scrub_audit_free(mk_scrub_t *s);
/* Once a second (and at start): retention configs and log start offsets. */
void scrub_audit_tick(mk_scrub_t *s);
/* A segment of p's replica on broker was deleted. */
void scrub_audit_segment(mk_scrub_t *s, mk_partition_t *p, int32_t broker, const mk_log_segment_event_t *ev);
/* An incident: rule failed for (t, partition, broker) at offsets [from, to]
 * (-1 unknown); recorded, counted, told. */
void scrub_audit_incident(mk_scrub_t *s, const mk_topic_t *t, int32_t partition, int32_t broker, const char *rule,
                          int64_t from, int64_t to, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
/* Hand the pending rows to the store. */
void scrub_audit_flush(mk_scrub_t *s);

#endif /* MK_SCRUB_INT_H */
