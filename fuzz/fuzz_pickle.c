/* fuzz_pickle.c — libFuzzer harness for the restricted pickle machine (runtime/pickle.c) and the
 * legacy ckpt reader that drives it (runtime/load_ckpt.c). The input is run as one pickle, with
 * dangerous globals allowed (so the machine keeps going past them) and a small object budget; every
 * tensor it builds must lie inside its storage. Then the same bytes go through the legacy loader.
 * Never aborts on input: an abort() here is a bug found. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/pickle.h"
#include "runtime/store_internal.h"

#define FUZZ_STORAGE_BYTES (1 << 16)   /* every storage resolves to this buffer */
#define FUZZ_MAX_OBJECTS   (1 << 16)   /* keeps each input fast; the real limit is tested apart */

static uint8_t storage_bytes[FUZZ_STORAGE_BYTES];

static int resolve(void *ctx, sdc_pickle_storage *st, sdc_err *e) {
    (void)ctx;
    uint64_t need = st->numel * sdc_dtype_size(st->dtype);
    if (need > sizeof storage_bytes) return sdc_errf(e, "storage '%s' too large", st->key);
    st->data = storage_bytes;
    st->nbytes = sizeof storage_bytes;
    st->resolved = 1;
    return 0;
}

/* A tensor's view must fit its storage; reading its last byte lets ASan check the pointer. */
static void check_tensor(const sdc_pval *v) {
    if (!v || v->kind != SDC_PV_TENSOR) return;
    const sdc_pickle_tensor *t = v->u.tensor;
    size_t es = sdc_dtype_size(t->dtype);
    if (t->numel && t->contiguous) {
        uint64_t end = (uint64_t)(t->offset + t->numel) * es;
        if (end > t->storage->numel * sdc_dtype_size(t->storage->dtype)) abort();
        volatile uint8_t last = t->storage->data[end - 1];
        (void)last;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sdc_pickle *p = sdc_pickle_new();
    if (!p) return 0;
    sdc_pickle_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.allow_unsafe = 1;
    cfg.strict = size % 7 == 3;      /* sometimes strict, to reach its refusal */
    cfg.on_storage = resolve;
    cfg.where = "fuzz";
    cfg.max_objects = FUZZ_MAX_OBJECTS;
    sdc_pval *root = NULL;
    size_t end = 0;
    sdc_err e;
    e.msg[0] = 0;
    if (sdc_pickle_run(p, data, size, &cfg, &root, &end, &e) == 0) {
        if (!root || end > size) abort();
        const sdc_pval *sd = sdc_pval_dict_get(root, "state_dict");
        if (!sd) sd = root;
        if (sd->kind == SDC_PV_DICT)
            for (size_t i = 1; i < sd->u.seq.n; i += 2) check_tensor(sd->u.seq.v[i]);
        check_tensor(root);
    } else if (!e.msg[0]) {
        abort();                      /* a refusal always says why */
    }
    sdc_pickle_free(p);

    /* the same bytes as a legacy checkpoint (magic, protocol, sys_info, object, keys, storages) */
    sdc_file_index ix;
    memset(&ix, 0, sizeof ix);
    sdc_load_opts opts = {0};
    opts.inspect = size % 2;
    if (sdc_load_ckpt_legacy("fuzz", data, size, &opts, &ix, &e) == 0) {
        for (size_t i = 0; i < ix.n; i++) {
            const uint8_t *v = ix.t[i].data;
            size_t n = sdc_dtype_size(ix.t[i].dtype);
            for (int d = 0; d < ix.t[i].ndim; d++) n *= (size_t)ix.t[i].shape[d];
            if (n && (v < data || v + n > data + size)) abort();
        }
    }
    sdc_index_free(&ix);
    return 0;
}
