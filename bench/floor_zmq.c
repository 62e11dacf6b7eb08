/*
 * floor_zmq - the ZeroMQ floor: a forked ROUTER echo server bound to an
 * ipc:// endpoint in the temporary directory, and this process as a
 * DEALER client, the same socket pair the broker and its workers use.
 * One or many messages in flight; replies come back in order.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "floor.h"
#include "omni_alloc.h"
#include "omni_time.h"

#define WARMUP 2000

/* The server: ROUTER echo (identity frame + payload) until killed. */
static void serve(const char *ep, int ready_fd)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    int ok = zmq_bind(s, ep) == 0;
    if (write(ready_fd, ok ? "1" : "0", 1) != 1 || !ok)
        _exit(1);
    close(ready_fd);
    for (;;) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, s, 0) < 0 || zmq_msg_recv(&body, s, 0) < 0)
            _exit(1);
        if (zmq_msg_send(&id, s, ZMQ_SNDMORE) < 0 ||
            zmq_msg_send(&body, s, 0) < 0)
            _exit(1);
    }
}

static int run(void *s, const struct floor_opts *o, long total, long skip,
               struct floor_result *r)
{
    char *msg = omni_calloc(1, (size_t)o->size);
    char *in = omni_malloc((size_t)o->size);
    int64_t *t0 = omni_calloc((size_t)o->inflight, sizeof *t0);
    long sent = 0, done = 0;
    int64_t start = 0;
    int rc = 0;
    while (done < total) {
        while (sent < total && sent - done < o->inflight) {
            if (sent == skip)
                start = omni_now_us();
            t0[sent % o->inflight] = omni_now_us();
            if (zmq_send(s, msg, (size_t)o->size, 0) < 0) {
                rc = -1;
                goto out;
            }
            sent++;
        }
        if (zmq_recv(s, in, (size_t)o->size, 0) < 0) {
            rc = -1;
            goto out;
        }
        if (done >= skip)
            bench_lat_add(&r->lat, omni_now_us() - t0[done % o->inflight]);
        done++;
    }
    r->secs = (double)(omni_now_us() - start) / 1e6;
out:
    omni_free(msg);
    omni_free(in);
    omni_free(t0);
    return rc;
}

int floor_zmq(const struct floor_opts *o, struct floor_result *r)
{
    char ep[512];
    snprintf(ep, sizeof ep, "ipc://%s/floor.ipc", o->dir);
    int pfd[2];
    if (pipe(pfd) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        serve(ep, pfd[1]);
    }
    close(pfd[1]);
    char ok = '0';
    if (pid < 0 || read(pfd[0], &ok, 1) != 1 || ok != '1') {
        fprintf(stderr, "omni-floor: cannot bind '%s'\n", ep);
        close(pfd[0]);
        if (pid > 0)
            waitpid(pid, NULL, 0);
        return -1;
    }
    close(pfd[0]);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    int rc = zmq_connect(s, ep);
    if (rc == 0 && o->inflight > 0)
        rc = run(s, o, o->n + WARMUP, WARMUP, r);
    if (rc < 0)
        fprintf(stderr, "omni-floor: zmq echo failed: %s\n",
                zmq_strerror(zmq_errno()));
    zmq_close(s);
    zmq_ctx_term(ctx);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return rc;
}
