/* sampler.h — the sampling loop: schedulers as diffusers defines them (SD 1.5's default
 * configuration: 1000 train steps, scaled_linear betas 0.00085 → 0.012, steps_offset 1),
 * Karras sigmas, timestep spacings, ε / v prediction, img2img strength.
 *
 * The model is a callback: given the scheduler-scaled input x_in (what diffusers passes to the
 * UNet after scale_model_input) and the timestep t, it writes the guided model output
 * (ε or v, CFG already applied). The sampler does all the rest, including drawing per-step
 * noise (euler_a, lcm) from the same generator as the initial noise, in diffusers' order. */
#ifndef SDC_SAMPLER_H
#define SDC_SAMPLER_H

#include <stddef.h>

#include "runtime/err.h"
#include "pipeline/rng.h"

typedef enum { SDC_SAMPLE_EULER, SDC_SAMPLE_EULER_A, SDC_SAMPLE_HEUN, SDC_SAMPLE_DDIM,
               SDC_SAMPLE_PNDM, SDC_SAMPLE_DPMPP_2M, SDC_SAMPLE_LCM } sdc_sample_method;
typedef enum { SDC_SCHED_DISCRETE, SDC_SCHED_KARRAS } sdc_schedule;
typedef enum { SDC_SPACING_DEFAULT = -1, SDC_SPACING_LEADING = 0, SDC_SPACING_LINSPACE,
               SDC_SPACING_TRAILING } sdc_spacing;
typedef enum { SDC_PRED_EPS = 0, SDC_PRED_V = 1 } sdc_prediction;

/* The running loop, as a post-step hook sees it (opaque). */
typedef struct sdc_sample_state sdc_sample_state;
/* Called after each model call's scheduler step (call 0-based, of n_calls) with the latents x
 * (n floats), which it may change: inpainting with an ordinary UNet puts the known region back
 * here. Returns 0, or -1 with e set (the loop stops). */
typedef int (*sdc_post_step_fn)(void *ctx, const sdc_sample_state *s, int call, int n_calls,
                                float *x, sdc_err *e);

/* Name ↔ enum ("euler", "euler_a", "heun", "ddim", "pndm", "dpm++2m", "lcm"); -1 unknown. */
int         sdc_sample_method_from_name(const char *s);
const char *sdc_sample_method_name(int m);
/* The spacing diffusers' SD 1.5 pipeline gives each sampler out of the box. */
sdc_spacing sdc_default_spacing(sdc_sample_method m);

typedef struct sdc_sampler_opts {
    sdc_sample_method method;
    sdc_schedule      schedule;
    sdc_spacing       spacing;        /* SDC_SPACING_DEFAULT: sdc_default_spacing(method) */
    sdc_prediction    prediction;
    int               steps;
    float             strength;       /* img2img: 0 < strength <= 1; 1 for txt2img */
    /* training schedule (SD 1.x/2.x defaults when zero) */
    int               num_train_timesteps;  /* 1000 */
    float             beta_start, beta_end; /* 0.00085, 0.012 (scaled_linear) */
    sdc_post_step_fn  post_step;            /* NULL: none */
    void             *post_step_ctx;
} sdc_sampler_opts;

/* Guided model output at (x_in, t) into out (n floats). Returns 0, or -1 with e set. */
typedef int (*sdc_model_fn)(void *ctx, const float *x_in, float t, float *out, sdc_err *e);
/* Progress: called after each step (step is 1-based). May be NULL. */
typedef void (*sdc_progress_fn)(void *ctx, int step, int steps);

/* Runs the whole loop on latents x[n] (one image: n = 4*h*w).
 * txt2img (init == NULL): x holds N(0,1) noise on entry (drawn by the caller from rng:
 *   sdc_rng_randn(rng, x, n)); the sampler scales it by init_noise_sigma.
 * img2img (init != NULL): init = the encoded image latents (×0.18215); x holds N(0,1) noise;
 *   the first (1-strength) of the schedule is skipped and init is noised to the start
 *   timestep as diffusers' img2img pipeline does. (diffusers draws from the one generator
 *   first the VAE posterior sample, init = 0.18215·(mean + std·randn), then this noise.)
 * Karras sigmas exist for euler, heun and dpm++2m (diffusers 0.25's use_karras_sigmas); other
 * methods with SDC_SCHED_KARRAS are refused with an error, as are steps outside
 * [1, num_train_timesteps] (lcm: [1, 50]) and spacings that give a timestep below 0.
 * rng may be NULL only for methods that draw no noise (all but euler_a and lcm; euler draws
 * and discards one block per step when rng is given, as diffusers 0.25.1 does).
 * On return x holds the final latents. Returns 0, or -1 with e set. */
int sdc_sample(const sdc_sampler_opts *o, sdc_rng *rng, float *x, const float *init, size_t n,
               sdc_model_fn model, void *model_ctx, sdc_progress_fn progress, void *progress_ctx,
               sdc_err *e);

/* For a post-step hook after call `call`: out = scheduler.add_noise(init, noise, t) at the
 * timestep the loop runs next (timesteps[start + call + 1], diffusers' noise_timestep); after
 * the last call out = init, unnoised. The same add_noise as the img2img start. n floats; out
 * may be init or noise. */
void sdc_sample_noise_to_next(const sdc_sample_state *s, int call, float *out, const float *init,
                              const float *noise);

/* The schedule diffusers 0.25.1 computes for these options (set_timesteps, then the img2img
 * pipeline's get_timesteps), exposed for tests, `inspect`-style output and progress bars.
 * Arrays are malloc'd; sdc_sampler_plan_free releases them (a zeroed plan is fine). */
typedef struct sdc_sampler_plan {
    int     n_timesteps;      /* len(scheduler.timesteps) (Heun: 2·steps−1, PNDM: steps+1) */
    double *timesteps;        /* scheduler.timesteps, as the UNet receives them (float32- or
                                 int64-valued) */
    int     n_sigmas;         /* len(scheduler.sigmas); 0 for DDIM, PNDM, LCM */
    float  *sigmas;           /* scheduler.sigmas (float32) */
    float   init_noise_sigma; /* scheduler.init_noise_sigma (txt2img scales the noise by it) */
    int     start;            /* first timestep index the loop runs (img2img: t_start·order) */
    int     n_calls;          /* UNet evaluations = n_timesteps − start */
    sdc_spacing spacing;      /* the spacing used (SDC_SPACING_DEFAULT resolved) */
} sdc_sampler_plan;

/* Fills p for o. Returns 0, or -1 with e set (bad steps/strength/combination). */
int  sdc_sampler_plan_make(const sdc_sampler_opts *o, sdc_sampler_plan *p, sdc_err *e);
void sdc_sampler_plan_free(sdc_sampler_plan *p);
const char *sdc_spacing_name(sdc_spacing s);      /* "leading", "linspace", "trailing" */
int         sdc_spacing_from_name(const char *s); /* -1 unknown */

#endif
