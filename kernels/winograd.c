/* winograd.c — 3x3 stride-1 "same" convolution as Winograd F(2x2, 3x3).
 *
 * Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A per 2x2 output tile: the 16 elementwise products, summed over input
 * channels, are 16 GEMMs M[k] (Cout x tiles) = U[k] (Cout x Cin) · V[k] (Cin x tiles). 16
 * multiply-adds per 4 outputs instead of 36: 2.25x fewer than the direct method, for transforms
 * that cost a few percent (they are linear in Cin + Cout, the GEMMs in Cin · Cout).
 *
 * U = G g Gᵀ is computed once per weight (k_wino_pack), in the GEMM micro-kernel's layout. A
 * forward cuts the batch into chunks of up to 64 tiles (tile rows x tile columns; tile rows run
 * over the whole batch, so small images share a chunk); each OpenMP task takes one chunk (and a
 * group of output channels when chunks are too few for the threads): copies the chunk's input
 * rows into a zero-padded band, transforms them (V), runs the 16 GEMMs through its own
 * register-blocked micro-kernel (V[k] stays in L1/L2 while U[k] streams) and transforms the
 * products back into the output, 96 channels at a time, adding bias and, when given, a
 * residual. k_conv3x3_wino_band does the same on rows of a band the caller made.
 *
 * k_conv3x3_wino_stream never holds the whole U: it makes the input transforms of a super-chunk
 * of chunks first (up to WS_V_BYTES, in L3), then each task packs one group of output blocks
 * (up to WS_U_BYTES) from rows the caller widens and runs that group's GEMMs against every chunk
 * of the super-chunk: the weight is read as stored once per super-chunk (once per call at the
 * UNet's sizes), and the same U, V and GEMMs give the same bits as the packed path. */
#include "kernels/isa.h"   /* first: compiled once per vector width (kernels/isa.h) */

#include <omp.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "kernels/kernels_internal.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define WG_RO K_WINO_BLOCK        /* output channels per micro-kernel block (U packed by 12) */
/* Tiles per chunk: 64 (4 vectors of 16) keeps the GEMM's U[k] reads at 32 FLOP per byte (they
 * stream from L3 or memory) while a 32-tile strip of V[k] (Cin x 32) stays in L2. */
#define WG_CHUNK_TILES 64

/* Packing does not depend on the vector width: compiled once (in the baseline). */
#if !KISA_VARIANT
size_t k_wino_packed_floats(int Cout, int Cin) {
    return (size_t)16 * ((Cout + WG_RO - 1) / WG_RO) * WG_RO * (size_t)Cin;
}

/* U[k][ob][c][r] = (G g Gᵀ)[k] for g = wb[r][c] (3x3) = w[ob·12 + r][c], zero for channels past
 * Cout; G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]. Per input channel the 12 rows' 3x3 kernels are
 * gathered into g[9][12], so every step of the transform is one 12-wide vector operation (the
 * same operations, in the same order, as per row), and U gets 12 floats (one micro-kernel row)
 * per product k. */
void k_wino_pack_block(float *U, const float *wb, int Cout, int Cin, int ob) {
    const size_t plane = (size_t)((Cout + WG_RO - 1) / WG_RO) * Cin * WG_RO;
    const int nr = Cout - ob * WG_RO < WG_RO ? Cout - ob * WG_RO : WG_RO;
    for (int c = 0; c < Cin; c++) {
        float g[9][WG_RO], t[4][3][WG_RO];
        for (int r = 0; r < WG_RO; r++) {
            const float *s = wb + ((size_t)r * Cin + c) * 9;
            for (int j = 0; j < 9; j++) g[j][r] = r < nr ? s[j] : 0.0f;
        }
        for (int j = 0; j < 3; j++)
            for (int r = 0; r < WG_RO; r++) {
                t[0][j][r] = g[j][r];
                t[1][j][r] = 0.5f * (g[j][r] + g[3 + j][r] + g[6 + j][r]);
                t[2][j][r] = 0.5f * (g[j][r] - g[3 + j][r] + g[6 + j][r]);
                t[3][j][r] = g[6 + j][r];
            }
        float *d = U + ((size_t)ob * Cin + c) * WG_RO;
        for (int i = 0; i < 4; i++) {
            float *d0 = d + (size_t)(4 * i) * plane, *d1 = d0 + plane, *d2 = d1 + plane, *d3 = d2 + plane;
            for (int r = 0; r < WG_RO; r++) {
                d0[r] = t[i][0][r];
                d1[r] = 0.5f * (t[i][0][r] + t[i][1][r] + t[i][2][r]);
                d2[r] = 0.5f * (t[i][0][r] - t[i][1][r] + t[i][2][r]);
                d3[r] = t[i][2][r];
            }
        }
    }
}

void k_wino_pack(float *U, const float *w, int Cout, int Cin) {
    const int nob = (Cout + WG_RO - 1) / WG_RO;
    #pragma omp parallel for schedule(static)
    for (int ob = 0; ob < nob; ob++) k_wino_pack_block(U, w + (size_t)ob * WG_RO * Cin * 9, Cout, Cin, ob);
}
#endif   /* !KISA_VARIANT */

#if !KISA_VARIANT
/* bf16: Ub[k][ob][cp][r] = pair(U[k][ob][2cp][r], U[k][ob][2cp+1][r]) (zero past Cin). Compiled
 * once: kint_bf16_pairs picks its own kernel. */
size_t k_wino_bf16_words(int Cout, int Cin) {
    return (size_t)16 * ((Cout + WG_RO - 1) / WG_RO) * WG_RO * (size_t)((Cin + 1) / 2);
}

void k_wino_bf16_pack(uint32_t *Ub, const float *U, int Cout, int Cin) {
    const int nob = (Cout + WG_RO - 1) / WG_RO, CP = (Cin + 1) / 2;
    static const float zero[WG_RO];
    for (int k = 0; k < 16; k++)
        for (int ob = 0; ob < nob; ob++)
            for (int cp = 0; cp < CP; cp++) {
                const float *lo = U + (size_t)k * nob * Cin * WG_RO + ((size_t)ob * Cin + 2 * cp) * WG_RO;
                kint_bf16_pairs(Ub + (size_t)k * nob * CP * WG_RO + ((size_t)ob * CP + cp) * WG_RO, lo,
                                2 * cp + 1 < Cin ? lo + WG_RO : zero, WG_RO);
            }
}
#endif   /* !KISA_VARIANT */

/* One chunk: R tile rows g0 .. g0+R-1 of the batch (tile row g is row g % TH of image g / TH, so a
 * chunk may span images: the 8x8 level has 4 tile rows an image) x tile columns tx0 .. tx0+CW-1.
 * Tile t = r·CW + x of the chunk has its 4x4 input patch in band rows (c·R + r)·4 .. +3, columns
 * 2x .. 2x+3: band rows hold image rows 2ty-1 .. 2ty+2, band column 0 image column 2·tx0 - 1. */
typedef struct wg_chunk { int g0, R, tx0, CW, TH; } wg_chunk;

/* Where a conv reads and writes: input row iy (in_lo <= iy <= in_hi; others are zero padding) of
 * channel c of image n is at in + n·in_img + c·in_plane + iy·in_ld (iy may be -1 when the caller
 * made that row); output row y (< H) of channel o of image n at out (and res) + n·out_img +
 * o·out_plane + y·W. */
typedef struct wg_geom {
    const float *in;
    size_t       in_img, in_plane;
    int          in_ld, in_lo, in_hi;
    float       *out;
    const float *res;                  /* NULL, or added to the outputs (may equal out) */
    size_t       out_img, out_plane;
    int          H, W;
} wg_geom;

/* band[c][r][i][0..Wb) = input row 2ty - 1 + i, columns 2·tx0 - 1 + x, of tile row g0 + r = (n, ty);
 * zero outside the input. */
static void wg_fill_band(float *band, int Wb, const wg_geom *g, int Cin, const wg_chunk *ch) {
    const int x0 = 2 * ch->tx0 - 1, W = g->W;
    int lo = -x0, hi = W - x0;                       /* band columns that hold image columns */
    if (lo < 0) lo = 0;
    if (hi > Wb) hi = Wb;
    for (int c = 0; c < Cin; c++)
        for (int r = 0; r < ch->R; r++) {
            const int n = (ch->g0 + r) / ch->TH, ty = (ch->g0 + r) % ch->TH;
            const float *img = g->in + (size_t)n * g->in_img + (size_t)c * g->in_plane;
            for (int i = 0; i < 4; i++) {
                float *d = band + ((size_t)(c * ch->R + r) * 4 + i) * Wb;
                const int iy = 2 * ty - 1 + i;
                if (iy < g->in_lo || iy > g->in_hi || hi <= lo) { memset(d, 0, (size_t)Wb * sizeof(float)); continue; }
                memset(d, 0, (size_t)lo * sizeof(float));
                memcpy(d + lo, img + (ptrdiff_t)iy * g->in_ld + x0 + lo, (size_t)(hi - lo) * sizeof(float));
                memset(d + hi, 0, (size_t)(Wb - hi) * sizeof(float));
            }
        }
}

#if defined(__AVX512F__)
/* V[k·vs + c·Tp + t] = (Bᵀ d B)[k] for the chunk's tiles, Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0;
 * 0 1 0 -1]; 16 tiles of a tile row at a time (even/odd band columns split by permutes). */
static void wg_input(float *V, size_t vs, int Tp, const float *band, int Wb, int Cin, const wg_chunk *ch) {
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
    for (int c = 0; c < Cin; c++)
        for (int r = 0; r < ch->R; r++)
            for (int x0 = 0; x0 < ch->CW; x0 += 16) {
                const int n = ch->CW - x0 < 16 ? ch->CW - x0 : 16;
                const __mmask16 m = (__mmask16)((1u << n) - 1);
                __m512 q[4][4];
                for (int i = 0; i < 4; i++) {
                    const float *p = band + ((size_t)(c * ch->R + r) * 4 + i) * Wb + 2 * x0;
                    __m512 l0 = _mm512_loadu_ps(p), h0 = _mm512_loadu_ps(p + 16);
                    __m512 l2 = _mm512_loadu_ps(p + 2), h2 = _mm512_loadu_ps(p + 18);
                    __m512 a0 = _mm512_permutex2var_ps(l0, ev, h0), a1 = _mm512_permutex2var_ps(l0, od, h0);
                    __m512 a2 = _mm512_permutex2var_ps(l2, ev, h2), a3 = _mm512_permutex2var_ps(l2, od, h2);
                    q[i][0] = _mm512_sub_ps(a0, a2);
                    q[i][1] = _mm512_add_ps(a1, a2);
                    q[i][2] = _mm512_sub_ps(a2, a1);
                    q[i][3] = _mm512_sub_ps(a1, a3);
                }
                float *v = V + (size_t)c * Tp + (size_t)r * ch->CW + x0;
                for (int j = 0; j < 4; j++) {
                    _mm512_mask_storeu_ps(v + (size_t)(0 + j) * vs, m, _mm512_sub_ps(q[0][j], q[2][j]));
                    _mm512_mask_storeu_ps(v + (size_t)(4 + j) * vs, m, _mm512_add_ps(q[1][j], q[2][j]));
                    _mm512_mask_storeu_ps(v + (size_t)(8 + j) * vs, m, _mm512_sub_ps(q[2][j], q[1][j]));
                    _mm512_mask_storeu_ps(v + (size_t)(12 + j) * vs, m, _mm512_sub_ps(q[1][j], q[3][j]));
                }
            }
}

/* Mk[r·Tp + t] (r < 12, t < 16·NV) = Σ_c u[c·12 + r] · v[c·Tp + t]: 12 x 16·NV accumulators. */
static inline __attribute__((always_inline)) void wg_ukernel(float *Mk, int Tp, const float *u, const float *v,
                                                             int Cin, const int NV) {
    __m512 acc[WG_RO][2];
    #pragma GCC unroll 12
    for (int r = 0; r < WG_RO; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int c = 0; c < Cin; c++, u += WG_RO, v += Tp) {
        __m512 x0 = _mm512_loadu_ps(v), x1 = NV > 1 ? _mm512_loadu_ps(v + 16) : x0;
        #pragma GCC unroll 12
        for (int r = 0; r < WG_RO; r++) {
            __m512 b = _mm512_set1_ps(u[r]);
            acc[r][0] = _mm512_fmadd_ps(b, x0, acc[r][0]);
            if (NV > 1) acc[r][1] = _mm512_fmadd_ps(b, x1, acc[r][1]);
        }
    }
    #pragma GCC unroll 12
    for (int r = 0; r < WG_RO; r++) {
        _mm512_storeu_ps(Mk + (size_t)r * Tp, acc[r][0]);
        if (NV > 1) _mm512_storeu_ps(Mk + (size_t)r * Tp + 16, acc[r][1]);
    }
}

static void wg_gemm_block(float *Mk, int Tp, const float *u, const float *v, int Cin) {
    int t = 0;
    for (; t + 32 <= Tp; t += 32) wg_ukernel(Mk + t, Tp, u, v + t, Cin, 2);
    if (t < Tp) wg_ukernel(Mk + t, Tp, u, v + t, Cin, 1);   /* Tp is a multiple of 16 */
}

/* out rows of the chunk for channels o0 .. o1-1 = Aᵀ M A + b (+ res), Aᵀ = [1 1 1 0; 0 1 -1 -1];
 * M[k·ms + (o - o0)·Tp + t]. Pixels of a tile row interleaved from the two output columns. */
static void wg_output(const wg_geom *g, const float *M, size_t ms, int Tp, const float *b, int o0, int o1,
                      const wg_chunk *ch) {
    float *out = g->out;
    const float *res = g->res;
    const int H = g->H, W = g->W;
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    for (int o = o0; o < o1; o++) {
        const __m512 bo = _mm512_set1_ps(b ? b[o] : 0.0f);
        for (int r = 0; r < ch->R; r++) {
            const int n = (ch->g0 + r) / ch->TH, ty = (ch->g0 + r) % ch->TH;
            const size_t plane = (size_t)n * g->out_img + (size_t)o * g->out_plane;
            for (int x0 = 0; x0 < ch->CW; x0 += 16) {
                const float *mo = M + (size_t)(o - o0) * Tp + (size_t)r * ch->CW + x0;
                __m512 q[2][4];
                for (int j = 0; j < 4; j++) {
                    __m512 m0 = _mm512_loadu_ps(mo + (size_t)j * ms), m1 = _mm512_loadu_ps(mo + (size_t)(4 + j) * ms);
                    __m512 m2 = _mm512_loadu_ps(mo + (size_t)(8 + j) * ms), m3 = _mm512_loadu_ps(mo + (size_t)(12 + j) * ms);
                    q[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                    q[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
                }
                const int px = 2 * (ch->tx0 + x0), nx = W - px < 32 ? W - px : 32;
                const int n0 = nx < 16 ? nx : 16, n1 = nx - 16 > 0 ? nx - 16 : 0;
                const __mmask16 k0 = (__mmask16)((1u << n0) - 1), k1 = (__mmask16)((1u << n1) - 1);
                for (int i = 0; i < 2; i++) {
                    const int y = 2 * ty + i;
                    if (y >= H) break;
                    __m512 e = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(q[i][0], q[i][1]), q[i][2]), bo);
                    __m512 f = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(q[i][1], q[i][2]), q[i][3]), bo);
                    __m512 y0 = _mm512_permutex2var_ps(e, lo, f), y1 = _mm512_permutex2var_ps(e, hi, f);
                    const size_t at = plane + (size_t)y * W + px;
                    float *d = out + at;
                    if (res) {
                        y0 = _mm512_add_ps(y0, _mm512_maskz_loadu_ps(k0, res + at));
                        y1 = _mm512_add_ps(y1, _mm512_maskz_loadu_ps(k1, res + at + 16));
                    }
                    _mm512_mask_storeu_ps(d, k0, y0);
                    _mm512_mask_storeu_ps(d + 16, k1, y1);
                }
            }
        }
    }
}
#else
static void wg_input(float *V, size_t vs, int Tp, const float *band, int Wb, int Cin, const wg_chunk *ch) {
    for (int c = 0; c < Cin; c++)
        for (int r = 0; r < ch->R; r++)
            for (int x = 0; x < ch->CW; x++) {
                float q[4][4];
                for (int i = 0; i < 4; i++) {
                    const float *p = band + ((size_t)(c * ch->R + r) * 4 + i) * Wb + 2 * x;
                    q[i][0] = p[0] - p[2];
                    q[i][1] = p[1] + p[2];
                    q[i][2] = p[2] - p[1];
                    q[i][3] = p[1] - p[3];
                }
                float *v = V + (size_t)c * Tp + (size_t)r * ch->CW + x;
                for (int j = 0; j < 4; j++) {
                    v[(size_t)(0 + j) * vs] = q[0][j] - q[2][j];
                    v[(size_t)(4 + j) * vs] = q[1][j] + q[2][j];
                    v[(size_t)(8 + j) * vs] = q[2][j] - q[1][j];
                    v[(size_t)(12 + j) * vs] = q[1][j] - q[3][j];
                }
            }
}

static void wg_gemm_block(float *Mk, int Tp, const float *u, const float *v, int Cin) {
    for (int r = 0; r < WG_RO; r++) {
        float *m = Mk + (size_t)r * Tp;
        for (int t = 0; t < Tp; t++) m[t] = 0.0f;
        for (int c = 0; c < Cin; c++) {
            const float w = u[(size_t)c * WG_RO + r], *vc = v + (size_t)c * Tp;
            for (int t = 0; t < Tp; t++) m[t] += w * vc[t];
        }
    }
}

static void wg_output(const wg_geom *g, const float *M, size_t ms, int Tp, const float *b, int o0, int o1,
                      const wg_chunk *ch) {
    float *out = g->out;
    const float *res = g->res;
    const int H = g->H, W = g->W;
    for (int o = o0; o < o1; o++) {
        const float bo = b ? b[o] : 0.0f;
        for (int r = 0; r < ch->R; r++) {
            const int n = (ch->g0 + r) / ch->TH, ty = (ch->g0 + r) % ch->TH;
            const size_t plane = (size_t)n * g->out_img + (size_t)o * g->out_plane;
            for (int x = 0; x < ch->CW; x++) {
                const float *mo = M + (size_t)(o - o0) * Tp + (size_t)r * ch->CW + x;
                float q[2][4];
                for (int j = 0; j < 4; j++) {
                    q[0][j] = mo[j * ms] + mo[(4 + j) * ms] + mo[(8 + j) * ms];
                    q[1][j] = mo[(4 + j) * ms] - mo[(8 + j) * ms] - mo[(12 + j) * ms];
                }
                const int px = 2 * (ch->tx0 + x);
                for (int i = 0; i < 2; i++) {
                    const int y = 2 * ty + i;
                    if (y >= H) break;
                    const float yy[2] = {q[i][0] + q[i][1] + q[i][2] + bo, q[i][1] - q[i][2] - q[i][3] + bo};
                    for (int j = 0; j < 2 && px + j < W; j++) {
                        const size_t at = plane + (size_t)y * W + px + j;
                        out[at] = yy[j] + (res ? res[at] : 0.0f);
                    }
                }
            }
        }
    }
}
#endif

/* The geometry of a whole-image conv: in [N, Cin, H, W] (zero padding all round), out and res
 * [N, Cout, H, W]. */
static wg_geom wg_geom_nchw(float *out, const float *in, const float *res, int Cin, int H, int W, int Cout) {
    const size_t HW = (size_t)H * W;
    return (wg_geom){in, (size_t)Cin * HW, HW, W, 0, H - 1, out, res, (size_t)Cout * HW, HW, H, W};
}

/* How a conv's N x H x W output is cut into chunks: CW tile columns x R tile rows (tile rows run
 * over the whole batch), WG_CHUNK_TILES tiles or fewer; nchunk of them, Tp tiles padded to 16;
 * a band of Wb floats a row. */
typedef struct wg_cut { int TH, TW, GR, R, CW, ncb, Tp, Wb; long nchunk; } wg_cut;

static wg_cut wg_cut_of(int N, int H, int W) {
    wg_cut k;
    k.TH = (H + 1) / 2;
    k.TW = (W + 1) / 2;
    k.CW = k.TW < WG_CHUNK_TILES ? k.TW : WG_CHUNK_TILES;
    k.GR = N * k.TH;
    k.R = WG_CHUNK_TILES / k.CW;
    if (k.R > k.GR) k.R = k.GR;
    k.ncb = (k.TW + k.CW - 1) / k.CW;
    k.nchunk = (long)((k.GR + k.R - 1) / k.R) * k.ncb;
    k.Tp = (k.R * k.CW + 15) / 16 * 16;
    k.Wb = 2 * ((k.CW + 15) / 16 * 16) + 18;   /* + the whole-vector reads past the last tile */
    return k;
}

/* Chunk c of the cut (the last row and column of chunks may be short). */
static wg_chunk wg_chunk_at(const wg_cut *k, long c) {
    wg_chunk ch = {(int)(c / k->ncb) * k->R, k->R, (int)(c % k->ncb) * k->CW, k->CW, k->TH};
    if (k->GR - ch.g0 < k->R) ch.R = k->GR - ch.g0;
    if (k->TW - ch.tx0 < k->CW) ch.CW = k->TW - ch.tx0;
    return ch;
}

/* V [16][Cin][Tp] = the input transforms of chunk ch for input channels c0 .. c1-1 (band: scratch
 * for those channels), whole Tp rows (zero past the tiles). */
static void wg_chunk_input(const wg_geom *g, const wg_chunk *ch, float *band, int Wb, float *V, int Cin, int c0,
                           int c1, int Tp) {
    const size_t vs = (size_t)Cin * Tp;
    const int nt = ch->R * ch->CW;
    wg_geom gc = *g;
    gc.in += (size_t)c0 * g->in_plane;
    wg_fill_band(band, Wb, &gc, c1 - c0, ch);
    wg_input(V + (size_t)c0 * Tp, vs, Tp, band, Wb, c1 - c0, ch);
    if (nt < Tp)                                     /* a short chunk: the GEMM reads whole rows */
        for (int k = 0; k < 16; k++)
            for (int c = c0; c < c1; c++) memset(V + k * vs + (size_t)c * Tp + nt, 0, (size_t)(Tp - nt) * sizeof(float));
}

/* Output channel blocks whose products M are made and transformed back together (96 channels:
 * 16 x 96 x 64 floats, 393 KB, stay in L2 between the GEMMs and the output transform). */
#define WG_GROUP_OB 8

/* One task: chunk ch, output channel blocks ob0 .. ob1-1. Scratch (per thread): band, V, M. */
/* bf16 (Ub given): V is rounded into channel pairs Vb [16][CP][Tp] (words) and the GEMMs run on
 * Ub · Vb with f32 sums (kernels/bf16.c); the transforms stay f32. zero: Tp zero floats. */
static void wg_task(const wg_geom *g, const float *U, const uint32_t *Ub, const float *b, int Cin, int Cout,
                    const wg_chunk *ch, int ob0, int ob1, float *band, int Wb, float *V, float *M, uint32_t *Vb,
                    const float *zero, int Tp) {
    const int nob = (Cout + WG_RO - 1) / WG_RO;
    const size_t vs = (size_t)Cin * Tp, ms = (size_t)WG_GROUP_OB * WG_RO * Tp, plane = (size_t)nob * Cin * WG_RO;
    wg_chunk_input(g, ch, band, Wb, V, Cin, 0, Cin, Tp);
    const int CP = (Cin + 1) / 2;
    if (Ub)
        for (int k = 0; k < 16; k++)
            for (int cp = 0; cp < CP; cp++)
                kint_bf16_pairs(Vb + ((size_t)k * CP + cp) * Tp, V + k * vs + (size_t)2 * cp * Tp,
                                2 * cp + 1 < Cin ? V + k * vs + (size_t)(2 * cp + 1) * Tp : zero, Tp);
    for (int g0 = ob0; g0 < ob1; g0 += WG_GROUP_OB) {
        const int g1 = g0 + WG_GROUP_OB < ob1 ? g0 + WG_GROUP_OB : ob1;
        if (Ub) {
            const size_t planeb = (size_t)nob * CP * WG_RO;
            for (int k = 0; k < 16; k++)
                for (int ob = g0; ob < g1; ob++)
                    for (int t = 0; t < Tp; t += 32)
                        kint_bf16_block(M + k * ms + (size_t)(ob - g0) * WG_RO * Tp + t, (size_t)Tp,
                                        Ub + k * planeb + (size_t)ob * CP * WG_RO, Vb + (size_t)k * CP * Tp + t,
                                        (size_t)Tp, CP, WG_RO, Tp - t < 32 ? Tp - t : 32, NULL, 0);
            wg_output(g, M, ms, Tp, b, g0 * WG_RO, g1 * WG_RO < Cout ? g1 * WG_RO : Cout, ch);
            continue;
        }
        for (int k = 0; k < 16; k++)
            for (int ob = g0; ob < g1; ob++)
                wg_gemm_block(M + k * ms + (size_t)(ob - g0) * WG_RO * Tp, Tp,
                              U + k * plane + (size_t)ob * Cin * WG_RO, V + k * vs, Cin);
        wg_output(g, M, ms, Tp, b, g0 * WG_RO, g1 * WG_RO < Cout ? g1 * WG_RO : Cout, ch);
    }
}

static int wg_conv(sdc_arena *a, const wg_geom *geo, const float *U, const uint32_t *Ub, const float *b, int N,
                   int Cin, int Cout) {
    const wg_cut cut = wg_cut_of(N, geo->H, geo->W);
    const int nob = (Cout + WG_RO - 1) / WG_RO, R = cut.R, Tp = cut.Tp;
    const long nchunk = cut.nchunk;
    /* too few chunks for the threads: split the output channels into groups as well */
    int nthr = omp_get_max_threads(), ngrp = 1;
    while (nchunk * ngrp < 2L * nthr && nob / (ngrp * 2) >= 4) ngrp *= 2;
    const long ntask = nchunk * ngrp;
    if (nthr > ntask) nthr = (int)ntask;
    const int gob = (nob + ngrp - 1) / ngrp, Wb = cut.Wb;
    const size_t nband = (size_t)Cin * R * 4 * Wb, nv = (size_t)16 * Cin * Tp, nm = (size_t)16 * WG_GROUP_OB * WG_RO * Tp;
    /* bf16: + Vb (16 x Cin/2 x Tp words) and Tp zero floats */
    const size_t nvb = Ub ? (size_t)16 * ((Cin + 1) / 2) * Tp + Tp : 0;
    const size_t per = (nband + nv + nm + nvb + 16 + 15) / 16 * 16;   /* + the output's whole-vector reads */
    sdc_arena_mark mk = sdc_arena_get_mark(a);
    float *scratch = sdc_arena_f32(a, (size_t)nthr * per);
    if (!scratch) return 0;
    #pragma omp parallel for num_threads(nthr) schedule(dynamic, 1)
    for (long t = 0; t < ntask; t++) {
        const long c = t / ngrp;
        const int g = (int)(t % ngrp), ob0 = g * gob, ob1 = ob0 + gob < nob ? ob0 + gob : nob;
        const wg_chunk ch = wg_chunk_at(&cut, c);
        float *s = scratch + (size_t)omp_get_thread_num() * per;
        float *zero = Ub ? s + nband + nv + nm + nvb - Tp : NULL;
        if (zero) memset(zero, 0, (size_t)Tp * sizeof(float));
        if (ob0 < ob1)
            wg_task(geo, U, Ub, b, Cin, Cout, &ch, ob0, ob1, s, Wb, s + nband, s + nband + nv,
                    (uint32_t *)(s + nband + nv + nm), zero, Tp);
    }
    sdc_arena_reset(a, mk);
    return 1;
}

int KISA_NAME(k_conv3x3_wino)(sdc_arena *a, float *out, const float *in, const float *U, const float *b,
                              const float *res, int N, int Cin, int H, int W, int Cout) {
    KISA_RET(k_conv3x3_wino, a, out, in, U, b, res, N, Cin, H, W, Cout);
    if (N <= 0 || Cin <= 0 || Cout <= 0 || H <= 0 || W <= 0) return 1;
    const wg_geom g = wg_geom_nchw(out, in, res, Cin, H, W, Cout);
    return wg_conv(a, &g, U, NULL, b, N, Cin, Cout);
}

int KISA_NAME(k_conv3x3_wino_bf16)(sdc_arena *a, float *out, const float *in, const uint32_t *Ub, const float *b,
                                   const float *res, int N, int Cin, int H, int W, int Cout) {
    KISA_RET(k_conv3x3_wino_bf16, a, out, in, Ub, b, res, N, Cin, H, W, Cout);
    if (N <= 0 || Cin <= 0 || Cout <= 0 || H <= 0 || W <= 0) return 1;
    const wg_geom g = wg_geom_nchw(out, in, res, Cin, H, W, Cout);
    return wg_conv(a, &g, NULL, Ub, b, N, Cin, Cout);
}

/* Streaming (k_conv3x3_wino_stream): the input transforms of a super-chunk of chunks, at most
 * WS_V_BYTES (they stay in L3 while every group of output channels runs against them), and per
 * thread one group of output blocks packed at a time, at most WS_U_BYTES (a product k of it,
 * 1/16, stays in L2 while a chunk's V[k] streams past it). */
#define WS_V_BYTES ((size_t)12 << 20)
#define WS_U_BYTES ((size_t)4 << 20)

int KISA_NAME(k_conv3x3_wino_stream)(sdc_arena *a, float *out, const float *in, k_rows_fn rows, void *ctx,
                                     const float *b, const float *res, int N, int Cin, int H, int W, int Cout) {
    KISA_RET(k_conv3x3_wino_stream, a, out, in, rows, ctx, b, res, N, Cin, H, W, Cout);
    if (N <= 0 || Cin <= 0 || Cout <= 0 || H <= 0 || W <= 0) return 1;
    const wg_geom geo = wg_geom_nchw(out, in, res, Cin, H, W, Cout);
    const wg_cut cut = wg_cut_of(N, H, W);
    const int nob = (Cout + WG_RO - 1) / WG_RO, Tp = cut.Tp;
    const size_t nv = (size_t)16 * Cin * Tp, nband = (size_t)Cin * cut.R * 4 * cut.Wb;
    long S = (long)(WS_V_BYTES / (nv * sizeof(float)));             /* chunks per super-chunk */
    if (S < 1) S = 1;
    if (S > cut.nchunk) S = cut.nchunk;
    int G = (int)(WS_U_BYTES / ((size_t)16 * WG_RO * Cin * sizeof(float)));   /* output blocks per group */
    if (G < 1) G = 1;
    if (G > WG_GROUP_OB) G = WG_GROUP_OB;
    const int ngrp = (nob + G - 1) / G;
    const size_t nu = (size_t)16 * G * WG_RO * Cin, nwb = (size_t)WG_RO * Cin * 9, ms = (size_t)G * WG_RO * Tp;
    size_t per = nu + nwb + 16 * ms;                                /* phase B: U group, rows, M */
    if (nband > per) per = nband;                                   /* phase A: the band */
    per = (per + 16 + 15) / 16 * 16;                                /* + the output's whole-vector reads */
    const int nthr = omp_get_max_threads();
    sdc_arena_mark mk = sdc_arena_get_mark(a);
    float *V = sdc_arena_f32(a, (size_t)S * nv), *scratch = sdc_arena_f32(a, (size_t)nthr * per);
    if (!V || !scratch) { sdc_arena_reset(a, mk); return 0; }
    int bad = 0;
    for (long c0 = 0; c0 < cut.nchunk && !bad; c0 += S) {
        const long c1 = c0 + S < cut.nchunk ? c0 + S : cut.nchunk;
        /* fewer chunks than threads (small images, deep levels): each chunk's channels split too */
        const int parts = c1 - c0 >= nthr ? 1 : (nthr + (int)(c1 - c0) - 1) / (int)(c1 - c0);
        const int cp = (Cin + parts - 1) / parts;
        #pragma omp parallel for num_threads(nthr) schedule(dynamic, 1)
        for (long t = 0; t < (c1 - c0) * parts; t++) {
            const long c = c0 + t / parts;
            const int a0 = (int)(t % parts) * cp, a1 = a0 + cp < Cin ? a0 + cp : Cin;
            const wg_chunk ch = wg_chunk_at(&cut, c);
            if (a0 < a1)
                wg_chunk_input(&geo, &ch, scratch + (size_t)omp_get_thread_num() * per, cut.Wb,
                               V + (size_t)(c - c0) * nv, Cin, a0, a1, Tp);
        }
        #pragma omp parallel for num_threads(nthr) schedule(dynamic, 1) reduction(|:bad)
        for (int g = 0; g < ngrp; g++) {
            float *Ug = scratch + (size_t)omp_get_thread_num() * per, *wb = Ug + nu, *M = wb + nwb;
            const int ob0 = g * G, ob1 = ob0 + G < nob ? ob0 + G : nob;
            const int o0 = ob0 * WG_RO, o1 = ob1 * WG_RO < Cout ? ob1 * WG_RO : Cout;
            const size_t plane = (size_t)(ob1 - ob0) * Cin * WG_RO;      /* k_wino_pack_block's, for o1 - o0 */
            int fail = 0;
            for (int ob = ob0; ob < ob1 && !fail; ob++) {
                const int nr = Cout - ob * WG_RO < WG_RO ? Cout - ob * WG_RO : WG_RO;
                fail = rows(ctx, wb, ob * WG_RO, nr) != 0;
                if (!fail) k_wino_pack_block(Ug, wb, o1 - o0, Cin, ob - ob0);
            }
            if (fail) { bad = 1; continue; }
            for (long c = c0; c < c1; c++) {
                const wg_chunk ch = wg_chunk_at(&cut, c);
                const float *Vc = V + (size_t)(c - c0) * nv;
                for (int k = 0; k < 16; k++)
                    for (int ob = ob0; ob < ob1; ob++)
                        wg_gemm_block(M + k * ms + (size_t)(ob - ob0) * WG_RO * Tp, Tp,
                                      Ug + k * plane + (size_t)(ob - ob0) * Cin * WG_RO, Vc + (size_t)k * Cin * Tp, Cin);
                wg_output(&geo, M, ms, Tp, b, o0, o1, &ch);
            }
        }
    }
    sdc_arena_reset(a, mk);
    return !bad;
}

int KISA_NAME(k_conv3x3_wino_band)(sdc_arena *a, float *out, size_t out_plane, int add, const float *band,
                                   int band_ld, size_t band_plane, const float *U, const float *b, int Cin,
                                   int R, int W, int Cout) {
    KISA_RET(k_conv3x3_wino_band, a, out, out_plane, add, band, band_ld, band_plane, U, b, Cin, R, W, Cout);
    if (Cin <= 0 || Cout <= 0 || R <= 0 || W <= 0) return 1;
    /* band row 0 is input row -1: rows -1 .. R are all there (zero rows are the caller's padding) */
    const wg_geom g = {band + band_ld, 0, band_plane, band_ld, -1, R, out, add ? out : NULL, 0, out_plane, R, W};
    return wg_conv(a, &g, U, NULL, b, 1, Cin, Cout);
}

int KISA_NAME(k_conv3x3_wino_band_bf16)(sdc_arena *a, float *out, size_t out_plane, int add, const float *band,
                                        int band_ld, size_t band_plane, const uint32_t *Ub, const float *b, int Cin,
                                        int R, int W, int Cout) {
    KISA_RET(k_conv3x3_wino_band_bf16, a, out, out_plane, add, band, band_ld, band_plane, Ub, b, Cin, R, W, Cout);
    if (Cin <= 0 || Cout <= 0 || R <= 0 || W <= 0) return 1;
    const wg_geom g = {band + band_ld, 0, band_plane, band_ld, -1, R, out, add ? out : NULL, 0, out_plane, R, W};
    return wg_conv(a, &g, NULL, Ub, b, 1, Cin, Cout);
}
