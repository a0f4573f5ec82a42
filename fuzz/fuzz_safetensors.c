/* fuzz_safetensors.c — libFuzzer harness for the safetensors parser (runtime/load_safetensors.c).
 * Parses the input as a whole file; when it is accepted, every tensor view is read through
 * sdc_tensor_to_f32 so an out-of-bounds view shows up under ASan. Never aborts on input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/store_internal.h"

/* Values converted per tensor: enough to touch both ends of every view, bounded per input. */
#define FUZZ_MAX_CONVERT (1 << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sdc_file_index ix;
    memset(&ix, 0, sizeof ix);
    sdc_err e;
    e.msg[0] = 0;
    if (sdc_load_safetensors("fuzz", data, size, &ix, &e) == 0) {
        float *buf = malloc(FUZZ_MAX_CONVERT * sizeof *buf);
        for (size_t i = 0; buf && i < ix.n; i++) {
            sdc_tensor t;
            memset(&t, 0, sizeof t);
            t.name = ix.t[i].name;
            t.dtype = ix.t[i].dtype;
            t.ndim = ix.t[i].ndim;
            t.numel = 1;
            for (int d = 0; d < t.ndim; d++) { t.shape[d] = ix.t[i].shape[d]; t.numel *= t.shape[d]; }
            size_t es = sdc_dtype_size(t.dtype);
            const uint8_t *p = ix.t[i].data;
            /* the view must lie inside the input */
            if (p < data || (size_t)(p - data) + (size_t)t.numel * es > size) abort();
            /* convert the first and the last chunk of the view */
            int64_t n = t.numel < FUZZ_MAX_CONVERT / 2 ? t.numel : FUZZ_MAX_CONVERT / 2;
            t.data = p;
            int64_t full = t.numel;
            t.numel = n;
            sdc_tensor_to_f32(&t, buf, &e);
            t.data = p + (size_t)(full - n) * es;
            sdc_tensor_to_f32(&t, buf, &e);
        }
        free(buf);
    } else if (!e.msg[0] || strchr(e.msg, '\n')) {
        abort();   /* a refusal must say why, on one line */
    }
    sdc_index_free(&ix);
    return 0;
}
