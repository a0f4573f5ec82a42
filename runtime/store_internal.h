/* store_internal.h — how a loader hands one parsed file to the store.
 *
 * A loader (runtime/load_safetensors.c, runtime/load_ckpt.c) parses a whole mapped file and
 * fills an sdc_file_index: tensor entries pointing into the mapping, metadata, pickle globals.
 * sdc_store_open() maps the file, picks the loader from the file's bytes, and commits the index
 * only when the loader succeeded, so a failed open leaves the store unchanged. */
#ifndef SDC_STORE_INTERNAL_H
#define SDC_STORE_INTERNAL_H

#include "runtime/store.h"

typedef struct sdc_index_entry {
    char       *name;                  /* malloc'd, owned by the index */
    sdc_dtype   dtype;
    int         ndim;
    int64_t     shape[SDC_MAX_DIMS];
    const void *data;                  /* into the mapping */
    uint64_t    offset;                /* byte offset of data in the file */
} sdc_index_entry;

typedef struct sdc_file_index {
    sdc_index_entry   *t;      size_t n, cap;
    char             **meta;   size_t nmeta, metacap;   /* key0, val0, key1, val1, ... (malloc'd) */
    sdc_pickle_global *globals; size_t nglobals, globcap; /* names malloc'd */
} sdc_file_index;

/* Each returns 0, or -1 with e set (allocation failure, duplicate name, bad shape). */
int  sdc_index_add(sdc_file_index *ix, const char *name, sdc_dtype dtype, int ndim,
                   const int64_t *shape, const void *data, uint64_t offset, sdc_err *e);
int  sdc_index_add_meta(sdc_file_index *ix, const char *key, const char *val, sdc_err *e);
/* Records a non-allowlisted global once (repeats are ignored). */
int  sdc_index_add_global(sdc_file_index *ix, const char *name, int dangerous, sdc_err *e);
void sdc_index_free(sdc_file_index *ix);

/* Loaders. map/size are the whole file; path is for messages. Return 0 or -1 with e set. */
int sdc_load_safetensors(const char *path, const uint8_t *map, size_t size,
                         sdc_file_index *out, sdc_err *e);
int sdc_load_ckpt_zip(const char *path, const uint8_t *map, size_t size,
                      const sdc_load_opts *opts, sdc_file_index *out, sdc_err *e);
int sdc_load_ckpt_legacy(const char *path, const uint8_t *map, size_t size,
                         const sdc_load_opts *opts, sdc_file_index *out, sdc_err *e);

#endif
