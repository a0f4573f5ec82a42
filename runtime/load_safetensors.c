/* load_safetensors.c — validates a whole mapped .safetensors file and indexes its tensors.
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON (an object: name →
 * {"dtype","shape","data_offsets"}, plus an optional "__metadata__" string → string map),
 * then the data section. Everything the spec promises is checked before any pointer is
 * handed out: header bounds, UTF-8, depth, duplicate keys, exact fields, dtypes, shapes with
 * checked arithmetic, offsets that tile the data section exactly (no gap, overlap or trailing
 * bytes). Data need not be aligned for its dtype: the store documents views as possibly
 * unaligned and every reader copies (sdc_tensor_to_f32, memcpy), so such files load. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "runtime/store_internal.h"

/* The reference reader's limit: a header this large already describes millions of tensors. */
#define ST_MAX_HEADER 100000000ull
/* A valid header nests 3 deep (root → entry → shape); anything past 16 is not safetensors,
 * and the bound keeps cJSON's recursion short. */
#define ST_MAX_DEPTH 16
/* JSON values allowed in one header: ~8 per tensor, so 4M values = 500k tensors; it bounds
 * cJSON's allocations (~64 bytes a value) to a few hundred MB for the worst header. */
#define ST_MAX_VALUES (1u << 22)
/* Largest dim, as in the issue: far beyond any real tensor, small enough to multiply safely. */
#define ST_MAX_DIM (1ull << 48)
/* Metadata keys per file: real files carry a few (kohya LoRAs ~60); the bound keeps merging
 * the metadata of several files cheap. */
#define ST_MAX_META_KEYS 4096
/* Offsets must be exact integers in a double. */
#define ST_MAX_OFFSET (1ull << 53)

typedef struct st_entry {
    const char *name;            /* points into the cJSON tree */
    int         dtype, ndim, order;
    int64_t     shape[SDC_MAX_DIMS];
    uint64_t    begin, end;
} st_entry;

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when invalid. */
static size_t utf8_len(const uint8_t *p, size_t n) {
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) { len = 3; if (c == 0xe0) lo = 0xa0; if (c == 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; if (c == 0xf0) lo = 0x90; if (c == 0xf4) hi = 0x8f; }
    else return 0;
    if (n < len) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf) return 0;
    return len;
}

/* One pass over the raw header before cJSON sees it: UTF-8, nesting depth, control characters
 * and \u0000 inside strings (a key with a NUL would alias a shorter name), value count.
 * base is the header's offset in the file, for messages. */
static int scan_header(const char *path, const uint8_t *h, size_t n, size_t base, sdc_err *e) {
    if (h[0] != '{')
        return sdc_errf(e, "%s: header is not a JSON object (starts with 0x%02x): byte %zu", path, h[0], base);
    size_t depth = 0, values = 0;
    int in_str = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = h[i];
        if (c >= 0x80) {
            size_t l = utf8_len(h + i, n - i);
            if (!l) return sdc_errf(e, "%s: header is not valid UTF-8: byte %zu", path, base + i);
            i += l;
            continue;
        }
        if (in_str) {
            if (c == '\\') {
                if (i + 1 < n && h[i + 1] == 'u' && i + 6 <= n && !memcmp(h + i + 2, "0000", 4))
                    return sdc_errf(e, "%s: header string holds a NUL (\\u0000): byte %zu", path, base + i);
                i += 2;
                continue;
            }
            if (c == '"') in_str = 0;
            else if (c < 0x20)
                return sdc_errf(e, "%s: header string holds control character 0x%02x: byte %zu", path, c, base + i);
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > ST_MAX_DEPTH)
                return sdc_errf(e, "%s: header JSON nested deeper than %d: byte %zu", path, ST_MAX_DEPTH, base + i);
            values++;
        } else if (c == '}' || c == ']') {
            if (depth) depth--;
        } else if (c == ',') {
            values++;
        }
        if (values > ST_MAX_VALUES)
            return sdc_errf(e, "%s: header holds more than %u JSON values: byte %zu", path, ST_MAX_VALUES, base + i);
        i++;
    }
    return 0;
}

/* Known safetensors dtypes that sdc does not handle: their own message. */
static int dtype_known_unsupported(const char *s) {
    static const char *const names[] = {"U16", "U32", "U64", "C64", "F8_E8M0", "F4", "F6_E2M3",
                                        "F6_E3M2", "F8_E4M3FNUZ", "F8_E5M2FNUZ", NULL};
    for (int i = 0; names[i]; i++)
        if (!strcmp(s, names[i])) return 1;
    return 0;
}

/* A JSON number that is an exact non-negative integer ≤ max. */
static int json_uint(const cJSON *v, uint64_t max, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!isfinite(d) || d < 0 || d != floor(d) || d > (double)max) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fails when two children of obj share a key; `what` names obj in the message. */
static int check_duplicates(const char *path, const cJSON *obj, const char *what, sdc_err *e) {
    size_t n = 0;
    for (const cJSON *c = obj->child; c; c = c->next) n++;
    if (n < 2) return 0;
    const char **k = malloc(n * sizeof *k);
    if (!k) return sdc_errf(e, "%s: out of memory checking %zu keys", path, n);
    size_t i = 0;
    for (const cJSON *c = obj->child; c; c = c->next) k[i++] = c->string;
    qsort(k, n, sizeof *k, cmp_str);
    int rc = 0;
    for (i = 1; i < n; i++)
        if (!strcmp(k[i - 1], k[i])) { rc = sdc_errf(e, "%s: duplicate key '%s': %s", path, k[i], what); break; }
    free(k);
    return rc;
}

static int parse_metadata(const char *path, const cJSON *m, sdc_file_index *out, sdc_err *e) {
    if (!cJSON_IsObject(m)) return sdc_errf(e, "%s: __metadata__ is not an object: header", path);
    if (check_duplicates(path, m, "__metadata__", e)) return -1;
    if (cJSON_GetArraySize(m) > ST_MAX_META_KEYS)
        return sdc_errf(e, "%s: __metadata__ has %d keys (at most %d): header", path, cJSON_GetArraySize(m),
                        ST_MAX_META_KEYS);
    for (const cJSON *c = m->child; c; c = c->next) {
        if (!cJSON_IsString(c))
            return sdc_errf(e, "%s: __metadata__ value is not a string: key '%s'", path, c->string);
        if (sdc_index_add_meta(out, c->string, c->valuestring, e)) return sdc_err_prefix(e, "%s", path);
    }
    return 0;
}

/* Reads one tensor entry's three fields, with every check that needs only the entry. */
static int parse_entry(const char *path, const cJSON *obj, uint64_t data_size, st_entry *t, sdc_err *e) {
    const char *nm = obj->string;
    for (const char *c = nm; *c; c++)   /* names are printed one per line (as the ckpt loader) */
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return sdc_errf(e, "%s: a tensor name holds control character 0x%02x (written as a JSON escape): "
                            "header", path, (unsigned char)*c);
    if (!cJSON_IsObject(obj)) return sdc_errf(e, "%s: entry is not an object: tensor '%s'", path, nm);
    char where[64 + 32];
    snprintf(where, sizeof where, "tensor '%.64s'", nm);
    if (check_duplicates(path, obj, where, e)) return -1;
    const cJSON *dt = NULL, *sh = NULL, *off = NULL;
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (!strcmp(c->string, "dtype")) dt = c;
        else if (!strcmp(c->string, "shape")) sh = c;
        else if (!strcmp(c->string, "data_offsets")) off = c;
        else return sdc_errf(e, "%s: unexpected field '%s': tensor '%s'", path, c->string, nm);
    }
    if (!dt || !sh || !off)
        return sdc_errf(e, "%s: missing field '%s': tensor '%s'", path,
                        !dt ? "dtype" : !sh ? "shape" : "data_offsets", nm);
    /* dtype */
    if (!cJSON_IsString(dt)) return sdc_errf(e, "%s: dtype is not a string: tensor '%s'", path, nm);
    t->dtype = sdc_dtype_from_name(dt->valuestring);
    if (t->dtype < 0) {
        if (dtype_known_unsupported(dt->valuestring))
            return sdc_errf(e, "%s: unsupported dtype %s (a safetensors dtype sdc does not handle): tensor '%s'",
                            path, dt->valuestring, nm);
        return sdc_errf(e, "%s: unknown dtype '%.40s': tensor '%s'", path, dt->valuestring, nm);
    }
    /* shape */
    if (!cJSON_IsArray(sh)) return sdc_errf(e, "%s: shape is not an array: tensor '%s'", path, nm);
    int nd = cJSON_GetArraySize(sh);
    if (nd > SDC_MAX_DIMS) return sdc_errf(e, "%s: %d dims (at most %d): tensor '%s'", path, nd, SDC_MAX_DIMS, nm);
    t->ndim = nd;
    uint64_t numel = 1;
    int d = 0;
    for (const cJSON *c = sh->child; c; c = c->next, d++) {
        uint64_t v;
        if (json_uint(c, ST_MAX_DIM, &v)) {
            if (cJSON_IsNumber(c) && c->valuedouble < 0)
                return sdc_errf(e, "%s: negative dim %g: tensor '%s'", path, c->valuedouble, nm);
            if (cJSON_IsNumber(c) && c->valuedouble == floor(c->valuedouble))
                return sdc_errf(e, "%s: dim %.0f too large (at most 2^48): tensor '%s'", path, c->valuedouble, nm);
            return sdc_errf(e, "%s: shape entry %d is not a non-negative integer: tensor '%s'", path, d, nm);
        }
        t->shape[d] = (int64_t)v;
        if (__builtin_mul_overflow(numel, v, &numel) || numel > (uint64_t)INT64_MAX)
            return sdc_errf(e, "%s: element count overflows: tensor '%s'", path, nm);
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, (uint64_t)sdc_dtype_size((sdc_dtype)t->dtype), &nbytes))
        return sdc_errf(e, "%s: byte size overflows: tensor '%s'", path, nm);
    /* data_offsets */
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
        json_uint(off->child, ST_MAX_OFFSET, &t->begin) || json_uint(off->child->next, ST_MAX_OFFSET, &t->end))
        return sdc_errf(e, "%s: data_offsets is not two non-negative integers: tensor '%s'", path, nm);
    if (t->begin > t->end)
        return sdc_errf(e, "%s: data_offsets begin %llu > end %llu: tensor '%s'", path,
                        (unsigned long long)t->begin, (unsigned long long)t->end, nm);
    if (t->end > data_size)
        return sdc_errf(e, "%s: data_offsets end %llu past end of file (data section is %llu bytes): tensor '%s'",
                        path, (unsigned long long)t->end, (unsigned long long)data_size, nm);
    if (t->end - t->begin != nbytes)
        return sdc_errf(e, "%s: data_offsets span %llu bytes but shape x dtype needs %llu: tensor '%s'", path,
                        (unsigned long long)(t->end - t->begin), (unsigned long long)nbytes, nm);
    t->name = nm;
    return 0;
}

static int cmp_begin(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->order - y->order;
}

/* The tensors, sorted by offset, must tile [0, data_size) exactly. */
static int check_tiling(const char *path, st_entry *t, size_t n, uint64_t data_size, sdc_err *e) {
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i].begin < at)
            return sdc_errf(e, "%s: data of '%s' overlaps the previous tensor: data offset %llu", path,
                            t[i].name, (unsigned long long)t[i].begin);
        if (t[i].begin > at)
            return sdc_errf(e, "%s: gap of %llu unused bytes before '%s': data offset %llu", path,
                            (unsigned long long)(t[i].begin - at), t[i].name, (unsigned long long)at);
        at = t[i].end;
    }
    if (at != data_size)
        return sdc_errf(e, "%s: %llu bytes left over after the last tensor: data offset %llu", path,
                        (unsigned long long)(data_size - at), (unsigned long long)at);
    return 0;
}

static int load(const char *path, const uint8_t *map, size_t size, sdc_file_index *out, sdc_err *e) {
    if (size < 8)
        return sdc_errf(e, "%s: too short for safetensors: %zu bytes (needs an 8-byte header length): byte 0",
                        path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | map[i];
    if (hlen > ST_MAX_HEADER)
        return sdc_errf(e, "%s: header length %llu over the 100 MB limit: byte 0", path, (unsigned long long)hlen);
    if (hlen > size - 8)
        return sdc_errf(e, "%s: header length %llu past end of file (%zu bytes): byte 0", path,
                        (unsigned long long)hlen, size);
    if (hlen == 0) return sdc_errf(e, "%s: header length is 0 (no JSON header): byte 0", path);
    const uint8_t *h = map + 8;
    if (scan_header(path, h, (size_t)hlen, 8, e)) return -1;

    char *buf = malloc((size_t)hlen + 1);          /* bounded: ≤ 100 MB and ≤ the file */
    if (!buf) return sdc_errf(e, "%s: out of memory reading a %llu-byte header", path, (unsigned long long)hlen);
    memcpy(buf, h, (size_t)hlen);
    buf[hlen] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, (size_t)hlen, &end, 0);
    int rc = 0;
    st_entry *ents = NULL;
    if (!root) {
        size_t at = end && end >= buf && end <= buf + hlen ? (size_t)(end - buf) : 0;
        rc = sdc_errf(e, "%s: header is not valid JSON: byte %zu", path, 8 + at);
        goto done;
    }
    for (const char *p = end; p < buf + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            rc = sdc_errf(e, "%s: header has bytes after the JSON object: byte %zu", path, 8 + (size_t)(p - buf));
            goto done;
        }
    if (!cJSON_IsObject(root)) { rc = sdc_errf(e, "%s: header is not a JSON object: byte 8", path); goto done; }
    if ((rc = check_duplicates(path, root, "header", e))) goto done;

    uint64_t data_size = size - 8 - hlen;
    size_t n = 0;
    for (const cJSON *c = root->child; c; c = c->next) n++;
    ents = calloc(n ? n : 1, sizeof *ents);
    if (!ents) { rc = sdc_errf(e, "%s: out of memory for %zu entries", path, n); goto done; }
    size_t nt = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (!strcmp(c->string, "__metadata__")) {
            if ((rc = parse_metadata(path, c, out, e))) goto done;
            continue;
        }
        if ((rc = parse_entry(path, c, data_size, &ents[nt], e))) goto done;
        ents[nt].order = (int)nt;
        nt++;
    }
    qsort(ents, nt, sizeof *ents, cmp_begin);
    if ((rc = check_tiling(path, ents, nt, data_size, e))) goto done;
    const uint8_t *data = map + 8 + hlen;
    for (size_t i = 0; i < nt; i++) {
        if ((rc = sdc_index_add(out, ents[i].name, (sdc_dtype)ents[i].dtype, ents[i].ndim, ents[i].shape,
                                data + ents[i].begin, 8 + hlen + ents[i].begin, e))) {
            sdc_err_prefix(e, "%s", path);
            goto done;
        }
    }
done:
    free(ents);
    cJSON_Delete(root);
    free(buf);
    return rc ? -1 : 0;
}

/* Messages are one line: keys from the header (escaped in the JSON) may hold control
 * characters, which become '?'. */
int sdc_load_safetensors(const char *path, const uint8_t *map, size_t size,
                         sdc_file_index *out, sdc_err *e) {
    int rc = load(path, map, size, out, e);
    if (rc && e)
        for (char *c = e->msg; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    return rc;
}
