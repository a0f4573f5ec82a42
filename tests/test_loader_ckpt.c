/* test_loader_ckpt.c — the three fixture .ckpt files (zip f32 under archive/, zip f16 under
 * tiny-sd1-fp16/, legacy f16) load through sdc_store_open and are bit-identical to their
 * .safetensors twins: same names, dtypes, shapes and bytes, tensor for tensor. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "runtime/store.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int check_pair(const char *ckpt, const char *st, sdc_format want) {
    sdc_err e = {{0}};
    sdc_store *a = sdc_store_new(), *b = sdc_store_new();
    int bad = 0;
    double t0 = now();
    if (sdc_store_open(a, ckpt, NULL, &e)) { printf("FAIL %s: %s\n", ckpt, e.msg); bad = 1; goto out; }
    double t1 = now();
    if (sdc_store_open(b, st, NULL, &e)) { printf("FAIL %s: %s\n", st, e.msg); bad = 1; goto out; }
    const sdc_store_file *f = sdc_store_file_at(a, 0);
    if (f->format != want) { printf("FAIL %s: format %s\n", ckpt, sdc_format_name(f->format)); bad = 1; }
    if (sdc_store_nglobals(a) != 0) {
        printf("FAIL %s: %zu unexpected non-allowlisted globals (first %s)\n", ckpt,
               sdc_store_nglobals(a), sdc_store_global_at(a, 0)->name);
        bad = 1;
    }
    size_t na = sdc_store_count(a), nb = sdc_store_count(b), same = 0;
    if (na != nb) { printf("FAIL %s: %zu tensors, %s has %zu\n", ckpt, na, st, nb); bad = 1; }
    size_t bytes = 0;
    for (size_t i = 0; i < nb; i++) {
        const sdc_tensor *y = sdc_store_at(b, i), *x = sdc_store_get(a, y->name);
        if (!x) { printf("FAIL %s: missing '%s'\n", ckpt, y->name); bad = 1; continue; }
        int ok = x->dtype == y->dtype && x->ndim == y->ndim && x->numel == y->numel &&
                 x->nbytes == y->nbytes;
        for (int d = 0; ok && d < x->ndim; d++) ok = x->shape[d] == y->shape[d];
        if (ok) ok = memcmp(x->data, y->data, x->nbytes) == 0;
        if (!ok) {
            if (bad++ < 10) printf("FAIL %s: '%s' differs (dtype %s/%s, ndim %d/%d, numel %lld/%lld)\n",
                                   ckpt, y->name, sdc_dtype_name(x->dtype), sdc_dtype_name(y->dtype),
                                   x->ndim, y->ndim, (long long)x->numel, (long long)y->numel);
            continue;
        }
        /* the view lies in the file where the store says */
        if ((const char *)x->data - (const char *)sdc_store_at(a, 0)->data !=
            (long long)x->offset - (long long)sdc_store_at(a, 0)->offset) {
            printf("FAIL %s: '%s' offset %llu disagrees with its pointer\n", ckpt, x->name,
                   (unsigned long long)x->offset);
            bad++;
        }
        same++;
        bytes += x->nbytes;
    }
    /* the tensors that are not plain float weights */
    const sdc_tensor *pos = sdc_store_get(a, "cond_stage_model.transformer.text_model.embeddings.position_ids");
    const sdc_tensor *decay = sdc_store_get(a, "model_ema.decay");
    const sdc_tensor *nup = sdc_store_get(a, "model_ema.num_updates");
    if (!pos || pos->dtype != SDC_I64 || pos->ndim != 2 || pos->shape[1] != 77) {
        printf("FAIL %s: position_ids not I64 [1,77]\n", ckpt); bad++;
    } else {
        int64_t last;
        memcpy(&last, (const char *)pos->data + 76 * 8, 8);
        if (last != 76) { printf("FAIL %s: position_ids[76] = %lld\n", ckpt, (long long)last); bad++; }
    }
    if (!decay || !sdc_dtype_is_float(decay->dtype) || decay->ndim != 0 || decay->numel != 1 ||
        (want == SDC_FMT_CKPT_ZIP && strstr(ckpt, "fp16") == NULL && decay->dtype != SDC_F32)) {
        printf("FAIL %s: model_ema.decay not a float scalar (F32 in the f32 file)\n", ckpt); bad++;
    }
    if (!nup || nup->dtype != SDC_I32 || nup->ndim != 0) {
        printf("FAIL %s: model_ema.num_updates not an I32 scalar\n", ckpt); bad++;
    }
    printf("%s: %s, %zu tensors, %zu identical to %s (%zu bytes), opened in %.1f ms\n", ckpt,
           sdc_format_name(f->format), na, same, st, bytes, (t1 - t0) * 1e3);
out:
    sdc_store_close(a);
    sdc_store_close(b);
    return bad;
}

int main(void) {
    int bad = 0;
    bad += check_pair("tests/data/tiny-sd1.ckpt", "tests/data/tiny-sd1.safetensors", SDC_FMT_CKPT_ZIP);
    bad += check_pair("tests/data/tiny-sd1-fp16.ckpt", "tests/data/tiny-sd1-fp16.safetensors",
                      SDC_FMT_CKPT_ZIP);
    bad += check_pair("tests/data/tiny-sd1-legacy.ckpt", "tests/data/tiny-sd1-fp16.safetensors",
                      SDC_FMT_CKPT_LEGACY);
    printf(bad ? "FAIL\n" : "PASS\n");
    return bad ? 1 : 0;
}
