/* pickle.h — a restricted pickle machine of our own: it builds values and executes nothing.
 *
 * Owns: the values one or more pickles (protocol 2-5, as torch.save writes them) build, the
 * storages their persistent ids name, and the list of globals they name that are not on the
 * allowlist. Everything lives in one context (sdc_pickle) and dies with sdc_pickle_free().
 * Does not own: the pickle bytes (strings and bytes are views into them, never copied) or the
 * storage bytes (a loader resolves each storage to a view into its mapped file).
 *
 * Nothing from a file is ever called. The "callables" a state dict needs
 * (torch._utils._rebuild_tensor_v2, collections.OrderedDict, torch.*Storage, torch.Size, ...)
 * are implemented here; globals known to be dangerous (os.system, builtins.eval, ...) refuse the
 * load unless cfg->allow_unsafe or cfg->inspect; any other global becomes an inert placeholder,
 * and REDUCE/NEWOBJ/BUILD on a placeholder yields another placeholder. Every opcode's target is
 * type-checked (SETITEM on a non-dict is an error, never a cast). Values are arena nodes: DUP and
 * memo GET push a reference, never a copy, so no input expands. */
#ifndef SDC_PICKLE_H
#define SDC_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/err.h"
#include "runtime/store.h"

/* Limits, each far above what a real checkpoint needs. */
#define SDC_PICKLE_MAX_STACK   (1u << 20) /* values on the stack: protocol 2 batches 1000 items per
                                             SETITEMS, so a state dict keeps a few thousand there */
#define SDC_PICKLE_MAX_MARKS   256        /* open MARKs = tuple/list/dict literals being built
                                             inside one another; a state dict needs about 4 */
#define SDC_PICKLE_MAX_DEPTH   256        /* container nesting depth of any built value (Python's
                                             own recursion limit is 1000; state dicts nest ~5) */
#define SDC_PICKLE_MAX_MEMO    (1u << 22) /* memo slots; the pickler numbers them 0,1,2,... and a
                                             full SD checkpoint uses ~20k */
#define SDC_PICKLE_MAX_OBJECTS (1u << 21) /* values built per context (40 bytes each: 80 MB at
                                             most); a full SD checkpoint builds ~20k */
#define SDC_PICKLE_MAX_ITEMS   (1u << 24) /* slots in all containers together (8 bytes each, 128
                                             MB at most): DUP + APPENDS cannot grow a list past
                                             it; a state dict holds 2 per tensor */
#define SDC_PICKLE_MAX_GLOBALS 1024       /* distinct non-allowlisted globals one file may name; a
                                             real checkpoint names a handful */

typedef enum sdc_pkind {
    SDC_PV_NONE, SDC_PV_BOOL, SDC_PV_INT, SDC_PV_BIGINT, SDC_PV_FLOAT,
    SDC_PV_STR, SDC_PV_BYTES,
    SDC_PV_TUPLE, SDC_PV_LIST, SDC_PV_DICT, SDC_PV_SET,
    SDC_PV_GLOBAL,      /* an allowlisted callable or type (torch.FloatStorage, OrderedDict, ...) */
    SDC_PV_DTYPE,       /* torch.float16, ... */
    SDC_PV_STORAGE,     /* a persistent-id storage */
    SDC_PV_TENSOR,      /* what _rebuild_tensor_v2 would return */
    SDC_PV_OPAQUE       /* inert placeholder: a non-allowlisted global, or anything built from one */
} sdc_pkind;

/* A storage named by a persistent id ('storage', torch.XStorage, key, location, numel).
 * The loader fills data/nbytes/file_offset (a view into its mapping). */
typedef struct sdc_pickle_storage {
    const char    *key;          /* NUL-terminated copy (keys are short) */
    sdc_dtype      dtype;
    uint64_t       numel;        /* elements of dtype, as the persistent id says */
    const uint8_t *data;         /* NULL until resolved */
    uint64_t       nbytes;       /* bytes available at data (>= numel * size) */
    uint64_t       file_offset;
    int            resolved;
} sdc_pickle_storage;

typedef struct sdc_pickle_tensor {
    sdc_pickle_storage *storage;
    sdc_dtype dtype;
    int64_t   offset;            /* storage offset in elements */
    int       ndim;
    int64_t   shape[SDC_MAX_DIMS];
    int64_t   stride[SDC_MAX_DIMS];
    int64_t   numel;
    int       contiguous;        /* 1 if the strides describe a dense row-major view */
} sdc_pickle_tensor;

typedef struct sdc_pval sdc_pval;
struct sdc_pval {
    sdc_pkind kind;
    int       depth;             /* container nesting (0 for scalars) */
    union {
        int64_t i;                                       /* BOOL, INT */
        double  f;                                       /* FLOAT */
        struct { const char *s; size_t n; } str;         /* STR (valid UTF-8), BYTES: views */
        struct { sdc_pval **v; size_t n, cap; int ordered; } seq; /* TUPLE LIST SET; DICT: k0,v0,k1,.. */
        struct { int fn; const char *name; sdc_dtype dtype; } glob; /* GLOBAL, DTYPE */
        sdc_pickle_storage *storage;                     /* STORAGE */
        sdc_pickle_tensor  *tensor;                      /* TENSOR */
        const char *opaque;                              /* OPAQUE: "module.name" it came from */
    } u;
};

/* Resolves a new storage (called once per distinct key, right after its persistent id is read):
 * fill data/nbytes/file_offset/resolved, or leave it for later (legacy files). Returns 0 or -1
 * with e set. */
typedef int (*sdc_pickle_storage_fn)(void *ctx, sdc_pickle_storage *st, sdc_err *e);

typedef struct sdc_pickle_cfg {
    int strict;                 /* refuse non-allowlisted globals too */
    int allow_unsafe;           /* dangerous globals become (recorded) placeholders */
    int inspect;                /* never refuse for globals: record them */
    sdc_pickle_storage_fn on_storage;   /* may be NULL: storages stay unresolved */
    void *ctx;
    const char *where;          /* for messages: "archive/data.pkl" */
    size_t base;                /* added to byte offsets in messages (where data starts) */
    size_t max_objects;         /* 0 = SDC_PICKLE_MAX_OBJECTS; lower for tests and fuzzing */
    size_t max_items;           /* 0 = SDC_PICKLE_MAX_ITEMS; likewise */
} sdc_pickle_cfg;

/* A global the file named that is not on the allowlist. */
typedef struct sdc_pickle_seen {
    const char *name;           /* "module.qualname" */
    int dangerous;
} sdc_pickle_seen;

typedef struct sdc_pickle sdc_pickle;

sdc_pickle *sdc_pickle_new(void);
void        sdc_pickle_free(sdc_pickle *p);    /* NULL is fine; every value dies here */

/* Runs one pickle (data[0..size)) up to its STOP. *result = the value STOP returned (owned by p);
 * *end = offset just past STOP (a legacy file holds several pickles back to back). Several runs
 * may share one context: storages and globals accumulate; stack and memo start empty each run.
 * Returns 0, or -1 with e set ("what is wrong: WHERE byte N"); the caller prefixes the path. */
int sdc_pickle_run(sdc_pickle *p, const uint8_t *data, size_t size, const sdc_pickle_cfg *cfg,
                   sdc_pval **result, size_t *end, sdc_err *e);

/* Values built so far in this context (what SDC_PICKLE_MAX_OBJECTS bounds). */
size_t sdc_pickle_nobjects(const sdc_pickle *p);

/* The storages named so far (distinct keys, in first-seen order). */
size_t              sdc_pickle_nstorages(const sdc_pickle *p);
sdc_pickle_storage *sdc_pickle_storage_at(sdc_pickle *p, size_t i);
sdc_pickle_storage *sdc_pickle_storage_find(sdc_pickle *p, const char *key);

/* The non-allowlisted globals named so far (each once). */
size_t                 sdc_pickle_nseen(const sdc_pickle *p);
const sdc_pickle_seen *sdc_pickle_seen_at(const sdc_pickle *p, size_t i);

/* 1 if "module.name" is on the known-dangerous list. */
int sdc_pickle_is_dangerous(const char *module, const char *name);

/* Dict lookup by string key (the last SETITEM wins, as in Python); NULL if absent or d is not a
 * dict. */
sdc_pval *sdc_pval_dict_get(const sdc_pval *d, const char *key);

const char *sdc_pkind_name(sdc_pkind k);

#endif
