/*
 * floor_unix - the Unix-socket floor: a forked echo server on a
 * listening socket in the temporary directory, and this process as the
 * client sending fixed-size messages, one or many in flight.  Plain
 * blocking I/O: the floor is what the kernel costs, nothing more.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "floor.h"
#include "omni_alloc.h"
#include "omni_time.h"

#define WARMUP 2000

/* The server: echo whatever arrives until the client closes. */
static void serve(int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        _exit(1);
    char buf[65536];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0)
            _exit(0);
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(fd, buf + off, (size_t)(r - off));
            if (w <= 0)
                _exit(1);
            off += w;
        }
    }
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Run total messages with o->inflight in flight; record the measured
 * ones (index >= skip) into r. */
static int run(int fd, const struct floor_opts *o, long total, long skip,
               struct floor_result *r)
{
    size_t size = (size_t)o->size;
    char *msg = omni_calloc(1, size);
    char *in = omni_malloc(65536);
    int64_t *t0 = omni_calloc((size_t)o->inflight, sizeof *t0);
    long sent = 0, done = 0;
    size_t partial = 0; /* bytes of the next reply already read */
    int rc = 0;
    int64_t start = 0;
    while (done < total) {
        while (sent < total && sent - done < o->inflight) {
            if (sent == skip)
                start = omni_now_us();
            t0[sent % o->inflight] = omni_now_us();
            if (write_all(fd, msg, size) < 0) {
                rc = -1;
                goto out;
            }
            sent++;
        }
        ssize_t n = read(fd, in, 65536);
        if (n <= 0) {
            rc = -1;
            goto out;
        }
        /* Replies come back in order: every size bytes end one. */
        partial += (size_t)n;
        int64_t now = omni_now_us();
        while (partial >= size) {
            if (done >= skip)
                bench_lat_add(&r->lat, now - t0[done % o->inflight]);
            partial -= size;
            done++;
        }
    }
    r->secs = (double)(omni_now_us() - start) / 1e6;
out:
    omni_free(msg);
    omni_free(in);
    omni_free(t0);
    return rc;
}

int floor_unix(const struct floor_opts *o, struct floor_result *r)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/floor.sock", o->dir);
    unlink(sa.sun_path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(lfd, 1) < 0) {
        fprintf(stderr, "omni-floor: cannot listen on '%s': %s\n", sa.sun_path,
                strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0)
        serve(lfd);
    close(lfd);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    int rc = -1;
    if (pid > 0 && fd >= 0 && o->inflight > 0 &&
        connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        rc = run(fd, o, o->n + WARMUP, WARMUP, r);
    if (rc < 0)
        fprintf(stderr, "omni-floor: unix echo failed: %s\n", strerror(errno));
    if (fd >= 0)
        close(fd);
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    unlink(sa.sun_path);
    return rc;
}
