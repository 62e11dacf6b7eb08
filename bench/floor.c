/*
 * omni-floor - the transport floors of the design, measured here.
 *
 *   omni-floor unix|zmq [-n N] [-p INFLIGHT] [-b BYTES]
 *
 * unix: a bare Unix-socket echo round trip; zmq: a bare ZeroMQ ipc
 * DEALER/ROUTER echo round trip; each between two processes.  -p 1 (the
 * default) measures latency, a larger -p pipelined throughput.  Prints
 * one JSON line: {"floor","inflight","bytes","n","p50_us","p99_us",
 * "msgs_per_s"}.  Exits 1 when the echo fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "floor.h"
#include "omni_alloc.h"

static const char usage[] =
    "usage: omni-floor unix|zmq [-n N] [-p INFLIGHT] [-b BYTES]\n";

static int number(const char *s, long min, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct floor_opts o = {.n = 20000, .inflight = 1, .size = 64};
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *mode = argv[1];
    for (int i = 2; i < argc; i++) {
        long *dst = !strcmp(argv[i], "-n")   ? &o.n
                    : !strcmp(argv[i], "-p") ? &o.inflight
                    : !strcmp(argv[i], "-b") ? &o.size
                                             : NULL;
        if (!dst || i + 1 == argc || number(argv[++i], 1, 100000000, dst)) {
            fputs(usage, stderr);
            return 2;
        }
    }
    /* Blocking echo on both sides: all in-flight bytes must fit in the
     * socket buffers or both ends would wait on a write. */
    if (o.inflight * o.size > 65536) {
        fprintf(stderr, "omni-floor: -p x -b must stay within 65536 bytes\n");
        return 2;
    }
    char dir[] = "/tmp/omni-floor-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("omni-floor: mkdtemp");
        return 1;
    }
    o.dir = dir;
    struct floor_result r = {0};
    int rc;
    if (!strcmp(mode, "unix"))
        rc = floor_unix(&o, &r);
    else if (!strcmp(mode, "zmq"))
        rc = floor_zmq(&o, &r);
    else {
        fputs(usage, stderr);
        rc = -2;
    }
    rmdir(dir);
    if (rc == 0)
        printf("{\"floor\":\"%s\",\"inflight\":%ld,\"bytes\":%ld,\"n\":%ld,"
               "\"p50_us\":%lld,\"p99_us\":%lld,\"msgs_per_s\":%.0f}\n",
               mode, o.inflight, o.size, o.n,
               (long long)bench_lat_pct(&r.lat, 50),
               (long long)bench_lat_pct(&r.lat, 99),
               r.secs > 0 ? (double)o.n / r.secs : 0.0);
    bench_lat_free(&r.lat);
    return rc == 0 ? 0 : rc == -2 ? 2 : 1;
}
