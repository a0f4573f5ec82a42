/* cmd_bench_load.c — `sdc bench-load FILE...`: what generation waits for, measured.
 *
 * Each run starts a fresh `sdc` process (fork + exec of this binary, so the clock starts where a
 * user's does: before the program is even loaded) that does exactly what `sdc generate` does, through
 * the same calls: sdc_model_open (the tensor store opened and validated, the text encoder, UNet and
 * VAE bound in the layout generation uses, per mode), then one generation step at the smallest size,
 * timed to the start of its first UNet call. The child reports sdc_model_open's own load report
 * (sdc_model_load_report: wall, CPU and page faults per phase — the numbers `generate` prints), its
 * peak RSS when the model was ready (VmHWM), its RSS once generating (the steady state), and the
 * bytes it read from storage. In the same round, right before the child, the parent reads the file
 * as `cat FILE > /dev/null` does (read() in 128 KiB blocks), so every load is set beside the time
 * it takes just to read the bytes on the machine as it is at that moment.
 * Runs interleave files and modes (run 1 of everything, then run 2, ...) so drift hits all alike.
 * Before them, -w rounds (default 1) run the same way untimed: the first process to touch the
 * machine's memory after it was idle can pay for it (measured here: a VM whose host takes back
 * freed guest memory made the first load's page clearing 5-10x slower, one run in ten); the
 * warm-up rounds' first UNet times are printed beside the table, never hidden, never in it.
 * --cold drops the file from the page cache before the cat and again before the load
 * (posix_fadvise DONTNEED, checked with mincore); warm mode reads each file once first. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "runtime/procstat.h"
#include "runtime/store.h"
#include "sdc.h"

#define RUNS_DEFAULT 5
#define RUNS_MAX 1000        /* more runs than anyone waits for; bounds the sample arrays */
#define WARMUP_DEFAULT 1
#define WARMUP_MAX 10        /* untimed rounds before the runs */
#define FILES_MAX 64         /* one table row per file and mode: a table of more is not a table */
#define THREADS_MAX 4096     /* as -t of generate: more than any machine sdc runs on */
#define CAT_BLOCK (128 << 10) /* coreutils cat's read size */
/* After an eviction, more than this share of the file still resident means the kernel kept it
 * (mapped by another process, dirty, or the advice ignored): reported, never hidden. */
#define COLD_RESIDENT_WARN 0.01
#define CHILD_FLAG "--measure-child"   /* internal: argv of the measuring process */

enum { MODE_DEFAULT, MODE_LOW_MEM, N_MODES };
static const char *const mode_name[N_MODES] = {"default", "low-mem"};

typedef struct run_result {      /* what a child sends back over its pipe */
    int    ok;
    sdc_load_report rep;         /* sdc_model_open's own report (phase names are re-attached) */
    double gen_start, first_unet; /* CLOCK_MONOTONIC */
    double load_cpu_s;           /* user + sys CPU from process start to the model ready */
    long   load_minflt, load_majflt;
    long   hwm_ready_kb;         /* VmHWM when the model was ready: the load's peak */
    long   rss_steady_kb;        /* VmRSS after the generation step: the run's steady state */
    long long io_read;           /* bytes read from storage by the child; -1 unknown */
    char   digest[65];           /* --digest: sdc_model_layout_digest */
    char   phase_name[SDC_LOAD_MAX_PHASES][24];   /* rep's names (its pointers are the child's) */
    char   err[1024];
} run_result;

typedef struct row {             /* one file in one mode */
    const char *path;
    int mode;
    uint64_t size;
    sdc_format format;
    size_t n_tensors;
    double cat_s[RUNS_MAX], start_s[RUNS_MAX], open_s[RUNS_MAX], ready_s[RUNS_MAX], text_s[RUNS_MAX],
           first_s[RUNS_MAX], cpu_s[RUNS_MAX], minflt[RUNS_MAX], hwm_mb[RUNS_MAX], steady_mb[RUNS_MAX],
           io_mb[RUNS_MAX], resident_after_evict[RUNS_MAX];
    double warm_first_s[WARMUP_MAX];   /* the untimed rounds' 1st UNet times (not in the stats) */
    int n_phases;
    char phase_name[SDC_LOAD_MAX_PHASES][24];
    double ph_wall[SDC_LOAD_MAX_PHASES][RUNS_MAX], ph_user[SDC_LOAD_MAX_PHASES][RUNS_MAX],
           ph_sys[SDC_LOAD_MAX_PHASES][RUNS_MAX], ph_flt[SDC_LOAD_MAX_PHASES][RUNS_MAX];
    char digest[65];
} row;

static long long io_read_bytes(void) {
    FILE *f = fopen("/proc/self/io", "r");
    if (!f) return -1;
    char line[256];
    long long v = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "read_bytes:", 11)) { v = strtoll(line + 11, NULL, 10); break; }
    fclose(f);
    return v;
}

/* ── the measuring process ── */

/* The step generation waits for, at the smallest size every SD family accepts (64 px: 8x8 latents;
 * the model's own divisibility is checked by sdc_generate), with generate's defaults otherwise. */
static void child_measure(const char *path, const char *config, int low_mem, int precision, int threads,
                          int digest, run_result *r) {
    memset(r, 0, sizeof *r);
    long long io0 = io_read_bytes();
    sdc_model_params mp = sdc_model_default_params();
    mp.model_path = path;
    mp.config_path = config && config[0] ? config : NULL;
    mp.threads = threads;
    mp.low_mem = low_mem;
    mp.precision = precision;
    sdc_err e = {{0}};
    sdc_model *m = sdc_model_open(&mp, &e);
    if (!m) { snprintf(r->err, sizeof r->err, "%s", e.msg); return; }
    sdc_gen_params gp = sdc_gen_default_params();
    gp.cfg_scale = 7.0f;   /* generate's default: guidance on, so the UNet runs at batch 2 */
    gp.steps = 1;
    gp.width = gp.height = 64;
    gp.seed = 42;
    uint8_t *rgb = malloc((size_t)gp.width * gp.height * 3);
    int rc = rgb ? sdc_generate(m, &gp, rgb, &e) : sdc_errf(&e, "out of memory");
    free(rgb);
    if (rc) { snprintf(r->err, sizeof r->err, "generation step: %.900s", e.msg); sdc_model_close(m); return; }
    r->rss_steady_kb = sdc_status_kb("VmRSS");
    const sdc_load_report *lr = sdc_model_load_report(m);
    r->rep = *lr;
    r->hwm_ready_kb = lr->peak_rss_kb;
    for (int p = 0; p < lr->n_phases; p++) {   /* the background bind overlaps the prompt's encoding */
        r->load_cpu_s += lr->phase[p].user_s + lr->phase[p].sys_s;
        r->load_minflt += lr->phase[p].minor_faults;
        r->load_majflt += lr->phase[p].major_faults;
    }
    r->gen_start = lr->first_generate;
    r->first_unet = lr->first_unet;
    long long io1 = io_read_bytes();
    r->io_read = io0 >= 0 && io1 >= 0 ? io1 - io0 : -1;
    if (digest) sdc_model_layout_digest(m, r->digest);
    for (int p = 0; p < lr->n_phases && p < SDC_LOAD_MAX_PHASES; p++)
        snprintf(r->phase_name[p], sizeof r->phase_name[p], "%s", lr->phase[p].name ? lr->phase[p].name : "?");
    sdc_model_close(m);
    r->ok = 1;
}

/* argv: CHILD_FLAG FD PATH CONFIG ("" none) LOW_MEM PRECISION THREADS DIGEST */
static int child_main(int argc, char **argv) {
    if (argc != 8) return 2;
    int fd = atoi(argv[1]);
    run_result r;
    child_measure(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), atoi(argv[7]), &r);
    const char *p = (const char *)&r;
    size_t left = sizeof r;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        p += w;
        left -= (size_t)w;
    }
    return 0;
}

/* Starts the measuring process (this binary again) and collects its result; *t0 is the moment
 * just before the fork. Returns 0, or -1 with r->err set. */
static int run_child(const char *path, const char *config, int low_mem, int precision, int threads, int digest,
                     double *t0, run_result *r) {
    int fd[2];
    memset(r, 0, sizeof *r);
    if (pipe(fd)) { snprintf(r->err, sizeof r->err, "bench-load: pipe: %s", strerror(errno)); return -1; }
    char sfd[16], slm[12], spr[12], sth[16], sdg[12];
    snprintf(sfd, sizeof sfd, "%d", fd[1]);
    snprintf(slm, sizeof slm, "%d", low_mem);
    snprintf(spr, sizeof spr, "%d", precision);
    snprintf(sth, sizeof sth, "%d", threads);
    snprintf(sdg, sizeof sdg, "%d", digest);
    fflush(NULL);
    *t0 = sdc_mono_s();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(r->err, sizeof r->err, "bench-load: fork: %s", strerror(errno));
        close(fd[0]); close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        char *av[] = {"sdc", "bench-load", CHILD_FLAG, sfd, (char *)path, (char *)(config ? config : ""), slm, spr,
                      sth, sdg, NULL};
        execv("/proc/self/exe", av);
        _exit(127);
    }
    close(fd[1]);
    char *p = (char *)r;
    size_t got = 0;
    while (got < sizeof *r) {
        ssize_t k = read(fd[0], p + got, sizeof *r - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (got != sizeof *r) {
        memset(r, 0, sizeof *r);
        if (WIFSIGNALED(st))
            snprintf(r->err, sizeof r->err, "%s: the measuring process died of signal %d%s", path,
                     WTERMSIG(st), WTERMSIG(st) == SIGKILL ? " (out of memory?)" : "");
        else if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
            snprintf(r->err, sizeof r->err, "%s: could not start the measuring process (/proc/self/exe)", path);
        else
            snprintf(r->err, sizeof r->err, "%s: the measuring process sent no result", path);
        return -1;
    }
    r->err[sizeof r->err - 1] = 0;
    r->digest[sizeof r->digest - 1] = 0;
    return r->ok ? 0 : -1;
}

/* ── the page cache ── */

/* Share of the file's pages resident in the page cache (mincore), or -1 if unknown. */
static double resident_share(int fd, uint64_t size) {
    if (!size) return 0;
    void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return -1;
    long pg = sysconf(_SC_PAGESIZE);
    size_t np = (size + (uint64_t)pg - 1) / (uint64_t)pg;
    unsigned char *v = malloc(np);
    double share = -1;
    if (v && !mincore(m, size, v)) {
        size_t in = 0;
        for (size_t i = 0; i < np; i++) in += v[i] & 1;
        share = (double)in / (double)np;
    }
    free(v);
    munmap(m, size);
    return share;
}

/* Drops path from the page cache. Returns the share of pages still resident (-1 unknown). */
static double evict(const char *path, uint64_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    fdatasync(fd);   /* dirty pages cannot be dropped; a read-only fd may still flush them */
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    double share = resident_share(fd, size);
    close(fd);
    return share;
}

/* `cat path > /dev/null`: every byte read through read() in cat's block size. Seconds, or -1. */
static double cat_file(const char *path) {
    static char buf[CAT_BLOCK];
    double t0 = sdc_mono_s();
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t k;
    while ((k = read(fd, buf, sizeof buf)) > 0) {}
    close(fd);
    return k < 0 ? -1 : sdc_mono_s() - t0;
}

/* ── statistics and output ── */

static int cmp_dbl(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

typedef struct mmm { double min, med, max; } mmm;

static mmm stats(const double *v, int n) {
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return (mmm){0, 0, 0};
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_dbl);
    mmm r = {s[0], n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]), s[n - 1]};
    free(s);
    return r;
}

static const char *base(const char *p) {
    const char *s = strrchr(p, '/');
    return s && s[1] ? s + 1 : p;
}

static void usage(FILE *f) {
    fprintf(f,
        "usage: sdc bench-load FILE... [-r RUNS] [-w WARMUP] [-t THREADS] [--mode default|low-mem|both]\n"
        "                      [--precision f32|bf16] [--cold] [--config FILE] [--digest] [--json]\n"
        "  What generation waits for. Each run is a fresh sdc process doing what `sdc generate` does:\n"
        "  open and validate the file, bind every weight in the layout generation uses (per mode),\n"
        "  then one step at 64x64, timed to the start of its first UNet call. Beside each load, in the\n"
        "  same round, the file is read as `cat FILE > /dev/null` reads it. Times are from process\n"
        "  start (before exec); RUNS runs (default %d), files and modes interleaved; min/median/max.\n"
        "  -w N        untimed rounds of every file and mode before the runs (default %d; 0..%d):\n"
        "              the first process after the machine was idle can pay for its memory; their\n"
        "              times are printed apart, never in the stats\n"
        "  -t N        threads (default: all cores), as generate -t\n"
        "  --mode M    default, low-mem, or both (the default; bf16: default only)\n"
        "  --precision P  f32 (the default) or bf16, as generate --precision (bf16 packs the UNet's\n"
        "              and VAE's GEMM weights at load: its own layout, its own ready time)\n"
        "  --config F  model config JSON, as generate --config (for every file)\n"
        "  --cold      drop the file from the page cache before the cat and before the load\n"
        "              (posix_fadvise DONTNEED, checked with mincore); default: warm\n"
        "  --digest    also print the SHA-256 of the UNet weights as bound (as generate --load-report)\n"
        "  --json      machine-readable output, with every load phase\n", RUNS_DEFAULT, WARMUP_DEFAULT,
        WARMUP_MAX);
}

static cJSON *mmm_json(mmm m) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "min", m.min);
    cJSON_AddNumberToObject(o, "median", m.med);
    cJSON_AddNumberToObject(o, "max", m.max);
    return o;
}

static int print_json(row *rows, int nr, int runs, int warm, int cold, int threads, int precision) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "runs", runs);
    cJSON_AddNumberToObject(root, "warmup_rounds", warm);
    cJSON_AddStringToObject(root, "cache", cold ? "cold" : "warm");
    cJSON_AddNumberToObject(root, "threads", threads);
    cJSON_AddStringToObject(root, "precision", sdc_precision_name(precision));
    double la[3];
    if (getloadavg(la, 3) == 3) cJSON_AddNumberToObject(root, "loadavg_1min", la[0]);
    cJSON *arr = cJSON_AddArrayToObject(root, "files");
    for (int i = 0; i < nr; i++) {
        row *f = &rows[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "path", f->path);
        cJSON_AddStringToObject(o, "format", sdc_format_name(f->format));
        cJSON_AddStringToObject(o, "mode", mode_name[f->mode]);
        cJSON_AddNumberToObject(o, "bytes", (double)f->size);
        cJSON_AddNumberToObject(o, "tensors", (double)f->n_tensors);
        mmm cat = stats(f->cat_s, runs), first = stats(f->first_s, runs);
        cJSON_AddItemToObject(o, "cat_s", mmm_json(cat));
        cJSON_AddItemToObject(o, "start_s", mmm_json(stats(f->start_s, runs)));
        cJSON_AddItemToObject(o, "open_s", mmm_json(stats(f->open_s, runs)));
        cJSON_AddItemToObject(o, "ready_s", mmm_json(stats(f->ready_s, runs)));
        cJSON_AddItemToObject(o, "text_s", mmm_json(stats(f->text_s, runs)));
        cJSON_AddItemToObject(o, "first_unet_s", mmm_json(first));
        cJSON_AddNumberToObject(o, "first_unet_over_cat", cat.med > 0 ? first.med / cat.med : 0);
        cJSON_AddNumberToObject(o, "first_unet_spread", first.min > 0 ? first.max / first.min : 0);
        cJSON_AddItemToObject(o, "load_cpu_s", mmm_json(stats(f->cpu_s, runs)));
        cJSON_AddItemToObject(o, "load_minor_faults", mmm_json(stats(f->minflt, runs)));
        cJSON_AddItemToObject(o, "peak_rss_ready_mb", mmm_json(stats(f->hwm_mb, runs)));
        cJSON_AddItemToObject(o, "steady_rss_mb", mmm_json(stats(f->steady_mb, runs)));
        cJSON_AddItemToObject(o, "storage_read_mb", mmm_json(stats(f->io_mb, runs)));
        if (cold) cJSON_AddItemToObject(o, "resident_after_evict", mmm_json(stats(f->resident_after_evict, runs)));
        if (f->digest[0]) cJSON_AddStringToObject(o, "layout_sha256", f->digest);
        cJSON *each = cJSON_AddArrayToObject(o, "first_unet_each_s");   /* in run order: outliers' places */
        for (int r = 0; r < runs; r++) cJSON_AddItemToArray(each, cJSON_CreateNumber(f->first_s[r]));
        cJSON *wf = cJSON_AddArrayToObject(o, "warmup_first_unet_s");
        for (int r = 0; r < warm; r++) cJSON_AddItemToArray(wf, cJSON_CreateNumber(f->warm_first_s[r]));
        cJSON *ph = cJSON_AddArrayToObject(o, "phases");
        for (int p = 0; p < f->n_phases; p++) {
            cJSON *q = cJSON_CreateObject();
            cJSON_AddStringToObject(q, "name", f->phase_name[p]);
            cJSON_AddItemToObject(q, "wall_s", mmm_json(stats(f->ph_wall[p], runs)));
            cJSON_AddItemToObject(q, "user_s", mmm_json(stats(f->ph_user[p], runs)));
            cJSON_AddItemToObject(q, "sys_s", mmm_json(stats(f->ph_sys[p], runs)));
            cJSON_AddItemToObject(q, "minor_faults", mmm_json(stats(f->ph_flt[p], runs)));
            cJSON_AddItemToArray(ph, q);
        }
        cJSON_AddItemToArray(arr, o);
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s) { fprintf(stderr, "sdc: bench-load: out of memory\n"); return -1; }
    puts(s);
    free(s);
    return 0;
}

static void print_table(row *rows, int nr, int runs, int warm, int cold, int threads, int precision) {
    printf("bench-load: %d run%s per file and mode (after %d untimed round%s), each a fresh process, %d thread%s, "
           "precision %s, page cache %s\n", runs, runs == 1 ? "" : "s", warm, warm == 1 ? "" : "s", threads,
           threads == 1 ? "" : "s", sdc_precision_name(precision),
           cold ? "cold (evicted before the cat and before the load)" : "warm (file read once before the runs)");
    double la[3];
    if (getloadavg(la, 3) == 3)
        printf("load average %.2f %.2f %.2f on %ld CPUs (wall times stretch when the machine is busy)\n",
               la[0], la[1], la[2], sysconf(_SC_NPROCESSORS_ONLN));
    printf("ms from process start, median [min-max]; cat = reading the file as cat does, same round;\n"
           "ready = every weight bound (default mode: the UNet binds while the prompt is encoded); 1st UNet =\n"
           "the first UNet call starts; x cat = median 1st UNet / median cat; spread = slowest / fastest 1st UNet;\n"
           "cpu = user+sys CPU of the load phases; faults = their minor page faults; peak = VmHWM at ready (MB);\n"
           "steady = RSS while generating (MB); disk = MB the load read from storage\n");
    int w = 4;
    for (int i = 0; i < nr; i++) if ((int)strlen(base(rows[i].path)) > w) w = (int)strlen(base(rows[i].path));
    printf("%-*s  %-13s %-7s %7s %9s %8s %-22s %-22s %6s %6s %7s %8s %7s %7s %7s\n", w, "file", "format", "mode",
           "tensors", "MB", "cat ms", "ready ms", "1st UNet ms", "x cat", "spread", "cpu s", "faults", "peak", "steady",
           "disk");
    for (int i = 0; i < nr; i++) {
        row *f = &rows[i];
        mmm cat = stats(f->cat_s, runs), rd = stats(f->ready_s, runs), fu = stats(f->first_s, runs),
            cpu = stats(f->cpu_s, runs), fl = stats(f->minflt, runs), hw = stats(f->hwm_mb, runs),
            sd = stats(f->steady_mb, runs), io = stats(f->io_mb, runs);
        char r[64], u[64], d[32];
        snprintf(r, sizeof r, "%.0f [%.0f-%.0f]", rd.med * 1e3, rd.min * 1e3, rd.max * 1e3);
        snprintf(u, sizeof u, "%.0f [%.0f-%.0f]", fu.med * 1e3, fu.min * 1e3, fu.max * 1e3);
        if (io.min < 0) snprintf(d, sizeof d, "n/a");
        else snprintf(d, sizeof d, "%.0f", io.med);
        printf("%-*s  %-13s %-7s %7zu %9.1f %8.0f %-22s %-22s %6.2f %6.2f %7.2f %8.0f %7.0f %7.0f %7s\n", w,
               base(f->path), sdc_format_name(f->format), mode_name[f->mode], f->n_tensors, f->size / 1e6,
               cat.med * 1e3, r, u, cat.med > 0 ? fu.med / cat.med : 0, fu.min > 0 ? fu.max / fu.min : 0, cpu.med,
               fl.med, hw.med, sd.med, d);
    }
    printf("phases, median ms (wall/user/sys, minor faults): start = process start to sdc_model_open;"
           " text = prompt to the first UNet call\n");
    for (int i = 0; i < nr; i++) {
        row *f = &rows[i];
        printf("  %s %s: start %.0f", base(f->path), mode_name[f->mode], stats(f->start_s, runs).med * 1e3);
        for (int p = 0; p < f->n_phases; p++)
            printf(" | %s %.0f/%.0f/%.0f %.0f", f->phase_name[p], stats(f->ph_wall[p], runs).med * 1e3,
                   stats(f->ph_user[p], runs).med * 1e3, stats(f->ph_sys[p], runs).med * 1e3,
                   stats(f->ph_flt[p], runs).med);
        printf(" | text %.0f\n", stats(f->text_s, runs).med * 1e3);
    }
    for (int i = 0; i < nr && warm; i++) {
        printf("warm-up (untimed, not in the stats): %s %s: 1st UNet", base(rows[i].path), mode_name[rows[i].mode]);
        for (int r = 0; r < warm; r++) printf(" %.0f", rows[i].warm_first_s[r] * 1e3);
        printf(" ms\n");
    }
    for (int i = 0; i < nr; i++)
        if (rows[i].digest[0]) printf("layout %s %s: %s\n", base(rows[i].path), mode_name[rows[i].mode], rows[i].digest);
    if (cold)
        for (int i = 0; i < nr; i++) {
            if (rows[i].mode != rows[0].mode) continue;   /* one line per file */
            mmm res = stats(rows[i].resident_after_evict, runs);
            if (res.min < 0)
                printf("note: %s: could not check the page cache after eviction (mincore failed)\n", rows[i].path);
            else if (res.max > COLD_RESIDENT_WARN)
                printf("note: %s: the kernel did not evict it: up to %.1f%% of its pages stayed in the page cache"
                       " (mapped by another process, dirty, or the advice ignored); those runs were not fully cold\n",
                       rows[i].path, res.max * 100);
            else
                printf("cold check: %s: at most %.2f%% of its pages resident after eviction\n", rows[i].path,
                       res.max * 100);
        }
}

/* Records child result c (started at t0, beside cat time cat) as run r of row f. */
static void record(row *f, int r, double t0, double cat, run_result *c) {
    const sdc_load_report *lr = &c->rep;
    f->cat_s[r] = cat;
    f->start_s[r] = lr->start - t0;
    f->open_s[r] = lr->start - t0 + (lr->n_phases ? lr->phase[0].wall_s : 0);
    f->ready_s[r] = lr->start - t0 + lr->ready_s;
    f->text_s[r] = c->first_unet - c->gen_start;
    f->first_s[r] = c->first_unet - t0;
    f->cpu_s[r] = c->load_cpu_s;
    f->minflt[r] = (double)c->load_minflt;
    f->hwm_mb[r] = c->hwm_ready_kb / 1024.0;
    f->steady_mb[r] = c->rss_steady_kb / 1024.0;
    f->io_mb[r] = c->io_read < 0 ? -1 : c->io_read / 1e6;
    f->n_phases = lr->n_phases < SDC_LOAD_MAX_PHASES ? lr->n_phases : SDC_LOAD_MAX_PHASES;
    for (int p = 0; p < f->n_phases; p++) {
        c->phase_name[p][sizeof c->phase_name[p] - 1] = 0;
        memcpy(f->phase_name[p], c->phase_name[p], sizeof f->phase_name[p]);
        f->ph_wall[p][r] = lr->phase[p].wall_s;
        f->ph_user[p][r] = lr->phase[p].user_s;
        f->ph_sys[p][r] = lr->phase[p].sys_s;
        f->ph_flt[p][r] = (double)lr->phase[p].minor_faults;
    }
    if (c->digest[0]) memcpy(f->digest, c->digest, sizeof f->digest);
}

int sdc_cmd_bench_load(int argc, char **argv) {
    if (argc >= 1 && argv[1] && !strcmp(argv[1], CHILD_FLAG)) return child_main(argc - 1, argv + 1);
    int runs = RUNS_DEFAULT, warm = WARMUP_DEFAULT, cold = 0, json = 0, digest = 0, nf = 0, threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int modes[N_MODES] = {1, 1}, mode_given = 0, precision = SDC_PRECISION_F32;
    const char *paths[FILES_MAX], *config = NULL;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) { usage(stdout); return 0; }
        if (!strcmp(s, "--cold")) cold = 1;
        else if (!strcmp(s, "--json")) json = 1;
        else if (!strcmp(s, "--digest")) digest = 1;
        else if (!strcmp(s, "--config")) {
            if (i + 1 >= argc) { fprintf(stderr, "sdc: bench-load: --config needs a file\n"); return 2; }
            config = argv[++i];
        }
        else if (!strcmp(s, "--mode")) {
            const char *v = i + 1 < argc ? argv[++i] : "";
            if (!strcmp(v, "default")) { modes[0] = 1; modes[1] = 0; }
            else if (!strcmp(v, "low-mem")) { modes[0] = 0; modes[1] = 1; }
            else if (!strcmp(v, "both")) { modes[0] = modes[1] = 1; }
            else {
                fprintf(stderr, "sdc: bench-load: --mode needs default, low-mem or both\n");
                return 2;
            }
            mode_given = 1;
        } else if (!strcmp(s, "--precision")) {
            const char *v = i + 1 < argc ? argv[++i] : "";
            if ((precision = sdc_precision_from_name(v)) < 0) {
                fprintf(stderr, "sdc: bench-load: --precision '%s': unknown (f32, bf16)\n", v);
                return 2;
            }
        } else if (!strcmp(s, "-r") || !strcmp(s, "--runs")) {
            char *end;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc || !*argv[i + 1] || *end || v < 1 || v > RUNS_MAX) {
                fprintf(stderr, "sdc: bench-load: %s needs a number of runs in [1, %d]\n", s, RUNS_MAX);
                return 2;
            }
            runs = (int)v;
            i++;
        } else if (!strcmp(s, "-w") || !strcmp(s, "--warmup")) {
            char *end;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
            if (i + 1 >= argc || !*argv[i + 1] || *end || v < 0 || v > WARMUP_MAX) {
                fprintf(stderr, "sdc: bench-load: %s needs a number of untimed rounds in [0, %d]\n", s, WARMUP_MAX);
                return 2;
            }
            warm = (int)v;
            i++;
        } else if (!strcmp(s, "-t") || !strcmp(s, "--threads")) {
            char *end;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc || !*argv[i + 1] || *end || v < 1 || v > THREADS_MAX) {
                fprintf(stderr, "sdc: bench-load: %s needs a thread count in [1, %d]\n", s, THREADS_MAX);
                return 2;
            }
            threads = (int)v;
            i++;
        } else if (s[0] == '-' && s[1]) {
            fprintf(stderr, "sdc: bench-load: unknown option '%s' (try sdc bench-load --help)\n", s);
            return 2;
        } else if (nf == FILES_MAX) {
            fprintf(stderr, "sdc: bench-load: at most %d files\n", FILES_MAX);
            return 2;
        } else paths[nf++] = s;
    }
    if (!nf) { fprintf(stderr, "sdc: bench-load: no file given (try sdc bench-load --help)\n"); return 2; }
    if (precision != SDC_PRECISION_F32) {   /* as generate: bf16 packs at load, so has no low-mem mode */
        if (mode_given && modes[1]) {
            fprintf(stderr, "sdc: bench-load: --precision %s has no low-mem mode (as generate); use --mode default\n",
                    sdc_precision_name(precision));
            return 2;
        }
        modes[0] = 1;
        modes[1] = 0;
    }
    if (threads < 1) threads = 1;   /* sysconf may fail (-1) */
    int nm = modes[0] + modes[1], nr = nf * nm;
    row *rows = calloc((size_t)nr, sizeof *rows);
    if (!rows) { fprintf(stderr, "sdc: bench-load: out of memory\n"); return 2; }
    int status = 2;
    for (int i = 0, k = 0; i < nf; i++) {
        struct stat st;
        if (stat(paths[i], &st)) { fprintf(stderr, "sdc: %s: %s\n", paths[i], strerror(errno)); goto done; }
        if (!S_ISREG(st.st_mode)) {
            fprintf(stderr, "sdc: %s: not a regular file (bench-load measures single model files)\n", paths[i]);
            goto done;
        }
        sdc_store *s = sdc_store_new();   /* the format and tensor count, for the table */
        sdc_err e = {{0}};
        if (!s || sdc_store_open(s, paths[i], NULL, &e)) {
            fprintf(stderr, "sdc: %s\n", s ? e.msg : "out of memory");
            sdc_store_close(s);
            goto done;
        }
        for (int m = 0; m < N_MODES; m++) {
            if (!modes[m]) continue;
            rows[k] = (row){.path = paths[i], .mode = m, .size = (uint64_t)st.st_size,
                            .format = sdc_store_file_at(s, 0)->format, .n_tensors = sdc_store_count(s)};
            k++;
        }
        sdc_store_close(s);
        if (!cold && cat_file(paths[i]) < 0) { fprintf(stderr, "sdc: %s: cannot read: %s\n", paths[i], strerror(errno)); goto done; }
    }
    for (int r = -warm; r < runs; r++)   /* r < 0: the untimed rounds */
        for (int i = 0; i < nr; i++) {
            row *f = &rows[i];
            if (cold) evict(f->path, f->size);
            double cat = cat_file(f->path), t0;
            if (cat < 0) { fprintf(stderr, "sdc: %s: cannot read: %s\n", f->path, strerror(errno)); goto done; }
            double resident = cold ? evict(f->path, f->size) : -1;
            run_result c;
            if (run_child(f->path, config, f->mode == MODE_LOW_MEM, precision, threads, digest && r == 0, &t0, &c)) {
                fprintf(stderr, "sdc: %s\n", c.err);
                goto done;
            }
            if (r < 0) { f->warm_first_s[r + warm] = c.first_unet - t0; continue; }
            f->resident_after_evict[r] = resident;
            record(f, r, t0, cat, &c);
        }
    if (json) { if (print_json(rows, nr, runs, warm, cold, threads, precision)) goto done; }
    else print_table(rows, nr, runs, warm, cold, threads, precision);
    status = 0;
done:
    free(rows);
    return status;
}
