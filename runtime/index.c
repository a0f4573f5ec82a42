/* index.c — the per-file index a loader fills before the store commits it (store_internal.h). */
#include <stdlib.h>
#include <string.h>

#include "runtime/store_internal.h"

/* Grows *arr (of elem-size items) so that one more fits. Returns 0, or -1 on overflow/OOM. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 64, bytes;
    if (sdc_mul_overflow(nc, elem, &bytes)) return -1;
    void *p = realloc(*arr, bytes);
    if (!p) return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

int sdc_index_add(sdc_file_index *ix, const char *name, sdc_dtype dtype, int ndim,
                  const int64_t *shape, const void *data, uint64_t offset, sdc_err *e) {
    if (ndim < 0 || ndim > SDC_MAX_DIMS)
        return sdc_errf(e, "tensor '%s': %d dims (at most %d)", name, ndim, SDC_MAX_DIMS);
    if ((unsigned)dtype >= SDC_DTYPE_COUNT) return sdc_errf(e, "tensor '%s': bad dtype", name);
    if (grow((void **)&ix->t, &ix->cap, ix->n, sizeof *ix->t))
        return sdc_errf(e, "tensor '%s': out of memory indexing tensors", name);
    sdc_index_entry *t = &ix->t[ix->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return sdc_errf(e, "tensor '%s': out of memory", name);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    t->offset = offset;
    ix->n++;
    return 0;
}

int sdc_index_add_meta(sdc_file_index *ix, const char *key, const char *val, sdc_err *e) {
    if (grow((void **)&ix->meta, &ix->metacap, ix->nmeta * 2 + 1, sizeof *ix->meta))
        return sdc_errf(e, "metadata '%s': out of memory", key);
    char *k = strdup(key), *v = strdup(val);
    if (!k || !v) { free(k); free(v); return sdc_errf(e, "metadata '%s': out of memory", key); }
    ix->meta[ix->nmeta * 2] = k;
    ix->meta[ix->nmeta * 2 + 1] = v;
    ix->nmeta++;
    return 0;
}

int sdc_index_add_global(sdc_file_index *ix, const char *name, int dangerous, sdc_err *e) {
    for (size_t i = 0; i < ix->nglobals; i++)
        if (!strcmp(ix->globals[i].name, name)) return 0;
    if (grow((void **)&ix->globals, &ix->globcap, ix->nglobals, sizeof *ix->globals))
        return sdc_errf(e, "global '%s': out of memory", name);
    char *n = strdup(name);
    if (!n) return sdc_errf(e, "global '%s': out of memory", name);
    ix->globals[ix->nglobals].name = n;
    ix->globals[ix->nglobals].dangerous = dangerous;
    ix->nglobals++;
    return 0;
}

void sdc_index_free(sdc_file_index *ix) {
    if (!ix) return;
    for (size_t i = 0; i < ix->n; i++) free(ix->t[i].name);
    for (size_t i = 0; i < ix->nmeta * 2; i++) free(ix->meta[i]);
    for (size_t i = 0; i < ix->nglobals; i++) free((char *)ix->globals[i].name);
    free(ix->t);
    free(ix->meta);
    free(ix->globals);
    memset(ix, 0, sizeof *ix);
}
