/* store.c — the tensor store: open files (mmap'd read-only), one table of named tensors,
 * O(1) lookup by name (later file wins), metadata, pickle globals, conversion to f32.
 *
 * Owns: every mapping, every sdc_tensor and its name, the metadata strings, the globals.
 * Does not own: compute buffers. A file is committed only after its loader validated it
 * whole; a failed open leaves the store exactly as it was. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/store.h"
#include "runtime/store_internal.h"

/* The ckpt loaders (sdc_load_ckpt_zip, sdc_load_ckpt_legacy) live in runtime/load_ckpt.c. */

/* ---------------------------------------------------------------------------------------------
 * dtypes and formats */

static const struct { const char *name; size_t size; int is_float; } dtype_info[SDC_DTYPE_COUNT] = {
    [SDC_F64] = {"F64", 8, 1},   [SDC_F32] = {"F32", 4, 1},   [SDC_F16] = {"F16", 2, 1},
    [SDC_BF16] = {"BF16", 2, 1}, [SDC_I64] = {"I64", 8, 0},   [SDC_I32] = {"I32", 4, 0},
    [SDC_I16] = {"I16", 2, 0},   [SDC_I8] = {"I8", 1, 0},     [SDC_U8] = {"U8", 1, 0},
    [SDC_BOOL] = {"BOOL", 1, 0}, [SDC_F8_E4M3] = {"F8_E4M3", 1, 1},
    [SDC_F8_E5M2] = {"F8_E5M2", 1, 1},
};

size_t sdc_dtype_size(sdc_dtype t) {
    return (unsigned)t < SDC_DTYPE_COUNT ? dtype_info[t].size : 0;
}

const char *sdc_dtype_name(sdc_dtype t) {
    return (unsigned)t < SDC_DTYPE_COUNT ? dtype_info[t].name : "?";
}

int sdc_dtype_from_name(const char *s) {
    if (!s) return -1;
    for (int i = 0; i < SDC_DTYPE_COUNT; i++)
        if (!strcmp(s, dtype_info[i].name)) return i;
    return -1;
}

int sdc_dtype_is_float(sdc_dtype t) {
    return (unsigned)t < SDC_DTYPE_COUNT && dtype_info[t].is_float;
}

const char *sdc_format_name(sdc_format f) {
    switch (f) {
    case SDC_FMT_SAFETENSORS: return "safetensors";
    case SDC_FMT_CKPT_ZIP: return "ckpt (zip)";
    case SDC_FMT_CKPT_LEGACY: return "ckpt (legacy)";
    case SDC_FMT_DIFFUSERS_DIR: return "diffusers folder";
    }
    return "?";
}

/* ---------------------------------------------------------------------------------------------
 * the store */

typedef struct store_file {
    sdc_store_file pub;          /* path is owned (malloc'd) */
    void          *map;          /* NULL for an empty mapping */
    size_t         maplen;
    sdc_tensor    *tensors;      /* this file's tensors, in file order (pointers stay valid) */
} store_file;

struct sdc_store {
    store_file  *files;   size_t nfiles, filecap;
    sdc_tensor **order;   size_t n, ordercap;     /* all tensors, file after file */
    uint32_t    *hash;    size_t hashcap;         /* open addressing: order index + 1, 0 = empty */
    uint64_t     key[2];                          /* random SipHash key: names come from files, so
                                                     their hash must not be predictable (a file of
                                                     colliding names would make loading quadratic) */
    char       **meta;    size_t nmeta;           /* key0, val0, ... (unique keys, last file wins) */
    sdc_pickle_global *globals; size_t nglobals;
};

/* Tensor counts are kept below this so the hash's uint32 slots and its load factor hold. */
#define STORE_MAX_TENSORS (1u << 28)

/* SipHash-1-3 of a NUL-terminated name under a 128-bit key. */
#define SIP_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND(v0, v1, v2, v3) do { \
    v0 += v1; v1 = SIP_ROTL(v1, 13); v1 ^= v0; v0 = SIP_ROTL(v0, 32); \
    v2 += v3; v3 = SIP_ROTL(v3, 16); v3 ^= v2; \
    v0 += v3; v3 = SIP_ROTL(v3, 21); v3 ^= v0; \
    v2 += v1; v1 = SIP_ROTL(v1, 17); v1 ^= v2; v2 = SIP_ROTL(v2, 32); } while (0)

static uint64_t name_hash(const uint64_t key[2], const char *str) {
    uint64_t v0 = key[0] ^ 0x736f6d6570736575ull, v1 = key[1] ^ 0x646f72616e646f6dull;
    uint64_t v2 = key[0] ^ 0x6c7967656e657261ull, v3 = key[1] ^ 0x7465646279746573ull;
    size_t len = strlen(str), i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t m;
        memcpy(&m, str + i, 8);          /* little-endian hosts; any order hashes equally well */
        v3 ^= m;
        SIP_ROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t j = 0; i + j < len; j++) b |= (uint64_t)(uint8_t)str[i + j] << (8 * j);
    v3 ^= b;
    SIP_ROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* Inserts order[i] into a hash table of capacity cap (power of two); a same-name entry is
 * replaced, so the last inserted (the later file) wins. */
static void hash_insert(const uint64_t key[2], uint32_t *hash, size_t cap, sdc_tensor *const *order, size_t i) {
    size_t mask = cap - 1, h = (size_t)name_hash(key, order[i]->name) & mask;
    for (;; h = (h + 1) & mask) {
        if (!hash[h] || !strcmp(order[hash[h] - 1]->name, order[i]->name)) {
            hash[h] = (uint32_t)(i + 1);
            return;
        }
    }
}

sdc_store *sdc_store_new(void) {
    sdc_store *s = calloc(1, sizeof(sdc_store));
    if (!s) return NULL;
    /* the key only spreads names over buckets: lookups give the same answers whatever it is */
    if (getrandom(s->key, sizeof s->key, GRND_NONBLOCK) != (ssize_t)sizeof s->key) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s->key[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)s;
        s->key[1] = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&ts;
    }
    return s;
}

static void file_free(store_file *f) {
    if (f->map) munmap(f->map, f->maplen);
    for (size_t i = 0; i < f->pub.n_tensors; i++) free((char *)f->tensors[i].name);
    free(f->tensors);
    free((char *)f->pub.path);
}

void sdc_store_close(sdc_store *s) {
    if (!s) return;
    for (size_t i = 0; i < s->nfiles; i++) file_free(&s->files[i]);
    free(s->files);
    free(s->order);
    free(s->hash);
    for (size_t i = 0; i < s->nmeta * 2; i++) free(s->meta[i]);
    free(s->meta);
    for (size_t i = 0; i < s->nglobals; i++) free((char *)s->globals[i].name);
    free(s->globals);
    free(s);
}

/* Commits a validated index: every allocation happens first; on any failure nothing has
 * changed and -1 is returned. On success the index's strings now belong to the store. */
static int store_commit(sdc_store *s, store_file *nf, sdc_file_index *ix, sdc_err *e) {
    const char *path = nf->pub.path;
    size_t total;
    if (sdc_add_overflow(s->n, ix->n, &total) || total > STORE_MAX_TENSORS)
        return sdc_errf(e, "%s: too many tensors in the store (at most %u)", path, STORE_MAX_TENSORS);
    /* tensors of the new file */
    sdc_tensor *tens = ix->n ? calloc(ix->n, sizeof *tens) : NULL;
    size_t hcap = 16;
    while (hcap < total * 2) hcap *= 2;
    uint32_t *hash = calloc(hcap, sizeof *hash);
    sdc_tensor **order = (s->order && s->ordercap >= total) ? s->order : malloc((total ? total : 1) * sizeof *order);
    store_file *files = s->nfiles < s->filecap ? s->files
                        : malloc((s->filecap ? s->filecap * 2 : 4) * sizeof *files);
    /* metadata: unique keys; a new key may grow the table, an existing one is replaced */
    char **meta = malloc((s->nmeta + ix->nmeta + 1) * 2 * sizeof *meta);
    sdc_pickle_global *globs = malloc((s->nglobals + ix->nglobals + 1) * sizeof *globs);
    if ((ix->n && !tens) || !hash || !order || !files || !meta || !globs) {
        free(tens); free(hash); free(meta); free(globs);
        if (order != s->order) free(order);
        if (files != s->files) free(files);
        return sdc_errf(e, "%s: out of memory indexing %zu tensors", path, ix->n);
    }
    /* --- from here on nothing can fail --- */
    for (size_t i = 0; i < ix->n; i++) {
        sdc_index_entry *src = &ix->t[i];
        sdc_tensor *t = &tens[i];
        t->name = src->name;
        src->name = NULL;
        t->dtype = src->dtype;
        t->ndim = src->ndim;
        t->numel = 1;
        for (int d = 0; d < src->ndim; d++) { t->shape[d] = src->shape[d]; t->numel *= src->shape[d]; }
        t->nbytes = (size_t)t->numel * sdc_dtype_size(t->dtype);
        t->data = src->data;
        t->file = (int)s->nfiles;
        t->offset = src->offset;
    }
    if (order != s->order) {
        if (s->n) memcpy(order, s->order, s->n * sizeof *order);
        free(s->order);
        s->order = order;
        s->ordercap = total ? total : 1;
    }
    for (size_t i = 0; i < ix->n; i++) s->order[s->n + i] = &tens[i];
    for (size_t i = 0; i < total; i++) hash_insert(s->key, hash, hcap, s->order, i);
    free(s->hash);
    s->hash = hash;
    s->hashcap = hcap;
    if (files != s->files) {
        if (s->nfiles) memcpy(files, s->files, s->nfiles * sizeof *files);
        free(s->files);
        s->files = files;
        s->filecap = s->filecap ? s->filecap * 2 : 4;
    }
    nf->tensors = tens;
    nf->pub.first_tensor = s->n;
    nf->pub.n_tensors = ix->n;
    s->files[s->nfiles++] = *nf;
    s->n = total;
    ix->n = 0;
    /* metadata, last file wins */
    if (s->nmeta) memcpy(meta, s->meta, s->nmeta * 2 * sizeof *meta);
    free(s->meta);
    s->meta = meta;
    size_t old_nmeta = s->nmeta;   /* a file's own keys are unique: compare with earlier files' only */
    for (size_t i = 0; i < ix->nmeta; i++) {
        char *k = ix->meta[2 * i], *v = ix->meta[2 * i + 1];
        ix->meta[2 * i] = ix->meta[2 * i + 1] = NULL;
        size_t j = 0;
        while (j < old_nmeta && strcmp(s->meta[2 * j], k)) j++;
        if (j == old_nmeta) j = s->nmeta;
        if (j < s->nmeta) { free(k); free(s->meta[2 * j + 1]); s->meta[2 * j + 1] = v; }
        else { s->meta[2 * j] = k; s->meta[2 * j + 1] = v; s->nmeta++; }
    }
    ix->nmeta = 0;
    /* globals, each recorded once */
    if (s->nglobals) memcpy(globs, s->globals, s->nglobals * sizeof *globs);
    free(s->globals);
    s->globals = globs;
    size_t old_nglobals = s->nglobals;   /* the index records each global once */
    for (size_t i = 0; i < ix->nglobals; i++) {
        size_t j = 0;
        while (j < old_nglobals && strcmp(s->globals[j].name, ix->globals[i].name)) j++;
        if (j == old_nglobals) j = s->nglobals;
        if (j < s->nglobals) {
            s->globals[j].dangerous |= ix->globals[i].dangerous;
            free((char *)ix->globals[i].name);
        } else {
            s->globals[s->nglobals++] = ix->globals[i];
        }
        ix->globals[i].name = NULL;
    }
    ix->nglobals = 0;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * opening a file */

/* The legacy torch.save format opens with pickle PROTO 2 then LONG1 of 10 bytes (the magic
 * number 0x1950a86a20f9469cfc6c). Any other pickle opening goes to the same loader, which
 * names what is wrong. */
static const uint8_t LEGACY_MAGIC[4] = {0x80, 0x02, 0x8a, 0x0a};

typedef enum { KIND_SAFETENSORS, KIND_ZIP, KIND_LEGACY, KIND_UNKNOWN } file_kind;

static file_kind detect_kind(const uint8_t *p, size_t n) {
    if (n >= 4 && !memcmp(p, "PK\x03\x04", 4)) return KIND_ZIP;
    /* A safetensors header first: its length's low bytes may well read 0x80 0x02..0x05 (a
     * header of 0x0280 bytes, padded with spaces as the format allows); a pickle never has four
     * zero bytes then '{' there (the legacy magic's bytes 4-7 are not zero). */
    if (n >= 9 && p[8] == '{' && !p[4] && !p[5] && !p[6] && !p[7]) return KIND_SAFETENSORS;
    if (n >= 4 && !memcmp(p, LEGACY_MAGIC, 4)) return KIND_LEGACY;
    if (n >= 2 && p[0] == 0x80 && p[1] >= 2 && p[1] <= 5) return KIND_LEGACY;  /* a pickle */
    if (n >= 9 && p[8] == '{') return KIND_SAFETENSORS;
    /* a plausible 8-byte header length (high half zero) is a safetensors file to validate */
    if (n >= 8 && !p[4] && !p[5] && !p[6] && !p[7]) return KIND_SAFETENSORS;
    return KIND_UNKNOWN;
}

/* The last line of defence, whatever the loader: every view lies inside the mapping, at its
 * stated offset, and its size has no overflow. Nothing escapes the file even if a loader erred. */
static int check_views(const char *path, const uint8_t *map, size_t size, const sdc_file_index *ix, sdc_err *e) {
    for (size_t i = 0; i < ix->n; i++) {
        const sdc_index_entry *t = &ix->t[i];
        size_t numel = 1, nbytes, end;
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0 || sdc_mul_overflow(numel, (size_t)t->shape[d], &numel))
                return sdc_errf(e, "%s: tensor '%s': bad shape: dim %d", path, t->name, d);
        if (numel > (size_t)INT64_MAX || sdc_mul_overflow(numel, sdc_dtype_size(t->dtype), &nbytes))
            return sdc_errf(e, "%s: tensor '%s': size overflows", path, t->name);
        if (nbytes && (t->offset > size || (const uint8_t *)t->data != map + t->offset ||
                       sdc_add_overflow((size_t)t->offset, nbytes, &end) || end > size))
            return sdc_errf(e, "%s: tensor '%s': data outside the file: byte %llu", path, t->name,
                            (unsigned long long)t->offset);
    }
    return 0;
}

/* Names the diffusers-folder case clearly: a folder with model_index.json or unet/. */
static int open_directory(const char *path, sdc_err *e) {
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/model_index.json", path);
    int diffusers = stat(p, &st) == 0;
    snprintf(p, sizeof p, "%s/unet", path);
    diffusers |= stat(p, &st) == 0 && S_ISDIR(st.st_mode);
    if (diffusers)
        return sdc_errf(e, "%s: is a diffusers folder, which sdc does not read yet: give the single "
                        "checkpoint file (.safetensors or .ckpt)", path);
    return sdc_errf(e, "%s: is a directory, not a model file: give a .safetensors or .ckpt file", path);
}

int sdc_store_open(sdc_store *s, const char *path, const sdc_load_opts *opts, sdc_err *e) {
    static const sdc_load_opts defaults = {0, 0, 0};
    if (!opts) opts = &defaults;
    if (!s || !path) return sdc_errf(e, "sdc_store_open: no store or no path");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);   /* a FIFO must not block us */
    if (fd < 0) return sdc_errf(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return sdc_errf(e, "%s: cannot stat: %s", path, strerror(err));
    }
    if (S_ISDIR(st.st_mode)) { close(fd); return open_directory(path, e); }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sdc_errf(e, "%s: not a regular file (a device, pipe or socket): give a model file", path);
    }
    if (st.st_size == 0) { close(fd); return sdc_errf(e, "%s: empty file: 0 bytes", path); }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return sdc_errf(e, "%s: file too large to map: %lld bytes", path, (long long)st.st_size);
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int merr = errno;
    close(fd);
    if (map == MAP_FAILED) return sdc_errf(e, "%s: cannot map %zu bytes: %s", path, size, strerror(merr));

    store_file nf;
    memset(&nf, 0, sizeof nf);
    nf.map = map;
    nf.maplen = size;
    nf.pub.size = size;
    sdc_file_index ix;
    memset(&ix, 0, sizeof ix);
    const uint8_t *p = map;
    int rc = -1;
    switch (detect_kind(p, size)) {
    case KIND_SAFETENSORS:
        nf.pub.format = SDC_FMT_SAFETENSORS;
        rc = sdc_load_safetensors(path, p, size, &ix, e);
        break;
    case KIND_ZIP:
        nf.pub.format = SDC_FMT_CKPT_ZIP;
        rc = sdc_load_ckpt_zip(path, p, size, opts, &ix, e);
        break;
    case KIND_LEGACY:
        nf.pub.format = SDC_FMT_CKPT_LEGACY;
        rc = sdc_load_ckpt_legacy(path, p, size, opts, &ix, e);
        break;
    case KIND_UNKNOWN:
        if (size < 8)
            rc = sdc_errf(e, "%s: too short to be a model: %zu bytes (safetensors needs an 8-byte header length)",
                          path, size);
        else
            rc = sdc_errf(e, "%s: not a model file: neither safetensors, PyTorch zip nor legacy ckpt "
                          "(starts %02x %02x %02x %02x): byte 0", path, p[0], p[1], p[2], p[3]);
        break;
    }
    if (rc == 0) rc = check_views(path, p, size, &ix, e);
    if (rc == 0) {
        nf.pub.path = strdup(path);
        if (!nf.pub.path) rc = sdc_errf(e, "%s: out of memory", path);
    }
    if (rc == 0) rc = store_commit(s, &nf, &ix, e);
    if (rc != 0) {
        free((char *)nf.pub.path);
        munmap(map, size);
    }
    sdc_index_free(&ix);
    return rc == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------------
 * lookup */

size_t sdc_store_count(const sdc_store *s) { return s ? s->n : 0; }

const sdc_tensor *sdc_store_at(const sdc_store *s, size_t i) {
    return s && i < s->n ? s->order[i] : NULL;
}

const sdc_tensor *sdc_store_get(const sdc_store *s, const char *name) {
    if (!s || !name || !s->hashcap) return NULL;
    size_t mask = s->hashcap - 1, h = (size_t)name_hash(s->key, name) & mask;
    for (;; h = (h + 1) & mask) {
        uint32_t v = s->hash[h];
        if (!v) return NULL;
        if (!strcmp(s->order[v - 1]->name, name)) return s->order[v - 1];
    }
}

const sdc_tensor *sdc_store_getf(const sdc_store *s, const char *fmt, ...) {
    char name[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof name) return NULL;
    return sdc_store_get(s, name);
}

size_t sdc_store_count_prefix(const sdc_store *s, const char *prefix) {
    if (!s || !prefix) return 0;
    size_t len = strlen(prefix), c = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!strncmp(s->order[i]->name, prefix, len) && sdc_store_get(s, s->order[i]->name) == s->order[i])
            c++;
    return c;
}

size_t sdc_store_nfiles(const sdc_store *s) { return s ? s->nfiles : 0; }

const sdc_store_file *sdc_store_file_at(const sdc_store *s, size_t i) {
    return s && i < s->nfiles ? &s->files[i].pub : NULL;
}

const char *sdc_store_meta(const sdc_store *s, const char *key) {
    if (!s || !key) return NULL;
    for (size_t i = 0; i < s->nmeta; i++)
        if (!strcmp(s->meta[2 * i], key)) return s->meta[2 * i + 1];
    return NULL;
}

size_t sdc_store_meta_count(const sdc_store *s) { return s ? s->nmeta : 0; }

void sdc_store_meta_at(const sdc_store *s, size_t i, const char **key, const char **val) {
    const char *k = NULL, *v = NULL;
    if (s && i < s->nmeta) { k = s->meta[2 * i]; v = s->meta[2 * i + 1]; }
    if (key) *key = k;
    if (val) *val = v;
}

size_t sdc_store_nglobals(const sdc_store *s) { return s ? s->nglobals : 0; }

const sdc_pickle_global *sdc_store_global_at(const sdc_store *s, size_t i) {
    return s && i < s->nglobals ? &s->globals[i] : NULL;
}

/* ---------------------------------------------------------------------------------------------
 * conversion to f32 (data may be unaligned: every read goes through memcpy) */

static float f16_scalar(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | (man << 13);             /* inf / nan */
    else if (exp) bits = sign | ((exp + 112) << 23) | (man << 13);         /* normal */
    else if (!man) bits = sign;                                            /* zero */
    else {                                                                 /* subnormal */
        int sh = 0;
        while (!(man & 0x400)) { man <<= 1; sh++; }
        bits = sign | ((uint32_t)(113 - sh) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
__attribute__((target("avx,f16c")))
static void f16_run_f16c(float *dst, const uint8_t *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) { uint16_t h; memcpy(&h, src + 2 * i, 2); dst[i] = f16_scalar(h); }
}
/* F16C and AVX present and the OS saves YMM state (cpuid leaf 1 ecx bits 29, 28, 27; XCR0 bits 1-2).
 * Asked once per process: in a VM each cpuid traps to the hypervisor (~tens of microseconds),
 * which made the per-panel widening of streamed weights (a few rows per call) 10x slower. */
static int f16c_ok;
static pthread_once_t f16c_once = PTHREAD_ONCE_INIT;
static void f16c_probe(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    if (!(c & (1u << 29)) || !(c & (1u << 28)) || !(c & (1u << 27))) return;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    f16c_ok = (lo & 6) == 6;
}
static int have_f16c(void) {
    pthread_once(&f16c_once, f16c_probe);
    return f16c_ok;
}
#endif

static void f16_run(float *dst, const uint8_t *src, size_t n) {
#if defined(__x86_64__) || defined(__i386__)
    if (have_f16c()) { f16_run_f16c(dst, src, n); return; }
#endif
    for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, src + 2 * i, 2); dst[i] = f16_scalar(h); }
}

/* F8: E4M3 (the "fn" variant: bias 7, no inf, S.1111.111 is NaN) and E5M2 (bias 15, IEEE-like). */
static float f8_e4m3(uint8_t b) {
    int sign = b >> 7, exp = (b >> 3) & 0xf, man = b & 7;
    float v;
    if (exp == 0xf && man == 7) v = NAN;
    else if (exp) v = ldexpf(1.0f + man / 8.0f, exp - 7);
    else v = ldexpf(man / 8.0f, -6);
    return sign ? -v : v;
}

static float f8_e5m2(uint8_t b) {
    return f16_scalar((uint16_t)(b << 8));   /* E5M2 is the top byte of an f16 */
}

int sdc_tensor_to_f32(const sdc_tensor *t, float *dst, sdc_err *e) {
    if (!t || !dst) return sdc_errf(e, "sdc_tensor_to_f32: no tensor or no destination");
    if (t->numel < 0 || (t->numel > 0 && !t->data))
        return sdc_errf(e, "%s: tensor has no data", t->name ? t->name : "?");
    const uint8_t *p = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case SDC_F32: memcpy(dst, p, n * 4); break;
    case SDC_F16: f16_run(dst, p, n); break;
    case SDC_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h; memcpy(&h, p + 2 * i, 2);
            uint32_t b = (uint32_t)h << 16; memcpy(&dst[i], &b, 4);
        }
        break;
    case SDC_F64: for (size_t i = 0; i < n; i++) { double d; memcpy(&d, p + 8 * i, 8); dst[i] = (float)d; } break;
    case SDC_F8_E4M3: for (size_t i = 0; i < n; i++) dst[i] = f8_e4m3(p[i]); break;
    case SDC_F8_E5M2: for (size_t i = 0; i < n; i++) dst[i] = f8_e5m2(p[i]); break;
    case SDC_I64: for (size_t i = 0; i < n; i++) { int64_t v; memcpy(&v, p + 8 * i, 8); dst[i] = (float)v; } break;
    case SDC_I32: for (size_t i = 0; i < n; i++) { int32_t v; memcpy(&v, p + 4 * i, 4); dst[i] = (float)v; } break;
    case SDC_I16: for (size_t i = 0; i < n; i++) { int16_t v; memcpy(&v, p + 2 * i, 2); dst[i] = (float)v; } break;
    case SDC_I8: for (size_t i = 0; i < n; i++) dst[i] = (float)(int8_t)p[i]; break;
    case SDC_U8: for (size_t i = 0; i < n; i++) dst[i] = (float)p[i]; break;
    case SDC_BOOL: for (size_t i = 0; i < n; i++) dst[i] = p[i] ? 1.0f : 0.0f; break;
    default: return sdc_errf(e, "%s: cannot convert dtype %d to f32", t->name, (int)t->dtype);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * resident memory */

/* Drops the pages of [p, p+n) that lie inside file f's mapping. MADV_DONTNEED on a read-only
 * private file mapping only unmaps: no page can have been written, so nothing is lost, and the
 * next read faults the file's bytes back in. (MADV_PAGEOUT would also evict the OS page cache,
 * turning the next read into a disk read: not wanted.) */
static void release_range(const store_file *f, const uint8_t *p, size_t n) {
    const uint8_t *lo = f->map, *hi = lo + f->maplen;
    if (!f->map || n == 0 || p < lo || p >= hi || n > (size_t)(hi - p)) return;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t mask = (uintptr_t)(pg > 0 ? pg : 4096) - 1;
    const uint8_t *a = lo + (((uintptr_t)(p - lo)) & ~mask);   /* the mapping is page aligned */
    madvise((void *)a, (size_t)(p + n - a), MADV_DONTNEED);     /* advice: failure is harmless */
}

void sdc_store_release_pages(sdc_store *s) {
    if (!s) return;
    for (size_t i = 0; i < s->nfiles; i++)
        release_range(&s->files[i], s->files[i].map, s->files[i].maplen);
}

void sdc_store_release_span(const sdc_store *s, int file, uint64_t begin, uint64_t end) {
    if (!s || file < 0 || (size_t)file >= s->nfiles) return;
    const store_file *f = &s->files[file];
    if (!f->map || end > f->maplen) end = f->maplen;
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t mask = (uint64_t)(pg > 0 ? pg : 4096) - 1;
    begin = (begin + mask) & ~mask;
    end &= ~mask;
    if (begin < end) madvise((uint8_t *)f->map + begin, (size_t)(end - begin), MADV_DONTNEED);   /* advice */
}

void sdc_store_release_tensor(const sdc_store *s, const sdc_tensor *t) {
    if (!s || !t || t->file < 0 || (size_t)t->file >= s->nfiles) return;
    release_range(&s->files[t->file], t->data, t->nbytes);
}
