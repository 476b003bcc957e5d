/*
 * view.c -- drawing the TUI with ncurses: the frame (tab bar, summary line,
 * status line), the five views, the partition drill-down and the help box.
 *
 * No flicker: mk_tui_view_draw() erases curses' buffer (erase(), not clear(),
 * so nothing is sent until the end), draws the whole screen, then sends
 * only what changed with wnoutrefresh() + doupdate().  The layout is
 * computed from LINES and COLS at every draw, so a resize (KEY_RESIZE) is
 * simply the next draw.  80x24 is the design size: every view fits it, and
 * wider screens get longer sparklines and names.
 *
 * Colours are decoration only: every state is also written as a word
 * ("running", "stopped", "DOWN", "none"), so the screen reads the same on a
 * terminal without colours (has_colors() false, or NO_COLOR / --no-color),
 * where bold, underline and reverse video take their place.
 *
 * Lists that the keyboard moves through (brokers, topics, partitions,
 * latency rows, tenants, events) are computed by the mk_tui_view_* list functions, which
 * tui.c uses too, so the cursor and the screen always agree.
 */
#include "tui_int.h"

#include <curses.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ================================================================ drawing */

enum { K_OK, K_BAD, K_WARN, K_HEAD, K_TITLE, K_TAB, K_DIM, K_SEL, K_KINDS };
enum { PAIR_OK = 1, PAIR_BAD, PAIR_WARN, PAIR_HEAD, PAIR_TITLE, PAIR_TAB };

static attr_t attrs[K_KINDS];

void mk_tui_view_init_colors(mk_tui_t *t, bool want)
{
    t->colors = want && has_colors();
    if (t->colors) {
        start_color();
        short bg = use_default_colors() == OK ? -1 : COLOR_BLACK;
        init_pair(PAIR_OK, COLOR_GREEN, bg);
        init_pair(PAIR_BAD, COLOR_RED, bg);
        init_pair(PAIR_WARN, COLOR_YELLOW, bg);
        init_pair(PAIR_HEAD, COLOR_CYAN, bg);
        init_pair(PAIR_TITLE, COLOR_BLACK, COLOR_CYAN);
        init_pair(PAIR_TAB, COLOR_BLACK, COLOR_WHITE);
        attrs[K_OK] = COLOR_PAIR(PAIR_OK);
        attrs[K_BAD] = COLOR_PAIR(PAIR_BAD) | A_BOLD;
        attrs[K_WARN] = COLOR_PAIR(PAIR_WARN) | A_BOLD;
        attrs[K_HEAD] = COLOR_PAIR(PAIR_HEAD) | A_BOLD;
        attrs[K_TITLE] = COLOR_PAIR(PAIR_TITLE);
        attrs[K_TAB] = COLOR_PAIR(PAIR_TAB) | A_BOLD;
    } else {
        attrs[K_OK] = A_NORMAL;
        attrs[K_BAD] = A_BOLD;
        attrs[K_WARN] = A_BOLD;
        attrs[K_HEAD] = A_UNDERLINE;
        attrs[K_TITLE] = A_REVERSE;
        attrs[K_TAB] = A_BOLD;
    }
    attrs[K_DIM] = A_DIM;
    attrs[K_SEL] = A_REVERSE;
}

/* Print at (y, x), at most w columns and never past the right edge.  Text
 * is ASCII (the model cleans it) except sparklines, drawn by spark(). */
static void put(int y, int x, int w, attr_t a, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void put(int y, int x, int w, attr_t a, const char *fmt, ...)
{
    if (y < 0 || y >= LINES || x >= COLS || w <= 0)
        return;
    if (x + w > COLS)
        w = COLS - x;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    attron(a);
    mvaddnstr(y, x, buf, w);
    attroff(a);
}

/* Paint a whole row in attribute a (for bars and the selected row). */
static void fill_row(int y, attr_t a)
{
    attron(a);
    mvhline(y, 0, ' ', COLS);
    attroff(a);
}

/* A sparkline of a ring at (y, x), width columns. */
static void spark(const mk_tui_t *t, int y, int x, int width, const mk_tui_hist_t *h, attr_t a)
{
    if (width <= 0 || y >= LINES || x >= COLS)
        return;
    if (x + width > COLS)
        width = COLS - x;
    if (width > MK_TUI_HISTORY)
        width = MK_TUI_HISTORY;
    double v[MK_TUI_HISTORY];
    for (int i = 0; i < h->n && i < width; i++)
        v[i] = mk_tui_hist_get(h, i);
    char out[MK_TUI_HISTORY * 3 + 1];
    mk_tui_fmt_spark(v, h->n < width ? h->n : width, width, t->utf8, out, sizeof(out));
    attron(a);
    mvaddstr(y, x, out);
    attroff(a);
}

static int *idx_alloc(int n) { return mk_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1)); }

/* Keep *sel (when >= 0) inside [0, n) and visible in rows starting at *top. */
static void scroll_fix(int *top, int sel, int n, int rows)
{
    if (rows < 1)
        rows = 1;
    if (sel >= 0) {
        if (sel < *top)
            *top = sel;
        if (sel >= *top + rows)
            *top = sel - rows + 1;
    }
    if (*top > n - rows)
        *top = n - rows;
    if (*top < 0)
        *top = 0;
}

static const char *view_names[MK_TUI_V_COUNT] = {"Overview", "Placement", "Latency", "Tenants", "Events", "Storage",
                                                 "Groups", "Health"};

/* Print text at (y, x) in at most w columns; text longer than that is cut
 * and ends in "..." so that nothing is cut silently. */
static void put_cut(int y, int x, int w, attr_t a, const char *text)
{
    if (x + w > COLS)
        w = COLS - x;
    if (w <= 0)
        return;
    int len = (int)strlen(text);
    if (len <= w || w < 4) {
        put(y, x, w, a, "%s", text);
        return;
    }
    put(y, x, w - 3, a, "%s", text);
    put(y, x + w - 3, 3, a, "...");
}

/* The width of the longest of n texts, for a name column that is as wide as
 * its names (at least lo, at most hi), so that on a wide terminal the
 * figures stay next to the names instead of drifting to the right edge. */
static int name_width(int longest, int lo, int hi)
{
    if (hi < lo)
        hi = lo;
    return longest < lo ? lo : longest > hi ? hi : longest;
}

/* ================================================================ sorting */

/* A list's sortable columns, in the order of its header; o cycles through
 * them (then back to the API's order), O reverses.  Numbers sort largest
 * first, text A to Z; the header marks the column (v: descending, ^:
 * ascending). */
typedef struct sort_col_s {
    const char *label;        /* as the header spells it */
    bool text;
} sort_col_t;

static const sort_col_t sort_brokers[] = {{"ID", false},   {"AZ", true},    {"CELL", false}, {"STATE", true},
                                          {"LEAD", false}, {"REPL", false}, {"URP", false},  {"CONN", false},
                                          {"IN/s", false}, {"OUT/s", false}};
static const sort_col_t sort_topics[] = {{"TOPIC", true}, {"PARTS", false}, {"RF", false},   {"CELL", false},
                                         {"URP", false},  {"OFFL", false},  {"SIZE", false}, {"MSGS", false},
                                         {"IN/s", false}, {"OUT/s", false}};
static const sort_col_t sort_latency[] = {{"BROKER", false}, {"API", true},  {"COUNT", false}, {"P50", false},
                                          {"P95", false},    {"P99", false}, {"MAX", false}};
static const sort_col_t sort_tenants[] = {{"TENANT", true}, {"CELL", false}, {"IN/s", false},  {"OUT/s", false},
                                          {"REQ/s", false}, {"CONN", false}, {"PARTS", false}, {"STORAGE", false}};
static const sort_col_t sort_groups[] = {{"GROUP", true},  {"STATE", true}, {"MEMBERS", false},
                                         {"COORD", false}, {"PARTS", false}, {"LAG", false}};

static const sort_col_t *sort_cols(int view, int *n)
{
#define COLS_OF(a) (*n = (int)MK_ARRAY_LEN(a), a)
    switch (view) {
    case MK_TUI_V_OVERVIEW: return COLS_OF(sort_brokers);
    case MK_TUI_V_PLACEMENT: return COLS_OF(sort_topics);
    case MK_TUI_V_LATENCY: return COLS_OF(sort_latency);
    case MK_TUI_V_TENANTS: return COLS_OF(sort_tenants);
    case MK_TUI_V_GROUPS: return COLS_OF(sort_groups);
    default: *n = 0; return NULL;
    }
#undef COLS_OF
}

int mk_tui_view_sort_columns(int view)
{
    int n;
    sort_cols(view, &n);
    return n;
}

/* The key of element i of the view's model array in column col: a number,
 * or text in *text. */
static double sort_value(const mk_tui_t *t, int view, int col, int i, const char **text)
{
    const mk_tui_model_t *m = &t->m;
    *text = "";
    switch (view) {
    case MK_TUI_V_OVERVIEW: {
        const mk_tui_broker_t *b = &m->brokers[i];
        double v[] = {b->id, 0, b->cell, 0, b->leaders, b->replicas, b->urp, b->conns,
                      b->have_flow ? b->flow.bytes_in : -1, b->have_flow ? b->flow.bytes_out : -1};
        *text = col == 1 ? b->az : b->state;
        return v[col];
    }
    case MK_TUI_V_PLACEMENT: {
        const mk_tui_topic_t *tp = &m->topics[i];
        const mk_tui_named_flow_t *f = mk_tui_model_topic_flow(m, tp->name);
        double v[] = {0, tp->partitions, tp->rf, tp->cell, tp->urp, tp->offline, (double)tp->size, (double)tp->messages,
                      f ? f->flow.bytes_in : -1, f ? f->flow.bytes_out : -1};
        *text = tp->name;
        return v[col];
    }
    case MK_TUI_V_LATENCY: {
        const mk_tui_lat_t *l = &m->lat[i];
        double v[] = {l->broker, 0, (double)l->count, l->p50, l->p95, l->p99, l->max};
        *text = l->api;
        return v[col];
    }
    case MK_TUI_V_TENANTS: {
        const mk_tui_tenant_t *tn = &m->tenants[i];
        const mk_tui_flow_t *f = mk_tui_model_tenant_flow(m, tn->id);
        double v[] = {0, tn->cell, f ? f->bytes_in : -1, f ? f->bytes_out : -1, f ? f->requests : -1, tn->conns,
                      tn->partitions, (double)tn->storage};
        *text = tn->id;
        return v[col];
    }
    case MK_TUI_V_GROUPS: {
        const mk_tui_group_t *g = &m->groups[i];
        double v[] = {0, 0, g->members, g->coordinator, g->partitions, (double)g->lag};
        *text = col == 0 ? g->id : g->state;
        return v[col];
    }
    default: return 0;
    }
}

static int sort_cmp(const mk_tui_t *t, int view, const sort_col_t *c, int col, int a, int b)
{
    const char *ta, *tb;
    double va = sort_value(t, view, col, a, &ta), vb = sort_value(t, view, col, b, &tb);
    int r = c->text ? strcmp(ta, tb) : (va < vb) - (va > vb); /* text A-Z, numbers largest first */
    return t->sort_rev[view] ? -r : r;
}

/* Sort a view's filtered rows by its sort column (stable: ties keep the
 * API's order).  Left as they are without a sort column, or without memory. */
static void sort_rows(const mk_tui_t *t, int view, int *idx, int n)
{
    int ncols;
    const sort_col_t *cols = sort_cols(view, &ncols);
    int col = t->sort_col[view] - 1;
    if (!cols || col < 0 || col >= ncols || n < 2)
        return;
    int *tmp = mk_malloc(sizeof(int) * (size_t)n);
    if (!tmp)
        return;
    for (int width = 1; width < n; width *= 2) { /* bottom-up merge sort */
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = MK_MIN(lo + width, n), hi = MK_MIN(lo + 2 * width, n), i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = sort_cmp(t, view, &cols[col], col, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
            while (i < mid)
                tmp[k++] = idx[i++];
            while (j < hi)
                tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, sizeof(int) * (size_t)n);
    }
    mk_free(tmp);
}

/* Mark the sort column in a header drawn at row y from column 0: the
 * character before its label becomes v (descending) or ^ (ascending). */
static void sort_mark(const mk_tui_t *t, int view, int y, const char *header)
{
    int ncols;
    const sort_col_t *cols = sort_cols(view, &ncols);
    int col = t->sort_col[view] - 1;
    if (!cols || col < 0 || col >= ncols)
        return;
    const char *label = cols[col].label;
    size_t len = strlen(label);
    for (const char *p = header; (p = strstr(p, label)); p += len) {
        if (p == header || p[-1] != ' ' || (p[len] && p[len] != ' '))
            continue;
        bool desc = cols[col].text == t->sort_rev[view];
        put(y, (int)(p - header) - 1, 1, attrs[K_HEAD] | A_BOLD, "%s", desc ? "v" : "^");
        return;
    }
}

/* Draw a list header (text from column 0) with its sort mark. */
static void header(const mk_tui_t *t, int view, int y, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void header(const mk_tui_t *t, int view, int y, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    put(y, 0, COLS, attrs[K_HEAD], "%s", buf);
    sort_mark(t, view, y, buf);
}

/* ================================================================= lists */

bool mk_tui_match(const char *filter, const char *text);

int mk_tui_view_brokers(const mk_tui_t *t, int *idx, int cap)
{
    int n = 0;
    for (int i = 0; i < t->m.nbrokers && n < cap; i++) {
        const mk_tui_broker_t *b = &t->m.brokers[i];
        char text[128];
        snprintf(text, sizeof(text), "%d %s cell %d %s", b->id, b->az, b->cell, b->state);
        if (mk_tui_match(t->filter[MK_TUI_V_OVERVIEW], text))
            idx[n++] = i;
    }
    sort_rows(t, MK_TUI_V_OVERVIEW, idx, n);
    return n;
}

int mk_tui_view_topics(const mk_tui_t *t, int *idx, int cap)
{
    int n = 0;
    for (int i = 0; i < t->m.ntopics && n < cap; i++)
        if (mk_tui_match(t->filter[MK_TUI_V_PLACEMENT], t->m.topics[i].name))
            idx[n++] = i;
    sort_rows(t, MK_TUI_V_PLACEMENT, idx, n);
    return n;
}

static int az_index(const mk_tui_model_t *m, const char *az)
{
    for (int i = 0; i < m->nazs; i++)
        if (strcmp(m->azs[i].name, az) == 0)
            return i;
    return m->nazs;
}

static int cell_index(const mk_tui_model_t *m, int32_t cell)
{
    for (int i = 0; i < m->ncells; i++)
        if (m->cells[i].id == cell)
            return i;
    return m->ncells;
}

void mk_tui_view_grid_pos(const mk_tui_t *t, const mk_tui_broker_t *b, int *row, int *col)
{
    *row = cell_index(&t->m, b->cell);
    *col = az_index(&t->m, b->az);
}

int mk_tui_view_grid_order(const mk_tui_t *t, int *idx, int cap)
{
    const mk_tui_model_t *m = &t->m;
    int n = 0;
    for (int i = 0; i < m->nbrokers && n < cap; i++)
        idx[n++] = i;
    /* Insertion sort by (cell, AZ, id): a handful of brokers. */
    for (int i = 1; i < n; i++)
        for (int k = i; k > 0; k--) {
            const mk_tui_broker_t *a = &m->brokers[idx[k - 1]], *b = &m->brokers[idx[k]];
            int ca = cell_index(m, a->cell), cb = cell_index(m, b->cell);
            int za = az_index(m, a->az), zb = az_index(m, b->az);
            if (ca < cb || (ca == cb && (za < zb || (za == zb && a->id <= b->id))))
                break;
            int tmp = idx[k];
            idx[k] = idx[k - 1];
            idx[k - 1] = tmp;
        }
    return n;
}

static bool has_id(const int32_t *ids, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

int mk_tui_view_drill_parts(const mk_tui_t *t, int *idx, int cap)
{
    int n = 0;
    for (int i = 0; i < t->m.nparts && n < cap; i++) {
        const mk_tui_part_t *p = &t->m.parts[i];
        if (t->drill == MK_TUI_DRILL_TOPIC ? strcmp(p->topic, t->drill_topic) == 0
                                        : has_id(p->rep, p->nrep, t->drill_broker) &&
                                              mk_tui_match(t->filter[MK_TUI_V_PLACEMENT], p->topic))
            idx[n++] = i;
    }
    /* By topic, then partition. */
    for (int i = 1; i < n; i++)
        for (int k = i; k > 0; k--) {
            const mk_tui_part_t *a = &t->m.parts[idx[k - 1]], *b = &t->m.parts[idx[k]];
            int c = strcmp(a->topic, b->topic);
            if (c < 0 || (c == 0 && a->partition <= b->partition))
                break;
            int tmp = idx[k];
            idx[k] = idx[k - 1];
            idx[k - 1] = tmp;
        }
    return n;
}

int mk_tui_view_latency_rows(const mk_tui_t *t, int *idx, int cap)
{
    int n = 0;
    for (int i = 0; i < t->m.nlat && n < cap; i++) {
        const mk_tui_lat_t *l = &t->m.lat[i];
        char text[96];
        snprintf(text, sizeof(text), "broker %d %s", l->broker, l->api);
        if (l->count > 0 && mk_tui_match(t->filter[MK_TUI_V_LATENCY], text))
            idx[n++] = i;
    }
    sort_rows(t, MK_TUI_V_LATENCY, idx, n);
    return n;
}

int mk_tui_view_tenant_rows(const mk_tui_t *t, int *idx, int cap)
{
    int n = 0;
    for (int i = 0; i < t->m.ntenants && n < cap; i++)
        if (mk_tui_match(t->filter[MK_TUI_V_TENANTS], t->m.tenants[i].id))
            idx[n++] = i;
    sort_rows(t, MK_TUI_V_TENANTS, idx, n);
    return n;
}

int mk_tui_view_group_rows(const mk_tui_t *t, int *idx, int cap)
{
    int n = 0;
    for (int i = 0; i < t->m.ngroups && n < cap; i++) {
        const mk_tui_group_t *g = &t->m.groups[i];
        char text[MK_TUI_NAME + 64];
        snprintf(text, sizeof(text), "%s %s %s", g->id, g->state, g->protocol);
        if (mk_tui_match(t->filter[MK_TUI_V_GROUPS], text))
            idx[n++] = i;
    }
    sort_rows(t, MK_TUI_V_GROUPS, idx, n);
    return n;
}

int mk_tui_view_event_rows(const mk_tui_t *t, int *idx, int cap)
{
    int n = 0;
    for (int i = 0; i < t->m.nevents && n < cap; i++) {
        const mk_tui_event_t *e = mk_tui_model_event(&t->m, i);
        char text[MK_TUI_EVENT_TEXT + 64];
        snprintf(text, sizeof(text), "%s %s broker %d", e->type, e->message, e->broker);
        if (mk_tui_match(t->filter[MK_TUI_V_EVENTS], text))
            idx[n++] = i;
    }
    return n;
}

int mk_tui_view_storage_rows(const mk_tui_t *t, int *idx, int cap)
{
    int n = 0;
    for (int i = 0; i < t->m.nstorage && n < cap; i++) {
        const mk_tui_storage_row_t *r = &t->m.storage[i];
        char text[MK_TUI_NAME + MK_TUI_TENANT_ID + 2];
        snprintf(text, sizeof(text), "%s %s", r->tenant, r->topic);
        if (mk_tui_match(t->filter[MK_TUI_V_STORAGE], text))
            idx[n++] = i;
    }
    return n;
}

/* Rows above each view's scrolling list, so paging moves a screenful. */
int mk_tui_view_list_rows(const mk_tui_t *t)
{
    int body = LINES - 3;
    int above = t->view == MK_TUI_V_OVERVIEW    ? 6
                : t->view == MK_TUI_V_PLACEMENT ? (t->drill ? 2 : 2 * t->m.ncells + 3)
                : t->view == MK_TUI_V_LATENCY   ? 2
                : t->view == MK_TUI_V_TENANTS   ? (t->tenant_open ? 15 : 11)
                : t->view == MK_TUI_V_STORAGE   ? 6
                : t->view == MK_TUI_V_GROUPS    ? (t->group_open ? 6 : 2)
                                             : 1;
    return body - above > 1 ? body - above : 1;
}

/* ================================================================ frame */

/* Width of the tab row (the title included) with the other tabs' names cut
 * to cut characters (the current one whole). */
static int tabs_width(const mk_tui_t *t, int cut)
{
    int w = 10;
    for (int v = 0; v < MK_TUI_V_COUNT; v++)
        w += 4 + (int)MK_MIN(strlen(view_names[v]), (size_t)(v == t->view ? 32 : cut)) + 1;
    return w;
}

static void draw_tabs(mk_tui_t *t)
{
    fill_row(0, attrs[K_TITLE]);
    put(0, 0, COLS, attrs[K_TITLE] | A_BOLD, " minikora ");
    int x = 10;
    /* Every tab whole and the admin URL at the right when they fit; else the
     * others' names shortened (the current one stays whole), then the
     * others' keys only; the URL goes only when even that does not fit. */
    int len = (int)strlen(t->admin), cut = 32;
    bool url = true;
    for (;;) {
        if (tabs_width(t, cut) + (url ? len + 2 : 0) <= COLS)
            break;
        if (cut > 0) {
            cut = cut == 32 ? 4 : 0;
        } else if (url) {
            url = false;
            cut = 32;
        } else {
            break;
        }
    }
    for (int v = 0; v < MK_TUI_V_COUNT; v++) {
        char label[40];
        snprintf(label, sizeof(label), " %d %.*s ", v + 1, v == t->view ? 32 : cut, view_names[v]);
        put(0, x, COLS - x, v == t->view ? attrs[K_TAB] : attrs[K_TITLE], "%s", label);
        x += (int)strlen(label) + 1;
    }
    if (url && x + len + 2 <= COLS)
        put(0, COLS - len - 1, len, attrs[K_TITLE], "%s", t->admin);
}

static void draw_summary(mk_tui_t *t)
{
    const mk_tui_model_t *m = &t->m;
    if (!m->have_cluster) {
        put(1, 0, COLS, attrs[K_DIM], " waiting for the first answer from %s", t->admin);
        return;
    }
    int x = 1;
    char buf[160];
    int down = m->nbrokers - m->brokers_running;
    snprintf(buf, sizeof(buf), "brokers %d/%d up", m->brokers_running, m->nbrokers);
    put(1, x, COLS - x, down ? attrs[K_BAD] : attrs[K_OK], "%s", buf);
    x += (int)strlen(buf) + 2;
    snprintf(buf, sizeof(buf), "URP %d", m->urp);
    put(1, x, COLS - x, m->urp ? attrs[K_WARN] : A_NORMAL, "%s", buf);
    x += (int)strlen(buf) + 2;
    snprintf(buf, sizeof(buf), "offline %d", m->offline);
    put(1, x, COLS - x, m->offline ? attrs[K_BAD] : A_NORMAL, "%s", buf);
    x += (int)strlen(buf) + 2;
    char up[16];
    mk_tui_fmt_duration(m->uptime_ms, up, sizeof(up));
    snprintf(buf, sizeof(buf), "topics %d  partitions %d  controller %d  up %s  %s v%s", m->topics_count,
             m->partitions_count, m->controller, up, m->cluster_id, m->version);
    put(1, x, COLS - x, A_NORMAL, "%s", buf);
    if (!t->connected)
        put(1, COLS - 7, 7, attrs[K_BAD], " STALE ");
}

static void draw_status(mk_tui_t *t, uint64_t now)
{
    int y = LINES - 1;
    fill_row(y, attrs[K_TITLE]);
    char right[96];
    if (t->connected)
        snprintf(right, sizeof(right), " admin ok %.0f ms ", t->rtt_ms);
    else
        snprintf(right, sizeof(right), " admin UNREACHABLE ");
    int rlen = (int)strlen(right);
    int w = COLS - rlen;
    switch (t->mode) {
    case MK_TUI_MODE_FILTER:
        put(y, 0, w, attrs[K_TITLE], " filter %s: /%s_   (Enter keep, Esc clear)", view_names[t->view], t->input);
        break;
    case MK_TUI_MODE_CONFIRM:
        fill_row(y, attrs[K_WARN] | A_REVERSE);
        put(y, 0, COLS, attrs[K_WARN] | A_REVERSE, " %s [y/n] ", t->prompt);
        return;
    default:
        if (t->msg[0] && now < t->msg_until_ms)
            put(y, 0, w,
                (t->msg_level == MK_TUI_MSG_ERR ? attrs[K_BAD] : t->msg_level == MK_TUI_MSG_OK ? attrs[K_OK] : 0) |
                    A_REVERSE,
                " %s ", t->msg);
        else if (t->filter[t->view][0])
            put(y, 0, w, attrs[K_TITLE], " filter /%s (Esc clears)  ?:help q:quit", t->filter[t->view]);
        else
            put(y, 0, w, attrs[K_TITLE], " ?:help Tab:views /:filter Enter:drill s/S/c/a/A:act q:quit");
        break;
    }
    put(y, COLS - rlen, rlen, t->connected ? attrs[K_TITLE] : attrs[K_BAD] | A_REVERSE, "%s", right);
}

/* A placeholder in the body when there is nothing else to show. */
static bool no_cluster(mk_tui_t *t, int y0)
{
    if (t->m.have_cluster)
        return false;
    if (t->conn_err[0])
        put(y0 + 1, 2, COLS - 4, attrs[K_BAD], "cannot reach the admin API at %s: %s", t->admin, t->conn_err);
    else
        put(y0 + 1, 2, COLS - 4, attrs[K_DIM], "connecting to %s ...", t->admin);
    put(y0 + 3, 2, COLS - 4, attrs[K_DIM], "start a cluster with `minikora serve`, or pass --admin http://HOST:PORT");
    return true;
}

static attr_t state_attr(const mk_tui_broker_t *b) { return b->running ? attrs[K_OK] : attrs[K_BAD]; }

/* ============================================================= overview */

static void draw_overview(mk_tui_t *t, int y0, int rows)
{
    mk_tui_model_t *m = &t->m;
    if (no_cluster(t, y0))
        return;
    int y = y0;
    if (m->have_rates) {
        char bi[16], bo[16], ri[16], ro[16], rq[16];
        mk_tui_fmt_bytes(m->cluster_flow.bytes_in, bi, sizeof(bi));
        mk_tui_fmt_bytes(m->cluster_flow.bytes_out, bo, sizeof(bo));
        mk_tui_fmt_count(m->cluster_flow.records_in, ri, sizeof(ri));
        mk_tui_fmt_count(m->cluster_flow.records_out, ro, sizeof(ro));
        mk_tui_fmt_count(m->cluster_flow.requests, rq, sizeof(rq));
        put(y, 0, COLS, attrs[K_HEAD], " Throughput");
        put(y, 12, COLS - 12, A_NORMAL, "in %s/s %s rec/s   out %s/s %s rec/s   %s req/s", bi, ri, bo, ro, rq);
        put(y + 1, 1, 4, A_NORMAL, "in");
        spark(t, y + 1, 5, COLS - 6, &m->hist_in, attrs[K_OK]);
        put(y + 2, 1, 4, A_NORMAL, "out");
        spark(t, y + 2, 5, COLS - 6, &m->hist_out, attrs[K_HEAD]);
    } else {
        put(y, 0, COLS, attrs[K_HEAD], " Throughput");
        put(y, 12, COLS - 12, attrs[K_DIM], "no rates from the admin API (GET /v1/rates)");
    }
    y += 3;
    int x = 1;
    put(y, x, COLS, attrs[K_HEAD], "AZs");
    x += 5;
    for (int i = 0; i < m->nazs; i++) {
        const mk_tui_az_t *z = &m->azs[i];
        const char *st = z->running == 0 ? "DOWN" : z->running < z->total ? "degraded" : "up";
        attr_t a = z->running == 0 ? attrs[K_BAD] : z->running < z->total ? attrs[K_WARN] : attrs[K_OK];
        char buf[64];
        snprintf(buf, sizeof(buf), "%s %s %d/%d", z->name, st, z->running, z->total);
        put(y, x, COLS - x, a, "%s", buf);
        x += (int)strlen(buf) + 3;
    }
    if (m->have_groups && x + 12 < COLS)
        put(y, x, COLS - x, A_NORMAL, "groups %d", m->ngroups);
    y += 2;
    header(t, MK_TUI_V_OVERVIEW, y, "   ID  AZ         CELL  STATE     LEAD  REPL  URP  CONN     IN/s    OUT/s");
    y++;
    int list_rows = y0 + rows - y;
    int *idx = idx_alloc(m->nbrokers);
    if (!idx)
        return;
    int n = mk_tui_view_brokers(t, idx, m->nbrokers);
    int sel = -1;
    for (int i = 0; i < n; i++)
        if (m->brokers[idx[i]].id == t->sel_broker)
            sel = i;
    if (sel < 0 && n > 0) {
        /* The filter hid the selection: acting keys follow what is shown. */
        sel = 0;
        t->sel_broker = m->brokers[idx[0]].id;
    }
    scroll_fix(&t->scroll[MK_TUI_V_OVERVIEW], sel, n, list_rows);
    for (int r = 0; r < list_rows && t->scroll[MK_TUI_V_OVERVIEW] + r < n; r++) {
        int i = t->scroll[MK_TUI_V_OVERVIEW] + r;
        const mk_tui_broker_t *b = &m->brokers[idx[i]];
        bool is_sel = i == sel;
        attr_t base = is_sel ? attrs[K_SEL] : A_NORMAL;
        if (is_sel)
            fill_row(y + r, attrs[K_SEL]);
        char bi[16] = "-", bo[16] = "-";
        if (b->have_flow) {
            mk_tui_fmt_bytes(b->flow.bytes_in, bi, sizeof(bi));
            mk_tui_fmt_bytes(b->flow.bytes_out, bo, sizeof(bo));
        }
        put(y + r, 0, COLS, base, "%s%4d  %-10.10s %4d", is_sel ? ">" : " ", b->id, b->az, b->cell);
        put(y + r, 23, 8, is_sel ? base : state_attr(b), "%-8.8s", b->state);
        put(y + r, 31, COLS - 31, base, "%6d%6d%5d%6d %8s %8s", b->leaders, b->replicas, b->urp, b->conns, bi,
            bo);
        if (b->hist && COLS - 74 >= 4)
            spark(t, y + r, 73, COLS - 74, b->hist, base);
    }
    if (n == 0)
        put(y, 2, COLS - 2, attrs[K_DIM], "no brokers match the filter");
    mk_free(idx);
}

/* ============================================================ placement */

static void fmt_ids(const int32_t *ids, int n, char *out, size_t len)
{
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < n && o + 1 < len; i++) {
        int w = snprintf(out + o, len - o, i ? ",%d" : "%d", ids[i]);
        if (w < 0 || (size_t)w >= len - o)
            break;
        o += (size_t)w;
    }
}

static void draw_tail(mk_tui_t *t, int y0, int rows);

static void draw_drill(mk_tui_t *t, int y0, int rows)
{
    mk_tui_model_t *m = &t->m;
    int y = y0;
    if (t->drill == MK_TUI_DRILL_TOPIC && t->tail_on) {
        draw_tail(t, y0, rows);
        return;
    }
    if (t->drill == MK_TUI_DRILL_BROKER) {
        mk_tui_broker_t *b = mk_tui_model_broker(m, t->drill_broker);
        if (b)
            put(y, 0, COLS, attrs[K_HEAD], " Broker %d  %s  cell %d  %s  leads %d  replicas %d  (Esc: back)", b->id,
                b->az, b->cell, b->state, b->leaders, b->replicas);
        else
            put(y, 0, COLS, attrs[K_BAD], " Broker %d is not in the cluster any more (Esc: back)", t->drill_broker);
    } else {
        const mk_tui_topic_t *tp = NULL;
        for (int i = 0; i < m->ntopics; i++)
            if (strcmp(m->topics[i].name, t->drill_topic) == 0)
                tp = &m->topics[i];
        if (tp) {
            char size[16];
            mk_tui_fmt_bytes((double)tp->size, size, sizeof(size));
            put(y, 0, COLS, attrs[K_HEAD], " Topic %s  %d partitions  RF %d  cell %d  URP %d  %s  (t: tail, Esc: back)",
                tp->name, tp->partitions, tp->rf, tp->cell, tp->urp, size);
        } else {
            put(y, 0, COLS, attrs[K_BAD], " Topic %s does not exist (any more)  (Esc: back)", t->drill_topic);
        }
    }
    y++;
    /* Columns: the topic name takes what the fixed ones leave. */
    int longest = 0; /* the topic column as wide as its names: figures stay beside them */
    for (int i = 0; i < m->nparts; i++)
        longest = MK_MAX(longest, (int)strlen(m->parts[i].topic));
    int tw = name_width(longest, 10, MK_MIN(COLS - 62, 40));
    put(y, 0, COLS, attrs[K_HEAD], " %-*s %4s %6s %5s  %-9s %-9s %8s  %s", tw, "TOPIC", "PART", "LEADER", "EPOCH",
        "REPLICAS", "ISR", "HW", t->drill == MK_TUI_DRILL_BROKER ? "ROLE" : "");
    y++;
    int list_rows = y0 + rows - y;
    int *idx = idx_alloc(m->nparts);
    if (!idx)
        return;
    int n = mk_tui_view_drill_parts(t, idx, m->nparts);
    scroll_fix(&t->drill_scroll, -1, n, list_rows);
    for (int r = 0; r < list_rows && t->drill_scroll + r < n; r++) {
        const mk_tui_part_t *p = &m->parts[idx[t->drill_scroll + r]];
        char reps[64], isr[64], hw[24] = "-";
        fmt_ids(p->rep, p->nrep, reps, sizeof(reps));
        fmt_ids(p->isr, p->nisr, isr, sizeof(isr));
        if (p->hw >= 0)
            snprintf(hw, sizeof(hw), "%lld", (long long)p->hw);
        int x = 0, yy = y + r;
        put(yy, x, COLS, A_NORMAL, " %-*.*s %4d", tw, tw, p->topic, p->partition);
        x += 1 + tw + 5;
        if (p->leader >= 0)
            put(yy, x, 7, A_NORMAL, " %6d", p->leader);
        else
            put(yy, x, 7, attrs[K_BAD], "   none");
        x += 7;
        put(yy, x, COLS - x, A_NORMAL, " %5d  %-9.9s", p->epoch, reps);
        x += 6 + 2 + 9 + 1;
        put(yy, x, 9, p->nisr < p->nrep ? attrs[K_WARN] : attrs[K_OK], "%-9.9s", isr);
        x += 9;
        put(yy, x, COLS - x, A_NORMAL, " %8s", hw);
        x += 9 + 2;
        if (t->drill == MK_TUI_DRILL_BROKER) {
            bool leader = p->leader == t->drill_broker, in_isr = has_id(p->isr, p->nisr, t->drill_broker);
            put(yy, x, COLS - x, leader ? attrs[K_OK] : in_isr ? A_NORMAL : attrs[K_WARN], "%s",
                leader ? "leader" : in_isr ? "follower" : "out of ISR");
        }
    }
    if (n == 0)
        put(y, 2, COLS - 2, attrs[K_DIM], "%s", t->drill == MK_TUI_DRILL_BROKER && m->ntopics > 0 && m->nparts == 0
                                                   ? "loading partitions ..."
                                                   : "no partitions");
    mk_free(idx);
}

/* The line under a cell's brokers: its load (the API's "load", else its
 * partitions) and the tenants that live there. */
static void cell_line(const mk_tui_t *t, const mk_tui_cell_t *c, int y, int end, int x)
{
    const mk_tui_model_t *m = &t->m;
    if (y >= end)
        return;
    char load[40], tenants[MK_TUI_CELL_TENANTS];
    attr_t la = A_NORMAL;
    if (c->has_load) {
        snprintf(load, sizeof(load), c->load < 0.1 ? "load %.1f%%" : "load %.0f%%", c->load * 100);
        la = c->load >= 1 ? attrs[K_BAD] : c->load >= 0.8 ? attrs[K_WARN] : A_NORMAL;
    } else {
        int parts = c->partitions;
        if (parts < 0) { /* the partitions of the cell's topics */
            parts = 0;
            for (int i = 0; i < m->ntopics; i++)
                if (m->topics[i].cell == c->id)
                    parts += m->topics[i].partitions;
        }
        snprintf(load, sizeof(load), "%d partitions", parts);
    }
    if (c->has_tenants) {
        snprintf(tenants, sizeof(tenants), "%s", c->tenants);
    } else { /* an API without cells[].tenants: from GET /v1/tenants */
        size_t len = 0;
        tenants[0] = 0;
        for (int i = 0; i < m->ntenants; i++) {
            if (m->tenants[i].cell != c->id)
                continue;
            int w = snprintf(tenants + len, sizeof(tenants) - len, "%s%s", len ? ", " : "", m->tenants[i].id);
            if (w < 0 || (size_t)w >= sizeof(tenants) - len)
                break;
            len += (size_t)w;
        }
    }
    int lw = (int)strlen(load);
    put(y, x, lw, la, "%s", load);
    put(y, x + lw, COLS - x - lw, A_NORMAL, "   tenants: %s", tenants[0] ? tenants : "none");
}

static void draw_placement(mk_tui_t *t, int y0, int rows)
{
    mk_tui_model_t *m = &t->m;
    if (no_cluster(t, y0))
        return;
    if (t->drill) {
        draw_drill(t, y0, rows);
        return;
    }
    int y = y0;
    const int label = 8;
    int nazs = m->nazs > 0 ? m->nazs : 1;
    int cw = (COLS - label) / nazs;
    if (cw > 30)
        cw = 30;
    if (cw < 12)
        cw = 12;
    put(y, 0, label, attrs[K_HEAD], " AZ");
    for (int z = 0; z < m->nazs; z++) {
        const mk_tui_az_t *a = &m->azs[z];
        const char *st = a->running == 0 ? "DOWN" : a->running < a->total ? "degraded" : "up";
        put(y, label + z * cw, cw - 1, attrs[K_HEAD], "%s", a->name);
        put(y, label + z * cw + (int)strlen(a->name) + 1, cw - 2 - (int)strlen(a->name),
            a->running == 0 ? attrs[K_BAD] : a->running < a->total ? attrs[K_WARN] : attrs[K_OK], "%s", st);
    }
    y++;
    for (int c = 0; c < m->ncells && y < y0 + rows; c++, y += 2) {
        cell_line(t, &m->cells[c], y + 1, y0 + rows, label);
        put(y, 0, label, A_NORMAL, " cell %d", m->cells[c].id);
        for (int z = 0; z < m->nazs; z++) {
            int x = label + z * cw;
            for (int i = 0; i < m->nbrokers; i++) {
                const mk_tui_broker_t *b = &m->brokers[i];
                if (b->cell != m->cells[c].id || strcmp(b->az, m->azs[z].name) != 0)
                    continue;
                char buf[64];
                snprintf(buf, sizeof(buf), "#%d %s L%d R%d", b->id, b->running ? "up" : "DOWN", b->leaders,
                         b->replicas);
                bool sel = !t->focus_topics && b->id == t->sel_broker;
                int w = (int)strlen(buf);
                if (x + w > label + (z + 1) * cw - 1)
                    w = label + (z + 1) * cw - 1 - x;
                put(y, x, w, sel ? attrs[K_SEL] : state_attr(b), "%s", buf);
                x += w + 1;
            }
        }
    }
    y++;
    if (y >= y0 + rows)
        return;
    /* The name column is as wide as the longest name (within what the
     * figures leave), so the figures stay beside the names. */
    int longest = 0;
    for (int i = 0; i < m->ntopics; i++)
        longest = MK_MAX(longest, (int)strlen(m->topics[i].name) + 2);
    int namew = name_width(longest, 12, COLS - 60);
    header(t, MK_TUI_V_PLACEMENT, y, " %-*s %5s %2s %4s %3s %4s %9s %7s %8s %8s", namew - 1, "TOPIC", "PARTS", "RF",
           "CELL", "URP", "OFFL", "SIZE", "MSGS", "IN/s", "OUT/s");
    y++;
    int list_rows = y0 + rows - y;
    int *idx = idx_alloc(m->ntopics);
    if (!idx)
        return;
    int n = mk_tui_view_topics(t, idx, m->ntopics);
    if (t->sel_topic >= n)
        t->sel_topic = n - 1;
    if (t->sel_topic < 0)
        t->sel_topic = 0;
    if (n == 0)
        t->focus_topics = false;
    scroll_fix(&t->scroll[MK_TUI_V_PLACEMENT], t->focus_topics ? t->sel_topic : -1, n, list_rows);
    for (int r = 0; r < list_rows && t->scroll[MK_TUI_V_PLACEMENT] + r < n; r++) {
        int i = t->scroll[MK_TUI_V_PLACEMENT] + r;
        const mk_tui_topic_t *tp = &m->topics[idx[i]];
        bool sel = t->focus_topics && i == t->sel_topic;
        if (sel)
            fill_row(y + r, attrs[K_SEL]);
        char size[16], msgs[16], bi[16] = "-", bo[16] = "-";
        mk_tui_fmt_bytes((double)tp->size, size, sizeof(size));
        mk_tui_fmt_count((double)tp->messages, msgs, sizeof(msgs));
        const mk_tui_named_flow_t *f = mk_tui_model_topic_flow(m, tp->name);
        if (f) {
            mk_tui_fmt_bytes(f->flow.bytes_in, bi, sizeof(bi));
            mk_tui_fmt_bytes(f->flow.bytes_out, bo, sizeof(bo));
        }
        attr_t a = sel ? attrs[K_SEL] : tp->offline ? attrs[K_BAD] : tp->urp ? attrs[K_WARN] : A_NORMAL;
        put(y + r, 0, COLS, a, "%s%-*.*s %5d %2d %4d %3d %4d %9s %7s %8s %8s", sel ? ">" : " ", namew - 1,
            namew - 1, tp->name, tp->partitions, tp->rf, tp->cell, tp->urp, tp->offline, size, msgs, bi, bo);
    }
    if (n == 0)
        put(y, 2, COLS - 2, attrs[K_DIM], "%s", m->ntopics ? "no topics match the filter" : "no topics yet");
    mk_free(idx);
}

/* ============================================================== latency */

static void draw_latency(mk_tui_t *t, int y0, int rows)
{
    mk_tui_model_t *m = &t->m;
    int y = y0;
    if (m->latency_status != 200) {
        put(y, 0, COLS, attrs[K_HEAD], " Request latency");
        put(y + 2, 2, COLS - 2, attrs[K_DIM], "%s",
            m->latency_status == 0 ? "no data yet (waiting for GET /v1/latency)"
                                   : "no data: this admin API has no latency figures (GET /v1/latency)");
        return;
    }
    put(y, 0, COLS, attrs[K_HEAD], " Request latency, last %.0f s (ms)", m->latency_window_s);
    put(y, 36, 12, A_NORMAL, "worst p99");
    spark(t, y, 46, COLS - 47, &m->hist_p99, attrs[K_WARN]);
    y++;
    header(t, MK_TUI_V_LATENCY, y, " %6s  %-24s %8s %8s %8s %8s %8s", "BROKER", "API", "COUNT", "P50", "P95", "P99",
           "MAX");
    y++;
    int list_rows = y0 + rows - y;
    int *idx = idx_alloc(m->nlat);
    if (!idx)
        return;
    int n = mk_tui_view_latency_rows(t, idx, m->nlat);
    scroll_fix(&t->scroll[MK_TUI_V_LATENCY], -1, n, list_rows);
    for (int r = 0; r < list_rows && t->scroll[MK_TUI_V_LATENCY] + r < n; r++) {
        const mk_tui_lat_t *l = &m->lat[idx[t->scroll[MK_TUI_V_LATENCY] + r]];
        char p50[16], p95[16], p99[16], mx[16], cnt[16];
        mk_tui_fmt_ms(l->p50, p50, sizeof(p50));
        mk_tui_fmt_ms(l->p95, p95, sizeof(p95));
        mk_tui_fmt_ms(l->p99, p99, sizeof(p99));
        mk_tui_fmt_ms(l->max, mx, sizeof(mx));
        mk_tui_fmt_count((double)l->count, cnt, sizeof(cnt));
        put(y + r, 0, COLS, A_NORMAL, " %6d  %-24.24s %8s %8s %8s", l->broker, l->api, cnt, p50, p95);
        put(y + r, 60, COLS - 60, l->p99 >= 100 ? attrs[K_WARN] : A_NORMAL, " %8s %8s", p99, mx);
    }
    if (n == 0)
        put(y, 2, COLS - 2, attrs[K_DIM], "no data: %s", m->nlat ? "no requests match the filter in this window"
                                                               : "no requests in this window");
    mk_free(idx);
}

/* ============================================================== tenants */

/* A "bytes" or "records" line of the cluster's totals: in and out, each
 * per second and since start. */
static void flow_pair(int y, const char *what, double in, double in_total, double out, double out_total, bool bytes)
{
    char r[2][24], tot[2][24], rs[2][32];
    double rate[2] = {in, out}, total[2] = {in_total, out_total};
    for (int i = 0; i < 2; i++) {
        if (bytes) {
            mk_tui_fmt_bytes(rate[i], r[i], sizeof(r[i]));
            mk_tui_fmt_bytes(total[i], tot[i], sizeof(tot[i]));
        } else {
            mk_tui_fmt_count(rate[i], r[i], sizeof(r[i]));
            mk_tui_fmt_count(total[i], tot[i], sizeof(tot[i]));
        }
        snprintf(rs[i], sizeof(rs[i]), "%s/s", r[i]);
    }
    put(y, 0, COLS, A_NORMAL, " %-9s %12s %12s %12s %12s", what, rs[0], tot[0], rs[1], tot[1]);
}

/* "-" for a figure the API did not give. */
static void fmt_opt_int(int64_t v, char *out, size_t n)
{
    if (v < 0)
        snprintf(out, n, "-");
    else
        snprintf(out, n, "%lld", (long long)v);
}

static void fmt_opt_bytes(int64_t v, char *out, size_t n)
{
    if (v < 0)
        snprintf(out, n, "-");
    else
        mk_tui_fmt_bytes((double)v, out, n);
}

static void fmt_cell(int32_t cell, char *out, size_t n)
{
    if (cell == -1)
        snprintf(out, n, "any");
    else if (cell < 0)
        snprintf(out, n, "-");
    else
        snprintf(out, n, "%d", (int)cell);
}

/* The busiest clients, busiest first, under a header at y; at most max
 * rows.  Returns the rows used. */
static int client_rows(const mk_tui_t *t, const mk_tui_named_flow_t *cf, int ncf, bool sort, int y, int max)
{
    if (max < 1)
        return 0;
    put(y, 0, COLS, attrs[K_HEAD], " %-36s %10s %10s %10s", sort ? "BUSIEST CLIENTS (every tenant)" : "BUSIEST CLIENTS",
        "IN/s", "OUT/s", "REQ/s");
    int *idx = idx_alloc(ncf);
    if (!idx)
        return 1;
    int n = 0;
    for (int i = 0; i < ncf; i++)
        if (!sort || mk_tui_match(t->filter[MK_TUI_V_TENANTS], cf[i].name))
            idx[n++] = i;
    for (int i = 1; sort && i < n; i++)
        for (int k = i; k > 0; k--) {
            const mk_tui_flow_t *a = &cf[idx[k - 1]].flow, *b = &cf[idx[k]].flow;
            if (a->bytes_in + a->bytes_out + a->requests >= b->bytes_in + b->bytes_out + b->requests)
                break;
            int tmp = idx[k];
            idx[k] = idx[k - 1];
            idx[k - 1] = tmp;
        }
    int r = 0;
    for (; r < n && r < max - 1; r++) {
        const mk_tui_named_flow_t *c = &cf[idx[r]];
        char bi[16], bo[16], rq[16];
        mk_tui_fmt_bytes(c->flow.bytes_in, bi, sizeof(bi));
        mk_tui_fmt_bytes(c->flow.bytes_out, bo, sizeof(bo));
        mk_tui_fmt_count(c->flow.requests, rq, sizeof(rq));
        put(y + 1 + r, 0, COLS, A_NORMAL, " %-36.36s %10s %10s %10s", c->name[0] ? c->name : "(no client id)", bi,
            bo, rq);
    }
    if (n == 0 && max > 1)
        put(y + 1, 2, COLS - 2, attrs[K_DIM], "no clients yet");
    mk_free(idx);
    return 1 + (r ? r : max > 1);
}

/* How close a use is to its limit: K_BAD from 100%, K_WARN from 80%. */
static attr_t quota_attr(double use, double limit)
{
    double f = limit > 0 ? use / limit : 0;
    return f >= 1 ? attrs[K_BAD] : f >= 0.8 ? attrs[K_WARN] : A_NORMAL;
}

/* One limit as "use/limit" (short numbers; unit added for rates when
 * unit), or the limit alone where the API has no use of it (the mutation
 * and connection rates). */
static void quota_fraction(const mk_tui_quotas_t *q, int k, char *out, size_t n)
{
    char u[16], l[16];
    mk_tui_fmt_short(q->limit[k], l, sizeof(l));
    if (k == MK_TUI_Q_MUTATION || k == MK_TUI_Q_CONN_RATE || !(q->use_set >> k & 1)) {
        snprintf(out, n, "%s/s", l);
        return;
    }
    mk_tui_fmt_short(q->use[k], u, sizeof(u));
    snprintf(out, n, "%s/%s%s", u, l, k == MK_TUI_Q_REQUEST ? "%" : "");
}

/* Whether a tenant gets a quota row: it has a limit, or was throttled in
 * the last minute (by a client quota or a saturated broker). */
static bool has_quota_row(const mk_tui_quotas_t *q)
{
    return q->given && (q->limit_set || q->throttle_ms_minute > 0);
}

/* The quota row under a tenant's row: the throttle time given in the last
 * minute, then each limit in force with the use against it, coloured by
 * how close it is.  Returns false (nothing drawn) when has_quota_row() is. */
static bool quota_row(int y, const mk_tui_quotas_t *q)
{
    static const char *const label[MK_TUI_QUOTA_KEYS] = {"in", "out", "req", "mut", "conn/s", "conn", "parts",
                                                         "storage"};
    static const int row_order[MK_TUI_QUOTA_KEYS] = {MK_TUI_Q_PRODUCE,    MK_TUI_Q_FETCH, MK_TUI_Q_REQUEST,
                                                     MK_TUI_Q_STORAGE,    MK_TUI_Q_PARTITIONS, MK_TUI_Q_CONNS,
                                                     MK_TUI_Q_MUTATION,   MK_TUI_Q_CONN_RATE};
    if (!has_quota_row(q))
        return false;
    char tm[16];
    mk_tui_fmt_secs(q->throttle_ms_minute, tm, sizeof(tm));
    int x = 2 + snprintf(NULL, 0, "throttle %s/min", tm) + 2;
    put(y, 2, COLS - 2, q->throttle_ms_minute > 0 ? attrs[K_WARN] : A_NORMAL, "throttle %s/min", tm);
    for (int i = 0; i < MK_TUI_QUOTA_KEYS; i++) {
        int k = row_order[i];
        if (!(q->limit_set >> k & 1))
            continue;
        char f[40], item[56];
        quota_fraction(q, k, f, sizeof(f));
        int w = snprintf(item, sizeof(item), "%s %s", label[k], f);
        if (x + w > COLS) { /* whole items only; the pane (Enter) has them all */
            put(y, x, COLS - x, attrs[K_DIM], "...");
            break;
        }
        put(y, x, COLS - x, (q->use_set >> k & 1) ? quota_attr(q->use[k], q->limit[k]) : A_NORMAL, "%s", item);
        x += w + 2;
    }
    return true;
}

/* A broker's share of one key for the pane: the tenant-wide limit's share
 * there, or a saturated broker's allowance when lower (marked "*"). */
static void fmt_share(const mk_tui_quota_broker_t *b, int k, char *out, size_t n, bool *capped)
{
    char v[12];
    double sh = b->share[k], cap = b->cap[k];
    if (cap > 0 && (sh <= 0 || cap < sh)) {
        mk_tui_fmt_short(cap, v, sizeof(v));
        snprintf(out, n, "%s*", v);
        *capped = true;
    } else if (sh > 0) {
        mk_tui_fmt_short(sh, out, n);
    } else {
        snprintf(out, n, "-");
    }
}

/* The pane's quota section from y: the throttle time, every limit in force
 * with the use against it, and each broker's part of the three measured
 * ones.  At most max rows; returns the rows used. */
static int draw_tenant_quotas(const mk_tui_tenant_detail_t *d, const mk_tui_quotas_t *q, int y, int max)
{
    if (max < 1 || !q->given)
        return 0;
    int y0 = y, end = y + max;
    char tm[16], tt[16];
    mk_tui_fmt_secs(q->throttle_ms_minute, tm, sizeof(tm));
    mk_tui_fmt_secs(q->throttle_ms_total, tt, sizeof(tt));
    put(y, 0, COLS, attrs[K_HEAD], " QUOTAS");
    put(y++, 8, COLS - 8, q->throttle_ms_minute > 0 ? attrs[K_WARN] : A_NORMAL,
        " throttled %s in the last minute; %s in %lld answers since start", tm, tt,
        (long long)(q->throttled > 0 ? q->throttled : 0));
    /* Limits, two to a row. */
    int half = COLS / 2, col = 0, nlim = 0;
    for (int k = 0; k < MK_TUI_QUOTA_KEYS && y < end; k++) {
        if (!(q->limit_set >> k & 1))
            continue;
        char f[40], pct[16] = "";
        quota_fraction(q, k, f, sizeof(f));
        bool has_use = (q->use_set >> k & 1) && k != MK_TUI_Q_MUTATION && k != MK_TUI_Q_CONN_RATE;
        double p = has_use ? q->use[k] * 100 / q->limit[k] : 0;
        if (has_use)
            snprintf(pct, sizeof(pct), p > 999 ? ">999%%" : "%4.0f%%", p);
        /* The two 24-character keys have no use to show: 22 columns hold the others. */
        put(y, 1 + col * half, half - 1, has_use ? quota_attr(q->use[k], q->limit[k]) : A_NORMAL, "%-22s %-9s %s",
            mk_tui_quota_keys[k], f, pct);
        nlim++;
        if (++col == 2) {
            col = 0;
            y++;
        }
    }
    if (col)
        y++;
    if (!nlim && y < end)
        put(y++, 2, COLS - 2, attrs[K_DIM], "no tenant-wide limits (PUT /v1/tenants/%s/quotas)", d->id);
    if (d->nentities && y < end)
        put(y++, 2, COLS - 2, A_NORMAL, "%d client quota%s inside the tenant (AlterClientQuotas; GET .../quotas)",
            d->nentities, d->nentities == 1 ? "" : "s");
    /* Each broker's part, when a measured key has a limit or the tenant is busy. */
    bool want = (q->limit_set & 7) != 0;
    for (int i = 0; !want && i < d->nqbrokers; i++)
        want = d->qbrokers[i].rate[0] + d->qbrokers[i].rate[1] > 0;
    if (want && d->nqbrokers && y + 1 < end) {
        put(y++, 2, COLS - 2, attrs[K_HEAD], "%-6s %8s %8s %8s %8s %8s %8s", "BROKER", "IN/s", "share", "OUT/s",
            "share", "REQ%", "share");
        bool capped = false;
        int i = 0;
        for (; i < d->nqbrokers && y < end - (i + 1 < d->nqbrokers ? 1 : 0); i++) {
            const mk_tui_quota_broker_t *b = &d->qbrokers[i];
            char r[3][16], sh[3][24];
            for (int k = 0; k < 3; k++) {
                mk_tui_fmt_short(b->rate[k], r[k], sizeof(r[k]));
                fmt_share(b, k, sh[k], sizeof(sh[k]), &capped);
            }
            put(y++, 2, COLS - 2, A_NORMAL, "%-6d %8s %8s %8s %8s %8s %8s", (int)b->broker, r[0], sh[0], r[1], sh[1],
                r[2], sh[2]);
        }
        if (i < d->nqbrokers && y < end)
            put(y++, 2, COLS - 2, attrs[K_DIM], "and %d more brokers", d->nqbrokers - i);
        if (capped && y < end)
            put(y++, 2, COLS - 2, attrs[K_DIM], "* a saturated broker's allowance (minikora.broker.quota.*)");
    }
    return y - y0;
}

/* One tenant's pane (Enter on a row): its figures, quotas, topics, groups
 * and busiest clients, from GET /v1/tenants/{id}. */
static void draw_tenant_detail(mk_tui_t *t, int y0, int rows)
{
    const mk_tui_model_t *m = &t->m;
    const mk_tui_tenant_detail_t *d = &m->tenant;
    int y = y0, end = y0 + rows;
    if (strcmp(d->id, t->sel_tenant) != 0 || d->status == 0) {
        put(y, 0, COLS, attrs[K_HEAD], " Tenant %s  (Esc: back)", t->sel_tenant);
        put(y + 2, 2, COLS - 2, attrs[K_DIM], "loading GET /v1/tenants/%s ...", t->sel_tenant);
        return;
    }
    if (d->status != 200) {
        put(y, 0, COLS, attrs[K_BAD], " Tenant %s does not exist (any more)  (Esc: back)", d->id);
        return;
    }
    char cell[16], conns[16], parts[16], st[16];
    fmt_cell(d->t.cell, cell, sizeof(cell));
    fmt_opt_int(d->t.conns, conns, sizeof(conns));
    fmt_opt_int(d->t.partitions, parts, sizeof(parts));
    fmt_opt_bytes(d->t.storage, st, sizeof(st));
    put(y++, 0, COLS, attrs[K_HEAD], " Tenant %s  (Esc: back)", d->id);
    put(y++, 2, COLS - 2, A_NORMAL, "cell %s   connections %s   keys %d   partitions %s   storage %s", cell, conns,
        d->nkeys, parts, st);
    const mk_tui_flow_t *f = mk_tui_model_tenant_flow(m, d->id);
    if (!f && d->t.have_flow)
        f = &d->t.flow;
    if (f) {
        char bi[16], bo[16], rq[16], xb[16], xc[24], line[160];
        mk_tui_fmt_bytes(f->bytes_in, bi, sizeof(bi));
        mk_tui_fmt_bytes(f->bytes_out, bo, sizeof(bo));
        mk_tui_fmt_count(f->requests, rq, sizeof(rq));
        int o = snprintf(line, sizeof(line), "in %s/s   out %s/s   requests %s/s", bi, bo, rq);
        if (f->has_cross_az_bytes || f->has_cross_az_cost) {
            mk_tui_fmt_bytes(f->cross_az_bytes, xb, sizeof(xb));
            mk_tui_fmt_cost(f->cross_az_cost, xc, sizeof(xc));
            snprintf(line + o, sizeof(line) - (size_t)o, "   cross-AZ %s%s%s", f->has_cross_az_bytes ? xb : "",
                     f->has_cross_az_bytes && f->has_cross_az_cost ? " " : "", f->has_cross_az_cost ? xc : "");
        }
        put(y, 2, COLS - 2, A_NORMAL, "%s", line);
    }
    y += 2;
    /* Quotas, leaving the lists below at least five rows. */
    int qr = draw_tenant_quotas(d, &d->t.q, y, end - y - 5);
    if (qr)
        y += qr + 1;
    /* Topics and groups side by side, as long as the longer list (or what
     * the busiest clients below them leave); Up/Down scroll them. */
    int clients = d->nclients < 10 ? d->nclients : 10;
    int below = 2 + (clients ? clients : 1);
    int longest = d->ntopics > d->ngroups ? d->ntopics : d->ngroups;
    int list_rows = MK_MIN(MK_MAX(longest, 1), end - y - 1 - below);
    if (list_rows < 1)
        list_rows = 1;
    scroll_fix(&t->tenant_scroll, -1, longest, list_rows);
    int half = COLS / 2;
    put(y, 0, half, attrs[K_HEAD], " TOPICS (%d)", d->ntopics);
    put(y, half, COLS - half, attrs[K_HEAD], "GROUPS (%d)", d->ngroups);
    y++;
    for (int r = 0; r < list_rows && y + r < end; r++) {
        int i = t->tenant_scroll + r;
        if (i < d->ntopics)
            put(y + r, 2, half - 3, A_NORMAL, "%s", d->topics[i]);
        if (i < d->ngroups)
            put(y + r, half + 1, COLS - half - 1, A_NORMAL, "%s", d->groups[i]);
    }
    if (d->ntopics == 0)
        put(y, 2, half - 3, attrs[K_DIM], "none");
    if (d->ngroups == 0)
        put(y, half + 1, COLS - half - 1, attrs[K_DIM], "none");
    y += list_rows + 1;
    client_rows(t, d->clients, d->nclients, false, y, end - y);
}

static void draw_tenants(mk_tui_t *t, int y0, int rows)
{
    mk_tui_model_t *m = &t->m;
    if (no_cluster(t, y0))
        return;
    if (t->tenant_open) {
        draw_tenant_detail(t, y0, rows);
        return;
    }
    int y = y0, end = y0 + rows;
    /* The cluster's totals. */
    put(y++, 0, COLS, attrs[K_HEAD], " %-9s %12s %12s %12s %12s", "Cluster", "in/s", "in total", "out/s",
        "out total");
    const mk_tui_flow_t *f = &m->cluster_flow;
    if (m->have_rates) {
        flow_pair(y++, "bytes", f->bytes_in, f->bytes_in_total, f->bytes_out, f->bytes_out_total, true);
        flow_pair(y++, "records", f->records_in, f->records_in_total, f->records_out, f->records_out_total, false);
    } else {
        put(y, 2, COLS - 2, attrs[K_DIM], "no rates from the admin API (GET /v1/rates)");
        y += 2;
    }
    int64_t storage = 0;
    for (int i = 0; i < m->ntopics; i++)
        storage += m->topics[i].size;
    int conns = 0;
    for (int i = 0; i < m->nbrokers; i++)
        conns += m->brokers[i].conns;
    char st[16], rq[16], rqt[16];
    mk_tui_fmt_bytes((double)storage, st, sizeof(st));
    mk_tui_fmt_count(f->requests, rq, sizeof(rq));
    mk_tui_fmt_count(f->requests_total, rqt, sizeof(rqt));
    put(y++, 1, COLS - 1, A_NORMAL, "requests %s/s (%s)   storage %s   connections %d   groups %d", rq, rqt, st,
        conns, m->ngroups);
    y++;

    /* One row per tenant; "default" is the clients that did not authenticate.
     * The cross-AZ columns appear when the API gives those figures.  A
     * tenant with limits, or throttled in the last minute, gets a second
     * row: the throttle time of the last minute and each limit with its use
     * against it. */
    int *idx = idx_alloc(m->ntenants);
    if (!idx)
        return;
    int n = mk_tui_view_tenant_rows(t, idx, m->ntenants);
    bool xb = false, xc = false;
    for (int i = 0; i < n; i++) {
        const mk_tui_flow_t *tf = mk_tui_model_tenant_flow(m, m->tenants[idx[i]].id);
        xb = xb || (tf && tf->has_cross_az_bytes);
        xc = xc || (tf && tf->has_cross_az_cost);
    }
    int namew = COLS - 51 - (xb ? 9 : 0) - (xc ? 9 : 0); /* what the 7 (or 9) figures leave */
    namew = namew < 8 ? 8 : namew > MK_TUI_TENANT_ID - 8 ? MK_TUI_TENANT_ID - 8 : namew;
    int longest = 0; /* no wider than the longest id: the figures stay beside the names */
    for (int i = 0; i < n; i++)
        longest = MK_MAX(longest, (int)strlen(m->tenants[idx[i]].id) + 1);
    namew = name_width(longest, 8, namew);
    header(t, MK_TUI_V_TENANTS, y, " %-*s %4s %8s %8s %6s %4s %5s %8s%s%s", namew, "TENANT", "CELL", "IN/s", "OUT/s",
           "REQ/s", "CONN", "PARTS", "STORAGE", xb ? "     X-AZ" : "", xc ? "   X-AZ $" : "");
    y++;
    int sel = -1;
    for (int i = 0; i < n; i++)
        if (strcmp(m->tenants[idx[i]].id, t->sel_tenant) == 0)
            sel = i;
    if (sel < 0 && n > 0) {
        sel = 0;
        snprintf(t->sel_tenant, sizeof(t->sel_tenant), "%s", m->tenants[idx[0]].id);
    }
    /* Tenants take what is left after at least three client rows; the
     * first one shown keeps the selection (and its quota row) on screen. */
    int cap = end - y - 5;
    if (cap < 3)
        cap = 3;
#define TROWS(i) (1 + has_quota_row(&m->tenants[idx[i]].q))
    int *top = &t->scroll[MK_TUI_V_TENANTS];
    if (*top >= n)
        *top = n > 0 ? n - 1 : 0;
    if (*top > sel && sel >= 0)
        *top = sel;
    for (int used = 0;; used = 0) {
        for (int i = *top; i <= sel && i < n; i++)
            used += TROWS(i);
        if (used <= cap || *top >= sel)
            break;
        (*top)++;
    }
    for (;;) { /* no empty rows at the end while tenants above are hidden */
        int used = 0;
        for (int i = *top; i < n; i++)
            used += TROWS(i);
        if (*top == 0 || used + TROWS(*top - 1) > cap)
            break;
        (*top)--;
    }
    int shown = 0;
    for (int i = *top; i < n && shown + TROWS(i) <= cap; i++) {
        const mk_tui_tenant_t *tn = &m->tenants[idx[i]];
        const mk_tui_flow_t *tf = mk_tui_model_tenant_flow(m, tn->id);
        bool is_sel = i == sel;
        int row = y + shown;
        if (is_sel)
            fill_row(row, attrs[K_SEL]);
        char cell[16], bi[16] = "-", bo[16] = "-", rqs[16] = "-", cn[16], pt[16], sto[16], x1[16] = "", x2[24] = "";
        fmt_cell(tn->cell, cell, sizeof(cell));
        if (tf) {
            mk_tui_fmt_bytes(tf->bytes_in, bi, sizeof(bi));
            mk_tui_fmt_bytes(tf->bytes_out, bo, sizeof(bo));
            mk_tui_fmt_count(tf->requests, rqs, sizeof(rqs));
        }
        fmt_opt_int(tn->conns, cn, sizeof(cn));
        fmt_opt_int(tn->partitions, pt, sizeof(pt));
        fmt_opt_bytes(tn->storage, sto, sizeof(sto));
        if (xb) {
            char v[16] = "-";
            if (tf && tf->has_cross_az_bytes)
                mk_tui_fmt_bytes(tf->cross_az_bytes, v, sizeof(v));
            snprintf(x1, sizeof(x1), " %8s", v);
        }
        if (xc) {
            char v[16] = "-";
            if (tf && tf->has_cross_az_cost)
                mk_tui_fmt_cost(tf->cross_az_cost, v, sizeof(v));
            snprintf(x2, sizeof(x2), " %8s", v);
        }
        put(row, 0, COLS, is_sel ? attrs[K_SEL] : A_NORMAL, "%s%-*.*s %4s %8s %8s %6s %4s %5s %8s%s%s",
            is_sel ? ">" : " ", namew, namew, tn->id, cell, bi, bo, rqs, cn, pt, sto, x1, x2);
        shown++;
        if (quota_row(row + 1, &tn->q))
            shown++;
    }
#undef TROWS
    if (n == 0) {
        put(y, 2, COLS - 2, attrs[K_DIM], "%s", m->ntenants ? "no tenants match the filter" : "no tenants yet");
        shown = 1;
    }
    mk_free(idx);
    y += shown + 1;
    client_rows(t, m->client_flows, m->nclient_flows, true, y, end - y);
}

/* =============================================================== events */

static void draw_events(mk_tui_t *t, int y0, int rows)
{
    mk_tui_model_t *m = &t->m;
    int y = y0;
    put(y, 0, COLS, attrs[K_HEAD], " %-6s %-8s %3s %-18s %s", "SEQ", "TIME", "BRK", "TYPE", "MESSAGE (newest first)");
    y++;
    int list_rows = y0 + rows - y;
    int *idx = idx_alloc(m->nevents);
    if (!idx)
        return;
    int n = mk_tui_view_event_rows(t, idx, m->nevents);
    scroll_fix(&t->scroll[MK_TUI_V_EVENTS], -1, n, list_rows);
    /* Each message shown whole: wrapped under its column; the last event
     * on the screen, when it does not fit, is cut with "...". */
    int mw = COLS - 40 >= 20 ? COLS - 40 : COLS - 2, mx = COLS - 40 >= 20 ? 40 : 2;
    for (int r = 0, k = t->scroll[MK_TUI_V_EVENTS]; r < list_rows && k < n; k++) {
        const mk_tui_event_t *e = mk_tui_model_event(m, idx[k]);
        char when[16] = "", brk[16] = "-";
        time_t secs = (time_t)(e->time_ms / 1000);
        struct tm tm;
        if (localtime_r(&secs, &tm))
            strftime(when, sizeof(when), "%H:%M:%S", &tm);
        if (e->broker >= 0)
            snprintf(brk, sizeof(brk), "%d", e->broker);
        bool bad = strstr(e->type, "stop") || strstr(e->type, "crash") || strstr(e->type, "down") ||
                   strstr(e->type, "offline") || strstr(e->type, "error");
        put(y + r, 0, COLS, A_NORMAL, " %-6llu %-8s %3s ", (unsigned long long)e->seq, when, brk);
        put(y + r, 21, 19, bad ? attrs[K_WARN] : attrs[K_OK], "%-18.18s", e->type);
        if (mx == 2 && ++r >= list_rows) /* a narrow screen: the message on the lines below */
            break;
        const char *msg = e->message;
        int len = (int)strlen(msg);
        for (int off = 0, step; off < len || off == 0; off += step, r++) {
            if (r >= list_rows)
                break;
            /* A line ends after its last space when one is in its last third (words stay whole). */
            step = MK_MIN(mw, len - off);
            for (int c = step; off + step < len && c > mw * 2 / 3; c--)
                if (msg[off + c - 1] == ' ') {
                    step = c;
                    break;
                }
            if (step <= 0)
                break;
            bool last_row = r == list_rows - 1;
            if (last_row && len - off > mw)
                put_cut(y + r, mx, mw, A_NORMAL, msg + off);
            else
                put(y + r, mx, mw, A_NORMAL, "%.*s", step, msg + off);
        }
    }
    if (n == 0)
        put(y, 2, COLS - 2, attrs[K_DIM], "%s", m->nevents ? "no events match the filter" : "no events yet");
    mk_free(idx);
}

/* =============================================================== groups */

/* One group's pane (Enter on a row): state, members with their
 * assignments, and each committed partition with its lag and a sparkline
 * of it, from GET /v1/groups/{id}. */
static void draw_group_detail(mk_tui_t *t, int y0, int rows)
{
    const mk_tui_group_detail_t *d = &t->m.group;
    int y = y0, end = y0 + rows;
    if (strcmp(d->id, t->sel_group) != 0 || d->status == 0) {
        put(y, 0, COLS, attrs[K_HEAD], " Group %s  (Esc: back)", t->sel_group);
        put(y + 2, 2, COLS - 2, attrs[K_DIM], "loading GET /v1/groups/%s ...", t->sel_group);
        return;
    }
    if (d->status != 200) {
        put(y, 0, COLS, attrs[K_BAD], " Group %s does not exist (any more)  (Esc: back)", d->id);
        return;
    }
    char lag[24] = "-";
    if (d->lag >= 0)
        mk_tui_fmt_count((double)d->lag, lag, sizeof(lag));
    put(y++, 0, COLS, attrs[K_HEAD], " Group %s  %s  %s  coordinator %d  lag %s  (Esc: back)", d->id, d->state,
        d->protocol[0] ? d->protocol : "-", (int)d->coordinator, lag);
    put(y, 1, 4, A_NORMAL, "lag");
    if (d->hist)
        spark(t, y, 5, COLS - 6, d->hist, attrs[K_WARN]);
    y += 2;
    /* Members: at most a third of the rows, the partitions get the rest. */
    int mrows = MK_MIN(d->nmembers, MK_MAX((end - y) / 3, 1));
    put(y++, 0, COLS, attrs[K_HEAD], " %-20s %-22s %s", "MEMBER (client id)", "HOST", "ASSIGNMENT");
    for (int i = 0; i < mrows && y < end; i++, y++) {
        const mk_tui_member_t *mb = &d->members[i];
        bool more = i == mrows - 1 && mrows < d->nmembers;
        if (more) {
            put(y, 2, COLS - 2, attrs[K_DIM], "and %d more members", d->nmembers - i);
            break;
        }
        put(y, 0, COLS, A_NORMAL, " %-20.20s %-22.22s", mb->client_id[0] ? mb->client_id : mb->member_id, mb->host);
        put_cut(y, 45, COLS - 45, A_NORMAL, mb->assignment[0] ? mb->assignment : "-");
    }
    if (d->nmembers == 0 && y < end)
        put(y++, 2, COLS - 2, attrs[K_DIM], "no members (%s)", d->state);
    y++;
    if (y >= end)
        return;
    int longest = 0;
    for (int i = 0; i < d->noffsets; i++)
        longest = MK_MAX(longest, (int)strlen(d->offsets[i].topic) + 1);
    int tw = name_width(longest, 10, MK_MAX(COLS - 54, 10)); /* 8 columns of sparkline at least */
    put(y++, 0, COLS, attrs[K_HEAD], " %-*s %4s %10s %9s  %-16s %s", tw, "TOPIC", "PART", "COMMITTED", "LAG",
        "CONSUMER", "LAG HISTORY");
    int list_rows = end - y;
    scroll_fix(&t->group_scroll, -1, d->noffsets, list_rows);
    int sx = 1 + tw + 1 + 4 + 1 + 10 + 1 + 9 + 2 + 16 + 1;
    for (int r = 0; r < list_rows && t->group_scroll + r < d->noffsets; r++) {
        const mk_tui_goffset_t *o = &d->offsets[t->group_scroll + r];
        char l[24] = "-";
        if (o->lag >= 0)
            snprintf(l, sizeof(l), "%lld", (long long)o->lag);
        put(y + r, 0, COLS, A_NORMAL, " %-*.*s %4d %10lld", tw, tw, o->topic, (int)o->partition, (long long)o->offset);
        put(y + r, 1 + tw + 1 + 4 + 1 + 10, 10, o->lag > 0 ? attrs[K_WARN] : attrs[K_OK], " %9s", l);
        put(y + r, 1 + tw + 1 + 4 + 1 + 10 + 10, COLS, A_NORMAL, "  %-16.16s", o->owner[0] ? o->owner : "-");
        if (o->hist && COLS - sx >= 4)
            spark(t, y + r, sx, MK_MIN(COLS - sx - 1, 60), o->hist, attrs[K_WARN]);
    }
    if (d->noffsets == 0)
        put(y, 2, COLS - 2, attrs[K_DIM], "no committed offsets");
}

/* Consumer groups: state, members, committed partitions, total lag and a
 * sparkline of it; Enter opens one group. */
static void draw_groups(mk_tui_t *t, int y0, int rows)
{
    mk_tui_model_t *m = &t->m;
    if (no_cluster(t, y0))
        return;
    if (t->group_open) {
        draw_group_detail(t, y0, rows);
        return;
    }
    int y = y0;
    put(y++, 0, COLS, attrs[K_HEAD], " Consumer groups: %d", m->ngroups);
    int *idx = idx_alloc(m->ngroups);
    if (!idx)
        return;
    int n = mk_tui_view_group_rows(t, idx, m->ngroups);
    int longest = 0;
    for (int i = 0; i < n; i++)
        longest = MK_MAX(longest, (int)strlen(m->groups[idx[i]].id) + 1);
    int namew = name_width(longest, 12, COLS - 60);
    header(t, MK_TUI_V_GROUPS, y++, " %-*s %-12s %7s %5s %5s %9s  %s", namew, "GROUP", "STATE", "MEMBERS", "COORD",
           "PARTS", "LAG", "LAG HISTORY");
    int list_rows = y0 + rows - y;
    int sel = -1;
    for (int i = 0; i < n; i++)
        if (strcmp(m->groups[idx[i]].id, t->sel_group) == 0)
            sel = i;
    if (sel < 0 && n > 0) {
        sel = 0;
        snprintf(t->sel_group, sizeof(t->sel_group), "%s", m->groups[idx[0]].id);
    }
    scroll_fix(&t->scroll[MK_TUI_V_GROUPS], sel, n, list_rows);
    int sx = 1 + namew + 1 + 12 + 1 + 7 + 1 + 5 + 1 + 5 + 1 + 9 + 2;
    for (int r = 0; r < list_rows && t->scroll[MK_TUI_V_GROUPS] + r < n; r++) {
        int i = t->scroll[MK_TUI_V_GROUPS] + r;
        const mk_tui_group_t *g = &m->groups[idx[i]];
        bool is_sel = i == sel;
        attr_t base = is_sel ? attrs[K_SEL] : A_NORMAL;
        if (is_sel)
            fill_row(y + r, attrs[K_SEL]);
        char lag[24] = "-";
        if (g->lag >= 0)
            snprintf(lag, sizeof(lag), "%lld", (long long)g->lag);
        bool stable = strcmp(g->state, "Stable") == 0, empty = strcmp(g->state, "Empty") == 0;
        put(y + r, 0, COLS, base, "%s%-*.*s", is_sel ? ">" : " ", namew, namew, g->id);
        put(y + r, 1 + namew, 13, is_sel ? base : stable ? attrs[K_OK] : empty ? A_NORMAL : attrs[K_WARN], " %-12.12s",
            g->state);
        put(y + r, 1 + namew + 13, COLS, base, " %7d %5d %5d", (int)g->members, (int)g->coordinator,
            (int)g->partitions);
        put(y + r, 1 + namew + 13 + 20, 10, is_sel ? base : g->lag > 0 ? attrs[K_WARN] : A_NORMAL, " %9s", lag);
        if (g->hist && COLS - sx >= 4)
            spark(t, y + r, sx, MK_MIN(COLS - sx - 1, 60), g->hist, is_sel ? base : attrs[K_WARN]);
    }
    if (n == 0)
        put(y, 2, COLS - 2, attrs[K_DIM], "%s", m->ngroups ? "no groups match the filter" : "no consumer groups yet");
    mk_free(idx);
}

/* ================================================================= tail */

/* The tail of a topic's partition, as kcat -C -o end -f shows it: the
 * newest record at the bottom; Up scrolls back, Left/Right change the
 * partition, t stops. */
static void draw_tail(mk_tui_t *t, int y0, int rows)
{
    const mk_tui_model_t *m = &t->m;
    int y = y0, end = y0 + rows;
    int nparts = 0;
    for (int i = 0; i < m->ntopics; i++)
        if (strcmp(m->topics[i].name, t->drill_topic) == 0)
            nparts = m->topics[i].partitions;
    char hw[24] = "-";
    if (m->tail_hw >= 0)
        snprintf(hw, sizeof(hw), "%lld", (long long)m->tail_hw);
    put(y++, 0, COLS, attrs[K_HEAD], " Tail %s  partition %d of %d  high watermark %s  (t: stop, Left/Right: partition)",
        t->drill_topic, (int)m->tail_partition, nparts, hw);
    if (m->tail_status != 200 && m->tail_status != 0) {
        put(y++, 2, COLS - 2, attrs[K_BAD], "cannot read the records: %s", m->tail_err);
    }
    int kw = 4;
    for (int i = 0; i < m->ntail; i++)
        kw = MK_MAX(kw, (int)strlen(mk_tui_model_tail_record(m, i)->key));
    kw = MK_MIN(kw, 20);
    int hwid = 0;
    for (int i = 0; i < m->ntail; i++)
        hwid = MK_MAX(hwid, (int)strlen(mk_tui_model_tail_record(m, i)->headers));
    hwid = hwid ? MK_MIN(MK_MAX(hwid, 7), 30) : 0;
    int vx = 1 + 10 + 1 + 12 + 1 + kw + 1;
    int vw = COLS - vx - (hwid ? hwid + 1 : 0);
    if (vw < 10) { /* narrow: no headers column */
        hwid = 0;
        vw = COLS - vx;
    }
    put(y++, 0, COLS, attrs[K_HEAD], " %10s %-12s %-*s %-*s%s%s", "OFFSET", "TIME", kw, "KEY", MK_MAX(vw - 1, 1), "VALUE",
        hwid ? " " : "", hwid ? "HEADERS" : "");
    int list_rows = end - y;
    if (m->ntail == 0) {
        put(y, 2, COLS - 2, attrs[K_DIM], "%s", m->tail_status == 200 ? "no records yet: waiting for new ones"
                                                                      : "reading the newest records ...");
        return;
    }
    int maxscroll = MK_MAX(m->ntail - list_rows, 0);
    if (t->tail_scroll > maxscroll)
        t->tail_scroll = maxscroll;
    int shown = MK_MIN(list_rows, m->ntail - t->tail_scroll);
    for (int r = 0; r < shown; r++) {
        /* Oldest of the screen at the top, newest at the bottom. */
        const mk_tui_record_t *rec = mk_tui_model_tail_record(m, t->tail_scroll + shown - 1 - r);
        char when[24] = "-";
        if (rec->timestamp >= 0) {
            time_t secs = (time_t)(rec->timestamp / 1000);
            struct tm tm;
            if (localtime_r(&secs, &tm)) {
                strftime(when, sizeof(when), "%H:%M:%S", &tm);
                snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03d", (int)(rec->timestamp % 1000));
            }
        }
        int yy = y + r;
        put(yy, 0, COLS, A_NORMAL, " %10lld %-12s", (long long)rec->offset, when);
        put_cut(yy, 1 + 10 + 1 + 12 + 1, kw, rec->key_size < 0 ? attrs[K_DIM] : A_NORMAL,
                rec->key_size < 0 ? "null" : rec->key);
        put_cut(yy, vx, vw - 1, rec->value_size < 0 ? attrs[K_DIM] : A_NORMAL, rec->value_size < 0 ? "null" : rec->value);
        if (hwid)
            put_cut(yy, COLS - hwid, hwid, attrs[K_DIM], rec->headers);
    }
    if (t->tail_scroll > 0 && list_rows > 0)
        put(end - 1, COLS - 24, 24, attrs[K_DIM] | A_REVERSE, " %d newer below (Down) ", t->tail_scroll);
}

/* ============================================================== storage */

/* The three tiers: per tenant (its totals) and per topic, the bytes in
 * memory (chunks cached), on local disk (leader logs) and in S3, and the
 * upload backlog; above, S3's status, transfer rates and the cache. */
static void draw_storage(mk_tui_t *t, int y0, int rows)
{
    mk_tui_model_t *m = &t->m;
    int y = y0, end = y0 + rows;
    if (m->storage_status != 200) {
        put(y, 0, COLS, attrs[K_HEAD], " Storage");
        put(y + 2, 2, COLS - 2, attrs[K_DIM], "%s",
            m->storage_status == 0 ? "no data yet (waiting for GET /v1/storage)"
                                   : "no data: this admin API has no storage figures (GET /v1/storage)");
        return;
    }
    if (!m->tiering) {
        put(y, 0, COLS, attrs[K_HEAD], " Storage");
        put(y, 9, COLS - 9, attrs[K_DIM], "tiered storage is off (no S3 target, or remote.log.storage.system.enable=false)");
    } else {
        bool ok = strcmp(m->s3_status, "failing") != 0;
        put(y, 0, COLS, attrs[K_HEAD], " S3");
        put(y, 4, COLS - 4, ok ? attrs[K_OK] : attrs[K_BAD], "%s", m->s3_status);
        put(y, 4 + (int)strlen(m->s3_status) + 1, COLS - 20, A_NORMAL, " %s   uploads in flight %d, failed %lld",
            m->s3_url, m->uploads_in_flight, (long long)m->uploads_failed);
    }
    y++;
    char up[16], down[16], rq[16], err[16], cm[16], cmax[16], cd[16];
    mk_tui_fmt_bytes(m->up_rate, up, sizeof(up));
    mk_tui_fmt_bytes(m->down_rate, down, sizeof(down));
    mk_tui_fmt_count(m->s3_req_rate, rq, sizeof(rq));
    mk_tui_fmt_count(m->s3_err_total, err, sizeof(err));
    mk_tui_fmt_bytes((double)m->cache_mem, cm, sizeof(cm));
    mk_tui_fmt_bytes((double)m->cache_mem_max, cmax, sizeof(cmax));
    mk_tui_fmt_bytes((double)m->cache_disk, cd, sizeof(cd));
    put(y++, 1, COLS - 1, A_NORMAL, "to S3 %s/s  from S3 %s/s  S3 requests %s/s (errors %s)   cache: memory %s of %s, disk %s, hits %.0f%%",
        up, down, rq, err, cm, cmax, cd, m->cache_hit_rate * 100);
    if (m->s3_error[0] && strcmp(m->s3_status, "failing") == 0)
        put(y, 1, COLS - 1, attrs[K_BAD], "last S3 error: %s", m->s3_error);
    y++;
    put(y, 1, 4, A_NORMAL, "up");
    spark(t, y, 7, COLS / 2 - 8, &m->hist_up, attrs[K_OK]);
    put(y, COLS / 2, 6, A_NORMAL, "down");
    spark(t, y, COLS / 2 + 6, COLS / 2 - 7, &m->hist_down, attrs[K_HEAD]);
    y += 2;
    int longest = 0; /* as wide as the longest label: figures stay beside the names */
    for (int i = 0; i < m->nstorage; i++)
        longest = MK_MAX(longest, (int)strlen(m->storage[i].topic[0] ? m->storage[i].topic : m->storage[i].tenant) +
                                      (m->storage[i].topic[0] ? 2 + (m->storage[i].tiered ? 0 : 13) : 0));
    int namew = name_width(longest, 14, COLS - 58);
    put(y++, 0, COLS, attrs[K_HEAD], " %-*s %10s %10s %10s %10s %7s", namew, "TENANT / TOPIC", "MEMORY", "LOCAL", "S3",
        "BACKLOG", "S3 SEGS");
    int list_rows = end - y;
    int *idx = idx_alloc(m->nstorage);
    if (!idx)
        return;
    int n = mk_tui_view_storage_rows(t, idx, m->nstorage);
    scroll_fix(&t->scroll[MK_TUI_V_STORAGE], -1, n, list_rows);
    for (int r = 0; r < list_rows && t->scroll[MK_TUI_V_STORAGE] + r < n; r++) {
        const mk_tui_storage_row_t *s = &m->storage[idx[t->scroll[MK_TUI_V_STORAGE] + r]];
        char mem[16], loc[16], rem[16], bl[16], label[MK_TUI_NAME + 32];
        mk_tui_fmt_bytes((double)s->memory, mem, sizeof(mem));
        mk_tui_fmt_bytes((double)s->local, loc, sizeof(loc));
        mk_tui_fmt_bytes((double)s->remote, rem, sizeof(rem));
        mk_tui_fmt_bytes((double)s->backlog, bl, sizeof(bl));
        bool tenant = !s->topic[0];
        snprintf(label, sizeof(label), "%s%s%s", tenant ? "" : "  ", tenant ? s->tenant : s->topic,
                 !tenant && !s->tiered ? " (local only)" : "");
        attr_t a = tenant ? A_BOLD : s->backlog_segments > 2 ? attrs[K_WARN] : A_NORMAL;
        put(y + r, 0, COLS, a, " %-*.*s %10s %10s %10s %10s %7d", namew, namew, label, mem, loc, rem, bl,
            (int)s->remote_segments);
    }
    if (n == 0)
        put(y, 2, COLS - 2, attrs[K_DIM], "%s", m->nstorage ? "nothing matches the filter" : "no topics yet");
    mk_free(idx);
}

/* =============================================================== health */

int mk_tui_view_health_rows(const mk_tui_t *t, int *idx, int cap)
{
    const char *f = t->filter[MK_TUI_V_HEALTH];
    int n = 0;
    for (int i = 0; i < t->m.nhealth && n < cap; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", t->m.health[i].id);
        if (mk_tui_match(f, id) || mk_tui_match(f, t->m.health[i].state))
            idx[n++] = i;
    }
    return n;
}

/* The storage health manager: per broker its state and ladder step, its
 * storage I/O (the gate's figures) and its probes; the thresholds above. */
static void draw_health(mk_tui_t *t, int y0, int rows)
{
    mk_tui_model_t *m = &t->m;
    int y = y0, end = y0 + rows;
    put(y, 0, COLS, attrs[K_HEAD], " Health");
    if (m->health_status != 200) {
        put(y + 2, 2, COLS - 2, attrs[K_DIM], "%s",
            m->health_status == 0 ? "no data yet (waiting for GET /v1/health)"
                                  : "no data: this admin API has no health manager (GET /v1/health)");
        return;
    }
    char rep[32] = "never";
    if (m->health_replace_after_ms >= 0)
        mk_tui_fmt_secs(m->health_replace_after_ms, rep, sizeof(rep));
    char stall[32], grace[32];
    mk_tui_fmt_secs(m->health_stall_ms, stall, sizeof(stall));
    mk_tui_fmt_secs(m->health_restart_grace_ms, grace, sizeof(grace));
    put(y, 8, COLS - 8, m->health_enabled ? A_NORMAL : attrs[K_WARN], "%s   stall %s, after restart %s, replace after %s",
        m->health_enabled ? "ladder on" : "watch only", stall, grace, rep);
    y += 2;
    put(y++, 0, COLS, attrs[K_HEAD], " %-6s %-10s %-4s %7s %8s %6s %7s %7s %6s  %s", "BROKER", "STATE", "STEP",
        "STUCK", "IO OPS", "ERR", "P99 ms", "PROBE", "FAIL", "NOTE");
    int list_rows = end - y;
    int *idx = idx_alloc(m->nhealth);
    if (!idx)
        return;
    int n = mk_tui_view_health_rows(t, idx, m->nhealth);
    scroll_fix(&t->scroll[MK_TUI_V_HEALTH], -1, n, list_rows);
    for (int r = 0; r < list_rows && t->scroll[MK_TUI_V_HEALTH] + r < n; r++) {
        const mk_tui_health_row_t *h = &m->health[idx[t->scroll[MK_TUI_V_HEALTH] + r]];
        char stuck[16], ops[16], probe[16], note[160] = "";
        mk_tui_fmt_secs(h->no_progress_ms, stuck, sizeof(stuck));
        mk_tui_fmt_count((double)h->ops, ops, sizeof(ops));
        mk_tui_fmt_ms(h->produce_ms + h->consume_ms, probe, sizeof(probe));
        if (h->replaced_by)
            snprintf(note, sizeof(note), "replaced by %d", h->replaced_by);
        else if (h->replaces)
            snprintf(note, sizeof(note), "replaces %d", h->replaces);
        else if (h->probe_error[0])
            snprintf(note, sizeof(note), "%s", h->probe_error);
        else if (h->fenced)
            snprintf(note, sizeof(note), "fenced: out of the ISRs");
        bool ok = strcmp(h->state, "healthy") == 0;
        bool gone = strcmp(h->state, "retired") == 0 || strcmp(h->state, "stopped") == 0;
        attr_t a = ok ? A_NORMAL : gone ? attrs[K_DIM] : strcmp(h->state, "slow") == 0 ? attrs[K_WARN] : attrs[K_BAD];
        put(y + r, 0, COLS, a, " %-6d %-10s %-4d %7s %8s %6lld %7.1f %7s %6lld  %s", h->id, h->state, h->step,
            stuck, ops, (long long)h->errors, h->p99_ms, probe, (long long)h->probes_failed, note);
    }
    if (n == 0)
        put(y, 2, COLS - 2, attrs[K_DIM], "%s", m->nhealth ? "nothing matches the filter" : "no brokers yet");
    mk_free(idx);
}

/* ================================================================= help */

static void draw_help(void)
{
    static const char *lines[] = {
        "Tab, Shift-Tab  next / previous view",
        "1-8             Overview Placement Latency Tenants Events Storage Groups Health",
        "arrows, hjkl    move the cursor, scroll",
        "PgUp PgDn g G   page up / down, first, last",
        "Enter           partitions of a broker or topic; a tenant's or group's pane",
        "Esc, Backspace  back out; clear a filter",
        "/               filter the current list (Enter keeps it)",
        "o / O           sort the list by the next column / the other way round",
        "t               tail a topic (in its drill-down); Left/Right: partition",
        "s / S           stop (controlled) / start the broker",
        "c / D / X       crash / drain / remove (once drained) the broker",
        "a / A           take the broker's AZ down / up",
        "r               refresh now",
        "q               quit",
        "",
        "The broker is the one selected in Overview or Placement.",
        "Acting keys ask y/n first, then call the admin HTTP API.",
        "Any key closes this help.",
    };
    int n = (int)MK_ARRAY_LEN(lines);
    int w = 78 < COLS - 2 ? 78 : COLS - 2, h = n + 4 < LINES - 2 ? n + 4 : LINES - 2;
    int y0 = (LINES - h) / 2, x0 = (COLS - w) / 2;
    if (w < 10 || h < 4)
        return;
    for (int y = y0; y < y0 + h; y++)
        mvhline(y, x0, ' ', w);
    attron(attrs[K_HEAD]);
    mvhline(y0, x0, ACS_HLINE, w);
    mvhline(y0 + h - 1, x0, ACS_HLINE, w);
    mvvline(y0, x0, ACS_VLINE, h);
    mvvline(y0, x0 + w - 1, ACS_VLINE, h);
    mvaddch(y0, x0, ACS_ULCORNER);
    mvaddch(y0, x0 + w - 1, ACS_URCORNER);
    mvaddch(y0 + h - 1, x0, ACS_LLCORNER);
    mvaddch(y0 + h - 1, x0 + w - 1, ACS_LRCORNER);
    attroff(attrs[K_HEAD]);
    put(y0, x0 + 2, w - 4, attrs[K_HEAD], " minikora tui: keys ");
    for (int i = 0; i < n && i < h - 4; i++)
        put(y0 + 2 + i, x0 + 2, w - 4, A_NORMAL, "%s", lines[i]);
}

/* ================================================================= draw */

void mk_tui_view_draw(mk_tui_t *t)
{
    uint64_t now = mk_mono_ms();
    erase();
    if (LINES < 6 || COLS < 30) {
        put(0, 0, COLS, A_BOLD, "minikora tui: window too small (%dx%d)", COLS, LINES);
    } else {
        draw_tabs(t);
        draw_summary(t);
        int y0 = 2, rows = LINES - 3;
        switch (t->view) {
        case MK_TUI_V_OVERVIEW: draw_overview(t, y0, rows); break;
        case MK_TUI_V_PLACEMENT: draw_placement(t, y0, rows); break;
        case MK_TUI_V_LATENCY: draw_latency(t, y0, rows); break;
        case MK_TUI_V_TENANTS: draw_tenants(t, y0, rows); break;
        case MK_TUI_V_STORAGE: draw_storage(t, y0, rows); break;
        case MK_TUI_V_GROUPS: draw_groups(t, y0, rows); break;
        case MK_TUI_V_HEALTH: draw_health(t, y0, rows); break;
        default: draw_events(t, y0, rows); break;
        }
        draw_status(t, now);
        if (t->mode == MK_TUI_MODE_HELP)
            draw_help();
    }
    wnoutrefresh(stdscr);
    doupdate();
}
