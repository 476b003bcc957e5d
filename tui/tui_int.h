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
 * to printable ASCII on the way in (mk_tui_model_*), so the drawing code can
 * count one byte as one column.
 */
#ifndef MK_TUI_INT_H
#define MK_TUI_INT_H

#include "base/base.h"
#include "tui.h"

/* ==================================================================== limits */

#define MK_TUI_NAME 256                     /* topic, group and client names (Kafka allows 249) */
#define MK_TUI_MAX_REPLICAS 16              /* replicas shown per partition */
#define MK_TUI_HISTORY 600                  /* samples kept per sparkline (one a poll: ~10 min) */
#define MK_TUI_EVENTS 1000                  /* events kept client-side */
#define MK_TUI_MAX_BODY ((size_t)32 << 20)  /* a response larger than this is refused */
#define MK_TUI_MAX_DRILL_TOPICS 200         /* topics whose partitions a broker drill-down fetches */
#define MK_TUI_TENANT_ID 40                 /* tenant ids ("default" or 1..32 of [a-z0-9-]) */
#define MK_TUI_CELL_TENANTS 256             /* a cell's tenant ids, comma-separated */
#define MK_TUI_EVENT_TEXT 1024              /* an event's message kept (longer ones end in "...") */
#define MK_TUI_TAIL 500                     /* records a topic tail keeps */
#define MK_TUI_PREVIEW 160                  /* bytes of a tailed key or value kept */

/* ===================================================================== http */

/* What a request was for; the answer is routed by it. */
typedef enum mk_tui_req_e {
    MK_TUI_REQ_CLUSTER,  /* GET /v1/cluster */
    MK_TUI_REQ_TOPICS,   /* GET /v1/topics */
    MK_TUI_REQ_TOPIC,    /* GET /v1/topics/{arg} */
    MK_TUI_REQ_RATES,    /* GET /v1/rates */
    MK_TUI_REQ_LATENCY,  /* GET /v1/latency */
    MK_TUI_REQ_GROUPS,   /* GET /v1/groups */
    MK_TUI_REQ_EVENTS,   /* GET /v1/events?since=N */
    MK_TUI_REQ_TENANTS,  /* GET /v1/tenants */
    MK_TUI_REQ_TENANT,   /* GET /v1/tenants/{arg} */
    MK_TUI_REQ_STORAGE,  /* GET /v1/storage */
    MK_TUI_REQ_GROUP,    /* GET /v1/groups/{arg} */
    MK_TUI_REQ_RECORDS,  /* GET /v1/topics/{arg}/records?partition=P&offset=O&limit=N (the tail) */
    MK_TUI_REQ_HEALTH,   /* GET /v1/health */
    MK_TUI_REQ_ACTION,   /* POST: broker or AZ lifecycle */
} mk_tui_req_t;

/* One finished transfer.  status is the HTTP status, or 0 when there was no
 * answer (err then says why: refused, timed out, ...).  body is NUL-terminated
 * and only valid during the callback. */
typedef struct mk_tui_http_result_s {
    mk_tui_req_t kind;
    const char *arg;          /* the topic name, action label, ...; "" if none */
    long status;
    const char *body;
    size_t body_len;
    const char *err;          /* "" when status != 0 */
    double elapsed_ms;
} mk_tui_http_result_t;

typedef void (*mk_tui_http_done_cb)(void *ud, const mk_tui_http_result_t *res);

typedef struct mk_tui_http_s mk_tui_http_t;

/* base_url is "http://host:port" without a trailing '/'.  0 and *out, or
 * MK_ERR_NOMEM / MK_ERR_INVALID (libcurl could not be set up). */
int mk_tui_http_new(const char *base_url, mk_tui_http_done_cb cb, void *ud, mk_tui_http_t **out);
void mk_tui_http_free(mk_tui_http_t *h);
/* Send "Authorization: Bearer <token>" with every later request (the admin
 * API wants it for every POST, and for reads with
 * minikora.admin.auth.reads).  0, MK_ERR_INVALID (a token with bytes a
 * header cannot carry) or MK_ERR_NOMEM; the token is copied. */
int mk_tui_http_set_token(mk_tui_http_t *h, const char *token);
/* Start a GET or POST of base_url + path (path already escaped; see
 * mk_tui_http_escape).  The answer comes through the callback from a later
 * mk_tui_http_wait(); a request that cannot even be started returns
 * MK_ERR_NOMEM or MK_ERR_INVALID and never calls back. */
int mk_tui_http_start(mk_tui_http_t *h, mk_tui_req_t kind, bool post, const char *path, const char *arg,
                      long timeout_ms);
/* Transfers started and not yet called back. */
int mk_tui_http_inflight(const mk_tui_http_t *h);
/* Wait at most timeout_ms for network progress or for input on fd, move
 * every transfer along, and call back the finished ones.  Returns -1 if fd
 * was hung up or closed, else 0. */
int mk_tui_http_wait(mk_tui_http_t *h, int fd, int timeout_ms);
/* Percent-escape one path segment into out; false if it does not fit. */
bool mk_tui_http_escape(mk_tui_http_t *h, const char *seg, char *out, size_t n);

/* ==================================================================== model */

/* Bytes, records and requests: rates per second over the API's window
 * (about 10 s) and totals since start. */
typedef struct mk_tui_flow_s {
    double bytes_in, bytes_out, records_in, records_out, requests;
    double bytes_in_total, bytes_out_total, records_in_total, records_out_total, requests_total;
    /* A tenant's bytes that crossed AZs (since start) and their cost, when
     * the API gives them (cross_az_bytes, cross_az_cost). */
    bool has_cross_az_bytes, has_cross_az_cost;
    double cross_az_bytes, cross_az_cost;
} mk_tui_flow_t;

typedef struct mk_tui_broker_s {
    int32_t id;
    char az[32];
    int32_t cell;
    char host[64];
    int32_t port;
    bool running;
    char state[16];           /* "running", "stopped", ... as the API says */
    int32_t leaders, replicas, urp, conns;
    bool have_flow;
    mk_tui_flow_t flow;          /* from /v1/rates */
    struct mk_tui_hist_s *hist;  /* owned: bytes in + out per second, one per rates answer */
} mk_tui_broker_t;

/* A cell of GET /v1/cluster `cells`. */
typedef struct mk_tui_cell_s {
    int32_t id;
    bool has_load;            /* "load" given: a fraction, 0..1 and beyond */
    double load;
    int32_t partitions;       /* "partitions" as given; -1 when absent */
    bool has_tenants;         /* "tenants" given */
    char tenants[MK_TUI_CELL_TENANTS]; /* their ids, ", "-separated (cut to fit) */
} mk_tui_cell_t;

/* The quota keys, in the API's spelling and the server's order
 * (producer_byte_rate, consumer_byte_rate, request_percentage,
 * controller_mutation_rate, connection_creation_rate, max_connections,
 * max_partitions, max_storage_bytes). */
#define MK_TUI_QUOTA_KEYS 8
enum { MK_TUI_Q_PRODUCE, MK_TUI_Q_FETCH, MK_TUI_Q_REQUEST, MK_TUI_Q_MUTATION, MK_TUI_Q_CONN_RATE, MK_TUI_Q_CONNS,
       MK_TUI_Q_PARTITIONS, MK_TUI_Q_STORAGE };
extern const char *const mk_tui_quota_keys[MK_TUI_QUOTA_KEYS];

/* A tenant's quotas, from the `quotas` of its GET /v1/tenants entry. */
typedef struct mk_tui_quotas_s {
    bool given;               /* the API gave them (servers before issue 11 do not) */
    uint32_t limit_set;       /* bit k: limit[k] is a limit in force */
    uint32_t use_set;         /* bit k: use[k] was given */
    double limit[MK_TUI_QUOTA_KEYS], use[MK_TUI_QUOTA_KEYS];
    int64_t throttle_ms_minute, throttle_ms_total, throttled; /* -1 when not given */
} mk_tui_quotas_t;

/* One broker's part of a tenant's quotas (the detail's `quotas.brokers`):
 * for producer_byte_rate, consumer_byte_rate and request_percentage, its
 * rate there, its share of the tenant-wide limit and a saturated broker's
 * allowance (share and cap 0: none). */
typedef struct mk_tui_quota_broker_s {
    int32_t broker;
    double rate[3], share[3], cap[3];
} mk_tui_quota_broker_t;

/* One tenant of GET /v1/tenants. */
typedef struct mk_tui_tenant_s {
    char id[MK_TUI_TENANT_ID];
    int32_t cell;             /* -1: any cell (the default tenant); -2: not given */
    int32_t conns, partitions;/* -1 when not given */
    int64_t storage;          /* bytes of its leader logs; -1 when not given */
    bool have_flow;
    mk_tui_flow_t flow;       /* its rates and totals as the entry gives them */
    mk_tui_quotas_t q;
} mk_tui_tenant_t;

/* One tenant's detail pane, from GET /v1/tenants/{id}. */
typedef struct mk_tui_tenant_detail_s {
    char id[MK_TUI_TENANT_ID];/* whose answer this is; "" none yet */
    long status;              /* 200, or 404 when the tenant is gone */
    mk_tui_tenant_t t;
    int nkeys;
    char (*topics)[MK_TUI_NAME];  /* owned: as its clients name them, sorted */
    int ntopics;
    char (*groups)[MK_TUI_NAME];  /* owned: sorted */
    int ngroups;
    struct mk_tui_named_flow_s *clients; /* owned: busiest first, as the API ranks them */
    int nclients;
    mk_tui_quota_broker_t *qbrokers;  /* owned: by broker id */
    int nqbrokers;
    int nentities;            /* entity limits (AlterClientQuotas) inside the tenant */
} mk_tui_tenant_detail_t;

typedef struct mk_tui_az_s {
    char name[32];
    int32_t running, total;
} mk_tui_az_t;

typedef struct mk_tui_topic_s {
    char name[MK_TUI_NAME];
    int32_t partitions, rf, cell, urp, offline;
    int64_t size, messages;
} mk_tui_topic_t;

typedef struct mk_tui_part_s {
    char topic[MK_TUI_NAME];
    int32_t partition, leader, epoch;
    int32_t nrep, nisr;
    int32_t rep[MK_TUI_MAX_REPLICAS], isr[MK_TUI_MAX_REPLICAS];
    int64_t hw, leo, size;    /* -1 when the API gave none */
} mk_tui_part_t;

typedef struct mk_tui_named_flow_s {
    char name[MK_TUI_NAME];
    mk_tui_flow_t flow;
} mk_tui_named_flow_t;

typedef struct mk_tui_lat_s {
    int32_t broker;
    char api[40];
    int64_t count;
    double p50, p95, p99, max;
} mk_tui_lat_t;

typedef struct mk_tui_group_s {
    char id[MK_TUI_NAME];
    char state[24];
    char protocol[32];
    int32_t members, coordinator;
    int32_t partitions;       /* with a committed offset */
    int64_t lag;              /* total over them; -1 when not given */
    struct mk_tui_hist_s *hist;  /* owned: total lag, one sample per groups answer */
} mk_tui_group_t;

/* A member of the open group, from GET /v1/groups/{id}. */
typedef struct mk_tui_member_s {
    char member_id[128];
    char client_id[64];
    char host[64];
    char assignment[256];     /* "topic:0,1 other:2", cut to fit; "" none */
} mk_tui_member_t;

/* A committed offset of the open group, with its lag and lag history. */
typedef struct mk_tui_goffset_s {
    char topic[MK_TUI_NAME];
    int32_t partition;
    int64_t offset, lag;      /* lag -1 when not given */
    char owner[64];           /* client id of the member assigned it; "" none */
    struct mk_tui_hist_s *hist;  /* owned: its lag, one sample per answer */
} mk_tui_goffset_t;

/* The open group's pane (Enter in the Groups view). */
typedef struct mk_tui_group_detail_s {
    char id[MK_TUI_NAME];     /* whose answer this is; "" none yet */
    long status;              /* 200, or 404 when the group is gone */
    char state[24], protocol[32];
    int32_t coordinator;
    int64_t lag;
    mk_tui_member_t *members; /* owned */
    int nmembers;
    mk_tui_goffset_t *offsets;/* owned: by topic, then partition */
    int noffsets;
    struct mk_tui_hist_s *hist;  /* owned: total lag */
} mk_tui_group_detail_t;

/* One tailed record (GET /v1/topics/{name}/records). */
typedef struct mk_tui_record_s {
    int64_t offset, timestamp;
    int32_t key_size, value_size;  /* -1 null */
    char key[MK_TUI_PREVIEW], value[MK_TUI_PREVIEW];
    char headers[MK_TUI_PREVIEW];  /* "k=v,k2=v2" */
} mk_tui_record_t;

typedef struct mk_tui_event_s {
    uint64_t seq;
    int64_t time_ms;
    int32_t broker;           /* -1 if none */
    char type[32];
    char message[MK_TUI_EVENT_TEXT]; /* cut ones end in "..." */
} mk_tui_event_t;

/* One row of the Storage view, from GET /v1/storage: a tenant's totals
 * (topic "") or one of its topics. */
typedef struct mk_tui_storage_row_s {
    char tenant[MK_TUI_TENANT_ID];
    char topic[MK_TUI_NAME];
    bool tiered;
    int64_t memory, local, remote, backlog;
    int32_t backlog_segments, remote_segments;
} mk_tui_storage_row_t;

/* One row of the Health view, from GET /v1/health: one broker as the
 * storage health manager sees it. */
typedef struct mk_tui_health_row_s {
    int32_t id;
    char az[16];
    int32_t cell;
    bool running, fenced;
    char state[16];
    int32_t step;                 /* ladder step: 0 none .. 4 slow */
    int64_t no_progress_ms, ops, errors, oldest_ms, probes_ok, probes_failed, restarts;
    double p99_ms, produce_ms, consume_ms;
    int32_t replaced_by, replaces;  /* 0: none */
    char probe_error[96];
} mk_tui_health_row_t;

/* A ring of samples for a sparkline. */
typedef struct mk_tui_hist_s {
    double v[MK_TUI_HISTORY];
    int n, pos;               /* samples held; next slot */
} mk_tui_hist_t;

/* Everything known about the cluster.  Arrays are owned (mk_malloc) and
 * replaced whole by each answer; mk_tui_model_free() releases them. */
typedef struct mk_tui_model_s {
    /* GET /v1/cluster */
    bool have_cluster;
    char cluster_id[64], version[32];
    int32_t controller, cell_size, topics_count, partitions_count, urp, offline, brokers_running;
    int64_t uptime_ms;
    mk_tui_broker_t *brokers;
    int nbrokers;
    mk_tui_az_t *azs;
    int nazs;
    mk_tui_cell_t *cells;     /* in the API's order */
    int ncells;
    /* GET /v1/topics */
    bool have_topics;
    mk_tui_topic_t *topics;
    int ntopics;
    /* GET /v1/topics/{name}: partitions of the topics a drill-down needs */
    mk_tui_part_t *parts;
    int nparts;
    /* GET /v1/rates */
    bool have_rates;
    double rates_window_s;
    mk_tui_flow_t cluster_flow;
    mk_tui_named_flow_t *topic_flows, *client_flows, *tenant_flows;
    int ntopic_flows, nclient_flows, ntenant_flows;
    mk_tui_hist_t hist_in, hist_out; /* cluster bytes/s */
    /* GET /v1/latency: 0 = not asked yet, 404 = the API has no such route */
    long latency_status;
    double latency_window_s;
    mk_tui_lat_t *lat;
    int nlat;
    mk_tui_hist_t hist_p99;      /* worst p99 (ms) over every broker and API */
    /* GET /v1/groups */
    bool have_groups;
    mk_tui_group_t *groups;
    int ngroups;
    /* GET /v1/tenants: 0 = not answered yet, 404 = the API has no such
     * route (the rows then come from /v1/rates `tenants`) */
    long tenants_status;
    mk_tui_tenant_t *tenants;    /* "default" first, then by id */
    int ntenants;
    /* GET /v1/tenants/{id}: the one detail pane */
    mk_tui_tenant_detail_t tenant;
    /* GET /v1/storage: 0 = not answered yet, 404 = the API has no such route */
    long storage_status;
    bool tiering;                /* tiered storage runs */
    char s3_status[16], s3_error[160], s3_url[128];
    double up_total, down_total, s3_req_total, s3_err_total;   /* since start */
    double up_rate, down_rate, s3_req_rate;                   /* per second, between two answers */
    uint64_t storage_ms;         /* when the last answer came (monotonic) */
    int64_t cache_mem, cache_mem_max, cache_disk;
    double cache_hit_rate;
    int32_t uploads_in_flight;
    int64_t uploads_failed;
    mk_tui_storage_row_t *storage;  /* tenants in the API's order, each followed by its topics */
    int nstorage;
    mk_tui_hist_t hist_up, hist_down;  /* S3 bytes/s up and down */
    /* GET /v1/groups/{id}: the open group's pane */
    mk_tui_group_detail_t group;
    /* GET /v1/topics/{name}/records: the tail of one partition, a ring,
     * oldest first from tail_head; tail_next is where the next read starts
     * (-1: not started, the first read asks for the newest records) */
    char tail_topic[MK_TUI_NAME];
    int32_t tail_partition;
    int64_t tail_next, tail_hw;
    long tail_status;         /* of the last answer: 0 none yet */
    char tail_err[160];
    mk_tui_record_t *tail;    /* owned: MK_TUI_TAIL slots */
    int ntail, tail_head;
    /* GET /v1/health: 0 = not answered yet, 404 = the API has no such route */
    long health_status;
    bool health_enabled;
    int64_t health_stall_ms, health_restart_grace_ms, health_replace_after_ms;
    mk_tui_health_row_t *health;  /* brokers in id order */
    int nhealth;
    /* GET /v1/events: a ring, oldest first from events_head */
    mk_tui_event_t *events;      /* MK_TUI_EVENTS slots */
    int nevents, events_head;
    uint64_t last_seq;        /* newest seq held: the next poll asks since= it */
} mk_tui_model_t;

int mk_tui_model_init(mk_tui_model_t *m);
void mk_tui_model_free(mk_tui_model_t *m);
/* Apply one answer body of the given kind (arg: the topic for
 * MK_TUI_REQ_TOPIC).  0, or MK_ERR_INVALID with err set (not JSON, or not the
 * shape expected) and the model unchanged, or MK_ERR_NOMEM. */
int mk_tui_model_apply(mk_tui_model_t *m, mk_tui_req_t kind, const char *arg, const char *body, size_t len, char *err,
                    size_t errlen);
/* GET /v1/groups/{id} answered 404: the group is gone. */
void mk_tui_model_group_missing(mk_tui_model_t *m, const char *id);
/* Start tailing topic's partition afresh (forget what was tailed). */
void mk_tui_model_tail_reset(mk_tui_model_t *m, const char *topic, int32_t partition);
/* The i-th newest tailed record (0 = newest), or NULL. */
const mk_tui_record_t *mk_tui_model_tail_record(const mk_tui_model_t *m, int i);
/* A tail read failed with status (or 0: no answer) and text. */
void mk_tui_model_tail_error(mk_tui_model_t *m, long status, const char *text);
/* Forget the partitions of topics no longer listed. */
void mk_tui_model_prune_parts(mk_tui_model_t *m);
/* The error message of an admin error body ({"error","message"}), or of
 * any body, into out ("HTTP 404" when there is nothing better). */
void mk_tui_model_error_text(long status, const char *body, size_t len, char *out, size_t n);
/* The outcome of a successful action body, as a sentence. */
void mk_tui_model_action_text(const char *label, const char *body, size_t len, char *out, size_t n);

mk_tui_broker_t *mk_tui_model_broker(mk_tui_model_t *m, int32_t id);
const mk_tui_named_flow_t *mk_tui_model_topic_flow(const mk_tui_model_t *m, const char *topic);
/* A tenant's rates: its /v1/rates entry when listed there (it may carry
 * cross_az_*), else what GET /v1/tenants gave; NULL when neither has it. */
const mk_tui_flow_t *mk_tui_model_tenant_flow(const mk_tui_model_t *m, const char *id);
/* The server has no GET /v1/tenants (404): build the tenant rows from the
 * rates' `tenants` from now on. */
void mk_tui_model_tenants_missing(mk_tui_model_t *m);
/* GET /v1/tenants/{id} answered 404: the tenant is gone. */
void mk_tui_model_tenant_missing(mk_tui_model_t *m, const char *id);
/* The i-th newest event (0 = newest), or NULL. */
const mk_tui_event_t *mk_tui_model_event(const mk_tui_model_t *m, int i);

void mk_tui_hist_push(mk_tui_hist_t *h, double v);
/* Sample i back from the newest (0 = newest); 0 past what is held. */
double mk_tui_hist_get(const mk_tui_hist_t *h, int i);

/* Number formats (out gets a short NUL-terminated text). */
void mk_tui_fmt_bytes(double v, char *out, size_t n);        /* "1.2 MB" */
void mk_tui_fmt_count(double v, char *out, size_t n);        /* "3.4k" */
void mk_tui_fmt_ms(double v, char *out, size_t n);           /* "0.21", "12.5", "1.2s" */
void mk_tui_fmt_duration(int64_t ms, char *out, size_t n);   /* "3d04h", "1h02m", "4m05s" */
void mk_tui_fmt_cost(double v, char *out, size_t n);         /* "$0", "<$0.0001", "$0.0123", "$12.50" */
void mk_tui_fmt_short(double v, char *out, size_t n);        /* at most 4 characters: "980", "9.8k", "98k", "1.0M" */
void mk_tui_fmt_secs(int64_t ms, char *out, size_t n);       /* a throttle time: "0", "850ms", "4.2s", "75s", "12m" */
/* A sparkline of the newest `width` samples of values (newest on the
 * right) scaled to their maximum: Unicode blocks when utf8, else ASCII. */
void mk_tui_fmt_spark(const double *newest_first, int count, int width, bool utf8, char *out, size_t n);

/* ===================================================================== state */

enum { MK_TUI_V_OVERVIEW, MK_TUI_V_PLACEMENT, MK_TUI_V_LATENCY, MK_TUI_V_TENANTS, MK_TUI_V_EVENTS, MK_TUI_V_STORAGE,
       MK_TUI_V_GROUPS, MK_TUI_V_HEALTH,
       MK_TUI_V_COUNT };
enum { MK_TUI_DRILL_NONE, MK_TUI_DRILL_BROKER, MK_TUI_DRILL_TOPIC };
enum { MK_TUI_MODE_NORMAL, MK_TUI_MODE_FILTER, MK_TUI_MODE_CONFIRM, MK_TUI_MODE_HELP };
enum { MK_TUI_ACT_STOP, MK_TUI_ACT_START, MK_TUI_ACT_CRASH, MK_TUI_ACT_AZ_DOWN, MK_TUI_ACT_AZ_UP, MK_TUI_ACT_DRAIN,
       MK_TUI_ACT_REMOVE };
enum { MK_TUI_MSG_INFO, MK_TUI_MSG_OK, MK_TUI_MSG_ERR };

/* The UI: what is selected, where each list is scrolled, what is being
 * typed.  Owned by mk_tui_main for the life of the screen. */
typedef struct mk_tui_s {
    mk_tui_model_t m;
    mk_tui_http_t *http;
    char admin[512];          /* base URL */
    int interval_ms;          /* between polls */

    int view;                 /* MK_TUI_V_* */
    int mode;                 /* MK_TUI_MODE_* */
    int32_t sel_broker;       /* the broker acting keys apply to; -1 none */
    bool focus_topics;        /* Placement: cursor in the topic list, not the grid */
    int sel_topic;            /* Placement: index in the filtered topic list */
    int drill;                /* MK_TUI_DRILL_* (Placement) */
    int32_t drill_broker;
    char drill_topic[MK_TUI_NAME];
    char sel_tenant[MK_TUI_TENANT_ID]; /* Tenants: the selected row's id */
    bool tenant_open;         /* Tenants: the selected tenant's detail pane is shown */
    int tenant_scroll;        /* Tenants: first row of the pane's topic and group lists */
    int scroll[MK_TUI_V_COUNT];  /* first row shown of each view's list */
    int sort_col[MK_TUI_V_COUNT];  /* 0: the API's order; k: by the view's column k (o cycles) */
    bool sort_rev[MK_TUI_V_COUNT]; /* O: the other way round */
    char sel_group[MK_TUI_NAME];   /* Groups: the selected row's id */
    bool group_open;          /* Groups: the selected group's pane is shown */
    int group_scroll;         /* Groups: first row of the pane's partition list */
    bool tail_on;             /* Placement topic drill-down: the tail replaces the partitions (t) */
    int tail_scroll;          /* rows scrolled back from the newest record */
    int drill_scroll;
    char filter[MK_TUI_V_COUNT][64];

    char input[64];           /* the filter being typed */
    int confirm_act;          /* MK_TUI_ACT_* awaiting y/n */
    int32_t confirm_broker;
    char confirm_az[32];
    char prompt[160];

    char msg[240];            /* last action outcome or notice */
    int msg_level;            /* MK_TUI_MSG_* */
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
} mk_tui_t;

/* Draw the whole screen into curses' buffers and update the terminal once
 * (erase, draw, wnoutrefresh, doupdate: no flicker).  view.c. */
void mk_tui_view_draw(mk_tui_t *t);
/* Set up colours after initscr (has_colors decides). view.c. */
void mk_tui_view_init_colors(mk_tui_t *t, bool want);
/* The filtered, displayed lists, shared by drawing and key handling so the
 * cursor and the screen agree.  Each fills idx (capacity cap) with indexes
 * into the model's array and returns how many. view.c. */
int mk_tui_view_topics(const mk_tui_t *t, int *idx, int cap);
int mk_tui_view_brokers(const mk_tui_t *t, int *idx, int cap);
/* Brokers in grid order (by cell, then AZ); returns the count. */
int mk_tui_view_grid_order(const mk_tui_t *t, int *idx, int cap);
/* Row (cell) and column (AZ) of a broker in the Placement grid. */
void mk_tui_view_grid_pos(const mk_tui_t *t, const mk_tui_broker_t *b, int *row, int *col);
/* Partitions the drill-down lists (filtered). */
int mk_tui_view_drill_parts(const mk_tui_t *t, int *idx, int cap);
int mk_tui_view_latency_rows(const mk_tui_t *t, int *idx, int cap);
int mk_tui_view_event_rows(const mk_tui_t *t, int *idx, int cap);
/* Tenant rows (indexes into m.tenants), filtered. */
int mk_tui_view_tenant_rows(const mk_tui_t *t, int *idx, int cap);
/* Group rows (indexes into m.groups), filtered and sorted. */
int mk_tui_view_group_rows(const mk_tui_t *t, int *idx, int cap);
/* Columns a view can be sorted by (o cycles through 0..n); 0 for a view
 * without sorting. */
int mk_tui_view_sort_columns(int view);
/* Health rows (indexes into m.health), filtered by broker id or state. */
int mk_tui_view_health_rows(const mk_tui_t *t, int *idx, int cap);
/* Storage rows (indexes into m.storage), filtered by tenant or topic. */
int mk_tui_view_storage_rows(const mk_tui_t *t, int *idx, int cap);
/* Body rows a view's list has at the current size (for paging). */
int mk_tui_view_list_rows(const mk_tui_t *t);
/* Case-insensitive substring; an empty filter matches everything. */
bool mk_tui_match(const char *filter, const char *text);

#endif /* MK_TUI_INT_H */
