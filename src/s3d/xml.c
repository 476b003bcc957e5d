/*
 * xml.c -- the XML request bodies of S3 (CompleteMultipartUpload, Delete,
 * CreateBucketConfiguration, AccessControlPolicy), parsed with expat
 * (Debian's libexpat) into a small tree in the request's arena.
 *
 * Why expat: well-formedness, UTF-8, character references and namespaces
 * are fiddly to get right by hand, and these bodies come from anyone who
 * holds the key.  What we add around it, so that a body cannot cost more
 * than its bounded size:
 *   - a DOCTYPE stops the parse (no entities, internal or external, are
 *     ever defined, so nothing can expand);
 *   - depth <= MK_S3_MAX_XML_DEPTH, elements <= MK_S3_MAX_XML_NODES;
 *   - the body itself is at most MK_S3_MAX_XML bytes (ops.c), so the text
 *     kept is bounded by it.
 * Element names lose any "prefix:"; attributes are ignored (S3's bodies
 * carry data in elements only).  An element's text is its own character
 * data, concatenated; mixed content is not expected and not refused.
 *
 * expat is used by this file only.
 */
#include "s3d/s3d_int.h"

#include <expat.h>
#include <string.h>

typedef struct xstate_s {
    XML_Parser p;
    mk_arena_t *a;
    mk_s3_xnode_t *root;
    mk_s3_xnode_t *stack[MK_S3_MAX_XML_DEPTH];
    mk_s3_xnode_t *last_child[MK_S3_MAX_XML_DEPTH];
    mk_buf_t text[MK_S3_MAX_XML_DEPTH];
    int depth;
    int nodes;
    bool bad;
} xstate_t;

static void stop(xstate_t *x)
{
    x->bad = true;
    XML_StopParser(x->p, XML_FALSE);
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    xstate_t *x = ud;
    (void)attrs;
    if (x->bad)
        return;
    if (x->depth >= MK_S3_MAX_XML_DEPTH || ++x->nodes > MK_S3_MAX_XML_NODES || (x->depth == 0 && x->root)) {
        stop(x);
        return;
    }
    const char *colon = strrchr(name, ':');
    mk_s3_xnode_t *n = mk_arena_alloc(x->a, sizeof(*n));
    char *nm = mk_arena_strndup(x->a, colon ? colon + 1 : name, strlen(colon ? colon + 1 : name));
    if (!n || !nm) {
        stop(x);
        return;
    }
    n->name = nm;
    n->text = "";
    if (x->depth == 0) {
        x->root = n;
    } else {
        int d = x->depth - 1;
        if (x->last_child[d])
            x->last_child[d]->next = n;
        else
            x->stack[d]->child = n;
        x->last_child[d] = n;
    }
    x->stack[x->depth] = n;
    x->last_child[x->depth] = NULL;
    mk_buf_reset(&x->text[x->depth]);
    x->depth++;
}

static void on_end(void *ud, const XML_Char *name)
{
    xstate_t *x = ud;
    (void)name;
    if (x->bad || x->depth == 0)
        return;
    x->depth--;
    mk_buf_t *t = &x->text[x->depth];
    mk_s3_xnode_t *n = x->stack[x->depth];
    if (t->len) {
        char *s = mk_arena_strndup(x->a, (const char *)t->data, t->len);
        if (!s || !mk_buf_ok(t)) {
            stop(x);
            return;
        }
        n->text = s;
        n->text_len = t->len;
    }
}

static void on_text(void *ud, const XML_Char *s, int len)
{
    xstate_t *x = ud;
    if (x->bad || x->depth == 0 || len <= 0)
        return;
    mk_buf_put(&x->text[x->depth - 1], s, (size_t)len);
}

static void on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                       int has_internal)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal;
    stop(ud);
}

static void on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value, int vlen,
                      const XML_Char *base, const XML_Char *sysid, const XML_Char *pubid, const XML_Char *notation)
{
    (void)name;
    (void)is_param;
    (void)value;
    (void)vlen;
    (void)base;
    (void)sysid;
    (void)pubid;
    (void)notation;
    stop(ud);
}

mk_s3_xnode_t *mk_s3_xml_parse(const char *p, size_t n, mk_arena_t *a)
{
    if (n > MK_S3_MAX_XML || n > (size_t)INT32_MAX)
        return NULL;
    xstate_t x;
    memset(&x, 0, sizeof(x));
    x.a = a;
    x.p = XML_ParserCreate("UTF-8");
    if (!x.p)
        return NULL;
    for (int i = 0; i < MK_S3_MAX_XML_DEPTH; i++)
        mk_buf_init(&x.text[i]);
    XML_SetUserData(x.p, &x);
    XML_SetElementHandler(x.p, on_start, on_end);
    XML_SetCharacterDataHandler(x.p, on_text);
    XML_SetStartDoctypeDeclHandler(x.p, on_doctype);
    XML_SetEntityDeclHandler(x.p, on_entity);
    XML_SetParamEntityParsing(x.p, XML_PARAM_ENTITY_PARSING_NEVER);
    enum XML_Status st = XML_Parse(x.p, p, (int)n, XML_TRUE);
    bool ok = st == XML_STATUS_OK && !x.bad && x.root && x.depth == 0;
    XML_ParserFree(x.p);
    for (int i = 0; i < MK_S3_MAX_XML_DEPTH; i++)
        mk_buf_free(&x.text[i]);
    return ok ? x.root : NULL;
}

mk_s3_xnode_t *mk_s3_xml_child(const mk_s3_xnode_t *n, const char *name)
{
    for (mk_s3_xnode_t *c = n ? n->child : NULL; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}
