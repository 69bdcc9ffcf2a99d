/* cor_json.h -- JSON-with-comments documents for rule files, with the line of every value.
 *
 * Rule files are fed to yajl one line at a time so that every value built knows
 * the line it started on; errors then point an analyst at file:line. The tree is
 * small and owned by its root: cor_json_free(root) frees everything. Also holds
 * the growable output buffer and the JSON string escaper the correlator's
 * writers share.
 */
#ifndef COR_JSON_H
#define COR_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cor_jtype { COR_JNULL, COR_JBOOL, COR_JNUM, COR_JSTR, COR_JOBJ, COR_JARR };

#define COR_JSON_MAX_DEPTH 32
#define COR_JSON_MAX_NODES 1000000 /* a rule file bigger than this is a mistake */

typedef struct cor_jnode {
    int type;    /* enum cor_jtype */
    int line;    /* 1-based line the value starts on */
    int boolean; /* COR_JBOOL */
    char *str;   /* COR_JSTR value, COR_JNUM text; NUL-terminated, owned */
    size_t len;
    char **keys;              /* COR_JOBJ: keys[i] names items[i] */
    struct cor_jnode **items; /* COR_JOBJ values, COR_JARR elements */
    size_t n, cap;
} cor_jnode;

/* Parse text (len bytes) line by line with comments allowed. Returns the root, or
 * NULL with a message in err (and *err_line set) on a syntax error or past a limit. */
cor_jnode *cor_json_parse(const char *text, size_t len, char *err, size_t errlen, int *err_line);
void cor_json_free(cor_jnode *n);
/* Value of key in an object, or NULL. */
const cor_jnode *cor_json_get(const cor_jnode *obj, const char *key);

/* A growable byte buffer. */
typedef struct cor_buf {
    char *p;
    size_t len, cap;
} cor_buf;

void cor_buf_reserve(cor_buf *b, size_t n);
void cor_buf_put(cor_buf *b, const char *p, size_t n);
void cor_buf_puts(cor_buf *b, const char *s);
void cor_buf_putc(cor_buf *b, char c);
void cor_buf_free(cor_buf *b);
/* Append p[0..n) as a quoted JSON string; invalid UTF-8 becomes U+FFFD. */
void cor_buf_json_str(cor_buf *b, const char *p, size_t n);
/* Is p[0..n) valid UTF-8 (what cor_buf_json_str copies unchanged)? */
bool cor_json_utf8_valid(const char *p, size_t n);
/* Render a tree back to compact JSON. */
void cor_json_render(const cor_jnode *n, cor_buf *b);

#endif
