/*
 * omni_alloc - allocation wrappers that abort on exhaustion.
 */
#include "omni_alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", n);
    abort();
}

void *omni_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *omni_calloc(size_t count, size_t size)
{
    count = count ? count : 1;
    size = size ? size : 1;
    void *p = calloc(count, size);
    /* calloc refuses a product that overflows: report it as SIZE_MAX. */
    if (!p)
        oom(count > SIZE_MAX / size ? SIZE_MAX : count * size);
    return p;
}

void *omni_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *omni_strndup(const char *s, size_t n)
{
    char *d = omni_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *omni_strdup(const char *s)
{
    return omni_strndup(s, strlen(s));
}

void omni_free(void *p)
{
    free(p);
}
