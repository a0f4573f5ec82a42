/* store.h — the tensor store: one table of named tensors, whatever file they came from.
 *
 * Owns: the open files (mmap'd read-only), the tensor table (name, dtype, shape, view,
 * origin), each file's safetensors __metadata__ and the pickle globals a ckpt named.
 * Does not own: any compute buffer. Tensors are read-only views into the mapping and live
 * until sdc_store_close(). Nothing is copied at load.
 *
 * Several files can be open in one store (a checkpoint, then a separate VAE, later a LoRA):
 * lookup by name returns the tensor of the file opened LAST that has that name; iteration
 * (sdc_store_at) runs over all tensors in file order, file after file.
 *
 * The format is decided by the file's bytes, not its name: safetensors, PyTorch zip ckpt,
 * legacy (pre-1.6) ckpt. A directory is refused (a diffusers folder by that name in the message);
 * `sdc compare` reads a diffusers folder's files through sdc_cmp_open (cli/compare.h). */
#ifndef SDC_STORE_H
#define SDC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/err.h"

/* Appended only; values are stable. */
typedef enum sdc_dtype {
    SDC_F64, SDC_F32, SDC_F16, SDC_BF16, SDC_I64, SDC_I32, SDC_I16, SDC_I8, SDC_U8, SDC_BOOL,
    SDC_F8_E4M3, SDC_F8_E5M2,
    SDC_DTYPE_COUNT
} sdc_dtype;

size_t      sdc_dtype_size(sdc_dtype t);          /* bytes per element */
const char *sdc_dtype_name(sdc_dtype t);          /* safetensors spelling: "F32", "BF16", ... */
int         sdc_dtype_from_name(const char *s);   /* safetensors spelling → sdc_dtype, -1 unknown */
int         sdc_dtype_is_float(sdc_dtype t);

typedef enum sdc_format {
    SDC_FMT_SAFETENSORS, SDC_FMT_CKPT_ZIP, SDC_FMT_CKPT_LEGACY, SDC_FMT_DIFFUSERS_DIR
} sdc_format;
const char *sdc_format_name(sdc_format f);       /* "safetensors", "ckpt (zip)", "ckpt (legacy)", ... */

#define SDC_MAX_DIMS 8   /* the safetensors and torch tensors SD uses have at most 4 */

typedef struct sdc_tensor {
    const char *name;            /* owned by the store */
    sdc_dtype   dtype;
    int         ndim;            /* 0 = scalar */
    int64_t     shape[SDC_MAX_DIMS];
    int64_t     numel;
    size_t      nbytes;          /* numel * sdc_dtype_size(dtype) */
    const void *data;            /* read-only view (into the mmap); contiguous, little-endian;
                                    MAY BE UNALIGNED (legacy ckpt records): read it through
                                    sdc_tensor_to_f32 or memcpy, never cast to float* */
    int         file;            /* index of the file it came from (sdc_store_file) */
    uint64_t    offset;          /* byte offset of data within that file */
} sdc_tensor;

typedef struct sdc_load_opts {
    int strict;                  /* refuse unknown (non-allowlisted) pickle globals too */
    int allow_unsafe_pickle;     /* load weights even if the pickle names dangerous globals */
    int inspect;                 /* never refuse for globals: record them (for `sdc inspect`) */
} sdc_load_opts;

/* A pickle global the file named that is not on the allowlist. */
typedef struct sdc_pickle_global {
    const char *name;            /* "module.qualname", owned by the store */
    int         dangerous;       /* 1 if on the known-dangerous list (os.system, eval, ...) */
} sdc_pickle_global;

typedef struct sdc_store_file {
    const char *path;
    sdc_format  format;
    uint64_t    size;            /* bytes */
    size_t      first_tensor;    /* index range in sdc_store_at order */
    size_t      n_tensors;
} sdc_store_file;

typedef struct sdc_store sdc_store;

sdc_store *sdc_store_new(void);
/* Unmaps every file and frees the table. NULL is fine. Every tensor pointer dies here. */
void       sdc_store_close(sdc_store *s);

/* Opens, validates completely and indexes one more file. Returns 0, or -1 with e set
 * ("FILE: what is wrong: where"); on failure the store is unchanged. opts may be NULL. */
int sdc_store_open(sdc_store *s, const char *path, const sdc_load_opts *opts, sdc_err *e);

size_t               sdc_store_count(const sdc_store *s);
const sdc_tensor    *sdc_store_at(const sdc_store *s, size_t i);          /* file order */
const sdc_tensor    *sdc_store_get(const sdc_store *s, const char *name); /* O(1); NULL if absent */
/* printf-style name, e.g. sdc_store_getf(s, "%sinput_blocks.%d.0.in_layers.0.weight", pre, i) */
const sdc_tensor    *sdc_store_getf(const sdc_store *s, const char *fmt, ...)
                        __attribute__((format(printf, 2, 3)));
/* Number of tensors whose name starts with prefix (a "prefix view" count; 0 = none). */
size_t               sdc_store_count_prefix(const sdc_store *s, const char *prefix);

size_t                sdc_store_nfiles(const sdc_store *s);
const sdc_store_file *sdc_store_file_at(const sdc_store *s, size_t i);

/* safetensors __metadata__ (string → string), over all files (last file wins). */
const char *sdc_store_meta(const sdc_store *s, const char *key);           /* NULL if absent */
size_t      sdc_store_meta_count(const sdc_store *s);
void        sdc_store_meta_at(const sdc_store *s, size_t i, const char **key, const char **val);

/* Non-allowlisted pickle globals recorded while loading (inert placeholders; never called). */
size_t                   sdc_store_nglobals(const sdc_store *s);
const sdc_pickle_global *sdc_store_global_at(const sdc_store *s, size_t i);

/* Converts a float tensor (F64/F32/F16/BF16/F8) to f32 into dst (t->numel floats).
 * Integer dtypes are converted by value. Returns 0, or -1 with e set. */
int sdc_tensor_to_f32(const sdc_tensor *t, float *dst, sdc_err *e);

/* Resident memory. The mappings are read-only views of the files, so the process can drop
 * their pages at any time; a view touched later is read again (from the OS page cache, else
 * the disk) with the same bytes. Every view stays valid: this is advice, never a free.
 * sdc_store_release_pages drops every file's pages from the process (call it once the models
 * have converted their weights: in the default mode nothing reads the files afterwards, and
 * their pages would otherwise stay in the RSS beside the f32 copies).
 * sdc_store_release_tensor drops the pages under one tensor's view (pages it shares with a
 * neighbour included); a low-mem model calls it after widening a weight, so only the layer
 * at work is resident. t must come from s (else nothing happens). NULL is fine for both. */
void sdc_store_release_pages(sdc_store *s);
void sdc_store_release_tensor(const sdc_store *s, const sdc_tensor *t);
/* Drops the whole pages of file `file`'s mapping that lie in bytes [begin, end) (a page only
 * partly inside is kept): one call for a run of tensors a loader is done with. */
void sdc_store_release_span(const sdc_store *s, int file, uint64_t begin, uint64_t end);

#endif
