/*
 * mcp_http - the Streamable HTTP transport (one endpoint, POST per
 * message, replies as JSON or as an SSE stream).
 *
 * Every message we send is one POST on the hub's curl multi.  A reply
 * body is either application/json (one message) or text/event-stream
 * (notifications, then the reply; fed to the up as each event arrives).
 * The server's Mcp-Session-Id from the initialize reply goes on every
 * later request with MCP-Protocol-Version; a 404 (or the 400 some SDK
 * servers send) for our session makes the up initialize again and
 * resend the request once.  In the handshake era we also hold a GET
 * stream open for server-initiated notifications (list_changed),
 * reopened with backoff; 405 means the server offers none.  Stateless-
 * era requests carry Mcp-Method/Mcp-Name instead of a session.
 * Transfers are aborted outside curl's callbacks (a sweep event).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mcp.h"
#include "omni_alloc.h"
#include "omni_log.h"

struct xfer;

struct http_tp {
    struct omni_mcp_up *up;
    char *session;
    struct xfer *xfers;
    struct xfer *get; /* the GET notification stream */
    struct event *get_retry;
    struct event *sweep; /* frees abandoned transfers */
    int64_t get_backoff_ms;
    bool no_get; /* the server answered 405 */
};

struct xfer {
    struct http_tp *t;
    CURL *easy;
    struct curl_slist *hdrs;
    int64_t id; /* request carried, 0: none */
    bool is_get;
    bool sse;
    bool had_session;
    bool dead; /* abandoned: sweep it */
    bool too_big;
    bool got_data;
    bool is_init; /* carries initialize: its session counts */
    char *session_seen;
    struct omni_buf body;
    struct omni_mcp_sse parser;
    struct xfer *next, *prev;
};

static void xfer_unlink(struct http_tp *t, struct xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        t->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->next = x->prev = NULL;
    if (t->get == x)
        t->get = NULL;
}

/* Stop and free x; not from inside curl's callbacks. */
static void xfer_free(struct http_tp *t, struct xfer *x, bool running)
{
    xfer_unlink(t, x);
    if (running)
        omni_mcp_curl_remove(t->up->hub->curl, x->easy);
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->hdrs);
    omni_free(x->session_seen);
    omni_buf_release(&x->body);
    omni_mcp_sse_release(&x->parser);
    omni_free(x);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct http_tp *t = arg;
    (void)fd;
    (void)what;
    for (struct xfer *x = t->xfers, *next; x; x = next) {
        next = x->next;
        if (x->dead)
            xfer_free(t, x, true);
    }
}

/* ---- curl callbacks ---- */

static size_t on_header(char *b, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;
    if (len >= 5 && strncmp(b, "HTTP/", 5) == 0) {
        x->sse = false;
        return len;
    }
    const char *colon = memchr(b, ':', len);
    if (!colon)
        return len;
    size_t klen = (size_t)(colon - b);
    const char *v = colon + 1;
    size_t vlen = (size_t)(b + len - v);
    while (vlen && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen &&
           (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    if (klen == 14 && strncasecmp(b, "mcp-session-id", 14) == 0 && vlen &&
        vlen < 256) {
        omni_free(x->session_seen);
        x->session_seen = omni_strndup(v, vlen);
        /* The initialize reply may be in this very body: the session
         * must be known before it is read. */
        if (x->is_init && !x->dead) {
            omni_free(x->t->session);
            x->t->session = omni_strdup(x->session_seen);
        }
    } else if (klen == 12 && strncasecmp(b, "content-type", 12) == 0) {
        x->sse = vlen >= 17 && strncasecmp(v, "text/event-stream", 17) == 0;
    }
    return len;
}

static void on_event(void *arg, const char *event, const char *data, size_t n)
{
    struct xfer *x = arg;
    if (strcmp(event, "message"))
        return;
    x->got_data = true;
    omni_mcp_up_input(x->t->up, data, n);
}

static void on_event_long(void *arg, size_t n, const char *edge, size_t edgen,
                          bool end)
{
    struct xfer *x = arg;
    (void)edge;
    (void)edgen;
    (void)end;
    omni_error("mcp server '%s' sent an event over mcp.max_line (%zu "
               "bytes); dropped",
               x->t->up->cfg->name, n);
}

static size_t on_write(char *b, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;
    struct omni_mcp_up *u = x->t->up;
    if (x->dead || u->failing)
        return 0;
    if (x->sse) {
        omni_mcp_sse_feed(&x->parser, b, len, on_event, on_event_long, x);
        return len;
    }
    if (x->body.len + len > u->hub->max_line) {
        x->too_big = true;
        return 0;
    }
    omni_buf_add(&x->body, b, len);
    return len;
}

/* ---- finishing a transfer ---- */

static void get_later(struct http_tp *t);

/* The request x carried, if it still waits on x. */
static struct omni_mcp_pending *carried(struct xfer *x)
{
    if (!x->id)
        return NULL;
    struct omni_mcp_pending *p = omni_mcp_ptab_find(&x->t->up->ptab, x->id);
    return p && p->xfer == x ? p : NULL;
}

static void done_error(struct xfer *x, long status)
{
    struct http_tp *t = x->t;
    struct omni_mcp_up *u = t->up;
    json_t *body =
        x->body.len ? json_loadb(x->body.data, x->body.len, 0, NULL) : NULL;
    json_t *err = json_object_get(body, "error");
    bool gone = status == 404 || (status == 400 && x->had_session);
    struct omni_mcp_pending *p = carried(x);
    if (x->is_get) {
        if (status == 405) {
            t->no_get = true;
            omni_debug("mcp server '%s' offers no GET stream", u->cfg->name);
        } else if (gone) {
            omni_mcp_up_session_gone(u);
        } else {
            get_later(t);
        }
    } else if (p) {
        p->xfer = NULL;
        omni_mcp_up_http_failed(u, p, (int)status,
                                json_is_object(err) ? err : NULL, gone);
    } else if (gone) {
        omni_mcp_up_session_gone(u);
    } else {
        omni_warn("mcp server '%s' answered HTTP %ld to a notification",
                  u->cfg->name, status);
    }
    json_decref(body);
}

static void on_done(void *arg, CURL *easy, int code)
{
    struct xfer *x = arg;
    struct http_tp *t = x->t;
    struct omni_mcp_up *u = t->up;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    struct omni_mcp_pending *p = carried(x);
    if (x->dead || u->failing) {
        /* abandoned, or the server is being torn down */
    } else if (x->too_big && p) {
        json_t *e = json_pack("{s:i,s:s}", "code", -32603, "message",
                              "reply over mcp.max_line");
        struct omni_mcp_reply r = {.outcome = OMNI_MCP_RPC_ERROR, .error = e};
        omni_error("mcp server '%s' sent a reply over mcp.max_line; "
                   "dropped",
                   u->cfg->name);
        omni_mcp_up_answer(u, p, &r);
        json_decref(e);
    } else if (code != CURLE_OK && x->is_get) {
        get_later(t);
    } else if (code != CURLE_OK) {
        omni_mcp_up_fail(u, "cannot reach '%s': %s", u->cfg->url,
                         curl_easy_strerror((CURLcode)code));
    } else if (status < 200 || status > 299) {
        done_error(x, status);
    } else {
        if (!x->sse && x->body.len)
            omni_mcp_up_input(u, x->body.data, x->body.len);
        p = carried(x);
        if (x->is_get) {
            if (x->got_data)
                t->get_backoff_ms = 0;
            get_later(t);
        } else if (p && status != 202) {
            struct omni_mcp_reply r = {.outcome = OMNI_MCP_HTTP_ERROR,
                                       .http_status = (int)status,
                                       .why = "no reply in the body"};
            p->xfer = NULL;
            omni_mcp_up_answer(u, p, &r);
        }
    }
    xfer_free(t, x, false);
}

/* ---- starting transfers ---- */

static void base64(const char *s, size_t n, struct omni_buf *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        omni_buf_addch(out, tab[(v >> 18) & 63]);
        omni_buf_addch(out, tab[(v >> 12) & 63]);
        omni_buf_addch(out, i + 1 < n ? tab[(v >> 6) & 63] : '=');
        omni_buf_addch(out, i + 2 < n ? tab[v & 63] : '=');
    }
}

/* Mcp-Name: plain when printable ASCII, else the base64 sentinel. */
static struct curl_slist *add_name(struct curl_slist *h, const char *v)
{
    struct omni_buf b = OMNI_BUF_INIT;
    bool plain = true;
    for (const char *c = v; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            plain = false;
    omni_buf_adds(&b, "Mcp-Name: ");
    if (plain) {
        omni_buf_adds(&b, v);
    } else {
        omni_buf_adds(&b, "=?base64?");
        base64(v, strlen(v), &b);
        omni_buf_adds(&b, "?=");
    }
    h = curl_slist_append(h, b.data);
    omni_buf_release(&b);
    return h;
}

static struct xfer *xfer_new(struct http_tp *t, bool is_get)
{
    struct omni_mcp_up *u = t->up;
    struct xfer *x = omni_calloc(1, sizeof *x);
    x->t = t;
    x->is_get = is_get;
    omni_buf_init(&x->body);
    omni_mcp_sse_init(&x->parser, u->hub->max_line);
    x->easy = curl_easy_init();
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, u->cfg->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* Debian's libcurl has Debian's CA path built in; elsewhere (Amazon
     * Linux in Lambda) the bundle is named by SSL_CERT_FILE. */
    const char *ca = getenv("SSL_CERT_FILE");
    if (ca && *ca)
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    for (size_t i = 0; u->cfg->headers && u->cfg->headers[i]; i++)
        x->hdrs = curl_slist_append(x->hdrs, u->cfg->headers[i]);
    if (t->session) {
        struct omni_buf b = OMNI_BUF_INIT;
        omni_buf_addf(&b, "Mcp-Session-Id: %s", t->session);
        x->hdrs = curl_slist_append(x->hdrs, b.data);
        omni_buf_release(&b);
        x->had_session = true;
    }
    x->next = t->xfers;
    if (t->xfers)
        t->xfers->prev = x;
    t->xfers = x;
    return x;
}

static void start(struct http_tp *t, struct xfer *x)
{
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
    omni_mcp_curl_add(t->up->hub->curl, x->easy, on_done, x);
}

static void ht_send(struct omni_mcp_up *u, const json_t *msg,
                    struct omni_mcp_pending *p)
{
    struct http_tp *t = u->tp;
    if (!t || u->failing)
        return;
    const char *method = json_string_value(json_object_get(msg, "method"));
    const json_t *params = json_object_get(msg, "params");
    bool modern = u->era == OMNI_MCP_ERA_MODERN;
    struct xfer *x = xfer_new(t, false);
    x->hdrs = curl_slist_append(x->hdrs, "Content-Type: application/json");
    x->hdrs = curl_slist_append(x->hdrs,
                                "Accept: application/json, text/event-stream");
    x->hdrs = curl_slist_append(x->hdrs, "Expect:");
    struct omni_buf b = OMNI_BUF_INIT;
    if (modern) {
        x->hdrs = curl_slist_append(x->hdrs,
                                    "MCP-Protocol-Version: " OMNI_MCP_V_MODERN);
        if (method) {
            omni_buf_addf(&b, "Mcp-Method: %s", method);
            x->hdrs = curl_slist_append(x->hdrs, b.data);
            const char *nm = NULL;
            if (!strcmp(method, "tools/call") || !strcmp(method, "prompts/get"))
                nm = json_string_value(json_object_get(params, "name"));
            else if (!strcmp(method, "resources/read"))
                nm = json_string_value(json_object_get(params, "uri"));
            if (nm)
                x->hdrs = add_name(x->hdrs, nm);
        }
    } else if (u->version[0] && !(method && !strcmp(method, "initialize"))) {
        omni_buf_addf(&b, "MCP-Protocol-Version: %s", u->version);
        x->hdrs = curl_slist_append(x->hdrs, b.data);
    }
    omni_buf_release(&b);
    size_t n;
    char *body = omni_mcp_dump(msg, &n);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, (long)n);
    curl_easy_setopt(x->easy, CURLOPT_COPYPOSTFIELDS, body);
    omni_free(body);
    if (p) {
        x->id = p->id;
        p->xfer = x;
    }
    x->is_init = method && !strcmp(method, "initialize");
    start(t, x);
}

static void open_get(struct http_tp *t)
{
    struct omni_mcp_up *u = t->up;
    if (t->get || t->no_get || !t->session || u->era != OMNI_MCP_ERA_LEGACY ||
        u->state != OMNI_MCP_S_READY)
        return;
    struct xfer *x = xfer_new(t, true);
    struct omni_buf b = OMNI_BUF_INIT;
    omni_buf_addf(&b, "MCP-Protocol-Version: %s", u->version);
    x->hdrs = curl_slist_append(x->hdrs, b.data);
    x->hdrs = curl_slist_append(x->hdrs, "Accept: text/event-stream");
    omni_buf_release(&b);
    curl_easy_setopt(x->easy, CURLOPT_HTTPGET, 1L);
    t->get = x;
    start(t, x);
}

static void on_get_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    open_get(arg);
}

/* The GET stream ended: open it again after a pause that grows while
 * it keeps ending without data. */
static void get_later(struct http_tp *t)
{
    int64_t d = t->get_backoff_ms ? t->get_backoff_ms : 1000;
    t->get_backoff_ms = d * 2 > 30000 ? 30000 : d * 2;
    struct timeval tv = {d / 1000, (d % 1000) * 1000};
    evtimer_add(t->get_retry, &tv);
}

/* ---- ops ---- */

static int ht_open(struct omni_mcp_up *u, char why[OMNI_ERR_LEN])
{
    (void)why;
    struct http_tp *t = omni_calloc(1, sizeof *t);
    t->up = u;
    t->get_retry = evtimer_new(u->hub->base, on_get_retry, t);
    t->sweep = event_new(u->hub->base, -1, 0, on_sweep, t);
    u->tp = t;
    return 0;
}

static void ht_forget(struct omni_mcp_up *u, struct omni_mcp_pending *p)
{
    struct http_tp *t = u->tp;
    struct xfer *x = p->xfer;
    p->xfer = NULL;
    if (!t || !x)
        return;
    x->dead = true;
    x->id = 0;
    event_active(t->sweep, 0, 0);
}

static void ht_ready(struct omni_mcp_up *u)
{
    struct http_tp *t = u->tp;
    if (t)
        open_get(t);
}

static void ht_reset(struct omni_mcp_up *u)
{
    struct http_tp *t = u->tp;
    if (!t)
        return;
    omni_free(t->session);
    t->session = NULL;
    if (t->get) {
        t->get->dead = true;
        t->get = NULL;
        event_active(t->sweep, 0, 0);
    }
}

static void ht_close(struct omni_mcp_up *u)
{
    struct http_tp *t = u->tp;
    if (!t)
        return;
    u->tp = NULL;
    while (t->xfers)
        xfer_free(t, t->xfers, true);
    event_free(t->get_retry);
    event_free(t->sweep);
    omni_free(t->session);
    omni_free(t);
}

static long ht_pid(const struct omni_mcp_up *u)
{
    (void)u;
    return 0;
}

const struct omni_mcp_tp_ops omni_mcp_http_ops = {
    .open = ht_open,
    .send = ht_send,
    .forget = ht_forget,
    .ready = ht_ready,
    .reset = ht_reset,
    .close = ht_close,
    .pid = ht_pid,
};
