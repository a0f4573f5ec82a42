/* load_ckpt.c — PyTorch checkpoints: the zip format (torch >= 1.6) and the legacy format.
 *
 * Both go through one strict path: the restricted pickle machine (pickle.h) builds the pickled
 * object, each persistent-id storage becomes a view into the mapped file (never copied), and the
 * weights are the tensors of its "state_dict" (or of the top-level dict, or of "string_to_param" for an
 * AUTOMATIC1111 embedding: named "string_to_param.KEY"). Every zip structure is
 * validated whole (both directories, zip64, bounds, overlaps, duplicates) before any pointer is
 * handed out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/pickle.h"
#include "runtime/store_internal.h"

/* ------------------------------------------------------------------------------------------ */
/* Zip: stored entries only (torch.save writes them so), zip64 supported.                      */

#define ZIP_EOCD_SIZE       22
#define ZIP_MAX_COMMENT     65535     /* the EOCD search never looks further back than this */
#define ZIP_CDIR_SIZE       46
#define ZIP_LOCAL_SIZE      30
#define ZIP_Z64_EOCD_SIZE   56
#define ZIP_Z64_LOC_SIZE    20
#define TORCH_MAX_VERSION   10        /* caffe2 kMaxSupportedFileFormatVersion; torch writes 3 */

typedef struct zentry {
    const char *name; size_t nlen;   /* view into the central directory */
    uint64_t hdr, data, size;        /* local header offset, data offset, stored size */
    uint32_t crc;
    int      index;                  /* position in the central directory (messages) */
} zentry;

typedef struct zipf {
    zentry   *e; size_t n;
    uint32_t *hash; size_t hcap;     /* open addressing over names: index+1 into e */
} zipf;

static void zip_free(zipf *z) { free(z->e); free(z->hash); memset(z, 0, sizeof *z); }

static uint64_t rd(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint32_t name_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static const zentry *zip_find(const zipf *z, const char *name, size_t n) {
    size_t mask = z->hcap - 1;
    for (size_t h = name_hash(name, n) & mask;; h = (h + 1) & mask) {
        uint32_t ix = z->hash[h];
        if (!ix) return NULL;
        const zentry *e = &z->e[ix - 1];
        if (e->nlen == n && !memcmp(e->name, name, n)) return e;
    }
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static int cmp_hdr(const void *a, const void *b) {
    const zentry *x = *(const zentry *const *)a, *y = *(const zentry *const *)b;
    return x->hdr < y->hdr ? -1 : x->hdr > y->hdr;
}

/* Finds the end of central directory and the zip64 record: the directory's offset, size,
 * entry count, and where the directory must end (cd_limit). */
static int zip_eocd(const char *path, const uint8_t *m, size_t size, uint64_t *cd_off,
                    uint64_t *cd_size, uint64_t *count, uint64_t *cd_limit, sdc_err *e) {
    size_t lo = size - ZIP_EOCD_SIZE > ZIP_MAX_COMMENT ? size - ZIP_EOCD_SIZE - ZIP_MAX_COMMENT : 0;
    size_t at = SIZE_MAX;
    for (size_t i = size - ZIP_EOCD_SIZE + 1; i-- > lo;)
        if (rd(m + i, 4) == 0x06054b50 && rd(m + i + 20, 2) == size - i - ZIP_EOCD_SIZE) {
            at = i;
            break;
        }
    if (at == SIZE_MAX)
        return sdc_errf(e, "%s: zip end-of-central-directory record not found: last %zu bytes",
                        path, size - lo);
    const uint8_t *q = m + at;
    if (rd(q + 4, 2) || rd(q + 6, 2) || rd(q + 8, 2) != rd(q + 10, 2))
        return sdc_errf(e, "%s: multi-disk zip is not supported: byte %zu", path, at);
    uint64_t n16 = rd(q + 10, 2), sz32 = rd(q + 12, 4), off32 = rd(q + 16, 4);
    *cd_off = off32; *cd_size = sz32; *count = n16; *cd_limit = at;
    if (at >= ZIP_Z64_LOC_SIZE && rd(m + at - ZIP_Z64_LOC_SIZE, 4) == 0x07064b50) {
        const uint8_t *l = m + at - ZIP_Z64_LOC_SIZE;
        uint64_t z = rd(l + 8, 8);
        if (rd(l + 4, 4) || rd(l + 16, 4) > 1)
            return sdc_errf(e, "%s: multi-disk zip64 is not supported: byte %zu", path,
                            at - ZIP_Z64_LOC_SIZE);
        if (z > at - ZIP_Z64_LOC_SIZE || at - ZIP_Z64_LOC_SIZE - z < ZIP_Z64_EOCD_SIZE ||
            rd(m + z, 4) != 0x06064b50)
            return sdc_errf(e, "%s: zip64 end-of-central-directory record missing: byte %llu",
                            path, (unsigned long long)z);
        const uint8_t *r = m + z;
        uint64_t n64 = rd(r + 32, 8), sz64 = rd(r + 40, 8), off64 = rd(r + 48, 8);
        if (rd(r + 16, 4) || rd(r + 20, 4) || rd(r + 24, 8) != n64 || rd(r + 4, 8) < 44)
            return sdc_errf(e, "%s: bad zip64 end-of-central-directory record: byte %llu",
                            path, (unsigned long long)z);
        if ((n16 != 0xffff && n16 != n64) || (sz32 != 0xffffffff && sz32 != sz64) ||
            (off32 != 0xffffffff && off32 != off64))
            return sdc_errf(e, "%s: zip64 record disagrees with the end-of-central-directory "
                            "record (entries %llu vs %llu, directory at %llu vs %llu): byte %llu",
                            path, (unsigned long long)n64, (unsigned long long)n16,
                            (unsigned long long)off64, (unsigned long long)off32,
                            (unsigned long long)z);
        *cd_off = off64; *cd_size = sz64; *count = n64; *cd_limit = z;
    } else if (n16 == 0xffff || sz32 == 0xffffffff || off32 == 0xffffffff) {
        return sdc_errf(e, "%s: zip64 locator missing though the directory needs it: byte %zu",
                        path, at);
    }
    if (*cd_off > *cd_limit || *cd_size > *cd_limit - *cd_off)
        return sdc_errf(e, "%s: zip central directory [%llu, +%llu) out of bounds: byte %llu",
                        path, (unsigned long long)*cd_off, (unsigned long long)*cd_size,
                        (unsigned long long)*cd_limit);
    if (*count > *cd_size / ZIP_CDIR_SIZE)
        return sdc_errf(e, "%s: zip entry count %llu does not fit a central directory of %llu "
                        "bytes: byte %llu", path, (unsigned long long)*count,
                        (unsigned long long)*cd_size, (unsigned long long)*cd_off);
    return 0;
}

/* Reads one central directory entry at *p (advanced past it) into ze. */
static int zip_central(const char *path, const uint8_t *m, uint64_t cd_end, uint64_t *p,
                       int index, zentry *ze, sdc_err *e) {
    uint64_t at = *p;
    if (cd_end - at < ZIP_CDIR_SIZE || rd(m + at, 4) != 0x02014b50)
        return sdc_errf(e, "%s: zip central directory entry %d missing or cut short: byte %llu",
                        path, index, (unsigned long long)at);
    const uint8_t *c = m + at;
    uint64_t flags = rd(c + 8, 2), method = rd(c + 10, 2), nlen = rd(c + 28, 2),
             elen = rd(c + 30, 2), clen = rd(c + 32, 2);
    uint64_t csize = rd(c + 20, 4), usize = rd(c + 24, 4), hdr = rd(c + 42, 4), disk = rd(c + 34, 2);
    if (cd_end - at - ZIP_CDIR_SIZE < nlen + elen + clen)
        return sdc_errf(e, "%s: zip central directory entry %d cut short: byte %llu", path,
                        index, (unsigned long long)at);
    ze->name = (const char *)c + ZIP_CDIR_SIZE;
    ze->nlen = nlen;
    ze->crc = (uint32_t)rd(c + 16, 4);
    ze->index = index;
    int nm = (int)(nlen > 200 ? 200 : nlen);
    /* zip64 extra field: the 64-bit values of those fields set to all ones, in this order */
    const uint8_t *x = c + ZIP_CDIR_SIZE + nlen, *xe = x + elen;
    while (xe - x >= 4) {
        uint64_t id = rd(x, 2), len = rd(x + 2, 2);
        if ((uint64_t)(xe - x - 4) < len) break;
        if (id == 0x0001) {
            const uint8_t *f = x + 4, *fe = f + len;
            uint64_t *vals[3] = {&usize, &csize, &hdr};
            for (int k = 0; k < 3; k++) {
                if (*vals[k] != 0xffffffff) continue;
                if (fe - f < 8)
                    return sdc_errf(e, "%s: zip64 extra field of '%.*s' too short: byte %llu",
                                    path, nm, ze->name, (unsigned long long)at);
                *vals[k] = rd(f, 8);
                f += 8;
            }
            if (disk == 0xffff) disk = fe - f >= 4 ? rd(f, 4) : 1;
        }
        x += 4 + len;
    }
    if (usize == 0xffffffff || csize == 0xffffffff || hdr == 0xffffffff)
        return sdc_errf(e, "%s: zip entry '%.*s' needs a zip64 extra field it lacks: byte %llu",
                        path, nm, ze->name, (unsigned long long)at);
    if (disk) return sdc_errf(e, "%s: zip entry '%.*s' on disk %llu: byte %llu", path, nm,
                              ze->name, (unsigned long long)disk, (unsigned long long)at);
    if (flags & 0x41)
        return sdc_errf(e, "%s: zip entry '%.*s' is encrypted: central directory entry %d", path,
                        nm, ze->name, index);
    if (method != 0)
        return sdc_errf(e, "%s: zip entry '%.*s' is compressed (method %llu%s); sdc reads only "
                        "stored entries, as torch.save writes them: central directory entry %d",
                        path, nm, ze->name, (unsigned long long)method,
                        method == 8 ? ", deflate" : "", index);
    if (csize != usize)
        return sdc_errf(e, "%s: stored zip entry '%.*s' has compressed size %llu != size %llu: "
                        "central directory entry %d", path, nm, ze->name,
                        (unsigned long long)csize, (unsigned long long)usize, index);
    if (nlen == 0 || memchr(ze->name, 0, nlen))
        return sdc_errf(e, "%s: zip entry %d has a bad name: byte %llu", path, index,
                        (unsigned long long)at);
    ze->hdr = hdr;
    ze->size = usize;
    *p = at + ZIP_CDIR_SIZE + nlen + elen + clen;
    return 0;
}

/* Checks ze's local header against the central directory; sets ze->data. */
static int zip_local(const char *path, const uint8_t *m, size_t size, uint64_t cd_off,
                     zentry *ze, sdc_err *e) {
    int nm = (int)(ze->nlen > 200 ? 200 : ze->nlen);
    if (ze->hdr > cd_off || cd_off - ze->hdr < ZIP_LOCAL_SIZE || rd(m + ze->hdr, 4) != 0x04034b50)
        return sdc_errf(e, "%s: zip entry '%.*s': no local header at byte %llu", path, nm,
                        ze->name, (unsigned long long)ze->hdr);
    const uint8_t *l = m + ze->hdr;
    uint64_t flags = rd(l + 6, 2), method = rd(l + 8, 2), nlen = rd(l + 26, 2), elen = rd(l + 28, 2);
    uint64_t crc = rd(l + 14, 4), csize = rd(l + 18, 4), usize = rd(l + 22, 4);
    if (method != 0 || (flags & 0x41) || nlen != ze->nlen ||
        cd_off - ze->hdr - ZIP_LOCAL_SIZE < nlen || memcmp(l + ZIP_LOCAL_SIZE, ze->name, nlen))
        return sdc_errf(e, "%s: zip entry '%.*s': local header disagrees with the central "
                        "directory: byte %llu", path, nm, ze->name, (unsigned long long)ze->hdr);
    /* With a data descriptor (flag bit 3) the local sizes may be zero; zip64 sets them to ~0. */
    int described = (flags & 8) && crc == 0 && csize == 0 && usize == 0;
    if (!described && ((crc != ze->crc) ||
                       (csize != 0xffffffff && csize != ze->size) ||
                       (usize != 0xffffffff && usize != ze->size)))
        return sdc_errf(e, "%s: zip entry '%.*s': local header sizes/crc disagree with the "
                        "central directory: byte %llu", path, nm, ze->name,
                        (unsigned long long)ze->hdr);
    uint64_t data = ze->hdr + ZIP_LOCAL_SIZE + nlen + elen;
    if (data > size || ze->size > size - data)
        return sdc_errf(e, "%s: zip entry '%.*s': data [%llu, +%llu) runs past the end of the "
                        "file (%zu bytes)", path, nm, ze->name, (unsigned long long)data,
                        (unsigned long long)ze->size, size);
    if (data > cd_off || ze->size > cd_off - data)
        return sdc_errf(e, "%s: zip entry '%.*s': data [%llu, +%llu) overlaps the central "
                        "directory at byte %llu", path, nm, ze->name, (unsigned long long)data,
                        (unsigned long long)ze->size, (unsigned long long)cd_off);
    ze->data = data;
    return 0;
}

/* Parses and validates the whole zip structure. */
/* Whether a zip entry name marks a TorchScript archive (torch.jit.save): its constants, its
 * Python code, its mobile bytecode. */
static int torchscript_name(const char *name, uint64_t nlen) {
    static const char *const tails[] = {"constants.pkl", "bytecode.pkl", ".debug_pkl"};
    for (size_t k = 0; k < sizeof tails / sizeof *tails; k++) {
        size_t tl = strlen(tails[k]);
        if (nlen >= tl && !memcmp(name + nlen - tl, tails[k], tl)) return 1;
    }
    for (uint64_t i = 0; i + 6 <= nlen; i++)
        if (!memcmp(name + i, "/code/", 6)) return 1;
    return 0;
}

/* After the central directory was refused: a TorchScript archive is named as such (its code is
 * often deflated, which would otherwise be the complaint). Reads only names that lie inside
 * [cd_off, cd_end); 1 when one marks TorchScript (the name in *name, *nlen). */
static int find_torchscript(const uint8_t *m, uint64_t cd_off, uint64_t cd_end, const char **name,
                            uint64_t *nlen) {
    for (uint64_t at = cd_off; cd_end - at >= ZIP_CDIR_SIZE && rd(m + at, 4) == 0x02014b50;) {
        uint64_t nl = rd(m + at + 28, 2), el = rd(m + at + 30, 2), cl = rd(m + at + 32, 2);
        if (cd_end - at - ZIP_CDIR_SIZE < nl + el + cl) break;
        const char *n = (const char *)m + at + ZIP_CDIR_SIZE;
        if (torchscript_name(n, nl)) { *name = n; *nlen = nl; return 1; }
        at += ZIP_CDIR_SIZE + nl + el + cl;
    }
    return 0;
}

static int zip_open(const char *path, const uint8_t *m, size_t size, zipf *z, sdc_err *e) {
    memset(z, 0, sizeof *z);
    if (size < ZIP_LOCAL_SIZE + ZIP_EOCD_SIZE || rd(m, 4) != 0x04034b50)
        return sdc_errf(e, "%s: not a zip archive: no local header at byte 0", path);
    uint64_t cd_off = 0, cd_size = 0, count = 0, cd_limit = 0;
    if (zip_eocd(path, m, size, &cd_off, &cd_size, &count, &cd_limit, e)) return -1;
    if (count == 0) return sdc_errf(e, "%s: zip archive has no entries", path);
    z->e = calloc((size_t)count, sizeof *z->e);
    zentry **order = calloc((size_t)count, sizeof *order);
    z->hcap = 16;
    while (z->hcap < count * 2) z->hcap *= 2;
    z->hash = calloc(z->hcap, sizeof *z->hash);
    if (!z->e || !order || !z->hash) {
        free(order);
        zip_free(z);
        return sdc_errf(e, "%s: out of memory reading the zip directory", path);
    }
    uint64_t p = cd_off, cd_end = cd_off + cd_size;
    int rc = 0;
    for (uint64_t i = 0; i < count && !rc; i++) {
        zentry *ze = &z->e[i];
        if (p == cd_end) {
            rc = sdc_errf(e, "%s: zip entry count %llu disagrees with the central directory, which "
                          "holds %llu entries: byte %llu", path, (unsigned long long)count,
                          (unsigned long long)i, (unsigned long long)cd_off);
            break;
        }
        rc = zip_central(path, m, cd_end, &p, (int)i, ze, e);
        const char *tsn;
        uint64_t tsl;
        if (rc && find_torchscript(m, cd_off, cd_end, &tsn, &tsl))
            sdc_errf(e, "%s: this is a TorchScript archive (it has '%.*s'): it holds code, not just "
                     "weights, and sdc does not load it", path, (int)(tsl > 200 ? 200 : tsl), tsn);
        if (rc) break;
        size_t h = name_hash(ze->name, ze->nlen) & (z->hcap - 1);
        for (; z->hash[h]; h = (h + 1) & (z->hcap - 1)) {
            const zentry *o = &z->e[z->hash[h] - 1];
            if (o->nlen == ze->nlen && !memcmp(o->name, ze->name, ze->nlen)) {
                rc = sdc_errf(e, "%s: duplicate zip entry name '%.*s': central directory "
                              "entries %d and %d", path, (int)(ze->nlen > 200 ? 200 : ze->nlen),
                              ze->name, o->index, ze->index);
                break;
            }
        }
        if (rc) break;
        z->hash[h] = (uint32_t)(i + 1);
        z->n++;
        order[i] = ze;
    }
    /* The local headers are scattered through the file (one per tensor): ask the kernel for all
     * their pages at once, so a cold open is one batch of reads rather than n serial faults. */
    if (!rc) {
        long pg = sysconf(_SC_PAGESIZE);
        uintptr_t mask = ~(uintptr_t)(pg > 0 ? pg - 1 : 4095);
        for (uint64_t i = 0; i < z->n; i++)
            if (z->e[i].hdr < size)
                madvise((void *)((uintptr_t)(m + z->e[i].hdr) & mask), ZIP_LOCAL_SIZE + 1, MADV_WILLNEED);
        for (uint64_t i = 0; i < z->n && !rc; i++) rc = zip_local(path, m, size, cd_off, &z->e[i], e);
    }
    if (!rc && p != cd_end)
        rc = sdc_errf(e, "%s: zip entry count %llu disagrees with the central directory size "
                      "(%llu of %llu bytes used): byte %llu", path, (unsigned long long)count,
                      (unsigned long long)(p - cd_off), (unsigned long long)cd_size,
                      (unsigned long long)cd_off);
    if (!rc) {
        qsort(order, (size_t)count, sizeof *order, cmp_hdr);
        for (uint64_t i = 1; i < count && !rc; i++)
            if (order[i - 1]->data + order[i - 1]->size > order[i]->hdr)
                rc = sdc_errf(e, "%s: zip entries '%.*s' and '%.*s' overlap: byte %llu", path,
                              (int)(order[i - 1]->nlen > 200 ? 200 : order[i - 1]->nlen),
                              order[i - 1]->name, (int)(order[i]->nlen > 200 ? 200 : order[i]->nlen),
                              order[i]->name, (unsigned long long)order[i]->hdr);
    }
    free(order);
    if (rc) zip_free(z);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* From the unpickled object to the index.                                                     */

/* Adds every tensor of the state dict (or of the top-level dict, or of string_to_param) to out. */
static int add_weights(const char *path, sdc_pickle *p, const sdc_pval *root, const char *where,
                       sdc_file_index *out, sdc_err *e) {
    if (root->kind == SDC_PV_OPAQUE)   /* e.g. torch.save(model): a whole pickled module */
        return sdc_errf(e, "%s: the pickled object is a %s object (sdc never builds one), not a "
                        "dict of tensors; save the model's state_dict instead: %s", path,
                        root->u.opaque, where);
    if (root->kind != SDC_PV_DICT)
        return sdc_errf(e, "%s: the pickled object is a %s, not a dict of tensors: %s", path,
                        sdc_pkind_name(root->kind), where);
    const sdc_pval *sd = sdc_pval_dict_get(root, "state_dict");
    if (sd && sd->kind != SDC_PV_DICT)
        return sdc_errf(e, "%s: 'state_dict' is a %s, not a dict: %s", path,
                        sdc_pkind_name(sd->kind), where);
    /* a textual-inversion embedding (AUTOMATIC1111's .pt) keeps its vectors one level down */
    const sdc_pval *stp = sd ? NULL : sdc_pval_dict_get(root, "string_to_param");
    const char *pfx = stp && stp->kind == SDC_PV_DICT ? "string_to_param." : "";
    if (!sd) sd = *pfx ? stp : root;
    size_t before = out->n, plen = strlen(pfx);
    for (size_t i = 0; i + 1 < sd->u.seq.n; i += 2) {
        const sdc_pval *k = sd->u.seq.v[i], *v = sd->u.seq.v[i + 1];
        /* a tensor kind sdc cannot view (quantized, sparse, meta, ...): say so, do not drop it */
        if (v->kind == SDC_PV_OPAQUE && !strncmp(v->u.opaque, "torch._utils._rebuild_", 22))
            return sdc_errf(e, "%s: tensor '%.*s' is built by %s, which sdc does not read: %s", path,
                            k->kind == SDC_PV_STR && k->u.str.n < 300 ? (int)k->u.str.n : 1,
                            k->kind == SDC_PV_STR ? k->u.str.s : "?", v->u.opaque, where);
        if (v->kind != SDC_PV_TENSOR) continue;           /* global_step, placeholders, ... */
        if (k->kind != SDC_PV_STR || k->u.str.n == 0 || k->u.str.n > 1024 ||
            memchr(k->u.str.s, 0, k->u.str.n))
            return sdc_errf(e, "%s: a tensor's key is a %s, not a name: %s", path,
                            sdc_pkind_name(k->kind), where);
        char name[1025 + 16];
        memcpy(name, pfx, plen);
        memcpy(name + plen, k->u.str.s, k->u.str.n);
        name[plen + k->u.str.n] = 0;
        for (size_t c = plen; c < plen + k->u.str.n; c++)   /* names are printed one per line */
            if ((unsigned char)name[c] < 0x20 || name[c] == 0x7f)
                return sdc_errf(e, "%s: a tensor name holds control character 0x%02x: %s", path,
                                (unsigned char)name[c], where);
        const sdc_pickle_tensor *t = v->u.tensor;
        const sdc_pickle_storage *st = t->storage;
        if (!t->contiguous) {
            char shape[200] = "", strides[200] = "";
            size_t ls = 0, lt = 0;
            for (int d = 0; d < t->ndim; d++) {
                ls += (size_t)snprintf(shape + ls, sizeof shape - ls, "%s%lld", d ? "," : "",
                                       (long long)t->shape[d]);
                lt += (size_t)snprintf(strides + lt, sizeof strides - lt, "%s%lld", d ? "," : "",
                                       (long long)t->stride[d]);
            }
            return sdc_errf(e, "%s: tensor '%s' has non-contiguous strides (%s) for shape [%s]; sdc "
                            "reads only dense row-major tensors (save it with .contiguous()): %s",
                            path, name, strides, shape, where);
        }
        if (!st->resolved)
            return sdc_errf(e, "%s: tensor '%s': storage '%s' has no data: %s", path, name,
                            st->key, where);
        size_t esz = sdc_dtype_size(t->dtype);
        uint64_t off = (uint64_t)t->offset * esz, bytes = (uint64_t)t->numel * esz;
        if (off > st->nbytes || bytes > st->nbytes - off)      /* re-checked against real bytes */
            return sdc_errf(e, "%s: tensor '%s' runs past its storage '%s': %s", path, name,
                            st->key, where);
        if (sdc_index_add(out, name, t->dtype, t->ndim, t->shape, st->data + off,
                          st->file_offset + off, e))
            return sdc_err_prefix(e, "%s", path);
    }
    if (out->n == before)
        return sdc_errf(e, "%s: no tensors found (looked in 'state_dict' and at the top level): "
                        "%s", path, where);
    /* a name twice in the pickled dict: refuse rather than pick one */
    size_t n = out->n - before, cap = 16;
    while (cap < n * 2) cap *= 2;
    uint32_t *h = calloc(cap, sizeof *h);
    if (!h) return sdc_errf(e, "%s: out of memory", path);
    int rc = 0;
    for (size_t i = before; i < out->n && !rc; i++) {
        const char *nm = out->t[i].name;
        size_t j = name_hash(nm, strlen(nm)) & (cap - 1);
        for (; h[j]; j = (j + 1) & (cap - 1))
            if (!strcmp(out->t[h[j] - 1].name, nm)) {
                rc = sdc_errf(e, "%s: tensor '%s' appears twice in the state dict: %s", path, nm,
                              where);
                break;
            }
        h[j] = (uint32_t)(i + 1);
    }
    free(h);
    return rc;
}

/* Records the non-allowlisted globals. `sdc inspect` must report a hostile file, not refuse it:
 * in inspect mode, once a dangerous global has been seen, whatever else is wrong with the file
 * (no weights, not a checkpoint after all, cut short), the open succeeds with the globals and
 * without tensors, so the caller can name them and exit 3. Returns the final status. */
static int finish(const char *path, const sdc_pickle *p, const sdc_load_opts *opts, int rc,
                  size_t before, sdc_file_index *out, sdc_err *e) {
    int danger = 0;
    for (size_t i = 0; p && i < sdc_pickle_nseen(p); i++) danger |= sdc_pickle_seen_at(p, i)->dangerous;
    if (rc && opts && opts->inspect && danger) {
        for (size_t i = before; i < out->n; i++) free(out->t[i].name);
        out->n = before;
        if (e) e->msg[0] = 0;
        rc = 0;
    }
    for (size_t i = 0; !rc && p && i < sdc_pickle_nseen(p); i++) {
        const sdc_pickle_seen *g = sdc_pickle_seen_at(p, i);
        if (sdc_index_add_global(out, g->name, g->dangerous, e)) rc = sdc_err_prefix(e, "%s", path);
    }
    return rc;
}

/* Messages are one line: names from the file (zip entries, globals, keys) may hold control
 * characters, which become '?'. Returns rc. */
static int one_line(int rc, sdc_err *e) {
    if (rc && e)
        for (char *c = e->msg; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    return rc;
}

static sdc_pickle_cfg make_cfg(const sdc_load_opts *opts, const char *where) {
    sdc_pickle_cfg c = {0};
    if (opts) {
        c.strict = opts->strict;
        c.allow_unsafe = opts->allow_unsafe_pickle;
        c.inspect = opts->inspect;
    }
    c.where = where;
    return c;
}

/* ------------------------------------------------------------------------------------------ */
/* The zip format: <prefix>/data.pkl, <prefix>/data/<key>, <prefix>/version, [byteorder].      */

typedef struct zctx {
    const char *path;
    const uint8_t *map;
    const zipf *z;
    const char *prefix; size_t plen;   /* "archive/" */
} zctx;

static int zip_storage(void *ctx, sdc_pickle_storage *st, sdc_err *e) {
    zctx *c = ctx;
    char name[600];
    int n = snprintf(name, sizeof name, "%.*sdata/%s", (int)c->plen, c->prefix, st->key);
    const zentry *ze = n > 0 && (size_t)n < sizeof name ? zip_find(c->z, name, (size_t)n) : NULL;
    if (!ze) return sdc_errf(e, "storage '%s' has no zip entry '%s'", st->key, name);
    uint64_t need = st->numel * sdc_dtype_size(st->dtype);   /* overflow checked by the caller */
    if (need > ze->size)
        return sdc_errf(e, "storage '%s' of %llu elements (%llu bytes) is larger than its zip "
                        "entry '%s' (%llu bytes)", st->key, (unsigned long long)st->numel,
                        (unsigned long long)need, name, (unsigned long long)ze->size);
    st->data = c->map + ze->data;
    st->nbytes = ze->size;
    st->file_offset = ze->data;
    st->resolved = 1;
    return 0;
}

/* The small text record <prefix><name> (version, byteorder), or NULL. */
static const zentry *zip_record(const zipf *z, const char *prefix, size_t plen, const char *name) {
    char buf[600];
    int n = snprintf(buf, sizeof buf, "%.*s%s", (int)plen, prefix, name);
    return n > 0 && (size_t)n < sizeof buf ? zip_find(z, buf, (size_t)n) : NULL;
}

static int zip_check_records(const char *path, const uint8_t *map, const zipf *z,
                             const char *prefix, size_t plen, sdc_err *e) {
    for (size_t i = 0; i < z->n; i++) {
        const zentry *ze = &z->e[i];
        int nm = (int)(ze->nlen > 200 ? 200 : ze->nlen);
        if (ze->nlen < plen || memcmp(ze->name, prefix, plen))
            return sdc_errf(e, "%s: zip entry '%.*s' lies outside the archive folder '%.*s': "
                            "central directory entry %d", path, nm, ze->name, (int)plen, prefix,
                            ze->index);
        if (torchscript_name(ze->name, ze->nlen))
            return sdc_errf(e, "%s: this is a TorchScript archive (it has '%.*s'): it holds code, "
                            "not just weights, and sdc does not load it", path, nm, ze->name);
    }
    const zentry *bo = zip_record(z, prefix, plen, "byteorder");
    if (bo) {
        const char *s = (const char *)map + bo->data;
        size_t n = (size_t)bo->size;
        while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
        if (n == 3 && !memcmp(s, "big", 3))
            return sdc_errf(e, "%s: big-endian checkpoint: sdc reads little-endian storages only: "
                            "%.*sbyteorder", path, (int)plen, prefix);
        if (n != 6 || memcmp(s, "little", 6))
            return sdc_errf(e, "%s: byteorder record is neither 'little' nor 'big': %.*sbyteorder",
                            path, (int)plen, prefix);
    }
    /* as PyTorchStreamReader: .data/version (torch >= 2.1 writes both) before version */
    const zentry *ve = zip_record(z, prefix, plen, ".data/version");
    const char *vname = ".data/version";
    if (!ve) ve = zip_record(z, prefix, plen, vname = "version");
    if (!ve) return sdc_errf(e, "%s: zip checkpoint has no '%.*sversion' record", path,
                             (int)plen, prefix);
    const char *s = (const char *)map + ve->data;
    size_t n = (size_t)ve->size;
    long v = 0;
    size_t i = 0;
    while (i < n && i < 8 && s[i] >= '0' && s[i] <= '9') v = v * 10 + (s[i++] - '0');
    while (i < n && (s[i] == '\n' || s[i] == '\r')) i++;
    size_t shown = n > 16 ? 16 : n;
    while (shown && (s[shown - 1] == '\n' || s[shown - 1] == '\r')) shown--;
    if (i == 0 || i != n || v < 1 || v > TORCH_MAX_VERSION)
        return sdc_errf(e, "%s: checkpoint format version '%.*s' outside the supported range 1..%d:"
                        " %.*s%s", path, (int)shown, s, TORCH_MAX_VERSION, (int)plen, prefix, vname);
    return 0;
}

static int load_zip(const char *path, const uint8_t *map, size_t size,
                    const sdc_load_opts *opts, sdc_file_index *out, sdc_err *e) {
    zipf z;
    if (zip_open(path, map, size, &z, e)) return -1;
    /* the archive folder is whatever holds data.pkl ("archive/", "tiny-sd1-fp16/", ...) */
    const zentry *pkl = NULL;
    for (size_t i = 0; i < z.n; i++) {
        const zentry *ze = &z.e[i];
        const char *slash = memchr(ze->name, '/', ze->nlen);
        if (ze->nlen == 8 && !memcmp(ze->name, "data.pkl", 8)) slash = ze->name - 1;
        else if (!slash || (size_t)(slash - ze->name) + 1 + 8 != ze->nlen ||
                 memcmp(slash + 1, "data.pkl", 8))
            continue;
        if (pkl) {
            zip_free(&z);
            return sdc_errf(e, "%s: two data.pkl records in one checkpoint: central directory "
                            "entry %d", path, ze->index);
        }
        pkl = ze;
    }
    if (!pkl) {
        zip_free(&z);
        return sdc_errf(e, "%s: zip archive without data.pkl: not a PyTorch checkpoint", path);
    }
    size_t plen = pkl->nlen - 8;
    const char *prefix = pkl->name;
    if (zip_check_records(path, map, &z, prefix, plen, e)) { zip_free(&z); return -1; }
    if (crc32_of(map + pkl->data, (size_t)pkl->size) != pkl->crc) {
        zip_free(&z);
        return sdc_errf(e, "%s: data.pkl fails its CRC-32 check: %.*sdata.pkl", path, (int)plen,
                        prefix);
    }
    char where[300];
    snprintf(where, sizeof where, "%.*sdata.pkl", (int)(plen > 250 ? 250 : plen), prefix);
    zctx c = {path, map, &z, prefix, plen};
    sdc_pickle_cfg cfg = make_cfg(opts, where);
    cfg.on_storage = zip_storage;
    cfg.ctx = &c;
    sdc_pickle *p = sdc_pickle_new();
    sdc_pval *root = NULL;
    size_t end;
    int rc = p ? 0 : sdc_errf(e, "%s: out of memory", path);
    if (!rc && sdc_pickle_run(p, map + pkl->data, (size_t)pkl->size, &cfg, &root, &end, e))
        rc = sdc_err_prefix(e, "%s", path);
    size_t before = out->n;
    if (!rc) rc = add_weights(path, p, root, where, out, e);
    rc = finish(path, p, opts, rc, before, out, e);
    sdc_pickle_free(p);
    zip_free(&z);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The legacy format: pickles of magic, protocol, sys_info, the object, the storage keys; then  */
/* per key an int64 element count and the raw little-endian bytes.                              */

#define LEGACY_PROTOCOL 1001
static const uint8_t LEGACY_MAGIC[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

static int legacy_pickle(const char *path, sdc_pickle *p, const uint8_t *map, size_t size,
                         size_t *pos, const sdc_load_opts *opts, const char *what,
                         sdc_pval **v, sdc_err *e) {
    char where[64];
    snprintf(where, sizeof where, "legacy %s pickle at", what);
    sdc_pickle_cfg cfg = make_cfg(opts, where);
    cfg.base = *pos;
    size_t end;
    if (*pos >= size)
        return sdc_errf(e, "%s: legacy checkpoint cut short before its %s pickle: byte %zu", path,
                        what, *pos);
    if (sdc_pickle_run(p, map + *pos, size - *pos, &cfg, v, &end, e))
        return sdc_err_prefix(e, "%s", path);
    *pos += end;
    return 0;
}

static int load_legacy(const char *path, const uint8_t *map, size_t size,
                       const sdc_load_opts *opts, sdc_file_index *out, sdc_err *e) {
    sdc_pickle *p = sdc_pickle_new();
    if (!p) return sdc_errf(e, "%s: out of memory", path);
    size_t pos = 0;
    sdc_pval *magic, *proto, *info, *root, *keys;
    int rc = legacy_pickle(path, p, map, size, &pos, opts, "magic", &magic, e);
    if (!rc && (magic->kind != SDC_PV_BIGINT || magic->u.str.n != 10 ||
                memcmp(magic->u.str.s, LEGACY_MAGIC, 10)))
        rc = sdc_errf(e, "%s: not a legacy PyTorch checkpoint: wrong magic number: byte 0", path);
    size_t at = pos;
    if (!rc) rc = legacy_pickle(path, p, map, size, &pos, opts, "protocol", &proto, e);
    if (!rc && (proto->kind != SDC_PV_INT || proto->u.i != LEGACY_PROTOCOL))
        rc = sdc_errf(e, "%s: legacy checkpoint protocol is not %d: byte %zu", path,
                      LEGACY_PROTOCOL, at);
    at = pos;
    if (!rc) rc = legacy_pickle(path, p, map, size, &pos, opts, "sys_info", &info, e);
    if (!rc) {
        const sdc_pval *le = sdc_pval_dict_get(info, "little_endian");
        if (info->kind != SDC_PV_DICT || !le || le->kind != SDC_PV_BOOL)
            rc = sdc_errf(e, "%s: legacy checkpoint sys_info is not a dict with little_endian: "
                          "byte %zu", path, at);
        else if (!le->u.i)
            rc = sdc_errf(e, "%s: big-endian legacy checkpoint: sdc reads little-endian storages "
                          "only: byte %zu", path, at);
    }
    size_t objat = pos;
    if (!rc) rc = legacy_pickle(path, p, map, size, &pos, opts, "object", &root, e);
    at = pos;
    if (!rc) rc = legacy_pickle(path, p, map, size, &pos, opts, "storage keys", &keys, e);
    if (!rc && keys->kind != SDC_PV_LIST)
        rc = sdc_errf(e, "%s: legacy storage keys are a %s, not a list: byte %zu", path,
                      sdc_pkind_name(keys->kind), at);
    /* the key list must name each storage of the object exactly once */
    if (!rc && keys->u.seq.n != sdc_pickle_nstorages(p))
        rc = sdc_errf(e, "%s: legacy storage key list has %zu keys but the object names %zu "
                      "storages: byte %zu", path, keys->u.seq.n, sdc_pickle_nstorages(p), at);
    for (size_t i = 0; !rc && i < keys->u.seq.n; i++) {
        const sdc_pval *k = keys->u.seq.v[i];
        char key[256];
        if (k->kind != SDC_PV_STR || k->u.str.n >= sizeof key) {
            rc = sdc_errf(e, "%s: legacy storage key %zu is not a string: byte %zu", path, i, at);
            break;
        }
        memcpy(key, k->u.str.s, k->u.str.n);
        key[k->u.str.n] = 0;
        sdc_pickle_storage *st = sdc_pickle_storage_find(p, key);
        if (!st) {
            rc = sdc_errf(e, "%s: legacy storage key '%s' is not named by the pickled object: "
                          "byte %zu", path, key, at);
            break;
        }
        if (st->resolved) {
            rc = sdc_errf(e, "%s: legacy storage key '%s' listed twice: byte %zu", path, key, at);
            break;
        }
        if (size - pos < 8) {
            rc = sdc_errf(e, "%s: legacy checkpoint cut short in the header of storage '%s': "
                          "byte %zu", path, key, pos);
            break;
        }
        uint64_t count = rd(map + pos, 8);
        if (count != st->numel) {
            rc = sdc_errf(e, "%s: legacy storage '%s' record holds %llu elements but the pickle "
                          "says %llu: byte %zu", path, key, (unsigned long long)count,
                          (unsigned long long)st->numel, pos);
            break;
        }
        pos += 8;
        uint64_t bytes = count * sdc_dtype_size(st->dtype);   /* checked when the id was read */
        if (bytes > size - pos) {
            rc = sdc_errf(e, "%s: legacy checkpoint cut short in storage '%s' (%llu bytes, %zu "
                          "left): byte %zu", path, key, (unsigned long long)bytes, size - pos, pos);
            break;
        }
        st->data = map + pos;
        st->nbytes = bytes;
        st->file_offset = pos;
        st->resolved = 1;
        pos += (size_t)bytes;
    }
    if (!rc && pos != size)
        rc = sdc_errf(e, "%s: %zu bytes after the last legacy storage: byte %zu", path,
                      size - pos, pos);
    char where[64];
    snprintf(where, sizeof where, "legacy object pickle at byte %zu", objat);
    size_t before = out->n;
    if (!rc) rc = add_weights(path, p, root, where, out, e);
    rc = finish(path, p, opts, rc, before, out, e);
    sdc_pickle_free(p);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */

int sdc_load_ckpt_zip(const char *path, const uint8_t *map, size_t size,
                      const sdc_load_opts *opts, sdc_file_index *out, sdc_err *e) {
    return one_line(load_zip(path, map, size, opts, out, e), e);
}

int sdc_load_ckpt_legacy(const char *path, const uint8_t *map, size_t size,
                         const sdc_load_opts *opts, sdc_file_index *out, sdc_err *e) {
    return one_line(load_legacy(path, map, size, opts, out, e), e);
}
