/* cmd_bench_load.c — `sdc bench-load FILE...`: what loading each file costs, measured.
 *
 * Per file and run, in a forked child (so that one run's memory never counts in another's peak):
 *   open   = time to a validated tensor store (sdc_store_open: map, parse, validate, index);
 *   ready  = time to weights ready for compute: open + every float tensor converted to f32 into
 *            its own buffer (as generate binds them; integer tensors are read through);
 *   peak RSS of the child (VmHWM, reset at the child's start), the storage bytes the child
 *   caused to be read (/proc/self/io read_bytes: ~0 when the file is in the page cache).
 * Runs interleave the files (run 1 of every file, then run 2, ...) so drift hits all alike.
 * --cold drops each file from the page cache before each run (posix_fadvise DONTNEED) and checks
 * with mincore that the pages went; warm mode reads each file once before the first run. */
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
#include "runtime/store.h"

#define RUNS_DEFAULT 5
#define RUNS_MAX 1000        /* more runs than anyone waits for; bounds the sample arrays */
#define FILES_MAX 64         /* one table row per file: a table of more is not a table */
#define THREADS_MAX 4096     /* as -t of generate: more than any machine sdc runs on */
/* After an eviction, more than this share of the file still resident means the kernel kept it
 * (mapped by another process, dirty, or the advice ignored): reported, never hidden. */
#define COLD_RESIDENT_WARN 0.01

typedef struct run_result {      /* what a child sends back over its pipe */
    int    ok;
    double open_s, ready_s;
    double cpu_s;                /* user + system CPU time of the ready phase (whole run) */
    long   minflt, majflt;       /* page faults of the run (minor: page in memory; major: I/O) */
    uint64_t n_tensors, params, f32_bytes;
    long   hwm_kb, rss_start_kb;
    long long io_read;           /* -1 when /proc/self/io is not readable */
    int    format;
    char   err[1024];
} run_result;

typedef struct file_stats {
    const char *path;
    uint64_t size;
    run_result first;            /* tensor count, format, ... of run 1 */
    double open_s[RUNS_MAX], ready_s[RUNS_MAX], cpu_s[RUNS_MAX], hwm_mb[RUNS_MAX], io_mb[RUNS_MAX];
    double minflt[RUNS_MAX], majflt[RUNS_MAX];
    double resident_after_evict[RUNS_MAX]; /* --cold: share of pages still cached (-1 unknown) */
    int runs;
} file_stats;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A "Key:   123 kB" line of /proc/self/status, in kB; -1 if absent. */
static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') { v = strtol(line + kl + 1, NULL, 10); break; }
    fclose(f);
    return v;
}

static void faults_now(long *minflt, long *majflt) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) { *minflt = *majflt = 0; return; }
    *minflt = ru.ru_minflt;
    *majflt = ru.ru_majflt;
}

static double cpu_now(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

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

/* Tensors are converted in slices of this many elements, so that the 38 M-value token embedding
 * does not leave one thread working alone. */
#define SLICE ((int64_t)1 << 22)

typedef struct slice { const sdc_tensor *t; int64_t off, n; float *dst; } slice;

/* The measured work of one run, in the child. Fills r; never exits on bad input. */
static void child_run(const char *path, int threads, int keep_mapped, run_result *r) {
    memset(r, 0, sizeof *r);
    /* Reset VmHWM to the current RSS (Linux >= 4.0) so the peak is this run's alone. */
    FILE *cr = fopen("/proc/self/clear_refs", "w");
    if (cr) { fputs("5", cr); fclose(cr); }
    r->rss_start_kb = status_kb("VmRSS");
    long long io0 = io_read_bytes();
    sdc_err e = {{0}};
    double c0 = cpu_now();
    long mn0, mj0;
    faults_now(&mn0, &mj0);
    double t0 = now_s();
    sdc_store *s = sdc_store_new();
    if (!s || sdc_store_open(s, path, NULL, &e)) {
        snprintf(r->err, sizeof r->err, "%s", s ? e.msg : "out of memory");
        sdc_store_close(s);
        return;
    }
    double t1 = now_s();
    size_t n = sdc_store_count(s);
    /* The weights' f32 home, as the model loaders make it: one anonymous mapping advised for
     * transparent huge pages, each tensor 64-byte aligned; filled by slices in parallel. */
    size_t total = 0, njobs = 0;
    volatile unsigned sink = 0;
    int failed = 0;
    for (size_t i = 0; i < n && !failed; i++) {
        const sdc_tensor *t = sdc_store_at(s, i);
        r->params += (uint64_t)t->numel;
        if (!sdc_dtype_is_float(t->dtype)) {   /* read it through, as a model would */
            const unsigned char *p = t->data;
            for (size_t k = 0; k < t->nbytes; k += 64) sink += p[k];
            continue;
        }
        size_t bytes;
        if (sdc_mul_overflow((size_t)t->numel, sizeof(float), &bytes) || sdc_add_overflow(bytes, 63, &bytes) ||
            sdc_add_overflow(total, bytes & ~(size_t)63, &total))
            failed = snprintf(r->err, sizeof r->err, "%s: tensor '%s': size overflows", path, t->name) > 0;
        njobs += (size_t)((t->numel + SLICE - 1) / SLICE);
    }
    char *home = NULL;
    slice *jobs = NULL;
    if (!failed && total) {
        home = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (home == MAP_FAILED) home = NULL;
#ifdef MADV_HUGEPAGE
        if (home) madvise(home, total, MADV_HUGEPAGE);   /* advice only */
#endif
        jobs = calloc(njobs ? njobs : 1, sizeof *jobs);
        if (!home || !jobs)
            failed = snprintf(r->err, sizeof r->err, "%s: out of memory for %zu bytes of f32 weights", path, total) > 0;
    }
    size_t k = 0, off = 0;
    for (size_t i = 0; i < n && !failed; i++) {
        const sdc_tensor *t = sdc_store_at(s, i);
        if (!sdc_dtype_is_float(t->dtype)) continue;
        for (int64_t o = 0; o < t->numel; o += SLICE)
            jobs[k++] = (slice){t, o, t->numel - o < SLICE ? t->numel - o : SLICE, (float *)(home + off) + o};
        off += ((size_t)t->numel * sizeof(float) + 63) & ~(size_t)63;
    }
    r->f32_bytes = total;
    int bad = -1;   /* the first slice that failed */
    #pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (size_t j = 0; j < k; j++) {
        if (failed) continue;
        sdc_err je = {{0}};
        const slice *sl = &jobs[j];
        sdc_tensor v = *sl->t;   /* a 1-D view of the slice */
        size_t es = sdc_dtype_size(v.dtype);
        v.data = (const unsigned char *)sl->t->data + (size_t)sl->off * es;
        v.ndim = 1;
        v.shape[0] = v.numel = sl->n;
        v.nbytes = (size_t)sl->n * es;
        if (sdc_tensor_to_f32(&v, sl->dst, &je)) {
            #pragma omp critical(bench_load_err)
            if (bad < 0) { bad = (int)j; snprintf(r->err, sizeof r->err, "%s", je.msg); }
        }
        /* as the model loaders do: the converted bytes' file pages leave the RSS */
        if (!keep_mapped) sdc_store_release_tensor(s, &v);
    }
    if (bad >= 0) failed = 1;
    double t2 = now_s();
    r->cpu_s = cpu_now() - c0;
    faults_now(&r->minflt, &r->majflt);
    r->minflt -= mn0;
    r->majflt -= mj0;
    r->ok = !failed;
    r->open_s = t1 - t0;
    r->ready_s = t2 - t0;
    r->n_tensors = n;
    r->format = (int)sdc_store_file_at(s, 0)->format;
    r->hwm_kb = status_kb("VmHWM");
    long long io1 = io_read_bytes();
    r->io_read = io0 >= 0 && io1 >= 0 ? io1 - io0 : -1;
    (void)sink;
    /* The child exits right after this: the OS frees the buffers and the mapping. */
}

/* Runs child_run in a fork and collects its result. Returns 0, or -1 with r->err set. */
static int run_forked(const char *path, int threads, int keep_mapped, run_result *r) {
    int fd[2];
    memset(r, 0, sizeof *r);
    if (pipe(fd)) { snprintf(r->err, sizeof r->err, "bench-load: pipe: %s", strerror(errno)); return -1; }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(r->err, sizeof r->err, "bench-load: fork: %s", strerror(errno));
        close(fd[0]); close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        run_result c;
        child_run(path, threads, keep_mapped, &c);
        const char *p = (const char *)&c;
        size_t left = sizeof c;
        while (left) {
            ssize_t w = write(fd[1], p, left);
            if (w <= 0 && errno != EINTR) break;
            if (w > 0) { p += w; left -= (size_t)w; }
        }
        _exit(0);
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
        else
            snprintf(r->err, sizeof r->err, "%s: the measuring process sent no result", path);
        return -1;
    }
    r->err[sizeof r->err - 1] = 0;
    return r->ok ? 0 : -1;
}

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

/* Reads the file once so that warm runs find it in the page cache. */
static void warm(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    static char buf[1 << 20];
    while (read(fd, buf, sizeof buf) > 0) {}
    close(fd);
}

static int cmp_dbl(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

typedef struct mmm { double min, med, max; } mmm;

static mmm stats(const double *v, int n) {
    double s[RUNS_MAX];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_dbl);
    mmm r = {s[0], n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]), s[n - 1]};
    return r;
}

static const char *base(const char *p) {
    const char *s = strrchr(p, '/');
    return s && s[1] ? s + 1 : p;
}

static void usage(FILE *f) {
    fprintf(f,
        "usage: sdc bench-load FILE... [-r RUNS] [-t THREADS] [--cold] [--keep-mapped] [--json]\n"
        "  For each file, over RUNS runs (default %d), each in a fresh process: time to a\n"
        "  validated tensor store (open), time to weights ready for compute (every float tensor\n"
        "  converted to f32 into huge-page-advised memory by THREADS threads, default all cores,\n"
        "  as the model loaders do), MB/s (file size / ready time), peak RSS, bytes read from storage.\n"
        "  Prints min/median/max and the ratio of each file's median to the first file's.\n"
        "  --cold   drop the file from the page cache before each run (posix_fadvise DONTNEED,\n"
        "           checked with mincore); default: warm (the file is read once before the runs)\n"
        "  --keep-mapped  keep the converted tensors' file pages in the process (the loaders drop\n"
        "           them, so by default the peak RSS is the f32 weights, not the weights plus the file)\n"
        "  --json   machine-readable output\n", RUNS_DEFAULT);
}

static cJSON *mmm_json(mmm m) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "min", m.min);
    cJSON_AddNumberToObject(o, "median", m.med);
    cJSON_AddNumberToObject(o, "max", m.max);
    return o;
}

static int print_json(file_stats *fs, int nf, int runs, int cold, int threads, int keep_mapped) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "runs", runs);
    cJSON_AddStringToObject(root, "cache", cold ? "cold" : "warm");
    cJSON_AddNumberToObject(root, "threads", threads);
    cJSON_AddBoolToObject(root, "file_pages_kept", keep_mapped);
    double la[3];
    if (getloadavg(la, 3) == 3) cJSON_AddNumberToObject(root, "loadavg_1min", la[0]);
    cJSON *arr = cJSON_AddArrayToObject(root, "files");
    double first_ready = stats(fs[0].ready_s, runs).med, first_open = stats(fs[0].open_s, runs).med;
    for (int i = 0; i < nf; i++) {
        file_stats *f = &fs[i];
        cJSON *o = cJSON_CreateObject();
        mmm op = stats(f->open_s, runs), rd = stats(f->ready_s, runs);
        cJSON_AddStringToObject(o, "path", f->path);
        cJSON_AddStringToObject(o, "format", sdc_format_name((sdc_format)f->first.format));
        cJSON_AddNumberToObject(o, "bytes", (double)f->size);
        cJSON_AddNumberToObject(o, "tensors", (double)f->first.n_tensors);
        cJSON_AddNumberToObject(o, "params", (double)f->first.params);
        cJSON_AddNumberToObject(o, "f32_bytes", (double)f->first.f32_bytes);
        cJSON_AddItemToObject(o, "open_s", mmm_json(op));
        cJSON_AddItemToObject(o, "ready_s", mmm_json(rd));
        cJSON_AddItemToObject(o, "ready_cpu_s", mmm_json(stats(f->cpu_s, runs)));
        cJSON_AddItemToObject(o, "minor_faults", mmm_json(stats(f->minflt, runs)));
        cJSON_AddItemToObject(o, "major_faults", mmm_json(stats(f->majflt, runs)));
        cJSON_AddNumberToObject(o, "mb_per_s_median", rd.med > 0 ? f->size / 1e6 / rd.med : 0);
        cJSON_AddItemToObject(o, "peak_rss_mb", mmm_json(stats(f->hwm_mb, runs)));
        cJSON_AddItemToObject(o, "storage_read_mb", mmm_json(stats(f->io_mb, runs)));
        cJSON_AddNumberToObject(o, "open_ratio_to_first", first_open > 0 ? op.med / first_open : 0);
        cJSON_AddNumberToObject(o, "ready_ratio_to_first", first_ready > 0 ? rd.med / first_ready : 0);
        if (cold) cJSON_AddItemToObject(o, "resident_after_evict", mmm_json(stats(f->resident_after_evict, runs)));
        cJSON_AddItemToArray(arr, o);
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s) { fprintf(stderr, "sdc: bench-load: out of memory\n"); return -1; }
    puts(s);
    free(s);
    return 0;
}

static void print_table(file_stats *fs, int nf, int runs, int cold, int threads, int keep_mapped) {
    printf("bench-load: %d run%s per file, each in a fresh process, %d conversion thread%s, page cache %s\n",
           runs, runs == 1 ? "" : "s", threads, threads == 1 ? "" : "s",
           cold ? "cold (evicted before each run)" : "warm (file read once before the runs)");
    double la[3];
    if (getloadavg(la, 3) == 3)
        printf("load average %.2f %.2f %.2f on %ld CPUs (wall times stretch when the machine is busy; cpu ms does less)\n",
               la[0], la[1], la[2], sysconf(_SC_NPROCESSORS_ONLN));
    printf("times in ms as median [min-max]; cpu ms = user+sys CPU of the whole run (median);"
           " faults = minor page faults of the run (median);\n"
           "MB/s = file size / median ready; x first = median / the first file's median\n");
    int w = 4;
    for (int i = 0; i < nf; i++) if ((int)strlen(base(fs[i].path)) > w) w = (int)strlen(base(fs[i].path));
    printf("%-*s  %-14s %7s %9s  %-26s %-26s %9s %8s %8s %9s %9s %7s %7s\n", w, "file", "format", "tensors", "MB",
           "open ms", "ready ms", "cpu ms", "faults", "MB/s", "peakRSS", "disk MB", "open x", "ready x");
    double f_open = stats(fs[0].open_s, runs).med, f_ready = stats(fs[0].ready_s, runs).med;
    for (int i = 0; i < nf; i++) {
        file_stats *f = &fs[i];
        mmm op = stats(f->open_s, runs), rd = stats(f->ready_s, runs), hw = stats(f->hwm_mb, runs),
            io = stats(f->io_mb, runs), cpu = stats(f->cpu_s, runs), fl = stats(f->minflt, runs);
        char o[64], r[64], d[32];
        snprintf(o, sizeof o, "%.2f [%.2f-%.2f]", op.med * 1e3, op.min * 1e3, op.max * 1e3);
        snprintf(r, sizeof r, "%.2f [%.2f-%.2f]", rd.med * 1e3, rd.min * 1e3, rd.max * 1e3);
        if (io.min < 0) snprintf(d, sizeof d, "n/a");
        else snprintf(d, sizeof d, "%.1f", io.med);
        printf("%-*s  %-14s %7llu %9.1f  %-26s %-26s %9.2f %8.0f %8.0f %9.1f %9s %7.2f %7.2f\n", w, base(f->path),
               sdc_format_name((sdc_format)f->first.format), (unsigned long long)f->first.n_tensors,
               f->size / 1e6, o, r, cpu.med * 1e3, fl.med, rd.med > 0 ? f->size / 1e6 / rd.med : 0, hw.med, d,
               f_open > 0 ? op.med / f_open : 0, f_ready > 0 ? rd.med / f_ready : 0);
    }
    printf("peakRSS: MB, median: the f32 weights plus the file pages mapped at the time (%s);"
           " disk MB: bytes the run read from storage (median; ~0 when the file was cached)\n",
           keep_mapped ? "all of them: --keep-mapped" : "each tensor's pages are dropped once converted, as the loaders do");
    if (cold)
        for (int i = 0; i < nf; i++) {
            mmm res = stats(fs[i].resident_after_evict, runs);
            if (res.min < 0)
                printf("note: %s: could not check the page cache after eviction (mincore failed)\n", fs[i].path);
            else if (res.max > COLD_RESIDENT_WARN)
                printf("note: %s: the kernel did not evict it: up to %.1f%% of its pages stayed in the page cache"
                       " (mapped by another process, dirty, or the advice ignored); those runs were not fully cold\n",
                       fs[i].path, res.max * 100);
            else
                printf("cold check: %s: at most %.2f%% of its pages resident after eviction\n", fs[i].path,
                       res.max * 100);
        }
}

int sdc_cmd_bench_load(int argc, char **argv) {
    int runs = RUNS_DEFAULT, cold = 0, json = 0, nf = 0, keep_mapped = 0, threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const char *paths[FILES_MAX];
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) { usage(stdout); return 0; }
        if (!strcmp(s, "--cold")) cold = 1;
        else if (!strcmp(s, "--json")) json = 1;
        else if (!strcmp(s, "--keep-mapped")) keep_mapped = 1;
        else if (!strcmp(s, "-r") || !strcmp(s, "--runs")) {
            char *end;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc || !*argv[i + 1] || *end || v < 1 || v > RUNS_MAX) {
                fprintf(stderr, "sdc: bench-load: %s needs a number of runs in [1, %d]\n", s, RUNS_MAX);
                return 2;
            }
            runs = (int)v;
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
    if (threads < 1) threads = 1;   /* sysconf may fail (-1): never hand OpenMP a thread count < 1 */
    file_stats *fs = calloc((size_t)nf, sizeof *fs);
    if (!fs) { fprintf(stderr, "sdc: bench-load: out of memory\n"); return 2; }
    int status = 2;
    for (int i = 0; i < nf; i++) {
        struct stat st;
        if (stat(paths[i], &st)) { fprintf(stderr, "sdc: %s: %s\n", paths[i], strerror(errno)); goto done; }
        if (!S_ISREG(st.st_mode)) {
            fprintf(stderr, "sdc: %s: not a regular file (bench-load measures single model files)\n", paths[i]);
            goto done;
        }
        fs[i].path = paths[i];
        fs[i].size = (uint64_t)st.st_size;
        if (!cold) warm(paths[i]);
    }
    for (int r = 0; r < runs; r++)
        for (int i = 0; i < nf; i++) {
            file_stats *f = &fs[i];
            run_result rr;
            f->resident_after_evict[r] = cold ? evict(f->path, f->size) : -1;
            if (run_forked(f->path, threads, keep_mapped, &rr)) { fprintf(stderr, "sdc: %s\n", rr.err); goto done; }
            if (r == 0) f->first = rr;
            f->open_s[r] = rr.open_s;
            f->ready_s[r] = rr.ready_s;
            f->cpu_s[r] = rr.cpu_s;
            f->minflt[r] = (double)rr.minflt;
            f->majflt[r] = (double)rr.majflt;
            f->hwm_mb[r] = rr.hwm_kb * 1024 / 1e6;
            f->io_mb[r] = rr.io_read < 0 ? -1 : rr.io_read / 1e6;
            f->runs = r + 1;
        }
    if (json) { if (print_json(fs, nf, runs, cold, threads, keep_mapped)) goto done; }
    else print_table(fs, nf, runs, cold, threads, keep_mapped);
    status = 0;
done:
    free(fs);
    return status;
}
