/*
 * tui.c -- `minikora tui`: the loop, the keys, the confirmations and the
 * admin API calls behind them.
 *
 * The loop, on one thread:
 *   1. when the previous round is answered and the interval has passed,
 *      start a poll round: GET /v1/cluster, /v1/topics, /v1/rates,
 *      /v1/latency, /v1/groups, /v1/tenants, /v1/storage, /v1/events?since=<last>, plus
 *      the topic details a partition drill-down needs, the tenant an open
 *      tenant pane shows, the group an open group pane shows, and the next
 *      records of a tailed partition (all at once, non-blocking);
 *   2. draw the screen (view.c);
 *   3. sleep in mk_tui_http_wait() until a key, a network event, or the next
 *      deadline (at most 250 ms);
 *   4. read every pending key (nodelay getch) and act on it.
 * Rounds never overlap, so a slow server slows the refresh, never the keys;
 * every GET has a short timeout, so a dead server is reported within a
 * second ("admin UNREACHABLE") while the last data stays on screen, marked
 * STALE.
 *
 * Acting keys (s, S, c, a, A) only ask; y then sends the POST, and any
 * other key cancels.  The outcome shows in the status line, and a new poll
 * round follows at once so the screen shows the consequence.
 */
#include "tui_int.h"

#include <curses.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GET_TIMEOUT_MS 900
#define DRILL_TIMEOUT_MS 3000   /* many topic details may queue behind each other */
#define ACTION_TIMEOUT_MS 10000 /* a controlled shutdown moves leadership first */
#define MSG_MS 8000             /* how long an outcome stays in the status line */
#define LATENCY_RETRY_POLLS 30  /* ask again for a missing /v1/latency this often */

static volatile sig_atomic_t got_signal;

static void on_signal(int sig) { got_signal = sig; }

static void usage(FILE *out)
{
    fprintf(out, "usage: minikora tui [--admin URL] [--admin-token T] [--interval MS] [--no-color]\n"
                 "\n"
                 "Watch and steer a running minikora cluster through its admin HTTP API.\n"
                 "  --admin URL      admin API (default $MINIKORA_ADMIN or http://127.0.0.1:8080)\n"
                 "  --admin-token T  bearer token for the acting keys (default $MINIKORA_ADMIN_TOKEN;\n"
                 "                   the server writes it to DATA/admin-token and its ready file)\n"
                 "  --interval MS    refresh period (default 1000, at least 200)\n"
                 "  --no-color       no colours (also when NO_COLOR is set)\n"
                 "Keys: Tab and 1-7 switch views, arrows/hjkl move, Enter drills in, / filters,\n"
                 "o/O sort, t tails a topic (in its drill-down), ? help, q quits;\n"
                 "s/S/c stop/start/crash a broker, a/A take an AZ down/up,\n"
                 "D drains a broker, X removes a drained one.\n");
}

static void say(mk_tui_t *t, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(mk_tui_t *t, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->msg, sizeof(t->msg), fmt, ap);
    va_end(ap);
    t->msg_level = level;
    t->msg_until_ms = mk_mono_ms() + MSG_MS;
}

/* ================================================================ polling */

static void get(mk_tui_t *t, mk_tui_req_t kind, const char *path, const char *arg, long timeout_ms)
{
    if (mk_tui_http_start(t->http, kind, false, path, arg, timeout_ms) == 0)
        t->poll_pending++;
}

static void get_topic(mk_tui_t *t, const char *name, long timeout_ms)
{
    char esc[3 * MK_TUI_NAME + 1], path[3 * MK_TUI_NAME + 32];
    if (!mk_tui_http_escape(t->http, name, esc, sizeof(esc)))
        return;
    snprintf(path, sizeof(path), "/v1/topics/%s", esc);
    get(t, MK_TUI_REQ_TOPIC, path, name, timeout_ms);
}

static void get_tenant(mk_tui_t *t, const char *id)
{
    char esc[3 * MK_TUI_TENANT_ID + 1], path[3 * MK_TUI_TENANT_ID + 32];
    if (!mk_tui_http_escape(t->http, id, esc, sizeof(esc)))
        return;
    snprintf(path, sizeof(path), "/v1/tenants/%s", esc);
    get(t, MK_TUI_REQ_TENANT, path, id, GET_TIMEOUT_MS);
}

/* The open group's pane (Groups view). */
static void get_group(mk_tui_t *t, const char *id)
{
    char esc[3 * MK_TUI_NAME + 1], path[3 * MK_TUI_NAME + 32];
    if (!mk_tui_http_escape(t->http, id, esc, sizeof(esc)))
        return;
    snprintf(path, sizeof(path), "/v1/groups/%s", esc);
    get(t, MK_TUI_REQ_GROUP, path, id, GET_TIMEOUT_MS);
}

/* The tail of a topic's partition: the newest records first, then what
 * follows the last answer (GET /v1/topics/{name}/records). */
static void get_records(mk_tui_t *t)
{
    char esc[3 * MK_TUI_NAME + 1], path[3 * MK_TUI_NAME + 96];
    const mk_tui_model_t *m = &t->m;
    if (!mk_tui_http_escape(t->http, m->tail_topic, esc, sizeof(esc)))
        return;
    snprintf(path, sizeof(path), "/v1/topics/%s/records?partition=%d&offset=%lld&limit=%d", esc, (int)m->tail_partition,
             (long long)m->tail_next, m->tail_next < 0 ? 100 : 200);
    get(t, MK_TUI_REQ_RECORDS, path, m->tail_topic, GET_TIMEOUT_MS);
}

static unsigned long rounds;

static void poll_start(mk_tui_t *t)
{
    char path[64];
    rounds++;
    get(t, MK_TUI_REQ_CLUSTER, "/v1/cluster", "", GET_TIMEOUT_MS);
    get(t, MK_TUI_REQ_TOPICS, "/v1/topics", "", GET_TIMEOUT_MS);
    get(t, MK_TUI_REQ_RATES, "/v1/rates", "", GET_TIMEOUT_MS);
    get(t, MK_TUI_REQ_GROUPS, "/v1/groups", "", GET_TIMEOUT_MS);
    snprintf(path, sizeof(path), "/v1/events?since=%llu", (unsigned long long)t->m.last_seq);
    get(t, MK_TUI_REQ_EVENTS, path, "", GET_TIMEOUT_MS);
    if (t->m.latency_status != 404 || rounds % LATENCY_RETRY_POLLS == 0)
        get(t, MK_TUI_REQ_LATENCY, "/v1/latency", "", GET_TIMEOUT_MS);
    if (t->m.tenants_status != 404 || rounds % LATENCY_RETRY_POLLS == 0)
        get(t, MK_TUI_REQ_TENANTS, "/v1/tenants", "", GET_TIMEOUT_MS);
    if (t->m.storage_status != 404 || rounds % LATENCY_RETRY_POLLS == 0)
        get(t, MK_TUI_REQ_STORAGE, "/v1/storage", "", GET_TIMEOUT_MS);
    if (t->m.health_status != 404 || rounds % LATENCY_RETRY_POLLS == 0)
        get(t, MK_TUI_REQ_HEALTH, "/v1/health", "", GET_TIMEOUT_MS);
    if (t->view == MK_TUI_V_TENANTS && t->tenant_open && t->sel_tenant[0])
        get_tenant(t, t->sel_tenant);
    if (t->view == MK_TUI_V_GROUPS && t->group_open && t->sel_group[0])
        get_group(t, t->sel_group);
    if (t->view == MK_TUI_V_PLACEMENT && t->drill == MK_TUI_DRILL_TOPIC && t->tail_on)
        get_records(t);
    if (t->view == MK_TUI_V_PLACEMENT && t->drill == MK_TUI_DRILL_TOPIC)
        get_topic(t, t->drill_topic, GET_TIMEOUT_MS);
    else if (t->view == MK_TUI_V_PLACEMENT && t->drill == MK_TUI_DRILL_BROKER)
        for (int i = 0; i < t->m.ntopics && i < MK_TUI_MAX_DRILL_TOPICS; i++)
            get_topic(t, t->m.topics[i].name, DRILL_TIMEOUT_MS);
    t->next_poll_ms = mk_mono_ms() + (uint64_t)t->interval_ms;
}

/* Poll again as soon as the round in flight (if any) is answered. */
static void poll_soon(mk_tui_t *t)
{
    if (t->poll_pending)
        t->poll_again = true;
    else
        t->next_poll_ms = 0;
}

static void on_action(mk_tui_t *t, const mk_tui_http_result_t *r)
{
    char text[200];
    if (r->status >= 200 && r->status < 300) {
        mk_tui_model_action_text(r->arg, r->body, r->body_len, text, sizeof(text));
        say(t, MK_TUI_MSG_OK, "%s", text);
    } else if (r->status) {
        mk_tui_model_error_text(r->status, r->body, r->body_len, text, sizeof(text));
        say(t, MK_TUI_MSG_ERR, "%s failed: %s", r->arg, text);
    } else {
        say(t, MK_TUI_MSG_ERR, "%s failed: %s", r->arg, r->err);
    }
    poll_soon(t);
}

/* Every answer comes here (from inside mk_tui_http_wait). */
static void on_result(void *ud, const mk_tui_http_result_t *r)
{
    mk_tui_t *t = ud;
    if (r->kind == MK_TUI_REQ_ACTION) {
        on_action(t, r);
        return;
    }
    if (--t->poll_pending == 0 && t->poll_again) {
        t->poll_again = false;
        t->next_poll_ms = 0;
    }
    char err[200] = "";
    if (r->kind == MK_TUI_REQ_RECORDS && r->status != 200) {
        char text[160];
        if (r->status)
            mk_tui_model_error_text(r->status, r->body, r->body_len, text, sizeof(text));
        mk_tui_model_tail_error(&t->m, r->status, r->status ? text : r->err);
        return;
    }
    if (r->status == 0) {
        snprintf(err, sizeof(err), "%s", r->err);
    } else if (r->status == 404 && r->kind == MK_TUI_REQ_LATENCY) {
        t->m.latency_status = 404;
        return;
    } else if (r->status == 404 && r->kind == MK_TUI_REQ_TOPIC) {
        return; /* deleted since the list was read; the next list drops it */
    } else if (r->status == 404 && r->kind == MK_TUI_REQ_TENANTS) {
        mk_tui_model_tenants_missing(&t->m); /* an older server: rows from /v1/rates */
        return;
    } else if (r->status == 404 && r->kind == MK_TUI_REQ_STORAGE) {
        t->m.storage_status = 404; /* an older server: no tiered storage */
        return;
    } else if ((r->status == 404 || r->status == 503) && r->kind == MK_TUI_REQ_HEALTH) {
        t->m.health_status = r->status; /* an older server, or no health manager */
        return;
    } else if (r->status == 404 && r->kind == MK_TUI_REQ_TENANT) {
        mk_tui_model_tenant_missing(&t->m, r->arg);
        return;
    } else if (r->status == 404 && r->kind == MK_TUI_REQ_GROUP) {
        mk_tui_model_group_missing(&t->m, r->arg);
        return;
    } else if (r->status != 200) {
        char text[160];
        mk_tui_model_error_text(r->status, r->body, r->body_len, text, sizeof(text));
        snprintf(err, sizeof(err), "HTTP %ld: %s", r->status, text);
    } else {
        mk_tui_model_apply(&t->m, r->kind, r->arg, r->body, r->body_len, err, sizeof(err));
    }
    if (r->kind != MK_TUI_REQ_CLUSTER)
        return;
    /* The cluster answer decides whether we call ourselves connected. */
    if (err[0]) {
        t->connected = false;
        snprintf(t->conn_err, sizeof(t->conn_err), "%s", err);
        return;
    }
    t->connected = t->ever_connected = true;
    t->conn_err[0] = 0;
    t->last_ok_ms = mk_mono_ms();
    t->rtt_ms = r->elapsed_ms;
    if (!mk_tui_model_broker(&t->m, t->sel_broker) && t->m.nbrokers > 0)
        t->sel_broker = t->m.brokers[0].id;
}

/* ================================================================ actions */

static void ask(mk_tui_t *t, int act)
{
    mk_tui_broker_t *b = mk_tui_model_broker(&t->m, t->sel_broker);
    if (!b) {
        say(t, MK_TUI_MSG_ERR, "no broker selected (select one in Overview or Placement)");
        return;
    }
    static const char *verbs[] = {"Stop (controlled shutdown)", "Start", "Crash", "Take down", "Bring up",
                                  "Drain", "Remove (retire)"};
    t->confirm_act = act;
    t->confirm_broker = b->id;
    snprintf(t->confirm_az, sizeof(t->confirm_az), "%s", b->az);
    if (act == MK_TUI_ACT_AZ_DOWN || act == MK_TUI_ACT_AZ_UP) {
        int n = 0;
        for (int i = 0; i < t->m.nbrokers; i++)
            n += strcmp(t->m.brokers[i].az, b->az) == 0;
        snprintf(t->prompt, sizeof(t->prompt), "%s AZ %s (%d brokers)?", verbs[act], b->az, n);
    } else {
        snprintf(t->prompt, sizeof(t->prompt), "%s broker %d (%s, cell %d, now %s)?", verbs[act], b->id, b->az,
                 b->cell, b->state);
    }
    t->mode = MK_TUI_MODE_CONFIRM;
}

static void act(mk_tui_t *t)
{
    char path[160], label[96], esc[100];
    switch (t->confirm_act) {
    case MK_TUI_ACT_STOP:
    case MK_TUI_ACT_START:
    case MK_TUI_ACT_CRASH:
    case MK_TUI_ACT_DRAIN:
    case MK_TUI_ACT_REMOVE: {
        const char *verb = t->confirm_act == MK_TUI_ACT_STOP    ? "stop"
                           : t->confirm_act == MK_TUI_ACT_START ? "start"
                           : t->confirm_act == MK_TUI_ACT_DRAIN ? "drain"
                           : t->confirm_act == MK_TUI_ACT_REMOVE ? "remove"
                                                                : "crash";
        snprintf(path, sizeof(path), "/v1/brokers/%d/%s", t->confirm_broker, verb);
        snprintf(label, sizeof(label), "%s broker %d", verb, t->confirm_broker);
        break;
    }
    default: {
        bool up = t->confirm_act == MK_TUI_ACT_AZ_UP;
        if (!mk_tui_http_escape(t->http, t->confirm_az, esc, sizeof(esc))) {
            say(t, MK_TUI_MSG_ERR, "AZ name too long");
            return;
        }
        snprintf(path, sizeof(path), "/v1/azs/%s/%s", esc, up ? "up" : "down");
        snprintf(label, sizeof(label), "AZ %s %s", t->confirm_az, up ? "up" : "down");
        break;
    }
    }
    if (mk_tui_http_start(t->http, MK_TUI_REQ_ACTION, true, path, label, ACTION_TIMEOUT_MS) < 0)
        say(t, MK_TUI_MSG_ERR, "%s: could not start the request", label);
    else
        say(t, MK_TUI_MSG_INFO, "%s ...", label);
}

/* ================================================================ moving */

/* The topic drill-down's tail: start it on partition, or stop it. */
static void tail_start(mk_tui_t *t, int32_t partition)
{
    t->tail_on = true;
    t->tail_scroll = 0;
    mk_tui_model_tail_reset(&t->m, t->drill_topic, partition);
    poll_soon(t);
}

/* Move the tail to the partition dir (+1/-1) away, wrapping. */
static void tail_partition(mk_tui_t *t, int dir)
{
    int32_t n = 0;
    for (int i = 0; i < t->m.ntopics; i++)
        if (strcmp(t->m.topics[i].name, t->drill_topic) == 0)
            n = t->m.topics[i].partitions;
    if (n <= 1)
        return;
    tail_start(t, ((t->m.tail_partition + dir) % n + n) % n);
}

/* t: tail the drilled-into topic (Placement topic drill-down), or stop. */
static void tail_toggle(mk_tui_t *t)
{
    if (t->view != MK_TUI_V_PLACEMENT || t->drill != MK_TUI_DRILL_TOPIC) {
        say(t, MK_TUI_MSG_INFO, "t tails a topic: Enter on a topic in Placement, then t");
        return;
    }
    if (t->tail_on)
        t->tail_on = false;
    else
        tail_start(t, 0);
}

/* o: sort the current list by its next column (then the API's order
 * again); O: the other way round. */
static void sort_key(mk_tui_t *t, bool reverse)
{
    int n = mk_tui_view_sort_columns(t->view);
    if (!n) {
        say(t, MK_TUI_MSG_INFO, "this view has no sortable list");
        return;
    }
    if (reverse)
        t->sort_rev[t->view] = !t->sort_rev[t->view];
    else
        t->sort_col[t->view] = (t->sort_col[t->view] + 1) % (n + 1);
}

static void drill(mk_tui_t *t, int kind, int32_t broker, const char *topic)
{
    t->view = MK_TUI_V_PLACEMENT;
    t->drill = kind;
    t->drill_broker = broker;
    snprintf(t->drill_topic, sizeof(t->drill_topic), "%s", topic ? topic : "");
    t->drill_scroll = 0;
    t->tail_on = false;
    poll_soon(t);
}

/* The broker in grid row `row` whose column is nearest to `col`, or NULL. */
static mk_tui_broker_t *grid_nearest(mk_tui_t *t, int row, int col)
{
    mk_tui_broker_t *best = NULL;
    int bestd = 1 << 30;
    for (int i = 0; i < t->m.nbrokers; i++) {
        int r, c;
        mk_tui_view_grid_pos(t, &t->m.brokers[i], &r, &c);
        int d = abs(c - col);
        if (r == row && d < bestd) {
            best = &t->m.brokers[i];
            bestd = d;
        }
    }
    return best;
}

/* Placement grid: dx moves along a cell row (AZs), dy between cells; below
 * the last cell the cursor enters the topic list. */
static void move_grid(mk_tui_t *t, int dy, int dx)
{
    mk_tui_broker_t *b = mk_tui_model_broker(&t->m, t->sel_broker);
    if (!b)
        return;
    int row, col;
    mk_tui_view_grid_pos(t, b, &row, &col);
    if (dx) {
        mk_tui_broker_t *best = NULL;
        int bestd = 1 << 30;
        for (int i = 0; i < t->m.nbrokers; i++) {
            int r, c;
            mk_tui_view_grid_pos(t, &t->m.brokers[i], &r, &c);
            int d = (c - col) * dx;
            if (r == row && d > 0 && d < bestd) {
                best = &t->m.brokers[i];
                bestd = d;
            }
        }
        if (best)
            t->sel_broker = best->id;
        return;
    }
    for (int r = row + dy; r >= 0 && r < t->m.ncells; r += dy) {
        mk_tui_broker_t *n = grid_nearest(t, r, col);
        if (n) {
            t->sel_broker = n->id;
            return;
        }
    }
    if (dy > 0 && t->m.ntopics > 0) {
        t->focus_topics = true;
        t->sel_topic = 0;
    }
}

/* Tenants: move the selection step rows through the (filtered) list. */
static void move_tenant(mk_tui_t *t, int step)
{
    int *idx = mk_malloc(sizeof(int) * (size_t)(t->m.ntenants + 1));
    if (!idx)
        return;
    int n = mk_tui_view_tenant_rows(t, idx, t->m.ntenants), pos = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(t->m.tenants[idx[i]].id, t->sel_tenant) == 0)
            pos = i;
    pos += step;
    pos = pos < 0 ? 0 : pos >= n ? n - 1 : pos;
    if (n > 0)
        snprintf(t->sel_tenant, sizeof(t->sel_tenant), "%s", t->m.tenants[idx[pos]].id);
    mk_free(idx);
}

/* Groups: move the selection step rows through the (filtered, sorted) list. */
static void move_group(mk_tui_t *t, int step)
{
    int *idx = mk_malloc(sizeof(int) * (size_t)(t->m.ngroups + 1));
    if (!idx)
        return;
    int n = mk_tui_view_group_rows(t, idx, t->m.ngroups), pos = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(t->m.groups[idx[i]].id, t->sel_group) == 0)
            pos = i;
    pos += step;
    pos = pos < 0 ? 0 : pos >= n ? n - 1 : pos;
    if (n > 0)
        snprintf(t->sel_group, sizeof(t->sel_group), "%s", t->m.groups[idx[pos]].id);
    mk_free(idx);
}

/* Groups view: the list, or the open group's partitions. */
static void move_groups(mk_tui_t *t, int step, int dx)
{
    if (t->group_open) {
        if (dx < 0) {
            t->group_open = false;
            return;
        }
        t->group_scroll += step;
        if (t->group_scroll < 0)
            t->group_scroll = 0;
        return; /* the upper bound is applied when drawing */
    }
    if (!dx)
        move_group(t, step);
}

static void move_cursor(mk_tui_t *t, int dy, int dx, int page)
{
    int rows = mk_tui_view_list_rows(t);
    int step = page ? page * rows : dy;
    switch (t->view) {
    case MK_TUI_V_OVERVIEW: {
        if (!t->m.nbrokers || dx)
            return;
        int *idx = mk_malloc(sizeof(int) * (size_t)t->m.nbrokers);
        if (!idx)
            return;
        int n = mk_tui_view_brokers(t, idx, t->m.nbrokers), pos = 0;
        for (int i = 0; i < n; i++)
            if (t->m.brokers[idx[i]].id == t->sel_broker)
                pos = i;
        pos += step;
        pos = pos < 0 ? 0 : pos >= n ? n - 1 : pos;
        if (n > 0)
            t->sel_broker = t->m.brokers[idx[pos]].id;
        mk_free(idx);
        return;
    }
    case MK_TUI_V_GROUPS: move_groups(t, step, dx); return;
    case MK_TUI_V_PLACEMENT:
        if (t->drill && t->tail_on && t->drill == MK_TUI_DRILL_TOPIC) {
            if (dx) { /* left/right: the previous or next partition */
                tail_partition(t, dx);
                return;
            }
            t->tail_scroll -= step; /* up: back in time */
            if (t->tail_scroll < 0)
                t->tail_scroll = 0;
            return;
        }
        if (t->drill) {
            if (dx < 0) {
                t->drill = MK_TUI_DRILL_NONE;
                return;
            }
            t->drill_scroll += step;
            if (t->drill_scroll < 0)
                t->drill_scroll = 0;
            return;
        }
        if (!t->focus_topics) {
            if (page > 0 && t->m.ntopics > 0) {
                t->focus_topics = true;
                t->sel_topic = 0;
            } else if (!page) {
                move_grid(t, dy, dx);
            }
            return;
        }
        if (dx)
            return;
        t->sel_topic += step;
        if (t->sel_topic < 0) {
            t->sel_topic = 0;
            if (!page || page < 0)
                t->focus_topics = false;
        }
        return; /* the upper bound is applied when drawing */
    case MK_TUI_V_TENANTS:
        if (t->tenant_open) {
            if (dx < 0) {
                t->tenant_open = false;
                return;
            }
            t->tenant_scroll += step;
            if (t->tenant_scroll < 0)
                t->tenant_scroll = 0;
            return; /* the upper bound is applied when drawing */
        }
        if (!dx)
            move_tenant(t, step);
        return;
    default:
        if (dx)
            return;
        t->scroll[t->view] += step;
        if (t->scroll[t->view] < 0)
            t->scroll[t->view] = 0;
        return;
    }
}

static void enter(mk_tui_t *t)
{
    if (t->view == MK_TUI_V_GROUPS) {
        if (!t->group_open && t->sel_group[0]) {
            t->group_open = true;
            t->group_scroll = 0;
            poll_soon(t);
        }
        return;
    }
    if (t->view == MK_TUI_V_TENANTS) {
        if (!t->tenant_open && t->sel_tenant[0]) {
            t->tenant_open = true;
            t->tenant_scroll = 0;
            poll_soon(t);
        }
        return;
    }
    if (t->view == MK_TUI_V_OVERVIEW && mk_tui_model_broker(&t->m, t->sel_broker)) {
        t->focus_topics = false;
        drill(t, MK_TUI_DRILL_BROKER, t->sel_broker, NULL);
        return;
    }
    if (t->view != MK_TUI_V_PLACEMENT || t->drill)
        return;
    if (t->focus_topics) {
        int *idx = mk_malloc(sizeof(int) * (size_t)(t->m.ntopics + 1));
        if (!idx)
            return;
        int n = mk_tui_view_topics(t, idx, t->m.ntopics);
        if (t->sel_topic >= 0 && t->sel_topic < n)
            drill(t, MK_TUI_DRILL_TOPIC, -1, t->m.topics[idx[t->sel_topic]].name);
        mk_free(idx);
    } else if (mk_tui_model_broker(&t->m, t->sel_broker)) {
        drill(t, MK_TUI_DRILL_BROKER, t->sel_broker, NULL);
    }
}

/* ================================================================== keys */

static bool is_enter(int ch) { return ch == '\n' || ch == '\r' || ch == KEY_ENTER; }
static bool is_backspace(int ch) { return ch == KEY_BACKSPACE || ch == 127 || ch == 8; }

static void filter_key(mk_tui_t *t, int ch)
{
    size_t len = strlen(t->input);
    if (is_enter(ch)) {
        t->mode = MK_TUI_MODE_NORMAL;
    } else if (ch == 27) {
        t->input[0] = 0;
        t->mode = MK_TUI_MODE_NORMAL;
    } else if (is_backspace(ch)) {
        if (len)
            t->input[len - 1] = 0;
    } else if (ch >= 0x20 && ch < 0x7f && len + 1 < sizeof(t->input)) {
        t->input[len] = (char)ch;
        t->input[len + 1] = 0;
    } else {
        return;
    }
    /* The list follows as one types. */
    snprintf(t->filter[t->view], sizeof(t->filter[0]), "%s", t->input);
    t->scroll[t->view] = 0;
    t->sel_topic = 0;
    t->drill_scroll = 0;
}

/* One key; false when the user quits. */
static bool key(mk_tui_t *t, int ch)
{
    if (ch == KEY_RESIZE) {
        clearok(curscr, TRUE); /* repaint everything once at the new size */
        return true;
    }
    switch (t->mode) {
    case MK_TUI_MODE_HELP:
        t->mode = MK_TUI_MODE_NORMAL;
        return true;
    case MK_TUI_MODE_CONFIRM:
        t->mode = MK_TUI_MODE_NORMAL;
        if (ch == 'y' || ch == 'Y')
            act(t);
        else
            say(t, MK_TUI_MSG_INFO, "cancelled");
        return true;
    case MK_TUI_MODE_FILTER:
        filter_key(t, ch);
        return true;
    default: break;
    }
    switch (ch) {
    case 'q':
    case 'Q': return false;
    case '\t': t->view = (t->view + 1) % MK_TUI_V_COUNT; break;
    case KEY_BTAB: t->view = (t->view + MK_TUI_V_COUNT - 1) % MK_TUI_V_COUNT; break;
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8': t->view = ch - '1'; break;
    case '?': t->mode = MK_TUI_MODE_HELP; break;
    case '/':
        snprintf(t->input, sizeof(t->input), "%s", t->filter[t->view]);
        t->mode = MK_TUI_MODE_FILTER;
        break;
    case 27:
        if (t->view == MK_TUI_V_PLACEMENT && t->drill && t->tail_on)
            t->tail_on = false;
        else if (t->view == MK_TUI_V_GROUPS && t->group_open)
            t->group_open = false;
        else if (t->view == MK_TUI_V_PLACEMENT && t->drill)
            t->drill = MK_TUI_DRILL_NONE;
        else if (t->view == MK_TUI_V_TENANTS && t->tenant_open)
            t->tenant_open = false;
        else
            t->filter[t->view][0] = 0;
        break;
    case 'r': poll_soon(t); break;
    case 'o': sort_key(t, false); break;
    case 'O': sort_key(t, true); break;
    case 't': tail_toggle(t); break;
    case 's': ask(t, MK_TUI_ACT_STOP); break;
    case 'S': ask(t, MK_TUI_ACT_START); break;
    case 'c': ask(t, MK_TUI_ACT_CRASH); break;
    case 'a': ask(t, MK_TUI_ACT_AZ_DOWN); break;
    case 'A': ask(t, MK_TUI_ACT_AZ_UP); break;
    case 'D': ask(t, MK_TUI_ACT_DRAIN); break;
    case 'X': ask(t, MK_TUI_ACT_REMOVE); break;
    case KEY_UP:
    case 'k': move_cursor(t, -1, 0, 0); break;
    case KEY_DOWN:
    case 'j': move_cursor(t, 1, 0, 0); break;
    case KEY_LEFT:
    case 'h': move_cursor(t, 0, -1, 0); break;
    case KEY_RIGHT:
    case 'l': move_cursor(t, 0, 1, 0); break;
    case KEY_PPAGE: move_cursor(t, 0, 0, -1); break;
    case KEY_NPAGE:
    case ' ': move_cursor(t, 0, 0, 1); break;
    case KEY_HOME:
    case 'g': move_cursor(t, 0, 0, -1000); break;
    case KEY_END:
    case 'G': move_cursor(t, 0, 0, 1000); break;
    default:
        if (is_enter(ch))
            enter(t);
        else if (is_backspace(ch) && t->view == MK_TUI_V_PLACEMENT && t->drill)
            t->drill = MK_TUI_DRILL_NONE;
        else if (is_backspace(ch) && t->view == MK_TUI_V_TENANTS)
            t->tenant_open = false;
        else if (is_backspace(ch) && t->view == MK_TUI_V_GROUPS)
            t->group_open = false;
        break;
    }
    return true;
}

/* ================================================================== main */

/* "host:port" -> "http://host:port"; trailing '/' dropped.  false if the
 * result does not fit. */
static bool normalise_url(const char *in, char *out, size_t n)
{
    int w = snprintf(out, n, "%s%s", strstr(in, "://") ? "" : "http://", in);
    if (w < 0 || (size_t)w >= n)
        return false;
    size_t len = strlen(out);
    while (len > 0 && out[len - 1] == '/')
        out[--len] = 0;
    return len > 0;
}

int mk_tui_main(int argc, char **argv)
{
    const char *admin = getenv("MINIKORA_ADMIN");
    const char *token = getenv("MINIKORA_ADMIN_TOKEN");
    const char *no_color = getenv("NO_COLOR");
    bool color = !(no_color && no_color[0]);
    int interval = 1000;
    if (!admin || !admin[0])
        admin = "http://127.0.0.1:8080";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--admin") == 0 && i + 1 < argc) {
            admin = argv[++i];
        } else if (strncmp(a, "--admin=", 8) == 0) {
            admin = a + 8;
        } else if (strcmp(a, "--admin-token") == 0 && i + 1 < argc) {
            token = argv[++i];
        } else if (strncmp(a, "--admin-token=", 14) == 0) {
            token = a + 14;
        } else if (strcmp(a, "--interval") == 0 && i + 1 < argc) {
            interval = atoi(argv[++i]);
        } else if (strcmp(a, "--no-color") == 0 || strcmp(a, "--no-colour") == 0) {
            color = false;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "minikora tui: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (interval < 200) {
        fprintf(stderr, "minikora tui: --interval must be at least 200 ms\n");
        return 2;
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "minikora tui: needs a terminal (stdin and stdout must be a tty)\n");
        return 1;
    }
    mk_tui_t *t = mk_calloc(1, sizeof(*t));
    if (!t || mk_tui_model_init(&t->m) < 0) {
        fprintf(stderr, "minikora tui: out of memory\n");
        mk_free(t);
        return 1;
    }
    int rc = 0;
    if (!normalise_url(admin, t->admin, sizeof(t->admin))) {
        fprintf(stderr, "minikora tui: bad --admin URL '%s'\n", admin);
        rc = 2;
    } else if (mk_tui_http_new(t->admin, on_result, t, &t->http) < 0) {
        fprintf(stderr, "minikora tui: cannot set up libcurl\n");
        rc = 1;
    } else if (token && token[0] && mk_tui_http_set_token(t->http, token) < 0) {
        fprintf(stderr, "minikora tui: bad admin token (visible ASCII, no spaces)\n");
        mk_tui_http_free(t->http);
        rc = 2;
    }
    if (rc) {
        mk_tui_model_free(&t->m);
        mk_free(t);
        return rc;
    }
    t->interval_ms = interval;
    t->sel_broker = -1;

    /* Our handlers first: ncurses then leaves SIGINT/SIGTERM to us and the
     * loop restores the terminal itself. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    setlocale(LC_ALL, "");
    t->utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (!scr) {
        const char *term = getenv("TERM");
        fprintf(stderr, "minikora tui: cannot drive terminal type '%s'\n", term ? term : "(unset)");
        mk_tui_http_free(t->http);
        mk_tui_model_free(&t->m);
        mk_free(t);
        return 1;
    }
    set_term(scr);
    cbreak();
    noecho();
    nonl();
    intrflush(stdscr, FALSE);
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25);
    mk_tui_view_init_colors(t, color);

    bool running = true;
    while (running && !got_signal) {
        uint64_t now = mk_mono_ms();
        if (!t->poll_pending && now >= t->next_poll_ms)
            poll_start(t);
        mk_tui_view_draw(t);
        now = mk_mono_ms();
        int wait = 250;
        if (!t->poll_pending && t->next_poll_ms > now && t->next_poll_ms - now < (uint64_t)wait)
            wait = (int)(t->next_poll_ms - now);
        if (mk_tui_http_wait(t->http, STDIN_FILENO, wait) < 0) {
            rc = 1; /* the terminal went away */
            break;
        }
        int ch;
        while (running && !got_signal && (ch = getch()) != ERR)
            running = key(t, ch);
    }
    if (got_signal && got_signal != SIGINT)
        rc = 128 + got_signal;
    endwin();
    delscreen(scr);
    mk_tui_http_free(t->http);
    mk_tui_model_free(&t->m);
    mk_free(t);
    return rc;
}
