/* sdc.c — the public API of include/sdc.h: open a checkpoint, bind the three graphs, and run
 * the generation loop: tokenizer → text encoder → sampler loop (UNet with classifier-free
 * guidance) → VAE. Mirrors diffusers' StableDiffusionPipeline / StableDiffusionImg2ImgPipeline
 * on CPU. The layer above pipeline/: it turns the public parameters into the pipeline's. */
#include "sdc.h"
#include "runtime/procstat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "kernels/kernels.h"
#include "models/clip.h"
#include "models/unet.h"
#include "models/taesd.h"
#include "models/vae.h"
#include "pipeline/detect.h"
#include "pipeline/inpaint.h"
#include "pipeline/modelcfg.h"
#include "pipeline/prompt.h"
#include "pipeline/sampler.h"
#include "pipeline/sdxl.h"
#include "runtime/lora.h"
#include "runtime/sha256.h"
#include "runtime/store.h"
#include "tokenizer/tokenizer.h"

#define MAX_LORAS 256           /* LoRAs merged into one model: far more than anyone stacks */
#define MAX_SIDE 8192           /* pixels; 64 MB of latents at batch 2 */

/* The public enums are the sampler's own values (sdc.h stands alone, so it spells them again). */
_Static_assert(SDC_SAMPLER_EULER == (int)SDC_SAMPLE_EULER && SDC_SAMPLER_EULER_A == (int)SDC_SAMPLE_EULER_A &&
               SDC_SAMPLER_HEUN == (int)SDC_SAMPLE_HEUN && SDC_SAMPLER_DDIM == (int)SDC_SAMPLE_DDIM &&
               SDC_SAMPLER_PNDM == (int)SDC_SAMPLE_PNDM && SDC_SAMPLER_DPMPP_2M == (int)SDC_SAMPLE_DPMPP_2M &&
               SDC_SAMPLER_LCM == (int)SDC_SAMPLE_LCM, "sdc_sampler and sdc_sample_method disagree");
_Static_assert(SDC_SCHEDULER_DISCRETE == (int)SDC_SCHED_DISCRETE && SDC_SCHEDULER_KARRAS == (int)SDC_SCHED_KARRAS,
               "sdc_scheduler and sdc_schedule disagree");
_Static_assert(SDC_TIMESTEPS_DEFAULT == (int)SDC_SPACING_DEFAULT && SDC_TIMESTEPS_LEADING == (int)SDC_SPACING_LEADING &&
               SDC_TIMESTEPS_LINSPACE == (int)SDC_SPACING_LINSPACE &&
               SDC_TIMESTEPS_TRAILING == (int)SDC_SPACING_TRAILING, "sdc_timestep_spacing and sdc_spacing disagree");

const char *sdc_version(void) { return SDC_VERSION; }

int sdc_sampler_from_name(const char *s) { return s ? sdc_sample_method_from_name(s) : -1; }
const char *sdc_sampler_name(int m) {
    return m >= 0 && m < SDC_SAMPLER_COUNT ? sdc_sample_method_name(m) : NULL;
}
int sdc_scheduler_from_name(const char *s) {
    return !s ? -1 : !strcmp(s, "discrete") ? SDC_SCHEDULER_DISCRETE : !strcmp(s, "karras") ? SDC_SCHEDULER_KARRAS : -1;
}
const char *sdc_scheduler_name(int s) {
    return s == SDC_SCHEDULER_DISCRETE ? "discrete" : s == SDC_SCHEDULER_KARRAS ? "karras" : NULL;
}
int sdc_timestep_spacing_from_name(const char *s) { return s ? sdc_spacing_from_name(s) : -1; }

static const char *const PRECISION_NAMES[SDC_PRECISION_COUNT] = {"f32", "bf16"};
int sdc_precision_from_name(const char *s) {
    for (int i = 0; s && i < SDC_PRECISION_COUNT; i++)
        if (!strcmp(s, PRECISION_NAMES[i])) return i;
    return -1;
}
const char *sdc_precision_name(int p) { return p >= 0 && p < SDC_PRECISION_COUNT ? PRECISION_NAMES[p] : NULL; }
const char *sdc_bf16_kernels(void) { return k_bf16_path_name(); }
int sdc_cpu_has_bf16(void) { return k_bf16_hw(); }
const char *sdc_timestep_spacing_name(int s) {
    return s >= 0 && s < SDC_TIMESTEPS_COUNT ? sdc_spacing_name(s) : NULL;
}

typedef struct load_clock { double t; struct rusage ru; } load_clock;
typedef load_clock load_clock_t;

struct sdc_model {
    sdc_store *store;            /* the checkpoint */
    sdc_store *vae_store;        /* --vae file, or NULL */
    sdc_model_config cfg;
    sdc_model_info info;
    sdc_clip *clip;              /* SD 1.x/2.x text encoder (NULL for SDXL) */
    sdc_sdxl_text xl;            /* SDXL: its two text towers */
    int sdxl;                    /* SDXL: two towers, 2048-wide context, vector conditioning */
    int text_width;              /* the context width the text side gives */
    char recommended[256];       /* info.recommended */
    sdc_unet *unet;
    sdc_vae *vae;
    sdc_taesd *taesd;            /* --taesd: decodes instead of the VAE (and the previews), or NULL */
    sdc_arena arena;             /* activations; reset per UNet call */
    int low_mem;                 /* weights widened per layer; VAE decoded in tiles */
    int concat_ch;               /* inpainting UNet: 1 + latent channels (mask, masked image); else 0 */
    sdc_lora_set *lora;          /* the LoRAs' factors (low-mem widening reads them), or NULL */
    int n_lora;                  /* LoRAs merged: */
    char *lora_name[MAX_LORAS], *lora_path[MAX_LORAS];
    float lora_mult[MAX_LORAS];
    int n_tag;                   /* of which the last n_tag came from lora_prompt's tags */
    sdc_embd_db embd;            /* textual-inversion embeddings */
    sdc_load_report load;        /* where sdc_model_open's time went */
    int bound;                   /* model_ready ran: every weight bound (or the bind failed) */
    load_clock_t bind_start;     /* when the UNet's background bind began */
};

/* ── the load clock: wall, CPU and page faults per phase of sdc_model_open ── */

static void clock_now(load_clock *c) {
    c->t = sdc_mono_s();
    if (getrusage(RUSAGE_SELF, &c->ru)) memset(&c->ru, 0, sizeof c->ru);
}

static double tv_s(struct timeval a, struct timeval b) {
    return (double)(b.tv_sec - a.tv_sec) + (b.tv_usec - a.tv_usec) * 1e-6;
}

/* Closes the phase that began at *c (named name) and starts the next one there. */
static void phase_end(sdc_load_report *r, load_clock *c, const char *name) {
    load_clock n;
    clock_now(&n);
    if (r->n_phases < SDC_LOAD_MAX_PHASES) {
        sdc_load_phase *p = &r->phase[r->n_phases++];
        p->name = name;
        p->wall_s = n.t - c->t;
        p->user_s = tv_s(c->ru.ru_utime, n.ru.ru_utime);
        p->sys_s = tv_s(c->ru.ru_stime, n.ru.ru_stime);
        p->minor_faults = n.ru.ru_minflt - c->ru.ru_minflt;
        p->major_faults = n.ru.ru_majflt - c->ru.ru_majflt;
        p->rss_kb = sdc_status_kb("VmRSS");
    }
    clock_now(c);   /* the status read is not charged to the next phase */
}

sdc_model_params sdc_model_default_params(void) {
    sdc_model_params p;
    memset(&p, 0, sizeof p);
    p.prediction = -1;
    return p;
}

sdc_gen_params sdc_gen_default_params(void) {
    sdc_gen_params p;
    memset(&p, 0, sizeof p);
    p.prompt = "";
    p.negative_prompt = "";
    p.width = p.height = 512;
    p.steps = 20;
    p.cfg_scale = 7.5f;
    p.sample_method = SDC_SAMPLER_EULER_A;
    p.schedule = SDC_SCHEDULER_DISCRETE;
    p.spacing = SDC_TIMESTEPS_DEFAULT;
    p.strength = 0.75f;
    return p;
}

void sdc_model_close(sdc_model *m) {
    if (!m) return;
    sdc_clip_free(m->clip);
    sdc_sdxl_text_free(&m->xl);
    sdc_unet_free(m->unet);
    sdc_vae_free(m->vae);
    sdc_taesd_free(m->taesd);
    sdc_store_close(m->store);
    sdc_store_close(m->vae_store);
    sdc_arena_free(&m->arena);
    sdc_lora_set_free(m->lora);
    for (int i = 0; i < m->n_lora; i++) { free(m->lora_name[i]); free(m->lora_path[i]); }
    sdc_embd_db_free(&m->embd);
    free(m);
}

const char *sdc_model_lora(const sdc_model *m, int i, const char **path, float *multiplier) {
    if (!m || i < 0 || i >= m->n_lora) return NULL;
    if (path) *path = m->lora_path[i];
    if (multiplier) *multiplier = m->lora_mult[i];
    return m->lora_name[i];
}

/* The file of a <lora:NAME:W> tag: DIR/NAME.safetensors, .ckpt or .pt (stable-diffusion.cpp's
 * convention), the first that exists. Returns a malloc'd path, or NULL with e set. */
static char *lora_file(const char *dir, const char *name, sdc_err *e) {
    static const char *const ext[] = {".safetensors", ".ckpt", ".pt"};
    if (!dir) { sdc_errf(e, "<lora:%s>: no LoRA folder given (--lora-model-dir)", name); return NULL; }
    if (strchr(name, '/') || strchr(name, '\\') || name[0] == '.') {
        sdc_errf(e, "<lora:%s>: a LoRA name is a file name in the LoRA folder, without folders", name);
        return NULL;
    }
    size_t n = strlen(dir) + strlen(name) + 16;
    char *p = malloc(n);
    if (!p) { sdc_errf(e, "out of memory"); return NULL; }
    for (int k = 0; k < 3; k++) {
        snprintf(p, n, "%s/%s%s", dir, name, ext[k]);
        FILE *f = fopen(p, "rb");
        if (f) { fclose(f); return p; }
    }
    sdc_errf(e, "<lora:%s>: no %s/%s.safetensors, .ckpt or .pt", name, dir, name);
    free(p);
    return NULL;
}

/* Records one LoRA (name, path, multiplier) and adds it to the set. */
static int add_lora(sdc_model *m, const char *name, const char *path, float mult,
                    const sdc_load_opts *lo, sdc_err *e) {
    if (m->n_lora == MAX_LORAS) return sdc_errf(e, "more than %d LoRAs", MAX_LORAS);
    if (!m->lora && !(m->lora = sdc_lora_set_new())) return sdc_errf(e, "out of memory");
    if (sdc_lora_set_add(m->lora, m->store, path, mult, lo, e)) return -1;
    int i = m->n_lora;
    m->lora_name[i] = strdup(name);
    m->lora_path[i] = strdup(path);
    m->lora_mult[i] = mult;
    m->n_lora++;
    return m->lora_name[i] && m->lora_path[i] ? 0 : sdc_errf(e, "out of memory");
}

/* params.loras, then the <lora:...> tags of params.lora_prompt, into m->lora. */
static int open_loras(sdc_model *m, const sdc_model_params *p, const sdc_load_opts *lo, sdc_err *e) {
    for (int i = 0; i < p->n_loras; i++) {
        if (!p->loras || !p->loras[i].path) return sdc_errf(e, "LoRA %d: no file given", i + 1);
        char stem[256];
        const char *b = strrchr(p->loras[i].path, '/');
        b = b ? b + 1 : p->loras[i].path;
        const char *dot = strrchr(b, '.');
        snprintf(stem, sizeof stem, "%.*s", dot && dot != b ? (int)(dot - b) : (int)strlen(b), b);
        if (add_lora(m, stem, p->loras[i].path, p->loras[i].multiplier, lo, e)) return -1;
    }
    if (!p->lora_prompt) return 0;
    char *rest = NULL;
    sdc_prompt_lora *tags = NULL;
    int nt = 0, rc = 0;
    if (sdc_prompt_take_loras(p->lora_prompt, &rest, &tags, &nt, e)) return -1;
    for (int i = 0; i < nt && !rc; i++) {
        char *path = lora_file(p->lora_model_dir, tags[i].name, e);
        rc = !path ? -1 : add_lora(m, tags[i].name, path, tags[i].mult, lo, e);
        free(path);
        m->n_tag += !rc;
    }
    free(rest);
    sdc_prompt_loras_free(tags, nt);
    return rc;
}

/* A file that is not a checkpoint sdc generates with, named for what it is: a LoRA (give it with
 * --lora), a VAE alone (--vae), an SDXL refiner, anything else without a UNet. */
static int refuse_family(const sdc_store *st, const char *path, sdc_err *e) {
    sdc_detect_info d;
    sdc_detect(st, &d);
    switch (d.family) {
    case SDC_FAMILY_LORA:
        return sdc_errf(e, "%s: is a LoRA (%s), not a checkpoint: give the checkpoint with -m and "
                        "this file with --lora FILE[:WEIGHT]", path, d.reason);
    case SDC_FAMILY_VAE:
        return sdc_errf(e, "%s: is a VAE alone (%s), not a checkpoint: give the checkpoint with -m "
                        "and this file with --vae FILE", path, d.reason);
    case SDC_FAMILY_SDXL_REFINER:
        return sdc_errf(e, "%s: an SDXL refiner checkpoint (one OpenCLIP text encoder, aesthetic-score "
                        "conditioning): not supported; use an SDXL base model", path);
    default:
        break;
    }
    if (sdc_store_count_prefix(st, "model.diffusion_model.") == 0)
        return sdc_errf(e, "%s: not a Stable Diffusion checkpoint: no UNet (model.diffusion_model.*) "
                        "— a VAE goes with --vae, a LoRA with --lora; other files are not supported", path);
    return 0;
}

/* --taesd: its decoder (the file is closed again: the weights are copied), checked to decode the
 * VAE's latent space. Returns 0, or -1 with e set. */
static int open_taesd(sdc_model *m, const char *path, const sdc_load_opts *lo, sdc_err *e) {
    sdc_store *st = sdc_store_new();
    if (!st) return sdc_errf(e, "out of memory");
    int rc = sdc_store_open(st, path, lo, e);
    if (!rc && !(m->taesd = sdc_taesd_load(st, e))) rc = sdc_err_prefix(e, "%s", path);
    sdc_store_close(st);
    if (rc) return -1;
    if (!sdc_taesd_has_decoder(m->taesd))
        return sdc_errf(e, "%s: a TAESD encoder only: --taesd needs the decoder (taesd_decoder, or the "
                           "diffusers AutoencoderTiny file)", path);
    if (sdc_taesd_downscale(m->taesd) != sdc_vae_downscale(m->vae) ||
        sdc_taesd_latent_channels(m->taesd) != sdc_vae_latent_channels(m->vae))
        return sdc_errf(e, "%s: the TAESD decodes %d latent channels at 1/%d scale, the model's VAE %d at 1/%d",
                        path, sdc_taesd_latent_channels(m->taesd), sdc_taesd_downscale(m->taesd),
                        sdc_vae_latent_channels(m->vae), sdc_vae_downscale(m->vae));
    return 0;
}

sdc_model *sdc_model_open(const sdc_model_params *p, sdc_err *e) {
    if (!p || !p->model_path) { sdc_errf(e, "no model given"); return NULL; }
    sdc_model *m = calloc(1, sizeof *m);
    if (!m) { sdc_errf(e, "%s: out of memory", p->model_path); return NULL; }
    load_clock lc;
    clock_now(&lc);
    m->load.start = lc.t;
    sdc_arena_init(&m->arena, (size_t)64 << 20);
    sdc_kernels_set_threads(p->threads);
    sdc_load_opts lo = {.strict = p->strict, .allow_unsafe_pickle = p->allow_unsafe_pickle};
    if (!(m->store = sdc_store_new())) { sdc_errf(e, "out of memory"); goto fail; }
    if (sdc_store_open(m->store, p->model_path, &lo, e)) goto fail;
    if (refuse_family(m->store, p->model_path, e)) goto fail;
    phase_end(&m->load, &lc, "open");
    if (sdc_model_config_resolve(&m->cfg, m->store, p->config_path, p->prediction, e)) goto fail;
    phase_end(&m->load, &lc, "config");
    m->low_mem = p->low_mem;
    /* The text encoder and the VAE read their matrices from the file per layer in every mode
     * (widened just in time, like --low-mem): each runs once or twice per image, so an f32 copy
     * would buy ~0.1 s per image for 0.7 GB of RSS (SD 1.5), which the UNet's Winograd weights
     * spend better. Same bits either way (models/weight.h). */
    /* LoRAs: read and mapped onto the model's weights now, merged as the graphs bind them */
    if (open_loras(m, p, &lo, e)) goto fail;
    if (m->n_lora) phase_end(&m->load, &lc, "loras");
    if (m->cfg.family == SDC_FAMILY_SDXL_REFINER) {
        sdc_errf(e, "%s: an SDXL refiner checkpoint (one OpenCLIP text encoder, aesthetic-score "
                 "conditioning): not supported; use an SDXL base model", p->model_path);
        goto fail;
    }
    m->sdxl = m->cfg.family == SDC_FAMILY_SDXL;
    sdc_clip_params cp = {.n_heads = m->cfg.text_heads, .act = m->cfg.text_act, .low_mem = 1,
                          .lora = m->lora};
    if (m->sdxl ? sdc_sdxl_text_load(&m->xl, m->store, m->cfg.text_heads, m->cfg.text_act, m->cfg.text2_heads,
                                     m->cfg.text2_act, m->lora, e) != 0
                : !(m->clip = sdc_clip_load(m->store, &cp, e))) {
        if (e && m->cfg.text_heads <= 0 && strstr(e->msg, "head count is unknown")) {   /* say how to give it */
            char msg[sizeof e->msg];
            snprintf(msg, sizeof msg, "%s", e->msg);
            sdc_errf(e, "%s; this file carries no config metadata (a .ckpt never does): give --config "
                     "FILE, a JSON like {\"text\": {\"heads\": N}, \"unet\": {\"num_heads\": N}}", msg);
        }
        sdc_err_prefix(e, "%s", p->model_path);
        goto fail;
    }
    m->text_width = m->sdxl ? m->xl.C1 + m->xl.C2 : sdc_clip_width(m->clip);
    phase_end(&m->load, &lc, "text encoder");
    if (p->precision < 0 || p->precision >= SDC_PRECISION_COUNT) {
        sdc_errf(e, "precision %d: unknown (f32 or bf16)", p->precision);
        goto fail;
    }
    const int bf16 = p->precision == SDC_PRECISION_BF16;
    /* Default mode: the UNet's graph is checked and its buffers allocated here; its weights are
     * converted on a thread of their own while the caller encodes the prompt (model_ready waits
     * for them before the first UNet call). */
    sdc_unet_params up = {.num_heads = m->cfg.unet_heads, .head_dim = m->cfg.unet_head_dim,
                          .low_mem = p->low_mem, .lora = m->lora, .background = !p->low_mem, .bf16 = bf16};
    sdc_vae_params vp = {.low_mem = 1, .scale = m->cfg.vae_scale, .shift = m->cfg.vae_shift, .bf16 = bf16};
    if (!(m->unet = sdc_unet_load(m->store, &up, e))) { sdc_err_prefix(e, "%s", p->model_path); goto fail; }
    phase_end(&m->load, &lc, "unet");
    m->bind_start = lc;
    if (p->vae_path) {
        if (!(m->vae_store = sdc_store_new())) { sdc_errf(e, "out of memory"); goto fail; }
        if (sdc_store_open(m->vae_store, p->vae_path, &lo, e)) goto fail;
        if (!(m->vae = sdc_vae_load_ex(m->vae_store, &vp, e))) { sdc_err_prefix(e, "%s", p->vae_path); goto fail; }
    } else if (!(m->vae = sdc_vae_load_ex(m->store, &vp, e))) {
        sdc_err_prefix(e, "%s", p->model_path);
        goto fail;
    }
    if (p->taesd_path && open_taesd(m, p->taesd_path, &lo, e)) goto fail;
    if (sdc_lora_check_used(m->lora, e)) goto fail;
    if (p->embd_dir && m->sdxl) {   /* SDXL embeddings carry clip_l and clip_g vectors: not read yet */
        sdc_errf(e, "%s: textual-inversion embeddings are not supported for SDXL models yet", p->embd_dir);
        goto fail;
    }
    if (p->embd_dir && sdc_embd_db_load_dir(&m->embd, p->embd_dir, m->text_width, &lo, e)) goto fail;
    phase_end(&m->load, &lc, "vae");
    /* The weights are converted (or, low-mem, read per layer): the file's pages need not stay
     * resident; a later read faults them back in from the page cache. (With a bind running in
     * the background, model_ready does this once it is done.) */
    if (p->low_mem) {
        sdc_store_release_pages(m->store);
        sdc_store_release_pages(m->vae_store);
        phase_end(&m->load, &lc, "release");
    }
    const sdc_unet_info *ui = sdc_unet_get_info(m->unet);
    if (ui->context_dim != m->text_width) {
        sdc_errf(e, "%s: text encoder width %d does not match the UNet's context width %d",
                 p->model_path, m->text_width, ui->context_dim);
        goto fail;
    }
    /* SDXL's vector: pooled (xl.P) ++ six even-width size embeddings, exactly label_emb's input. */
    int adm = ui->adm_in_channels, sz = m->sdxl ? (adm - m->xl.P) / 6 : 0;
    if (m->sdxl && (adm <= 0 || sz <= 0 || sz % 2 || 6 * sz + m->xl.P != adm)) {
        sdc_errf(e, "%s: the UNet's label_emb takes %d values, not the pooled text vector (%d) and six "
                 "size embeddings of SDXL", p->model_path, adm, m->xl.P);
        goto fail;
    }
    if (!m->sdxl && adm > 0) {
        sdc_errf(e, "%s: the UNet has a label_emb (vector conditioning, %d values) but the text encoder "
                 "is not SDXL's", p->model_path, adm);
        goto fail;
    }
    /* Every latent buffer is sized by the UNet's out_channels: its input and the VAE's latents
     * must have the same count, or a crafted file would write past them. An inpainting UNet takes
     * 1 + latent channels more (the mask and the masked image's latents, concatenated). */
    int lat = ui->out_channels;
    if (sdc_vae_latent_channels(m->vae) != lat || (ui->in_channels != lat && ui->in_channels != 2 * lat + 1)) {
        sdc_errf(e, "%s: the UNet maps %d channels to %d and the VAE has %d latent channels: sdc "
                 "generates only when they agree (or the UNet takes %d: inpainting)", p->model_path,
                 ui->in_channels, ui->out_channels, sdc_vae_latent_channels(m->vae), 2 * lat + 1);
        goto fail;
    }
    m->concat_ch = ui->in_channels - lat;
    m->info.family = m->cfg.family_name;
    m->info.unet_heads = m->cfg.unet_heads;
    m->info.unet_head_dim = m->cfg.unet_head_dim;
    m->info.text_heads = m->cfg.text_heads > 0 ? m->cfg.text_heads : (m->sdxl ? m->xl.C1 : m->text_width) / 64;
    m->info.text_act = m->cfg.text_act ? "gelu" : "quick_gelu";
    m->info.prediction = m->cfg.prediction ? "v_prediction" : "epsilon";
    m->info.config_source = m->cfg.unet_src;
    m->info.context_dim = ui->context_dim;
    m->info.latent_channels = lat;
    m->info.unet_in_channels = ui->in_channels;
    m->info.vae_scale = m->cfg.vae_scale;
    m->info.vae_shift = m->cfg.vae_shift;
    m->info.vector_cond = m->sdxl;
    m->info.turbo = m->cfg.turbo;
    m->info.default_sampler = m->cfg.def_sampler;
    m->info.default_spacing = m->cfg.def_spacing;
    sdc_model_config_recommended(&m->cfg, m->recommended, sizeof m->recommended);
    m->info.recommended = m->recommended;
    m->load.opened_s = m->load.ready_s = sdc_mono_s() - m->load.start;
    m->load.peak_rss_kb = sdc_status_kb("VmHWM");
    if (p->low_mem) m->bound = 1;
    return m;
fail:
    sdc_model_close(m);
    return NULL;
}

const sdc_model_info *sdc_model_get_info(const sdc_model *m) { return &m->info; }

const sdc_load_report *sdc_model_load_report(const sdc_model *m) { return m ? &m->load : NULL; }

/* Every weight bound: waits for the UNet's background bind (once), then records it in the load
 * report (its wall time; CPU and faults of the whole process meanwhile, the prompt's encoding
 * included), and hands the file's pages back. Returns 0, or -1 with e set when the bind failed. */
static int model_ready(sdc_model *m, sdc_err *e) {
    if (!m->bound) {
        double done = 0;
        sdc_unet_wait(m->unet, &done, NULL);
        m->bound = 1;
        load_clock now;
        clock_now(&now);
        if (done > 0 && m->load.n_phases < SDC_LOAD_MAX_PHASES) {
            sdc_load_phase *ph = &m->load.phase[m->load.n_phases++];
            ph->name = "unet bind (background)";
            ph->wall_s = done - m->bind_start.t;
            ph->user_s = tv_s(m->bind_start.ru.ru_utime, now.ru.ru_utime);
            ph->sys_s = tv_s(m->bind_start.ru.ru_stime, now.ru.ru_stime);
            ph->minor_faults = now.ru.ru_minflt - m->bind_start.ru.ru_minflt;
            ph->major_faults = now.ru.ru_majflt - m->bind_start.ru.ru_majflt;
            ph->rss_kb = sdc_status_kb("VmRSS");
            m->load.ready_s = done - m->load.start;
        }
        m->load.peak_rss_kb = sdc_status_kb("VmHWM");
        sdc_store_release_pages(m->store);
        sdc_store_release_pages(m->vae_store);
    }
    return sdc_unet_wait(m->unet, NULL, e);
}

int sdc_model_wait(sdc_model *m, sdc_err *e) {
    if (!m) return sdc_errf(e, "no model");
    return model_ready(m, e);
}

void sdc_model_layout_digest(sdc_model *m, char hex[65]) {
    uint8_t d[32];
    sdc_unet_layout_digest(m->unet, d);
    sdc_sha256_hex(d, hex);
}

void sdc_model_defaults(const sdc_model *m, int *w, int *h, int *steps, float *cfg) {
    *w = m->cfg.def_width; *h = m->cfg.def_height; *steps = m->cfg.def_steps; *cfg = m->cfg.def_cfg;
}

/* The prompt's chunks (A1111's, or diffusers' one window in truncate mode). check_tags (the
 * prompt, not the negative one): its <lora:...> tags are taken out first and must be the ones
 * merged at open. Returns 0, or -1 with e set. */
static int prompt_chunks(const sdc_model *m, const char *text, int mode, int check_tags, int32_t pad,
                         sdc_prompt_chunks *ch, sdc_err *e) {
    char *rest = NULL;
    sdc_prompt_lora *tags = NULL;
    int nt = 0, rc = 0;
    /* the prompt's extra-network tags (AUTOMATIC1111 reads none in the negative prompt: there
     * they are words) */
    if (!check_tags) rest = strdup(text ? text : "");
    else if (sdc_prompt_take_loras(text ? text : "", &rest, &tags, &nt, e)) return -1;
    if (!rest) return sdc_errf(e, "out of memory");
    if (check_tags) {   /* the tags merged at open are the last n_tag LoRAs */
        int same = nt == m->n_tag;
        for (int i = 0; same && i < nt; i++) {
            int j = m->n_lora - m->n_tag + i;
            same = !strcmp(tags[i].name, m->lora_name[j]) && tags[i].mult == m->lora_mult[j];
        }
        if (!same)
            rc = sdc_errf(e, "prompt: its <lora:...> tags are not the ones merged when the model was "
                          "opened (LoRAs are merged once, at open: sdc_model_params.lora_prompt)");
    }
    if (!rc) rc = sdc_prompt_chunk(rest, mode == 1 ? SDC_PROMPT_TRUNCATE : SDC_PROMPT_CHUNKED, pad,
                                   &m->embd, ch, e);
    free(rest);
    sdc_prompt_loras_free(tags, nt);
    return rc;
}

/* ctx[nw*77, C]: each chunk encoded separately (textual-inversion rows in place), weighted with
 * the "Original" emphasis (mean restored per chunk), and concatenated (A1111). Chunks past
 * ch->n are those of the empty prompt (A1111 pads the shorter of prompt and negative prompt). */
static int encode_chunks(sdc_model *m, const sdc_prompt_chunks *ch, const sdc_prompt_chunks *empty,
                         int nw, int clip_skip, float *ctx, sdc_err *e) {
    int C = m->text_width;
    for (int k = 0; k < nw; k++) {
        const sdc_prompt_chunks *c = k < ch->n ? ch : empty;
        int kk = k < ch->n ? k : 0;
        sdc_arena_mark mk = sdc_arena_get_mark(&m->arena);
        sdc_clip_encode_opts o = {.clip_skip = clip_skip, .vecs = c->rows + (size_t)kk * SDC_TOK_CTX};
        float *z = ctx + (size_t)k * SDC_TOK_CTX * C;
        int rc = sdc_clip_encode_ex(m->clip, &m->arena, c->ids + (size_t)kk * SDC_TOK_CTX, SDC_TOK_CTX, &o, z, e);
        sdc_arena_reset(&m->arena, mk);
        if (rc) return -1;
        sdc_prompt_emphasis(z, c->weights + (size_t)kk * SDC_TOK_CTX, SDC_TOK_CTX, C);
    }
    return 0;
}

/* SDXL: one prompt through both towers, chunk by chunk (ch1 padded with EOS for tower 1, ch2 with
 * 0 for tower 2; chunks past ch1->n are the empty prompt's), emphasis per tower, pooled vector
 * from the first chunk. ctx [nw*77, C1+C2], pooled [P]. Returns 0, or -1 with e set. */
static int encode_chunks_xl(sdc_model *m, const sdc_prompt_chunks *ch1, const sdc_prompt_chunks *ch2,
                            const sdc_prompt_chunks *em1, const sdc_prompt_chunks *em2, int nw, int clip_skip,
                            float *ctx, float *pooled, sdc_err *e) {
    const size_t T = SDC_TOK_CTX;
    int32_t *ids1 = malloc(sizeof(int32_t) * T * (size_t)nw), *ids2 = malloc(sizeof(int32_t) * T * (size_t)nw);
    double *w = malloc(sizeof(double) * T * (size_t)nw);
    int rc = ids1 && ids2 && w ? 0 : sdc_errf(e, "out of memory");
    for (int k = 0; !rc && k < nw; k++) {
        const sdc_prompt_chunks *a = k < ch1->n ? ch1 : em1, *b = k < ch1->n ? ch2 : em2;
        size_t kk = (size_t)(k < ch1->n ? k : 0) * T;
        for (size_t i = 0; i < T; i++)
            if (a->rows[kk + i] || b->rows[kk + i]) rc = sdc_errf(e, "textual inversion: not supported for SDXL");
        memcpy(ids1 + k * T, a->ids + kk, sizeof(int32_t) * T);
        memcpy(ids2 + k * T, b->ids + kk, sizeof(int32_t) * T);
        memcpy(w + k * T, a->weights + kk, sizeof(double) * T);
    }
    if (!rc) rc = sdc_sdxl_encode(&m->xl, &m->arena, ids1, ids2, w, nw, clip_skip, ctx, pooled, e);
    free(ids1); free(ids2); free(w);
    return rc;
}

/* The conditioning of both CFG rows, negative first: ctx2 [2, L, C] and, for SDXL, y2 [2, adm]
 * (pooled text ++ size embeddings). Without guidance (cfg <= 1) the negative row is not
 * computed; a negative prompt not given (NULL) is "" for SD 1.x/2.x and zeros — context and
 * pooled vector — for SDXL (diffusers' force_zeros_for_empty_prompt), where "" is encoded.
 * A1111: the shorter of prompt and negative is padded with chunks of the empty prompt. Returns 0
 * with *ctx2, *y2 malloc'd (y2 NULL unless SDXL) and *L set, or -1 with e set. */
static int encode_text(sdc_model *m, const sdc_gen_params *p, float **ctx2_out, float **y2_out, int *L_out,
                       sdc_err *e) {
    const int C = m->text_width, guided = p->cfg_scale > 1.0f;
    /* the negative's chunks count (A1111 pads to the longer) even when, unguided, it is not encoded */
    const int parse_neg = !(m->sdxl && !p->negative_prompt), encode_neg = guided && parse_neg;
    const int32_t pad1 = !m->sdxl && sdc_clip_is_openclip(m->clip) ? 0 : SDC_TOK_EOS;   /* SDXL tower 2: 0 */
    const int mode = p->prompt_mode;
    int rc = -1;
    float *ctx2 = NULL, *y2 = NULL, *pooled2 = NULL;
    sdc_prompt_chunks cc, cu, ce, cc2, cu2, ce2;
    memset(&cc, 0, sizeof cc); memset(&cu, 0, sizeof cu); memset(&ce, 0, sizeof ce);
    memset(&cc2, 0, sizeof cc2); memset(&cu2, 0, sizeof cu2); memset(&ce2, 0, sizeof ce2);
    if (prompt_chunks(m, p->prompt, mode, 1, pad1, &cc, e) || prompt_chunks(m, "", mode, 0, pad1, &ce, e) ||
        (parse_neg && prompt_chunks(m, p->negative_prompt, mode, 0, pad1, &cu, e)))
        goto done;
    if (m->sdxl && (prompt_chunks(m, p->prompt, mode, 1, 0, &cc2, e) || prompt_chunks(m, "", mode, 0, 0, &ce2, e) ||
                    (parse_neg && prompt_chunks(m, p->negative_prompt, mode, 0, 0, &cu2, e))))
        goto done;
    int nw = cc.n > cu.n ? cc.n : cu.n;
    const int L = nw * SDC_TOK_CTX;
    const int adm = m->sdxl ? sdc_unet_get_info(m->unet)->adm_in_channels : 0, P = m->sdxl ? m->xl.P : 0;
    ctx2 = calloc(2 * (size_t)L * C, sizeof *ctx2);
    if (m->sdxl) { pooled2 = calloc(2 * (size_t)P, sizeof *pooled2); y2 = malloc(sizeof *y2 * 2 * (size_t)adm); }
    if (!ctx2 || (m->sdxl && (!pooled2 || !y2))) { sdc_errf(e, "out of memory"); goto done; }
    float *cun = ctx2, *ccn = ctx2 + (size_t)L * C;
    if (m->sdxl) {
        if ((encode_neg && encode_chunks_xl(m, &cu, &cu2, &ce, &ce2, nw, p->clip_skip, cun, pooled2, e)) ||
            encode_chunks_xl(m, &cc, &cc2, &ce, &ce2, nw, p->clip_skip, ccn, pooled2 + P, e))
            goto done;
        float ids[6];   /* (orig_h, orig_w, crop_top, crop_left, target_h, target_w) */
        sdc_sdxl_time_ids(ids, p->size_cond_w > 0 ? p->size_cond_w : p->width,
                          p->size_cond_h > 0 ? p->size_cond_h : p->height, p->crop_x, p->crop_y, p->width, p->height);
        for (int b = 0; b < 2; b++)   /* both rows the same time ids */
            if (sdc_unet_sdxl_vector(y2 + (size_t)b * adm, adm, pooled2 + (size_t)b * P, P, ids, e)) goto done;
    } else if ((encode_neg && encode_chunks(m, &cu, &ce, nw, p->clip_skip, cun, e)) ||
               encode_chunks(m, &cc, &ce, nw, p->clip_skip, ccn, e)) {
        goto done;
    }
    *L_out = L;
    rc = 0;
done:
    sdc_prompt_chunks_free(&cc); sdc_prompt_chunks_free(&cu); sdc_prompt_chunks_free(&ce);
    sdc_prompt_chunks_free(&cc2); sdc_prompt_chunks_free(&cu2); sdc_prompt_chunks_free(&ce2);
    free(pooled2);
    if (rc) { free(ctx2); free(y2); ctx2 = y2 = NULL; }
    *ctx2_out = ctx2;
    *y2_out = y2;
    return rc;
}

typedef struct guide_ctx {
    sdc_model *m;
    const float *ctx2;      /* [2, L, C]: uncond then cond (diffusers order: negative first) */
    const float *y2;        /* SDXL: [2, adm] vector conditioning, same order; NULL otherwise */
    int L, C, adm, h, w, C_lat;
    float cfg;
    float *x2, *out2;       /* [2, C_lat, h, w] */
    const float *concat2;   /* inpainting UNet: [2, Cc, h, w] (mask, masked-image latents), or NULL */
    int Cc;
    const volatile int *interrupt;   /* sdc_gen_params.interrupt */
} guide_ctx;

/* The sampler's model: one batch-2 UNet call on cat([x, x]), then uncond + cfg·(cond − uncond).
 * With cfg <= 1 (no guidance) one batch-1 call on the conditional context. */
static int guided_model(void *vctx, const float *x_in, float t, float *out, sdc_err *e) {
    guide_ctx *g = vctx;
    if (g->interrupt && *g->interrupt) return sdc_errf(e, "interrupted");
    if (!g->m->load.first_unet) g->m->load.first_unet = sdc_mono_s();
    size_t n = (size_t)g->C_lat * g->h * g->w;
    sdc_arena_mark mk = sdc_arena_get_mark(&g->m->arena);
    int rc;
    if (g->cfg <= 1.0f) {
        sdc_cond c = {.ctx = g->ctx2 + (size_t)g->L * g->C, .ctx_len = g->L,
                      .y = g->y2 ? g->y2 + g->adm : NULL, .concat = g->concat2, .concat_ch = g->Cc};
        rc = sdc_unet_forward(g->m->unet, &g->m->arena, out, x_in, &t, &c, 1, g->h, g->w, e);
    } else {
        float t2[2] = {t, t};
        sdc_cond c = {.ctx = g->ctx2, .ctx_len = g->L, .y = g->y2, .concat = g->concat2, .concat_ch = g->Cc};
        memcpy(g->x2, x_in, n * sizeof *x_in);
        memcpy(g->x2 + n, x_in, n * sizeof *x_in);
        rc = sdc_unet_forward(g->m->unet, &g->m->arena, g->out2, g->x2, t2, &c, 2, g->h, g->w, e);
        if (!rc)
            for (size_t i = 0; i < n; i++) out[i] = g->out2[i] + g->cfg * (g->out2[n + i] - g->out2[i]);
    }
    sdc_arena_reset(&g->m->arena, mk);
    return rc;
}

typedef struct step_fwd { sdc_step_cb cb; void *user; } step_fwd;
static void on_step(void *u, int step, int steps) {
    step_fwd *f = u;
    if (f->cb) f->cb(f->user, step, steps);
}

/* z[C,h,w] (the sampler's latents) decoded into rgb / image (HWC, [0,1]; either may be NULL) by
 * the TAESD when the model has one, else the VAE (tiled when asked or in low-mem mode). */
static int decode(sdc_model *m, const float *z, int h, int w, int tiled, uint8_t *rgb, float *image, sdc_err *e) {
    const int ds = m->taesd ? sdc_taesd_downscale(m->taesd) : sdc_vae_downscale(m->vae);
    const size_t hw = (size_t)h * ds * w * ds;
    sdc_arena_mark mk = sdc_arena_get_mark(&m->arena);
    float *img = sdc_arena_f32(&m->arena, 3 * hw);
    if (!img) return sdc_errf(e, "out of memory");
    int rc = m->taesd ? sdc_taesd_decode(m->taesd, &m->arena, img, z, 1, h, w, e)
           : tiled    ? sdc_vae_decode_tiled(m->vae, &m->arena, img, z, 1, h, w, 32, 8, e)
                      : sdc_vae_decode(m->vae, &m->arena, img, z, 1, h, w, e);
    for (size_t i = 0; !rc && i < hw; i++)   /* CHW in about [-1,1] → HWC in [0,1] */
        for (int c = 0; c < 3; c++) {
            float v = img[c * hw + i] / 2.0f + 0.5f;
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            if (image) image[3 * i + c] = v;
            if (rgb) rgb[3 * i + c] = (uint8_t)lrintf(v * 255.0f);
        }
    sdc_arena_reset(&m->arena, mk);
    return rc;
}

typedef struct post_ctx {
    sdc_inpaint_blend *blend;   /* 4-channel inpainting, or NULL */
    const sdc_gen_params *p;
    sdc_model *m;
    int h, w;                   /* latent size */
    uint8_t *preview;           /* width*height*3 for the TAESD previews, or NULL */
} post_ctx;

/* After each step: inpainting's blending, then the caller's latents callback and the preview. */
static int post_step(void *u, const sdc_sample_state *s, int call, int n_calls, float *x, sdc_err *e) {
    post_ctx *pc = u;
    const sdc_gen_params *p = pc->p;
    if (pc->blend && sdc_inpaint_blend_step(pc->blend, s, call, n_calls, x, e)) return -1;
    if (p->on_latents) p->on_latents(p->on_latents_user, call + 1, n_calls, x);
    if (pc->preview && ((call + 1) % p->preview_every == 0 || call + 1 == n_calls)) {
        sdc_err pe;   /* a preview that cannot be made (out of memory) is skipped */
        if (!decode(pc->m, x, pc->h, pc->w, 0, pc->preview, NULL, &pe))
            p->on_preview(p->on_preview_user, call + 1, n_calls, pc->preview, p->width, p->height);
    }
    return 0;
}

/* Latents of an image, sampled from the VAE posterior with the generator (diffusers:
 * latent_dist.sample(generator) × scaling_factor). rgb: HWC bytes, or img: CHW in [-1, 1]. */
static int encode_sample(sdc_model *m, const uint8_t *rgb, const float *img_in, int W, int H,
                         sdc_rng *rng, float *init, size_t n, sdc_err *e) {
    if (!sdc_vae_has_encoder(m->vae)) return sdc_errf(e, "this VAE has no encoder (img2img and inpainting need one)");
    sdc_arena_mark mk = sdc_arena_get_mark(&m->arena);
    size_t hw = (size_t)W * H;
    float *img = rgb ? sdc_arena_f32(&m->arena, 3 * hw) : (float *)img_in;
    float *logvar = sdc_arena_f32(&m->arena, n), *eps = sdc_arena_f32(&m->arena, n);
    if (!img || !logvar || !eps) { sdc_arena_reset(&m->arena, mk); return sdc_errf(e, "out of memory"); }
    for (size_t i = 0; rgb && i < hw; i++)   /* HWC bytes → CHW in [-1, 1] */
        for (int c = 0; c < 3; c++) img[c * hw + i] = rgb[3 * i + c] / 255.0f * 2.0f - 1.0f;
    int rc = sdc_vae_encode(m->vae, &m->arena, init, logvar, img, 1, H, W, e);
    if (!rc) {
        sdc_rng_randn(rng, eps, n);
        for (size_t i = 0; i < n; i++)
            init[i] = (init[i] + expf(0.5f * logvar[i]) * eps[i] - m->cfg.vae_shift) * m->cfg.vae_scale;
    }
    sdc_arena_reset(&m->arena, mk);
    return rc;
}

int sdc_generate_ex(sdc_model *m, const sdc_gen_params *p, uint8_t *rgb, float *image,
                    float *latents, sdc_err *e) {
    if (!m->load.first_generate) m->load.first_generate = sdc_mono_s();
    int ds = sdc_vae_downscale(m->vae);
    if (p->width <= 0 || p->height <= 0 || p->width % 8 || p->height % 8 || p->width > MAX_SIDE || p->height > MAX_SIDE)
        return sdc_errf(e, "size %dx%d: width and height must be positive multiples of 8 (at most %d)",
                        p->width, p->height, MAX_SIDE);
    int h = p->height / ds, w = p->width / ds;   /* any size: the UNet matches its skips */
    if (p->steps < 1 || p->steps > 1000) return sdc_errf(e, "steps %d: must be 1..1000", p->steps);
    if (p->init_rgb && !(p->strength > 0 && p->strength <= 1))
        return sdc_errf(e, "strength %g: must be in (0, 1]", p->strength);
    if (p->mask && !p->init_rgb)
        return sdc_errf(e, "a mask needs the picture it applies to (init_rgb): inpainting repaints part of an image");
    if (p->on_preview && !m->taesd)
        return sdc_errf(e, "previews need a TAESD (--taesd FILE: taesd_decoder or diffusers AutoencoderTiny)");
    if (p->on_preview && p->preview_every < 1)
        return sdc_errf(e, "preview every %d steps: must be at least 1", p->preview_every);

    if (p->size_cond_w < 0 || p->size_cond_h < 0 || p->crop_x < 0 || p->crop_y < 0 || p->size_cond_w > 65536 ||
        p->size_cond_h > 65536 || p->crop_x > 65536 || p->crop_y > 65536)
        return sdc_errf(e, "size/crop conditioning %d,%d / %d,%d: must be 0..65536", p->size_cond_w,
                        p->size_cond_h, p->crop_x, p->crop_y);

    int C_lat = sdc_unet_get_info(m->unet)->out_channels, Cc = m->concat_ch, L = 0;
    /* Inpainting: a mask, or an inpainting UNet (all-white mask when none is given). */
    int inpaint = p->mask != NULL || Cc > 0;
    int strength_max = !p->init_rgb || p->strength == 1.0f;
    size_t n = (size_t)C_lat * h * w, hwl = (size_t)h * w, hwp = (size_t)p->width * p->height;
    int rc = -1;
    float *ctx2 = NULL, *y2 = NULL, *x = NULL, *x2 = NULL, *out2 = NULL, *init = NULL;
    uint8_t *preview = NULL;
    float *noise = NULL, *mask_px = NULL, *mask_lat = NULL, *concat2 = NULL, *proper = NULL;
    if (encode_text(m, p, &ctx2, &y2, &L, e)) goto done;
    x = malloc(sizeof(float) * n);
    x2 = malloc(sizeof(float) * 2 * n);
    out2 = malloc(sizeof(float) * 2 * n);
    if (!x || !x2 || !out2) { sdc_errf(e, "out of memory"); goto done; }

    sdc_rng rng;
    sdc_rng_seed(&rng, p->seed);
    /* Draws from the one generator in diffusers' order: the init image's latents (img2img; an
     * inpainting UNet only below strength 1), the noise, the masked image's latents (drawn for
     * a 4-channel UNet too, which does not use them). */
    if (p->init_rgb && !(Cc > 0 && strength_max)) {
        if (!(init = malloc(sizeof(float) * n))) { sdc_errf(e, "out of memory"); goto done; }
        if (encode_sample(m, p->init_rgb, NULL, p->width, p->height, &rng, init, n, e)) goto done;
    }
    sdc_rng_randn(&rng, x, n);
    sdc_inpaint_blend blend = {0};
    if (inpaint) {
        noise = malloc(sizeof(float) * n);
        mask_px = malloc(sizeof(float) * hwp);
        mask_lat = malloc(sizeof(float) * hwl);
        if (!noise || !mask_px || !mask_lat) { sdc_errf(e, "out of memory"); goto done; }
        memcpy(noise, x, n * sizeof *x);
        sdc_inpaint_mask(p->mask, p->width, p->height, ds, mask_px, mask_lat);
        if (Cc > 0) {
            float *masked = malloc(sizeof(float) * 3 * hwp);
            concat2 = malloc(sizeof(float) * 2 * (size_t)Cc * hwl);
            if (!masked || !concat2) { free(masked); sdc_errf(e, "out of memory"); goto done; }
            sdc_inpaint_masked_image(p->init_rgb, mask_px, p->width, p->height, masked);
            /* cat([latents, mask, masked_image_latents]): the concat input is [mask | latents] × 2 */
            int erc = encode_sample(m, NULL, masked, p->width, p->height, &rng, concat2 + hwl, n, e);
            free(masked);
            if (erc) goto done;
            memcpy(concat2, mask_lat, hwl * sizeof *mask_lat);
            memcpy(concat2 + (size_t)Cc * hwl, concat2, (size_t)Cc * hwl * sizeof *concat2);
        } else {
            if (!(proper = malloc(sizeof(float) * n))) { sdc_errf(e, "out of memory"); goto done; }
            sdc_rng_randn(&rng, proper, n);      /* the unused masked-image draw */
            blend = (sdc_inpaint_blend){init, noise, mask_lat, C_lat, (int)hwl, proper};
        }
    }

    if (model_ready(m, e)) goto done;   /* the UNet's weights, bound while the prompt was encoded */
    sdc_sampler_opts so;
    memset(&so, 0, sizeof so);
    so.method = p->sample_method;
    so.schedule = p->schedule;
    so.spacing = p->spacing == SDC_TIMESTEPS_DEFAULT && m->cfg.def_spacing >= 0 ? m->cfg.def_spacing : p->spacing;
    so.prediction = m->cfg.prediction;
    so.steps = p->steps;
    so.strength = p->init_rgb ? p->strength : 1.0f;
    if (p->on_preview && !(preview = malloc(hwp * 3))) { sdc_errf(e, "out of memory"); goto done; }
    post_ctx pc = {proper ? &blend : NULL, p, m, h, w, preview};
    if (pc.blend || p->on_latents || preview) { so.post_step = post_step; so.post_step_ctx = &pc; }
    guide_ctx g = {m, ctx2, y2, L, m->text_width, m->sdxl ? sdc_unet_get_info(m->unet)->adm_in_channels : 0,
                   h, w, C_lat, p->cfg_scale, x2, out2, concat2, Cc, p->interrupt};
    step_fwd sf = {p->on_step, p->on_step_user};
    /* Inpainting at strength 1 starts from noise × init_noise_sigma (diffusers' is_strength_max),
     * img2img always from the image noised to the first timestep. */
    const float *start = inpaint && strength_max ? NULL : init;
    if (sdc_sample(&so, &rng, x, start, n, guided_model, &g, on_step, &sf, e)) goto done;
    if (latents) memcpy(latents, x, n * sizeof *x);

    if (decode(m, x, h, w, p->vae_tiling || m->low_mem, rgb, image, e)) goto done;
    rc = 0;
done:
    free(ctx2); free(y2); free(x); free(x2); free(out2); free(init); free(preview);
    free(noise); free(mask_px); free(mask_lat); free(concat2); free(proper);
    return rc;
}

int sdc_generate(sdc_model *m, const sdc_gen_params *p, uint8_t *rgb, sdc_err *e) {
    return sdc_generate_ex(m, p, rgb, NULL, NULL, e);
}
