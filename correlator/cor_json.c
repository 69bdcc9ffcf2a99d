/* cor_json.c -- yajl callbacks that build a small tree knowing each value's line. */
#include "cor_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "pasban/util.h"

typedef struct builder {
    cor_jnode *root;
    cor_jnode *stack[COR_JSON_MAX_DEPTH + 1];
    int depth;
    char *pending_key; /* key waiting for its value */
    int line;
    size_t nodes;
    const char *limit; /* why we stopped, when a limit was hit */
} builder;

static cor_jnode *node_new(int type, int line)
{
    cor_jnode *n = psb_xcalloc(1, sizeof(*n));
    n->type = type;
    n->line = line;
    return n;
}

void cor_json_free(cor_jnode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        cor_json_free(n->items[i]);
        if (n->keys)
            free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->str);
    free(n);
}

/* Attach a new value to the current container (or make it the root). */
static int add(builder *b, cor_jnode *n)
{
    if (++b->nodes > COR_JSON_MAX_NODES) {
        b->limit = "too many JSON values";
        cor_json_free(n);
        return 0;
    }
    if (b->depth == 0) {
        if (b->root) {
            cor_json_free(n);
            return 0;
        }
        b->root = n;
        return 1;
    }
    cor_jnode *c = b->stack[b->depth - 1];
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 4;
        c->items = psb_xrealloc(c->items, c->cap * sizeof(*c->items));
        if (c->type == COR_JOBJ)
            c->keys = psb_xrealloc(c->keys, c->cap * sizeof(*c->keys));
    }
    if (c->type == COR_JOBJ) {
        c->keys[c->n] = b->pending_key ? b->pending_key : psb_xstrdup("");
        b->pending_key = NULL;
    }
    c->items[c->n++] = n;
    return 1;
}

static int push(builder *b, cor_jnode *n)
{
    if (b->depth >= COR_JSON_MAX_DEPTH) {
        b->limit = "JSON nested too deep";
        cor_json_free(n);
        return 0;
    }
    if (!add(b, n))
        return 0;
    b->stack[b->depth++] = n;
    return 1;
}

static int cb_null(void *ctx)
{
    builder *b = ctx;
    return add(b, node_new(COR_JNULL, b->line));
}

static int cb_bool(void *ctx, int v)
{
    builder *b = ctx;
    cor_jnode *n = node_new(COR_JBOOL, b->line);
    n->boolean = v;
    return add(b, n);
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    builder *b = ctx;
    cor_jnode *n = node_new(COR_JNUM, b->line);
    n->str = psb_xstrndup(s, len);
    n->len = len;
    return add(b, n);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    builder *b = ctx;
    cor_jnode *n = node_new(COR_JSTR, b->line);
    n->str = psb_xstrndup((const char *)s, len);
    n->len = len;
    return add(b, n);
}

static int cb_start_map(void *ctx)
{
    builder *b = ctx;
    return push(b, node_new(COR_JOBJ, b->line));
}

static int cb_key(void *ctx, const unsigned char *s, size_t len)
{
    builder *b = ctx;
    free(b->pending_key);
    b->pending_key = psb_xstrndup((const char *)s, len);
    return 1;
}

static int cb_end(void *ctx)
{
    builder *b = ctx;
    b->depth--;
    return 1;
}

static int cb_start_array(void *ctx)
{
    builder *b = ctx;
    return push(b, node_new(COR_JARR, b->line));
}

static const yajl_callbacks callbacks = {
    cb_null,      cb_bool, NULL,   NULL,           cb_number, cb_string,
    cb_start_map, cb_key,  cb_end, cb_start_array, cb_end,
};

static void set_error(yajl_handle h, const unsigned char *chunk, size_t len, builder *b, char *err,
                      size_t errlen)
{
    if (b->limit) {
        snprintf(err, errlen, "%s", b->limit);
        return;
    }
    unsigned char *m = yajl_get_error(h, 0, chunk, len);
    /* yajl's text ends with a newline; an analyst wants one line. */
    size_t ml = strlen((const char *)m);
    while (ml && (m[ml - 1] == '\n' || m[ml - 1] == ' '))
        ml--;
    snprintf(err, errlen, "JSON syntax: %.*s", (int)ml, (const char *)m);
    yajl_free_error(h, m);
}

cor_jnode *cor_json_parse(const char *text, size_t len, char *err, size_t errlen, int *err_line)
{
    builder b;
    memset(&b, 0, sizeof(b));
    yajl_handle h = yajl_alloc(&callbacks, NULL, &b);
    yajl_config(h, yajl_allow_comments, 1);
    size_t off = 0;
    b.line = 1;
    int ok = 1;
    while (off < len) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (text + off)) + 1 : len - off;
        if (yajl_parse(h, (const unsigned char *)text + off, n) != yajl_status_ok) {
            set_error(h, (const unsigned char *)text + off, n, &b, err, errlen);
            ok = 0;
            break;
        }
        off += n;
        if (nl)
            b.line++;
    }
    if (ok && yajl_complete_parse(h) != yajl_status_ok) {
        set_error(h, (const unsigned char *)"", 0, &b, err, errlen);
        ok = 0;
    }
    if (ok && !b.root) {
        snprintf(err, errlen, "empty document");
        ok = 0;
    }
    yajl_free(h);
    free(b.pending_key);
    if (!ok) {
        if (err_line)
            *err_line = b.line;
        cor_json_free(b.root);
        return NULL;
    }
    return b.root;
}

const cor_jnode *cor_json_get(const cor_jnode *obj, const char *key)
{
    if (!obj || obj->type != COR_JOBJ)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return obj->items[i];
    return NULL;
}

void cor_buf_reserve(cor_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    b->p = psb_xrealloc(b->p, cap);
    b->cap = cap;
}

void cor_buf_put(cor_buf *b, const char *p, size_t n)
{
    cor_buf_reserve(b, n + 1);
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void cor_buf_puts(cor_buf *b, const char *s)
{
    cor_buf_put(b, s, strlen(s));
}

void cor_buf_putc(cor_buf *b, char c)
{
    cor_buf_put(b, &c, 1);
}

void cor_buf_free(cor_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t need;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    unsigned cp = c & (0x7f >> need);
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need;
}

bool cor_json_utf8_valid(const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(u + i, n - i);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

void cor_buf_json_str(cor_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    cor_buf_reserve(b, n + 3);
    cor_buf_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            size_t j = i;
            while (j < n && p[j] >= 0x20 && p[j] < 0x80 && p[j] != '"' && p[j] != '\\')
                j++;
            cor_buf_put(b, s + i, j - i);
            i = j;
            continue;
        }
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            cor_buf_put(b, e, 2);
            i++;
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            if (c == '\n')
                cor_buf_put(b, "\\n", 2);
            else if (c == '\r')
                cor_buf_put(b, "\\r", 2);
            else if (c == '\t')
                cor_buf_put(b, "\\t", 2);
            else
                cor_buf_put(b, e, 6);
            i++;
        } else {
            size_t l = utf8_len(p + i, n - i);
            if (l == 0) {
                cor_buf_put(b, "\xef\xbf\xbd", 3);
                i++;
            } else {
                cor_buf_put(b, s + i, l);
                i += l;
            }
        }
    }
    cor_buf_putc(b, '"');
}

void cor_json_render(const cor_jnode *n, cor_buf *b)
{
    switch (n->type) {
    case COR_JNULL:
        cor_buf_puts(b, "null");
        break;
    case COR_JBOOL:
        cor_buf_puts(b, n->boolean ? "true" : "false");
        break;
    case COR_JNUM:
        cor_buf_put(b, n->str, n->len);
        break;
    case COR_JSTR:
        cor_buf_json_str(b, n->str, n->len);
        break;
    case COR_JOBJ:
    case COR_JARR:
        cor_buf_putc(b, n->type == COR_JOBJ ? '{' : '[');
        for (size_t i = 0; i < n->n; i++) {
            if (i)
                cor_buf_putc(b, ',');
            if (n->type == COR_JOBJ) {
                cor_buf_json_str(b, n->keys[i], strlen(n->keys[i]));
                cor_buf_putc(b, ':');
            }
            cor_json_render(n->items[i], b);
        }
        cor_buf_putc(b, n->type == COR_JOBJ ? '}' : ']');
        break;
    default:
        break;
    }
}
