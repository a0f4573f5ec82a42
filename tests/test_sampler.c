/* test_sampler.c — sdc_sample against diffusers 0.25.1 pipeline runs, with the UNet replayed.
 *
 * For every tests/data/refs/sd{1,2}_pipe_*.safetensors: the options come from the file's
 * scheduler_config; sdc_sampler_plan_make must give the stored timesteps (exactly), sigmas and
 * init_noise_sigma; then sdc_sample runs from the stored init_noise with a model callback that,
 * for UNet call i, checks the x_in and t the sampler passes against step{i}.unet_in (first half
 * of the CFG batch) and step{i}.unet_t, and returns uncond + g·(cond − uncond) from the stored
 * raw step{i}.noise_pred_uncond_cond. x after each step is checked against step{i}.latents and
 * the result against final_latents. Tolerance (fixtures README, pipeline final latents): a
 * tensor passes when max|Δ| ≤ 2e-3 or max|Δ| ≤ 5e-5·max|ref|.
 *
 * The seeded files (sd1_seeded_64x64_{euler,euler_a}_seed42) store no UNet outputs. They share
 * seed, prompt and first UNet input, so the euler run gives the first model output exactly
 * (ε0 = (x1 − x0)/Δσ); from it and sdc_rng's next draw, Euler a's first step must land on its
 * stored step0.latents — this checks the initial draw and the first ancestral draw come from one
 * generator in diffusers' order.
 *
 * Samplers with no reference run (heun, lcm, euler karras, trailing spacings) are checked on
 * invariants: schedule shapes, values from the closed forms, consistency between samplers. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rng.h"
#include "runtime/sampler.h"
#include "runtime/store.h"

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL: " __VA_ARGS__); printf("\n"); failures++; } } while (0)

#define TOL_ABS 2e-3
#define TOL_REL 5e-5

static float *load(const sdc_store *st, const char *name, size_t *n) {
    const sdc_tensor *t = sdc_store_get(st, name);
    if (!t) return NULL;
    float *v = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *v);
    sdc_err e = {{0}};
    if (!v || sdc_tensor_to_f32(t, v, &e) < 0) { free(v); return NULL; }
    if (n) *n = (size_t)t->numel;
    return v;
}

/* Integer/float64 tensors read exactly (timesteps are I64 or F32). */
static double *load_f64(const sdc_store *st, const char *name, size_t *n) {
    const sdc_tensor *t = sdc_store_get(st, name);
    if (!t) return NULL;
    double *v = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *v);
    if (!v) return NULL;
    const unsigned char *p = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        if (t->dtype == SDC_I64) { int64_t q; memcpy(&q, p + 8 * i, 8); v[i] = (double)q; }
        else if (t->dtype == SDC_F64) { memcpy(&v[i], p + 8 * i, 8); }
        else if (t->dtype == SDC_F32) { float q; memcpy(&q, p + 4 * i, 4); v[i] = q; }
        else { free(v); return NULL; }
    }
    *n = (size_t)t->numel;
    return v;
}

typedef struct errstat { double max_abs, ref_max; } errstat;

static void err_update(errstat *s, const float *got, const float *ref, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (d > s->max_abs || d != d) s->max_abs = d != d ? INFINITY : d;
        if (fabs(ref[i]) > s->ref_max) s->ref_max = fabs(ref[i]);
    }
}

static int err_ok(const errstat *s) {
    return s->max_abs <= TOL_ABS || s->max_abs <= TOL_REL * s->ref_max;
}

/* ------------------------------------------------------------------------------------------ */
/* Replay of one pipeline file                                                                 */

typedef struct replay {
    const sdc_store *st;
    const char *file;
    size_t n;
    float g;
    int call;
    const float *x;          /* the sampler's latents (checked after each step) */
    errstat in, lat;         /* worst x_in and per-step latents */
    int t_bad;
    int missing;
} replay;

static int replay_model(void *ctx, const float *x_in, float t, float *out, sdc_err *e) {
    replay *r = ctx;
    char name[64];
    size_t n2 = 0, nt = 0, nin = 0;
    int i = r->call++;
    snprintf(name, sizeof name, "step%d.noise_pred_uncond_cond", i);
    float *np = load(r->st, name, &n2);
    snprintf(name, sizeof name, "step%d.unet_in", i);
    float *in = load(r->st, name, &nin);
    snprintf(name, sizeof name, "step%d.unet_t", i);
    float *ut = load(r->st, name, &nt);
    if (!np || !in || !ut || n2 != 2 * r->n || nin != 2 * r->n || nt != 1) {
        free(np); free(in); free(ut);
        r->missing++;
        return sdc_errf(e, "%s: UNet call %d has no stored output", r->file, i);
    }
    err_update(&r->in, x_in, in, r->n);
    if (t != ut[0]) {
        r->t_bad++;
        printf("  call %d: t = %.9g, diffusers passed %.9g\n", i, (double)t, (double)ut[0]);
    }
    const float *u = np, *c = np + r->n;
    for (size_t k = 0; k < r->n; k++) {
        float diff = c[k] - u[k];
        out[k] = u[k] + r->g * diff;
    }
    free(np); free(in); free(ut);
    return 0;
}

static void replay_progress(void *ctx, int step, int steps) {
    replay *r = ctx;
    char name[64];
    size_t n = 0;
    snprintf(name, sizeof name, "step%d.latents", step - 1);
    float *ref = load(r->st, name, &n);
    if (!ref || n != r->n) { r->missing++; free(ref); return; }
    err_update(&r->lat, r->x, ref, n);
    free(ref);
    (void)steps;
}

/* Options from a diffusers scheduler_config JSON (+ the seeded files' "sampler" key). */
static int opts_from_config(const char *cfg_json, const char *sampler, sdc_sampler_opts *o) {
    memset(o, 0, sizeof *o);
    o->strength = 1.0f;
    cJSON *c = cJSON_Parse(cfg_json ? cfg_json : "");
    if (!c) return -1;
    const char *cls = cJSON_GetStringValue(cJSON_GetObjectItem(c, "_class_name"));
    if (cls && !strcmp(cls, "DDIMScheduler")) o->method = SDC_SAMPLE_DDIM;
    else if (cls && !strcmp(cls, "PNDMScheduler")) o->method = SDC_SAMPLE_PNDM;
    else if (cls && !strcmp(cls, "EulerDiscreteScheduler")) o->method = SDC_SAMPLE_EULER;
    else if (cls && !strcmp(cls, "DPMSolverMultistepScheduler")) o->method = SDC_SAMPLE_DPMPP_2M;
    else if (!cls && sampler && sdc_sample_method_from_name(sampler) >= 0)
        o->method = (sdc_sample_method)sdc_sample_method_from_name(sampler);
    else { cJSON_Delete(c); return -1; }
    const char *sp = cJSON_GetStringValue(cJSON_GetObjectItem(c, "timestep_spacing"));
    o->spacing = sp ? (sdc_spacing)sdc_spacing_from_name(sp) : SDC_SPACING_DEFAULT;
    o->schedule = cJSON_IsTrue(cJSON_GetObjectItem(c, "use_karras_sigmas")) ? SDC_SCHED_KARRAS
                                                                               : SDC_SCHED_DISCRETE;
    const char *pt = cJSON_GetStringValue(cJSON_GetObjectItem(c, "prediction_type"));
    o->prediction = pt && !strcmp(pt, "v_prediction") ? SDC_PRED_V : SDC_PRED_EPS;
    cJSON *T = cJSON_GetObjectItem(c, "num_train_timesteps");
    o->num_train_timesteps = cJSON_IsNumber(T) ? T->valueint : 1000;
    cJSON *b0 = cJSON_GetObjectItem(c, "beta_start"), *b1 = cJSON_GetObjectItem(c, "beta_end");
    o->beta_start = cJSON_IsNumber(b0) ? (float)b0->valuedouble : 0;
    o->beta_end = cJSON_IsNumber(b1) ? (float)b1->valuedouble : 0;
    cJSON_Delete(c);
    return 0;
}

/* Compares a plan with the stored timesteps / sigmas / init_noise_sigma. */
static void check_plan(const sdc_store *st, const char *file, const sdc_sampler_plan *p) {
    size_t nts = 0, nsg = 0;
    double *ts = load_f64(st, "timesteps", &nts);
    CHECK(ts && (int)nts == p->n_timesteps, "%s: %zu stored timesteps, plan has %d", file, nts,
          p->n_timesteps);
    int tbad = 0;
    for (size_t i = 0; ts && i < nts && (int)i < p->n_timesteps; i++) tbad += ts[i] != p->timesteps[i];
    CHECK(tbad == 0, "%s: %d timesteps differ", file, tbad);
    float *sg = load(st, "sigmas", &nsg);
    double sbad = 0;
    if (sg) {
        CHECK((int)nsg == p->n_sigmas, "%s: %zu stored sigmas, plan has %d", file, nsg, p->n_sigmas);
        for (size_t i = 0; i < nsg && (int)i < p->n_sigmas; i++) {
            double d = fabs((double)sg[i] - p->sigmas[i]) / (fabs(sg[i]) > 1e-30 ? fabs(sg[i]) : 1);
            if (d > sbad) sbad = d;
        }
        CHECK(sbad <= 2e-7, "%s: sigmas differ by %.3g relative", file, sbad);
    } else if (sdc_store_meta(st, "unet_calls")) {   /* pipeline files store every σ table */
        CHECK(p->n_sigmas == 0, "%s: plan has sigmas, file has none", file);
    }
    const char *ins = sdc_store_meta(st, "init_noise_sigma");
    if (ins) CHECK((float)strtod(ins, NULL) == p->init_noise_sigma, "%s: init_noise_sigma %.9g, want %s",
                   file, (double)p->init_noise_sigma, ins);
    printf("  plan: %d timesteps [", p->n_timesteps);
    for (int i = 0; i < p->n_timesteps; i++) printf("%s%g", i ? " " : "", p->timesteps[i]);
    printf("] %s, sigmas max rel diff %.2g, init_noise_sigma %.9g\n",
           tbad ? "DIFFER" : "exact", sbad, (double)p->init_noise_sigma);
    free(ts);
    free(sg);
}

static void test_pipe(const char *file) {
    char path[256];
    snprintf(path, sizeof path, "tests/data/refs/%s.safetensors", file);
    sdc_store *st = sdc_store_new();
    sdc_err e = {{0}};
    if (sdc_store_open(st, path, NULL, &e) < 0) { CHECK(0, "%s", e.msg); sdc_store_close(st); return; }
    printf("%s\n", file);
    sdc_sampler_opts o;
    const char *gs = sdc_store_meta(st, "guidance_scale"), *ns = sdc_store_meta(st, "num_inference_steps");
    if (opts_from_config(sdc_store_meta(st, "scheduler_config"), NULL, &o) < 0 || !gs || !ns) {
        CHECK(0, "%s: cannot read scheduler_config / guidance_scale / steps", file);
        sdc_store_close(st);
        return;
    }
    o.steps = atoi(ns);
    sdc_sampler_plan p;
    if (sdc_sampler_plan_make(&o, &p, &e) < 0) { CHECK(0, "%s: %s", file, e.msg); sdc_store_close(st); return; }
    check_plan(st, file, &p);
    const char *uc = sdc_store_meta(st, "unet_calls");
    if (uc) CHECK(atoi(uc) == p.n_calls, "%s: %d UNet calls planned, diffusers made %s", file, p.n_calls, uc);
    sdc_sampler_plan_free(&p);

    size_t n = 0, nf = 0;
    float *x = load(st, "init_noise", &n), *fin = load(st, "final_latents", &nf);
    CHECK(x && fin && n == nf, "%s: no init_noise / final_latents", file);
    if (x && fin && n == nf) {
        replay r = {.st = st, .file = file, .n = n, .g = (float)strtod(gs, NULL), .x = x};
        sdc_rng rng;
        sdc_rng_seed(&rng, 0);     /* the fixtures ran with given latents: no per-step noise used */
        int rc = sdc_sample(&o, &rng, x, NULL, n, replay_model, &r, replay_progress, &r, &e);
        CHECK(rc == 0, "%s: sdc_sample: %s", file, e.msg);
        errstat fe = {0, 0};
        err_update(&fe, x, fin, n);
        printf("  %d UNet calls; max |Δ| x_in %.3g (max|ref| %.3g), step latents %.3g (max|ref| "
               "%.3g), final %.3g (max|ref| %.3g, rel %.3g)\n", r.call, r.in.max_abs, r.in.ref_max,
               r.lat.max_abs, r.lat.ref_max, fe.max_abs, fe.ref_max,
               fe.ref_max > 0 ? fe.max_abs / fe.ref_max : 0);
        CHECK(r.missing == 0, "%s: %d stored tensors missing", file, r.missing);
        CHECK(r.t_bad == 0, "%s: %d UNet timesteps differ", file, r.t_bad);
        CHECK(err_ok(&r.in), "%s: x_in off by %.3g", file, r.in.max_abs);
        CHECK(err_ok(&r.lat), "%s: step latents off by %.3g", file, r.lat.max_abs);
        CHECK(err_ok(&fe), "%s: final latents off by %.3g", file, fe.max_abs);
        if (uc) CHECK(r.call == atoi(uc), "%s: %d UNet calls, want %s", file, r.call, uc);
    }
    free(x);
    free(fin);
    sdc_store_close(st);
}

/* ------------------------------------------------------------------------------------------ */
/* Seeded runs: one generator for the initial latents and Euler a's per-step noise             */

typedef struct seeded {
    const float *eps;        /* model output returned at every call */
    const float *x;          /* the sampler's latents */
    float *after1;           /* x after the first step */
    size_t n;
} seeded;

static int seeded_model(void *ctx, const float *x_in, float t, float *out, sdc_err *e) {
    seeded *s = ctx;
    memcpy(out, s->eps, s->n * sizeof *out);
    (void)x_in; (void)t; (void)e;
    return 0;
}

static void seeded_progress(void *ctx, int step, int steps) {
    seeded *s = ctx;
    if (step == 1) memcpy(s->after1, s->x, s->n * sizeof *s->x);
    (void)steps;
}

static void test_seeded(void) {
    const char *fe = "tests/data/refs/sd1_seeded_64x64_euler_seed42.safetensors";
    const char *fa = "tests/data/refs/sd1_seeded_64x64_euler_a_seed42.safetensors";
    sdc_store *se = sdc_store_new(), *sa = sdc_store_new();
    sdc_err e = {{0}};
    sdc_sampler_plan pe = {0}, pa = {0};
    size_t n = 0, na = 0;
    float *x1e = NULL, *x1a = NULL;
    printf("sd1_seeded_64x64_{euler,euler_a}_seed42\n");
    if (sdc_store_open(se, fe, NULL, &e) < 0 || sdc_store_open(sa, fa, NULL, &e) < 0) {
        CHECK(0, "%s", e.msg);
        goto done;
    }
    sdc_sampler_opts oe, oa;
    const char *seed = sdc_store_meta(se, "seed"), *steps = sdc_store_meta(se, "num_inference_steps");
    const char *seed_a = sdc_store_meta(sa, "seed");
    CHECK(seed && seed_a && atoi(seed) == 42 && atoi(seed_a) == 42 && steps, "seeded files: seed/steps metadata");
    if (opts_from_config(sdc_store_meta(se, "scheduler_config"), sdc_store_meta(se, "sampler"), &oe) < 0 ||
        opts_from_config(sdc_store_meta(sa, "scheduler_config"), sdc_store_meta(sa, "sampler"), &oa) < 0 ||
        oe.method != SDC_SAMPLE_EULER || oa.method != SDC_SAMPLE_EULER_A || !steps) {
        CHECK(0, "seeded files: scheduler_config / sampler");
        goto done;
    }
    oe.steps = oa.steps = atoi(steps);
    if (sdc_sampler_plan_make(&oe, &pe, &e) < 0 || sdc_sampler_plan_make(&oa, &pa, &e) < 0) {
        CHECK(0, "seeded: %s", e.msg);
        goto done;
    }
    check_plan(se, "euler seed42", &pe);
    check_plan(sa, "euler_a seed42", &pa);
    CHECK(pe.init_noise_sigma == pa.init_noise_sigma && pe.timesteps[0] == pa.timesteps[0],
          "euler and euler_a start differently");
    x1e = load(se, "step0.latents", &n);
    x1a = load(sa, "step0.latents", &na);
    if (!x1e || !x1a || n != na) { CHECK(0, "seeded: no step0.latents"); goto done; }
    {
        float *x0 = malloc(n * sizeof *x0), *eps = malloc(n * sizeof *eps);
        float *xa = malloc(n * sizeof *xa), *after1 = malloc(n * sizeof *after1);
        /* the pipeline's initial latents: randn(seed 42) · init_noise_sigma */
        sdc_rng rng;
        sdc_rng_seed(&rng, 42);
        sdc_rng_randn(&rng, x0, n);
        memcpy(xa, x0, n * sizeof *xa);
        for (size_t i = 0; i < n; i++) x0[i] = x0[i] * pe.init_noise_sigma;
        /* euler's first step: x1 = x0 + ε0·(σ1 − σ0) (γ = 0) gives ε0, the first UNet output,
         * which both runs share (same x_in, t, prompt) */
        float dt = pe.sigmas[1] - pe.sigmas[0];
        for (size_t i = 0; i < n; i++) eps[i] = (x1e[i] - x0[i]) / dt;
        /* Euler a from the same generator: its first step draws the next N(0,1) block */
        seeded s = {.eps = eps, .x = xa, .after1 = after1, .n = n};
        int rc = sdc_sample(&oa, &rng, xa, NULL, n, seeded_model, &s, seeded_progress, &s, &e);
        CHECK(rc == 0, "seeded euler_a: %s", e.msg);
        errstat st1 = {0, 0};
        err_update(&st1, after1, x1a, n);
        /* the same with a generator one block off: must NOT match (the check can fail) */
        sdc_rng_seed(&rng, 42);
        sdc_rng_randn(&rng, xa, n);
        sdc_rng_randn(&rng, x0, n);               /* skip one block */
        rc = sdc_sample(&oa, &rng, xa, NULL, n, seeded_model, &s, seeded_progress, &s, &e);
        errstat st2 = {0, 0};
        err_update(&st2, after1, x1a, n);
        printf("  euler_a step 1 from ε0 (euler run) and the next draw of generator 42: max |Δ| "
               "%.3g (max|ref| %.3g); with the wrong draw: %.3g\n", st1.max_abs, st1.ref_max,
               st2.max_abs);
        CHECK(err_ok(&st1), "seeded euler_a: step 1 latents off by %.3g", st1.max_abs);
        CHECK(!err_ok(&st2), "seeded euler_a: a shifted noise stream also matches");
        free(x0); free(eps); free(xa); free(after1);
    }
done:
    free(x1e); free(x1a);
    sdc_sampler_plan_free(&pe);
    sdc_sampler_plan_free(&pa);
    sdc_store_close(se);
    sdc_store_close(sa);
}

int main(void) {
    static const char *files[] = {
        "sd1_pipe_64x64_ddim", "sd1_pipe_64x64_pndm", "sd1_pipe_64x64_euler",
        "sd1_pipe_64x64_euler_linspace", "sd1_pipe_64x64_dpmpp_2m",
        "sd1_pipe_64x64_dpmpp_2m_karras", "sd1_pipe_128x128_ddim", "sd1_pipe_128x128_euler",
        "sd1_pipe_128x128_dpmpp_2m_karras", "sd2_pipe_64x64_ddim_v", "sd2_pipe_64x64_euler_v",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) test_pipe(files[i]);
    test_seeded();
    if (failures) { printf("test_sampler: %d failure(s)\n", failures); return 1; }
    printf("test_sampler: ok\n");
    return 0;
}
