/* cor_prefilter.c -- Hyperscan prefilter databases, one per where field. */
#include "cor_prefilter.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "pasban/util.h"

#ifdef PASBAN_HAVE_HYPERSCAN
#include <hs/hs.h>
#endif

size_t cor_units_count(const cor_ruleset *rs)
{
    return rs->n_units;
}

uint32_t cor_unit_of(const cor_ruleset *rs, size_t rule, size_t step)
{
    const cor_rule *r = rs->rules[rule];
    return r->unit_base + (uint32_t)(r->n_steps - 1 - step);
}

#ifdef PASBAN_HAVE_HYPERSCAN

typedef struct pf_db {
    int field_id;
    hs_database_t *db;
} pf_db;

/* In id_units: the unit needs nothing but this id, so a hit makes it a candidate
 * without counting (an id hits at most once per scan: HS_FLAG_SINGLEMATCH). */
#define UNIT_ALONE 0x80000000u

struct cor_prefilter {
    pf_db *dbs;
    size_t n_dbs;
    uint32_t *id_first; /* Hyperscan id -> its units: id_units[first .. first+count) */
    uint32_t *id_count;
    uint32_t *id_units; /* unit, | UNIT_ALONE */
    size_t n_id_units, cap_id_units;
    size_t n_ids;
    size_t n_literals; /* of the ids, those that are required literals */
    uint16_t *need;    /* per unit: prefiltered patterns that must all hit */
    uint32_t *always;  /* units with no prefiltered pattern: always candidates */
    size_t n_always;
    size_t n_units;
    hs_scratch_t *proto;
};

/* What a scan of one short value found, kept for the next event with the same
 * value. Short fields (process.name, labels.mnemonic, host.hostname) take few
 * distinct values, and a Hyperscan call costs as much in setting up as a short
 * value costs to scan; a scan's ids depend on nothing but the value. */
#define MEMO_SLOTS 64 /* per database, direct-mapped */
#define MEMO_VALUE 47 /* longer values are scanned every time */
#define MEMO_IDS 12   /* a value hitting more ids is scanned every time */

typedef struct memo_slot {
    uint8_t len; /* of value; MEMO_VALUE + 1 = empty slot */
    uint8_t n_ids;
    char value[MEMO_VALUE];
    uint32_t ids[MEMO_IDS];
} memo_slot;

/* A unit's hit count in one place: the stamp, the count and what it must reach
 * in one cache line, not three arrays (at 1000 rules each is a miss). */
typedef struct unit_count {
    uint32_t stamp; /* the scan epoch hits belongs to */
    uint16_t hits;
    uint16_t need;
} unit_count;

struct cor_prefilter_scratch {
    const cor_prefilter *pf;
    hs_scratch_t *hs;
    unit_count *count; /* per unit */
    uint32_t epoch;
    uint32_t *out;
    size_t n_out;
    memo_slot *memo;   /* MEMO_SLOTS per database */
    memo_slot *record; /* the slot the current scan fills, or NULL */
    bool overflow;     /* the current scan hit more than MEMO_IDS ids */
};

/* ---- required literals ----
 *
 * A pattern's required literals are runs of plain characters that every match
 * must contain, found by a conservative walk of the top level of the pattern:
 * groups, classes, escapes like \d and anchors end a run; a quantifier that
 * allows zero drops the character before it; any top-level alternation, inline
 * option other than a leading (?i), \Q or extended mode gives up (no literals),
 * and the pattern then goes to Hyperscan whole, in prefilter mode. Literal sets
 * scan far faster than prefilter automata (FDR/Teddy), and requiring all of a
 * step's literals keeps the candidates few. */

#define LIT_MIN 3 /* shorter runs are in almost every log line */
#define LIT_MAX_PER_PATTERN 6

typedef struct lit {
    char *s;
    size_t len;
} lit;

static void lit_push(lit *out, size_t *n, const char *run, size_t len)
{
    if (len < LIT_MIN)
        return;
    if (*n < LIT_MAX_PER_PATTERN) {
        out[*n].s = psb_xstrndup(run, len);
        out[*n].len = len;
        (*n)++;
        return;
    }
    /* Keep the longest: they are the most selective. */
    size_t shortest = 0;
    for (size_t i = 1; i < *n; i++)
        if (out[i].len < out[shortest].len)
            shortest = i;
    if (out[shortest].len >= len)
        return;
    free(out[shortest].s);
    out[shortest].s = psb_xstrndup(run, len);
    out[shortest].len = len;
}

/* Skip a group starting at p[i] == '('; returns the index after its ')' or 0. */
static size_t skip_group(const char *p, size_t n, size_t i)
{
    int depth = 0;
    bool in_class = false;
    for (; i < n; i++) {
        char c = p[i];
        if (c == '\\') {
            i++;
            continue;
        }
        if (in_class) {
            if (c == ']')
                in_class = false;
            continue;
        }
        if (c == '[') {
            in_class = true;
            if (i + 1 < n && p[i + 1] == '^')
                i++;
            if (i + 1 < n && p[i + 1] == ']')
                i++;
        } else if (c == '(') {
            depth++;
        } else if (c == ')') {
            if (--depth == 0)
                return i + 1;
        }
    }
    return 0;
}

static size_t quantifier(const char *p, size_t n, size_t i, unsigned long *min);

/* After a group or class: its quantifier, if any (it only matters that the
 * group is skipped). Returns the index after it, or 0 when it is malformed. */
static size_t skip_quantifier(const char *p, size_t n, size_t i)
{
    unsigned long min;
    if (i < n && (p[i] == '*' || p[i] == '+' || p[i] == '?'))
        i++;
    else if (i < n && p[i] == '{') {
        size_t ql = quantifier(p, n, i, &min);
        if (ql == 0)
            return 0;
        i += ql;
    } else
        return i;
    if (i < n && (p[i] == '?' || p[i] == '+'))
        i++;
    return i;
}

/* Parse a {n}, {n,}, {n,m} quantifier at p[i]; sets *min. Returns length or 0. */
static size_t quantifier(const char *p, size_t n, size_t i, unsigned long *min)
{
    size_t j = i + 1;
    unsigned long v = 0;
    if (j >= n || p[j] < '0' || p[j] > '9')
        return 0;
    while (j < n && p[j] >= '0' && p[j] <= '9')
        v = v * 10 + (unsigned long)(p[j++] - '0');
    if (j < n && p[j] == ',') {
        j++;
        while (j < n && p[j] >= '0' && p[j] <= '9')
            j++;
    }
    if (j >= n || p[j] != '}')
        return 0;
    *min = v;
    return j - i + 1;
}

/* The plain character every match of the group p[i] == '(' .. p[j - 1] == ')' ends
 * with, or -1: a group that consumes (no lookaround), without alternation, inline
 * options or \Q at any depth (they could change what the character matches),
 * whose body ends with an unescaped character that is neither syntax nor
 * quantified. */
static int group_last_char(const char *p, size_t i, size_t j)
{
    size_t bs; /* where the body starts */
    if (p[i + 1] != '?')
        bs = i + 1;
    else if (p[i + 2] == ':' || p[i + 2] == '>')
        bs = i + 3;
    else if ((p[i + 2] == '<' && p[i + 3] != '=' && p[i + 3] != '!') ||
             (p[i + 2] == 'P' && p[i + 3] == '<')) {
        bs = i + 3;
        while (bs < j && p[bs] != '>')
            bs++;
        bs++;
    } else
        return -1;
    size_t k = j - 2; /* the character before ')' */
    if (k < bs || k >= j)
        return -1;
    char c = p[k];
    if (strchr("\\.^$|()[]{}*+?", c))
        return -1;
    /* The character may end an escape of several ("\x2c", "\054", "\cM", "\g1",
     * "\k<n>", "\p{L}"): a backslash before the run of word characters and
     * brackets that ends at k means it is no plain character. */
    for (size_t x = k; x-- > bs;) {
        if (p[x] == '\\')
            return -1;
        if (!isalnum((unsigned char)p[x]) && !strchr("{}<>'_", p[x]))
            break;
    }
    bool in_class = false;
    for (size_t x = bs; x < k; x++) {
        char d = p[x];
        if (d == '\\') {
            if (p[x + 1] == 'Q' || p[x + 1] == 'E')
                return -1;
            x++;
            continue;
        }
        if (in_class) {
            if (d == ']')
                in_class = false;
            continue;
        }
        if (d == '[') {
            in_class = true;
            if (p[x + 1] == '^')
                x++;
            if (p[x + 1] == ']')
                x++;
        } else if (d == '|') {
            return -1;
        } else if (d == '(' && p[x + 1] == '?' && p[x + 2] != ':') {
            return -1;
        }
    }
    return (unsigned char)c;
}

static size_t required_literals(const char *p, size_t n, lit *out, bool *caseless)
{
    size_t count = 0;
    char run[COR_MAX_PATTERN_LEN];
    size_t rl = 0;
    size_t i = 0;
    *caseless = false;
    if (n >= 4 && memcmp(p, "(?i)", 4) == 0) {
        *caseless = true;
        i = 4;
    }
    while (i < n) {
        char c = p[i];
        char litc;
        if (c == '\\') {
            if (i + 1 >= n)
                goto give_up;
            char e = p[i + 1];
            if (e == 'Q' || e == 'E')
                goto give_up;
            if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) {
                /* \d \S \b \x.. \1 ...: not a plain character */
                lit_push(out, &count, run, rl);
                rl = 0;
                if (e == 'x' || e == 'p' || e == 'P' || e == 'g' || e == 'k' || e == 'N' ||
                    e == 'o' || e == 'c' || (e >= '0' && e <= '9'))
                    goto give_up; /* may take arguments (or be octal); not worth parsing */
                if ((i = skip_quantifier(p, n, i + 2)) == 0)
                    goto give_up;
                continue;
            }
            litc = e;
            i += 2;
        } else if (c == '|') {
            goto give_up;
        } else if (c == '(') {
            if (i + 2 < n && p[i + 1] == '?' && p[i + 2] != ':' && p[i + 2] != '<' &&
                p[i + 2] != 'P' && p[i + 2] != '=' && p[i + 2] != '!' && p[i + 2] != '>')
                goto give_up; /* inline options and the like change what follows */
            lit_push(out, &count, run, rl);
            rl = 0;
            size_t j = skip_group(p, n, i);
            if (j == 0)
                goto give_up;
            int last = group_last_char(p, i, j);
            unsigned long reps = 1;
            if (j < n && (p[j] == '*' || p[j] == '?'))
                reps = 0;
            else if (j < n && p[j] == '{' && quantifier(p, n, j, &reps) == 0)
                goto give_up;
            if ((j = skip_quantifier(p, n, j)) == 0)
                goto give_up;
            i = j;
            /* "(?:[^,]*,){17}80,": the group's last character is before the next run
             * too, and ",80," is far rarer in events than "80,". */
            if (last >= 0 && reps > 0)
                run[rl++] = (char)last;
            continue;
        } else if (c == '[' || c == '.' || c == '^' || c == '$') {
            lit_push(out, &count, run, rl);
            rl = 0;
            if (c == '[') {
                /* skip the class */
                size_t j = i + 1;
                if (j < n && p[j] == '^')
                    j++;
                if (j < n && p[j] == ']')
                    j++;
                while (j < n && p[j] != ']') {
                    if (p[j] == '\\')
                        j++;
                    j++;
                }
                if (j >= n || (j = skip_quantifier(p, n, j + 1)) == 0)
                    goto give_up;
                i = j;
            } else {
                i++;
                if (c == '.' && (i = skip_quantifier(p, n, i)) == 0)
                    goto give_up;
            }
            continue;
        } else if (c == '*' || c == '+' || c == '?' || c == '{' || c == ')') {
            goto give_up; /* a quantifier on a group or class, or something odd */
        } else {
            litc = c;
            i++;
        }
        /* A quantifier after this character? */
        unsigned long min = 1;
        size_t ql = 0;
        if (i < n && (p[i] == '*' || p[i] == '?')) {
            min = 0;
            ql = 1;
        } else if (i < n && p[i] == '+') {
            ql = 1;
        } else if (i < n && p[i] == '{') {
            ql = quantifier(p, n, i, &min);
            if (ql == 0)
                goto give_up;
        }
        if (ql) {
            i += ql;
            if (i < n && (p[i] == '?' || p[i] == '+'))
                i++; /* lazy or possessive */
            if (min > 0)
                run[rl++] = litc;
            lit_push(out, &count, run, rl);
            rl = 0;
            continue;
        }
        run[rl++] = litc;
    }
    lit_push(out, &count, run, rl);
    return count;
give_up:
    for (size_t k = 0; k < count; k++)
        free(out[k].s);
    return 0;
}

/* One requirement of one unit before de-duplication: a literal, or a whole
 * pattern for the prefilter-mode database. */
typedef struct pf_key {
    int kind; /* 0 literal, 1 regex */
    bool caseless;
    const char *s;
    size_t len;
    uint32_t unit;
} pf_key;

static int cmp_key(const void *a, const void *b)
{
    const pf_key *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind - y->kind;
    if (x->caseless != y->caseless)
        return (int)x->caseless - (int)y->caseless;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    int c = memcmp(x->s, y->s, x->len);
    if (c)
        return c;
    return (x->unit > y->unit) - (x->unit < y->unit);
}

static bool same_key(const pf_key *x, const pf_key *y)
{
    return x->kind == y->kind && x->caseless == y->caseless && x->len == y->len &&
           memcmp(x->s, y->s, x->len) == 0;
}

static void add_db(cor_prefilter *pf, int field_id, hs_database_t *db)
{
    pf->dbs = psb_xrealloc(pf->dbs, (pf->n_dbs + 1) * sizeof(*pf->dbs));
    pf->dbs[pf->n_dbs].field_id = field_id;
    pf->dbs[pf->n_dbs].db = db;
    pf->n_dbs++;
    if (hs_alloc_scratch(db, &pf->proto) != HS_SUCCESS)
        abort();
}

/* Register Hyperscan id pf->n_ids for the units of keys[a..b) (sorted by unit). */
static void add_id(cor_prefilter *pf, const pf_key *keys, size_t a, size_t b)
{
    pf->id_first = psb_xrealloc(pf->id_first, (pf->n_ids + 1) * sizeof(*pf->id_first));
    pf->id_count = psb_xrealloc(pf->id_count, (pf->n_ids + 1) * sizeof(*pf->id_count));
    pf->id_first[pf->n_ids] = (uint32_t)pf->n_id_units;
    uint32_t count = 0;
    for (size_t i = a; i < b; i++) {
        if (i > a && keys[i].unit == keys[i - 1].unit)
            continue; /* a unit needing the same literal twice needs it once */
        if (pf->n_id_units == pf->cap_id_units) {
            pf->cap_id_units = pf->cap_id_units ? pf->cap_id_units * 2 : 1024;
            pf->id_units = psb_xrealloc(pf->id_units, pf->cap_id_units * sizeof(*pf->id_units));
        }
        pf->id_units[pf->n_id_units++] = keys[i].unit;
        pf->need[keys[i].unit]++;
        count++;
    }
    pf->id_count[pf->n_ids] = count;
    pf->n_ids++;
}

/* Distinct keys of one kind: [starts[j], starts[j+1]) in keys. */
static size_t distinct(const pf_key *keys, size_t a, size_t b, size_t *starts)
{
    size_t m = 0;
    for (size_t i = a; i < b; i++)
        if (i == a || !same_key(&keys[i], &keys[i - 1]))
            starts[m++] = i;
    starts[m] = b;
    return m;
}

/* Keep, per unit, the LIT_PER_UNIT literals that the fewest units share: a
 * literal many rules need (" from ", "sshd") is in many events too, so it
 * costs a counter per rule on each of them and selects little. */
#define LIT_PER_UNIT 2
#define LIT_RARE 8  /* units sharing a literal for it to suffice alone */
#define LIT_CHEAP 2 /* units sharing a literal for it to be kept besides */

typedef struct pick {
    uint32_t unit;
    size_t share;
    size_t len;
    size_t key;
} pick;

static int cmp_pick(const void *a, const void *b)
{
    const pick *x = a, *y = b;
    if (x->unit != y->unit)
        return x->unit < y->unit ? -1 : 1;
    if (x->share != y->share)
        return x->share < y->share ? -1 : 1;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return (x->key > y->key) - (x->key < y->key);
}

/* Per unit, the smallest share of any of its literals over all fields: a unit
 * with a literal few rules share somewhere ("root from " in message) gains
 * nothing from one many share elsewhere ("sshd" in process.name), which would
 * cost a counter per rule on every sshd event. */
static void note_shares(const pf_key *keys, size_t n, size_t *best)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && same_key(&keys[j], &keys[i]))
            j++;
        for (size_t k = i; keys[i].kind == 0 && k < j; k++)
            if (j - i < best[keys[k].unit])
                best[keys[k].unit] = j - i;
        i = j;
    }
}

static size_t keep_rarest(pf_key *keys, size_t n, const size_t *best)
{
    qsort(keys, n, sizeof(*keys), cmp_key);
    pick *pk = psb_xcalloc(n + 1, sizeof(*pk));
    size_t np = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && same_key(&keys[j], &keys[i]))
            j++;
        if (keys[i].kind == 0)
            for (size_t k = i; k < j; k++)
                pk[np++] = (pick){keys[k].unit, j - i, keys[k].len, k};
        /* A whole pattern many rules share (process.name ^(?:nginx|apache2|httpd)$
         * in 91 of 1000 rules) is left out, as a literal would be, for the rules
         * that have a rare literal: on each of its events it cost a counter per
         * rule, and the rule's own literal selects already. */
        if (keys[i].kind == 1 && j - i > LIT_RARE)
            for (size_t k = i; k < j; k++)
                if (best[keys[k].unit] <= LIT_RARE)
                    keys[k].kind = 2;
        i = j;
    }
    qsort(pk, np, sizeof(*pk), cmp_pick);
    size_t kept = 0, first_share = 0;
    for (size_t i = 0; i < np; i++) {
        if (i > 0 && pk[i].unit == pk[i - 1].unit) {
            kept++;
        } else {
            kept = 0;
            first_share = pk[i].share;
        }
        /* A literal few rules share selects well alone: a second adds counting
         * work on every event that has it for little gain. One at most
         * LIT_CHEAP rules share costs next to nothing, and in a small rule set
         * sharing says nothing about how rare a literal is in events ("Deny "
         * and "/22" of an ASA rule are both unique to it): those are all kept. */
        if (pk[i].share > LIT_CHEAP &&
            (kept >= LIT_PER_UNIT || (kept >= 1 && first_share <= LIT_RARE) ||
             (pk[i].share > LIT_RARE && best[pk[i].unit] <= LIT_RARE)))
            keys[pk[i].key].kind = 2; /* left out */
    }
    free(pk);
    qsort(keys, n, sizeof(*keys), cmp_key);
    while (n > 0 && keys[n - 1].kind == 2)
        n--;
    return n;
}

/* A copy of a pattern for Hyperscan's prefilter mode: branch resets "(?|" and
 * named groups become plain groups. Neither changes which subjects match, only
 * capture numbering, which the prefilter does not use; Hyperscan refuses both. */
static char *hs_dialect(const char *p, size_t n)
{
    char *out = psb_xmalloc(n + 1);
    size_t o = 0;
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            out[o++] = c;
            out[o++] = p[++i];
            continue;
        }
        if (in_class) {
            if (c == ']')
                in_class = false;
            out[o++] = c;
            continue;
        }
        if (c == '[') {
            in_class = true;
            out[o++] = c;
            if (i + 1 < n && p[i + 1] == '^')
                out[o++] = p[++i];
            if (i + 1 < n && p[i + 1] == ']')
                out[o++] = p[++i];
            continue;
        }
        if (c == '(' && i + 2 < n && p[i + 1] == '?' && p[i + 2] == '|') {
            memcpy(out + o, "(?:", 3);
            o += 3;
            i += 2;
            continue;
        }
        if (c == '(' && i + 2 < n && p[i + 1] == '?' &&
            ((p[i + 2] == '<' && i + 3 < n && p[i + 3] != '=' && p[i + 3] != '!') ||
             (p[i + 2] == 'P' && i + 3 < n && p[i + 3] == '<') || p[i + 2] == '\'')) {
            char close = p[i + 2] == '\'' ? '\'' : '>';
            size_t j = i + 3;
            while (j < n && p[j] != close)
                j++;
            if (j < n) {
                memcpy(out + o, "(?:", 3);
                o += 3;
                i = j;
                continue;
            }
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

static void build_field(cor_prefilter *pf, int field_id, pf_key *keys, size_t n, const size_t *best,
                        FILE *errors)
{
    n = keep_rarest(keys, n, best);
    size_t nlit = 0;
    while (nlit < n && keys[nlit].kind == 0)
        nlit++;
    size_t *starts = psb_xcalloc(n + 1, sizeof(*starts));
    const char **exprs = psb_xcalloc(n + 1, sizeof(*exprs));
    size_t *lens = psb_xcalloc(n + 1, sizeof(*lens));
    unsigned *flags = psb_xcalloc(n + 1, sizeof(*flags));
    unsigned *ids = psb_xcalloc(n + 1, sizeof(*ids));
    bool *drop = psb_xcalloc(n + 1, sizeof(*drop));

    size_t m = distinct(keys, 0, nlit, starts);
    for (size_t j = 0; j < m; j++) {
        exprs[j] = keys[starts[j]].s;
        lens[j] = keys[starts[j]].len;
        flags[j] = HS_FLAG_SINGLEMATCH | (keys[starts[j]].caseless ? HS_FLAG_CASELESS : 0);
        ids[j] = (unsigned)(pf->n_ids + j);
    }
    hs_database_t *db = NULL;
    hs_compile_error_t *cerr = NULL;
    if (m && hs_compile_lit_multi(exprs, flags, ids, lens, (unsigned)m, HS_MODE_BLOCK, NULL, &db,
                                  &cerr) == HS_SUCCESS) {
        add_db(pf, field_id, db);
        for (size_t j = 0; j < m; j++)
            add_id(pf, keys, starts[j], starts[j + 1]);
        pf->n_literals += m;
    } else if (m) {
        /* Not expected for plain literals. Leaving them out only admits more
         * candidates; PCRE2 still decides. */
        if (errors)
            fprintf(errors, "prefilter: literals of field %d left out: %s\n", field_id,
                    cerr->message);
        hs_free_compile_error(cerr);
    }

    /* Whole patterns without a usable literal, in prefilter mode. */
    size_t r = distinct(keys, nlit, n, starts);
    for (;;) {
        size_t k = 0;
        size_t *map = lens; /* reuse: index of the distinct key */
        for (size_t j = 0; j < r; j++) {
            if (drop[j])
                continue;
            exprs[k] = hs_dialect(keys[starts[j]].s, keys[starts[j]].len);
            flags[k] = HS_FLAG_PREFILTER | HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;
            ids[k] = (unsigned)(pf->n_ids + k);
            map[k] = j;
            k++;
        }
        if (k == 0)
            break;
        db = NULL;
        cerr = NULL;
        int rc = hs_compile_multi(exprs, flags, ids, (unsigned)k, HS_MODE_BLOCK, NULL, &db, &cerr);
        for (size_t j = 0; j < k; j++)
            free((char *)exprs[j]);
        if (rc == HS_SUCCESS) {
            add_db(pf, field_id, db);
            for (size_t j = 0; j < k; j++)
                add_id(pf, keys, starts[map[j]], starts[map[j] + 1]);
            break;
        }
        /* A pattern Hyperscan cannot take stays with PCRE2 alone; the others retry. */
        if (cerr->expression >= 0 && (size_t)cerr->expression < k) {
            drop[map[cerr->expression]] = true;
            hs_free_compile_error(cerr);
            continue;
        }
        if (errors)
            fprintf(errors, "prefilter: field %d left to PCRE2: %s\n", field_id, cerr->message);
        hs_free_compile_error(cerr);
        break;
    }
    free(starts);
    free(exprs);
    free(lens);
    free(flags);
    free(ids);
    free(drop);
}

cor_prefilter *cor_prefilter_build(cor_ruleset *rs, FILE *errors)
{
    if (hs_valid_platform() != HS_SUCCESS)
        return NULL;
    cor_prefilter *pf = psb_xcalloc(1, sizeof(*pf));
    pf->n_units = rs->n_units;
    pf->need = psb_xcalloc(rs->n_units ? rs->n_units : 1, sizeof(*pf->need));
    char **owned = NULL; /* literal copies, freed once the databases are built */
    size_t n_owned = 0, cap_owned = 0;
    size_t nf = rs->n_fields ? rs->n_fields : 1;
    pf_key **keys = psb_xcalloc(nf, sizeof(*keys)); /* per field */
    size_t *n_keys = psb_xcalloc(nf, sizeof(*n_keys));
    size_t *best = psb_xcalloc(rs->n_units ? rs->n_units : 1, sizeof(*best));
    for (size_t u = 0; u < rs->n_units; u++)
        best[u] = SIZE_MAX;
    for (size_t f = 0; f < rs->n_fields; f++) {
        size_t n = 0, cap = 0;
        for (size_t i = 0; i < rs->n_rules; i++) {
            cor_rule *r = rs->rules[i];
            for (size_t s = 0; s < r->n_steps; s++) {
                cor_step *st = &r->steps[s];
                for (size_t c = 0; c < st->n_where; c++) {
                    if (st->where[c].field_id != (int)f)
                        continue;
                    lit l[LIT_MAX_PER_PATTERN];
                    bool caseless;
                    const char *pat = st->where[c].pattern;
                    size_t k = required_literals(pat, strlen(pat), l, &caseless);
                    size_t want = k ? k : 1;
                    if (n + want > cap) {
                        cap = (n + want) * 2;
                        keys[f] = psb_xrealloc(keys[f], cap * sizeof(*keys[f]));
                    }
                    if (n_owned + k > cap_owned) {
                        cap_owned = (n_owned + k) * 2 + 16;
                        owned = psb_xrealloc(owned, cap_owned * sizeof(*owned));
                    }
                    uint32_t unit = cor_unit_of(rs, i, s);
                    for (size_t j = 0; j < k; j++) {
                        keys[f][n++] = (pf_key){0, caseless, l[j].s, l[j].len, unit};
                        owned[n_owned++] = l[j].s;
                    }
                    if (!k)
                        keys[f][n++] = (pf_key){1, false, pat, strlen(pat), unit};
                    st->n_prefiltered++;
                }
            }
        }
        n_keys[f] = n;
        if (n) {
            qsort(keys[f], n, sizeof(*keys[f]), cmp_key);
            note_shares(keys[f], n, best);
        }
    }
    for (size_t f = 0; f < rs->n_fields; f++) {
        if (n_keys[f])
            build_field(pf, (int)f, keys[f], n_keys[f], best, errors);
        free(keys[f]);
    }
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    free(owned);
    free(keys);
    free(n_keys);
    free(best);
    for (size_t k = 0; k < pf->n_id_units; k++)
        if (pf->need[pf->id_units[k]] == 1)
            pf->id_units[k] |= UNIT_ALONE;
    for (size_t u = 0; u < rs->n_units; u++)
        if (pf->need[u] == 0) {
            pf->always = psb_xrealloc(pf->always, (pf->n_always + 1) * sizeof(*pf->always));
            pf->always[pf->n_always++] = (uint32_t)u;
        }
    return pf;
}

void cor_prefilter_free(cor_prefilter *pf)
{
    if (!pf)
        return;
    for (size_t i = 0; i < pf->n_dbs; i++)
        hs_free_database(pf->dbs[i].db);
    free(pf->dbs);
    free(pf->id_first);
    free(pf->id_count);
    free(pf->id_units);
    free(pf->need);
    free(pf->always);
    if (pf->proto)
        hs_free_scratch(pf->proto);
    free(pf);
}

cor_prefilter_scratch *cor_prefilter_scratch_new(const cor_prefilter *pf)
{
    cor_prefilter_scratch *s = psb_xcalloc(1, sizeof(*s));
    s->pf = pf;
    size_t n = pf->n_units ? pf->n_units : 1;
    s->count = psb_xcalloc(n, sizeof(*s->count));
    for (size_t u = 0; u < pf->n_units; u++)
        s->count[u].need = pf->need[u];
    if (pf->proto && hs_clone_scratch(pf->proto, &s->hs) != HS_SUCCESS)
        abort();
    s->memo = psb_xcalloc(pf->n_dbs * MEMO_SLOTS + 1, sizeof(*s->memo));
    for (size_t i = 0; i < pf->n_dbs * MEMO_SLOTS; i++)
        s->memo[i].len = MEMO_VALUE + 1;
    return s;
}

void cor_prefilter_scratch_free(cor_prefilter_scratch *s)
{
    if (!s)
        return;
    if (s->hs)
        hs_free_scratch(s->hs);
    free(s->count);
    free(s->memo);
    free(s);
}

static void count_id(cor_prefilter_scratch *s, unsigned id)
{
    const cor_prefilter *pf = s->pf;
    const uint32_t *u = pf->id_units + pf->id_first[id];
    for (uint32_t k = 0, n = pf->id_count[id]; k < n; k++) {
        uint32_t x = u[k];
        if (x & UNIT_ALONE) {
            s->out[s->n_out++] = x & ~UNIT_ALONE;
            continue;
        }
        unit_count *c = &s->count[x];
        if (c->stamp != s->epoch) {
            c->stamp = s->epoch;
            c->hits = 0;
        }
        if (++c->hits == c->need)
            s->out[s->n_out++] = x;
    }
}

static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                    void *ctx)
{
    (void)from;
    (void)to;
    (void)flags;
    cor_prefilter_scratch *s = ctx;
    count_id(s, id);
    memo_slot *m = s->record;
    if (m) {
        if (m->n_ids < MEMO_IDS)
            m->ids[m->n_ids++] = id;
        else
            s->overflow = true;
    }
    return 0;
}

/* Slot of a short value in the memo. */
static size_t memo_index(const char *p, size_t n)
{
    return (size_t)(psb_hash_short(p, n) >> 58) & (MEMO_SLOTS - 1);
}

/* Scan one value of database i, through the memo when the value is short. */
static void scan_value(const cor_prefilter *pf, cor_prefilter_scratch *s, size_t i,
                       const cor_field_value *v)
{
    s->record = NULL;
    if (v->len <= MEMO_VALUE) {
        memo_slot *m = &s->memo[i * MEMO_SLOTS + memo_index(v->ptr, v->len)];
        if (m->len == v->len && memcmp(m->value, v->ptr, v->len) == 0) {
            for (size_t k = 0; k < m->n_ids; k++)
                count_id(s, m->ids[k]);
            return;
        }
        m->len = MEMO_VALUE + 1; /* empty until the scan completes */
        m->n_ids = 0;
        s->record = m;
        s->overflow = false;
    }
    hs_error_t rc = hs_scan(pf->dbs[i].db, v->ptr, (unsigned)v->len, 0, s->hs, on_match, s);
    if (rc == HS_SUCCESS && s->record && !s->overflow) {
        memcpy(s->record->value, v->ptr, v->len);
        s->record->len = (uint8_t)v->len;
    }
    s->record = NULL;
}

size_t cor_prefilter_scan(const cor_prefilter *pf, cor_prefilter_scratch *s,
                          const cor_field_value *values, uint32_t *out)
{
    if (++s->epoch == 0) {
        for (size_t u = 0; u < pf->n_units; u++)
            s->count[u].stamp = 0;
        s->epoch = 1;
    }
    s->out = out;
    s->n_out = 0;
    for (size_t i = 0; i < pf->n_dbs; i++) {
        const cor_field_value *v = &values[pf->dbs[i].field_id];
        if (!v->ptr)
            continue;
        scan_value(pf, s, i, v);
    }
    if (pf->n_always)
        memcpy(out + s->n_out, pf->always, pf->n_always * sizeof(*out));
    return s->n_out + pf->n_always;
}

size_t cor_prefilter_patterns(const cor_prefilter *pf)
{
    return pf ? pf->n_ids : 0;
}
size_t cor_prefilter_literals(const cor_prefilter *pf)
{
    return pf ? pf->n_literals : 0;
}
size_t cor_prefilter_databases(const cor_prefilter *pf)
{
    return pf ? pf->n_dbs : 0;
}

#else /* no Hyperscan: every step runs */

cor_prefilter *cor_prefilter_build(cor_ruleset *rs, FILE *errors)
{
    (void)rs;
    (void)errors;
    return NULL;
}
void cor_prefilter_free(cor_prefilter *pf)
{
    (void)pf;
}
cor_prefilter_scratch *cor_prefilter_scratch_new(const cor_prefilter *pf)
{
    (void)pf;
    return NULL;
}
void cor_prefilter_scratch_free(cor_prefilter_scratch *s)
{
    (void)s;
}
size_t cor_prefilter_scan(const cor_prefilter *pf, cor_prefilter_scratch *s,
                          const cor_field_value *values, uint32_t *out)
{
    (void)pf;
    (void)s;
    (void)values;
    (void)out;
    return 0;
}
size_t cor_prefilter_patterns(const cor_prefilter *pf)
{
    (void)pf;
    return 0;
}
size_t cor_prefilter_databases(const cor_prefilter *pf)
{
    (void)pf;
    return 0;
}
size_t cor_prefilter_literals(const cor_prefilter *pf)
{
    (void)pf;
    return 0;
}
#endif
