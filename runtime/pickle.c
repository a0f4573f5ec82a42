/* pickle.c — the restricted pickle machine (pickle.h): builds values, executes nothing. */
#include "runtime/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* The allowlist: callables and types sdc implements itself.                                  */

enum {
    FN_NONE, FN_REBUILD_V1, FN_REBUILD_V2, FN_REBUILD_V3, FN_PARAM, FN_PARAM_STATE,
    FN_ORDERED_DICT, FN_SIZE, FN_STORAGE_TYPE, FN_DTYPE, FN_FROM_TYPE_V2, FN_TENSOR_TYPE
};

typedef struct { const char *module, *name; int fn; int dtype; } allowed;

static const allowed ALLOW[] = {
    {"torch._utils", "_rebuild_tensor", FN_REBUILD_V1, -1},
    {"torch._utils", "_rebuild_tensor_v2", FN_REBUILD_V2, -1},
    {"torch._utils", "_rebuild_tensor_v3", FN_REBUILD_V3, -1},
    {"torch._utils", "_rebuild_parameter", FN_PARAM, -1},
    {"torch._utils", "_rebuild_parameter_with_state", FN_PARAM_STATE, -1},
    {"torch._tensor", "_rebuild_from_type_v2", FN_FROM_TYPE_V2, -1},
    {"collections", "OrderedDict", FN_ORDERED_DICT, -1},
    {"torch", "Size", FN_SIZE, -1},
    {"torch", "Tensor", FN_TENSOR_TYPE, -1},
    {"torch.nn.parameter", "Parameter", FN_TENSOR_TYPE, -1},
    {"torch", "DoubleStorage", FN_STORAGE_TYPE, SDC_F64},
    {"torch", "FloatStorage", FN_STORAGE_TYPE, SDC_F32},
    {"torch", "HalfStorage", FN_STORAGE_TYPE, SDC_F16},
    {"torch", "BFloat16Storage", FN_STORAGE_TYPE, SDC_BF16},
    {"torch", "LongStorage", FN_STORAGE_TYPE, SDC_I64},
    {"torch", "IntStorage", FN_STORAGE_TYPE, SDC_I32},
    {"torch", "ShortStorage", FN_STORAGE_TYPE, SDC_I16},
    {"torch", "CharStorage", FN_STORAGE_TYPE, SDC_I8},
    {"torch", "ByteStorage", FN_STORAGE_TYPE, SDC_U8},
    {"torch", "BoolStorage", FN_STORAGE_TYPE, SDC_BOOL},
    {"torch", "UntypedStorage", FN_STORAGE_TYPE, SDC_U8},
    {"torch", "float64", FN_DTYPE, SDC_F64},   {"torch", "double", FN_DTYPE, SDC_F64},
    {"torch", "float32", FN_DTYPE, SDC_F32},   {"torch", "float", FN_DTYPE, SDC_F32},
    {"torch", "float16", FN_DTYPE, SDC_F16},   {"torch", "half", FN_DTYPE, SDC_F16},
    {"torch", "bfloat16", FN_DTYPE, SDC_BF16},
    {"torch", "int64", FN_DTYPE, SDC_I64},     {"torch", "long", FN_DTYPE, SDC_I64},
    {"torch", "int32", FN_DTYPE, SDC_I32},     {"torch", "int", FN_DTYPE, SDC_I32},
    {"torch", "int16", FN_DTYPE, SDC_I16},     {"torch", "short", FN_DTYPE, SDC_I16},
    {"torch", "int8", FN_DTYPE, SDC_I8},       {"torch", "uint8", FN_DTYPE, SDC_U8},
    {"torch", "bool", FN_DTYPE, SDC_BOOL},
    {"torch", "float8_e4m3fn", FN_DTYPE, SDC_F8_E4M3},
    {"torch", "float8_e5m2", FN_DTYPE, SDC_F8_E5M2},
};

/* Known dangerous: a module (and its submodules) with every name (name NULL), or one name.
 * These are what pickle scanners (picklescan, fickling) flag and torch's weights_only refuses. */
typedef struct { const char *module, *name; } danger;

static const danger DANGER[] = {
    {"os", NULL}, {"posix", NULL}, {"nt", NULL}, {"subprocess", NULL}, {"sys", NULL},
    {"runpy", NULL}, {"socket", NULL}, {"ctypes", NULL}, {"shutil", NULL}, {"pickle", NULL},
    {"_pickle", NULL}, {"webbrowser", NULL}, {"pty", NULL}, {"commands", NULL},
    {"importlib", NULL}, {"code", NULL}, {"codeop", NULL}, {"pdb", NULL}, {"bdb", NULL},
    {"marshal", NULL}, {"multiprocessing", NULL}, {"asyncio", NULL}, {"http", NULL},
    {"urllib", NULL}, {"urllib2", NULL}, {"httplib", NULL}, {"ftplib", NULL},
    {"smtplib", NULL}, {"telnetlib", NULL}, {"requests", NULL}, {"aiohttp", NULL},
    {"dill", NULL}, {"cloudpickle", NULL}, {"zipimport", NULL}, {"pip", NULL},
    {"types", "CodeType"}, {"types", "FunctionType"}, {"types", "LambdaType"},
    {"types", "MethodType"}, {"io", "open"}, {"io", "open_code"}, {"io", "FileIO"},
    {"_io", "open"}, {"_io", "open_code"}, {"_io", "FileIO"}, {"platform", "popen"},
    {"builtins", "__build_class__"},
    {"builtins", "eval"}, {"builtins", "exec"}, {"builtins", "execfile"},
    {"builtins", "compile"}, {"builtins", "getattr"}, {"builtins", "setattr"},
    {"builtins", "delattr"}, {"builtins", "open"}, {"builtins", "__import__"},
    {"builtins", "globals"}, {"builtins", "locals"}, {"builtins", "vars"},
    {"builtins", "breakpoint"}, {"builtins", "input"}, {"builtins", "apply"},
    {"builtins", "exit"}, {"builtins", "quit"},
    {"__builtin__", "eval"}, {"__builtin__", "exec"}, {"__builtin__", "execfile"},
    {"__builtin__", "compile"}, {"__builtin__", "getattr"}, {"__builtin__", "setattr"},
    {"__builtin__", "delattr"}, {"__builtin__", "open"}, {"__builtin__", "__import__"},
    {"__builtin__", "globals"}, {"__builtin__", "locals"}, {"__builtin__", "vars"},
    {"__builtin__", "input"}, {"__builtin__", "apply"}, {"__builtin__", "file"},
    {"functools", "partial"}, {"functools", "partialmethod"},
    {"operator", "attrgetter"}, {"operator", "itemgetter"}, {"operator", "methodcaller"},
    {"_operator", "attrgetter"}, {"_operator", "itemgetter"}, {"_operator", "methodcaller"},
    {"numpy.testing._private.utils", "runstring"},
    /* these run an unrestricted torch.load / build or load native code */
    {"torch.storage", "_load_from_bytes"}, {"torch.serialization", "load"}, {"torch", "load"},
    {"torch.hub", NULL}, {"torch.utils.cpp_extension", NULL}, {"torch.jit", NULL},
    {"torch._inductor", NULL},
};

static int module_match(const char *module, const char *pat) {
    size_t n = strlen(pat);
    return !strncmp(module, pat, n) && (module[n] == 0 || module[n] == '.');
}

static int listed(const char *module, const char *name) {
    for (size_t i = 0; i < sizeof DANGER / sizeof DANGER[0]; i++) {
        if (DANGER[i].name ? !strcmp(module, DANGER[i].module) && !strcmp(name, DANGER[i].name)
                           : module_match(module, DANGER[i].module))
            return 1;
    }
    return 0;
}

/* Python resolves a dotted name (protocol 4 qualnames) attribute by attribute, so
 * torch + "serialization.os.system" reaches os.system and "x.__init__.__globals__" reaches
 * anything: a dotted name is dangerous when any step of its chain is, or when it walks through
 * a dunder attribute. */
int sdc_pickle_is_dangerous(const char *module, const char *name) {
    if (listed(module, name)) return 1;
    if (!strchr(name, '.')) return 0;
    char chain[1100], *seg[128];
    int n = 0;
    snprintf(chain, sizeof chain, "%s.%s", module, name);
    for (char *c = chain, *start = chain;; c++) {
        if (*c != '.' && *c) continue;
        int end = !*c;
        *c = 0;
        if (n < 128) seg[n++] = start;
        start = c + 1;
        if (end) break;
    }
    int first_name_seg = 1;
    for (const char *c = module; *c; c++) first_name_seg += *c == '.';
    for (int i = first_name_seg; i < n; i++) {
        size_t len = strlen(seg[i]);
        if (len > 4 && !strncmp(seg[i], "__", 2) && !strcmp(seg[i] + len - 2, "__")) return 1;
        const char *mod = !strcmp(seg[i - 1], "__builtins__") ? "builtins" : seg[i - 1];
        if (listed(mod, seg[i]) || listed(seg[i], "")) return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The context: an arena of values, the storages and the globals seen.                         */

#define CHUNK 1024  /* values per arena chunk */

typedef struct chunk { struct chunk *next; size_t used; sdc_pval v[CHUNK]; } chunk;

struct sdc_pickle {
    chunk  *chunks;
    size_t  nobjects, nitems;                      /* values built; container slots filled */
    void  **blobs; size_t nblobs, blobcap;          /* other allocations freed with p */
    sdc_pickle_storage **st; size_t nst, stcap;    /* storages in first-seen order */
    uint32_t *sthash; size_t sthcap;               /* open addressing: index+1 into st */
    sdc_pickle_seen *seen; size_t nseen, seencap;
    sdc_pval none, yes, no;                        /* shared constants */
};

sdc_pickle *sdc_pickle_new(void) {
    sdc_pickle *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->none.kind = SDC_PV_NONE;
    p->yes.kind = p->no.kind = SDC_PV_BOOL;
    p->yes.u.i = 1;
    return p;
}

static int is_seq(sdc_pkind k) {
    return k == SDC_PV_TUPLE || k == SDC_PV_LIST || k == SDC_PV_DICT || k == SDC_PV_SET;
}

void sdc_pickle_free(sdc_pickle *p) {
    if (!p) return;
    for (chunk *c = p->chunks, *n; c; c = n) {
        n = c->next;
        for (size_t i = 0; i < c->used; i++)
            if (is_seq(c->v[i].kind)) free(c->v[i].u.seq.v);
        free(c);
    }
    for (size_t i = 0; i < p->nblobs; i++) free(p->blobs[i]);
    free(p->blobs);
    free(p->st);
    free(p->sthash);
    free(p->seen);
    free(p);
}

/* Grows *arr so that n+1 items of elem bytes fit. 0, or -1 on overflow/OOM. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 16, bytes;
    if (sdc_mul_overflow(nc, elem, &bytes)) return -1;
    void *q = realloc(*arr, bytes);
    if (!q) return -1;
    *arr = q;
    *cap = nc;
    return 0;
}

/* calloc'd memory owned by p. */
static void *blob(sdc_pickle *p, size_t size) {
    if (grow((void **)&p->blobs, &p->blobcap, p->nblobs, sizeof *p->blobs)) return NULL;
    void *b = calloc(1, size ? size : 1);
    if (b) p->blobs[p->nblobs++] = b;
    return b;
}

size_t sdc_pickle_nobjects(const sdc_pickle *p) { return p->nobjects; }
size_t sdc_pickle_nstorages(const sdc_pickle *p) { return p->nst; }
sdc_pickle_storage *sdc_pickle_storage_at(sdc_pickle *p, size_t i) { return i < p->nst ? p->st[i] : NULL; }
size_t sdc_pickle_nseen(const sdc_pickle *p) { return p->nseen; }
const sdc_pickle_seen *sdc_pickle_seen_at(const sdc_pickle *p, size_t i) {
    return i < p->nseen ? &p->seen[i] : NULL;
}

static uint32_t hash_str(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

sdc_pickle_storage *sdc_pickle_storage_find(sdc_pickle *p, const char *key) {
    if (!p->sthcap) return NULL;
    size_t mask = p->sthcap - 1, n = strlen(key);
    for (size_t h = hash_str(key, n) & mask;; h = (h + 1) & mask) {
        uint32_t ix = p->sthash[h];
        if (!ix) return NULL;
        if (!strcmp(p->st[ix - 1]->key, key)) return p->st[ix - 1];
    }
}

/* Adds st to the table (its key not present yet). 0, or -1 on OOM. */
static int storage_add(sdc_pickle *p, sdc_pickle_storage *st) {
    if (grow((void **)&p->st, &p->stcap, p->nst, sizeof *p->st)) return -1;
    if ((p->nst + 1) * 2 > p->sthcap) {            /* keep the load under 1/2 */
        size_t nc = p->sthcap ? p->sthcap * 2 : 64;
        uint32_t *h = calloc(nc, sizeof *h);
        if (!h) return -1;
        for (size_t i = 0; i < p->nst; i++) {
            size_t j = hash_str(p->st[i]->key, strlen(p->st[i]->key)) & (nc - 1);
            while (h[j]) j = (j + 1) & (nc - 1);
            h[j] = (uint32_t)(i + 1);
        }
        free(p->sthash);
        p->sthash = h;
        p->sthcap = nc;
    }
    size_t j = hash_str(st->key, strlen(st->key)) & (p->sthcap - 1);
    while (p->sthash[j]) j = (j + 1) & (p->sthcap - 1);
    p->st[p->nst++] = st;
    p->sthash[j] = (uint32_t)p->nst;
    return 0;
}

const char *sdc_pkind_name(sdc_pkind k) {
    static const char *names[] = {"None", "bool", "int", "int (too large)", "float", "str",
                                  "bytes", "tuple", "list", "dict", "set", "global", "dtype",
                                  "storage", "tensor", "placeholder object"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

sdc_pval *sdc_pval_dict_get(const sdc_pval *d, const char *key) {
    if (!d || d->kind != SDC_PV_DICT) return NULL;
    size_t n = strlen(key);
    for (size_t i = d->u.seq.n; i >= 2; i -= 2) {
        const sdc_pval *k = d->u.seq.v[i - 2];
        if (k->kind == SDC_PV_STR && k->u.str.n == n && !memcmp(k->u.str.s, key, n))
            return d->u.seq.v[i - 1];
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* The machine.                                                                                */

typedef struct vm {
    sdc_pickle *p;
    const sdc_pickle_cfg *cfg;
    const uint8_t *d; size_t size, pos, op;        /* op = offset of the current opcode */
    sdc_pval **stack; size_t nstack, stackcap;
    size_t *marks; size_t nmarks, markcap;
    sdc_pval **memo; size_t memocap, memocount;
    int danger;                                     /* refused dangerous globals named */
    size_t max_objects, max_items;
    sdc_err *e;
} vm;

static int fail(vm *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(vm *m, const char *fmt, ...) {
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sdc_errf(m->e, "pickle: %s: %s byte %zu", what,
                    m->cfg->where ? m->cfg->where : "pickle", m->cfg->base + m->op);
}

static sdc_pval *newv(vm *m, sdc_pkind kind) {
    sdc_pickle *p = m->p;
    if (p->nobjects >= m->max_objects) {
        fail(m, "more than %zu objects (limit)", m->max_objects);
        return NULL;
    }
    if (!p->chunks || p->chunks->used == CHUNK) {
        chunk *c = malloc(sizeof *c);
        if (!c) { fail(m, "out of memory"); return NULL; }
        c->next = p->chunks;
        c->used = 0;
        p->chunks = c;
    }
    sdc_pval *v = &p->chunks->v[p->chunks->used++];
    memset(v, 0, sizeof *v);
    v->kind = kind;
    p->nobjects++;
    return v;
}

static int push(vm *m, sdc_pval *v) {
    if (!v) return -1;
    if (m->nstack >= SDC_PICKLE_MAX_STACK)
        return fail(m, "stack deeper than %u values (limit)", SDC_PICKLE_MAX_STACK);
    if (grow((void **)&m->stack, &m->stackcap, m->nstack, sizeof *m->stack))
        return fail(m, "out of memory");
    m->stack[m->nstack++] = v;
    return 0;
}

static size_t floor_(const vm *m) { return m->nmarks ? m->marks[m->nmarks - 1] : 0; }

static const char *opname(uint8_t op);

static int pop(vm *m, sdc_pval **v) {
    if (m->nstack <= floor_(m)) return fail(m, "stack underflow in %s", opname(m->d[m->op]));
    *v = m->stack[--m->nstack];
    return 0;
}

static int top(vm *m, sdc_pval **v) {
    if (m->nstack <= floor_(m)) return fail(m, "stack underflow in %s", opname(m->d[m->op]));
    *v = m->stack[m->nstack - 1];
    return 0;
}

/* Items from the last MARK to the top: valid until the next push. */
static int pop_mark(vm *m, sdc_pval ***items, size_t *n) {
    if (!m->nmarks) return fail(m, "%s without MARK", opname(m->d[m->op]));
    size_t mk = m->marks[--m->nmarks];
    *items = m->stack ? m->stack + mk : NULL;   /* no push yet: nothing to point into */
    *n = m->nstack - mk;
    m->nstack = mk;
    return 0;
}

/* Appends item to container c (nesting checked). */
static int seq_add(vm *m, sdc_pval *c, sdc_pval *item) {
    if (m->p->nitems >= m->max_items)
        return fail(m, "more than %zu container items (limit)", m->max_items);
    m->p->nitems++;
    if (grow((void **)&c->u.seq.v, &c->u.seq.cap, c->u.seq.n, sizeof *c->u.seq.v))
        return fail(m, "out of memory");
    c->u.seq.v[c->u.seq.n++] = item;
    if (item->depth + 1 > c->depth) {
        if (item->depth + 1 > SDC_PICKLE_MAX_DEPTH)
            return fail(m, "values nested deeper than %d (limit)", SDC_PICKLE_MAX_DEPTH);
        c->depth = item->depth + 1;
    }
    return 0;
}

static sdc_pval *new_seq(vm *m, sdc_pkind kind, sdc_pval **items, size_t n) {
    sdc_pval *c = newv(m, kind);
    if (!c) return NULL;
    for (size_t i = 0; i < n; i++)
        if (seq_add(m, c, items[i])) return NULL;
    return c;
}

static int hashable(vm *m, const sdc_pval *k) {
    if (k->kind == SDC_PV_LIST || k->kind == SDC_PV_DICT ||
        (k->kind == SDC_PV_SET && !k->u.seq.ordered))
        return fail(m, "unhashable %s used as a dict key", sdc_pkind_name(k->kind));
    return 0;
}

static int dict_set(vm *m, sdc_pval *d, sdc_pval *k, sdc_pval *v) {
    if (hashable(m, k)) return -1;
    return seq_add(m, d, k) || seq_add(m, d, v) ? -1 : 0;
}

/* --- reading operands --- */

static int need(vm *m, size_t n) {
    if (n > m->size - m->pos) return fail(m, "%s cut short", opname(m->d[m->op]));
    return 0;
}

static uint64_t le(const uint8_t *b, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static int read_line(vm *m, const char **s, size_t *n) {
    const uint8_t *nl = memchr(m->d + m->pos, '\n', m->size - m->pos);
    if (!nl) return fail(m, "%s: line without newline", opname(m->d[m->op]));
    *s = (const char *)m->d + m->pos;
    *n = (size_t)(nl - (m->d + m->pos));
    m->pos += *n + 1;
    return 0;
}

static int utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        int len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
        if (!len || (c >= 0xf0 && len == 3) || n - i < (size_t)len) return 0;
        uint32_t cp = c & (0xff >> (len + 1));
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
        i += (size_t)len;   /* surrogates (U+D800..DFFF) are accepted: Python's surrogatepass */
    }
    return 1;
}

/* Pushes a str or bytes view of the next n bytes. */
static int push_str(vm *m, sdc_pkind kind, uint64_t n) {
    if (n > m->size - m->pos) return fail(m, "%s of %llu bytes runs past the end",
                                          opname(m->d[m->op]), (unsigned long long)n);
    const uint8_t *s = m->d + m->pos;
    if (kind == SDC_PV_STR && !utf8_valid(s, (size_t)n))
        return fail(m, "%s is not valid UTF-8", opname(m->d[m->op]));
    sdc_pval *v = newv(m, kind);
    if (!v) return -1;
    v->u.str.s = (const char *)s;
    v->u.str.n = (size_t)n;
    m->pos += (size_t)n;
    return push(m, v);
}

/* Two's-complement little-endian integer of n bytes (LONG1/LONG4). */
static int push_long(vm *m, uint64_t n) {
    if (n > m->size - m->pos) return fail(m, "%s of %llu bytes runs past the end",
                                          opname(m->d[m->op]), (unsigned long long)n);
    const uint8_t *b = m->d + m->pos;
    m->pos += (size_t)n;
    int fits = 1;
    for (uint64_t i = 8; i < n; i++)
        if (b[i] != ((b[7] & 0x80) ? 0xff : 0x00)) fits = 0;
    sdc_pval *v = newv(m, fits ? SDC_PV_INT : SDC_PV_BIGINT);
    if (!v) return -1;
    if (fits) {
        int k = n < 8 ? (int)n : 8;
        uint64_t u = le(b, k);
        if (k > 0 && k < 8 && (b[k - 1] & 0x80)) u |= ~0ull << (8 * k);   /* sign-extend */
        v->u.i = (int64_t)u;
    } else {
        v->u.str.s = (const char *)b;   /* the raw bytes, for comparisons (legacy magic) */
        v->u.str.n = (size_t)n;
    }
    return push(m, v);
}

static int push_int(vm *m, int64_t i) {
    sdc_pval *v = newv(m, SDC_PV_INT);
    if (!v) return -1;
    v->u.i = i;
    return push(m, v);
}

/* Decimal integer text (INT, LONG, PUT, GET): value, or BIGINT when it does not fit. */
static int parse_dec(const char *s, size_t n, int64_t *out, int *big) {
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    if (n && s[n - 1] == 'L') n--;           /* LONG text ends in L */
    if (i >= n) return -1;
    uint64_t v = 0;
    *big = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        if (v > (UINT64_MAX - 9) / 10) *big = 1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX) *big = 1;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

/* --- memo --- */

static int memo_put(vm *m, uint64_t idx) {
    sdc_pval *v = NULL;
    if (top(m, &v)) return -1;
    /* A pickler numbers memo slots 0,1,2,..., each PUT at least 2 bytes: an index past the
     * pickle's own length is never legitimate, so it cannot make us allocate. */
    if (idx >= SDC_PICKLE_MAX_MEMO || idx > m->size)
        return fail(m, "memo index %llu over the limit", (unsigned long long)idx);
    if (idx >= m->memocap) {
        size_t nc = m->memocap ? m->memocap : 64;
        while (nc <= idx) nc *= 2;
        sdc_pval **q = realloc(m->memo, nc * sizeof *q);
        if (!q) return fail(m, "out of memory");
        memset(q + m->memocap, 0, (nc - m->memocap) * sizeof *q);
        m->memo = q;
        m->memocap = nc;
    }
    if (!m->memo[idx]) m->memocount++;
    m->memo[idx] = v;
    return 0;
}

static int memo_get(vm *m, uint64_t idx) {
    if (idx >= m->memocap || !m->memo[idx])
        return fail(m, "memo GET of unset slot %llu", (unsigned long long)idx);
    return push(m, m->memo[idx]);   /* a reference, never a copy */
}

/* --- globals --- */

/* Records full (sanitized in place) once; *stored = the context's copy. */
static int record_seen(vm *m, char *full, int dangerous, const char **stored) {
    sdc_pickle *p = m->p;
    for (char *q = full; *q; q++)   /* names are shown one per line: no forged lines */
        if ((unsigned char)*q < 0x20 || *q == 0x7f) *q = '?';
    for (size_t i = 0; i < p->nseen; i++)
        if (!strcmp(p->seen[i].name, full)) { *stored = p->seen[i].name; return 0; }
    if (p->nseen >= SDC_PICKLE_MAX_GLOBALS)
        return fail(m, "more than %d distinct unknown globals (limit)", SDC_PICKLE_MAX_GLOBALS);
    if (grow((void **)&p->seen, &p->seencap, p->nseen, sizeof *p->seen))
        return fail(m, "out of memory");
    char *c = blob(p, strlen(full) + 1);
    if (!c) return fail(m, "out of memory");
    strcpy(c, full);
    p->seen[p->nseen].name = c;
    p->seen[p->nseen].dangerous = dangerous;
    p->nseen++;
    *stored = c;
    return 0;
}

/* Resolves module.name: an allowlisted callable, or a placeholder (recorded). */
static int push_global(vm *m, const char *mod, size_t nmod, const char *name, size_t nname) {
    if (nmod == 0 || nname == 0 || nmod > 512 || nname > 512 || memchr(mod, 0, nmod) ||
        memchr(name, 0, nname))
        return fail(m, "bad global name");
    char module[513], nm[513], full[1026];
    memcpy(module, mod, nmod); module[nmod] = 0;
    memcpy(nm, name, nname); nm[nname] = 0;
    /* Python 2 spellings, as Unpickler(fix_imports=True) maps them */
    if (!strcmp(module, "__builtin__")) strcpy(module, "builtins");
    else if (!strcmp(module, "copy_reg")) strcpy(module, "copyreg");
    snprintf(full, sizeof full, "%s.%s", module, nm);
    for (size_t i = 0; i < sizeof ALLOW / sizeof ALLOW[0]; i++) {
        if (strcmp(ALLOW[i].module, module) || strcmp(ALLOW[i].name, nm)) continue;
        sdc_pval *v = newv(m, ALLOW[i].fn == FN_DTYPE ? SDC_PV_DTYPE : SDC_PV_GLOBAL);
        if (!v) return -1;
        v->u.glob.fn = ALLOW[i].fn;
        v->u.glob.name = ALLOW[i].name;
        v->u.glob.dtype = ALLOW[i].dtype < 0 ? SDC_F32 : (sdc_dtype)ALLOW[i].dtype;
        return push(m, v);
    }
    int dangerous = sdc_pickle_is_dangerous(module, nm);
    const char *stored = NULL;
    if (record_seen(m, full, dangerous, &stored)) return -1;
    const sdc_pickle_cfg *c = m->cfg;
    if (dangerous && !c->allow_unsafe && !c->inspect) m->danger = 1;   /* refused at the end */
    if (!dangerous && c->strict && !c->inspect)
        return fail(m, "global %s is not on sdc's allowlist (--strict refuses it)", full);
    sdc_pval *v = newv(m, SDC_PV_OPAQUE);
    if (!v) return -1;
    v->u.opaque = stored;
    return push(m, v);
}

/* The refusal for dangerous globals, naming every one seen. */
static int refuse_danger(vm *m) {
    char names[700] = "";
    size_t len = 0;
    for (size_t i = 0; i < m->p->nseen && len < sizeof names - 64; i++) {
        if (!m->p->seen[i].dangerous) continue;
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "",
                                m->p->seen[i].name);
    }
    return sdc_errf(m->e, "this file would run %s when loaded by PyTorch; sdc ran nothing "
                    "(--allow-unsafe-pickle loads the weights anyway)", names);
}

/* --- the allowlisted callables --- */

static int as_int(const sdc_pval *v, int64_t *out) {
    if (v->kind != SDC_PV_INT && v->kind != SDC_PV_BOOL) return -1;
    *out = v->u.i;
    return 0;
}

#define MAX_DIM_SIZE (1ll << 48)   /* no real dimension or stride comes near 2^48 */

/* _rebuild_tensor(storage, offset, size, stride), _v2(..., requires_grad, hooks[, metadata]),
 * _v3(..., requires_grad, hooks, dtype[, metadata]). */
static int rebuild_tensor(vm *m, int fn, sdc_pval *args, sdc_pval **out) {
    size_t n = args->u.seq.n;
    sdc_pval **a = args->u.seq.v;
    const char *what = fn == FN_REBUILD_V1 ? "_rebuild_tensor" :
                       fn == FN_REBUILD_V2 ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3";
    if ((fn == FN_REBUILD_V1 && n != 4) || (fn == FN_REBUILD_V2 && n != 6 && n != 7) ||
        (fn == FN_REBUILD_V3 && n != 7 && n != 8))
        return fail(m, "%s with %zu arguments", what, n);
    for (size_t i = 0; i < 4; i++)
        if (a[i]->kind == SDC_PV_OPAQUE) {       /* built from a placeholder: stays inert */
            *out = newv(m, SDC_PV_OPAQUE);
            if (*out) (*out)->u.opaque = a[i]->u.opaque;
            return *out ? 0 : -1;
        }
    if (a[0]->kind != SDC_PV_STORAGE)
        return fail(m, "%s: storage argument is a %s", what, sdc_pkind_name(a[0]->kind));
    sdc_pickle_storage *st = a[0]->u.storage;
    sdc_pickle_tensor *t = blob(m->p, sizeof *t);
    if (!t) return fail(m, "out of memory");
    t->storage = st;
    t->dtype = st->dtype;
    if (fn == FN_REBUILD_V3) {
        if (a[6]->kind != SDC_PV_DTYPE) return fail(m, "%s: dtype argument is a %s", what,
                                                    sdc_pkind_name(a[6]->kind));
        t->dtype = a[6]->u.glob.dtype;
    }
    if (as_int(a[1], &t->offset) || t->offset < 0 || t->offset > MAX_DIM_SIZE)
        return fail(m, "%s: bad storage offset", what);
    if ((a[2]->kind != SDC_PV_TUPLE && a[2]->kind != SDC_PV_LIST) ||
        (a[3]->kind != SDC_PV_TUPLE && a[3]->kind != SDC_PV_LIST))
        return fail(m, "%s: size and stride must be tuples", what);
    if (a[2]->u.seq.n > SDC_MAX_DIMS) return fail(m, "%s: %zu dims (at most %d)", what,
                                                  a[2]->u.seq.n, SDC_MAX_DIMS);
    if (a[3]->u.seq.n != a[2]->u.seq.n)
        return fail(m, "%s: %zu sizes but %zu strides", what, a[2]->u.seq.n, a[3]->u.seq.n);
    t->ndim = (int)a[2]->u.seq.n;
    int64_t numel = 1, extent = 1;   /* extent: 1 + sum (size-1)*stride, in elements */
    for (int i = 0; i < t->ndim; i++) {
        if (as_int(a[2]->u.seq.v[i], &t->shape[i]) || as_int(a[3]->u.seq.v[i], &t->stride[i]))
            return fail(m, "%s: size or stride not an integer", what);
        if (t->shape[i] < 0 || t->shape[i] > MAX_DIM_SIZE || t->stride[i] < 0 ||
            t->stride[i] > MAX_DIM_SIZE)
            return fail(m, "%s: size %lld / stride %lld out of range", what,
                        (long long)t->shape[i], (long long)t->stride[i]);
        int64_t span;
        if (__builtin_mul_overflow(numel, t->shape[i], &numel) ||
            __builtin_mul_overflow(t->shape[i] ? t->shape[i] - 1 : 0, t->stride[i], &span) ||
            __builtin_add_overflow(extent, span, &extent))
            return fail(m, "%s: element count overflows", what);
    }
    if (numel == 0) extent = 0;
    t->numel = numel;
    t->contiguous = 1;
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expect) t->contiguous = 0;
        expect *= t->shape[i];
    }
    /* the view must lie inside its storage (elements of the tensor's dtype) */
    uint64_t have = st->numel, esz = sdc_dtype_size(t->dtype), ssz = sdc_dtype_size(st->dtype);
    if (esz != ssz) have = st->numel * ssz / esz;  /* v3 over an untyped (byte) storage */
    int64_t end;
    if (__builtin_add_overflow(t->offset, extent, &end) || (uint64_t)end > have)
        return fail(m, "%s: view [offset %lld, %lld elements] runs past its storage '%s' of "
                    "%llu elements", what, (long long)t->offset, (long long)extent, st->key,
                    (unsigned long long)have);
    sdc_pval *v = newv(m, SDC_PV_TENSOR);
    if (!v) return -1;
    v->u.tensor = t;
    *out = v;
    return 0;
}

static int call(vm *m, sdc_pval *fnv, sdc_pval *args, sdc_pval **out, const char *op);

static int call_global(vm *m, sdc_pval *g, sdc_pval *args, sdc_pval **out, const char *op) {
    size_t n = args->u.seq.n;
    sdc_pval **a = args->u.seq.v;
    switch (g->u.glob.fn) {
    case FN_REBUILD_V1: case FN_REBUILD_V2: case FN_REBUILD_V3:
        return rebuild_tensor(m, g->u.glob.fn, args, out);
    case FN_PARAM: case FN_PARAM_STATE:     /* (data, requires_grad, hooks[, state]) → data */
        if (n < 1 || (a[0]->kind != SDC_PV_TENSOR && a[0]->kind != SDC_PV_OPAQUE))
            return fail(m, "_rebuild_parameter: data is not a tensor");
        *out = a[0];
        return 0;
    case FN_FROM_TYPE_V2:                   /* (func, new_type, args, state) → func(*args) */
        if (n != 4 || a[2]->kind != SDC_PV_TUPLE)
            return fail(m, "_rebuild_from_type_v2: bad arguments");
        return call(m, a[0], a[2], out, op);
    case FN_ORDERED_DICT: {                 /* () or ([(k, v), ...],) */
        sdc_pval *d = newv(m, SDC_PV_DICT);
        if (!d) return -1;
        d->u.seq.ordered = 1;
        if (n > 1) return fail(m, "OrderedDict with %zu arguments", n);
        if (n == 1) {
            if (a[0]->kind != SDC_PV_LIST && a[0]->kind != SDC_PV_TUPLE)
                return fail(m, "OrderedDict from a %s", sdc_pkind_name(a[0]->kind));
            for (size_t i = 0; i < a[0]->u.seq.n; i++) {
                sdc_pval *kv = a[0]->u.seq.v[i];
                if ((kv->kind != SDC_PV_TUPLE && kv->kind != SDC_PV_LIST) || kv->u.seq.n != 2)
                    return fail(m, "OrderedDict item is not a pair");
                if (dict_set(m, d, kv->u.seq.v[0], kv->u.seq.v[1])) return -1;
            }
        }
        *out = d;
        return 0;
    }
    case FN_SIZE:                           /* torch.Size((d0, d1, ...)) → the tuple */
        if (n != 1 || (a[0]->kind != SDC_PV_TUPLE && a[0]->kind != SDC_PV_LIST))
            return fail(m, "torch.Size with bad arguments");
        *out = a[0];
        return 0;
    default:
        return fail(m, "%s on torch.%s, which sdc does not call", op, g->u.glob.name);
    }
}

/* callable(*args): an allowlisted global, or a placeholder that stays inert. */
static int call(vm *m, sdc_pval *fnv, sdc_pval *args, sdc_pval **out, const char *op) {
    if (fnv->kind == SDC_PV_OPAQUE) {
        sdc_pval *v = newv(m, SDC_PV_OPAQUE);
        if (!v) return -1;
        v->u.opaque = fnv->u.opaque;
        *out = v;
        return 0;
    }
    if (args->kind != SDC_PV_TUPLE) return fail(m, "%s arguments are a %s, not a tuple", op,
                                                sdc_pkind_name(args->kind));
    if (fnv->kind != SDC_PV_GLOBAL)
        return fail(m, "%s on a %s, which is not callable", op, sdc_pkind_name(fnv->kind));
    return call_global(m, fnv, args, out, op);
}

/* cls.__new__(cls, *args): OrderedDict → empty dict; a placeholder stays inert. */
static int newobj(vm *m, sdc_pval *cls, sdc_pval *args, sdc_pval **out, const char *op) {
    if (cls->kind == SDC_PV_OPAQUE) return call(m, cls, args, out, op);
    if (args->kind != SDC_PV_TUPLE) return fail(m, "%s arguments are a %s, not a tuple", op,
                                                sdc_pkind_name(args->kind));
    if (cls->kind == SDC_PV_GLOBAL && cls->u.glob.fn == FN_ORDERED_DICT) {
        sdc_pval *d = newv(m, SDC_PV_DICT);
        if (!d) return -1;
        d->u.seq.ordered = 1;
        *out = d;
        return 0;
    }
    return fail(m, "%s on a %s%s%s, which sdc does not build", op, sdc_pkind_name(cls->kind),
                cls->kind == SDC_PV_GLOBAL ? " " : "",
                cls->kind == SDC_PV_GLOBAL ? cls->u.glob.name : "");
}

/* BINPERSID: ('storage', torch.XStorage, key, location, numel[, view_metadata]). */
static int persistent_load(vm *m, sdc_pval *pid) {
    sdc_pval **a = pid->u.seq.v;
    if (pid->kind != SDC_PV_TUPLE || (pid->u.seq.n != 5 && pid->u.seq.n != 6))
        return fail(m, "persistent id is a %s, not ('storage', type, key, location, numel)",
                    sdc_pkind_name(pid->kind));
    if (a[0]->kind != SDC_PV_STR || a[0]->u.str.n != 7 || memcmp(a[0]->u.str.s, "storage", 7))
        return fail(m, "persistent id does not start with 'storage'");
    if (a[1]->kind == SDC_PV_OPAQUE)
        return fail(m, "persistent id names %s, a storage type sdc does not read", a[1]->u.opaque);
    if (a[1]->kind != SDC_PV_GLOBAL || a[1]->u.glob.fn != FN_STORAGE_TYPE)
        return fail(m, "persistent id names a %s, not a torch storage type",
                    sdc_pkind_name(a[1]->kind));
    if (a[2]->kind != SDC_PV_STR || a[2]->u.str.n == 0 || a[2]->u.str.n > 255 ||
        memchr(a[2]->u.str.s, 0, a[2]->u.str.n) || memchr(a[2]->u.str.s, '/', a[2]->u.str.n))
        return fail(m, "persistent id: bad storage key");
    if (a[3]->kind != SDC_PV_STR) return fail(m, "persistent id: location is not a string");
    int64_t numel;
    if (as_int(a[4], &numel) || numel < 0) return fail(m, "persistent id: bad numel");
    if (pid->u.seq.n == 6 && a[5]->kind != SDC_PV_NONE)
        return fail(m, "persistent id: storage views (legacy view metadata) are not supported");
    char key[256];
    memcpy(key, a[2]->u.str.s, a[2]->u.str.n);
    key[a[2]->u.str.n] = 0;
    sdc_dtype dt = a[1]->u.glob.dtype;
    size_t bytes;
    if (sdc_mul_overflow((size_t)numel, sdc_dtype_size(dt), &bytes) || bytes > (1ull << 56))
        return fail(m, "storage '%s': %lld elements overflow", key, (long long)numel);
    sdc_pickle_storage *st = sdc_pickle_storage_find(m->p, key);
    if (st) {
        if (st->dtype != dt || st->numel != (uint64_t)numel)
            return fail(m, "storage '%s' named twice with different type or size", key);
    } else {
        if (m->p->nobjects >= m->max_objects)
            return fail(m, "more than %zu objects (limit)", m->max_objects);
        st = blob(m->p, sizeof *st);
        char *k = blob(m->p, strlen(key) + 1);
        if (!st || !k) return fail(m, "out of memory");
        strcpy(k, key);
        st->key = k;
        st->dtype = dt;
        st->numel = (uint64_t)numel;
        if (storage_add(m->p, st)) return fail(m, "out of memory");
        m->p->nobjects++;
        if (m->cfg->on_storage && m->cfg->on_storage(m->cfg->ctx, st, m->e)) {
            char msg[sizeof m->e->msg];
            memcpy(msg, m->e->msg, sizeof msg);
            return fail(m, "%s", msg);
        }
    }
    sdc_pval *v = newv(m, SDC_PV_STORAGE);
    if (!v) return -1;
    v->u.storage = st;
    return push(m, v);
}

/* ------------------------------------------------------------------------------------------ */
/* Opcodes.                                                                                    */

enum {
    MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', FLOAT = 'F', INT = 'I',
    BININT = 'J', BININT1 = 'K', LONG = 'L', BININT2 = 'M', NONE = 'N', PERSID = 'P',
    BINPERSID = 'Q', REDUCE = 'R', STRING = 'S', BINSTRING = 'T', SHORT_BINSTRING = 'U',
    UNICODE = 'V', BINUNICODE = 'X', APPEND = 'a', BUILD = 'b', GLOBAL = 'c', DICT = 'd',
    EMPTY_DICT = '}', APPENDS = 'e', GET = 'g', BINGET = 'h', INST = 'i', LONG_BINGET = 'j',
    LIST = 'l', EMPTY_LIST = ']', OBJ = 'o', PUT = 'p', BINPUT = 'q', LONG_BINPUT = 'r',
    SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G',
    PROTO = 0x80, NEWOBJ = 0x81, EXT1 = 0x82, EXT2 = 0x83, EXT4 = 0x84, TUPLE1 = 0x85,
    TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b,
    BINBYTES = 'B', SHORT_BINBYTES = 'C', SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d,
    BINBYTES8 = 0x8e, EMPTY_SET = 0x8f, ADDITEMS = 0x90, FROZENSET = 0x91, NEWOBJ_EX = 0x92,
    STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95, BYTEARRAY8 = 0x96, NEXT_BUFFER = 0x97,
    READONLY_BUFFER = 0x98
};

static const char *opname(uint8_t op) {
    switch (op) {
    case MARK: return "MARK"; case STOP: return "STOP"; case POP: return "POP";
    case POP_MARK: return "POP_MARK"; case DUP: return "DUP"; case FLOAT: return "FLOAT";
    case INT: return "INT"; case BININT: return "BININT"; case BININT1: return "BININT1";
    case LONG: return "LONG"; case BININT2: return "BININT2"; case NONE: return "NONE";
    case PERSID: return "PERSID"; case BINPERSID: return "BINPERSID";
    case REDUCE: return "REDUCE"; case STRING: return "STRING"; case BINSTRING: return "BINSTRING";
    case SHORT_BINSTRING: return "SHORT_BINSTRING"; case UNICODE: return "UNICODE";
    case BINUNICODE: return "BINUNICODE"; case APPEND: return "APPEND"; case BUILD: return "BUILD";
    case GLOBAL: return "GLOBAL"; case DICT: return "DICT"; case EMPTY_DICT: return "EMPTY_DICT";
    case APPENDS: return "APPENDS"; case GET: return "GET"; case BINGET: return "BINGET";
    case INST: return "INST"; case LONG_BINGET: return "LONG_BINGET"; case LIST: return "LIST";
    case EMPTY_LIST: return "EMPTY_LIST"; case OBJ: return "OBJ"; case PUT: return "PUT";
    case BINPUT: return "BINPUT"; case LONG_BINPUT: return "LONG_BINPUT";
    case SETITEM: return "SETITEM"; case TUPLE: return "TUPLE"; case EMPTY_TUPLE: return "EMPTY_TUPLE";
    case SETITEMS: return "SETITEMS"; case BINFLOAT: return "BINFLOAT"; case PROTO: return "PROTO";
    case NEWOBJ: return "NEWOBJ"; case EXT1: return "EXT1"; case EXT2: return "EXT2";
    case EXT4: return "EXT4"; case TUPLE1: return "TUPLE1"; case TUPLE2: return "TUPLE2";
    case TUPLE3: return "TUPLE3"; case NEWTRUE: return "NEWTRUE"; case NEWFALSE: return "NEWFALSE";
    case LONG1: return "LONG1"; case LONG4: return "LONG4"; case BINBYTES: return "BINBYTES";
    case SHORT_BINBYTES: return "SHORT_BINBYTES"; case SHORT_BINUNICODE: return "SHORT_BINUNICODE";
    case BINUNICODE8: return "BINUNICODE8"; case BINBYTES8: return "BINBYTES8";
    case EMPTY_SET: return "EMPTY_SET"; case ADDITEMS: return "ADDITEMS";
    case FROZENSET: return "FROZENSET"; case NEWOBJ_EX: return "NEWOBJ_EX";
    case STACK_GLOBAL: return "STACK_GLOBAL"; case MEMOIZE: return "MEMOIZE"; case FRAME: return "FRAME";
    case BYTEARRAY8: return "BYTEARRAY8"; case NEXT_BUFFER: return "NEXT_BUFFER";
    case READONLY_BUFFER: return "READONLY_BUFFER";
    default: return "opcode";
    }
}

/* APPEND/APPENDS/SETITEM/SETITEMS/ADDITEMS target: the value under the items. A placeholder
 * accepts (and drops) anything: it stands for an object sdc never builds. */
static int target(vm *m, sdc_pkind want, sdc_pval **t) {
    if (top(m, t)) return -1;
    if ((*t)->kind == SDC_PV_OPAQUE) return 0;
    if ((*t)->kind != want || (want == SDC_PV_SET && (*t)->u.seq.ordered))
        return fail(m, "%s on a %s (needs a %s)", opname(m->d[m->op]),
                    (*t)->kind == SDC_PV_SET && (*t)->u.seq.ordered ? "frozenset"
                                                                    : sdc_pkind_name((*t)->kind),
                    sdc_pkind_name(want));
    return 0;
}

static int push_tuple(vm *m, size_t n) {
    sdc_pval *items[3] = {NULL, NULL, NULL};
    for (size_t i = n; i > 0; i--)
        if (pop(m, &items[i - 1])) return -1;
    return push(m, new_seq(m, SDC_PV_TUPLE, items, n));
}

/* One opcode at m->pos. Returns 0, 1 at STOP (result pushed), or -1. */
static int step(vm *m, int first) {
    m->op = m->pos;
    uint8_t op = m->d[m->pos++];
    sdc_pval *a = NULL, *b = NULL, *c = NULL, **items = NULL, *v = NULL;
    size_t n = 0;
    const char *s = NULL, *s2 = NULL;
    size_t ns = 0, ns2 = 0;
    int64_t iv;
    int big;
    if (first && op != PROTO)
        return fail(m, "does not start with PROTO (sdc reads pickle protocols 2 to 5)");
    switch (op) {
    case PROTO:
        if (!first) return fail(m, "PROTO repeated or not at the start");
        if (need(m, 1)) return -1;
        if (m->d[m->pos] < 2 || m->d[m->pos] > 5)
            return fail(m, "pickle protocol %d (sdc reads 2 to 5)", m->d[m->pos]);
        m->pos++;
        return 0;
    case FRAME:
        if (need(m, 8)) return -1;
        if (le(m->d + m->pos, 8) > m->size - m->pos - 8) return fail(m, "FRAME runs past the end");
        m->pos += 8;
        return 0;
    case STOP:
        return 1;
    case MARK:
        if (m->nmarks >= SDC_PICKLE_MAX_MARKS)
            return fail(m, "more than %d open MARKs (limit)", SDC_PICKLE_MAX_MARKS);
        if (grow((void **)&m->marks, &m->markcap, m->nmarks, sizeof *m->marks))
            return fail(m, "out of memory");
        m->marks[m->nmarks++] = m->nstack;
        return 0;
    case POP:
        if (m->nstack > floor_(m)) { m->nstack--; return 0; }
        return pop_mark(m, &items, &n);             /* Python: POP on an empty frame pops a MARK */
    case POP_MARK: return pop_mark(m, &items, &n);
    case DUP: return (top(m, &a) || push(m, a)) ? -1 : 0;
    /* --- constants and numbers --- */
    case NONE: return push(m, &m->p->none);
    case NEWTRUE: return push(m, &m->p->yes);
    case NEWFALSE: return push(m, &m->p->no);
    case BININT1: if (need(m, 1)) return -1; m->pos += 1; return push_int(m, m->d[m->pos - 1]);
    case BININT2: if (need(m, 2)) return -1; m->pos += 2; return push_int(m, (int64_t)le(m->d + m->pos - 2, 2));
    case BININT:
        if (need(m, 4)) return -1;
        m->pos += 4;
        return push_int(m, (int32_t)(uint32_t)le(m->d + m->pos - 4, 4));
    case LONG1: if (need(m, 1)) return -1; m->pos += 1; return push_long(m, m->d[m->pos - 1]);
    case LONG4:
        if (need(m, 4)) return -1;
        iv = (int32_t)(uint32_t)le(m->d + m->pos, 4);
        m->pos += 4;
        if (iv < 0) return fail(m, "LONG4 with negative length");
        return push_long(m, (uint64_t)iv);
    case INT: case LONG:
        if (read_line(m, &s, &ns)) return -1;
        if (op == INT && ns == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1'))
            return push(m, s[1] == '1' ? &m->p->yes : &m->p->no);
        if (parse_dec(s, ns, &iv, &big)) return fail(m, "%s: bad number", opname(op));
        if (big) { v = newv(m, SDC_PV_BIGINT); if (!v) return -1; v->u.str.s = s; v->u.str.n = ns; return push(m, v); }
        return push_int(m, iv);
    case BINFLOAT: {
        if (need(m, 8)) return -1;
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = u << 8 | m->d[m->pos + i];   /* big-endian */
        m->pos += 8;
        if (!(v = newv(m, SDC_PV_FLOAT))) return -1;
        memcpy(&v->u.f, &u, 8);
        return push(m, v);
    }
    case FLOAT: {
        if (read_line(m, &s, &ns)) return -1;
        char buf[64], *endp;
        if (ns == 0 || ns >= sizeof buf) return fail(m, "FLOAT: bad number");
        memcpy(buf, s, ns); buf[ns] = 0;
        double f = strtod(buf, &endp);
        if (*endp) return fail(m, "FLOAT: bad number");
        if (!(v = newv(m, SDC_PV_FLOAT))) return -1;
        v->u.f = f;
        return push(m, v);
    }
    /* --- strings and bytes (views into the pickle) --- */
    case SHORT_BINUNICODE: if (need(m, 1)) return -1; m->pos += 1; return push_str(m, SDC_PV_STR, m->d[m->pos - 1]);
    case BINUNICODE: if (need(m, 4)) return -1; m->pos += 4; return push_str(m, SDC_PV_STR, le(m->d + m->pos - 4, 4));
    case BINUNICODE8: if (need(m, 8)) return -1; m->pos += 8; return push_str(m, SDC_PV_STR, le(m->d + m->pos - 8, 8));
    case SHORT_BINSTRING: if (need(m, 1)) return -1; m->pos += 1; return push_str(m, SDC_PV_STR, m->d[m->pos - 1]);
    case BINSTRING:
        if (need(m, 4)) return -1;
        iv = (int32_t)(uint32_t)le(m->d + m->pos, 4);
        m->pos += 4;
        if (iv < 0) return fail(m, "BINSTRING with negative length");
        return push_str(m, SDC_PV_STR, (uint64_t)iv);
    case SHORT_BINBYTES: if (need(m, 1)) return -1; m->pos += 1; return push_str(m, SDC_PV_BYTES, m->d[m->pos - 1]);
    case BINBYTES: if (need(m, 4)) return -1; m->pos += 4; return push_str(m, SDC_PV_BYTES, le(m->d + m->pos - 4, 4));
    case BINBYTES8: case BYTEARRAY8:
        if (need(m, 8)) return -1;
        m->pos += 8;
        return push_str(m, SDC_PV_BYTES, le(m->d + m->pos - 8, 8));
    case STRING: case UNICODE:
        /* protocol 0 text: only the plain form (no escapes, ASCII for UNICODE) is read */
        if (read_line(m, &s, &ns)) return -1;
        if (op == STRING) {
            if (ns < 2 || (s[0] != '\'' && s[0] != '"') || s[ns - 1] != s[0])
                return fail(m, "STRING not quoted");
            s++; ns -= 2;
        }
        for (size_t i = 0; i < ns; i++)
            if (s[i] == '\\' || (uint8_t)s[i] >= 0x80)
                return fail(m, "%s with escapes is not supported", opname(op));
        if (!(v = newv(m, SDC_PV_STR))) return -1;
        v->u.str.s = s;
        v->u.str.n = ns;
        return push(m, v);
    /* --- containers --- */
    case EMPTY_TUPLE: return push(m, newv(m, SDC_PV_TUPLE));
    case TUPLE1: return push_tuple(m, 1);
    case TUPLE2: return push_tuple(m, 2);
    case TUPLE3: return push_tuple(m, 3);
    case TUPLE: if (pop_mark(m, &items, &n)) return -1; return push(m, new_seq(m, SDC_PV_TUPLE, items, n));
    case EMPTY_LIST: return push(m, newv(m, SDC_PV_LIST));
    case LIST: if (pop_mark(m, &items, &n)) return -1; return push(m, new_seq(m, SDC_PV_LIST, items, n));
    case EMPTY_DICT: return push(m, newv(m, SDC_PV_DICT));
    case EMPTY_SET: return push(m, newv(m, SDC_PV_SET));
    case FROZENSET:
        if (pop_mark(m, &items, &n)) return -1;
        if (!(v = new_seq(m, SDC_PV_SET, items, n))) return -1;
        v->u.seq.ordered = 1;                       /* frozen */
        return push(m, v);
    case DICT:
        if (pop_mark(m, &items, &n)) return -1;
        if (n % 2) return fail(m, "DICT with an odd number of items");
        if (!(v = newv(m, SDC_PV_DICT))) return -1;
        for (size_t i = 0; i < n; i += 2)
            if (dict_set(m, v, items[i], items[i + 1])) return -1;
        return push(m, v);
    case APPEND:
        if (pop(m, &a) || target(m, SDC_PV_LIST, &b)) return -1;
        return b->kind == SDC_PV_OPAQUE ? 0 : seq_add(m, b, a);
    case APPENDS: case ADDITEMS:
        if (pop_mark(m, &items, &n) || target(m, op == APPENDS ? SDC_PV_LIST : SDC_PV_SET, &b))
            return -1;
        for (size_t i = 0; i < n && b->kind != SDC_PV_OPAQUE; i++)
            if (seq_add(m, b, items[i])) return -1;
        return 0;
    case SETITEM:
        if (pop(m, &a) || pop(m, &c) || target(m, SDC_PV_DICT, &b)) return -1;
        return b->kind == SDC_PV_OPAQUE ? 0 : dict_set(m, b, c, a);
    case SETITEMS:
        if (pop_mark(m, &items, &n) || target(m, SDC_PV_DICT, &b)) return -1;
        if (n % 2) return fail(m, "SETITEMS with an odd number of items");
        for (size_t i = 0; i < n && b->kind != SDC_PV_OPAQUE; i += 2)
            if (dict_set(m, b, items[i], items[i + 1])) return -1;
        return 0;
    /* --- memo --- */
    case BINPUT: if (need(m, 1)) return -1; m->pos += 1; return memo_put(m, m->d[m->pos - 1]);
    case LONG_BINPUT: if (need(m, 4)) return -1; m->pos += 4; return memo_put(m, le(m->d + m->pos - 4, 4));
    case MEMOIZE: return memo_put(m, m->memocount);
    case BINGET: if (need(m, 1)) return -1; m->pos += 1; return memo_get(m, m->d[m->pos - 1]);
    case LONG_BINGET: if (need(m, 4)) return -1; m->pos += 4; return memo_get(m, le(m->d + m->pos - 4, 4));
    case PUT: case GET:
        if (read_line(m, &s, &ns)) return -1;
        if (parse_dec(s, ns, &iv, &big) || big || iv < 0) return fail(m, "%s: bad index", opname(op));
        return op == PUT ? memo_put(m, (uint64_t)iv) : memo_get(m, (uint64_t)iv);
    /* --- globals and calls --- */
    case GLOBAL: case INST:
        if (read_line(m, &s, &ns) || read_line(m, &s2, &ns2)) return -1;
        if (push_global(m, s, ns, s2, ns2)) return -1;
        if (op == GLOBAL) return 0;
        /* INST: class on the stack; its arguments are the items since the MARK before it */
        if (pop(m, &a)) return -1;
        if (pop_mark(m, &items, &n) || !(b = new_seq(m, SDC_PV_TUPLE, items, n))) return -1;
        if (call(m, a, b, &v, "INST")) return -1;
        return push(m, v);
    case STACK_GLOBAL:
        if (pop(m, &b) || pop(m, &a)) return -1;
        if (a->kind != SDC_PV_STR || b->kind != SDC_PV_STR)
            return fail(m, "STACK_GLOBAL on a %s and a %s", sdc_pkind_name(a->kind),
                        sdc_pkind_name(b->kind));
        return push_global(m, a->u.str.s, a->u.str.n, b->u.str.s, b->u.str.n);
    case OBJ:
        if (pop_mark(m, &items, &n)) return -1;
        if (n < 1) return fail(m, "OBJ without a class");
        a = items[0];
        if (!(b = new_seq(m, SDC_PV_TUPLE, items + 1, n - 1)) || call(m, a, b, &v, "OBJ")) return -1;
        return push(m, v);
    case REDUCE:
        if (pop(m, &b) || pop(m, &a) || call(m, a, b, &v, "REDUCE")) return -1;
        return push(m, v);
    case NEWOBJ:
        if (pop(m, &b) || pop(m, &a) || newobj(m, a, b, &v, "NEWOBJ")) return -1;
        return push(m, v);
    case NEWOBJ_EX:
        if (pop(m, &c) || pop(m, &b) || pop(m, &a)) return -1;
        if (c->kind != SDC_PV_DICT && c->kind != SDC_PV_OPAQUE) return fail(m, "NEWOBJ_EX kwargs not a dict");
        if (newobj(m, a, b, &v, "NEWOBJ_EX")) return -1;
        return push(m, v);
    case BUILD:
        /* inst.__setstate__(state): sdc keeps no attributes; only objects that take a state */
        if (pop(m, &a) || top(m, &b)) return -1;
        if (b->kind == SDC_PV_OPAQUE || b->kind == SDC_PV_TENSOR ||
            (b->kind == SDC_PV_DICT && b->u.seq.ordered))
            return 0;
        return fail(m, "BUILD on a %s", sdc_pkind_name(b->kind));
    case BINPERSID:
        if (pop(m, &a) || persistent_load(m, a)) return -1;
        return 0;
    case PERSID:
        if (read_line(m, &s, &ns)) return -1;
        return fail(m, "persistent id is a str, not ('storage', type, key, location, numel)");
    case EXT1: case EXT2: case EXT4:
        return fail(m, "%s (extension registry) is not supported", opname(op));
    case NEXT_BUFFER: case READONLY_BUFFER:
        return fail(m, "%s (out-of-band buffers) is not supported", opname(op));
    default:
        return fail(m, "unknown opcode 0x%02x", op);
    }
}

int sdc_pickle_run(sdc_pickle *p, const uint8_t *data, size_t size, const sdc_pickle_cfg *cfg,
                   sdc_pval **result, size_t *end, sdc_err *e) {
    vm m = {.p = p, .cfg = cfg, .d = data, .size = size, .e = e};
    m.max_objects = cfg->max_objects && cfg->max_objects < SDC_PICKLE_MAX_OBJECTS
                        ? cfg->max_objects : SDC_PICKLE_MAX_OBJECTS;
    m.max_items = cfg->max_items && cfg->max_items < SDC_PICKLE_MAX_ITEMS
                      ? cfg->max_items : SDC_PICKLE_MAX_ITEMS;
    int rc = 0;
    for (int first = 1;; first = 0) {
        if (m.pos >= m.size) {
            m.op = m.pos;
            rc = fail(&m, "no STOP before the end");
            break;
        }
        rc = step(&m, first);
        if (rc < 0) break;
        if (rc == 1) {
            sdc_pval *v = NULL;
            rc = pop(&m, &v);
            if (rc == 0) { *result = v; *end = m.pos; }
            break;
        }
    }
    if (m.danger) rc = refuse_danger(&m);   /* the most important thing to say */
    free(m.stack);
    free(m.marks);
    free(m.memo);
    return rc;
}
