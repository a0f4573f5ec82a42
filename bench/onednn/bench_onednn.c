/* bench_onednn.c — oneDNN's matmul (Debian's libdnnl-dev, 2.6) at the same Linear shapes as
 * bench_bf16, bf16 x bf16 -> f32 (weights reordered once into the layout oneDNN picks, the
 * activations' f32 -> bf16 reorder timed, as k_linear_bf16 packs them per call) and f32; for the
 * choice between oneDNN and our own vdpbf16ps kernel (README). Built only where dnnl.h exists.
 * Usage: bench_onednn [--runs N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>
#include <omp.h>

#include "bench/bench_common.h"

#define OK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { fprintf(stderr, "%s: %d\n", #x, s_); exit(2); } } while (0)
#define MAX_RUNS 15

static dnnl_engine_t eng;
static dnnl_stream_t str;

static dnnl_memory_t mem(const dnnl_memory_desc_t *d, void *p) {
    dnnl_memory_t m;
    OK(dnnl_memory_create(&m, d, eng, p ? p : DNNL_MEMORY_ALLOCATE));
    return m;
}

static void reorder(dnnl_memory_t from, const dnnl_memory_desc_t *fd, dnnl_memory_t to, const dnnl_memory_desc_t *td) {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    OK(dnnl_reorder_primitive_desc_create(&pd, fd, eng, td, eng, NULL));
    OK(dnnl_primitive_create(&p, pd));
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    OK(dnnl_primitive_execute(p, str, 2, a));
    OK(dnnl_stream_wait(str));
    dnnl_primitive_destroy(p);
    dnnl_primitive_desc_destroy(pd);
}

/* median seconds of one M x K x N matmul in type dt (bf16: + the src reorder) */
static double run(int M, int K, int N, dnnl_data_type_t dt, int runs, const char **impl) {
    dnnl_dims_t sd = {M, K}, wd = {K, N}, dd = {M, N};
    dnnl_memory_desc_t s32, s, w32, wany, d;
    OK(dnnl_memory_desc_init_by_tag(&s32, 2, sd, dnnl_f32, dnnl_ab));
    OK(dnnl_memory_desc_init_by_tag(&s, 2, sd, dt, dnnl_ab));
    OK(dnnl_memory_desc_init_by_tag(&w32, 2, wd, dnnl_f32, dnnl_ba));   /* w[N,K] as torch stores it */
    OK(dnnl_memory_desc_init_by_tag(&wany, 2, wd, dt, dnnl_format_tag_any));
    OK(dnnl_memory_desc_init_by_tag(&d, 2, dd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    OK(dnnl_matmul_desc_init(&md, &s, &wany, NULL, &d));
    dnnl_primitive_desc_t pd;
    OK(dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL));
    const dnnl_memory_desc_t *wbest = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    OK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, impl));
    float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * K * N);
    for (size_t i = 0; i < (size_t)M * K; i++) x[i] = (float)(i % 13) * 0.1f - 0.6f;
    for (size_t i = 0; i < (size_t)K * N; i++) w[i] = (float)(i % 7) * 0.1f - 0.3f;
    dnnl_memory_t mx32 = mem(&s32, x), mx = mem(&s, NULL), mw32 = mem(&w32, w), mw = mem(wbest, NULL), md_ = mem(&d, NULL);
    reorder(mw32, &w32, mw, wbest);
    dnnl_primitive_t mm;
    OK(dnnl_primitive_create(&mm, pd));
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, dt == dnnl_f32 ? mx32 : mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md_}};
    double t[MAX_RUNS];
    for (int r = -1; r < runs; r++) {
        double t0 = bench_now();
        if (dt != dnnl_f32) reorder(mx32, &s32, mx, &s);
        OK(dnnl_primitive_execute(mm, str, 3, a));
        OK(dnnl_stream_wait(str));
        if (r >= 0) t[r] = bench_now() - t0;
    }
    dnnl_primitive_destroy(mm);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(mx32); dnnl_memory_destroy(mx); dnnl_memory_destroy(mw32); dnnl_memory_destroy(mw); dnnl_memory_destroy(md_);
    free(x); free(w);
    return bench_median(t, runs);
}

int main(int argc, char **argv) {
    int runs = 5;
    if (argc == 3 && !strcmp(argv[1], "--runs")) runs = atoi(argv[2]);
    if (runs < 1 || runs > MAX_RUNS) runs = 5;
    (void)bench_fma_peak;   /* bench_common.h's peak loop: not used here */
    OK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    OK(dnnl_stream_create(&str, eng, dnnl_stream_default_flags));
    const dnnl_version_t *v = dnnl_version();
    printf("bench_onednn: oneDNN %d.%d.%d, %d threads, median of %d runs\n", v->major, v->minor, v->patch,
           omp_get_max_threads(), runs);
    printf("%-36s %8s %8s   %s\n", "shape (direct-count GFLOP/s)", "f32", "bf16", "bf16 kernel");
    static const int L[][3] = {{8192, 320, 960}, {8192, 320, 320}, {8192, 320, 2560}, {8192, 1280, 320},
                               {4096, 1280, 1280}, {2048, 640, 1920}, {2048, 5120, 1280}, {154, 768, 640}};
    for (size_t i = 0; i < sizeof L / sizeof *L; i++) {
        const char *i32, *i16;
        const double gf = 2.0 * L[i][0] * L[i][1] * L[i][2] * 1e-9;
        double a = run(L[i][0], L[i][1], L[i][2], dnnl_f32, runs, &i32), b = run(L[i][0], L[i][1], L[i][2], dnnl_bf16, runs, &i16);
        printf("linear %5d x %5d x %5d        %8.1f %8.1f   %s\n", L[i][0], L[i][1], L[i][2], gf / a, gf / b, i16);
    }
    return 0;
}
