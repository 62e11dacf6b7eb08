/*
 * omni-rag-bench - retrieval quality and index speed of the RAG worker.
 *
 *   omni-rag-bench scifact [DIR] [options]  BEIR SciFact nDCG@10, R@100
 *   omni-rag-bench sift [DIR]               HNSW recall@10 and QPS
 *   omni-rag-bench scale [N] [options]      build time, p50, memory
 *   omni-rag-bench e2e [QUERIES]            queries through the broker
 *
 * The first three run the worker's own library in-process (no broker);
 * e2e talks to a running broker with a rag service.  A missing data set
 * is a skip with a message, exit 0.  See bench/rag/README.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: omni-rag-bench scifact [DIR] [--chunk MODE:SIZE:OVERLAP] "
            "[--k1 X] [--b X] [--nostem] [--nostop] [--plain] [--noidf] "
            "[--w-uni X] [--w-bi X] [--w-char X] [--wb X] [--wv X] "
            "[--cand N]\n"
            "       omni-rag-bench sift [DIR] [--ef LIST]\n"
            "       omni-rag-bench scale [N] [--dim D] [--efc N] "
            "[--queries Q]\n"
            "       omni-rag-bench e2e [QUERIES]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (!strcmp(argv[1], "scifact"))
        return bench_scifact(argc - 2, argv + 2);
    if (!strcmp(argv[1], "sift"))
        return bench_sift(argc - 2, argv + 2);
    if (!strcmp(argv[1], "scale"))
        return bench_scale(argc - 2, argv + 2);
    if (!strcmp(argv[1], "e2e"))
        return bench_e2e(argc - 2, argv + 2);
    return usage();
}
