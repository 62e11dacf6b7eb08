/*
 * e2e - queries through a running broker (OMNI_SOCKET) to the rag
 * service: ingests a small collection, then times QUERIES sequential
 * hybrid queries end to end (client -> broker -> worker -> back).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "omni.h"
#include "omni_alloc.h"
#include "omni_buf.h"

static int call(omni_client *c, const char *op, const char *body)
{
    struct omni_request req = {
        .service = "rag", .op = op, .body = body, .body_len = strlen(body)};
    char *out = NULL;
    size_t n;
    int rc = omni_call(c, &req, NULL, NULL, &out, &n, NULL);
    if (rc < 0)
        fprintf(stderr, "e2e: %s failed: %s\n", op, omni_last_error(c));
    free(out);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int bench_e2e(int argc, char **argv)
{
    size_t nq = argc > 0 ? strtoul(argv[0], NULL, 10) : 1000;
    if (!nq)
        nq = 1000;
    char err[256];
    omni_client *c = omni_connect(NULL, err, sizeof err);
    if (!c) {
        printf("e2e: skipped: no broker: %s\n", err);
        return 0;
    }
    static const char *const topics[] = {
        "cats sleep in warm places",   "dogs bark at strangers",
        "rivers flow into the sea",    "mountains are cold at the top",
        "bread is baked from flour",   "the moon orbits the earth",
        "bees make honey from nectar", "trains run on steel rails",
    };
    struct omni_buf b = OMNI_BUF_INIT;
    omni_buf_adds(&b, "{\"collection\":\"bench-e2e\",\"documents\":[");
    for (int i = 0; i < 200; i++)
        omni_buf_addf(&b, "%s{\"id\":\"d%d\",\"text\":\"%s, note %d.\"}",
                      i ? "," : "", i, topics[i % 8], i);
    omni_buf_adds(&b, "]}");
    if (call(c, "ingest", b.data) < 0) {
        omni_buf_release(&b);
        omni_close(c);
        return 1;
    }
    double *lat = omni_malloc(nq * sizeof *lat);
    double t0 = bench_now();
    for (size_t i = 0; i < nq; i++) {
        omni_buf_reset(&b);
        omni_buf_addf(&b,
                      "{\"collection\":\"bench-e2e\",\"query\":\"%s\","
                      "\"top_k\":5}",
                      topics[i % 8]);
        double a = bench_now();
        if (call(c, "query", b.data) < 0) {
            omni_free(lat);
            omni_buf_release(&b);
            omni_close(c);
            return 1;
        }
        lat[i] = (bench_now() - a) * 1000;
    }
    double total = bench_now() - t0;
    qsort(lat, nq, sizeof *lat, cmp_double);
    printf("e2e: %zu hybrid queries (200 documents, top_k 5) through the "
           "broker: p50 %.3f ms, p99 %.3f ms, %.0f queries/s sequential\n",
           nq, lat[nq / 2], lat[nq * 99 / 100], (double)nq / total);
    call(c, "delete", "{\"collection\":\"bench-e2e\",\"ids\":[\"d0\",\"d1\"]}");
    omni_free(lat);
    omni_buf_release(&b);
    omni_close(c);
    return 0;
}
