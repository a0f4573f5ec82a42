/* sampler.c — the sampling loop and diffusers 0.25.1's schedulers, step by step, in C.
 *
 * Owns: the training tables (betas → alphas_cumprod → σ), each scheduler's set_timesteps
 * (spacings leading / linspace / trailing, steps_offset, Karras σ), scale_model_input, step and
 * add_noise, the img2img start (get_timesteps) and the loop that calls the model. Does not own:
 * the model (a callback), CFG (inside the callback), the initial noise (the caller draws it from
 * the same generator first) or the VAE.
 *
 * Schedulers (diffusers class, as StableDiffusionPipeline drives it):
 *   euler    EulerDiscreteScheduler            euler_a  EulerAncestralDiscreteScheduler
 *   heun     HeunDiscreteScheduler             ddim     DDIMScheduler (eta 0)
 *   pndm     PNDMScheduler (PLMS, skip_prk_steps) dpm++2m DPMSolverMultistepScheduler
 *                                                       (dpmsolver++, order 2, midpoint,
 *   lcm      LCMScheduler (original_inference_steps 50,  lower_order_final)
 *            timestep_scaling 10)
 * with SD 1.5's scheduler_config.json (scaled_linear 0.00085 → 0.012, 1000 steps, steps_offset 1,
 * set_alpha_to_one false, clip_sample false) read by from_config: a missing timestep_spacing
 * takes each class's default, which is what sdc_default_spacing returns.
 *
 * Precision follows diffusers: the training tables are float32 torch tensors built exactly as
 * torch 1.13 builds them on CPU (its vectorised linspace, cumprod accumulated in double);
 * timesteps, np.interp, Karras σ and σ→t run in float64 as numpy does and are then cast to
 * float32 where diffusers casts; every per-element update is float32 in diffusers' operation
 * order, each operation rounded on its own (no FMA contraction). */
#include "pipeline/sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* Named limits. */
enum {
    /* Training schedules are 1000 steps for every SD release; 100000 is far beyond any real
     * model and keeps the tables (3 floats per step) small. */
    SDC_MAX_TRAIN_STEPS = 100000,
    SDC_PNDM_ETS = 4,          /* PLMS keeps the last 4 model outputs */
    SDC_LCM_ORIGINAL_STEPS = 50,
};
#define SDC_LCM_TIMESTEP_SCALING 10.0f
#define SDC_KARRAS_RHO 7.0

/* ------------------------------------------------------------------------------------------ */
/* Names                                                                                       */

static const char *const method_names[] = {"euler", "euler_a", "heun", "ddim", "pndm",
                                           "dpm++2m", "lcm"};
enum { N_METHODS = (int)(sizeof method_names / sizeof method_names[0]) };

int sdc_sample_method_from_name(const char *s) {
    if (!s) return -1;
    for (int i = 0; i < N_METHODS; i++)
        if (!strcmp(s, method_names[i])) return i;
    if (!strcmp(s, "dpmpp_2m") || !strcmp(s, "dpmpp2m")) return SDC_SAMPLE_DPMPP_2M;
    return -1;
}

const char *sdc_sample_method_name(int m) {
    return (m >= 0 && m < N_METHODS) ? method_names[m] : "?";
}

/* SD 1.5's scheduler_config.json has no timestep_spacing: from_config gives the class default
 * (DDIM, PNDM, LCM: "leading"; Euler, Euler a, Heun, DPM-Solver++: "linspace"). */
sdc_spacing sdc_default_spacing(sdc_sample_method m) {
    switch (m) {
    case SDC_SAMPLE_DDIM: case SDC_SAMPLE_PNDM: case SDC_SAMPLE_LCM: return SDC_SPACING_LEADING;
    default: return SDC_SPACING_LINSPACE;
    }
}

static const char *const spacing_names[] = {"leading", "linspace", "trailing"};

const char *sdc_spacing_name(sdc_spacing s) {
    return (s >= 0 && s <= SDC_SPACING_TRAILING) ? spacing_names[s] : "default";
}

int sdc_spacing_from_name(const char *s) {
    for (int i = 0; s && i < 3; i++)
        if (!strcmp(s, spacing_names[i])) return i;
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* numpy / torch arithmetic helpers                                                            */

/* The double a user most likely meant by a float: diffusers' config values are Python floats
 * (0.00085, 0.012, strength 0.7), the options carry float32. Any decimal of at most 6
 * significant digits survives float → "%.6g" → double unchanged. */
static double float_to_decimal(float f) {
    char b[48];
    snprintf(b, sizeof b, "%.6g", (double)f);
    return strtod(b, NULL);
}

/* np.round: round half to even. */
static double np_round(double v) { return nearbyint(v); }

/* np.linspace(start, stop, num, endpoint) element i, in float64. */
static double np_linspace(double start, double stop, int num, int endpoint, int i) {
    int div = endpoint ? num - 1 : num;
    if (div <= 0) return start;
    if (endpoint && i == num - 1) return stop;
    double step = (stop - start) / div;
    return (double)i * step + start;
}

/* np.arange(start, 0, -step) for step > 0, as numpy fills it: len = ceil(-start / -step),
 * a[0] = start, a[1] = start - step, a[i] = start + i·(a[1] − a[0]). Returns the length. */
static int np_arange_down(double start, double step, double *out, int cap) {
    double len = ceil((0.0 - start) / (-step));
    int n = len > 0 ? (len > cap ? cap : (int)len) : 0;
    if (n > 0) out[0] = start;
    if (n > 1) out[1] = start + (-step);
    double delta = n > 1 ? out[1] - out[0] : 0.0;
    for (int i = 2; i < n; i++) out[i] = start + (double)i * delta;
    return n;
}

/* np.interp(x, arange(T), fp) (numpy 1.24's arr_interp), fp ascending in the index. */
static double np_interp_index(double x, const float *fp, int T) {
    if (x <= 0.0) return fp[0];
    if (x >= (double)(T - 1)) return fp[T - 1];
    int j = (int)floor(x);
    if ((double)j == x) return fp[j];
    double slope = ((double)fp[j + 1] - (double)fp[j]) / 1.0;
    return slope * (x - (double)j) + (double)fp[j];
}

/* ------------------------------------------------------------------------------------------ */
/* Training tables: torch.linspace(√β0, √β1, T, float32)² → cumprod(1 − β) → σ = √((1−ᾱ)/ᾱ)   */

/* torch 1.13's CPU linspace kernel (float32): step = (end − start)/(T − 1); element i is
 * start + step·i below T/2, end − step·(T−1−i) above; whole 16-element runs go through
 * Vectorized<float>::arange(base at the run's 8-lane vector, step) with FMA. */
static float torch_linspace_f32(float start, float end, int T, int i) {
    float step = (end - start) / (float)(T - 1);
    int half = T / 2;
    int nvec = (T / 16) * 16;
    if (i < nvec) {
        int i0 = i / 8 * 8, j = i % 8;
        float base = i0 < half ? fmaf(step, (float)i0, start) : fmaf(-step, (float)(T - i0 - 1), end);
        return fmaf((float)j, step, base);
    }
    return i < half ? fmaf(step, (float)i, start) : fmaf(-step, (float)(T - i - 1), end);
}

typedef struct tables {
    int    T;
    float *ac;      /* [T] alphas_cumprod */
    float *sig;     /* [T] ((1 − ᾱ)/ᾱ)^0.5, indexed by t */
} tables;

static void tables_free(tables *t) { free(t->ac); free(t->sig); t->ac = t->sig = NULL; }

static int tables_make(tables *t, int T, double beta_start, double beta_end, sdc_err *e) {
    t->T = T;
    t->ac = malloc((size_t)T * sizeof *t->ac);
    t->sig = malloc((size_t)T * sizeof *t->sig);
    if (!t->ac || !t->sig) { tables_free(t); return sdc_errf(e, "sampler: out of memory"); }
    float s0 = (float)pow(beta_start, 0.5), s1 = (float)pow(beta_end, 0.5);
    double acc = 1.0;                       /* torch's CPU cumprod accumulates in double */
    for (int i = 0; i < T; i++) {
        float sb = T > 1 ? torch_linspace_f32(s0, s1, T, i) : s0;
        float beta = sb * sb;
        float alpha = 1.0f - beta;
        acc *= (double)alpha;
        t->ac[i] = (float)acc;
        t->sig[i] = sqrtf((1.0f - t->ac[i]) / t->ac[i]);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Karras σ and σ → t (k-diffusion, as diffusers copies it)                                    */

/* sigmas[i] = (σmax^(1/ρ) + ramp_i·(σmin^(1/ρ) − σmax^(1/ρ)))^ρ, ramp = linspace(0, 1, n). */
static void karras_sigmas(double sigma_min, double sigma_max, int n, double *out) {
    double min_inv = pow(sigma_min, 1.0 / SDC_KARRAS_RHO), max_inv = pow(sigma_max, 1.0 / SDC_KARRAS_RHO);
    for (int i = 0; i < n; i++) {
        double ramp = np_linspace(0.0, 1.0, n, 1, i);
        out[i] = pow(max_inv + ramp * (min_inv - max_inv), SDC_KARRAS_RHO);
    }
}

/* _sigma_to_t: piecewise-linear inverse of log σ(t) over the float32 log table. */
static double sigma_to_t(double sigma, const float *log_sig, int T) {
    double ls = log(sigma > 1e-10 ? sigma : 1e-10);
    /* low_idx = argmax(cumsum(ls − log_sig ≥ 0)) clipped to T − 2 */
    int best = 0, cnt = 0, best_cnt = -1;
    for (int i = 0; i < T; i++) {
        cnt += (ls - (double)log_sig[i]) >= 0.0;
        if (cnt > best_cnt) { best_cnt = cnt; best = i; }
    }
    int low = best > T - 2 ? T - 2 : best, high = low + 1;
    double lo = log_sig[low], hi = log_sig[high];
    double w = (lo - ls) / (lo - hi);
    w = w < 0 ? 0 : (w > 1 ? 1 : w);
    return (1.0 - w) * low + w * high;
}

/* ------------------------------------------------------------------------------------------ */
/* The plan: set_timesteps of each scheduler, then get_timesteps of the img2img pipeline       */

typedef struct resolved {
    sdc_sample_method method;
    sdc_schedule schedule;
    sdc_spacing spacing;
    sdc_prediction pred;
    int steps, T, offset;
    double strength, beta_start, beta_end;
} resolved;

static int resolve(const sdc_sampler_opts *o, resolved *r, sdc_err *e) {
    if (!o) return sdc_errf(e, "sampler: no options");
    if ((int)o->method < 0 || (int)o->method >= N_METHODS)
        return sdc_errf(e, "sampler: unknown sampling method %d", (int)o->method);
    r->method = o->method;
    r->schedule = o->schedule;
    if (r->schedule != SDC_SCHED_DISCRETE && r->schedule != SDC_SCHED_KARRAS)
        return sdc_errf(e, "sampler: unknown scheduler %d", (int)o->schedule);
    r->spacing = o->spacing == SDC_SPACING_DEFAULT ? sdc_default_spacing(o->method) : o->spacing;
    if (r->spacing < SDC_SPACING_LEADING || r->spacing > SDC_SPACING_TRAILING)
        return sdc_errf(e, "sampler: unknown timestep spacing %d", (int)o->spacing);
    if (o->prediction != SDC_PRED_EPS && o->prediction != SDC_PRED_V)
        return sdc_errf(e, "sampler: unknown prediction type %d", (int)o->prediction);
    r->pred = o->prediction;
    r->T = o->num_train_timesteps > 0 ? o->num_train_timesteps : 1000;
    if (r->T < 2 || r->T > SDC_MAX_TRAIN_STEPS)
        return sdc_errf(e, "sampler: num_train_timesteps %d out of range [2, %d]", r->T,
                        SDC_MAX_TRAIN_STEPS);
    r->beta_start = o->beta_start > 0 ? float_to_decimal(o->beta_start) : 0.00085;
    r->beta_end = o->beta_end > 0 ? float_to_decimal(o->beta_end) : 0.012;
    if (!(r->beta_start < 1.0) || !(r->beta_end < 1.0) || r->beta_end < r->beta_start)
        return sdc_errf(e, "sampler: bad beta range %g .. %g", r->beta_start, r->beta_end);
    r->offset = 1;                                 /* SD 1.x/2.x steps_offset */
    r->steps = o->steps;
    if (r->steps < 1 || r->steps > r->T)
        return sdc_errf(e, "sampler: steps %d out of range [1, %d] (num_train_timesteps)",
                        o->steps, r->T);
    if (!(o->strength > 0.0f && o->strength <= 1.0f))
        return sdc_errf(e, "sampler: strength %g must be in (0, 1]", (double)o->strength);
    r->strength = float_to_decimal(o->strength);
    if (r->schedule == SDC_SCHED_KARRAS && r->method != SDC_SAMPLE_EULER &&
        r->method != SDC_SAMPLE_HEUN && r->method != SDC_SAMPLE_DPMPP_2M)
        return sdc_errf(e, "sampler: karras sigmas are not available for %s (diffusers 0.25 "
                        "offers use_karras_sigmas for euler, heun and dpm++2m)",
                        sdc_sample_method_name(r->method));
    if (r->method == SDC_SAMPLE_LCM && r->steps > SDC_LCM_ORIGINAL_STEPS)
        return sdc_errf(e, "sampler: lcm takes at most %d steps (original_inference_steps), "
                        "got %d", SDC_LCM_ORIGINAL_STEPS, r->steps);
    return 0;
}

/* Integer timesteps of DDIM (descending) for a spacing; returns the count. */
static int ddim_timesteps(const resolved *r, double *ts, int cap) {
    int n = r->steps, T = r->T;
    if (r->spacing == SDC_SPACING_LINSPACE) {
        for (int i = 0; i < n; i++) ts[i] = np_round(np_linspace(0, T - 1, n, 1, n - 1 - i));
        return n;
    }
    if (r->spacing == SDC_SPACING_LEADING) {
        int ratio = T / n;
        for (int i = 0; i < n; i++) ts[i] = (double)((n - 1 - i) * ratio + r->offset);
        return n;
    }
    int m = np_arange_down(T, (double)T / n, ts, cap);
    for (int i = 0; i < m; i++) ts[i] = (double)(int64_t)np_round(ts[i]) - 1;
    return m;
}

/* PNDM's _timesteps (ascending), then the PLMS order [:-1] + [-2:-1] + [-1:], reversed. */
static int pndm_timesteps(const resolved *r, double *ts, int cap) {
    int n = r->steps, T = r->T, m;
    double *asc = malloc((size_t)(cap + 1) * sizeof *asc);
    if (!asc) return -1;
    if (r->spacing == SDC_SPACING_LINSPACE) {
        for (int i = 0; i < n; i++) asc[i] = np_round(np_linspace(0, T - 1, n, 1, i));
        m = n;
    } else if (r->spacing == SDC_SPACING_LEADING) {
        int ratio = T / n;
        for (int i = 0; i < n; i++) asc[i] = (double)(i * ratio + r->offset);
        m = n;
    } else {
        double *d = malloc((size_t)(cap + 1) * sizeof *d);
        if (!d) { free(asc); return -1; }
        m = np_arange_down(T, (double)T / n, d, cap);
        for (int i = 0; i < m; i++) asc[i] = np_round(d[m - 1 - i]) - 1;
        free(d);
    }
    int k = 0;
    double *plms = malloc((size_t)(m + 1) * sizeof *plms);
    if (!plms) { free(asc); return -1; }
    for (int i = 0; i < m - 1; i++) plms[k++] = asc[i];
    if (m >= 2) plms[k++] = asc[m - 2];
    if (m >= 1) plms[k++] = asc[m - 1];
    for (int i = 0; i < k; i++) ts[i] = plms[k - 1 - i];
    free(plms);
    free(asc);
    return k;
}

/* DPM-Solver's integer timesteps (its "leading" divides by steps + 1). */
static int dpm_timesteps(const resolved *r, double *ts, int cap) {
    int n = r->steps, T = r->T;   /* last_timestep = T (lambda_min_clipped = -inf) */
    if (r->spacing == SDC_SPACING_LINSPACE) {
        for (int i = 0; i < n; i++) ts[i] = np_round(np_linspace(0, T - 1, n + 1, 1, n - i));
        return n;
    }
    if (r->spacing == SDC_SPACING_LEADING) {
        int ratio = T / (n + 1);
        for (int i = 0; i < n; i++) ts[i] = (double)((n - i) * ratio + r->offset);
        return n;
    }
    int m = np_arange_down(T, (double)T / n, ts, cap);
    for (int i = 0; i < m; i++) ts[i] = np_round(ts[i]) - 1;
    return m;
}

/* Euler / Euler a / Heun: float32 timesteps. */
static int euler_timesteps(const resolved *r, double *ts, int cap) {
    int n = r->steps, T = r->T;
    if (r->spacing == SDC_SPACING_LINSPACE) {
        for (int i = 0; i < n; i++) ts[i] = (float)np_linspace(0, T - 1, n, 1, n - 1 - i);
        return n;
    }
    if (r->spacing == SDC_SPACING_LEADING) {
        int ratio = T / n;
        for (int i = 0; i < n; i++) ts[i] = (float)((float)((n - 1 - i) * ratio) + (float)r->offset);
        return n;
    }
    int m = np_arange_down(T, (double)T / n, ts, cap);
    for (int i = 0; i < m; i++) ts[i] = (float)((float)np_round(ts[i]) - 1.0f);
    return m;
}

/* LCM: every k-th of 50 distillation timesteps, evenly chosen. */
static int lcm_timesteps(const resolved *r, double *ts) {
    int orig = SDC_LCM_ORIGINAL_STEPS, k = r->T / orig, n = r->steps;
    for (int i = 0; i < n; i++) {
        int idx = (int)floor(np_linspace(0, orig, n, 0, i));   /* into the reversed list */
        ts[i] = (double)((orig - idx) * k - 1);
    }
    return n;
}

/* index_for_timestep: the position of t; when it occurs more than once, the second one. */
static int index_for_timestep(const sdc_sampler_plan *p, double t) {
    int first = -1;
    for (int i = 0; i < p->n_timesteps; i++)
        if (p->timesteps[i] == t) {
            if (first >= 0) return i;
            first = i;
        }
    return first;
}

void sdc_sampler_plan_free(sdc_sampler_plan *p) {
    if (!p) return;
    free(p->timesteps);
    free(p->sigmas);
    p->timesteps = NULL;
    p->sigmas = NULL;
}

/* DPM-Solver++: σ by interpolation (+ σ(t=0) appended) or Karras over the whole table (+ σmin
 * repeated); t rounded from σ for Karras. Scratch sd has room for 2·steps + 2. */
static int plan_dpm(const resolved *r, const tables *tb, const float *logsig, double *sd,
                    sdc_sampler_plan *p, int cap) {
    int n = r->steps, T = r->T, nt;
    if (r->schedule == SDC_SCHED_KARRAS) {
        karras_sigmas(tb->sig[0], tb->sig[T - 1], n, sd);
        for (int i = 0; i < n; i++) p->timesteps[i] = np_round(sigma_to_t(sd[i], logsig, T));
        for (int i = 0; i < n; i++) p->sigmas[i] = (float)sd[i];
        p->sigmas[n] = (float)sd[n - 1];
        nt = n;
    } else {
        nt = dpm_timesteps(r, p->timesteps, cap);
        for (int i = 0; i < nt; i++) p->sigmas[i] = (float)np_interp_index(p->timesteps[i], tb->sig, T);
        p->sigmas[nt] = tb->sig[0];
    }
    p->n_sigmas = nt + 1;
    return nt;
}

/* Euler, Euler a, Heun: float32 t, σ interpolated in float64 (or Karras between the first and
 * last interpolated σ, t = σ→t unrounded), 0 appended; Heun doubles every entry after the
 * first. init_noise_sigma = σmax, or √(σmax² + 1) for "leading". */
static int plan_kdiff(const resolved *r, const tables *tb, const float *logsig, double *sd,
                      sdc_sampler_plan *p, int cap) {
    int n = r->steps, T = r->T;
    int m = euler_timesteps(r, p->timesteps, cap);
    for (int i = 0; i < m; i++) sd[i] = np_interp_index(p->timesteps[i], tb->sig, T);
    if (r->schedule == SDC_SCHED_KARRAS) {
        double smin = sd[m - 1], smax = sd[0];
        m = n;                                  /* _convert_to_karras(…, num_inference_steps) */
        karras_sigmas(smin, smax, m, sd);
        for (int i = 0; i < m; i++) p->timesteps[i] = (float)sigma_to_t(sd[i], logsig, T);
    }
    int k = 0;
    if (r->method == SDC_SAMPLE_HEUN) {
        /* σ: [s0, s1, s1, …, s(m−1), s(m−1), 0]; t: [t0, t1, t1, …, t(m−1), t(m−1)] */
        for (int i = m - 1; i >= 1; i--) {      /* in place, from the end (2m − 1 ≤ cap) */
            p->timesteps[2 * i] = p->timesteps[2 * i - 1] = p->timesteps[i];
            p->sigmas[2 * i] = p->sigmas[2 * i - 1] = (float)sd[i];
        }
        p->sigmas[0] = (float)sd[0];
        k = 2 * m - 1;
    } else {
        for (int i = 0; i < m; i++) p->sigmas[i] = (float)sd[i];
        k = m;
    }
    p->sigmas[k] = 0.0f;
    p->n_sigmas = k + 1;
    float mx = 0.0f;
    for (int i = 0; i < p->n_sigmas; i++) if (p->sigmas[i] > mx) mx = p->sigmas[i];
    p->init_noise_sigma = r->spacing == SDC_SPACING_LEADING ? sqrtf(mx * mx + 1.0f) : mx;
    return k;
}

/* img2img (StableDiffusionImg2ImgPipeline.get_timesteps): init_timestep = min(int(steps ·
 * strength), steps), the loop starts at (steps − init_timestep)·order; strength 1 starts at 0. */
static int plan_start(const resolved *r, sdc_sampler_plan *p, sdc_err *e) {
    int n = r->steps;
    int init_ts = (int)((double)n * r->strength);
    if (init_ts > n) init_ts = n;
    int t_start = n - init_ts > 0 ? n - init_ts : 0;
    int order = r->method == SDC_SAMPLE_HEUN ? 2 : 1;
    p->start = t_start * order;
    if (p->start >= p->n_timesteps)
        return sdc_errf(e, "sampler: strength %g with %d steps leaves no denoising step",
                        r->strength, n);
    p->n_calls = p->n_timesteps - p->start;
    return 0;
}

static int plan_make(const resolved *r, const tables *tb, sdc_sampler_plan *p, sdc_err *e) {
    memset(p, 0, sizeof *p);
    p->spacing = r->spacing;
    p->init_noise_sigma = 1.0f;
    int n = r->steps, T = r->T, cap = 2 * n + 2, nt = 0;
    p->timesteps = calloc((size_t)cap, sizeof *p->timesteps);
    p->sigmas = calloc((size_t)cap, sizeof *p->sigmas);
    double *sd = calloc((size_t)cap, sizeof *sd);
    float *logsig = malloc((size_t)T * sizeof *logsig);
    if (!p->timesteps || !p->sigmas || !sd || !logsig) nt = -1;
    else {
        for (int i = 0; i < T; i++) logsig[i] = logf(tb->sig[i]);
        switch (r->method) {
        case SDC_SAMPLE_DDIM: nt = ddim_timesteps(r, p->timesteps, cap); break;
        case SDC_SAMPLE_PNDM: nt = pndm_timesteps(r, p->timesteps, cap); break;
        case SDC_SAMPLE_LCM: nt = lcm_timesteps(r, p->timesteps); break;
        case SDC_SAMPLE_DPMPP_2M: nt = plan_dpm(r, tb, logsig, sd, p, cap); break;
        default: nt = plan_kdiff(r, tb, logsig, sd, p, cap); break;
        }
    }
    free(sd);
    free(logsig);
    if (nt < 0) { sdc_sampler_plan_free(p); return sdc_errf(e, "sampler: out of memory"); }
    if (nt < 1) { sdc_sampler_plan_free(p); return sdc_errf(e, "sampler: empty schedule"); }
    p->n_timesteps = nt;
    for (int i = 0; i < nt; i++)
        if (!(p->timesteps[i] >= 0.0 && p->timesteps[i] <= (double)(T - 1))) {
            double bad = p->timesteps[i];
            sdc_sampler_plan_free(p);
            return sdc_errf(e, "sampler: %s with %d steps gives timestep %g outside [0, %d]",
                            spacing_names[r->spacing], n, bad, T - 1);
        }
    if (plan_start(r, p, e) < 0) { sdc_sampler_plan_free(p); return -1; }
    return 0;
}

int sdc_sampler_plan_make(const sdc_sampler_opts *o, sdc_sampler_plan *p, sdc_err *e) {
    resolved r;
    tables tb = {0};
    memset(p, 0, sizeof *p);
    if (resolve(o, &r, e) < 0) return -1;
    if (tables_make(&tb, r.T, r.beta_start, r.beta_end, e) < 0) return -1;
    int rc = plan_make(&r, &tb, p, e);
    tables_free(&tb);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Steps. x: the latents (n floats); m: the model output at this call.                         */

struct sdc_sample_state {
    resolved r;
    tables tb;
    sdc_sampler_plan p;
    float final_ac;          /* set_alpha_to_one false: alphas_cumprod[0] */
    size_t n;
    int si;                  /* scheduler step_index */
    float *noise;
    /* heun */
    int heun_second;
    float heun_dt;
    float *heun_d, *heun_x;
    /* pndm */
    int pndm_counter, pndm_nets;
    float *pndm_ets[SDC_PNDM_ETS], *pndm_cur, *pndm_mo;
    /* dpm++2m */
    int dpm_lower;
    float *dpm_m0, *dpm_m1;
};
typedef struct sdc_sample_state state;

/* x0 prediction of the k-diffusion schedulers at σ (Euler, Euler a, Heun). */
static void kdiff_x0(const state *s, float sigma, const float *x, const float *m, float *x0) {
    if (s->r.pred == SDC_PRED_EPS) {
        for (size_t i = 0; i < s->n; i++) x0[i] = x[i] - sigma * m[i];
    } else {
        float s2 = sigma * sigma + 1.0f;
        float c_out = -sigma / sqrtf(s2);
        for (size_t i = 0; i < s->n; i++) x0[i] = m[i] * c_out + x[i] / s2;
    }
}

static int draw(state *s, sdc_rng *rng, sdc_err *e) {
    if (!rng) return sdc_errf(e, "sampler: %s needs a generator for its per-step noise",
                              sdc_sample_method_name(s->r.method));
    sdc_rng_randn(rng, s->noise, s->n);
    return 0;
}

static int step_euler(state *s, sdc_rng *rng, float *x, const float *m, float *x0, sdc_err *e) {
    float sigma = s->p.sigmas[s->si], sigma_hat = sigma * 1.0f;   /* s_churn 0: γ = 0 */
    if (rng) sdc_rng_randn(rng, s->noise, s->n);   /* 0.25.1 draws ε every step, unused at γ = 0 */
    kdiff_x0(s, sigma_hat, x, m, x0);
    float dt = s->p.sigmas[s->si + 1] - sigma_hat;
    for (size_t i = 0; i < s->n; i++) {
        float d = (x[i] - x0[i]) / sigma_hat;
        x[i] = x[i] + d * dt;
    }
    (void)e;
    return 0;
}

static int step_euler_a(state *s, sdc_rng *rng, float *x, const float *m, float *x0, sdc_err *e) {
    float sigma = s->p.sigmas[s->si], to = s->p.sigmas[s->si + 1];
    kdiff_x0(s, sigma, x, m, x0);
    float up = sqrtf(to * to * (sigma * sigma - to * to) / (sigma * sigma));
    float down = sqrtf(to * to - up * up);
    float dt = down - sigma;
    for (size_t i = 0; i < s->n; i++) {
        float d = (x[i] - x0[i]) / sigma;
        x[i] = x[i] + d * dt;
    }
    if (draw(s, rng, e) < 0) return -1;
    for (size_t i = 0; i < s->n; i++) x[i] = x[i] + s->noise[i] * up;
    return 0;
}

static int step_heun(state *s, float *x, const float *m, float *x0) {
    if (!s->heun_second) {
        float sigma = s->p.sigmas[s->si], next = s->p.sigmas[s->si + 1], hat = sigma * 1.0f;
        kdiff_x0(s, hat, x, m, x0);
        float dt = next - hat;
        for (size_t i = 0; i < s->n; i++) {
            float d = (x[i] - x0[i]) / hat;
            s->heun_d[i] = d;
            s->heun_x[i] = x[i];
            x[i] = x[i] + d * dt;
        }
        s->heun_dt = dt;
        s->heun_second = 1;
    } else {
        float next = s->p.sigmas[s->si];
        kdiff_x0(s, next, x, m, x0);
        float dt = s->heun_dt;
        for (size_t i = 0; i < s->n; i++) {
            float d = (x[i] - x0[i]) / next;
            d = (s->heun_d[i] + d) / 2.0f;
            x[i] = s->heun_x[i] + d * dt;
        }
        s->heun_second = 0;
    }
    return 0;
}

static float ac_at(const state *s, int t) { return t >= 0 ? s->tb.ac[t] : s->final_ac; }

static int step_ddim(state *s, int t, float *x, const float *m) {
    int prev = t - s->r.T / s->r.steps;
    float a = ac_at(s, t), ap = ac_at(s, prev), b = 1.0f - a;
    float sa = sqrtf(a), sb = sqrtf(b), sap = sqrtf(ap);
    float dir = sqrtf(1.0f - ap - 0.0f);                  /* eta 0: σ_t = 0 */
    for (size_t i = 0; i < s->n; i++) {
        float x0, eps;
        if (s->r.pred == SDC_PRED_EPS) { x0 = (x[i] - sb * m[i]) / sa; eps = m[i]; }
        else { x0 = sa * x[i] - sb * m[i]; eps = sa * m[i] + sb * x[i]; }
        x[i] = sap * x0 + dir * eps;
    }
    return 0;
}

/* PNDM _get_prev_sample (formula (9) of the PNDM paper). */
static void pndm_prev(state *s, float *out, const float *x, int t, int prev, float *mo) {
    float a = ac_at(s, t), ap = ac_at(s, prev), b = 1.0f - a, bp = 1.0f - ap;
    if (s->r.pred == SDC_PRED_V) {
        float sa = sqrtf(a), sb = sqrtf(b);
        for (size_t i = 0; i < s->n; i++) mo[i] = sa * mo[i] + sb * x[i];
    }
    float coef = sqrtf(ap / a);
    float den = a * sqrtf(bp) + sqrtf(a * b * ap);
    float dd = ap - a;
    for (size_t i = 0; i < s->n; i++) out[i] = coef * x[i] - dd * mo[i] / den;
}

static int step_pndm(state *s, int t, float *x, const float *m, sdc_err *e) {
    int ratio = s->r.T / s->r.steps, prev = t - ratio;
    float *mo = s->pndm_mo, **E = s->pndm_ets;
    if (s->pndm_counter != 1) {
        if (s->pndm_nets == SDC_PNDM_ETS) {           /* ets = ets[-3:] + [m] */
            float *old = E[0];
            memmove(E, E + 1, (SDC_PNDM_ETS - 1) * sizeof *E);
            E[SDC_PNDM_ETS - 1] = old;
            s->pndm_nets--;
        }
        memcpy(E[s->pndm_nets++], m, s->n * sizeof *m);
    } else {
        prev = t;
        t = t + ratio;
    }
    if (t < 0 || t >= s->r.T || prev >= s->r.T)
        return sdc_errf(e, "sampler: pndm: timestep %d out of range", t);
    int k = s->pndm_nets;
    const float *e1 = E[k - 1], *e2 = k > 1 ? E[k - 2] : NULL, *e3 = k > 2 ? E[k - 3] : NULL,
                *e4 = k > 3 ? E[k - 4] : NULL;
    const float *src = x;
    if (k == 1 && s->pndm_counter == 0) {
        memcpy(mo, m, s->n * sizeof *m);
        memcpy(s->pndm_cur, x, s->n * sizeof *x);
    } else if (k == 1 && s->pndm_counter == 1) {
        for (size_t i = 0; i < s->n; i++) mo[i] = (m[i] + e1[i]) / 2.0f;
        src = s->pndm_cur;
    } else if (k == 2) {
        for (size_t i = 0; i < s->n; i++) mo[i] = (3.0f * e1[i] - e2[i]) / 2.0f;
    } else if (k == 3) {
        for (size_t i = 0; i < s->n; i++)
            mo[i] = (23.0f * e1[i] - 16.0f * e2[i] + 5.0f * e3[i]) / 12.0f;
    } else {
        const float c = (float)(1.0 / 24.0);
        for (size_t i = 0; i < s->n; i++)
            mo[i] = c * (55.0f * e1[i] - 59.0f * e2[i] + 37.0f * e3[i] - 9.0f * e4[i]);
    }
    pndm_prev(s, x, src, t, prev, mo);
    s->pndm_counter++;
    return 0;
}

/* α_t = 1/√(σ²+1), σ_t = σ·α_t, λ = log α_t − log σ_t (float32 scalars, as torch). */
static void dpm_alpha_sigma(float sigma, float *a, float *sg, float *lambda) {
    *a = 1.0f / sqrtf(sigma * sigma + 1.0f);
    *sg = sigma * *a;
    if (lambda) *lambda = logf(*a) - logf(*sg);
}

static int step_dpm(state *s, float *x, const float *m) {
    int si = s->si, nt = s->p.n_timesteps;
    int lower_final = si == nt - 1 && nt < 15;    /* lower_order_final, euler_at_final false */
    float a0, s0;
    dpm_alpha_sigma(s->p.sigmas[si], &a0, &s0, NULL);
    float *t = s->dpm_m1; s->dpm_m1 = s->dpm_m0; s->dpm_m0 = t;   /* model_outputs shift */
    float *x0 = s->dpm_m0, *x0p = s->dpm_m1;
    for (size_t i = 0; i < s->n; i++)
        x0[i] = s->r.pred == SDC_PRED_EPS ? (x[i] - s0 * m[i]) / a0 : a0 * x[i] - s0 * m[i];
    float at, st, lt, as, ss, ls;
    dpm_alpha_sigma(s->p.sigmas[si + 1], &at, &st, &lt);
    dpm_alpha_sigma(s->p.sigmas[si], &as, &ss, &ls);
    float h = lt - ls;
    float c0 = st / ss, c1 = at * (expf(-h) - 1.0f);
    if (s->dpm_lower < 1 || lower_final) {
        for (size_t i = 0; i < s->n; i++) x[i] = c0 * x[i] - c1 * x0[i];
    } else {
        float a1, s1, l1;
        dpm_alpha_sigma(s->p.sigmas[si - 1], &a1, &s1, &l1);
        float h0 = ls - l1, r0 = h0 / h, inv_r0 = 1.0f / r0, c2 = 0.5f * c1;
        for (size_t i = 0; i < s->n; i++) {
            float d1 = inv_r0 * (x0[i] - x0p[i]);
            x[i] = c0 * x[i] - c1 * x0[i] - c2 * d1;
        }
    }
    if (s->dpm_lower < 2) s->dpm_lower++;
    return 0;
}

static int step_lcm(state *s, sdc_rng *rng, int t, float *x, const float *m, sdc_err *e) {
    int prev = s->si + 1 < s->p.n_timesteps ? (int)s->p.timesteps[s->si + 1] : t;
    float a = ac_at(s, t), ap = ac_at(s, prev), b = 1.0f - a, bp = 1.0f - ap;
    float st = (float)t * SDC_LCM_TIMESTEP_SCALING;
    float den = st * st + 0.25f;                        /* σ_data² = 0.25 */
    float c_skip = 0.25f / den, c_out = st / sqrtf(den);
    float sa = sqrtf(a), sb = sqrtf(b);
    for (size_t i = 0; i < s->n; i++) {
        float x0 = s->r.pred == SDC_PRED_EPS ? (x[i] - sb * m[i]) / sa : sa * x[i] - sb * m[i];
        x[i] = c_out * x0 + c_skip * x[i];               /* denoised */
    }
    if (s->si != s->r.steps - 1) {
        if (draw(s, rng, e) < 0) return -1;
        float sap = sqrtf(ap), sbp = sqrtf(bp);
        for (size_t i = 0; i < s->n; i++) x[i] = sap * x[i] + sbp * s->noise[i];
    }
    return 0;
}

/* out = scheduler.add_noise(init, noise, t): the img2img start and inpainting's blending.
 * Element-wise, so out may alias init or noise. */
static void add_noise(const state *s, float *out, const float *init, const float *noise, double t) {
    switch (s->r.method) {
    case SDC_SAMPLE_EULER: case SDC_SAMPLE_EULER_A: case SDC_SAMPLE_HEUN: {
        float sigma = s->p.sigmas[index_for_timestep(&s->p, t)];
        for (size_t i = 0; i < s->n; i++) out[i] = init[i] + noise[i] * sigma;
        break;
    }
    case SDC_SAMPLE_DPMPP_2M: {
        float a, sg;
        dpm_alpha_sigma(s->p.sigmas[index_for_timestep(&s->p, t)], &a, &sg, NULL);
        for (size_t i = 0; i < s->n; i++) out[i] = a * init[i] + sg * noise[i];
        break;
    }
    default: {
        float ac = s->tb.ac[(int)t], sa = sqrtf(ac), sb = sqrtf(1.0f - ac);
        for (size_t i = 0; i < s->n; i++) out[i] = sa * init[i] + sb * noise[i];
    }
    }
}

void sdc_sample_noise_to_next(const sdc_sample_state *s, int call, float *out, const float *init,
                              const float *noise) {
    int next = s->p.start + call + 1;
    if (next < s->p.n_timesteps) add_noise(s, out, init, noise, s->p.timesteps[next]);
    else if (out != init) memmove(out, init, s->n * sizeof *out);
}

static void state_free(state *s, float *pool) {
    sdc_sampler_plan_free(&s->p);
    tables_free(&s->tb);
    free(pool);
}

int sdc_sample(const sdc_sampler_opts *o, sdc_rng *rng, float *x, const float *init, size_t n,
               sdc_model_fn model, void *model_ctx, sdc_progress_fn progress, void *progress_ctx,
               sdc_err *e) {
    state s;
    memset(&s, 0, sizeof s);
    if (!x || n == 0 || !model) return sdc_errf(e, "sampler: no latents or no model");
    if (resolve(o, &s.r, e) < 0) return -1;
    if (tables_make(&s.tb, s.r.T, s.r.beta_start, s.r.beta_end, e) < 0) return -1;
    if (plan_make(&s.r, &s.tb, &s.p, e) < 0) { tables_free(&s.tb); return -1; }
    s.final_ac = s.tb.ac[0];
    s.n = n;

    /* buffers: x_in, model out, x0/scratch, noise, + heun 2 | pndm 6 | dpm 2 */
    enum { NB = 12 };
    size_t bytes;
    if (sdc_mul_overflow(n, (size_t)NB * sizeof(float), &bytes) < 0) {
        state_free(&s, NULL);
        return sdc_errf(e, "sampler: latent size %zu too large", n);
    }
    float *pool = calloc(1, bytes);
    if (!pool) { state_free(&s, NULL); return sdc_errf(e, "sampler: out of memory (%zu bytes)", bytes); }
    float *xin = pool, *out = pool + n, *x0 = pool + 2 * n;
    s.noise = pool + 3 * n;
    s.heun_d = pool + 4 * n; s.heun_x = pool + 5 * n;
    for (int k = 0; k < SDC_PNDM_ETS; k++) s.pndm_ets[k] = pool + (6 + k) * n;
    s.pndm_cur = pool + 10 * n; s.pndm_mo = pool + 11 * n;
    s.dpm_m0 = pool + 4 * n; s.dpm_m1 = pool + 5 * n;

    const sdc_sampler_plan *p = &s.p;
    if (init) {
        add_noise(&s, x, init, x, p->timesteps[p->start]);
    } else {
        for (size_t i = 0; i < n; i++) x[i] = x[i] * p->init_noise_sigma;
    }
    int kdiff = s.r.method == SDC_SAMPLE_EULER || s.r.method == SDC_SAMPLE_EULER_A ||
                s.r.method == SDC_SAMPLE_HEUN;
    s.si = index_for_timestep(p, p->timesteps[p->start]);
    for (int c = 0; c < p->n_calls; c++, s.si++) {
        double t = p->timesteps[p->start + c];
        if (s.si < 0 || s.si >= p->n_timesteps || (p->n_sigmas && s.si + 1 >= p->n_sigmas)) {
            state_free(&s, pool);
            return sdc_errf(e, "sampler: step index %d past the end of the schedule", s.si);
        }
        if (kdiff) {                                 /* scale_model_input */
            float sigma = p->sigmas[s.si];
            float den = sqrtf(sigma * sigma + 1.0f);
            for (size_t i = 0; i < n; i++) xin[i] = x[i] / den;
        } else {
            memcpy(xin, x, n * sizeof *x);
        }
        if (model(model_ctx, xin, (float)t, out, e) < 0) {
            state_free(&s, pool);
            return sdc_err_prefix(e, "step %d/%d (t=%g)", c + 1, p->n_calls, t);
        }
        int rc = 0;
        switch (s.r.method) {
        case SDC_SAMPLE_EULER: rc = step_euler(&s, rng, x, out, x0, e); break;
        case SDC_SAMPLE_EULER_A: rc = step_euler_a(&s, rng, x, out, x0, e); break;
        case SDC_SAMPLE_HEUN: rc = step_heun(&s, x, out, x0); break;
        case SDC_SAMPLE_DDIM: rc = step_ddim(&s, (int)t, x, out); break;
        case SDC_SAMPLE_PNDM: rc = step_pndm(&s, (int)t, x, out, e); break;
        case SDC_SAMPLE_DPMPP_2M: rc = step_dpm(&s, x, out); break;
        case SDC_SAMPLE_LCM: rc = step_lcm(&s, rng, (int)t, x, out, e); break;
        }
        if (!rc && o->post_step) rc = o->post_step(o->post_step_ctx, &s, c, p->n_calls, x, e);
        if (rc < 0) { state_free(&s, pool); return -1; }
        if (progress) progress(progress_ctx, c + 1, p->n_calls);
    }
    state_free(&s, pool);
    return 0;
}
