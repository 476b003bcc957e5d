/*
 * tui_int.h -- internals shared by the files of tui/ (not a public header).
 *
 *   http.c    non-blocking HTTP client: libcurl's multi interface, so one
 *             wait covers the sockets of every transfer and the keyboard
 *   model.c   what the TUI knows about the cluster: the JSON bodies of the
 *             admin API parsed with jansson into plain structs, plus the
 *             history it keeps itself (sparklines, events); number formats
 *   view.c    drawing: one function per view, ncurses, no I/O
 *   tui.c     mk_tui_main: the loop (poll the API about once a second,
 *             read keys, redraw), key bindings, confirmations, actions
 *
 * Only view.c and tui.c include curses.h, only http.c includes curl.h and
 * only model.c includes jansson.h.  Everything here runs on one thread.
 *
 * Strings that come from the API are copied into fixed buffers and cleaned
 * to printable ASCII on the way in (tui_model_*), so the drawing code can
 * count one byte as one column.
 */
#ifndef MK_TUI_INT_H
#define MK_TUI_INT_H

#include "base/base.h"
#include "tui.h"

/* ==================================================================== limits */

#define TUI_NAME 256            /* topic, group and client names (Kafka allows 249) */
#define TUI_MAX_REPLICAS 16     /* replicas shown per partition */
#define TUI_HISTORY 600         /* samples kept per sparkline (one a poll: ~10 min) */
#define TUI_EVENTS 1000         /* events kept client-side */
#define TUI_MAX_BODY ((size_t)32 << 20) /* a response larger than this is refused */
#define TUI_MAX_DRILL_TOPICS 200 /* topics whose partitions a broker drill-down fetches */

/* ===================================================================== http */

/* What a request was for; the answer is routed by it. */
typedef enum tui_req_e {
    TUI_REQ_CLUSTER,  /* GET /v1/cluster */
    TUI_REQ_TOPICS,   /* GET /v1/topics */
    TUI_REQ_TOPIC,    /* GET /v1/topics/{arg} */
    TUI_REQ_RATES,    /* GET /v1/rates */
    TUI_REQ_LATENCY,  /* GET /v1/latency */
    TUI_REQ_GROUPS,   /* GET /v1/groups */
    TUI_REQ_EVENTS,   /* GET /v1/events?since=N */
    TUI_REQ_ACTION,   /* POST: broker or AZ lifecycle */
} tui_req_t;

/* One finished transfer.  status is the HTTP status, or 0 when there was no
 * answer (err then says why: refused, timed out, ...).  body is NUL-terminated
 * and only valid during the callback. */
typedef struct tui_http_result_s {
    tui_req_t kind;
    const char *arg;          /* the topic name, action label, ...; "" if none */
    long status;
    const char *body;
    size_t body_len;
    const char *err;          /* "" when status != 0 */
    double elapsed_ms;
} tui_http_result_t;

typedef void (*tui_http_done_cb)(void *ud, const tui_http_result_t *res);

typedef struct tui_http_s tui_http_t;

/* base_url is "http://host:port" without a trailing '/'.  0 and *out, or
 * MK_ERR_NOMEM / MK_ERR_INVALID (libcurl could not be set up). */
int tui_http_new(const char *base_url, tui_http_done_cb cb, void *ud, tui_http_t **out);
void tui_http_free(tui_http_t *h);
/* Start a GET or POST of base_url + path (path already escaped; see
 * tui_http_escape).  The answer comes through the callback from a later
 * tui_http_wait(); a request that cannot even be started returns
 * MK_ERR_NOMEM or MK_ERR_INVALID and never calls back. */
int tui_http_start(tui_http_t *h, tui_req_t kind, bool post, const char *path, const char *arg, long timeout_ms);
/* Transfers started and not yet called back. */
int tui_http_inflight(const tui_http_t *h);
/* Wait at most timeout_ms for network progress or for input on fd, move
 * every transfer along, and call back the finished ones.  Returns -1 if fd
 * was hung up or closed, else 0. */
int tui_http_wait(tui_http_t *h, int fd, int timeout_ms);
/* Percent-escape one path segment into out; false if it does not fit. */
bool tui_http_escape(tui_http_t *h, const char *seg, char *out, size_t n);

/* ==================================================================== model */

/* Bytes, records and requests: rates per second over the API's window
 * (about 10 s) and totals since start. */
typedef struct tui_flow_s {
    double bytes_in, bytes_out, records_in, records_out, requests;
    double bytes_in_total, bytes_out_total, records_in_total, records_out_total, requests_total;
} tui_flow_t;

typedef struct tui_broker_s {
    int32_t id;
    char az[32];
    int32_t cell;
    char host[64];
    int32_t port;
    bool running;
    char state[16];           /* "running", "stopped", ... as the API says */
    int32_t leaders, replicas, urp, conns;
    bool have_flow;
    tui_flow_t flow;          /* from /v1/rates */
    struct tui_hist_s *hist;  /* owned: bytes in + out per second, one per rates answer */
} tui_broker_t;

typedef struct tui_az_s {
    char name[32];
    int32_t running, total;
} tui_az_t;

typedef struct tui_topic_s {
    char name[TUI_NAME];
    int32_t partitions, rf, cell, urp, offline;
    int64_t size, messages;
} tui_topic_t;

typedef struct tui_part_s {
    char topic[TUI_NAME];
    int32_t partition, leader, epoch;
    int32_t nrep, nisr;
    int32_t rep[TUI_MAX_REPLICAS], isr[TUI_MAX_REPLICAS];
    int64_t hw, leo, size;    /* -1 when the API gave none */
} tui_part_t;

typedef struct tui_named_flow_s {
    char name[TUI_NAME];
    tui_flow_t flow;
} tui_named_flow_t;

typedef struct tui_lat_s {
    int32_t broker;
    char api[40];
    int64_t count;
    double p50, p95, p99, max;
} tui_lat_t;

typedef struct tui_group_s {
    char id[TUI_NAME];
    char state[24];
    int32_t members, coordinator;
} tui_group_t;

typedef struct tui_event_s {
    uint64_t seq;
    int64_t time_ms;
    int32_t broker;           /* -1 if none */
    char type[32];
    char message[240];
} tui_event_t;

/* A ring of samples for a sparkline. */
typedef struct tui_hist_s {
    double v[TUI_HISTORY];
    int n, pos;               /* samples held; next slot */
} tui_hist_t;

/* Everything known about the cluster.  Arrays are owned (mk_malloc) and
 * replaced whole by each answer; tui_model_free() releases them. */
typedef struct tui_model_s {
    /* GET /v1/cluster */
    bool have_cluster;
    char cluster_id[64], version[32];
    int32_t controller, cell_size, topics_count, partitions_count, urp, offline, brokers_running;
    int64_t uptime_ms;
    tui_broker_t *brokers;
    int nbrokers;
    tui_az_t *azs;
    int nazs;
    int32_t *cells;           /* cell ids in the API's order */
    int ncells;
    /* GET /v1/topics */
    bool have_topics;
    tui_topic_t *topics;
    int ntopics;
    /* GET /v1/topics/{name}: partitions of the topics a drill-down needs */
    tui_part_t *parts;
    int nparts;
    /* GET /v1/rates */
    bool have_rates;
    double rates_window_s;
    tui_flow_t cluster_flow;
    tui_named_flow_t *topic_flows, *client_flows;
    int ntopic_flows, nclient_flows;
    tui_hist_t hist_in, hist_out; /* cluster bytes/s */
    /* GET /v1/latency: 0 = not asked yet, 404 = the API has no such route */
    long latency_status;
    double latency_window_s;
    tui_lat_t *lat;
    int nlat;
    tui_hist_t hist_p99;      /* worst p99 (ms) over every broker and API */
    /* GET /v1/groups */
    bool have_groups;
    tui_group_t *groups;
    int ngroups;
    /* GET /v1/events: a ring, oldest first from events_head */
    tui_event_t *events;      /* TUI_EVENTS slots */
    int nevents, events_head;
    uint64_t last_seq;        /* newest seq held: the next poll asks since= it */
} tui_model_t;

int tui_model_init(tui_model_t *m);
void tui_model_free(tui_model_t *m);
/* Apply one answer body of the given kind (arg: the topic for
 * TUI_REQ_TOPIC).  0, or MK_ERR_INVALID with err set (not JSON, or not the
 * shape expected) and the model unchanged, or MK_ERR_NOMEM. */
int tui_model_apply(tui_model_t *m, tui_req_t kind, const char *arg, const char *body, size_t len, char *err,
                    size_t errlen);
/* Forget the partitions of topics no longer listed. */
void tui_model_prune_parts(tui_model_t *m);
/* The error message of an admin error body ({"error","message"}), or of
 * any body, into out ("HTTP 404" when there is nothing better). */
void tui_model_error_text(long status, const char *body, size_t len, char *out, size_t n);
/* The outcome of a successful action body, as a sentence. */
void tui_model_action_text(const char *label, const char *body, size_t len, char *out, size_t n);

tui_broker_t *tui_model_broker(tui_model_t *m, int32_t id);
const tui_named_flow_t *tui_model_topic_flow(const tui_model_t *m, const char *topic);
/* The i-th newest event (0 = newest), or NULL. */
const tui_event_t *tui_model_event(const tui_model_t *m, int i);

void tui_hist_push(tui_hist_t *h, double v);
/* Sample i back from the newest (0 = newest); 0 past what is held. */
double tui_hist_get(const tui_hist_t *h, int i);

/* Number formats (out gets a short NUL-terminated text). */
void tui_fmt_bytes(double v, char *out, size_t n);        /* "1.2 MB" */
void tui_fmt_count(double v, char *out, size_t n);        /* "3.4k" */
void tui_fmt_ms(double v, char *out, size_t n);           /* "0.21", "12.5", "1.2s" */
void tui_fmt_duration(int64_t ms, char *out, size_t n);   /* "3d04h", "1h02m", "4m05s" */
/* A sparkline of the newest `width` samples of values (newest on the
 * right) scaled to their maximum: Unicode blocks when utf8, else ASCII. */
void tui_fmt_spark(const double *newest_first, int count, int width, bool utf8, char *out, size_t n);

/* ===================================================================== state */

enum { TUI_V_OVERVIEW, TUI_V_PLACEMENT, TUI_V_LATENCY, TUI_V_TENANTS, TUI_V_EVENTS, TUI_V_COUNT };
enum { TUI_DRILL_NONE, TUI_DRILL_BROKER, TUI_DRILL_TOPIC };
enum { TUI_MODE_NORMAL, TUI_MODE_FILTER, TUI_MODE_CONFIRM, TUI_MODE_HELP };
enum { TUI_ACT_STOP, TUI_ACT_START, TUI_ACT_CRASH, TUI_ACT_AZ_DOWN, TUI_ACT_AZ_UP };
enum { TUI_MSG_INFO, TUI_MSG_OK, TUI_MSG_ERR };

/* The UI: what is selected, where each list is scrolled, what is being
 * typed.  Owned by mk_tui_main for the life of the screen. */
typedef struct tui_s {
    tui_model_t m;
    tui_http_t *http;
    char admin[512];          /* base URL */
    int interval_ms;          /* between polls */

    int view;                 /* TUI_V_* */
    int mode;                 /* TUI_MODE_* */
    int32_t sel_broker;       /* the broker acting keys apply to; -1 none */
    bool focus_topics;        /* Placement: cursor in the topic list, not the grid */
    int sel_topic;            /* Placement: index in the filtered topic list */
    int drill;                /* TUI_DRILL_* (Placement) */
    int32_t drill_broker;
    char drill_topic[TUI_NAME];
    int scroll[TUI_V_COUNT];  /* first row shown of each view's list */
    int drill_scroll;
    char filter[TUI_V_COUNT][64];

    char input[64];           /* the filter being typed */
    int confirm_act;          /* TUI_ACT_* awaiting y/n */
    int32_t confirm_broker;
    char confirm_az[32];
    char prompt[160];

    char msg[240];            /* last action outcome or notice */
    int msg_level;            /* TUI_MSG_* */
    uint64_t msg_until_ms;

    /* polling */
    uint64_t next_poll_ms;
    int poll_pending;         /* GETs of the current round not yet answered */
    bool poll_again;          /* an action finished during a round: poll right after it */
    bool connected;           /* the last GET /v1/cluster was answered */
    bool ever_connected;
    char conn_err[200];
    uint64_t last_ok_ms;
    double rtt_ms;

    bool colors, utf8;
} tui_t;

/* Draw the whole screen into curses' buffers and update the terminal once
 * (erase, draw, wnoutrefresh, doupdate: no flicker).  view.c. */
void tui_view_draw(tui_t *t);
/* Set up colours after initscr (has_colors decides). view.c. */
void tui_view_init_colors(tui_t *t, bool want);
/* The filtered, displayed lists, shared by drawing and key handling so the
 * cursor and the screen agree.  Each fills idx (capacity cap) with indexes
 * into the model's array and returns how many. view.c. */
int tui_view_topics(const tui_t *t, int *idx, int cap);
int tui_view_brokers(const tui_t *t, int *idx, int cap);
/* Brokers in grid order (by cell, then AZ); returns the count. */
int tui_view_grid_order(const tui_t *t, int *idx, int cap);
/* Row (cell) and column (AZ) of a broker in the Placement grid. */
void tui_view_grid_pos(const tui_t *t, const tui_broker_t *b, int *row, int *col);
/* Partitions the drill-down lists (filtered). */
int tui_view_drill_parts(const tui_t *t, int *idx, int cap);
int tui_view_latency_rows(const tui_t *t, int *idx, int cap);
int tui_view_event_rows(const tui_t *t, int *idx, int cap);
/* Body rows a view's list has at the current size (for paging). */
int tui_view_list_rows(const tui_t *t);
/* Case-insensitive substring; an empty filter matches everything. */
bool tui_match(const char *filter, const char *text);

#endif /* MK_TUI_INT_H */
