/* fuzz_zip.c — libFuzzer harness for the PyTorch zip checkpoint reader (runtime/load_ckpt.c):
 * zip structure (EOCD, zip64, central/local headers, overlaps, duplicates), the records, data.pkl
 * through the pickle machine, storages as views. Every accepted tensor view must lie inside the
 * input; its first and last bytes are read so ASan checks them. Never aborts on input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/store_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sdc_file_index ix;
    memset(&ix, 0, sizeof ix);
    sdc_load_opts opts = {0};
    opts.inspect = size % 3 == 1;
    opts.allow_unsafe_pickle = size % 3 == 2;
    sdc_err e;
    e.msg[0] = 0;
    int rc = sdc_load_ckpt_zip("fuzz", data, size, &opts, &ix, &e);
    if (rc == 0) {
        for (size_t i = 0; i < ix.n; i++) {
            const uint8_t *v = ix.t[i].data;
            size_t n = sdc_dtype_size(ix.t[i].dtype);
            for (int d = 0; d < ix.t[i].ndim; d++) n *= (size_t)ix.t[i].shape[d];
            if (!n) continue;
            if (v < data || v + n > data + size || ix.t[i].offset != (uint64_t)(v - data)) abort();
            volatile uint8_t first = v[0], last = v[n - 1];
            (void)first; (void)last;
        }
    } else if (!e.msg[0] || strchr(e.msg, '\n')) {
        abort();                      /* a refusal is always one line that says why */
    }
    sdc_index_free(&ix);
    return 0;
}
