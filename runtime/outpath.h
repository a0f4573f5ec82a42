/* outpath.h — may a path be written as an output file? Every writer (PNG, convert's safetensors)
 * writes a temp file beside OUT and renames it into place; rename replaces whatever OUT is, so
 * OUT must be checked first: only a regular file is ever replaced, never a device, FIFO, socket,
 * folder or symbolic link (rename would replace the link itself, not write through it). The
 * check is made before the work starts (so a bad path costs nothing) and again before the
 * rename. */
#ifndef SDC_OUTPATH_H
#define SDC_OUTPATH_H

#include "runtime/err.h"

/* 0 when path may be written: it does not exist and its folder does and is writable, or it is a
 * regular file and may_replace is set. Otherwise -1 with one line in e ("PATH: what"). */
int sdc_output_check(const char *path, int may_replace, sdc_err *e);

#endif
