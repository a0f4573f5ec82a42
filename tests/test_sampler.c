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
 * generator in diffusers' order. Then both seeded runs are repeated end to end with the tiny
 * model (tokenizer, CLIP, UNet with CFG) driving the sampler: x after every step must match.
 *
 * Samplers with no reference run (heun, lcm, euler karras, trailing spacings) are checked on
 * invariants: schedule shapes, values from the closed forms, consistency between samplers. */
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/arena.h"
#include "models/clip.h"
#include "models/unet.h"
#include "pipeline/modelcfg.h"
#include "pipeline/rng.h"
#include "pipeline/sampler.h"
#include "runtime/store.h"
#include "tokenizer/tokenizer.h"

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

/* End to end: tokenizer → CLIP → UNet (CFG batch [uncond, cond]) driving sdc_sample with the
 * generator seeded as the fixture's. */
typedef struct e2e {
    sdc_unet *unet;
    sdc_arena *arena;
    const float *ctx;        /* [2, L, C]: negative first */
    int h, w, L;
    float g;
    size_t n;
    float *xb, *ob;          /* [2, 4, h, w] */
    const sdc_store *ref;    /* the seeded fixture */
    const float *x;
    errstat lat;
    int missing;
} e2e;

static int e2e_model(void *ctx, const float *x_in, float t, float *out, sdc_err *e) {
    e2e *m = ctx;
    float tb[2] = {t, t};
    memcpy(m->xb, x_in, m->n * sizeof *x_in);
    memcpy(m->xb + m->n, x_in, m->n * sizeof *x_in);
    sdc_arena_mark mk = sdc_arena_get_mark(m->arena);
    int rc = sdc_unet_forward(m->unet, m->arena, m->ob, m->xb, tb, &(sdc_cond){.ctx = m->ctx, .ctx_len = m->L}, 2, m->h, m->w, e);
    sdc_arena_reset(m->arena, mk);
    if (rc < 0) return -1;
    const float *u = m->ob, *c = m->ob + m->n;
    for (size_t i = 0; i < m->n; i++) {
        float d = c[i] - u[i];
        out[i] = u[i] + m->g * d;
    }
    return 0;
}

static void e2e_progress(void *ctx, int step, int steps) {
    e2e *m = ctx;
    char name[64];
    size_t n = 0;
    snprintf(name, sizeof name, "step%d.latents", step - 1);
    float *ref = load(m->ref, name, &n);
    if (!ref || n != m->n) { m->missing++; free(ref); return; }
    errstat s = {0, 0};
    err_update(&s, m->x, ref, n);
    printf("    step %d/%d: max |Δ| %.3g (max|ref| %.3g)\n", step, steps, s.max_abs, s.ref_max);
    err_update(&m->lat, m->x, ref, n);
    free(ref);
}

static int encode_prompt(sdc_clip *clip, sdc_arena *a, const char *text, float *out, sdc_err *e) {
    int32_t *ids = NULL, win[SDC_TOK_CTX];
    size_t n = 0;
    if (sdc_tokenize(text, &ids, &n, e) < 0) return -1;
    sdc_tokens_window(win, ids, n, SDC_TOK_EOS);        /* SD 1.x pads with EOS */
    free(ids);
    sdc_arena_mark mk = sdc_arena_get_mark(a);
    int rc = sdc_clip_encode(clip, a, win, SDC_TOK_CTX, 0, out, e);
    sdc_arena_reset(a, mk);
    return rc;
}

static void test_seeded_e2e(const char *which) {
    char path[256];
    snprintf(path, sizeof path, "tests/data/refs/sd1_seeded_64x64_%s_seed42.safetensors", which);
    sdc_store *ref = sdc_store_new(), *st = sdc_store_new();
    sdc_err e = {{0}};
    sdc_clip *clip = NULL;
    sdc_unet *unet = NULL;
    sdc_arena arena = {0};
    float *ctx = NULL, *x = NULL, *fin = NULL, *xb = NULL, *ob = NULL;
    sdc_arena_init(&arena, (size_t)16 << 20);
    printf("seeded %s end to end (tiny-sd1, tokenizer + CLIP + UNet + sampler):\n", which);
    if (sdc_store_open(ref, path, NULL, &e) < 0 ||
        sdc_store_open(st, "tests/data/tiny-sd1.safetensors", NULL, &e) < 0) { CHECK(0, "%s", e.msg); goto done; }
    sdc_model_config cfg;
    if (sdc_model_config_resolve(&cfg, st, NULL, -1, &e) < 0) { CHECK(0, "config: %s", e.msg); goto done; }
    sdc_clip_params cp = {.n_heads = cfg.text_heads, .act = cfg.text_act};
    sdc_unet_params up = {.num_heads = cfg.unet_heads, .head_dim = cfg.unet_head_dim};
    clip = sdc_clip_load(st, &cp, &e);
    unet = clip ? sdc_unet_load(st, &up, &e) : NULL;
    if (!clip || !unet) { CHECK(0, "tiny-sd1: %s", e.msg); goto done; }
    const char *prompt = sdc_store_meta(ref, "prompt"), *neg = sdc_store_meta(ref, "negative_prompt");
    const char *gs = sdc_store_meta(ref, "guidance_scale"), *hs = sdc_store_meta(ref, "height");
    const char *ws = sdc_store_meta(ref, "width"), *seed = sdc_store_meta(ref, "seed");
    sdc_sampler_opts o;
    if (!prompt || !neg || !gs || !hs || !ws || !seed ||
        opts_from_config(sdc_store_meta(ref, "scheduler_config"), sdc_store_meta(ref, "sampler"), &o) < 0) {
        CHECK(0, "%s: metadata", path);
        goto done;
    }
    o.steps = atoi(sdc_store_meta(ref, "num_inference_steps"));
    int L = sdc_clip_positions(clip), C = sdc_clip_width(clip), h = atoi(hs) / 8, w = atoi(ws) / 8;
    size_t n = (size_t)4 * h * w, nf = 0;
    ctx = malloc((size_t)2 * L * C * sizeof *ctx);
    x = malloc(n * sizeof *x);
    xb = malloc(2 * n * sizeof *xb);
    ob = malloc(2 * n * sizeof *ob);
    if (encode_prompt(clip, &arena, neg, ctx, &e) < 0 ||
        encode_prompt(clip, &arena, prompt, ctx + (size_t)L * C, &e) < 0) { CHECK(0, "clip: %s", e.msg); goto done; }
    sdc_rng rng;
    sdc_rng_seed(&rng, (uint64_t)atoll(seed));
    sdc_rng_randn(&rng, x, n);                          /* prepare_latents */
    e2e m = {.unet = unet, .arena = &arena, .ctx = ctx, .h = h, .w = w, .L = L,
             .g = (float)strtod(gs, NULL), .n = n, .xb = xb, .ob = ob, .ref = ref, .x = x};
    int rc = sdc_sample(&o, &rng, x, NULL, n, e2e_model, &m, e2e_progress, &m, &e);
    CHECK(rc == 0, "%s e2e: %s", which, e.msg);
    fin = load(ref, "final_latents", &nf);
    errstat fe = {0, 0};
    if (fin && nf == n) err_update(&fe, x, fin, n);
    printf("  final latents max |Δ| %.3g (max|ref| %.3g, rel %.3g)\n", fe.max_abs, fe.ref_max,
           fe.ref_max > 0 ? fe.max_abs / fe.ref_max : 0);
    CHECK(fin && nf == n && m.missing == 0, "%s e2e: stored latents missing", which);
    CHECK(err_ok(&m.lat), "%s e2e: step latents off by %.3g", which, m.lat.max_abs);
    CHECK(err_ok(&fe), "%s e2e: final latents off by %.3g", which, fe.max_abs);
done:
    free(ctx); free(x); free(fin); free(xb); free(ob);
    sdc_unet_free(unet);
    sdc_clip_free(clip);
    sdc_arena_free(&arena);
    sdc_store_close(st);
    sdc_store_close(ref);
}

/* ------------------------------------------------------------------------------------------ */
/* Invariants for the samplers and options no fixture covers                                   */

/* The same training schedule in double precision (independent of the sampler's float32
 * tables): ᾱ = cumprod(1 − linspace(√0.00085, √0.012, 1000)²). */
static double g_ac[1000];
static void make_double_schedule(void) {
    double a = sqrt(0.00085), b = sqrt(0.012), acc = 1.0;
    for (int i = 0; i < 1000; i++) {
        double sb = a + (b - a) * i / 999.0;
        acc *= 1.0 - sb * sb;
        g_ac[i] = acc;
    }
}

static int is_kdiff(sdc_sample_method m) {
    return m == SDC_SAMPLE_EULER || m == SDC_SAMPLE_EULER_A || m == SDC_SAMPLE_HEUN;
}

/* Data x0 ~ N(μ, s²) per element: the exact denoiser is D(x̃, σ) = μ + s²/(s²+σ²)·(x̃ − μ)
 * (x̃ = x0 + σ·n, the variance-exploding variable; the UNet input is x̃/√(1+σ²)), and the
 * probability-flow ODE has the exact solution x̃(σ) − μ ∝ √(s² + σ²). */
typedef struct gauss {
    double mu, s2;
    const sdc_sampler_plan *p;
    sdc_sample_method m;
    sdc_prediction pred;
    int call;
    size_t n;
} gauss;

/* σ at UNet call c: the sampler's own σ where it has a table, else from ᾱ[t]. */
static double gauss_sigma(const gauss *g, float t) {
    if (g->p->n_sigmas) return g->p->sigmas[g->p->start + g->call];
    double ac = g_ac[(int)t];
    return sqrt((1 - ac) / ac);
}

static int gauss_model(void *ctx, const float *x_in, float t, float *out, sdc_err *e) {
    gauss *g = ctx;
    double sigma = gauss_sigma(g, t), alpha = 1.0 / sqrt(1.0 + sigma * sigma);
    for (size_t i = 0; i < g->n; i++) {
        double xt = x_in[i] / alpha;
        double D = g->mu + g->s2 / (g->s2 + sigma * sigma) * (xt - g->mu);
        double eps = (xt - D) / sigma;
        out[i] = (float)(g->pred == SDC_PRED_EPS ? eps : alpha * (eps - sigma * D));
    }
    g->call++;
    (void)e;
    return 0;
}

/* Runs a deterministic sampler on the Gaussian model; returns max |x − exact ODE solution|. */
static double gauss_run(sdc_sample_method m, sdc_schedule sch, sdc_prediction pred, int steps,
                        const float *noise, size_t n) {
    sdc_sampler_opts o = {.method = m, .schedule = sch, .spacing = SDC_SPACING_DEFAULT,
                          .prediction = pred, .steps = steps, .strength = 1.0f};
    sdc_sampler_plan p;
    sdc_err e = {{0}};
    if (sdc_sampler_plan_make(&o, &p, &e) < 0) { CHECK(0, "gauss: %s", e.msg); return INFINITY; }
    gauss g = {.mu = 0.3, .s2 = 0.25, .p = &p, .m = m, .pred = pred, .n = n};
    float *x = malloc(n * sizeof *x);
    memcpy(x, noise, n * sizeof *x);
    int rc = sdc_sample(&o, NULL, x, NULL, n, gauss_model, &g, NULL, NULL, &e);
    CHECK(rc == 0, "gauss %s: %s", sdc_sample_method_name(m), e.msg);
    /* start and end points of the sampler's trajectory, in x̃ */
    double sT, sF, scale_in, scale_out;
    if (is_kdiff(m)) {
        sT = p.sigmas[0]; sF = 0; scale_in = p.init_noise_sigma; scale_out = 1;
    } else if (m == SDC_SAMPLE_DPMPP_2M) {
        sT = p.sigmas[0]; sF = p.sigmas[p.n_sigmas - 1];
        scale_in = sqrt(1 + sT * sT); scale_out = 1 / sqrt(1 + sF * sF);
    } else {                                        /* ddim, pndm: ᾱ[t0] → ᾱ[0] */
        double a0 = g_ac[(int)p.timesteps[0]], aF = g_ac[0];
        sT = sqrt((1 - a0) / a0); sF = sqrt((1 - aF) / aF);
        scale_in = 1 / sqrt(a0); scale_out = sqrt(aF);
    }
    double k = sqrt((g.s2 + sF * sF) / (g.s2 + sT * sT)), err = 0;
    for (size_t i = 0; i < n; i++) {
        double xT = noise[i] * scale_in;
        double want = (g.mu + (xT - g.mu) * k) * scale_out;
        double d = fabs(x[i] - want);
        if (isnan(d)) err = INFINITY;
        else if (d > err) err = d;
    }
    CHECK(g.call == p.n_calls, "gauss %s: %d model calls, plan says %d", sdc_sample_method_name(m),
          g.call, p.n_calls);
    free(x);
    sdc_sampler_plan_free(&p);
    return err;
}

/* Global error must fall like h^order: e(N)/e(2N) ≈ 2^order. Expected orders, as the schedules
 * make them: Euler, DDIM (Euler in x̃ vs σ) 1; Heun 2; PLMS on ε 2 (v: 1 — diffusers' PNDM
 * converts the combined v to ε with the current sample, which is first order); DPM-Solver++ 2M
 * 2 with Karras σ, but 1 with discrete σ: its last step jumps to σ(t=0) and that step's log-σ
 * length shrinks only like ½·log t_last, so it dominates at these step counts. */
static void test_convergence(void) {
    enum { N = 256 };
    float noise[N];
    sdc_rng r;
    sdc_rng_seed(&r, 1234);
    sdc_rng_randn(&r, noise, N);
    static const struct { sdc_sample_method m; sdc_schedule s; int order_eps, order_v; } C[] = {
        {SDC_SAMPLE_EULER, SDC_SCHED_DISCRETE, 1, 1}, {SDC_SAMPLE_EULER, SDC_SCHED_KARRAS, 1, 1},
        {SDC_SAMPLE_HEUN, SDC_SCHED_DISCRETE, 2, 2}, {SDC_SAMPLE_HEUN, SDC_SCHED_KARRAS, 2, 2},
        {SDC_SAMPLE_DDIM, SDC_SCHED_DISCRETE, 1, 1}, {SDC_SAMPLE_PNDM, SDC_SCHED_DISCRETE, 2, 1},
        {SDC_SAMPLE_DPMPP_2M, SDC_SCHED_DISCRETE, 1, 1}, {SDC_SAMPLE_DPMPP_2M, SDC_SCHED_KARRAS, 2, 2},
    };
    printf("analytic Gaussian model, max |x − exact ODE solution| at 10/20/40 steps:\n");
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++)
        for (int pred = 0; pred < 2; pred++) {
            double e1 = gauss_run(C[i].m, C[i].s, pred, 10, noise, N);
            double e2 = gauss_run(C[i].m, C[i].s, pred, 20, noise, N);
            double e3 = gauss_run(C[i].m, C[i].s, pred, 40, noise, N);
            double o1 = log2(e1 / e2), o2 = log2(e2 / e3);
            int order = pred ? C[i].order_v : C[i].order_eps;
            printf("  %-8s %-8s %-3s %.3g %.3g %.3g  observed order %.2f %.2f (expected %d)\n",
                   sdc_sample_method_name(C[i].m), C[i].s == SDC_SCHED_KARRAS ? "karras" : "discrete",
                   pred ? "v" : "eps", e1, e2, e3, o1, o2, order);
            CHECK(e3 < e2 && e2 < e1, "%s: error does not fall with steps", sdc_sample_method_name(C[i].m));
            CHECK(o2 > order - 0.35, "%s %s: observed order %.2f, expected %d",
                  sdc_sample_method_name(C[i].m), pred ? "v" : "eps", o2, order);
        }
}

/* Stochastic samplers on the Gaussian model: the mean and variance of x after the loop follow a
 * linear recursion through each step (drift, plus fresh N(0,1) scaled as the sampler scales it);
 * the empirical moments over 16384 elements must match it. */
static void moments(const float *x, size_t n, double *mean, double *sd) {
    double s = 0, q = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    *mean = s / n;
    for (size_t i = 0; i < n; i++) q += (x[i] - *mean) * (x[i] - *mean);
    *sd = sqrt(q / (n - 1));
}

static void test_stochastic(void) {
    enum { N = 16384 };
    float *x = malloc(N * sizeof *x);
    sdc_err e = {{0}};
    const double mu = 0.3, s2 = 0.25;
    /* Euler a: x̃' − μ = a·(x̃ − μ) + σ_up·n, a = 1 + (1 − g)(σ_down − σ)/σ, g = s²/(s²+σ²) */
    for (int steps = 5; steps <= 20; steps += 15) {
        sdc_sampler_opts o = {.method = SDC_SAMPLE_EULER_A, .spacing = SDC_SPACING_DEFAULT,
                              .steps = steps, .strength = 1.0f};
        sdc_sampler_plan p;
        if (sdc_sampler_plan_make(&o, &p, &e) < 0) { CHECK(0, "euler_a: %s", e.msg); break; }
        double m = -mu, v = (double)p.init_noise_sigma * p.init_noise_sigma, v_dry = v;
        for (int i = 0; i + 1 < p.n_sigmas; i++) {
            double sg = p.sigmas[i], to = p.sigmas[i + 1];
            double up = sqrt(to * to * (sg * sg - to * to) / (sg * sg)), down = sqrt(to * to - up * up);
            double g = s2 / (s2 + sg * sg), a = 1 + (1 - g) * (down - sg) / sg;
            m = a * m;
            v = a * a * v + up * up;
            v_dry = a * a * v_dry;                 /* the same loop without its noise */
        }
        sdc_rng r;
        sdc_rng_seed(&r, 99);
        sdc_rng_randn(&r, x, N);
        gauss g = {.mu = mu, .s2 = s2, .p = &p, .m = o.method, .pred = SDC_PRED_EPS, .n = N};
        int rc = sdc_sample(&o, &r, x, NULL, N, gauss_model, &g, NULL, NULL, &e);
        CHECK(rc == 0, "euler_a: %s", e.msg);
        double mean, sd;
        moments(x, N, &mean, &sd);
        printf("euler_a %2d steps on the Gaussian model: mean %.4f (expected %.4f), sd %.4f "
               "(expected %.4f)\n", steps, mean, mu + m, sd, sqrt(v));
        CHECK(fabs(mean - (mu + m)) < 5 * sqrt(v / N), "euler_a: mean %.4f, expected %.4f", mean, mu + m);
        CHECK(fabs(sd / sqrt(v) - 1) < 0.03, "euler_a: sd %.4f, expected %.4f", sd, sqrt(v));
        /* without (or with misscaled) ancestral noise the sd would be far off: the check can fail */
        CHECK(fabs(sqrt(v_dry) / sqrt(v) - 1) > 0.3, "euler_a: moment test cannot tell noise from none");
        sdc_sampler_plan_free(&p);
    }
    /* LCM (VP x): denoised = A·x + B, A = c_out·g/α + c_skip, B = c_out·(1 − g)·μ; then
     * x' = √ᾱ_prev·denoised + √(1 − ᾱ_prev)·n, except after the last step */
    for (int steps = 4; steps <= 8; steps += 4) {
        sdc_sampler_opts o = {.method = SDC_SAMPLE_LCM, .spacing = SDC_SPACING_DEFAULT,
                              .steps = steps, .strength = 1.0f};
        sdc_sampler_plan p;
        if (sdc_sampler_plan_make(&o, &p, &e) < 0) { CHECK(0, "lcm: %s", e.msg); break; }
        double m = 0, v = 1;
        for (int i = 0; i < p.n_timesteps; i++) {
            int t = (int)p.timesteps[i];
            double ac = g_ac[t], al = sqrt(ac), sg = sqrt((1 - ac) / ac);
            double st = 10.0 * t, c_skip = 0.25 / (st * st + 0.25), c_out = st / sqrt(st * st + 0.25);
            double g = s2 / (s2 + sg * sg), A = c_out * g / al + c_skip, B = c_out * (1 - g) * mu;
            m = A * m + B;
            v = A * A * v;
            if (i + 1 < p.n_timesteps) {
                double ap = g_ac[(int)p.timesteps[i + 1]];
                m = sqrt(ap) * m;
                v = ap * v + (1 - ap);
            }
        }
        sdc_rng r;
        sdc_rng_seed(&r, 7);
        sdc_rng_randn(&r, x, N);
        gauss g = {.mu = mu, .s2 = s2, .p = &p, .m = o.method, .pred = SDC_PRED_EPS, .n = N};
        int rc = sdc_sample(&o, &r, x, NULL, N, gauss_model, &g, NULL, NULL, &e);
        CHECK(rc == 0, "lcm: %s", e.msg);
        double mean, sd;
        moments(x, N, &mean, &sd);
        printf("lcm %d steps [", steps);
        for (int i = 0; i < p.n_timesteps; i++) printf("%s%g", i ? " " : "", p.timesteps[i]);
        printf("] on the Gaussian model: mean %.4f (expected %.4f), sd %.4f (expected %.4f)\n",
               mean, m, sd, sqrt(v));
        CHECK(fabs(mean - m) < 5 * sqrt(v / N), "lcm: mean %.4f, expected %.4f", mean, m);
        CHECK(fabs(sd / sqrt(v) - 1) < 0.03, "lcm: sd %.4f, expected %.4f", sd, sqrt(v));
        CHECK(g.call == steps, "lcm: %d calls for %d steps", g.call, steps);
        sdc_sampler_plan_free(&p);
    }
    /* the ancestral samplers need a generator */
    sdc_sampler_opts o = {.method = SDC_SAMPLE_EULER_A, .spacing = SDC_SPACING_DEFAULT, .steps = 3,
                          .strength = 1.0f};
    sdc_sampler_plan p;
    if (sdc_sampler_plan_make(&o, &p, &e) == 0) {
        gauss g = {.mu = mu, .s2 = s2, .p = &p, .m = o.method, .n = N};
        CHECK(sdc_sample(&o, NULL, x, NULL, N, gauss_model, &g, NULL, NULL, &e) < 0,
              "euler_a without a generator was accepted");
        sdc_sampler_plan_free(&p);
    }
    free(x);
}

static int plan_of(sdc_sample_method m, sdc_schedule sch, sdc_spacing sp, int steps, float strength,
                   sdc_sampler_plan *p, sdc_err *e) {
    sdc_sampler_opts o = {.method = m, .schedule = sch, .spacing = sp, .steps = steps,
                          .strength = strength};
    return sdc_sampler_plan_make(&o, p, e);
}

static void expect_ts(sdc_sample_method m, sdc_spacing sp, int steps, const double *want, int nw) {
    sdc_sampler_plan p;
    sdc_err e = {{0}};
    if (plan_of(m, SDC_SCHED_DISCRETE, sp, steps, 1.0f, &p, &e) < 0) {
        CHECK(0, "%s %s %d: %s", sdc_sample_method_name(m), sdc_spacing_name(sp), steps, e.msg);
        return;
    }
    int ok = p.n_timesteps == nw;
    for (int i = 0; ok && i < nw; i++) ok = p.timesteps[i] == want[i];
    CHECK(ok, "%s %s %d steps: timesteps differ from diffusers'", sdc_sample_method_name(m),
          sdc_spacing_name(sp), steps);
    sdc_sampler_plan_free(&p);
}

/* Schedules with known values (the spacing table of arXiv 2305.08891, LCM's documented 4- and
 * 8-step schedules, numpy's half-to-even rounding) and structural invariants. */
static void test_schedules(void) {
    sdc_err e = {{0}};
    static const double trail[] = {999, 799, 599, 399, 199};
    static const double ddim_lin[] = {999, 749, 500, 250, 0};       /* 499.5 → 500, 249.75 → 250 */
    static const double dpm_lin[] = {999, 799, 599, 400, 200};      /* linspace(0, 999, 6) */
    static const double pndm_trail[] = {999, 799, 799, 599, 399, 199};
    static const double lcm4[] = {999, 759, 499, 259};
    static const double lcm8[] = {999, 879, 759, 639, 499, 379, 259, 139};
    static const double lcm1[] = {999};
    static const double eul_trail_50[] = {999, 979, 959};            /* first three */
    expect_ts(SDC_SAMPLE_DDIM, SDC_SPACING_TRAILING, 5, trail, 5);
    expect_ts(SDC_SAMPLE_EULER, SDC_SPACING_TRAILING, 5, trail, 5);
    expect_ts(SDC_SAMPLE_DPMPP_2M, SDC_SPACING_TRAILING, 5, trail, 5);
    expect_ts(SDC_SAMPLE_DDIM, SDC_SPACING_LINSPACE, 5, ddim_lin, 5);
    expect_ts(SDC_SAMPLE_DPMPP_2M, SDC_SPACING_LINSPACE, 5, dpm_lin, 5);
    expect_ts(SDC_SAMPLE_PNDM, SDC_SPACING_TRAILING, 5, pndm_trail, 6);
    expect_ts(SDC_SAMPLE_LCM, SDC_SPACING_DEFAULT, 4, lcm4, 4);
    expect_ts(SDC_SAMPLE_LCM, SDC_SPACING_DEFAULT, 8, lcm8, 8);
    expect_ts(SDC_SAMPLE_LCM, SDC_SPACING_DEFAULT, 1, lcm1, 1);
    {
        sdc_sampler_plan p;
        if (plan_of(SDC_SAMPLE_EULER, SDC_SCHED_DISCRETE, SDC_SPACING_TRAILING, 50, 1, &p, &e) == 0) {
            CHECK(p.n_timesteps == 50 && !memcmp(p.timesteps, eul_trail_50, sizeof eul_trail_50) &&
                  p.timesteps[49] == 19, "euler trailing 50 steps");
            sdc_sampler_plan_free(&p);
        }
    }
    /* default spacings = the class defaults SD 1.5's config leaves in place */
    CHECK(sdc_default_spacing(SDC_SAMPLE_EULER) == SDC_SPACING_LINSPACE &&
          sdc_default_spacing(SDC_SAMPLE_EULER_A) == SDC_SPACING_LINSPACE &&
          sdc_default_spacing(SDC_SAMPLE_HEUN) == SDC_SPACING_LINSPACE &&
          sdc_default_spacing(SDC_SAMPLE_DPMPP_2M) == SDC_SPACING_LINSPACE &&
          sdc_default_spacing(SDC_SAMPLE_DDIM) == SDC_SPACING_LEADING &&
          sdc_default_spacing(SDC_SAMPLE_PNDM) == SDC_SPACING_LEADING &&
          sdc_default_spacing(SDC_SAMPLE_LCM) == SDC_SPACING_LEADING, "default spacings");
    /* names round-trip */
    for (int m = 0; m <= SDC_SAMPLE_LCM; m++)
        CHECK(sdc_sample_method_from_name(sdc_sample_method_name(m)) == m, "name of method %d", m);
    CHECK(sdc_sample_method_from_name("dpm++2m") == SDC_SAMPLE_DPMPP_2M &&
          sdc_sample_method_from_name("euler_a") == SDC_SAMPLE_EULER_A &&
          sdc_sample_method_from_name("k_lms") == -1 && sdc_sample_method_from_name(NULL) == -1,
          "method names");
    CHECK(sdc_spacing_from_name("trailing") == SDC_SPACING_TRAILING && sdc_spacing_from_name("x") == -1,
          "spacing names");

    /* Heun = Euler's σ and t with every entry after the first doubled, ending at σ = 0 */
    for (int sch = 0; sch < 2; sch++)
        for (int sp = 0; sp < 3; sp++) {
            sdc_sampler_plan pe, ph;
            if (plan_of(SDC_SAMPLE_EULER, sch, sp, 7, 1, &pe, &e) < 0 ||
                plan_of(SDC_SAMPLE_HEUN, sch, sp, 7, 1, &ph, &e) < 0) { CHECK(0, "heun: %s", e.msg); continue; }
            int ok = ph.n_timesteps == 13 && ph.n_sigmas == 14 && ph.sigmas[13] == 0 &&
                     ph.timesteps[0] == pe.timesteps[0] && ph.sigmas[0] == pe.sigmas[0] &&
                     ph.init_noise_sigma == pe.init_noise_sigma;
            for (int i = 1; ok && i < 7; i++)
                ok = ph.timesteps[2 * i - 1] == pe.timesteps[i] && ph.timesteps[2 * i] == pe.timesteps[i] &&
                     ph.sigmas[2 * i - 1] == pe.sigmas[i] && ph.sigmas[2 * i] == pe.sigmas[i];
            CHECK(ok, "heun plan (%s, %s) is not euler's doubled", sch ? "karras" : "discrete",
                  sdc_spacing_name(sp));
            sdc_sampler_plan_free(&pe);
            sdc_sampler_plan_free(&ph);
        }

    /* Karras: σ_i^(1/7) linear in i between the discrete schedule's end points; σ decreasing;
     * init_noise_sigma = σmax (linspace) or √(σmax²+1) (leading) */
    for (int sp = 0; sp < 2; sp++) {
        sdc_sampler_plan pd, pk;
        if (plan_of(SDC_SAMPLE_EULER, SDC_SCHED_DISCRETE, sp, 12, 1, &pd, &e) < 0 ||
            plan_of(SDC_SAMPLE_EULER, SDC_SCHED_KARRAS, sp, 12, 1, &pk, &e) < 0) { CHECK(0, "karras: %s", e.msg); continue; }
        double a = pow(pk.sigmas[0], 1 / 7.0), b = pow(pk.sigmas[11], 1 / 7.0), worst = 0;
        for (int i = 0; i < 12; i++) {
            double want = pow(a + (b - a) * i / 11.0, 7.0);
            double d = fabs(pk.sigmas[i] - want) / want;
            if (d > worst) worst = d;
            if (i) CHECK(pk.sigmas[i] < pk.sigmas[i - 1] && pk.timesteps[i] < pk.timesteps[i - 1],
                         "karras not decreasing at %d", i);
        }
        CHECK(worst < 1e-6, "karras σ off the ρ=7 ramp by %.3g", worst);
        CHECK(fabs(pk.sigmas[0] / pd.sigmas[0] - 1) < 1e-6 && fabs(pk.sigmas[11] / pd.sigmas[11] - 1) < 1e-6,
              "karras end points differ from the discrete schedule's");
        /* σ→t inverts log σ(t) piecewise linearly: σ(t_i) from the double table matches σ_i */
        double tw = 0;
        for (int i = 0; i < 12; i++) {
            double t = pk.timesteps[i];
            int lo = (int)floor(t);
            if (lo > 998) lo = 998;
            double w = t - lo, s0 = sqrt((1 - g_ac[lo]) / g_ac[lo]), s1 = sqrt((1 - g_ac[lo + 1]) / g_ac[lo + 1]);
            double sig = exp((1 - w) * log(s0) + w * log(s1));
            double d = fabs(sig / pk.sigmas[i] - 1);
            if (d > tw) tw = d;
        }
        CHECK(tw < 1e-4, "karras timesteps do not map back to their σ (%.3g)", tw);
        float mx = pk.sigmas[0];
        CHECK(pk.init_noise_sigma == (sp == SDC_SPACING_LEADING ? sqrtf(mx * mx + 1) : mx),
              "karras init_noise_sigma");
        printf("euler karras %s 12 steps: σ %.4f … %.4f, ρ-ramp error %.2g, σ(t) error %.2g\n",
               sdc_spacing_name(sp), pk.sigmas[0], pk.sigmas[11], worst, tw);
        sdc_sampler_plan_free(&pd);
        sdc_sampler_plan_free(&pk);
    }
    /* DPM++ Karras ends on σmin twice (diffusers 0.25 does not step to σ = 0) */
    {
        sdc_sampler_plan p;
        if (plan_of(SDC_SAMPLE_DPMPP_2M, SDC_SCHED_KARRAS, SDC_SPACING_DEFAULT, 9, 1, &p, &e) == 0) {
            CHECK(p.n_sigmas == 10 && p.sigmas[9] == p.sigmas[8] && p.timesteps[8] == 0 &&
                  p.timesteps[0] == 999, "dpm++2m karras ends");
            sdc_sampler_plan_free(&p);
        }
    }

    /* bad options: one clear error each */
    sdc_sampler_plan p;
    static const struct { sdc_sample_method m; sdc_schedule s; int steps; float str; const char *what; } B[] = {
        {SDC_SAMPLE_DDIM, SDC_SCHED_KARRAS, 5, 1, "karras with ddim"},
        {SDC_SAMPLE_PNDM, SDC_SCHED_KARRAS, 5, 1, "karras with pndm"},
        {SDC_SAMPLE_EULER_A, SDC_SCHED_KARRAS, 5, 1, "karras with euler_a"},
        {SDC_SAMPLE_LCM, SDC_SCHED_KARRAS, 4, 1, "karras with lcm"},
        {SDC_SAMPLE_EULER, SDC_SCHED_DISCRETE, 0, 1, "0 steps"},
        {SDC_SAMPLE_EULER, SDC_SCHED_DISCRETE, 1001, 1, "1001 steps"},
        {SDC_SAMPLE_LCM, SDC_SCHED_DISCRETE, 51, 1, "lcm 51 steps"},
        {SDC_SAMPLE_EULER, SDC_SCHED_DISCRETE, 5, 0, "strength 0"},
        {SDC_SAMPLE_EULER, SDC_SCHED_DISCRETE, 5, 1.5f, "strength 1.5"},
        {SDC_SAMPLE_EULER, SDC_SCHED_DISCRETE, 5, 0.1f, "strength 0.1 of 5 steps (no step left)"},
        {(sdc_sample_method)42, SDC_SCHED_DISCRETE, 5, 1, "unknown method"},
    };
    for (size_t i = 0; i < sizeof B / sizeof B[0]; i++) {
        e.msg[0] = 0;
        int rc = plan_of(B[i].m, B[i].s, SDC_SPACING_DEFAULT, B[i].steps, B[i].str, &p, &e);
        CHECK(rc < 0 && e.msg[0], "%s was accepted", B[i].what);
        if (rc == 0) sdc_sampler_plan_free(&p);
        else printf("  rejected %-40s: %s\n", B[i].what, e.msg);
    }
}

/* img2img: get_timesteps (t_start·order) and add_noise at the first timestep. */
typedef struct first_in { float *x_in; size_t n; int calls; float t; } first_in;

static int record_first(void *ctx, const float *x_in, float t, float *out, sdc_err *e) {
    first_in *f = ctx;
    if (f->calls++ == 0) { memcpy(f->x_in, x_in, f->n * sizeof *x_in); f->t = t; }
    memset(out, 0, f->n * sizeof *out);
    (void)e;
    return 0;
}

static void test_img2img(void) {
    enum { N = 64 };
    float init[N], noise[N], x[N], xin[N];
    sdc_rng r;
    sdc_rng_seed(&r, 5);
    sdc_rng_randn(&r, noise, N);
    for (int i = 0; i < N; i++) init[i] = 0.5f * sinf((float)i);
    static const struct { sdc_sample_method m; int steps; float strength; int start, calls; } C[] = {
        {SDC_SAMPLE_EULER, 20, 0.75f, 5, 15}, {SDC_SAMPLE_EULER, 20, 0.7f, 6, 14},  /* int(20·0.7) = 14 */
        {SDC_SAMPLE_HEUN, 20, 0.75f, 10, 29}, {SDC_SAMPLE_DDIM, 10, 0.3f, 7, 3},
        {SDC_SAMPLE_PNDM, 10, 0.5f, 5, 6}, {SDC_SAMPLE_DPMPP_2M, 10, 0.6f, 4, 6},
        {SDC_SAMPLE_EULER_A, 8, 1.0f, 0, 8}, {SDC_SAMPLE_LCM, 4, 0.5f, 2, 2},
    };
    for (size_t k = 0; k < sizeof C / sizeof C[0]; k++) {
        sdc_sampler_opts o = {.method = C[k].m, .spacing = SDC_SPACING_DEFAULT, .steps = C[k].steps,
                              .strength = C[k].strength};
        sdc_sampler_plan p;
        sdc_err e = {{0}};
        if (sdc_sampler_plan_make(&o, &p, &e) < 0) { CHECK(0, "img2img: %s", e.msg); continue; }
        CHECK(p.start == C[k].start && p.n_calls == C[k].calls, "img2img %s strength %g: start %d, "
              "%d calls; want %d, %d", sdc_sample_method_name(C[k].m), (double)C[k].strength,
              p.start, p.n_calls, C[k].start, C[k].calls);
        memcpy(x, noise, sizeof x);
        first_in f = {.x_in = xin, .n = N};
        sdc_rng_seed(&r, 6);
        int rc = sdc_sample(&o, &r, x, init, N, record_first, &f, NULL, NULL, &e);
        CHECK(rc == 0 && f.calls == p.n_calls, "img2img %s: %s", sdc_sample_method_name(C[k].m), e.msg);
        /* the first UNet input: the noised init (scaled to unit variance for σ schedulers) */
        double t0 = p.timesteps[p.start], worst = 0;
        CHECK(f.t == (float)t0, "img2img first t %g, want %g", (double)f.t, t0);
        for (int i = 0; i < N; i++) {
            double want;
            if (p.n_sigmas) {
                double sg = p.sigmas[p.start];
                want = (init[i] + (double)noise[i] * sg) / sqrt(1 + sg * sg);
            } else {
                double ac = g_ac[(int)t0];
                want = sqrt(ac) * init[i] + sqrt(1 - ac) * noise[i];
            }
            double d = fabs(xin[i] - want);
            if (d > worst) worst = d;
        }
        printf("img2img %-8s %2d steps strength %.2f: starts at t=%g (index %d), %d UNet calls, "
               "noised input max |Δ| %.2g\n", sdc_sample_method_name(C[k].m), C[k].steps,
               (double)C[k].strength, t0, p.start, p.n_calls, worst);
        CHECK(worst < 1e-5, "img2img %s: noised input off by %.3g", sdc_sample_method_name(C[k].m), worst);
        sdc_sampler_plan_free(&p);
    }
}

int main(void) {
    /* The tiny model's 8x8 UNet gains nothing from threads, and on a loaded machine OpenMP's
     * spin-waiting made this test 30x slower (10 s vs 0.35 s); results do not depend on it. */
    omp_set_num_threads(1);
    static const char *files[] = {
        "sd1_pipe_64x64_ddim", "sd1_pipe_64x64_pndm", "sd1_pipe_64x64_euler",
        "sd1_pipe_64x64_euler_linspace", "sd1_pipe_64x64_dpmpp_2m",
        "sd1_pipe_64x64_dpmpp_2m_karras", "sd1_pipe_128x128_ddim", "sd1_pipe_128x128_euler",
        "sd1_pipe_128x128_dpmpp_2m_karras", "sd2_pipe_64x64_ddim_v", "sd2_pipe_64x64_euler_v",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) test_pipe(files[i]);
    test_seeded();
    test_seeded_e2e("euler");
    test_seeded_e2e("euler_a");
    make_double_schedule();
    test_convergence();
    test_stochastic();
    test_schedules();
    test_img2img();
    if (failures) { printf("test_sampler: %d failure(s)\n", failures); return 1; }
    printf("test_sampler: ok\n");
    return 0;
}
