/* norm.c — group norm (with fused SiLU), layer norm and row softmax. Statistics in double. */
#include "kernels/kernels.h"

#include <math.h>

#include "kernels/kernels_internal.h"

/* out[N,C,HW] = (in - mean_g) / sqrt(var_g + eps) * gamma[c] + beta[c], then x·σ(x) if silu. */
void k_group_norm(float *out, const float *in, const float *gamma, const float *beta,
                  int N, int C, int HW, int groups, float eps, int silu) {
    int cpg = C / groups;
    size_t gsz = (size_t)cpg * HW;
    #pragma omp parallel for schedule(dynamic, 1)
    for (int ng = 0; ng < N * groups; ng++) {
        const float *x = in + (size_t)ng * gsz;
        float *y = out + (size_t)ng * gsz;
        double s = 0.0, s2 = 0.0;
        for (size_t i = 0; i < gsz; i++) s += x[i];
        double mean = s / (double)gsz;
        for (size_t i = 0; i < gsz; i++) { double d = x[i] - mean; s2 += d * d; }
        float rstd = (float)(1.0 / sqrt(s2 / (double)gsz + eps)), fm = (float)mean;
        int c0 = (ng % groups) * cpg;
        for (int c = 0; c < cpg; c++) {
            float sc = rstd * gamma[c0 + c], sh = beta[c0 + c] - fm * sc;
            const float *xc = x + (size_t)c * HW;
            float *yc = y + (size_t)c * HW;
            if (silu)
                for (int i = 0; i < HW; i++) { float v = xc[i] * sc + sh; yc[i] = v / (1.0f + expf(-v)); }
            else
                for (int i = 0; i < HW; i++) yc[i] = xc[i] * sc + sh;
        }
    }
}

/* out[r,:] = (in[r,:] - mean) / sqrt(var + eps) * gamma + beta */
void k_layer_norm(float *out, const float *in, const float *gamma, const float *beta,
                  int rows, int dim, float eps) {
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *x = in + (size_t)r * dim;
        float *y = out + (size_t)r * dim;
        double s = 0.0, s2 = 0.0;
        for (int i = 0; i < dim; i++) s += x[i];
        double mean = s / dim;
        for (int i = 0; i < dim; i++) { double d = x[i] - mean; s2 += d * d; }
        float rstd = (float)(1.0 / sqrt(s2 / dim + eps)), fm = (float)mean;
        for (int i = 0; i < dim; i++) y[i] = (x[i] - fm) * rstd * gamma[i] + beta[i];
    }
}

/* One row: x = exp(x - max) / sum. */
void kint_softmax_row(float *x, int cols) {
    float mx = -INFINITY;
    for (int i = 0; i < cols; i++) mx = x[i] > mx ? x[i] : mx;
    float s = 0.0f;
    for (int i = 0; i < cols; i++) { x[i] = expf(x[i] - mx); s += x[i]; }
    float inv = 1.0f / s;
    for (int i = 0; i < cols; i++) x[i] *= inv;
}

void k_softmax(float *x, int rows, int cols) {
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) kint_softmax_row(x + (size_t)r * cols, cols);
}
