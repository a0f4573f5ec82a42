/* serve.c — `sdc serve`'s engine: models, one loaded context, a bounded FIFO queue, one worker. */
#include "cli/serve.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/a1111.h"
#include "cli/hashcache.h"
#include "pipeline/image.h"

#define MAX_MODELS 4096   /* files offered from --models-dir: far more than anyone keeps */

struct serve {
    serve_opts opts;
    serve_model *models;
    int n_models;
    pthread_mutex_t mu;
    pthread_cond_t work;          /* a job was queued, or stop */
    pthread_cond_t done;          /* some job finished */
    serve_job *head, *tail;
    int queued, stopping;
    serve_job *running;
    volatile int interrupt;       /* read by the generation at each step (sdc_gen_params.interrupt) */
    int current;                  /* sd_model_checkpoint */
    int clip_skip;                /* CLIP_stop_at_last_layers */
    sdc_model *m;                 /* loaded model (worker-owned), its index and LoRA key */
    int loaded;
    char *loaded_loras;           /* genreq_lora_key of the prompt it was opened with */
    /* progress of the running job */
    int step, steps, image, images;
    double t_job, t_last;          /* start of the running job; duration of the last one */
    pthread_t worker;
    int worker_started;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- models */

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n > k && !strcmp(s + n - k, suf);
}

static int add_model(serve *s, const char *path, const char *config, sdc_err *e) {
    serve_model *ms = realloc(s->models, sizeof *ms * (size_t)(s->n_models + 1));
    if (!ms) return sdc_errf(e, "out of memory");
    s->models = ms;
    serve_model *m = &ms[s->n_models];
    memset(m, 0, sizeof *m);
    char name[256];
    sdc_a1111_model_name(path, name, sizeof name);
    m->name = strdup(name);
    m->path = strdup(path);
    m->config = config ? strdup(config) : NULL;
    s->n_models++;
    if (!m->name || !m->path || (config && !m->config)) return sdc_errf(e, "out of memory");
    return 0;
}

static int cmp_model(const void *a, const void *b) {
    return strcmp(((const serve_model *)a)->name, ((const serve_model *)b)->name);
}

static int scan_models(serve *s, const char *dir, sdc_err *e) {
    DIR *d = opendir(dir);
    if (!d) return sdc_errf(e, "%s: cannot open the models folder", dir);
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        const char *n = de->d_name;
        if (n[0] == '.' || !(ends_with(n, ".safetensors") || ends_with(n, ".ckpt"))) continue;
        if (s->n_models >= MAX_MODELS) { rc = sdc_errf(e, "%s: more than %d models", dir, MAX_MODELS); break; }
        size_t len = strlen(dir) + strlen(n) + 32;
        char *path = malloc(len), *cfg = malloc(len);
        if (!path || !cfg) { free(path); free(cfg); rc = sdc_errf(e, "out of memory"); break; }
        snprintf(path, len, "%s/%s", dir, n);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            snprintf(cfg, len, "%s/%.*s.config.json", dir, (int)(strrchr(n, '.') - n), n);
            rc = add_model(s, path, access(cfg, R_OK) == 0 ? cfg : NULL, e);
        }
        free(path);
        free(cfg);
    }
    closedir(d);
    if (rc) return -1;
    if (s->n_models == 0) return sdc_errf(e, "%s: no .safetensors or .ckpt files", dir);
    qsort(s->models, (size_t)s->n_models, sizeof *s->models, cmp_model);
    return 0;
}

int serve_model_count(const serve *s) { return s->n_models; }
const serve_model *serve_model_at(const serve *s, int i) { return (i >= 0 && i < s->n_models) ? &s->models[i] : NULL; }
const serve_opts *serve_options(const serve *s) { return &s->opts; }

/* A name as clients send it: "name", "name.safetensors" or AUTOMATIC1111's title "name [hash]".
 * Only compared with the list, never opened. */
int serve_find_model(const serve *s, const char *q) {
    for (int i = 0; i < s->n_models; i++) {
        const serve_model *m = &s->models[i];
        const char *file = strrchr(m->path, '/');
        file = file ? file + 1 : m->path;
        size_t n = strlen(m->name);
        if (!strcmp(q, m->name) || !strcmp(q, file)) return i;
        if (!strncmp(q, m->name, n) && q[n] == ' ' && q[n + 1] == '[') return i;   /* title */
        if (!strncmp(q, file, strlen(file)) && q[strlen(file)] == ' ' && q[strlen(file) + 1] == '[') return i;
    }
    return -1;
}

int serve_current_model(serve *s) {
    pthread_mutex_lock(&s->mu);
    int i = s->current;
    pthread_mutex_unlock(&s->mu);
    return i;
}
void serve_set_model(serve *s, int i) {
    pthread_mutex_lock(&s->mu);
    if (i >= 0 && i < s->n_models) s->current = i;
    pthread_mutex_unlock(&s->mu);
}
int serve_clip_skip(serve *s) {
    pthread_mutex_lock(&s->mu);
    int c = s->clip_skip;
    pthread_mutex_unlock(&s->mu);
    return c;
}
void serve_set_clip_skip(serve *s, int c) {
    pthread_mutex_lock(&s->mu);
    s->clip_skip = c;
    pthread_mutex_unlock(&s->mu);
}

/* Loads model i with the LoRAs tagged in prompt (closing the one loaded, unless it is the same);
 * worker thread or before it starts. */
static int load_model(serve *s, int i, const char *prompt, sdc_err *e) {
    char *key = genreq_lora_key(prompt, e);
    if (!key) return -1;
    if (s->m && s->loaded == i && s->loaded_loras && !strcmp(key, s->loaded_loras)) { free(key); return 0; }
    sdc_model_close(s->m);
    s->m = NULL;
    free(s->loaded_loras);
    s->loaded_loras = NULL;
    serve_model *sm = &s->models[i];
    sdc_model_params mp = sdc_model_default_params();
    mp.model_path = sm->path;
    mp.config_path = sm->config;
    mp.threads = s->opts.threads;
    mp.low_mem = s->opts.low_mem;
    mp.strict = 1;   /* a server never runs a pickle's unknown globals */
    mp.lora_model_dir = s->opts.lora_dir;   /* <lora:NAME:W> looked up there only, by the library */
    mp.lora_prompt = key[0] ? prompt : NULL;
    mp.embd_dir = s->opts.embd_dir;
    if (!(s->m = sdc_model_open(&mp, e))) { free(key); return -1; }
    s->loaded_loras = key;
    s->loaded = i;
    char hash[65] = "";
    if (sdc_model_hash(sm->path, hash)) hash[0] = 0;
    pthread_mutex_lock(&s->mu);
    memcpy(sm->hash, hash, sizeof hash);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void serve_model_hash(serve *s, int i, char out[65]) {
    out[0] = 0;
    if (i < 0 || i >= s->n_models) return;
    pthread_mutex_lock(&s->mu);
    memcpy(out, s->models[i].hash, 65);
    pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------- jobs */

static void job_free(serve_job *j) {
    if (!j) return;
    for (int i = 0; i < j->n_done; i++) { free(j->png[i]); free(j->infotext[i]); }
    free(j->png); free(j->png_len); free(j->infotext); free(j->seeds);
    genreq_free(&j->req);
    free(j);
}

void serve_release(serve *s, serve_job *j) {
    if (!j) return;
    pthread_mutex_lock(&s->mu);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (last) job_free(j);
}

static uint64_t random_seed(void) {   /* AUTOMATIC1111: a random 32-bit seed */
    uint32_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, &v, sizeof v) != (ssize_t)sizeof v) v = (uint32_t)(time(NULL) ^ (uintptr_t)&v);
    if (fd >= 0) close(fd);
    return v % 4294967294u;
}

serve_job *serve_submit(serve *s, genreq *r, int model, int *retry_after) {
    *retry_after = 0;
    serve_job *j = calloc(1, sizeof *j);
    int n = r->n_images;
    if (j) {
        j->png = calloc((size_t)n, sizeof *j->png);
        j->png_len = calloc((size_t)n, sizeof *j->png_len);
        j->infotext = calloc((size_t)n, sizeof *j->infotext);
        j->seeds = calloc((size_t)n, sizeof *j->seeds);
    }
    if (!j || !j->png || !j->png_len || !j->infotext || !j->seeds) { job_free(j); return NULL; }
    pthread_mutex_lock(&s->mu);
    if (s->queued >= s->opts.max_queue || s->stopping) {
        double per = s->t_last > 0 ? s->t_last : 5;
        *retry_after = 1 + (int)(per * (s->queued + 1));
        pthread_mutex_unlock(&s->mu);
        job_free(j);
        return NULL;
    }
    j->req = *r;
    memset(r, 0, sizeof *r);
    if (j->req.seed < 0) j->req.seed = (long long)random_seed();
    j->model = model >= 0 ? model : s->current;
    if (j->req.gp.clip_skip == 0) j->req.gp.clip_skip = s->clip_skip;
    j->state = JOB_QUEUED;
    j->refs = 2;
    time_t t = time(NULL);
    struct tm tm;
    strftime(j->job_timestamp, sizeof j->job_timestamp, "%Y%m%d%H%M%S", gmtime_r(&t, &tm));
    if (s->tail) s->tail->next = j; else s->head = j;
    s->tail = j;
    s->queued++;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    return j;
}

/* Takes j out of the queue if it is still there (lock held); 1 when it was. */
static int unqueue(serve *s, serve_job *j) {
    serve_job **pp = &s->head, *prev = NULL;
    while (*pp && *pp != j) { prev = *pp; pp = &(*pp)->next; }
    if (!*pp) return 0;
    *pp = j->next;
    if (s->tail == j) s->tail = prev;
    s->queued--;
    j->refs--;   /* the worker's reference */
    return 1;
}

int serve_wait(serve *s, serve_job *j, int (*gone)(void *), void *user) {
    pthread_mutex_lock(&s->mu);
    while (j->state != JOB_DONE) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
        pthread_cond_timedwait(&s->done, &s->mu, &ts);
        if (j->state != JOB_DONE && gone && gone(user)) {
            if (!unqueue(s, j) && s->running == j) s->interrupt = 1;
            pthread_mutex_unlock(&s->mu);
            return -1;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void serve_interrupt(serve *s) {
    pthread_mutex_lock(&s->mu);
    if (s->running) s->interrupt = 1;
    pthread_mutex_unlock(&s->mu);
}

static void on_step(void *u, int step, int steps) {
    serve *s = u;
    pthread_mutex_lock(&s->mu);
    s->step = step;
    s->steps = steps;
    pthread_mutex_unlock(&s->mu);
}

/* Runs one job on the worker thread (the lock not held). */
static void run_job(serve *s, serve_job *j) {
    sdc_err e = {{0}};
    if (load_model(s, j->model, j->req.gp.prompt, &e)) {
        j->status = strstr(e.msg, "lora") || strstr(e.msg, "LoRA") ? 422 : 500;
        snprintf(j->error, sizeof j->error, "model %.200s: %.700s", s->models[j->model].name, e.msg);
        return;
    }
    if (genreq_apply_defaults(&j->req, s->m, &e)) {
        j->status = 422;
        snprintf(j->error, sizeof j->error, "%s", e.msg);
        return;
    }
    sdc_gen_params gp = j->req.gp;
    gp.on_step = on_step;
    gp.on_step_user = s;
    gp.interrupt = &s->interrupt;
    const serve_model *sm = &s->models[j->model];
    char hash[65];
    serve_model_hash(s, j->model, hash);
    const sdc_model_info *mi = sdc_model_get_info(s->m);
    int inpaint_model = mi->unet_in_channels != mi->latent_channels ? SDC_A1111_INPAINT_MODEL : 0;
    uint8_t *rgb = malloc((size_t)gp.width * gp.height * 3);
    if (!rgb) { j->status = 500; snprintf(j->error, sizeof j->error, "out of memory"); return; }
    for (int i = 0; i < j->req.n_images; i++) {
        pthread_mutex_lock(&s->mu);
        s->image = i;
        s->images = j->req.n_images;
        s->step = 0;
        s->steps = gp.steps;
        pthread_mutex_unlock(&s->mu);
        gp.seed = (uint64_t)j->req.seed + (uint64_t)i;
        if (sdc_generate(s->m, &gp, rgb, &e)) {
            if (s->interrupt) { j->interrupted = 1; break; }
            j->status = strstr(e.msg, "out of memory") ? 500 : 422;
            snprintf(j->error, sizeof j->error, "%s", e.msg);
            break;
        }
        char *text = sdc_a1111_with_lora_hashes(sdc_a1111_infotext(&gp, hash, sm->name, (gp.init_rgb ? SDC_A1111_IMG2IMG : 0) | inpaint_model), s->m);
        if (!text || sdc_png_encode(rgb, gp.width, gp.height, "parameters", text, &j->png[i], &j->png_len[i], &e)) {
            free(text);
            j->status = 500;
            snprintf(j->error, sizeof j->error, "out of memory encoding the PNG");
            break;
        }
        j->infotext[i] = text;
        j->seeds[i] = gp.seed;
        j->n_done = i + 1;
        if (s->interrupt) { j->interrupted = i + 1 < j->req.n_images; break; }
    }
    j->req.gp = gp;   /* the values used (defaults filled), for the response */
    j->req.gp.on_step = NULL;
    j->req.gp.interrupt = NULL;   /* (init_rgb and mask still point into j->req) */
    free(rgb);
}

static void *worker(void *u) {
    serve *s = u;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stopping) pthread_cond_wait(&s->work, &s->mu);
        if (s->stopping) break;
        serve_job *j = s->head;
        s->head = j->next;
        if (!s->head) s->tail = NULL;
        s->queued--;
        j->next = NULL;
        j->state = JOB_RUNNING;
        s->running = j;
        s->interrupt = 0;
        s->t_job = now_s();
        pthread_mutex_unlock(&s->mu);
        run_job(s, j);
        pthread_mutex_lock(&s->mu);
        s->t_last = now_s() - s->t_job;
        s->running = NULL;
        s->interrupt = 0;
        j->state = JOB_DONE;
        int last = --j->refs == 0;
        pthread_cond_broadcast(&s->done);
        if (last) {
            pthread_mutex_unlock(&s->mu);
            job_free(j);
            pthread_mutex_lock(&s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

serve *serve_open(const serve_opts *o, sdc_err *e) {
    serve *s = calloc(1, sizeof *s);
    if (!s) { sdc_errf(e, "out of memory"); return NULL; }
    s->opts = *o;
    if (s->opts.max_queue < 1) s->opts.max_queue = 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->done, NULL);
    s->loaded = -1;
    int rc = o->models_dir ? scan_models(s, o->models_dir, e) : add_model(s, o->model_path, o->config_path, e);
    if (!rc && o->models_dir && o->model_path) {   /* -m with --models-dir: the one loaded first */
        int i = serve_find_model(s, o->model_path);
        if (i < 0) rc = sdc_errf(e, "%s: not in %s", o->model_path, o->models_dir);
        else s->current = i;
    }
    if (!rc) rc = load_model(s, s->current, "", e);
    if (!rc) {
        if (pthread_create(&s->worker, NULL, worker, s)) rc = sdc_errf(e, "cannot start the worker thread");
        else s->worker_started = 1;
    }
    if (rc) { serve_close(s); return NULL; }
    return s;
}

void serve_shutdown(serve *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    if (s->running) s->interrupt = 1;
    while (s->head) {   /* never run: their requests answer 503 */
        serve_job *j = s->head;
        s->head = j->next;
        j->next = NULL;
        j->state = JOB_DONE;
        j->status = 503;
        snprintf(j->error, sizeof j->error, "the server is shutting down");
        if (--j->refs == 0) job_free(j);
    }
    s->tail = NULL;
    s->queued = 0;
    pthread_cond_broadcast(&s->work);
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->mu);
}

void serve_close(serve *s) {
    if (!s) return;
    serve_shutdown(s);
    if (s->worker_started) pthread_join(s->worker, NULL);
    sdc_model_close(s->m);
    free(s->loaded_loras);
    for (int i = 0; i < s->n_models; i++) {
        free(s->models[i].name); free(s->models[i].path); free(s->models[i].config);
    }
    free(s->models);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->done);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---------------------------------------------------------------- progress */

cJSON *serve_progress_json(serve *s) {
    pthread_mutex_lock(&s->mu);
    int busy = s->running != NULL;
    double progress = 0, eta = 0, el = busy ? now_s() - s->t_job : 0;
    if (busy && s->images > 0 && s->steps > 0)
        progress = (s->image + (double)s->step / s->steps) / s->images;
    if (progress > 0) eta = el / progress - el;
    cJSON *o = cJSON_CreateObject(), *st = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "progress", progress);
    cJSON_AddNumberToObject(o, "eta_relative", eta);
    cJSON_AddBoolToObject(st, "skipped", 0);
    cJSON_AddBoolToObject(st, "interrupted", busy && s->interrupt);
    cJSON_AddStringToObject(st, "job", busy ? "txt2img" : "");
    cJSON_AddNumberToObject(st, "job_count", s->queued + busy);
    cJSON_AddStringToObject(st, "job_timestamp", busy ? s->running->job_timestamp : "0");
    cJSON_AddNumberToObject(st, "job_no", busy ? s->image : 0);
    cJSON_AddNumberToObject(st, "sampling_step", busy ? s->step : 0);
    cJSON_AddNumberToObject(st, "sampling_steps", busy ? s->steps : 0);
    cJSON_AddNumberToObject(st, "queued", s->queued);   /* sdc: requests waiting their turn */
    pthread_mutex_unlock(&s->mu);
    cJSON_AddItemToObject(o, "state", st);
    cJSON_AddNullToObject(o, "current_image");   /* hook: a TAESD preview once one is loaded */
    cJSON_AddNullToObject(o, "textinfo");
    return o;
}
