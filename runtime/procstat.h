/* procstat.h — this process's clock and memory as the load report and bench-load read them:
 * a monotonic clock in seconds and the kB fields of /proc/self/status. Owns nothing. */
#ifndef SDC_PROCSTAT_H
#define SDC_PROCSTAT_H

/* CLOCK_MONOTONIC in seconds. */
double sdc_mono_s(void);

/* The "KEY:   123 kB" line of /proc/self/status (VmRSS, VmHWM, ...), in kB; -1 if absent. */
long sdc_status_kb(const char *key);

#endif
