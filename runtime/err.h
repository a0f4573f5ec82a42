/* err.h — errors are values: a caller-owned buffer holding one readable line.
 *
 * Library code never exits or aborts on bad input. A failing function writes one line
 * ("FILE: what is wrong: where") into the caller's sdc_err and returns a negative status
 * (or NULL). The CLI prints the line and exits 2. */
#ifndef SDC_ERR_H
#define SDC_ERR_H

#include <stddef.h>

/* The same type as include/sdc.h's (the public API hands these errors out unchanged); the guard
 * keeps one definition in a file that includes both. */
#ifndef SDC_ERR_DEFINED
#define SDC_ERR_DEFINED
typedef struct sdc_err {
    char msg[1024];   /* one line, no trailing newline; empty when no error */
} sdc_err;
#endif

/* Formats the message into e (when e is not NULL). Always returns -1, so callers can write
 * `return sdc_errf(e, "%s: bad header: byte %zu", path, off);` */
int sdc_errf(sdc_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes an existing message: "PREFIX: old message". Returns -1. */
int sdc_err_prefix(sdc_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Checked size arithmetic for every size that came from a file: return 0 on success,
 * -1 on overflow (and leave *out untouched). */
int sdc_mul_overflow(size_t a, size_t b, size_t *out);
int sdc_add_overflow(size_t a, size_t b, size_t *out);

#endif
