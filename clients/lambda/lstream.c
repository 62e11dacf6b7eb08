/*
 * lstream - a broker stream forwarded as a Lambda response stream.
 *
 * Owns, for one reply: a curl multi and easy handle, the bytes not yet
 * taken by curl, and the error trailers.  The broker connection is
 * borrowed.  When the broker goes away mid-stream the stream ends with
 * an UNAVAILABLE error (trailers); when the POST itself fails there is
 * nobody left to tell, so the caller only logs it.
 */
#include "lstream.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "levent.h"
#include "omni_alloc.h"
#include "omni_buf.h"
#include "omni_log.h"
#include "omni_time.h"

#define POLL_MS 1000
#define SSE_CT  "text/event-stream"

struct st {
    const struct omni_lstream_cfg *cfg;
    struct omni_lstream_result *res;
    struct omni_buf out; /* bytes for curl, from out.data + off */
    size_t off;
    bool started;                 /* the prelude is out (HTTP) */
    bool ended;                   /* no more bytes will come */
    bool paused;                  /* the read callback paused the upload */
    struct omni_buf trailer_body; /* base64 error JSON, "" if none */
};

static void start(struct st *s, int status, const char *ct)
{
    if (s->started)
        return;
    s->started = true;
    s->res->http_status = status;
    if (s->cfg->http)
        omni_levent_prelude(status, ct, &s->out);
}

/* Append the bytes an event stands for. */
static void feed(struct st *s, const struct omni_event *ev)
{
    switch (ev->type) {
    case OMNI_EVENT_CHUNK:
        start(s, 200, SSE_CT);
        omni_reply_chunk(&s->out, s->cfg->shape, ev->body, ev->body_len);
        s->res->chunks++;
        break;
    case OMNI_EVENT_FINAL:
        start(s, 200, SSE_CT);
        omni_reply_stream_end(&s->out, s->cfg->shape);
        s->ended = true;
        break;
    case OMNI_EVENT_ERROR:
        snprintf(s->res->code, sizeof s->res->code, "%s", ev->code);
        if (!s->started && s->cfg->http) {
            /* Nothing sent yet: a plain HTTP error with its status. */
            struct omni_http_out out;
            omni_http_out_init(&out);
            omni_reply_event_error(&out, ev->code, ev->status, ev->message,
                                   ev->retry_after_ms);
            start(s, out.status, out.content_type);
            omni_buf_add(&s->out, out.body.data, out.body.len);
            omni_http_out_release(&out);
        } else {
            start(s, 200, SSE_CT);
            omni_reply_stream_error(&s->out, s->cfg->shape, ev->code,
                                    ev->status, ev->message);
            omni_levent_error_type(ev->code, s->res->error_type,
                                   sizeof s->res->error_type);
            struct omni_buf j = OMNI_BUF_INIT;
            omni_levent_error_body(&j, s->res->error_type, ev->message,
                                   ev->code, ev->status, ev->retry_after_ms);
            omni_levent_b64_encode(j.data, j.len, &s->trailer_body);
            omni_buf_release(&j);
        }
        s->ended = true;
        break;
    }
}

/* A made-up error event (broker gone, deadline passed). */
static void feed_error(struct st *s, const char *code, int status,
                       const char *message)
{
    struct omni_event ev = {.type = OMNI_EVENT_ERROR,
                            .code = code,
                            .status = status,
                            .message = message};
    feed(s, &ev);
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
    struct st *s = arg;
    size_t have = s->out.len - s->off;
    if (have == 0) {
        if (s->ended)
            return 0;
        s->paused = true;
        return CURL_READFUNC_PAUSE;
    }
    size_t k = have < size * n ? have : size * n;
    memcpy(buf, s->out.data + s->off, k);
    s->off += k;
    if (s->off == s->out.len) {
        omni_buf_reset(&s->out);
        s->off = 0;
    }
    return k;
}

static int on_trailers(struct curl_slist **list, void *arg)
{
    struct st *s = arg;
    if (!s->res->error_type[0])
        return CURL_TRAILERFUNC_OK;
    struct omni_buf h = OMNI_BUF_INIT;
    omni_buf_addf(&h, "Lambda-Runtime-Function-Error-Type: %s",
                  s->res->error_type);
    *list = curl_slist_append(*list, h.data);
    omni_buf_reset(&h);
    omni_buf_addf(&h, "Lambda-Runtime-Function-Error-Body: %s",
                  s->trailer_body.data);
    *list = curl_slist_append(*list, h.data);
    omni_buf_release(&h);
    return CURL_TRAILERFUNC_OK;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* Take every event the client already holds. */
static void pump(struct st *s, omni_client *c, uint64_t id)
{
    struct omni_event ev;
    int r;
    while (!s->ended && (r = omni_next(c, &ev)) != 0) {
        if (r < 0) {
            feed_error(s, "UNAVAILABLE", 503, "broker connection lost");
            return;
        }
        if (ev.id == id)
            feed(s, &ev);
    }
    if (!s->ended && s->cfg->give_up_ms && omni_now_ms() >= s->cfg->give_up_ms)
        feed_error(s, "TIMEOUT", 504, "no reply from the broker in time");
}

static CURL *make_easy(const struct omni_lstream_cfg *cfg, struct st *s,
                       struct curl_slist **hl, char *cerr)
{
    CURL *h = curl_easy_init();
    if (!h)
        return NULL;
    *hl = curl_slist_append(NULL, "Expect:");
    *hl = curl_slist_append(*hl,
                            "Lambda-Runtime-Function-Response-Mode: streaming");
    *hl = curl_slist_append(*hl, "Transfer-Encoding: chunked");
    *hl = curl_slist_append(*hl, "Trailer: Lambda-Runtime-Function-Error-Type, "
                                 "Lambda-Runtime-Function-Error-Body");
    *hl = curl_slist_append(
        *hl, cfg->http
                 ? "Content-Type: application/vnd.awslambda.http-integration-"
                   "response"
                 : "Content-Type: " SSE_CT);
    curl_easy_setopt(h, CURLOPT_URL, cfg->url);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hl);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, s);
    curl_easy_setopt(h, CURLOPT_TRAILERFUNCTION, on_trailers);
    curl_easy_setopt(h, CURLOPT_TRAILERDATA, s);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    return h;
}

enum omni_err omni_lstream_run(const struct omni_lstream_cfg *cfg,
                               omni_client *c, uint64_t id,
                               const struct omni_event *first,
                               struct omni_lstream_result *res)
{
    memset(res, 0, sizeof *res);
    struct st s = {.cfg = cfg, .res = res};
    omni_buf_init(&s.out);
    omni_buf_init(&s.trailer_body);
    feed(&s, first);

    char cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *hl = NULL;
    CURL *h = make_easy(cfg, &s, &hl, cerr);
    CURLM *m = curl_multi_init();
    if (!h || !m) {
        snprintf(res->err, sizeof res->err, "cannot create a curl handle");
        curl_easy_cleanup(h);
        curl_multi_cleanup(m);
        curl_slist_free_all(hl);
        omni_buf_release(&s.out);
        omni_buf_release(&s.trailer_body);
        return OMNI_E_IO;
    }
    curl_multi_add_handle(m, h);
    CURLcode done = CURLE_OK;
    bool finished = false;
    while (!finished) {
        int running = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg == CURLMSG_DONE) {
                done = msg->data.result;
                finished = true;
            }
        }
        if (finished || !running)
            break;
        pump(&s, c, id);
        if (s.paused && (s.out.len > s.off || s.ended)) {
            s.paused = false;
            curl_easy_pause(h, CURLPAUSE_CONT);
            continue;
        }
        struct curl_waitfd wfd = {.fd = omni_fd(c), .events = 0};
        if (!s.ended)
            wfd.events =
                CURL_WAIT_POLLIN | (omni_want_write(c) ? CURL_WAIT_POLLOUT : 0);
        curl_multi_poll(m, &wfd, s.ended ? 0 : 1, POLL_MS, NULL);
        if (wfd.revents & CURL_WAIT_POLLOUT)
            omni_flush(c);
    }
    if (done == CURLE_OK && finished) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
    } else {
        snprintf(res->err, sizeof res->err, "POST %s: %s", cfg->url,
                 *cerr ? cerr : curl_easy_strerror(done));
    }
    curl_multi_remove_handle(m, h);
    curl_easy_cleanup(h);
    curl_multi_cleanup(m);
    curl_slist_free_all(hl);
    omni_buf_release(&s.out);
    omni_buf_release(&s.trailer_body);
    return res->status ? OMNI_OK : OMNI_E_IO;
}
