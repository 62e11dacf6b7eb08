/*
 * omni_time - clocks.
 */
#ifndef OMNI_TIME_H
#define OMNI_TIME_H

#include <stdint.h>

/* Milliseconds on the monotonic clock (deadlines, timeouts). */
int64_t omni_now_ms(void);
/* Microseconds on the monotonic clock (latency measurement). */
int64_t omni_now_us(void);
/* Milliseconds since the epoch (wall clock, for logs and Lambda). */
int64_t omni_wall_ms(void);

#endif
