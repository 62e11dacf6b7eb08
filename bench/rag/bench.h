/*
 * bench.h - the subcommands of omni-rag-bench and their helpers.
 */
#ifndef OMNI_RAG_BENCH_H
#define OMNI_RAG_BENCH_H

#include <stddef.h>

int bench_scifact(int argc, char **argv);
int bench_sift(int argc, char **argv);
int bench_scale(int argc, char **argv);
int bench_e2e(int argc, char **argv);

/* Seconds on the monotonic clock. */
double bench_now(void);
/* Resident and peak resident memory of this process, MiB. */
void bench_rss(double *rss, double *peak);
/* Read a whole file (malloc'ed, NUL-terminated); NULL if unreadable. */
char *bench_slurp(const char *path, size_t *len);
/* The value after a "--name" option at argv[*i], advancing *i. */
const char *bench_arg(int argc, char **argv, int *i);

#endif
