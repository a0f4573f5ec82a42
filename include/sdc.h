/* sdc.h — the public C API of sdc: open a Stable Diffusion checkpoint, generate images into
 * a buffer, close. The `sdc` command line tool is a thin layer over this header.
 *
 * ABOUT
 *   One model context (sdc_model) owns the tensor store (the mmap'd checkpoint, plus an optional
 *   separate VAE file), the bound f32 weights of the text encoder, UNet and VAE, and the
 *   activation arena. It is not thread-safe: one generation at a time per context; sdc uses
 *   OpenMP threads inside a generation (params.threads).
 *
 * USAGE
 *   sdc_model_params mp = sdc_model_default_params();
 *   mp.model_path = "v1-5-pruned-emaonly.safetensors";
 *   sdc_err err;
 *   sdc_model *m = sdc_model_open(&mp, &err);          // NULL on error, err.msg says why
 *   sdc_gen_params gp = sdc_gen_default_params();
 *   gp.prompt = "a lighthouse at dawn"; gp.seed = 42;
 *   uint8_t *rgb = malloc((size_t)gp.width * gp.height * 3);
 *   if (sdc_generate(m, &gp, rgb, &err) != 0) puts(err.msg);
 *   sdc_model_close(m);
 *
 * Returns: functions returning int give 0 on success and -1 on error, with one line in err.
 *
 * LIFETIMES
 *   sdc_model_open's result is yours until sdc_model_close. The pointers a model hands out
 *   (sdc_model_get_info and the strings in it) live as long as the model. The strings of
 *   sdc_*_name() are static. Every buffer you pass (prompts, init_rgb, outputs) is only read or
 *   written during the call. Paths in sdc_model_params are read by sdc_model_open only.
 *
 * This header is self-contained: it includes only the C standard library. */
#ifndef SDC_H
#define SDC_H

#include <stddef.h>
#include <stdint.h>

#define SDC_VERSION_MAJOR 0
#define SDC_VERSION_MINOR 4
#define SDC_VERSION_PATCH 2
#define SDC_VERSION "0.4.2"

/* The library's version string (SDC_VERSION of the build that made it). */
const char *sdc_version(void);

/* An error: one readable line ("FILE: what is wrong: where"), written by a failing call. The
 * library's internals use the same type (the guard keeps one definition per translation unit). */
#ifndef SDC_ERR_DEFINED
#define SDC_ERR_DEFINED
typedef struct sdc_err {
    char msg[1024];   /* one line, no trailing newline; empty when no error */
} sdc_err;
#endif

/* Samplers, as diffusers' schedulers compute them. Values are stable (appended only). */
typedef enum sdc_sampler {
    SDC_SAMPLER_EULER, SDC_SAMPLER_EULER_A, SDC_SAMPLER_HEUN, SDC_SAMPLER_DDIM,
    SDC_SAMPLER_PNDM, SDC_SAMPLER_DPMPP_2M, SDC_SAMPLER_LCM, SDC_SAMPLER_COUNT
} sdc_sampler;
/* Noise schedules: the scheduler's own ("discrete") or Karras sigmas. */
typedef enum sdc_scheduler { SDC_SCHEDULER_DISCRETE, SDC_SCHEDULER_KARRAS, SDC_SCHEDULER_COUNT } sdc_scheduler;
/* Timestep spacing; DEFAULT = what diffusers' SD pipeline gives the sampler out of the box. */
typedef enum sdc_timestep_spacing {
    SDC_TIMESTEPS_DEFAULT = -1, SDC_TIMESTEPS_LEADING = 0, SDC_TIMESTEPS_LINSPACE,
    SDC_TIMESTEPS_TRAILING, SDC_TIMESTEPS_COUNT
} sdc_timestep_spacing;

/* Names as the CLI spells them ("euler", "euler_a", "heun", "ddim", "pndm", "dpm++2m", "lcm";
 * "discrete", "karras"; "leading", "linspace", "trailing"). *_from_name gives -1 when unknown;
 * *_name gives NULL for a value out of range. */
int         sdc_sampler_from_name(const char *name);
const char *sdc_sampler_name(int sampler);
int         sdc_scheduler_from_name(const char *name);
const char *sdc_scheduler_name(int scheduler);
int         sdc_timestep_spacing_from_name(const char *name);
const char *sdc_timestep_spacing_name(int spacing);

/* Precision of the big products (sdc_model_params.precision). bf16: the UNet's Winograd convs and
 * Linears and the VAE's wide 3x3 convs take bf16 operands (UNet weights packed once at open: half
 * their memory) with f32 sums; norms, softmax, attention, the residual stream, the time
 * embedding, the samplers and the text encoder stay f32. Within ~1e-2 relative of f32 per UNet
 * call (README, "bf16"). */
typedef enum sdc_precision { SDC_PRECISION_F32, SDC_PRECISION_BF16, SDC_PRECISION_COUNT } sdc_precision;
int         sdc_precision_from_name(const char *name);   /* "f32", "bf16"; -1 when unknown */
const char *sdc_precision_name(int precision);           /* NULL out of range */
/* The kernels bf16 runs on this CPU: "avx512_bf16 (vdpbf16ps)", or "plain C" (the CPU has no
 * bf16 instructions, or SDC_BF16=plain is set: the same numbers, several times slower than f32).
 * sdc_cpu_has_bf16: 1 when the CPU has avx512_bf16. */
const char *sdc_bf16_kernels(void);
int         sdc_cpu_has_bf16(void);

typedef struct sdc_model sdc_model;

/* A LoRA to merge into the weights when the model is opened (W' = W + multiplier · alpha/rank ·
 * up @ down, before any packing; several add up). kohya (LoRA, LoCon), diffusers and PEFT files,
 * .safetensors or .ckpt/.pt (read with the same pickle allowlist as models); LoHa, LoKr and other
 * kinds are refused with a line naming them. */
typedef struct sdc_lora {
    const char *path;
    float multiplier;
} sdc_lora;

typedef struct sdc_model_params {
    const char *model_path;        /* .safetensors / .ckpt (either format, decided by bytes) */
    const char *vae_path;          /* optional separate VAE file (NULL: the checkpoint's) */
    const char *config_path;       /* optional JSON config (form of the fixtures' *.config.json) */
    int strict;                    /* refuse unknown pickle globals */
    int allow_unsafe_pickle;       /* load weights even when the pickle names dangerous globals */
    int prediction;                /* -1 auto (config, metadata, SD convention), 0 eps, 1 v */
    int threads;                   /* <= 0: all cores */
    int low_mem;                   /* keep the UNet's weights as stored (f16) and widen them per
                                      layer just in time; VAE decoded in tiles. (The text encoder
                                      and VAE read theirs per layer in every mode.) Same pixels as
                                      the default mode except for the tiled decode; ~3.5 GB less
                                      memory on SD 1.5, UNet steps ~8% slower */
    const sdc_lora *loras;         /* LoRAs merged at open ([n_loras]; NULL: none) */
    int n_loras;
    const char *lora_prompt;       /* a prompt whose <lora:NAME:W> tags are merged at open too:
                                      NAME.safetensors / .ckpt / .pt in lora_model_dir. A prompt
                                      given to sdc_generate must carry the same tags (LoRAs are
                                      merged once, at open; sdc_generate removes the tags) */
    const char *lora_model_dir;    /* where <lora:...> tags are looked up (NULL: tags refused) */
    const char *embd_dir;          /* textual-inversion embeddings: a prompt word equal to a file's
                                      stem is replaced by its vectors (NULL: none) */
    int precision;                 /* sdc_precision: SDC_PRECISION_F32 (default; the reference
                                      bits) or SDC_PRECISION_BF16 (not with low_mem) */
    const char *taesd_path;        /* optional TAESD (tiny autoencoder, diffusers AutoencoderTiny
                                      or standalone taesd_decoder file): decodes the final image
                                      instead of the VAE, and the live previews. img2img and
                                      inpainting still encode with the checkpoint's VAE */
} sdc_model_params;

sdc_model_params sdc_model_default_params(void);
sdc_model       *sdc_model_open(const sdc_model_params *p, sdc_err *err);
void             sdc_model_close(sdc_model *m);            /* NULL is fine */

/* What was detected and where each hyper-parameter came from (for inspect / stderr). */
typedef struct sdc_model_info {
    const char *family;            /* "SD 1.x", "SD 2.x", "SDXL", ... */
    int unet_heads, unet_head_dim; /* one of them > 0 */
    int text_heads;
    const char *text_act;          /* "quick_gelu" / "gelu" */
    const char *prediction;        /* "epsilon" / "v_prediction" */
    const char *config_source;     /* "--config FILE", "metadata tiny_sd_config", ... */
    int context_dim, latent_channels;
    float vae_scale, vae_shift;    /* the latent space: latents = (VAE mean - shift) * scale */
    int unet_in_channels;          /* latent_channels, or latent_channels + 1 + latent_channels
                                      for an inpainting UNet (9: latents, mask, masked image) */
    int vector_cond;               /* 1: SDXL's vector conditioning (pooled text + size/crop) */
    int turbo;                     /* the file's metadata says turbo (SD-Turbo / SDXL-Turbo) */
    int default_sampler;           /* sdc_sampler the model is made for, or -1 */
    int default_spacing;           /* sdc_timestep_spacing of its scheduler config, or -1 */
    const char *recommended;       /* one line of recommended settings, or "" */
} sdc_model_info;
const sdc_model_info *sdc_model_get_info(const sdc_model *m);

/* LoRA i merged at open (0-based; tags of lora_prompt after params.loras): its name (the tag's
 * NAME, or the file's stem), *path and *multiplier. NULL when i is past the last. The strings
 * live as long as m. */
const char *sdc_model_lora(const sdc_model *m, int i, const char **path, float *multiplier);
/* Where sdc_model_open spent its time, phase by phase, measured by the process itself (CPU time
 * and page faults are the whole process's during the phase: getrusage). */
#define SDC_LOAD_MAX_PHASES 8
typedef struct sdc_load_phase {
    const char *name;              /* "open" (map + validate), "config", "loras" (when any),
                                      "text encoder", "unet", "vae" (and embeddings), "release"
                                      (file pages handed back) */
    double wall_s, user_s, sys_s;
    long   minor_faults, major_faults;
    long   rss_kb;                 /* resident set size at the phase's end (-1 unknown) */
} sdc_load_phase;
typedef struct sdc_load_report {
    int            n_phases;
    sdc_load_phase phase[SDC_LOAD_MAX_PHASES];
    double         start;          /* CLOCK_MONOTONIC seconds at sdc_model_open's entry */
    double         opened_s;       /* sdc_model_open, entry to return */
    double         ready_s;        /* entry to every weight bound: = opened_s, or, when the UNet's
                                      weights bind in the background (default mode), when that
                                      finished (known once a generation or sdc_model_wait waited) */
    long           peak_rss_kb;    /* the process's peak RSS (VmHWM) when the weights were all bound
                                      (-1 unknown) */
    double         first_generate; /* CLOCK_MONOTONIC seconds when the model's first generation
                                      began (sdc_generate entry); 0 before */
    double         first_unet;     /* ... and at the start of its first UNet call (the prompt is
                                      tokenized and encoded by then); 0 until one reaches it */
} sdc_load_report;
const sdc_load_report *sdc_model_load_report(const sdc_model *m);

/* SHA-256 (hex, 65 bytes) of the UNet's weights exactly as this model bound them for generation
 * (f32, Winograd- or bf16-packed buffers; in low-mem mode the stored views and their LoRA deltas). `sdc bench-load --digest`
 * and `sdc generate --load-report` print it, so a test sees they bind the same layout. Reads every
 * weight (seconds at full size). */
void sdc_model_layout_digest(sdc_model *m, char hex[65]);

/* Waits until every weight is bound. In the default mode sdc_model_open checks the whole model and
 * allocates every buffer, then converts the UNet's weights on a thread of its own and returns: the
 * first generation encodes its prompt meanwhile and waits for them before its first UNet call (so
 * a caller never needs this). Returns 0, or -1 with err set when binding failed (out of memory);
 * a generation then fails with the same message. */
int sdc_model_wait(sdc_model *m, sdc_err *err);

/* Recommended defaults the model file carries in its metadata (0 when it says nothing). */
void sdc_model_defaults(const sdc_model *m, int *width, int *height, int *steps, float *cfg);

typedef void (*sdc_step_cb)(void *user, int step, int steps);
/* Live preview: the current latents decoded by the TAESD into rgb (width*height*3 bytes, valid
 * only during the call) after step `step` of `steps`. */
typedef void (*sdc_preview_cb)(void *user, int step, int steps, const uint8_t *rgb, int width, int height);

typedef struct sdc_gen_params {
    const char *prompt;
    const char *negative_prompt;   /* "" by default. NULL: none given — SD 1.x/2.x read it as "";
                                      SDXL uses zeros for the negative context and pooled vector
                                      (diffusers' force_zeros_for_empty_prompt), while "" is
                                      encoded like any prompt (the CLI passes NULL without -n) */
    int width, height;             /* multiples of 8; default 512x512 (64x64 for tiny models: see cli) */
    int steps;                     /* default 20 */
    float cfg_scale;               /* default 7.5; <= 1 disables guidance (one UNet call/step) */
    uint64_t seed;                 /* torch.manual_seed(seed) */
    int sample_method;             /* sdc_sampler, default SDC_SAMPLER_EULER_A */
    int schedule;                  /* sdc_scheduler, default SDC_SCHEDULER_DISCRETE */
    int spacing;                   /* sdc_timestep_spacing, default SDC_TIMESTEPS_DEFAULT */
    int clip_skip;                 /* <= 1: none (SD 2.x: penultimate, as SD 2.x does) */
    int prompt_mode;               /* 0 chunk: AUTOMATIC1111's emphasis `(x:1.3)` `[x]`, BREAK and
                                      75-token chunks; 1 truncate: diffusers' (the text as it is,
                                      cut after 75 tokens) */
    const uint8_t *init_rgb;       /* img2img: width*height*3 RGB (NULL: txt2img) */
    float strength;                /* img2img strength (0,1], default 0.75 */
    int vae_tiling;                /* decode in overlapping 32x32-latent tiles (less memory) */
    int size_cond_w, size_cond_h;  /* SDXL: the "original size" conditioning; 0: the output size */
    int crop_x, crop_y;            /* SDXL: the crop's top-left conditioning (default 0,0) */
    sdc_step_cb on_step; void *on_step_user;
    /* Inpainting (diffusers' StableDiffusionInpaintPipeline): width*height grey bytes, >= 128
     * (white) = repaint, below = keep; needs init_rgb (the picture) and uses strength. An
     * inpainting UNet (info.unet_in_channels 9) gets the mask and the masked picture's latents as
     * extra input; an ordinary one gets the kept region put back after every step. NULL: no
     * mask; an inpainting UNet then runs with an all-white mask (paints the whole picture, as
     * diffusers does when given one), with or without init_rgb. */
    const uint8_t *mask;
    /* Called after each step with the latents [latent_channels, height/8, width/8] as the next
     * step gets them (after inpainting's blending); step is 1-based. Previews, tests. May be NULL. */
    void (*on_latents)(void *user, int step, int steps, const float *latents);
    void *on_latents_user;
    const volatile int *interrupt; /* NULL, or a flag another thread may set: when nonzero before a
                                      sampling step, the call stops and returns -1 with
                                      "interrupted" (a server's cancel) */
    /* Every preview_every (>= 1) steps and after the last: on_preview with a TAESD picture of
     * the current latents (needs sdc_model_params.taesd_path; NULL: no previews). */
    sdc_preview_cb on_preview; void *on_preview_user; int preview_every;
} sdc_gen_params;

sdc_gen_params sdc_gen_default_params(void);

/* Generates one image. rgb (width*height*3 bytes, round(clamp(x)*255)) and/or image
 * (width*height*3 floats in [0,1], the pipeline's output_type="np") may be NULL.
 * latents (4*(h/8)*(w/8) floats, final latents before the VAE) may be NULL. */
int sdc_generate_ex(sdc_model *m, const sdc_gen_params *p, uint8_t *rgb, float *image,
                    float *latents, sdc_err *err);
int sdc_generate(sdc_model *m, const sdc_gen_params *p, uint8_t *rgb, sdc_err *err);

#endif
