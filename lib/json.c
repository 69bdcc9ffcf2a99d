/* json.c -- one JSON object (HTTP input, JSONL files) into a psb_event.
 *
 * The object is kept whole as a yajl tree in ev->json; the writer emits it with
 * the pipeline's fields merged in. The tree is built here from yajl's callback
 * parser rather than by yajl_tree_parse, for three reasons: the message is not
 * NUL-terminated, the nesting limit must stop the parse before a deep tree
 * exists, and errors should say at which byte they happened. The nodes are
 * yajl_tree's own structs, so any yajl_tree reader can walk the tree; they live
 * in the event's scratch (below), never to be passed to yajl_tree_free.
 *
 * Known ECS fields are then looked up in the tree, written either as nested
 * objects ({"host": {"hostname": "a"}}) or as dotted keys ({"host.hostname": "a"});
 * the event's slices point into the tree's strings.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "pasban/parse.h"

#define JSON_STR_(x) #x
#define JSON_STR(x) JSON_STR_(x)

/* ---- building the tree ---------------------------------------------------- */

/* The tree lives in the event's scratch, bump-allocated: the event is reused
 * for every message, so after the first few the JSON path allocates nothing,
 * and reset drops the tree by forgetting it (event.c knows a tree inside scratch
 * is not yajl_tree_free's). Nodes and strings grow up from the bottom; the
 * children of the open containers are pushed on a stack growing down from the
 * top, and copied into arrays of exactly their number when the container
 * closes, so nothing is wasted on growing arrays. Room is reserved before
 * parsing from the message size: the densest input ("[1,1,...]") needs 32 bytes
 * per byte of text (a 40-byte node, the number's copy, its slot and its stack
 * entry for every two bytes). */
#define JSON_TREE_PER_BYTE 36
#define JSON_TREE_SLACK 1024 /* the root and the label note_bad_timestamp may add */

typedef struct jb {
    psb_event *ev;
    yajl_val stack[PSB_MAX_JSON_DEPTH]; /* open containers, innermost last */
    size_t base[PSB_MAX_JSON_DEPTH];    /* child stack's top when each was opened */
    size_t top;                         /* the child stack's top, an offset in scratch */
    int depth;
    char *key; /* object key waiting for its value */
    yajl_val root;
    const char *why; /* our own reason for cancelling the parse, if any */
} jb;

#define JSON_NO_ROOM "object too large for its tree"

/* n bytes of scratch aligned for pointers, or NULL when the reserved room is
 * used up (which the reservation above should make impossible). */
static void *bump(jb *b, size_t n)
{
    psb_event *ev = b->ev;
    size_t off = (ev->scratch_len + 7) & ~(size_t)7;
    if (off > b->top || b->top - off < n) {
        b->why = JSON_NO_ROOM;
        return NULL;
    }
    ev->scratch_len = off + n;
    return ev->scratch + off;
}

static char *bump_str(jb *b, const char *s, size_t n)
{
    psb_event *ev = b->ev;
    if (ev->scratch_len > b->top || b->top - ev->scratch_len < n + 1) {
        b->why = JSON_NO_ROOM;
        return NULL;
    }
    char *d = ev->scratch + ev->scratch_len;
    memcpy(d, s, n);
    d[n] = '\0';
    ev->scratch_len += n + 1;
    return d;
}

static bool push(jb *b, const void *p)
{
    size_t low = (b->ev->scratch_len + 7) & ~(size_t)7;
    if (b->top < low + sizeof(p)) {
        b->why = JSON_NO_ROOM;
        return false;
    }
    b->top -= sizeof(p);
    memcpy(b->ev->scratch + b->top, &p, sizeof(p));
    return true;
}

static yajl_val node_new(jb *b, yajl_type t)
{
    yajl_val v = bump(b, sizeof(*v));
    if (v) {
        memset(v, 0, sizeof(*v));
        v->type = t;
    }
    return v;
}

/* Grow an array of pointers from have to want slots (old contents copied). */
static void *grow(jb *b, void *old, size_t have, size_t want)
{
    void *p = bump(b, want * sizeof(void *));
    if (p && have)
        memcpy(p, old, have * sizeof(void *));
    return p;
}

/* Attach v to the innermost open container (or make it the root). Returns 1, or
 * 0 to cancel the parse: the top level must be an object. */
static int attach(jb *b, yajl_val v)
{
    if (!v)
        return 0;
    if (b->depth == 0) {
        if (!YAJL_IS_OBJECT(v)) {
            b->why = "not an object";
            return 0;
        }
        b->root = v;
        return 1;
    }
    if (YAJL_IS_OBJECT(b->stack[b->depth - 1]) && !push(b, b->key))
        return 0;
    b->key = NULL;
    return push(b, v);
}

static int cb_open(jb *b, yajl_type t)
{
    if (b->depth >= PSB_MAX_JSON_DEPTH) {
        b->why = "nesting deeper than " JSON_STR(PSB_MAX_JSON_DEPTH) " levels";
        return 0;
    }
    yajl_val v = node_new(b, t);
    if (!attach(b, v))
        return 0;
    b->base[b->depth] = b->top;
    b->stack[b->depth++] = v;
    return 1;
}

/* The container is complete: move its children off the stack into its arrays. */
static int cb_close(void *ctx)
{
    jb *b = ctx;
    int d = --b->depth;
    yajl_val c = b->stack[d];
    size_t n = (b->base[d] - b->top) / sizeof(void *);
    const char *const scratch = b->ev->scratch;
    /* The stack grows down: the first child pushed is at the highest address. */
#define CHILD(i) (*(void *const *)(const void *)(scratch + b->base[d] - ((i) + 1) * sizeof(void *)))
    if (YAJL_IS_OBJECT(c)) {
        size_t pairs = n / 2;
        b->top = b->base[d]; /* pop first: the arrays may take that room */
        const char **keys = pairs ? bump(b, pairs * sizeof(char *)) : NULL;
        yajl_val *values = pairs ? bump(b, pairs * sizeof(yajl_val)) : NULL;
        if (pairs && (!keys || !values))
            return 0;
        for (size_t i = 0; i < pairs; i++) {
            keys[i] = CHILD(2 * i);
            values[i] = CHILD(2 * i + 1);
        }
        c->u.object.keys = keys;
        c->u.object.values = values;
        c->u.object.len = pairs;
    } else {
        b->top = b->base[d];
        yajl_val *values = n ? bump(b, n * sizeof(yajl_val)) : NULL;
        if (n && !values)
            return 0;
        for (size_t i = 0; i < n; i++)
            values[i] = CHILD(i);
        c->u.array.values = values;
        c->u.array.len = n;
    }
#undef CHILD
    return 1;
}

static int cb_start_map(void *ctx)
{
    return cb_open(ctx, yajl_t_object);
}

static int cb_start_array(void *ctx)
{
    return cb_open(ctx, yajl_t_array);
}

static int cb_key(void *ctx, const unsigned char *s, size_t n)
{
    jb *b = ctx;
    b->key = bump_str(b, (const char *)s, n);
    return b->key != NULL;
}

static int cb_string(void *ctx, const unsigned char *s, size_t n)
{
    jb *b = ctx;
    yajl_val v = node_new(b, yajl_t_string);
    if (!v || !(v->u.string = bump_str(b, (const char *)s, n)))
        return 0;
    return attach(b, v);
}

static int cb_number(void *ctx, const char *s, size_t n)
{
    jb *b = ctx;
    yajl_val v = node_new(b, yajl_t_number);
    char *r = v ? bump_str(b, s, n) : NULL;
    if (!r)
        return 0;
    v->u.number.r = r;
    /* Same flags as yajl_tree, so any yajl_tree reader sees the usual values. */
    char *end;
    errno = 0;
    v->u.number.i = strtoll(r, &end, 10);
    if (errno == 0 && *end == '\0')
        v->u.number.flags |= YAJL_NUMBER_INT_VALID;
    errno = 0;
    v->u.number.d = strtod(r, &end);
    if (errno == 0 && *end == '\0')
        v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
    return attach(b, v);
}

static int cb_bool(void *ctx, int val)
{
    return attach(ctx, node_new(ctx, val ? yajl_t_true : yajl_t_false));
}

static int cb_null(void *ctx)
{
    return attach(ctx, node_new(ctx, yajl_t_null));
}

static const yajl_callbacks json_callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_bool,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_key,
    .yajl_end_map = cb_close,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_close,
};

/* yajl's short error text ("parse error: trailing garbage\n") without the
 * prefix and the newline, copied into buf. */
static void yajl_reason(yajl_handle h, const char *msg, size_t len, char *buf, size_t cap)
{
    unsigned char *e = yajl_get_error(h, 0, (const unsigned char *)msg, len);
    const char *s = e ? (const char *)e : "invalid JSON";
    const char *colon = strstr(s, "error: ");
    if (colon)
        s = colon + 7;
    size_t n = strcspn(s, "\n");
    while (n && (s[n - 1] == '.' || s[n - 1] == ' '))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (e)
        yajl_free_error(h, e);
}

/* A tree this file built lives in scratch; one from yajl_tree_parse does not. */
static bool json_in_scratch(const psb_event *ev)
{
    uintptr_t p = (uintptr_t)ev->json, base = (uintptr_t)ev->scratch;
    return ev->scratch && p >= base && p - base < ev->scratch_cap;
}

/* Parse msg into a tree in ev's scratch; NULL after setting the event's error.
 * skipped: bytes before msg in the message, for the error's byte offset. A
 * string with an escaped NUL (\u0000) ends there in the tree, whose strings are
 * NUL-terminated as yajl_tree's are; event.original keeps it whole. */
static yajl_val build_tree(const char *msg, size_t len, size_t skipped, psb_event *ev)
{
    jb b = {.ev = ev, .top = ev->scratch_cap};
    yajl_handle h = yajl_alloc(&json_callbacks, NULL, &b);
    /* Invalid UTF-8 is not worth losing an event over: the writer replaces each
     * bad byte with U+FFFD, as it does for syslog. */
    yajl_config(h, yajl_dont_validate_strings, 1);
    yajl_status st = yajl_parse(h, (const unsigned char *)msg, len);
    /* yajl counts the offending byte as consumed; point at it instead. */
    size_t at = yajl_get_bytes_consumed(h);
    if (at > 0)
        at--;
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h); /* errors here are at the end: a truncated object */
        at = len;
    }
    if (st != yajl_status_ok) {
        char reason[96];
        if (b.why)
            snprintf(reason, sizeof(reason), "%s", b.why);
        else
            yajl_reason(h, msg, len, reason, sizeof(reason));
        if (b.why && !b.root && b.depth == 0) { /* the top-level value: point at its start */
            for (at = 0; at < len && memchr(" \t\r\n", msg[at], 4); at++)
                ;
        }
        psb_event_set_error(ev, "json: %s at byte %zu", reason, at + skipped);
        b.root = NULL; /* its nodes stay in scratch until the next reset */
    }
    yajl_free(h);
    return b.root;
}

/* ---- extracting the known fields ------------------------------------------ */

/* The fields taken into the struct, by their dotted ECS path. */
#define JSON_FIELDS(X)                                                                             \
    X(F_TIMESTAMP, "@timestamp")                                                                   \
    X(F_MESSAGE, "message")                                                                        \
    X(F_HOSTNAME, "host.hostname")                                                                 \
    X(F_PROCESS_NAME, "process.name")                                                              \
    X(F_PROCESS_PID, "process.pid")                                                                \
    X(F_APPNAME, "log.syslog.appname")                                                             \
    X(F_PROCID, "log.syslog.procid")                                                               \
    X(F_MSGID, "log.syslog.msgid")                                                                 \
    X(F_PRIORITY, "log.syslog.priority")                                                           \
    X(F_VERSION, "log.syslog.version")                                                             \
    X(F_FACILITY, "log.syslog.facility.code")                                                      \
    X(F_SEVERITY, "log.syslog.severity.code")                                                      \
    X(F_SD, "log.syslog.structured_data")                                                          \
    X(F_ORIGINAL, "event.original")                                                                \
    X(F_CREATED, "event.created")                                                                  \
    X(F_KIND, "event.kind")                                                                        \
    X(F_ORGANIZATION, "organization.id")                                                           \
    X(F_OBSERVER, "observer.ip")                                                                   \
    X(F_ERROR, "error.message")

#define FIELD_ENUM(id, path) id,
#define FIELD_ROW(id, path) {path, sizeof(path) - 1},
enum field { JSON_FIELDS(FIELD_ENUM) F_COUNT };
static const struct {
    const char *path;
    size_t len;
} fields[F_COUNT] = {JSON_FIELDS(FIELD_ROW)};

#define LABELS_PREFIX "labels."
#define LABELS_PREFIX_LEN 7
#define PATH_MAX_LEN 64 /* longer than any known path: deeper keys are not ours */

typedef struct found {
    yajl_val v[F_COUNT]; /* first value seen at each known path */
    psb_event *ev;
    bool labels_full;
} found;

static void add_label(found *f, const char *key, yajl_val v)
{
    psb_str val;
    if (YAJL_IS_STRING(v))
        val = psb_str_make(v->u.string, strlen(v->u.string));
    else if (YAJL_IS_NUMBER(v))
        val = psb_str_make(v->u.number.r, strlen(v->u.number.r));
    else if (YAJL_IS_TRUE(v))
        val = PSB_STR_LIT("true");
    else if (YAJL_IS_FALSE(v))
        val = PSB_STR_LIT("false");
    else
        return; /* labels are flat keyword values: null, objects and arrays stay in the tree only */
    /* Past the limit the labels stay in the tree (and in the output and in
     * psb_event_get through it); only the struct's copy stops. */
    if (psb_event_add_label(f->ev, psb_str_make(key, strlen(key)), val) < 0)
        f->labels_full = true;
}

/* log.syslog.structured_data: {SD-ID: {PARAM: "value"}}. The tree keeps every
 * element; the struct takes what fits its limits. */
static void take_sd(psb_event *ev, yajl_val sd)
{
    if (!YAJL_IS_OBJECT(sd) || ev->n_sd)
        return;
    for (size_t i = 0; i < sd->u.object.len && ev->n_sd < PSB_EVENT_MAX_SD_ELEMENTS; i++) {
        yajl_val params = sd->u.object.values[i];
        if (!YAJL_IS_OBJECT(params))
            continue;
        psb_sd_element *el = &ev->sd[ev->n_sd++];
        el->id = psb_str_make(sd->u.object.keys[i], strlen(sd->u.object.keys[i]));
        el->first_param = ev->n_sd_params;
        el->n_params = 0;
        for (size_t j = 0; j < params->u.object.len; j++) {
            yajl_val pv = params->u.object.values[j];
            if (!YAJL_IS_STRING(pv) || ev->n_sd_params >= PSB_EVENT_MAX_SD_PARAMS)
                continue;
            psb_kv *kv = &ev->sd_params[ev->n_sd_params++];
            kv->key = psb_str_make(params->u.object.keys[j], strlen(params->u.object.keys[j]));
            kv->value = psb_str_make(pv->u.string, strlen(pv->u.string));
            el->n_params++;
        }
    }
}

/* Is path (len bytes) a proper prefix, ending at a '.', of some known path? */
static bool is_known_parent(const char *path, size_t len)
{
    for (int i = 0; i < F_COUNT; i++)
        if (fields[i].len > len && fields[i].path[len] == '.' &&
            memcmp(fields[i].path, path, len) == 0)
            return true;
    return len + 1 == LABELS_PREFIX_LEN && memcmp(path, LABELS_PREFIX, len) == 0;
}

/* Walk an object whose path so far is path[0..plen), recording the known fields. */
static void walk(found *f, yajl_val obj, char *path, size_t plen)
{
    for (size_t i = 0; i < obj->u.object.len; i++) {
        const char *k = obj->u.object.keys[i];
        yajl_val v = obj->u.object.values[i];
        size_t kl = strlen(k);
        if (plen + kl >= PATH_MAX_LEN)
            continue;
        memcpy(path + plen, k, kl);
        size_t len = plen + kl;
        path[len] = '\0';
        if (len > LABELS_PREFIX_LEN && memcmp(path, LABELS_PREFIX, LABELS_PREFIX_LEN) == 0) {
            /* The label's name lies wholly in this key: labels' objects are only
             * entered at "labels." itself. */
            add_label(f, k + (LABELS_PREFIX_LEN - plen), v);
            continue;
        }
        int hit = -1;
        for (int j = 0; j < F_COUNT; j++) {
            if (fields[j].len == len && memcmp(fields[j].path, path, len) == 0) {
                hit = j;
                break;
            }
        }
        if (hit >= 0) {
            if (!f->v[hit])
                f->v[hit] = v;
            continue;
        }
        if (YAJL_IS_OBJECT(v) && is_known_parent(path, len)) {
            path[len] = '.';
            walk(f, v, path, len + 1);
        }
    }
}

static psb_str str_of(yajl_val v)
{
    if (YAJL_IS_STRING(v))
        return psb_str_make(v->u.string, strlen(v->u.string));
    return PSB_STR_NULL;
}

/* A string, or a number's text (a pid is often written as a number). */
static psb_str str_or_num(yajl_val v)
{
    if (YAJL_IS_NUMBER(v))
        return psb_str_make(v->u.number.r, strlen(v->u.number.r));
    return str_of(v);
}

static bool int_in(yajl_val v, long long lo, long long hi, int *out)
{
    if (!YAJL_IS_INTEGER(v) || v->u.number.i < lo || v->u.number.i > hi)
        return false;
    *out = (int)v->u.number.i;
    return true;
}

/* Append key: v to a finished object of the tree (static key text). */
static bool add_member(jb *b, yajl_val obj, const char *key, yajl_val v)
{
    size_t n = obj->u.object.len;
    const char **keys = grow(b, (void *)obj->u.object.keys, n, n + 1);
    yajl_val *values = grow(b, obj->u.object.values, n, n + 1);
    if (!keys || !values)
        return false;
    keys[n] = key;
    values[n] = v;
    obj->u.object.keys = keys;
    obj->u.object.values = values;
    obj->u.object.len = n + 1;
    return true;
}

/* @timestamp that is absent or not RFC 3339: the event keeps the receive time,
 * and says so in labels.invalid_timestamp (the value as given) so an analyst
 * can tell a source's bad clock text from its real time. */
static void note_bad_timestamp(psb_event *ev, yajl_val root, yajl_val ts)
{
    const char *text;
    if (YAJL_IS_STRING(ts))
        text = ts->u.string;
    else if (YAJL_IS_NUMBER(ts))
        text = ts->u.number.r;
    else
        text = YAJL_IS_OBJECT(ts) ? "(object)" : YAJL_IS_ARRAY(ts) ? "(array)" : "(not a string)";
    /* The tree is ours: add the label to it so the writer emits it with the rest.
     * Its arrays are sized to their contents, so adding a member means copying. */
    jb b = {.ev = ev, .top = ev->scratch_cap};
    yajl_val labels = NULL;
    bool taken = false; /* "labels" given but not an object: a second key would be a duplicate */
    for (size_t i = 0; i < root->u.object.len; i++) {
        if (strcmp(root->u.object.keys[i], "labels") == 0) {
            taken = true;
            if (YAJL_IS_OBJECT(root->u.object.values[i]))
                labels = root->u.object.values[i];
        }
    }
    yajl_val s = node_new(&b, yajl_t_string);
    char *copy = s ? bump_str(&b, text, strlen(text)) : NULL;
    if (!copy || (!labels && taken)) {
        psb_event_add_label(ev, PSB_STR_LIT("invalid_timestamp"), psb_str_make(text, strlen(text)));
        return;
    }
    s->u.string = copy;
    if (!labels) {
        labels = node_new(&b, yajl_t_object);
        if (!labels || !add_member(&b, root, "labels", labels))
            return;
    }
    if (add_member(&b, labels, "invalid_timestamp", s))
        psb_event_add_label(ev, PSB_STR_LIT("invalid_timestamp"), str_of(s));
}

int psb_parse_json(const psb_parse_opts *opts, const char *msg, size_t len, psb_event *ev)
{
    size_t max = opts->max_message ? opts->max_message : PSB_MAX_MESSAGE;
    if (len > max) {
        psb_event_set_error(ev, "json: message of %zu bytes exceeds the limit of %zu bytes", len,
                            max);
        return -1;
    }
    if (ev->json) { /* psb_parse resets first; a direct caller may not have */
        if (!json_in_scratch(ev))
            yajl_tree_free(ev->json);
        ev->json = NULL;
    }
    psb_event_reserve(ev, len * JSON_TREE_PER_BYTE + JSON_TREE_SLACK);
    /* A UTF-8 BOM starts many JSONL files written on Windows; it is not JSON. */
    size_t bom = len >= 3 && memcmp(msg, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    yajl_val root = build_tree(msg + bom, len - bom, bom, ev);
    if (!root) {
        if (!ev->error_message.ptr) /* empty input: yajl saw no value at all */
            psb_event_set_error(ev, "json: no object at byte 0");
        return -1;
    }
    ev->json = root;

    found f = {.ev = ev};
    char path[PATH_MAX_LEN + 1];
    walk(&f, root, path, 0);

    ev->message = str_of(f.v[F_MESSAGE]);
    ev->hostname = str_of(f.v[F_HOSTNAME]);
    ev->appname = str_of(f.v[F_PROCESS_NAME]);
    if (!ev->appname.ptr)
        ev->appname = str_of(f.v[F_APPNAME]);
    ev->procid = str_or_num(f.v[F_PROCID]);
    if (!ev->procid.ptr)
        ev->procid = str_or_num(f.v[F_PROCESS_PID]);
    ev->msgid = str_of(f.v[F_MSGID]);
    int pri, fac, sev;
    if (int_in(f.v[F_PRIORITY], 0, 191, &pri))
        ev->priority = pri;
    else if (int_in(f.v[F_FACILITY], 0, 23, &fac) && int_in(f.v[F_SEVERITY], 0, 7, &sev))
        ev->priority = fac * 8 + sev;
    int ver;
    if (int_in(f.v[F_VERSION], 1, 999, &ver))
        ev->version = ver;
    take_sd(ev, f.v[F_SD]);

    yajl_val ts = f.v[F_TIMESTAMP];
    int64_t ms;
    if (ts) {
        psb_str s = str_of(ts);
        if (s.ptr && psb_parse_rfc3339(s.ptr, s.len, &ms) == 0)
            ev->timestamp_ms = ms;
        else
            note_bad_timestamp(ev, root, ts);
    }

    if (opts->own_events) {
        /* Pasban's own event coming back: the pipeline fields it already carries
         * are the truth; where one is missing, the reader's own value stays. */
        psb_str s;
        if ((s = str_of(f.v[F_ORIGINAL])).ptr)
            ev->original = s;
        if ((s = str_of(f.v[F_CREATED])).ptr && psb_parse_rfc3339(s.ptr, s.len, &ms) == 0)
            ev->created_ms = ms;
        if ((s = str_of(f.v[F_ORGANIZATION])).ptr)
            ev->organization_id = s;
        if ((s = str_of(f.v[F_OBSERVER])).ptr)
            ev->observer_ip = s;
        if (psb_str_eq(str_of(f.v[F_KIND]), "pipeline_error")) {
            ev->kind = PSB_EVENT_KIND_PIPELINE_ERROR;
            ev->error_message = str_of(f.v[F_ERROR]);
            if (!ev->error_message.ptr)
                ev->error_message = PSB_STR_LIT("pipeline_error (no reason given)");
        }
    }
    return 0;
}

/* Past white space and comments (yajl_tree_parse allows both) from s[i]. */
static size_t json_skip_space(const char *s, size_t n, size_t i)
{
    while (i < n) {
        if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
            i++;
        } else if (s[i] == '/' && i + 1 < n && s[i + 1] == '/') {
            while (i < n && s[i] != '\n')
                i++;
        } else if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
            const char *e = strstr(s + i + 2, "*/");
            i = e ? (size_t)(e - s) + 2 : n;
        } else {
            break;
        }
    }
    return i;
}

/* Offset just past the object or array that starts text (after white space), or
 * 0 when it does not close: strings, escapes and comments are skipped, brackets
 * counted. */
static size_t json_value_end(const char *s, size_t n)
{
    size_t i = json_skip_space(s, n, 0), depth = 0;
    if (i == n || (s[i] != '{' && s[i] != '['))
        return 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
        } else if (c == '/' && i + 1 < n && (s[i + 1] == '/' || s[i + 1] == '*')) {
            i = json_skip_space(s, n, i) - 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return 0;
}

yajl_val psb_json_tree_parse(const char *text, char *err, size_t errlen)
{
    yajl_val v = yajl_tree_parse(text, err, errlen);
    if (!v || !(YAJL_IS_OBJECT(v) || YAJL_IS_ARRAY(v)))
        return v;
    size_t n = strlen(text), end = json_value_end(text, n);
    if (!end || json_skip_space(text, n, end) != n) {
        yajl_tree_free(v);
        if (err && errlen)
            snprintf(err, errlen, "trailing garbage after the JSON value");
        return NULL;
    }
    return v;
}

/* A '/' outside strings: the start of a comment, the only thing yajl's tree parser
 * takes beyond strict JSON. */
static bool json_has_comment(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
        } else if (s[i] == '/') {
            return true;
        }
    }
    return false;
}

yajl_val psb_json_record_parse(const char *text, char *err, size_t errlen)
{
    yajl_val v = psb_json_tree_parse(text, err, errlen);
    if (v && json_has_comment(text, strlen(text))) {
        yajl_tree_free(v);
        if (err && errlen)
            snprintf(err, errlen, "a comment in a record (records are strict JSON)");
        return NULL;
    }
    return v;
}
