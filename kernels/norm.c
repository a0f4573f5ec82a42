/* norm.c — group norm (with fused SiLU), layer norm and row softmax, VLEN lanes at a time.
 * Statistics: two passes (mean, then the centred sum of squares), float vector partial sums over
 * short runs folded into double. */
#include "kernels/isa.h"   /* first: compiled once per vector width (kernels/isa.h) */

#include <math.h>

#include "kernels/vmath.h"


/* out[N,C,HW] = (in - mean_g) / sqrt(var_g + eps) * gamma[c] + beta[c], then x·σ(x) if silu. */
void KISA_NAME(k_group_norm)(float *out, const float *in, const float *gamma, const float *beta,
                             int N, int C, int HW, int groups, float eps, int silu) {
    KISA_VOID(k_group_norm, out, in, gamma, beta, N, C, HW, groups, eps, silu);
    int cpg = C / groups;
    size_t gsz = (size_t)cpg * HW;
    #pragma omp parallel for schedule(dynamic, 1)
    for (int ng = 0; ng < N * groups; ng++) {
        const float *x = in + (size_t)ng * gsz;
        float *y = out + (size_t)ng * gsz;
        double mean = vsum_span(x, gsz) / (double)gsz;
        double var = vsumsq_span(x, gsz, (float)mean) / (double)gsz;
        float rstd = (float)(1.0 / sqrt(var + eps)), fm = (float)mean;
        int c0 = (ng % groups) * cpg;
        for (int c = 0; c < cpg; c++) {
            float sc = rstd * gamma[c0 + c], sh = beta[c0 + c] - fm * sc;
            vaffine_span(y + (size_t)c * HW, x + (size_t)c * HW, (size_t)HW, sc, sh, silu);
        }
    }
}

double KISA_NAME(k_sum)(const float *x, size_t n) {
    KISA_RET(k_sum, x, n);
    return vsum_span(x, n);
}

double KISA_NAME(k_sum_sq_centred)(const float *x, size_t n, float mean) {
    KISA_RET(k_sum_sq_centred, x, n, mean);
    return vsumsq_span(x, n, mean);
}

void KISA_NAME(k_affine)(float *y, const float *x, size_t n, float sc, float sh, int silu) {
    KISA_VOID(k_affine, y, x, n, sc, sh, silu);
    vaffine_span(y, x, n, sc, sh, silu);
}

/* out[r,:] = (in[r,:] - mean) / sqrt(var + eps) * gamma + beta */
void KISA_NAME(k_layer_norm)(float *out, const float *in, const float *gamma, const float *beta,
                             int rows, int dim, float eps) {
    KISA_VOID(k_layer_norm, out, in, gamma, beta, rows, dim, eps);
    #pragma omp parallel for schedule(static) if ((size_t)rows * dim > 16384)
    for (int r = 0; r < rows; r++) {
        const float *x = in + (size_t)r * dim;
        float *y = out + (size_t)r * dim;
        double mean = vsum_span(x, (size_t)dim) / dim;
        double var = vsumsq_span(x, (size_t)dim, (float)mean) / dim;
        float rstd = (float)(1.0 / sqrt(var + eps)), fm = (float)mean;
        vf m = vset(fm), rs = vset(rstd);
        int i = 0;
        for (; i + VLEN <= dim; i += VLEN)
            vstore(y + i, vfma(vmul(vsub(vload(x + i), m), rs), vload(gamma + i), vload(beta + i)));
        for (; i < dim; i++) y[i] = (x[i] - fm) * rstd * gamma[i] + beta[i];
    }
}

/* One row: x = exp(x - max) / sum. */
void kint_softmax_row(float *x, int cols) {
    int i = 0;
    vf mv = vset(-INFINITY);
    for (; i + VLEN <= cols; i += VLEN) mv = vmax(mv, vload(x + i));
    float mx = vhmax(mv);
    for (; i < cols; i++) mx = x[i] > mx ? x[i] : mx;
    vf m = vset(mx), sv = vset(0.0f);
    for (i = 0; i + VLEN <= cols; i += VLEN) {
        vf e = vexp(vsub(vload(x + i), m));
        vstore(x + i, e);
        sv = vadd(sv, e);
    }
    float s = vhsum(sv);
    if (i < cols) {
        float t[VLEN];
        for (int j = 0; j < VLEN; j++) t[j] = i + j < cols ? x[i + j] : -INFINITY;
        vstore(t, vexp(vsub(vload(t), m)));
        for (int j = i; j < cols; j++) { x[j] = t[j - i]; s += t[j - i]; }
    }
    vf inv = vset(1.0f / s);
    for (i = 0; i + VLEN <= cols; i += VLEN) vstore(x + i, vmul(vload(x + i), inv));
    for (; i < cols; i++) x[i] *= 1.0f / s;
}

void KISA_NAME(k_softmax)(float *x, int rows, int cols) {
    KISA_VOID(k_softmax, x, rows, cols);
    #pragma omp parallel for schedule(static) if ((size_t)rows * cols > 16384)
    for (int r = 0; r < rows; r++) kint_softmax_row(x + (size_t)r * cols, cols);
}
