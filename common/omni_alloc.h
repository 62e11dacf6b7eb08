/*
 * omni_alloc - allocation that never returns NULL.
 *
 * Every process links jemalloc (MALLOC=jemalloc, the default), which
 * replaces the system malloc for the whole process, libraries included.
 * Sanitizer builds use the libc allocator so ASan can see every block.
 * On exhaustion we print one line and abort(): there is no sensible way
 * for a request path to recover, and checking NULL everywhere hides bugs.
 */
#ifndef OMNI_ALLOC_H
#define OMNI_ALLOC_H

#include <stddef.h>

void *omni_malloc(size_t n);
void *omni_calloc(size_t count, size_t size);
void *omni_realloc(void *p, size_t n);
char *omni_strdup(const char *s);
/* Copy at most n bytes of s and NUL-terminate; s need not be terminated. */
char *omni_strndup(const char *s, size_t n);
void omni_free(void *p);

#endif
