/* cmd_generate.c — `sdc generate`: prompt → PNG, flags as stable-diffusion.cpp spells them. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/a1111.h"
#include "cli/cli.h"
#include "cli/demo.h"
#include "pipeline/image.h"
#include "runtime/outpath.h"
#include "cli/hashcache.h"
#include "cli/prompts.h"
#include "pipeline/prompt.h"
#include "runtime/sha256.h"
#include "sdc.h"

#define MAX_BATCH 1000
#define MAX_LORA_FLAGS 64   /* --lora flags on one command line */
/* What bf16 bought on an AVX512-BF16 CPU (Zen 5, 2 threads, SD 1.5 at 512x512; README "bf16 and
 * TAESD"; bench_graphs times both precisions). */
#define SDC_BF16_SPEEDUP "ran SD 1.5's 512x512 UNet step 1.3x and its VAE decode 1.5x faster on a Zen 5"

static void usage(FILE *f) {
    fprintf(f,
        "usage: sdc generate [-m MODEL] -p PROMPT [options]\n"
        "  -m, --model FILE          .safetensors or .ckpt (default: the embedded demo model toy-sd1)\n"
        "  -p, --prompt TEXT         what to draw\n"
        "  -n, --negative-prompt T   what not to draw (default: none; SD 1.x/2.x read none as \"\",\n"
        "                            SDXL as zeros, and an explicit -n \"\" is encoded)\n"
        "  -s, --seed N              seed of PyTorch's CPU generator (default 42; -1 = random)\n"
        "      --steps N             sampling steps (default 20, or the model's recommendation)\n"
        "      --cfg-scale F         classifier-free guidance scale (default 7.0; SDXL 5); <= 1: no\n"
        "                            guidance, one UNet call a step\n"
        "      --sampling-method M   euler, euler_a (default; SDXL: euler), heun, ddim, pndm, dpm++2m, lcm\n"
        "      --scheduler S         discrete (default) or karras\n"
        "      --timestep-spacing S  leading, linspace or trailing (default: the model's scheduler\n"
        "                            config — SDXL leading, turbo trailing — else diffusers' per sampler)\n"
        "  -W, --width N, -H, --height N   image size, any multiples of 8 (default 512x512; SDXL 1024x1024)\n"
        "      --size-cond W,H       SDXL: the original-size conditioning (default: the output size)\n"
        "      --crop-cond X,Y       SDXL: the crop top-left conditioning (default 0,0)\n"
        "  -b, --batch-count N       N images with seeds S, S+1, ... (OUT_1.png, OUT_2.png, ...)\n"
        "  -i, --init-img FILE       img2img: start from this image\n"
        "      --strength F          img2img denoising strength (default 0.75; needs -i)\n"
        "      --mask FILE           inpainting: repaint where the mask is white (needs -i, same size);\n"
        "                            an inpainting model without a mask paints the whole picture\n"
        "      --vae FILE            a separate VAE file\n"
        "      --vae-tiling          decode the image in overlapping tiles (less memory)\n"
        "      --low-mem             keep weights as stored, widen per layer; tiled VAE (far less RAM)\n"
        "      --precision P         f32 (default, the reference) or bf16 (UNet and VAE GEMMs/convs in\n"
        "                            bf16: faster on CPUs with avx512_bf16, ~1e-2 relative per step)\n"
        "      --taesd FILE          decode with this TAESD (tiny autoencoder) instead of the VAE\n"
        "      --preview FILE        write a TAESD picture of the latents to FILE during sampling\n"
        "      --preview-every N     ... every N steps (default 1; needs --taesd)\n"
        "      --load-report         print where the load's time went and the bound layout's digest\n"
        "      --clip-skip N         AUTOMATIC1111's clip skip (1 = none)\n"
        "      --prompt-mode M       chunk (default: AUTOMATIC1111's (emphasis:1.3), [x], BREAK,\n"
        "                            75-token chunks) or truncate (diffusers: the text as it is,\n"
        "                            cut after 75 tokens)\n"
        "      --lora FILE[:W]       merge a LoRA (kohya/diffusers/PEFT, LoCon) with multiplier W\n"
        "                            (default 1); repeatable, they add up\n"
        "      --lora-model-dir DIR  where <lora:NAME:W> prompt tags find NAME.safetensors/.ckpt/.pt\n"
        "      --embd-dir DIR        textual inversion: a prompt word equal to a file's stem there\n"
        "                            (.pt, .safetensors) is replaced by its vectors\n"
        "      --rng torch           PyTorch's CPU generator (the only one; the default)\n"
        "      --config FILE         model config JSON (heads, activation, prediction)\n"
        "      --prediction eps|v    override the model's prediction type\n"
        "      --strict              refuse unknown pickle globals\n"
        "      --allow-unsafe-pickle load weights even when the pickle names dangerous globals\n"
        "  -t, --threads N           threads (default: all cores; more than the CPUs are cut)\n"
        "  -o, --output FILE         output PNG (default output.png); only a regular file is replaced,\n"
        "                            never a device, FIFO, folder or symbolic link; with --prompts\n"
        "                            the output folder\n"
        "      --prompts FILE.jsonl  one JSON object per line (prompt, negative_prompt, seed, steps,\n"
        "                            cfg_scale, width, height, sampler, scheduler, clip_skip): line L\n"
        "                            to DIR/L.png (000001.png ...); existing ones are skipped (resume);\n"
        "                            the flags give every line's defaults, a line's seed -s + L - 1\n"
        "      --shard K/N           only lines L with (L-1) mod N == K (a job array's task K of N)\n"
        "      --grid FILE           also write all images of the batch as one contact sheet PNG\n"
        "  -q, --quiet               no progress output\n"
        "Models: SD 1.x, SD 2.x, SDXL base (.safetensors/.ckpt; a refiner is refused). Turbo models\n"
        "(SD-Turbo, SDXL-Turbo; their metadata says turbo) default to 512x512, 1 step, cfg 0, euler_a,\n"
        "trailing spacing: they draw in 1-4 steps without guidance. sdc inspect says what a file is.\n");
}

/* Progress on stderr. A terminal gets a bar per image (its number in a batch, s/step, ETA) and a
 * "decoding" line while the VAE runs; anything else (a log, a pipe) one line per image, as other
 * command-line tools do. Both get a line when the model starts loading and one per image written
 * (steps, s/step, decode time). */
typedef struct progress {
    int quiet, tty;
    double t0, t_steps;   /* image start; end of the last step (the decode starts there) */
    int image, images, steps;
} progress;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void on_step(void *u, int step, int steps) {
    progress *p = u;
    p->steps = steps;
    if (step == steps) p->t_steps = now_s();
    if (p->quiet || !p->tty) return;
    double el = now_s() - p->t0, per = el / step;
    int bar = 30, fill = bar * step / steps;
    char img[32] = "";
    if (p->images > 1) snprintf(img, sizeof img, "image %d/%d ", p->image, p->images);
    fprintf(stderr, "\r%s[%.*s%*s] %d/%d  %.2f s/step  ETA %.0f s ", img, fill,
            "##############################", bar - fill, "", step, steps, per, per * (steps - step));
    if (step == steps) fprintf(stderr, "\n%sdecoding the image (VAE)...", img);
}

/* After an image was written: one line with where the time went. */
static void image_done(progress *p, const char *path, uint64_t seed) {
    double t = now_s(), steps_s = p->t_steps > p->t0 ? p->t_steps - p->t0 : t - p->t0;
    if (p->tty) fputs("\r\033[K", stderr);   /* over the "decoding" line */
    char img[32] = "";
    if (p->images > 1) snprintf(img, sizeof img, "image %d/%d: ", p->image, p->images);
    fprintf(stderr, "sdc: %swrote %s (seed %llu; %d steps in %.1f s, %.2f s/step; decode %.1f s; total %.1f s)\n",
            img, path, (unsigned long long)seed, p->steps, steps_s, p->steps ? steps_s / p->steps : 0,
            p->t_steps > p->t0 ? t - p->t_steps : 0, t - p->t0);
}

/* --preview: each TAESD picture replaces FILE whole (temp file + rename), so a viewer never reads
 * half a PNG. */
typedef struct preview { const char *path; int failed; } preview;

static void on_preview(void *u, int step, int steps, const uint8_t *rgb, int w, int h) {
    preview *pv = u;
    sdc_err err = {{0}};
    if (sdc_write_png(pv->path, rgb, w, h, NULL, NULL, &err) && !pv->failed) {
        fprintf(stderr, "\nsdc: preview: %s (previews stop being written)\n", err.msg);
        pv->failed = 1;
    }
    (void)step; (void)steps;
}

/* The options that take a value (the others are flags). */
static int takes_value(const char *a) {
    static const char *const opts[] = {
        "-m", "--model", "-p", "--prompt", "-n", "--negative-prompt", "-s", "--seed", "--steps",
        "--cfg-scale", "--sampling-method", "--scheduler", "--timestep-spacing", "-W", "--width",
        "-H", "--height", "-b", "--batch-count", "-i", "--init-img", "--strength", "--mask", "--vae",
        "--clip-skip", "--prompt-mode", "--rng", "--config", "--prediction", "-t", "--threads",
        "--size-cond", "--crop-cond",
        "-o", "--output", "--grid", "--lora", "--lora-model-dir", "--embd-dir", "--prompts", "--shard",
        "--precision", "--taesd", "--preview", "--preview-every"};
    for (size_t k = 0; k < sizeof opts / sizeof *opts; k++)
        if (!strcmp(a, opts[k])) return 1;
    return 0;
}

static int parse_int(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "sdc: generate: %s '%s': expected an integer in %ld..%ld\n", flag, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* "A,B": two integers in 0..65536. */
static int parse_pair(const char *flag, const char *v, int *a, int *b) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10), y = -1;
    if (!errno && end != v && *end == ',') {
        const char *s = end + 1;
        y = strtol(s, &end, 10);
        if (end == s || *end) y = -1;
    }
    if (errno || x < 0 || x > 65536 || y < 0 || y > 65536) {
        fprintf(stderr, "sdc: generate: %s '%s': expected two integers A,B in 0..65536\n", flag, v);
        return -1;
    }
    *a = (int)x;
    *b = (int)y;
    return 0;
}

static int parse_float(const char *flag, const char *v, float *out) {
    char *end;
    errno = 0;
    float x = strtof(v, &end);
    if (errno || *end || end == v || !isfinite(x)) {   /* inf, nan: a black image, not a picture */
        fprintf(stderr, "sdc: generate: %s '%s': expected a finite number\n", flag, v);
        return -1;
    }
    *out = x;
    return 0;
}


/* --lora FILE[:W]: W is what follows the last ':' when it is a number (paths may hold ':');
 * the ':' is cut off in place (argv is ours to change). */
static int parse_lora(char *v, sdc_lora *l) {
    char *c = strrchr(v, ':'), *end;
    float w = 1.0f;
    if (c && c[1]) {
        errno = 0;
        float x = strtof(c + 1, &end);
        if (!errno && !*end && x == x && c != v) { w = x; *c = 0; }
    }
    if (!*v) { fprintf(stderr, "sdc: generate: --lora '%s': no file\n", v); return -1; }
    l->path = v;
    l->multiplier = w;
    return 0;
}

static char *numbered(const char *out, int i) {   /* out.png → out_<i>.png */
    size_t n = strlen(out);
    char *s = malloc(n + 16);
    if (!s) return NULL;
    const char *dot = strrchr(out, '.');
    int stem = (dot && !strchr(dot, '/')) ? (int)(dot - out) : (int)n;
    snprintf(s, n + 16, "%.*s_%d%s", stem, out, i, out + stem);
    return s;
}

/* Everything that can be checked before the model loads, so a mistake costs nothing: every
 * output path (each numbered image of a batch, the grid) may be written — only a regular file is
 * ever replaced; the size; the img2img options. A thread count above the CPUs is cut down with a
 * warning (it only slows every barrier down). Prints one line and returns -1 when refused. */
static int check_before_loading(const sdc_gen_params *gp, sdc_model_params *mp, const char *out,
                                const char *grid_path, long batch, int have_w, int have_h,
                                int have_strength, const char *init_path, int quiet) {
    sdc_err e = {{0}};
    for (long b = 0; b < batch; b++) {
        char *path = batch > 1 ? numbered(out, (int)b + 1) : strdup(out);
        int bad = !path || sdc_output_check(path, 1, &e);
        if (!path) snprintf(e.msg, sizeof e.msg, "out of memory");
        free(path);
        if (bad) { fprintf(stderr, "sdc: %s\n", e.msg); return -1; }
    }
    if (grid_path && sdc_output_check(grid_path, 1, &e)) { fprintf(stderr, "sdc: --grid %s\n", e.msg); return -1; }
    if ((have_w && gp->width % 8) || (have_h && gp->height % 8)) {
        int wbad = have_w && gp->width % 8;
        int v = wbad ? gp->width : gp->height;
        fprintf(stderr, "sdc: generate: %s %d: width and height must be multiples of 8 (%d or %d)\n",
                wbad ? "-W" : "-H", v, v / 8 * 8 > 0 ? v / 8 * 8 : 8, v / 8 * 8 + 8);
        return -1;
    }
    if (have_strength && !init_path) {
        fprintf(stderr, "sdc: generate: --strength %g needs -i IMAGE (img2img); without it the image starts from noise\n",
                gp->strength);
        return -1;
    }
    if (have_strength && !(gp->strength > 0 && gp->strength <= 1)) {
        fprintf(stderr, "sdc: generate: --strength %g: must be in (0, 1]\n", gp->strength);
        return -1;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu > 0 && mp->threads > ncpu) {
        if (!quiet)
            fprintf(stderr, "sdc: warning: -t %d: this machine has %ld CPUs; using %ld (more threads only "
                    "wait for each other)\n", mp->threads, ncpu, ncpu);
        mp->threads = (int)ncpu;
    }
    return 0;
}

/* --load-report: where the load went (sdc_model_load_report, the numbers bench-load reports), the
 * time from sdc_model_open to the first UNet call, and the UNet's layout digest (as bench-load
 * --digest), on stderr after the first image. */
static void print_load_report(sdc_model *m) {
    const sdc_load_report *lr = sdc_model_load_report(m);
    for (int q = 0; q < lr->n_phases; q++)
        fprintf(stderr, "load: %-12s %8.1f ms wall %8.1f user %8.1f sys %8ld minor faults %7.0f MB resident\n",
                lr->phase[q].name, lr->phase[q].wall_s * 1e3, lr->phase[q].user_s * 1e3, lr->phase[q].sys_s * 1e3,
                lr->phase[q].minor_faults, lr->phase[q].rss_kb / 1024.0);
    fprintf(stderr, "load: ready %.1f ms, peak %.0f MB; first UNet call %.1f ms after the open began\n", lr->ready_s * 1e3,
            lr->peak_rss_kb / 1024.0, lr->first_unet > 0 ? (lr->first_unet - lr->start) * 1e3 : 0);
    char hex[65];
    sdc_model_layout_digest(m, hex);
    fprintf(stderr, "load: layout %s\n", hex);
}

int sdc_cmd_generate(int argc, char **argv) {
    sdc_model_params mp = sdc_model_default_params();
    sdc_gen_params gp = sdc_gen_default_params();
    const char *out = "output.png", *init_path = NULL, *grid_path = NULL, *mask_path = NULL, *preview_path = NULL;
    long seed = 42, batch = 1, v;
    int have_strength = 0;
    const char *prompts_path = NULL;   /* --prompts (cli/prompts.c) */
    int shard_k = 0, shard_n = 1, have_shard = 0, have_out = 0;
    int quiet = 0, load_report = 0, have_w = 0, have_h = 0, have_steps = 0, have_cfg = 0, have_prompt = 0;
    int have_sampler = 0, have_size_cond = 0, have_crop_cond = 0;
    gp.negative_prompt = NULL;   /* no -n: none given (SDXL: zeros; SD 1.x/2.x: "") */
    sdc_lora loras[MAX_LORA_FLAGS];
    int n_loras = 0;
    gp.cfg_scale = 7.0f;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT()                                                                     \
    ((i + 1 < argc) ? argv[++i]                                                    \
                    : (fprintf(stderr, "sdc: generate: %s needs a value\n", a), (char *)NULL))
        const char *val = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--strict")) mp.strict = 1;
        else if (!strcmp(a, "--allow-unsafe-pickle")) mp.allow_unsafe_pickle = 1;
        else if (!strcmp(a, "--vae-tiling")) gp.vae_tiling = 1;
        else if (!strcmp(a, "--low-mem")) mp.low_mem = 1;
        else if (!strcmp(a, "--load-report")) load_report = 1;
        else if (!takes_value(a)) {
            fprintf(stderr, "sdc: generate: unknown option '%s' (see sdc generate --help)\n", a);
            return 2;
        } else if (!(val = NEXT())) return 2;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) mp.model_path = val;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { gp.prompt = val; have_prompt = 1; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--negative-prompt")) gp.negative_prompt = val;
        else if (!strcmp(a, "-s") || !strcmp(a, "--seed")) { if (parse_int(a, val, -1, LONG_MAX, &seed)) return 2; }
        else if (!strcmp(a, "--steps")) { if (parse_int(a, val, 1, 1000, &v)) return 2; gp.steps = (int)v; have_steps = 1; }
        else if (!strcmp(a, "--cfg-scale")) { if (parse_float(a, val, &gp.cfg_scale)) return 2; have_cfg = 1; }
        else if (!strcmp(a, "--sampling-method")) {
            have_sampler = 1;
            if ((gp.sample_method = sdc_sampler_from_name(val)) < 0) {
                fprintf(stderr, "sdc: generate: --sampling-method '%s': unknown (euler, euler_a, heun, ddim, pndm, dpm++2m, lcm)\n", val);
                return 2;
            }
        } else if (!strcmp(a, "--scheduler")) {
            if ((gp.schedule = sdc_scheduler_from_name(val)) < 0) { fprintf(stderr, "sdc: generate: --scheduler '%s': unknown (discrete, karras)\n", val); return 2; }
        } else if (!strcmp(a, "--timestep-spacing")) {
            if ((gp.spacing = sdc_timestep_spacing_from_name(val)) < 0) { fprintf(stderr, "sdc: generate: --timestep-spacing '%s': unknown (leading, linspace, trailing)\n", val); return 2; }
        } else if (!strcmp(a, "-W") || !strcmp(a, "--width")) { if (parse_int(a, val, 8, 8192, &v)) return 2; gp.width = (int)v; have_w = 1; }
        else if (!strcmp(a, "-H") || !strcmp(a, "--height")) { if (parse_int(a, val, 8, 8192, &v)) return 2; gp.height = (int)v; have_h = 1; }
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch-count")) { if (parse_int(a, val, 1, MAX_BATCH, &batch)) return 2; }
        else if (!strcmp(a, "-i") || !strcmp(a, "--init-img")) init_path = val;
        else if (!strcmp(a, "--strength")) { if (parse_float(a, val, &gp.strength)) return 2; have_strength = 1; }
        else if (!strcmp(a, "--mask")) mask_path = val;
        else if (!strcmp(a, "--vae")) mp.vae_path = val;
        else if (!strcmp(a, "--clip-skip")) { if (parse_int(a, val, 0, 64, &v)) return 2; gp.clip_skip = (int)v; }
        else if (!strcmp(a, "--prompt-mode")) {
            if (!strcmp(val, "chunk")) gp.prompt_mode = 0;
            else if (!strcmp(val, "truncate")) gp.prompt_mode = 1;
            else { fprintf(stderr, "sdc: generate: --prompt-mode '%s': unknown (chunk, truncate)\n", val); return 2; }
        } else if (!strcmp(a, "--rng")) {
            if (strcmp(val, "torch")) { fprintf(stderr, "sdc: generate: --rng '%s': only 'torch' (PyTorch's CPU generator) is supported\n", val); return 2; }
        } else if (!strcmp(a, "--config")) mp.config_path = val;
        else if (!strcmp(a, "--prediction")) {
            if (!strcmp(val, "eps")) mp.prediction = 0;
            else if (!strcmp(val, "v")) mp.prediction = 1;
            else { fprintf(stderr, "sdc: generate: --prediction '%s': expected eps or v\n", val); return 2; }
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { if (parse_int(a, val, 0, 1024, &v)) return 2; mp.threads = (int)v; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { out = val; have_out = 1; }
        else if (!strcmp(a, "--prompts")) prompts_path = val;
        else if (!strcmp(a, "--shard")) {
            if (sdc_parse_shard(val, &shard_k, &shard_n)) { fprintf(stderr, "sdc: generate: --shard '%s': expected K/N with 0 <= K < N\n", val); return 2; }
            have_shard = 1;
        }
        else if (!strcmp(a, "--grid")) grid_path = val;
        else if (!strcmp(a, "--size-cond")) {
            if (parse_pair(a, val, &gp.size_cond_w, &gp.size_cond_h)) return 2;
            if (gp.size_cond_w == 0 || gp.size_cond_h == 0) {
                fprintf(stderr, "sdc: generate: --size-cond '%s': width and height must be positive\n", val);
                return 2;
            }
            have_size_cond = 1;
        } else if (!strcmp(a, "--crop-cond")) { if (parse_pair(a, val, &gp.crop_x, &gp.crop_y)) return 2; have_crop_cond = 1; }
        else if (!strcmp(a, "--lora-model-dir")) mp.lora_model_dir = val;
        else if (!strcmp(a, "--embd-dir")) mp.embd_dir = val;
        else if (!strcmp(a, "--precision")) {
            if ((mp.precision = sdc_precision_from_name(val)) < 0) { fprintf(stderr, "sdc: generate: --precision '%s': unknown (f32, bf16)\n", val); return 2; }
        } else if (!strcmp(a, "--taesd")) mp.taesd_path = val;
        else if (!strcmp(a, "--preview")) preview_path = val;
        else if (!strcmp(a, "--preview-every")) { if (parse_int(a, val, 1, 1000, &v)) return 2; gp.preview_every = (int)v; }
        else if (!strcmp(a, "--lora")) {
            if (n_loras == MAX_LORA_FLAGS) { fprintf(stderr, "sdc: generate: more than %d --lora\n", MAX_LORA_FLAGS); return 2; }
            if (parse_lora(argv[i], &loras[n_loras])) return 2;
            n_loras++;
        } else { fprintf(stderr, "sdc: generate: unknown option '%s' (see sdc generate --help)\n", a); return 2; }
#undef NEXT
    }
    if (have_shard && !prompts_path) { fprintf(stderr, "sdc: generate: --shard splits a --prompts file: give --prompts FILE.jsonl\n"); return 2; }
    if (prompts_path && (have_prompt || init_path || mask_path || grid_path || batch != 1 || !have_out)) {
        fprintf(stderr, "sdc: generate: --prompts takes the prompts from the file and writes into -o DIR (no -p, -i, --mask, --grid, -b)\n");
        return 2;
    }
    if (!have_prompt && !prompts_path) { fprintf(stderr, "sdc: generate: no prompt: give -p \"TEXT\"\n"); return 2; }
    if (preview_path && !mp.taesd_path) {
        fprintf(stderr, "sdc: generate: --preview needs --taesd FILE (the tiny autoencoder that draws the previews)\n");
        return 2;
    }
    if (gp.preview_every && !preview_path) {
        fprintf(stderr, "sdc: generate: --preview-every needs --preview FILE\n");
        return 2;
    }
    if (mp.precision == SDC_PRECISION_BF16 && mp.low_mem) {
        fprintf(stderr, "sdc: generate: --precision bf16 and --low-mem cannot be combined (bf16 packs the weights at load)\n");
        return 2;
    }
    if (!mp.model_path) {
        if (!(mp.model_path = cli_demo_model())) {
            fprintf(stderr, "sdc: generate: no -m given and the demo model (%s) is missing\n", CLI_DEMO_NAME);
            return 2;
        }
        if (!quiet) fprintf(stderr, "sdc: no -m given: using the embedded demo model toy-sd1 (%s)\n", mp.model_path);
    }
    if (prompts_path) {
        mp.loras = loras;
        mp.n_loras = n_loras;
        prompts_opts po = {prompts_path, out, shard_k, shard_n, mp, gp, have_w, have_h, have_steps,
                           have_cfg, seed, quiet};
        return sdc_generate_prompts(&po);
    }
    if (seed < 0) seed = (long)(time(NULL) ^ getpid()) & 0x7fffffff;
    mp.loras = loras;
    mp.n_loras = n_loras;
    mp.lora_prompt = gp.prompt;   /* its <lora:NAME:W> tags are merged at open */
    if (check_before_loading(&gp, &mp, out, grid_path, batch, have_w, have_h, have_strength, init_path, quiet))
        return 2;

    if (mask_path && !init_path) {
        fprintf(stderr, "sdc: generate: --mask needs -i IMAGE, the picture whose white-masked part is repainted\n");
        return 2;
    }
    uint8_t *init_rgb = NULL, *mask = NULL;
    sdc_err err = {{0}};
    if (init_path) {
        int iw, ih;
        if (sdc_read_image(init_path, &init_rgb, &iw, &ih, &err)) { fprintf(stderr, "sdc: %s\n", err.msg); return 2; }
        if ((have_w && iw != gp.width) || (have_h && ih != gp.height)) {
            fprintf(stderr, "sdc: %s: image is %dx%d but -W/-H ask for %dx%d (resize it first)\n", init_path, iw, ih, gp.width, gp.height);
            free(init_rgb);
            return 2;
        }
        gp.width = iw; gp.height = ih; have_w = have_h = 1;
        gp.init_rgb = init_rgb;
    }
    if (mask_path) {
        int mw, mh;
        if (sdc_read_mask(mask_path, &mask, &mw, &mh, &err)) { fprintf(stderr, "sdc: %s\n", err.msg); free(init_rgb); return 2; }
        if (mw != gp.width || mh != gp.height) {
            fprintf(stderr, "sdc: %s: mask is %dx%d but the image %s is %dx%d (they must be the same size)\n",
                    mask_path, mw, mh, init_path, gp.width, gp.height);
            free(init_rgb); free(mask);
            return 2;
        }
        gp.mask = mask;
    }
    if (!quiet) {   /* the load is where a big model's first seconds go */
        struct stat st;
        if (stat(mp.model_path, &st) == 0)
            fprintf(stderr, "sdc: loading %s (%.2f GB)%s\n", mp.model_path, st.st_size / 1e9,
                    mp.low_mem ? ", low-mem" : "");
    }
    sdc_model *m = sdc_model_open(&mp, &err);
    if (!m) { fprintf(stderr, "sdc: %s\n", err.msg); free(init_rgb); free(mask); return 2; }
    int dw, dh, dsteps;
    float dcfg;
    sdc_model_defaults(m, &dw, &dh, &dsteps, &dcfg);
    if (!have_w && dw > 0) gp.width = dw;
    if (!have_h && dh > 0) gp.height = dh;
    if (!have_steps && dsteps > 0) gp.steps = dsteps;
    const sdc_model_info *mi = sdc_model_get_info(m);
    if (!have_cfg && (dcfg > 0 || mi->turbo)) gp.cfg_scale = dcfg;   /* turbo: 0, no guidance */
    if (!have_sampler && mi->default_sampler >= 0) gp.sample_method = mi->default_sampler;
    if (gp.spacing == SDC_TIMESTEPS_DEFAULT && mi->default_spacing >= 0) gp.spacing = mi->default_spacing;
    if ((have_size_cond || have_crop_cond) && !mi->vector_cond) {
        fprintf(stderr, "sdc: --size-cond/--crop-cond: %s has no size conditioning (only SDXL has)\n", mi->family);
        sdc_model_close(m);
        free(init_rgb);
        free(mask);
        return 2;
    }
    if (mi->vector_cond && !have_size_cond) { gp.size_cond_w = gp.width; gp.size_cond_h = gp.height; }
    if (gp.prompt_mode == 1 && !quiet) {   /* diffusers cuts a long prompt; say so */
        char *rest = NULL;
        sdc_prompt_lora *tags = NULL;
        int nt = 0;
        sdc_prompt_chunks ch;
        if (!sdc_prompt_take_loras(gp.prompt, &rest, &tags, &nt, &err) &&
            !sdc_prompt_chunk(rest, SDC_PROMPT_TRUNCATE, 0, NULL, &ch, &err)) {
            if (ch.truncated)
                fprintf(stderr, "sdc: warning: the prompt is longer than 75 tokens; --prompt-mode truncate "
                                "cuts it there (as diffusers does)\n");
            sdc_prompt_chunks_free(&ch);
        }
        free(rest);
        sdc_prompt_loras_free(tags, nt);
    }
    for (int i = 0; !quiet && sdc_model_lora(m, i, NULL, NULL); i++) {
        const char *path;
        float w;
        const char *name = sdc_model_lora(m, i, &path, &w);
        fprintf(stderr, "sdc: LoRA %s (%s) merged with multiplier %g\n", name, path, w);
    }
    if (!quiet) {
        fprintf(stderr, "sdc: %s%s, %s prediction (%s); %dx%d, %d steps, %s, cfg %.1f; %s%s%s%s; model opened in %.2f s\n",
                mi->family, mi->turbo ? " (turbo)" : "", mi->prediction, mi->config_source, gp.width, gp.height, gp.steps,
                sdc_sampler_name(gp.sample_method), gp.cfg_scale, sdc_precision_name(mp.precision),
                mp.precision == SDC_PRECISION_BF16 ? " on " : "", mp.precision == SDC_PRECISION_BF16 ? sdc_bf16_kernels() : "",
                mp.taesd_path ? ", TAESD decoder" : "", sdc_model_load_report(m)->opened_s);
        if (mp.precision == SDC_PRECISION_F32 && sdc_cpu_has_bf16())
            fprintf(stderr, "sdc: note: this CPU has avx512_bf16: --precision bf16 %s (within ~1e-2 of f32; "
                            "README \"bf16 and TAESD\")\n", SDC_BF16_SPEEDUP);
        if (mi->vector_cond)
            fprintf(stderr, "sdc: size conditioning %dx%d, crop %d,%d\n", gp.size_cond_w, gp.size_cond_h, gp.crop_x,
                    gp.crop_y);
    }
    int inpaint_unet = mi->unet_in_channels != mi->latent_channels;
    if (!quiet && inpaint_unet && !mask)
        fprintf(stderr, "sdc: an inpainting model (%d-channel UNet) and no --mask: painting the whole picture (all-white mask)\n",
                mi->unet_in_channels);
    char hash[65] = "";   /* "Model hash" for the PNG: remembered across runs, empty if unreadable */
    if (sdc_model_hash(mp.model_path, hash)) hash[0] = 0;
    char model_name[256];
    sdc_a1111_model_name(mp.model_path, model_name, sizeof model_name);

    size_t npix = (size_t)gp.width * gp.height * 3;
    int cols = 1;
    while ((long)cols * cols < batch) cols++;
    int rows = (int)((batch + cols - 1) / cols);
    uint8_t *rgb = malloc(npix);
    uint8_t *grid = grid_path ? calloc((size_t)rows * cols, npix) : NULL;
    char *grid_params = NULL;
    if (grid_path && !grid) { fprintf(stderr, "sdc: out of memory for the grid\n"); free(rgb); sdc_model_close(m); free(init_rgb); free(mask); return 2; }
    int rc = 0;
    progress pr = {quiet, isatty(2), 0, 0, 0, (int)batch, 0};
    gp.on_step = on_step;
    gp.on_step_user = &pr;
    preview pv = {preview_path, 0};
    if (preview_path) {
        gp.on_preview = on_preview;
        gp.on_preview_user = &pv;
        if (!gp.preview_every) gp.preview_every = 1;
    }
    for (long b = 0; rc == 0 && b < batch; b++) {
        gp.seed = (uint64_t)seed + (uint64_t)b;   /* -s 2^63-1 -b 2: 2^63, no overflow */
        pr.t0 = now_s();
        pr.t_steps = 0;
        pr.image = (int)b + 1;
        char *path = batch > 1 ? numbered(out, (int)b + 1) : strdup(out);
        if (!rgb || !path) { fprintf(stderr, "sdc: out of memory\n"); free(path); rc = 2; break; }
        if (sdc_generate(m, &gp, rgb, &err)) { fprintf(stderr, "sdc: %s\n", err.msg); free(path); rc = 2; break; }
        char *params = sdc_a1111_with_lora_hashes(sdc_a1111_infotext(&gp, hash, model_name, (init_rgb ? SDC_A1111_IMG2IMG : 0) |
                                                           (inpaint_unet ? SDC_A1111_INPAINT_MODEL : 0)), m);
        if (!params) { fprintf(stderr, "sdc: out of memory\n"); free(path); rc = 2; break; }
        if (load_report && b == 0) print_load_report(m);
        if (sdc_write_png(path, rgb, gp.width, gp.height, "parameters", params, &err)) {
            fprintf(stderr, "sdc: %s\n", err.msg);
            rc = 2;
        } else if (!quiet) {
            image_done(&pr, path, gp.seed);
            if (!b) fprintf(stderr, "sdc: model ready in %.2f s%s\n", sdc_model_load_report(m)->ready_s,
                            mp.low_mem ? " (low-mem: weights read per layer)" : " (UNet bound while the prompt was encoded)");
        }
        if (b == 0) grid_params = params;   /* the sheet carries the first image's, as A1111's grid */
        else free(params);
        free(path);
        if (grid) {   /* tile b of a cols x rows sheet, row-major */
            size_t gw = (size_t)cols * gp.width * 3, x0 = (size_t)(b % cols) * gp.width * 3;
            for (int y = 0; y < gp.height; y++)
                memcpy(grid + ((size_t)(b / cols) * gp.height + y) * gw + x0,
                       rgb + (size_t)y * gp.width * 3, (size_t)gp.width * 3);
        }
    }
    if (rc == 0 && grid) {
        if (sdc_write_png(grid_path, grid, cols * gp.width, rows * gp.height, "parameters", grid_params, &err)) {
            fprintf(stderr, "sdc: %s\n", err.msg);
            rc = 2;
        } else if (!quiet) {
            fprintf(stderr, "sdc: wrote %s (%d x %d sheet)\n", grid_path, cols, rows);
        }
    }
    free(grid);
    free(grid_params);
    free(rgb);
    free(init_rgb);
    free(mask);
    sdc_model_close(m);
    return rc;
}
