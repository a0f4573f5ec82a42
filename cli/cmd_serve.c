/* cmd_serve.c — `sdc serve`: AUTOMATIC1111's HTTP API (/sdapi/v1/...) and OpenAI's images
 * endpoint over GNU libmicrohttpd (one thread per connection), JSON with cJSON. The requests wait
 * in the engine's bounded queue (serve.c); this file parses, checks and answers. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cli/a1111.h"
#include "cli/base64.h"
#include "cli/cli.h"
#include "cli/genreq.h"
#include "cli/serve.h"

#define SERVE_MAX_BODY   (32L << 20)  /* default request size limit: a 2048² img2img PNG in base64 */
#define SERVE_MAX_DEPTH  32           /* JSON nesting: AUTOMATIC1111's deepest request has 3 */
#define SERVE_TIMEOUT    30           /* seconds a client may stay silent while sending */
#define SERVE_EXTRA_CONN 64           /* connections beyond the queue (progress, interrupt, lists) */

typedef struct app {
    serve *s;
    char *user, *pass;        /* --api-auth, or NULL */
    long max_body;
} app;

typedef struct conn {         /* one request's state across the handler's calls */
    char *body;
    size_t n;
    int answered;             /* a response is queued (an early 401/413): ignore the rest */
} conn;

static void usage(FILE *f) {
    fprintf(f,
        "usage: sdc serve (-m MODEL | --models-dir DIR) [options]\n"
        "  -m, --model FILE        the model to serve (with --models-dir: the one loaded first)\n"
        "      --models-dir DIR    offer every .safetensors / .ckpt in DIR (sd_model_checkpoint picks);\n"
        "                          NAME.config.json beside a model is its config\n"
        "      --config FILE       model config JSON for -m\n"
        "      --host ADDR         address to listen on (default 127.0.0.1)\n"
        "      --port N            port (default 7860, as AUTOMATIC1111; 0 = any free port)\n"
        "      --api-auth U:P      HTTP basic auth (required to listen beyond loopback)\n"
        "      --max-queue N       requests waiting their turn (default 8); more get 503\n"
        "      --max-body BYTES    request size limit (default 32 MiB)\n"
        "      --timeout S         seconds a silent client is kept (default 30)\n"
        "      --lora-model-dir D  LoRA folder (listed by /sdapi/v1/loras)\n"
        "      --embd-dir D        textual-inversion folder (listed by /sdapi/v1/embeddings)\n"
        "      --low-mem           keep weights as stored (far less RAM)\n"
        "  -t, --threads N         threads per generation (default: all cores)\n"
        "endpoints: POST /sdapi/v1/txt2img, /sdapi/v1/img2img, /sdapi/v1/options, /sdapi/v1/interrupt,\n"
        "  /v1/images/generations; GET /sdapi/v1/sd-models, samplers, schedulers, loras, options,\n"
        "  progress, embeddings, sd-vae, upscalers, /v1/models, /internal/ping\n");
}

/* ---------------------------------------------------------------- responses */

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, char *text,
                                 const char *retry_after) {
    if (!text) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(text); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, cJSON *o) {
    char *t = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return send_text(c, status, t, NULL);
}

/* AUTOMATIC1111 (FastAPI) error: {"detail": "..."}; a field's error as pydantic gives it:
 * {"detail": [{"loc": ["body", FIELD], "msg": "...", "type": "value_error"}]}. */
static enum MHD_Result send_detail(struct MHD_Connection *c, unsigned status, const char *field,
                                   const char *msg) {
    cJSON *o = cJSON_CreateObject();
    if (field) {
        cJSON *arr = cJSON_AddArrayToObject(o, "detail"), *d = cJSON_CreateObject(), *loc = cJSON_CreateArray();
        cJSON_AddItemToArray(loc, cJSON_CreateString("body"));
        cJSON_AddItemToArray(loc, cJSON_CreateString(field));
        cJSON_AddItemToObject(d, "loc", loc);
        cJSON_AddStringToObject(d, "msg", msg);
        cJSON_AddStringToObject(d, "type", "value_error");
        cJSON_AddItemToArray(arr, d);
    } else {
        cJSON_AddStringToObject(o, "detail", msg);
    }
    return send_json(c, status, o);
}

/* OpenAI's error shape. */
static enum MHD_Result send_openai_error(struct MHD_Connection *c, unsigned status, const char *field,
                                         const char *msg) {
    cJSON *o = cJSON_CreateObject(), *er = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(er, "message", msg);
    cJSON_AddStringToObject(er, "type", status >= 500 ? "server_error" : "invalid_request_error");
    if (field) cJSON_AddStringToObject(er, "param", field); else cJSON_AddNullToObject(er, "param");
    cJSON_AddNullToObject(er, "code");
    return send_json(c, status, o);
}

static enum MHD_Result send_busy(struct MHD_Connection *c, int retry_after, int openai) {
    char ra[32];
    snprintf(ra, sizeof ra, "%d", retry_after > 0 ? retry_after : 1);
    cJSON *o = cJSON_CreateObject();
    if (openai) {
        cJSON *er = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(er, "message", "the queue is full: retry later");
        cJSON_AddStringToObject(er, "type", "server_error");
    } else {
        cJSON_AddStringToObject(o, "detail", "the queue is full: retry later");
    }
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return send_text(c, 503, t, ra);
}

/* ---------------------------------------------------------------- the GET endpoints */

static void model_title(serve *s, int i, char *out, size_t cap) {
    const serve_model *m = serve_model_at(s, i);
    const char *file = strrchr(m->path, '/');
    file = file ? file + 1 : m->path;
    char hash[65];
    serve_model_hash(s, i, hash);
    if (hash[0]) snprintf(out, cap, "%s [%.10s]", file, hash);
    else snprintf(out, cap, "%s", file);
}

static cJSON *sd_models(serve *s) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < serve_model_count(s); i++) {
        const serve_model *m = serve_model_at(s, i);
        char title[1200], hash[65], h10[11];
        model_title(s, i, title, sizeof title);
        serve_model_hash(s, i, hash);
        snprintf(h10, sizeof h10, "%.10s", hash);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "title", title);
        cJSON_AddStringToObject(o, "model_name", m->name);
        if (hash[0]) { cJSON_AddStringToObject(o, "hash", h10); cJSON_AddStringToObject(o, "sha256", hash); }
        else { cJSON_AddNullToObject(o, "hash"); cJSON_AddNullToObject(o, "sha256"); }
        cJSON_AddStringToObject(o, "filename", m->path);
        if (m->config) cJSON_AddStringToObject(o, "config", m->config); else cJSON_AddNullToObject(o, "config");
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *samplers(void) {
    cJSON *arr = cJSON_CreateArray();
    for (int m = 0; m < SDC_SAMPLER_COUNT; m++) {
        cJSON *o = cJSON_CreateObject(), *al = cJSON_CreateArray();
        cJSON_AddStringToObject(o, "name", sdc_a1111_sampler_name(m));
        cJSON_AddItemToArray(al, cJSON_CreateString(sdc_sampler_name(m)));
        cJSON_AddItemToObject(o, "aliases", al);
        cJSON_AddObjectToObject(o, "options");
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *schedulers(void) {
    cJSON *arr = cJSON_CreateArray();
    const char *names[] = {"automatic", "karras"};
    const double rho[] = {-1, 7};
    for (int i = 0; i < 2; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", names[i]);
        cJSON_AddStringToObject(o, "label", sdc_a1111_schedule_name(i));
        cJSON_AddNullToObject(o, "aliases");
        cJSON_AddNumberToObject(o, "default_rho", rho[i]);
        cJSON_AddBoolToObject(o, "need_inner_model", 0);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* Files of a folder with one of the extensions, as [{name, alias, path, metadata}] (LoRAs) —
 * listed only: loading them is another change's. */
static cJSON *folder_list(const char *dir) {
    cJSON *arr = cJSON_CreateArray();
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        const char *n = de->d_name, *dot = strrchr(n, '.');
        if (n[0] == '.' || !dot || (strcmp(dot, ".safetensors") && strcmp(dot, ".pt") && strcmp(dot, ".ckpt") && strcmp(dot, ".bin")))
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, n);
        char stem[256];
        snprintf(stem, sizeof stem, "%.*s", (int)(dot - n), n);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", stem);
        cJSON_AddStringToObject(o, "alias", stem);
        cJSON_AddStringToObject(o, "path", path);
        cJSON_AddObjectToObject(o, "metadata");
        cJSON_AddItemToArray(arr, o);
    }
    if (d) closedir(d);
    return arr;
}

static cJSON *options_json(serve *s) {
    cJSON *o = cJSON_CreateObject();
    int i = serve_current_model(s);
    char title[1200], hash[65];
    model_title(s, i, title, sizeof title);
    serve_model_hash(s, i, hash);
    cJSON_AddStringToObject(o, "sd_model_checkpoint", title);
    if (hash[0]) cJSON_AddStringToObject(o, "sd_checkpoint_hash", hash); else cJSON_AddNullToObject(o, "sd_checkpoint_hash");
    int cs = serve_clip_skip(s);
    cJSON_AddNumberToObject(o, "CLIP_stop_at_last_layers", cs > 0 ? cs : 1);
    cJSON_AddStringToObject(o, "sd_vae", "Automatic");
    cJSON_AddStringToObject(o, "samples_format", "png");
    return o;
}

/* ---------------------------------------------------------------- the POST endpoints */

/* 1 when the client closed its side: its job is not worth finishing. */
static int client_gone(void *u) {
    struct MHD_Connection *c = u;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static cJSON *parse_body(const conn *k, char *why, size_t cap) {
    if (!genreq_json_depth_ok(k->body ? k->body : "", k->n, SERVE_MAX_DEPTH)) {
        snprintf(why, cap, "JSON nested deeper than %d levels", SERVE_MAX_DEPTH);
        return NULL;
    }
    if (k->n && memchr(k->body, 0, k->n)) {   /* cJSON would stop reading there */
        snprintf(why, cap, "the body holds a NUL byte: not JSON text");
        return NULL;
    }
    cJSON *o = k->n ? cJSON_ParseWithLength(k->body, k->n) : NULL;
    if (!o) snprintf(why, cap, "the body is not valid JSON");
    return o;
}

static cJSON *info_json(serve *s, const serve_job *j, genreq_kind kind) {
    const sdc_gen_params *gp = &j->req.gp;
    const serve_model *m = serve_model_at(s, j->model);
    char hash[65], h10[11];
    serve_model_hash(s, j->model, hash);
    snprintf(h10, sizeof h10, "%.10s", hash);
    cJSON *o = cJSON_CreateObject(), *ap = cJSON_CreateArray(), *an = cJSON_CreateArray(),
          *as = cJSON_CreateArray(), *it = cJSON_CreateArray();
    for (int i = 0; i < j->n_done; i++) {
        cJSON_AddItemToArray(ap, cJSON_CreateString(gp->prompt));
        cJSON_AddItemToArray(an, cJSON_CreateString(gp->negative_prompt));
        cJSON_AddItemToArray(as, cJSON_CreateNumber((double)j->seeds[i]));
        cJSON_AddItemToArray(it, cJSON_CreateString(j->infotext[i]));
    }
    cJSON_AddStringToObject(o, "prompt", gp->prompt);
    cJSON_AddItemToObject(o, "all_prompts", ap);
    cJSON_AddStringToObject(o, "negative_prompt", gp->negative_prompt);
    cJSON_AddItemToObject(o, "all_negative_prompts", an);
    cJSON_AddNumberToObject(o, "seed", (double)j->req.seed);
    cJSON_AddItemToObject(o, "all_seeds", as);
    cJSON_AddNumberToObject(o, "subseed", -1);
    cJSON_AddNumberToObject(o, "subseed_strength", 0);
    cJSON_AddNumberToObject(o, "width", gp->width);
    cJSON_AddNumberToObject(o, "height", gp->height);
    cJSON_AddStringToObject(o, "sampler_name", sdc_a1111_sampler_name(gp->sample_method));
    cJSON_AddStringToObject(o, "scheduler", sdc_a1111_schedule_name(gp->schedule));
    cJSON_AddNumberToObject(o, "cfg_scale", gp->cfg_scale);
    cJSON_AddNumberToObject(o, "steps", gp->steps);
    cJSON_AddNumberToObject(o, "batch_size", j->req.n_images);
    cJSON_AddBoolToObject(o, "restore_faces", 0);
    cJSON_AddStringToObject(o, "sd_model_name", m->name);
    if (hash[0]) cJSON_AddStringToObject(o, "sd_model_hash", h10); else cJSON_AddNullToObject(o, "sd_model_hash");
    if (kind == GENREQ_IMG2IMG) cJSON_AddNumberToObject(o, "denoising_strength", gp->strength);
    else cJSON_AddNullToObject(o, "denoising_strength");
    cJSON_AddNumberToObject(o, "clip_skip", gp->clip_skip > 1 ? gp->clip_skip : 1);
    cJSON_AddItemToObject(o, "infotexts", it);
    cJSON_AddStringToObject(o, "job_timestamp", j->job_timestamp);
    cJSON_AddBoolToObject(o, "interrupted", j->interrupted);
    cJSON_AddStringToObject(o, "version", "sdc " SDC_VERSION);
    return o;
}

/* The request as it ran (defaults filled in): AUTOMATIC1111 echoes the request here. */
static cJSON *params_json(const serve_job *j, genreq_kind kind) {
    const sdc_gen_params *gp = &j->req.gp;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "prompt", gp->prompt);
    cJSON_AddStringToObject(o, "negative_prompt", gp->negative_prompt);
    cJSON_AddNumberToObject(o, "seed", (double)j->req.seed);
    cJSON_AddStringToObject(o, "sampler_name", sdc_a1111_sampler_name(gp->sample_method));
    cJSON_AddStringToObject(o, "scheduler", sdc_a1111_schedule_name(gp->schedule));
    cJSON_AddNumberToObject(o, "batch_size", j->req.n_images);
    cJSON_AddNumberToObject(o, "n_iter", 1);
    cJSON_AddNumberToObject(o, "steps", gp->steps);
    cJSON_AddNumberToObject(o, "cfg_scale", gp->cfg_scale);
    cJSON_AddNumberToObject(o, "width", gp->width);
    cJSON_AddNumberToObject(o, "height", gp->height);
    if (kind == GENREQ_IMG2IMG) {
        cJSON_AddNumberToObject(o, "denoising_strength", gp->strength);
        cJSON_AddNullToObject(o, "init_images");
    }
    return o;
}

static enum MHD_Result generate(app *a, struct MHD_Connection *c, const conn *k, genreq_kind kind) {
    int openai = kind == GENREQ_OPENAI;
    enum MHD_Result (*fail)(struct MHD_Connection *, unsigned, const char *, const char *) =
        openai ? send_openai_error : send_detail;
    char why[128];
    cJSON *body = parse_body(k, why, sizeof why);
    if (!body) return fail(c, openai ? 400 : 422, NULL, why);
    sdc_gen_params base = sdc_gen_default_params();
    base.cfg_scale = 7.0f;   /* AUTOMATIC1111's and the CLI's default */
    genreq r;
    const char *field = NULL;
    sdc_err e = {{0}};
    int rc = genreq_parse(body, kind, &base, &r, &field, &e);
    char fieldbuf[64];
    snprintf(fieldbuf, sizeof fieldbuf, "%s", field ? field : "");
    cJSON_Delete(body);
    if (rc) { genreq_free(&r); return fail(c, openai ? 400 : 422, field ? fieldbuf : NULL, e.msg); }
    int model = -1;
    if (r.model && !openai) {   /* OpenAI clients name their own models ("dall-e-3"): ignored */
        if ((model = serve_find_model(a->s, r.model)) < 0) {
            genreq_free(&r);
            return send_detail(c, 422, "sd_model_checkpoint", "Model not found");
        }
    }
    int retry = 0;
    serve_job *j = serve_submit(a->s, &r, model, &retry);
    genreq_free(&r);
    if (!j) return retry ? send_busy(c, retry, openai) : fail(c, 500, NULL, "out of memory");
    if (serve_wait(a->s, j, client_gone, c)) {   /* the client left: nobody to answer */
        serve_release(a->s, j);
        return MHD_NO;
    }
    if (j->status) {
        enum MHD_Result res = j->status == 503 ? send_busy(c, 5, openai) : fail(c, (unsigned)j->status, NULL, j->error);
        serve_release(a->s, j);
        return res;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *imgs = openai ? cJSON_AddArrayToObject(o, "data") : cJSON_AddArrayToObject(o, "images");
    int oom = !o || !imgs;
    for (int i = 0; !oom && i < j->n_done; i++) {
        char *b64 = sdc_base64_encode(j->png[i], j->png_len[i]);
        cJSON *item = b64 ? cJSON_CreateString(b64) : NULL;
        free(b64);
        if (!item) { oom = 1; break; }
        if (openai) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddItemToObject(d, "b64_json", item);
            cJSON_AddStringToObject(d, "revised_prompt", j->req.gp.prompt);
            cJSON_AddItemToArray(imgs, d);
        } else {
            cJSON_AddItemToArray(imgs, item);
        }
    }
    if (openai) {
        cJSON_AddNumberToObject(o, "created", (double)time(NULL));
    } else if (!oom) {
        cJSON_AddItemToObject(o, "parameters", params_json(j, kind));
        cJSON *info = info_json(a->s, j, kind);
        char *t = cJSON_PrintUnformatted(info);
        cJSON_Delete(info);
        if (t) cJSON_AddStringToObject(o, "info", t); else oom = 1;
        free(t);
    }
    serve_release(a->s, j);
    if (oom) { cJSON_Delete(o); return fail(c, 500, NULL, "out of memory"); }
    return send_json(c, 200, o);
}

static enum MHD_Result set_options(app *a, struct MHD_Connection *c, const conn *k) {
    char why[128];
    cJSON *body = parse_body(k, why, sizeof why);
    if (!body) return send_detail(c, 422, NULL, why);
    if (!cJSON_IsObject(body)) { cJSON_Delete(body); return send_detail(c, 422, NULL, "expected a JSON object"); }
    const cJSON *ck = cJSON_GetObjectItemCaseSensitive(body, "sd_model_checkpoint");
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(body, "CLIP_stop_at_last_layers");
    int model = -1;
    enum MHD_Result res;
    if (ck && !cJSON_IsNull(ck) && (!cJSON_IsString(ck) || (model = serve_find_model(a->s, ck->valuestring)) < 0))
        res = send_detail(c, 422, "sd_model_checkpoint", "Model not found");
    else if (cs && !cJSON_IsNull(cs) && (!cJSON_IsNumber(cs) || cs->valuedouble != (int)cs->valuedouble ||
                                         cs->valuedouble < 1 || cs->valuedouble > 12))
        res = send_detail(c, 422, "CLIP_stop_at_last_layers", "CLIP_stop_at_last_layers: expected an integer in 1..12");
    else {   /* other options are accepted and ignored, as AUTOMATIC1111 ignores unknown ones */
        if (model >= 0) serve_set_model(a->s, model);
        if (cs && cJSON_IsNumber(cs)) serve_set_clip_skip(a->s, (int)cs->valuedouble);
        res = send_json(c, 200, cJSON_CreateObject());
    }
    cJSON_Delete(body);
    return res;
}

/* ---------------------------------------------------------------- routing */

static int auth_ok(const app *a, struct MHD_Connection *c) {
    if (!a->user) return 1;
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(c, &pass);
    int ok = user && pass && strlen(user) == strlen(a->user) && strlen(pass) == strlen(a->pass);
    if (ok) {   /* compare every byte, whatever the first mismatch */
        unsigned char d = 0;
        for (size_t i = 0; user[i]; i++) d |= (unsigned char)(user[i] ^ a->user[i]);
        for (size_t i = 0; pass[i]; i++) d |= (unsigned char)(pass[i] ^ a->pass[i]);
        ok = d == 0;
    }
    if (user) MHD_free(user);
    if (pass) MHD_free(pass);
    return ok;
}

static enum MHD_Result route(app *a, struct MHD_Connection *c, const char *url, const char *method,
                             const conn *k) {
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    static const char *const gets[] = {"/sdapi/v1/sd-models", "/sdapi/v1/samplers", "/sdapi/v1/schedulers",
        "/sdapi/v1/loras", "/sdapi/v1/options", "/sdapi/v1/progress", "/sdapi/v1/embeddings",
        "/sdapi/v1/sd-vae", "/sdapi/v1/upscalers", "/v1/models", "/internal/ping"};
    static const char *const posts[] = {"/sdapi/v1/txt2img", "/sdapi/v1/img2img", "/sdapi/v1/options",
        "/sdapi/v1/interrupt", "/v1/images/generations", "/sdapi/v1/refresh-checkpoints"};
    int is_get = 0, is_post = 0;
    for (size_t i = 0; i < sizeof gets / sizeof *gets; i++) is_get |= !strcmp(url, gets[i]);
    for (size_t i = 0; i < sizeof posts / sizeof *posts; i++) is_post |= !strcmp(url, posts[i]);
    if (!is_get && !is_post) return send_detail(c, 404, NULL, "Not Found");
    if ((get && !is_get) || (post && !is_post) || (!get && !post)) return send_detail(c, 405, NULL, "Method Not Allowed");
    serve *s = a->s;
    if (post) {
        if (!strcmp(url, "/sdapi/v1/txt2img")) return generate(a, c, k, GENREQ_TXT2IMG);
        if (!strcmp(url, "/sdapi/v1/img2img")) return generate(a, c, k, GENREQ_IMG2IMG);
        if (!strcmp(url, "/v1/images/generations")) return generate(a, c, k, GENREQ_OPENAI);
        if (!strcmp(url, "/sdapi/v1/options")) return set_options(a, c, k);
        if (!strcmp(url, "/sdapi/v1/interrupt")) { serve_interrupt(s); return send_json(c, 200, cJSON_CreateObject()); }
        return send_json(c, 200, cJSON_CreateNull());   /* refresh-checkpoints: the list is fixed */
    }
    if (!strcmp(url, "/sdapi/v1/sd-models")) return send_json(c, 200, sd_models(s));
    if (!strcmp(url, "/sdapi/v1/samplers")) return send_json(c, 200, samplers());
    if (!strcmp(url, "/sdapi/v1/schedulers")) return send_json(c, 200, schedulers());
    if (!strcmp(url, "/sdapi/v1/loras")) return send_json(c, 200, folder_list(serve_options(s)->lora_dir));
    if (!strcmp(url, "/sdapi/v1/options")) return send_json(c, 200, options_json(s));
    if (!strcmp(url, "/sdapi/v1/progress")) return send_json(c, 200, serve_progress_json(s));
    if (!strcmp(url, "/sdapi/v1/embeddings")) {   /* listed, not loaded: textual inversion is not supported */
        cJSON *o = cJSON_CreateObject(), *sk = cJSON_AddObjectToObject(o, "skipped");
        cJSON_AddObjectToObject(o, "loaded");
        cJSON *l = folder_list(serve_options(s)->embd_dir), *it;
        cJSON_ArrayForEach(it, l) {
            cJSON *n = cJSON_GetObjectItem(it, "name");
            if (cJSON_IsString(n) && !cJSON_GetObjectItem(sk, n->valuestring)) cJSON_AddObjectToObject(sk, n->valuestring);
        }
        cJSON_Delete(l);
        return send_json(c, 200, o);
    }
    if (!strcmp(url, "/v1/models")) {
        cJSON *o = cJSON_CreateObject(), *d = cJSON_AddArrayToObject(o, "data");
        cJSON_AddStringToObject(o, "object", "list");
        for (int i = 0; i < serve_model_count(s); i++) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "id", serve_model_at(s, i)->name);
            cJSON_AddStringToObject(m, "object", "model");
            cJSON_AddStringToObject(m, "owned_by", "sdc");
            cJSON_AddItemToArray(d, m);
        }
        return send_json(c, 200, o);
    }
    if (!strcmp(url, "/internal/ping")) return send_json(c, 200, cJSON_CreateObject());
    return send_json(c, 200, cJSON_CreateArray());   /* sd-vae, upscalers: none */
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **ptr) {
    app *a = cls;
    conn *k = *ptr;
    if (!k) {   /* headers received: check what can be checked before any body is read */
        if (!(k = calloc(1, sizeof *k))) return MHD_NO;
        *ptr = k;
        if (!auth_ok(a, c)) {
            k->answered = 1;
            char *t = strdup("{\"detail\":\"Incorrect username or password\"}");
            struct MHD_Response *r = t ? MHD_create_response_from_buffer(strlen(t), t, MHD_RESPMEM_MUST_FREE) : NULL;
            if (!r) { free(t); return MHD_NO; }
            MHD_add_response_header(r, "Content-Type", "application/json");
            enum MHD_Result ok = MHD_queue_basic_auth_fail_response(c, "sdc", r);
            MHD_destroy_response(r);
            return ok;
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)a->max_body) {
            k->answered = 1;
            char msg[96];
            snprintf(msg, sizeof msg, "request body larger than %ld bytes", a->max_body);
            return send_detail(c, 413, NULL, msg);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!k->answered) {
            if (k->n + *upload_size > (size_t)a->max_body) {   /* chunked uploads have no length */
                free(k->body);
                k->body = NULL;
                k->answered = 1;
                *upload_size = 0;
                char msg[96];
                snprintf(msg, sizeof msg, "request body larger than %ld bytes", a->max_body);
                return send_detail(c, 413, NULL, msg);
            }
            char *b = realloc(k->body, k->n + *upload_size + 1);
            if (!b) return MHD_NO;
            memcpy(b + k->n, upload, *upload_size);
            k->body = b;
            k->n += *upload_size;
            b[k->n] = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (k->answered) return MHD_YES;
    k->answered = 1;
    return route(a, c, url, method, k);
}

static void completed(void *cls, struct MHD_Connection *c, void **ptr, enum MHD_RequestTerminationCode why) {
    conn *k = *ptr;
    if (k) { free(k->body); free(k); }
    *ptr = NULL;
}

/* ---------------------------------------------------------------- the command */

static int is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a6);
    }
    return 0;
}

static int parse_long(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "sdc: serve: %s '%s': expected an integer in %ld..%ld\n", flag, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

int sdc_cmd_serve(int argc, char **argv) {
    serve_opts so = {0};
    so.max_queue = 8;
    const char *host = "127.0.0.1", *auth = NULL;
    long port = 7860, max_body = SERVE_MAX_BODY, timeout = SERVE_TIMEOUT, v;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) { usage(stdout); return 0; }
        if (!strcmp(f, "--low-mem")) { so.low_mem = 1; continue; }
        if (i + 1 >= argc) {
            fprintf(stderr, "sdc: serve: %s: unknown option or missing value (see sdc serve --help)\n", f);
            return 2;
        }
        const char *val = argv[++i];
        if (!strcmp(f, "-m") || !strcmp(f, "--model")) so.model_path = val;
        else if (!strcmp(f, "--models-dir")) so.models_dir = val;
        else if (!strcmp(f, "--config")) so.config_path = val;
        else if (!strcmp(f, "--host")) host = val;
        else if (!strcmp(f, "--port")) { if (parse_long(f, val, 0, 65535, &port)) return 2; }
        else if (!strcmp(f, "--api-auth")) auth = val;
        else if (!strcmp(f, "--max-queue")) { if (parse_long(f, val, 1, 10000, &v)) return 2; so.max_queue = (int)v; }
        else if (!strcmp(f, "--max-body")) { if (parse_long(f, val, 1024, 1L << 30, &max_body)) return 2; }
        else if (!strcmp(f, "--timeout")) { if (parse_long(f, val, 1, 3600, &timeout)) return 2; }
        else if (!strcmp(f, "--lora-model-dir")) so.lora_dir = val;
        else if (!strcmp(f, "--embd-dir")) so.embd_dir = val;
        else if (!strcmp(f, "-t") || !strcmp(f, "--threads")) { if (parse_long(f, val, 0, 1024, &v)) return 2; so.threads = (int)v; }
        else { fprintf(stderr, "sdc: serve: unknown option '%s' (see sdc serve --help)\n", f); return 2; }
    }
    if (!so.model_path && !so.models_dir) { fprintf(stderr, "sdc: serve: give -m MODEL or --models-dir DIR\n"); return 2; }
    app a = {0};
    a.max_body = max_body;
    if (auth) {
        const char *colon = strchr(auth, ':');
        if (!colon || colon == auth) { fprintf(stderr, "sdc: serve: --api-auth: expected USER:PASSWORD\n"); return 2; }
        a.user = strndup(auth, (size_t)(colon - auth));
        a.pass = strdup(colon + 1);
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(host, NULL, &hints, &ai);
    if (gai) {
        fprintf(stderr, "sdc: serve: --host '%s': %s\n", host, gai_strerror(gai));
        free(a.user); free(a.pass);
        return 2;
    }
    struct sockaddr_storage addr;
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (addr.ss_family == AF_INET) ((struct sockaddr_in *)&addr)->sin_port = htons((uint16_t)port);
    else ((struct sockaddr_in6 *)&addr)->sin6_port = htons((uint16_t)port);
    if (!is_loopback((struct sockaddr *)&addr) && !a.user) {
        fprintf(stderr, "sdc: serve: --host %s is reachable from other machines: give --api-auth USER:PASSWORD\n", host);
        return 2;
    }

    /* SIGINT/SIGTERM are taken by sigwait below: every thread started from here blocks them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    sdc_err e = {{0}};
    if (!(a.s = serve_open(&so, &e))) {
        fprintf(stderr, "sdc: %s\n", e.msg);
        free(a.user); free(a.pass);
        return 2;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handler, &a,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)timeout,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(so.max_queue + SERVE_EXTRA_CONN),
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "sdc: serve: cannot listen on %s port %ld: %s\n", host, port, strerror(errno));
        serve_close(a.s);
        free(a.user); free(a.pass);
        return 2;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int bound = di ? di->port : (int)port;
    fprintf(stderr, "sdc: serving %d model%s on http://%s%s%s:%d (queue %d)\n", serve_model_count(a.s),
            serve_model_count(a.s) == 1 ? "" : "s", addr.ss_family == AF_INET6 ? "[" : "", host,
            addr.ss_family == AF_INET6 ? "]" : "", bound, so.max_queue);
    fflush(stderr);
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "sdc: serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    serve_shutdown(a.s);       /* waiting requests answer now ... */
    MHD_stop_daemon(d);        /* ... so their connections end ... */
    serve_close(a.s);          /* ... and nothing uses the engine any more */
    free(a.user);
    free(a.pass);
    return 0;
}
