/* prompt.c — AUTOMATIC1111's prompt syntax: emphasis runs, BREAK, 75-token chunks, extra-network
 * tags, textual-inversion words. See prompt.h. */
#include "pipeline/prompt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

/* ─────────────────────────── UTF-8 and Python's \s, \w ─────────────────────────── */

/* The code point at s[i] (n bytes in all) and its length; an invalid byte reads as itself. */
static uint32_t cp_at(const char *s, size_t i, size_t n, size_t *len) {
    const unsigned char *u = (const unsigned char *)s + i;
    size_t left = n - i;
    if (u[0] < 0x80) { *len = 1; return u[0]; }
    int k = u[0] >= 0xf0 && u[0] < 0xf8 ? 4 : u[0] >= 0xe0 ? 3 : u[0] >= 0xc0 ? 2 : 0;
    if (!k || (size_t)k > left) { *len = 1; return 0xfffd; }
    uint32_t c = u[0] & (0x7f >> k);
    for (int j = 1; j < k; j++) {
        if ((u[j] & 0xc0) != 0x80) { *len = 1; return 0xfffd; }
        c = c << 6 | (u[j] & 0x3f);
    }
    *len = (size_t)k;
    return c;
}

/* The code point that ends just before s[i] (i > 0). */
static uint32_t cp_before(const char *s, size_t i) {
    size_t j = i - 1, len;
    while (j > 0 && i - j < 4 && ((unsigned char)s[j] & 0xc0) == 0x80) j--;
    uint32_t c = cp_at(s, j, i, &len);
    return j + len == i ? c : 0xfffd;
}

static int is_word(uint32_t c) { return (sdc_tok_char_class(c) & SDC_TOK_CH_WORD) != 0; }
static int is_space(uint32_t c) { return (sdc_tok_char_class(c) & SDC_TOK_CH_SPACE) != 0; }

/* ─────────────────────────── runs ─────────────────────────── */

typedef struct runs { sdc_prompt_run *r; size_t n, cap; int oom; } runs;

static void push(runs *R, const char *text, size_t len, double w) {
    if (R->oom) return;
    if (R->n == R->cap) {
        size_t cap = R->cap ? 2 * R->cap : 16;
        sdc_prompt_run *p = realloc(R->r, cap * sizeof *p);
        if (!p) { R->oom = 1; return; }
        R->r = p;
        R->cap = cap;
    }
    char *t = malloc(len + 1);
    if (!t) { R->oom = 1; return; }
    memcpy(t, text, len);
    t[len] = 0;
    R->r[R->n++] = (sdc_prompt_run){t, w};
}

/* One `\s*\bBREAK\b\s*` match in s[0..n) at or after `from`: its start and end, or 0. Searched
 * as Python's re does: the leftmost match, whitespace taken greedily on both sides. */
static int find_break(const char *s, size_t n, size_t from, size_t *ms, size_t *me) {
    for (size_t i = from; i + 5 <= n; i++) {
        if (memcmp(s + i, "BREAK", 5)) continue;
        /* \b before: the start of the string, or a non-word character before a word one */
        if (i > 0 && is_word(cp_before(s, i))) continue;
        size_t len, e = i + 5;
        if (e < n && is_word(cp_at(s, e, n, &len))) continue;
        size_t a = i;   /* the whitespace run before it, as far back as `from` */
        while (a > from && is_space(cp_before(s, a))) {
            size_t b = a - 1;
            while (b > 0 && ((unsigned char)s[b] & 0xc0) == 0x80) b--;
            a = b;
        }
        while (e < n && is_space(cp_at(s, e, n, &len))) e += len;
        *ms = a;
        *me = e;
        return 1;
    }
    return 0;
}

/* A text match: re.split(re_break, text) → each part (weight 1), BREAK runs between. */
static void push_text(runs *R, const char *s, size_t n) {
    size_t at = 0, ms, me;
    while (find_break(s, n, at, &ms, &me)) {
        push(R, s + at, ms - at, 1.0);
        push(R, "BREAK", 5, -1.0);
        at = me;
    }
    push(R, s + at, n - at, 1.0);
}

static void multiply_range(runs *R, size_t from, double m) {
    for (size_t p = from; p < R->n; p++) R->r[p].weight *= m;
}

/* The weight alternative `:\s*([+-]?[.\d]+)\s*\)` at s[i] == ':': its end and the number's
 * span, or 0. */
static int weight_at(const char *s, size_t i, size_t n, size_t *end, size_t *ns, size_t *ne) {
    size_t j = i + 1, len;
    while (j < n && is_space(cp_at(s, j, n, &len))) j += len;
    *ns = j;
    if (j < n && (s[j] == '+' || s[j] == '-')) j++;
    size_t d = j;
    while (j < n && (s[j] == '.' || (s[j] >= '0' && s[j] <= '9'))) j++;
    if (j == d) return 0;
    *ne = j;
    while (j < n && is_space(cp_at(s, j, n, &len))) j += len;
    if (j >= n || s[j] != ')') return 0;
    *end = j + 1;
    return 1;
}

/* float(x) of a `[+-]?[.\d]+` string: 0 with *v, or -1 when Python would refuse it ("1.2.3"). */
static int py_float(const char *s, size_t n, double *v) {
    char buf[64];
    if (n >= sizeof buf) return -1;   /* 63 digits: nobody writes a weight so */
    memcpy(buf, s, n);
    buf[n] = 0;
    int dots = 0, digits = 0;
    for (size_t i = 0; i < n; i++) { dots += buf[i] == '.'; digits += buf[i] >= '0' && buf[i] <= '9'; }
    if (dots > 1 || !digits) return -1;
    char *end;
    *v = strtod(buf, &end);
    return *end ? -1 : 0;
}

void sdc_prompt_runs_free(sdc_prompt_run *r, size_t n) {
    for (size_t i = 0; r && i < n; i++) free(r[i].text);
    free(r);
}

int sdc_prompt_parse(const char *text, sdc_prompt_run **out, size_t *nout, sdc_err *e) {
    const double round_m = 1.1, square_m = 1 / 1.1;
    runs R = {0};
    size_t n = strlen(text), i = 0;
    size_t *round = malloc((n + 1) * sizeof *round), *square = malloc((n + 1) * sizeof *square);
    size_t nr = 0, ns = 0;
    if (!round || !square) R.oom = 1;
    while (i < n && !R.oom) {
        char c = text[i];
        size_t end, a, b;
        if (c == '\\') {   /* \( \) \[ \] \\ are the characters; a lone \ is nothing */
            char d = i + 1 < n ? text[i + 1] : 0;
            if (d == '(' || d == ')' || d == '[' || d == ']' || d == '\\') { push(&R, text + i + 1, 1, 1.0); i += 2; }
            else { push(&R, "", 0, 1.0); i++; }
        } else if (c == '(') {
            round[nr++] = R.n; i++;
        } else if (c == '[') {
            square[ns++] = R.n; i++;
        } else if (c == ':' && weight_at(text, i, n, &end, &a, &b) && nr) {
            double w;
            if (py_float(text + a, b - a, &w)) {
                free(round); free(square);
                sdc_prompt_runs_free(R.r, R.n);
                return sdc_errf(e, "prompt: weight '%.*s' at byte %zu is not a number",
                                (int)(b - a > 40 ? 40 : b - a), text + a, a);
            }
            multiply_range(&R, round[--nr], w);
            i = end;
        } else if (c == ')' && nr) {
            multiply_range(&R, round[--nr], round_m); i++;
        } else if (c == ']' && ns) {
            multiply_range(&R, square[--ns], square_m); i++;
        } else if (c == ':' && weight_at(text, i, n, &end, &a, &b)) {
            push_text(&R, text + i, end - i); i = end;     /* a weight with no '(' open is text */
        } else if (c == ')' || c == ']' || c == ':') {
            push_text(&R, text + i, 1); i++;
        } else {
            size_t j = i;
            while (j < n && !strchr("\\()[]:", text[j])) j++;
            push_text(&R, text + i, j - i);
            i = j;
        }
    }
    while (nr) multiply_range(&R, round[--nr], round_m);   /* unclosed: to the end (any order:
                                                               products of the same factor) */
    while (ns) multiply_range(&R, square[--ns], square_m);
    free(round);
    free(square);
    if (!R.oom && R.n == 0) push(&R, "", 0, 1.0);
    /* merge runs of identical weights */
    for (size_t k = 0; !R.oom && k + 1 < R.n;) {
        if (R.r[k].weight == R.r[k + 1].weight) {
            size_t la = strlen(R.r[k].text), lb = strlen(R.r[k + 1].text);
            char *t = realloc(R.r[k].text, la + lb + 1);
            if (!t) { R.oom = 1; break; }
            memcpy(t + la, R.r[k + 1].text, lb + 1);
            R.r[k].text = t;
            free(R.r[k + 1].text);
            memmove(R.r + k + 1, R.r + k + 2, (R.n - k - 2) * sizeof *R.r);
            R.n--;
        } else {
            k++;
        }
    }
    if (R.oom) { sdc_prompt_runs_free(R.r, R.n); return sdc_errf(e, "prompt: out of memory"); }
    *out = R.r;
    *nout = R.n;
    return 0;
}

/* ─────────────────────────── extra networks ─────────────────────────── */

void sdc_prompt_loras_free(sdc_prompt_lora *l, int n) {
    for (int i = 0; l && i < n; i++) free(l[i].name);
    free(l);
}

/* A `<(\w+):([^>]+)>` match at s[i] == '<': the type's end, the arguments' span, the end. */
static int tag_at(const char *s, size_t i, size_t n, size_t *te, size_t *as, size_t *ae) {
    size_t j = i + 1, len;
    while (j < n && is_word(cp_at(s, j, n, &len))) j += len;
    if (j == i + 1 || j >= n || s[j] != ':') return 0;
    *te = j;
    *as = ++j;
    while (j < n && s[j] != '>') j++;
    if (j == *as || j >= n) return 0;
    *ae = j;
    return 1;
}

/* Python float() of a multiplier (surrounding whitespace allowed); -1 when not a finite number. */
static int mult_value(const char *s, size_t n, float *v) {
    char buf[64];
    while (n && is_space((unsigned char)*s)) { s++; n--; }
    while (n && is_space((unsigned char)s[n - 1])) n--;
    if (!n || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    double d = strtod(buf, &end);
    if (*end || !isfinite(d)) return -1;
    *v = (float)d;
    return 0;
}

int sdc_prompt_take_loras(const char *text, char **rest, sdc_prompt_lora **loras, int *nl, sdc_err *e) {
    size_t n = strlen(text), o = 0, te, as, ae;
    char *r = malloc(n + 1);
    sdc_prompt_lora *L = NULL;
    int cnt = 0;
    if (!r) return sdc_errf(e, "prompt: out of memory");
    for (size_t i = 0; i < n;) {
        if (text[i] != '<' || !tag_at(text, i, n, &te, &as, &ae)) { r[o++] = text[i++]; continue; }
        size_t tl = te - i - 1;
        int lora = (tl == 4 && !memcmp(text + i + 1, "lora", 4)) || (tl == 4 && !memcmp(text + i + 1, "lyco", 4));
        const char *why = NULL;
        const char *c1 = memchr(text + as, ':', ae - as);
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(text + ae - c1 - 1)) : NULL;
        float m = 1.0f;
        if (!lora) why = "sdc runs only <lora:NAME:W> extra networks";
        else if (c2) why = "separate text-encoder and UNet multipliers are not supported: write <lora:NAME:W>";
        else if (c1 && mult_value(c1 + 1, (size_t)(text + ae - c1 - 1), &m)) why = "the multiplier is not a number";
        else if ((c1 ? (size_t)(c1 - text) : ae) == as) why = "the name is empty";
        if (why) {
            free(r);
            sdc_prompt_loras_free(L, cnt);
            return sdc_errf(e, "prompt: %.*s%s: %s", (int)(ae + 1 - i > 120 ? 120 : ae + 1 - i), text + i,
                            ae + 1 - i > 120 ? "..." : "", why);
        }
        sdc_prompt_lora *p = realloc(L, (size_t)(cnt + 1) * sizeof *p);
        size_t nlen = (c1 ? (size_t)(c1 - text) : ae) - as;
        char *name = p ? malloc(nlen + 1) : NULL;
        if (p) L = p;
        if (!name) { free(r); sdc_prompt_loras_free(L, cnt); return sdc_errf(e, "prompt: out of memory"); }
        memcpy(name, text + as, nlen);
        name[nlen] = 0;
        L[cnt++] = (sdc_prompt_lora){name, m};
        i = ae + 1;
    }
    r[o] = 0;
    *rest = r;
    *loras = L;
    *nl = cnt;
    return 0;
}

/* ─────────────────────────── chunks ─────────────────────────── */

typedef struct chunker {
    int32_t ids[SDC_PROMPT_CHUNK];
    double  w[SDC_PROMPT_CHUNK];
    const float *rows[SDC_PROMPT_CHUNK];
    int len, last_comma;
    int32_t pad;
    sdc_prompt_chunks *out;
    int cap, too_many, oom;
} chunker;

static void next_chunk(chunker *k, int is_last) {
    sdc_prompt_chunks *c = k->out;
    k->out->token_count += is_last ? k->len : SDC_PROMPT_CHUNK;
    if (c->n == SDC_PROMPT_MAX_CHUNKS) { k->too_many = 1; k->len = 0; k->last_comma = -1; return; }
    if (c->n == k->cap) {
        int cap = k->cap ? 2 * k->cap : 2;
        int32_t *ids = realloc(c->ids, (size_t)cap * SDC_TOK_CTX * sizeof *ids);
        if (ids) c->ids = ids;
        double *w = realloc(c->weights, (size_t)cap * SDC_TOK_CTX * sizeof *w);
        if (w) c->weights = w;
        const float **r = realloc(c->rows, (size_t)cap * SDC_TOK_CTX * sizeof *r);
        if (r) c->rows = r;
        if (!ids || !w || !r) { k->oom = 1; return; }
        k->cap = cap;
    }
    int32_t *ids = c->ids + (size_t)c->n * SDC_TOK_CTX;
    double *w = c->weights + (size_t)c->n * SDC_TOK_CTX;
    const float **r = c->rows + (size_t)c->n * SDC_TOK_CTX;
    ids[0] = SDC_TOK_BOS;
    for (int i = 0; i < SDC_TOK_CTX; i++) { w[i] = 1.0; r[i] = NULL; }
    for (int i = 0; i < k->len; i++) { ids[1 + i] = k->ids[i]; w[1 + i] = k->w[i]; r[1 + i] = k->rows[i]; }
    ids[1 + k->len] = SDC_TOK_EOS;
    for (int i = k->len + 2; i < SDC_TOK_CTX; i++) ids[i] = k->pad;
    c->n++;
    k->len = 0;
    k->last_comma = -1;
}

/* The longest embedding whose name's ids start at tok[p] (the first in db order on a tie). */
static const sdc_embedding *embedding_at(const sdc_embd_db *db, const int32_t *tok, size_t n, size_t p) {
    const sdc_embedding *best = NULL;
    for (size_t i = 0; db && i < db->n; i++) {
        const sdc_embedding *x = &db->e[i];
        if (x->n_ids && x->n_ids <= n - p && (!best || x->n_ids > best->n_ids) &&
            !memcmp(tok + p, x->ids, x->n_ids * sizeof *tok))
            best = x;
    }
    return best;
}

/* tokenize_line's loop over one run's tokens (A1111 sd_hijack_clip.py). */
static void chunk_run(chunker *k, const int32_t *tok, size_t n, double weight, const sdc_embd_db *db,
                      int32_t comma) {
    size_t p = 0;
    while (p < n && !k->oom) {
        int32_t t = tok[p];
        if (t == comma) {
            k->last_comma = k->len;
        } else if (k->len == SDC_PROMPT_CHUNK && k->last_comma != -1 &&
                   k->len - k->last_comma <= SDC_TOK_COMMA_BACKTRACK) {
            int brk = k->last_comma + 1, moved = k->len - brk;
            int32_t ids[SDC_PROMPT_CHUNK];
            double w[SDC_PROMPT_CHUNK];
            const float *rows[SDC_PROMPT_CHUNK];
            memcpy(ids, k->ids + brk, (size_t)moved * sizeof *ids);
            memcpy(w, k->w + brk, (size_t)moved * sizeof *w);
            memcpy(rows, k->rows + brk, (size_t)moved * sizeof *rows);
            k->len = brk;
            next_chunk(k, 0);
            memcpy(k->ids, ids, (size_t)moved * sizeof *ids);
            memcpy(k->w, w, (size_t)moved * sizeof *w);
            memcpy(k->rows, rows, (size_t)moved * sizeof *rows);
            k->len = moved;
        }
        if (k->len == SDC_PROMPT_CHUNK) next_chunk(k, 0);
        const sdc_embedding *x = embedding_at(db, tok, n, p);
        if (!x) {
            k->ids[k->len] = t;
            k->w[k->len] = weight;
            k->rows[k->len++] = NULL;
            p++;
            continue;
        }
        if (k->len + x->rows > SDC_PROMPT_CHUNK) next_chunk(k, 0);
        for (int r = 0; r < x->rows; r++) {
            k->ids[k->len] = 0;
            k->w[k->len] = weight;
            k->rows[k->len++] = x->vec + (size_t)r * x->width;
        }
        p += x->n_ids;
    }
}

void sdc_prompt_chunks_free(sdc_prompt_chunks *c) {
    if (!c) return;
    free(c->ids);
    free(c->weights);
    free(c->rows);
    memset(c, 0, sizeof *c);
}

/* Truncate mode: the text's tokens (embeddings replaced) into one window, cut after 75. */
static void truncate_run(chunker *k, const int32_t *tok, size_t n, const sdc_embd_db *db) {
    for (size_t p = 0; p < n;) {
        const sdc_embedding *x = embedding_at(db, tok, n, p);
        int need = x ? x->rows : 1;
        if (k->len + need > SDC_PROMPT_CHUNK) { k->out->truncated = 1; return; }
        for (int r = 0; r < need; r++) {
            k->ids[k->len] = x ? 0 : tok[p];
            k->w[k->len] = 1.0;
            k->rows[k->len++] = x ? x->vec + (size_t)r * x->width : NULL;
        }
        p += x ? x->n_ids : 1;
    }
}

int sdc_prompt_chunk(const char *text, int mode, int32_t pad_id, const sdc_embd_db *db,
                     sdc_prompt_chunks *out, sdc_err *e) {
    memset(out, 0, sizeof *out);
    chunker *k = calloc(1, sizeof *k);
    if (!k) return sdc_errf(e, "prompt: out of memory");
    k->pad = pad_id;
    k->out = out;
    k->last_comma = -1;
    sdc_prompt_run *runs = NULL, one = {(char *)text, 1.0};
    size_t nr = 1;
    int rc = -1;
    if (mode != SDC_PROMPT_TRUNCATE && sdc_prompt_parse(text, &runs, &nr, e)) goto done;
    int32_t comma = -1;
    {   /* ",</w>": the id the comma rule looks for */
        int32_t *c = NULL;
        size_t cn = 0;
        if (!sdc_tokenize(",", &c, &cn, e) && cn == 1) comma = c[0];
        free(c);
    }
    for (size_t i = 0; i < nr && !k->oom; i++) {
        const sdc_prompt_run *r = runs ? &runs[i] : &one;
        if (!strcmp(r->text, "BREAK") && r->weight == -1) { next_chunk(k, 0); continue; }
        int32_t *tok = NULL;
        size_t n = 0;
        if (sdc_tokenize(r->text, &tok, &n, e)) goto done;
        if (mode == SDC_PROMPT_TRUNCATE) truncate_run(k, tok, n, db);
        else chunk_run(k, tok, n, r->weight, db, comma);
        free(tok);
    }
    if (!k->oom && (k->len || out->n == 0)) next_chunk(k, 1);
    if (k->oom) { sdc_errf(e, "prompt: out of memory"); goto done; }
    if (k->too_many) {
        sdc_errf(e, "prompt too long: %d tokens make more than %d chunks of %d", out->token_count,
                 SDC_PROMPT_MAX_CHUNKS, SDC_PROMPT_CHUNK);
        goto done;
    }
    rc = 0;
done:
    if (rc) sdc_prompt_chunks_free(out);
    sdc_prompt_runs_free(runs, runs ? nr : 0);
    free(k);
    return rc;
}

void sdc_prompt_emphasis(float *z, const double *w, int n_tokens, int C) {
    int all1 = 1;
    for (int i = 0; i < n_tokens; i++) all1 &= w[i] == 1.0;
    if (all1) return;
    size_t n = (size_t)n_tokens * C;
    double s0 = 0, s1 = 0;
    for (size_t i = 0; i < n; i++) s0 += z[i];
    for (int t = 0; t < n_tokens; t++) {
        float wt = (float)w[t];
        for (int c = 0; c < C; c++) z[(size_t)t * C + c] *= wt;
    }
    for (size_t i = 0; i < n; i++) s1 += z[i];
    float m0 = (float)(s0 / (double)n), m1 = (float)(s1 / (double)n);
    float ratio = m0 / m1;
    for (size_t i = 0; i < n; i++) z[i] *= ratio;
}
