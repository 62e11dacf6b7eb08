/*
 * routes - HTTP requests to broker requests and broker replies to HTTP,
 * with no HTTP library underneath (omni-http and the Lambda runtime
 * share it).
 *
 * Resolution order: the client key (for /v1 and /mcp), the path, the
 * method, the /mcp loopback rule, names in the path, the body size, the
 * deadline header, then the body.  Every refusal is an OpenAI error
 * reply whose message says what was wrong and what was expected.  Reply
 * shaping maps broker error codes and statuses to HTTP statuses and
 * OpenAI error types, and chunk bodies to SSE events.
 */
#include "routes.h"

#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "multipart.h"
#include "omni_alloc.h"
#include "omni_err.h"
#include "omni_log.h"

#define MAX_SEGS 6
#define MAX_MSG  1024
#define JSON_CT  "application/json"

static const char *const labels[OMNI_R__COUNT] = {
    [OMNI_R_UNKNOWN] = "unknown",
    [OMNI_R_CHAT] = "chat",
    [OMNI_R_EMBEDDINGS] = "embeddings",
    [OMNI_R_MODELS] = "models",
    [OMNI_R_MCP_TOOLS] = "mcp_tools",
    [OMNI_R_MCP_CALL] = "mcp_call",
    [OMNI_R_MCP] = "mcp",
    [OMNI_R_RAG_INGEST] = "rag_ingest",
    [OMNI_R_RAG_QUERY] = "rag_query",
    [OMNI_R_RAG_DELETE] = "rag_delete",
    [OMNI_R_RAG_LIST] = "rag_list",
    [OMNI_R_HEALTH] = "health",
    [OMNI_R_METRICS] = "metrics",
};

const char *omni_route_label(enum omni_route_name name)
{
    return name < OMNI_R__COUNT ? labels[name] : labels[OMNI_R_UNKNOWN];
}

/* ------------------------------------------------------------ replies */

void omni_http_out_init(struct omni_http_out *out)
{
    memset(out, 0, sizeof *out);
    omni_buf_init(&out->body);
}

void omni_http_out_release(struct omni_http_out *out)
{
    omni_buf_release(&out->body);
    omni_free(out->session);
    out->session = NULL;
}

const char *omni_reply_error_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 500: return "server_error";
    }
    return status > 500 ? "api_error" : "invalid_request_error";
}

/* The code word of an error we make ourselves, from its status. */
static const char *status_code(int status)
{
    switch (status) {
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 406: return "not_acceptable";
    case 413: return "too_large";
    case 429: return "rate_limited";
    case 500: return "internal";
    case 502: return "upstream";
    case 503: return "unavailable";
    case 504: return "timeout";
    }
    return status >= 500 ? "internal" : "bad_request";
}

/* Append the OpenAI error object for (status, code, message); the code
 * word used goes to word (n bytes) when not NULL. */
static void error_json(struct omni_buf *b, int status, const char *code,
                       const char *message, const char *param, char *word,
                       size_t n)
{
    char red[MAX_MSG];
    omni_redact_str(message, red, sizeof red);
    omni_buf_adds(b, "{\"error\":{\"message\":");
    omni_buf_add_json_str(b, red, strlen(red));
    omni_buf_adds(b, ",\"type\":");
    omni_buf_add_json_str(b, omni_reply_error_type(status),
                          strlen(omni_reply_error_type(status)));
    omni_buf_adds(b, ",\"code\":");
    code = code ? code : status_code(status);
    if (word)
        snprintf(word, n, "%s", code);
    omni_buf_add_json_str(b, code, strlen(code));
    omni_buf_adds(b, ",\"param\":");
    if (param)
        omni_buf_add_json_str(b, param, strlen(param));
    else
        omni_buf_adds(b, "null");
    omni_buf_adds(b, "}}");
}

void omni_reply_error(struct omni_http_out *out, int status, const char *code,
                      const char *message)
{
    out->status = status;
    out->content_type = JSON_CT;
    omni_buf_reset(&out->body);
    error_json(&out->body, status, code, message, NULL, out->code,
               sizeof out->code);
}

/* The HTTP status of a broker error: the event's own status when it is
 * an HTTP error status, else the code's. */
static int event_status(const char *code, int status)
{
    if (status >= 400 && status <= 599)
        return status;
    int s = omni_err_status(omni_err_parse(code, strlen(code)));
    return s >= 400 && s <= 599 ? s : 500;
}

/* An upstream failure may carry the provider's own error JSON as its
 * message ({"error":{"message","type","code","param"}} or the inner
 * object); then its code, message and param are what the client sees. */
struct upstream_err {
    json_t *root;
    const char *code, *message, *param;
};

static bool upstream_error(const char *message, struct upstream_err *u)
{
    memset(u, 0, sizeof *u);
    if (!message || message[0] != '{')
        return false;
    u->root = json_loads(message, 0, NULL);
    json_t *e = json_object_get(u->root, "error");
    if (!json_is_object(e))
        e = u->root;
    u->message = json_string_value(json_object_get(e, "message"));
    u->code = json_string_value(json_object_get(e, "code"));
    u->param = json_string_value(json_object_get(e, "param"));
    if (!u->message) {
        json_decref(u->root);
        u->root = NULL;
        return false;
    }
    return true;
}

/* Lower-case the code word into word (at most n bytes with the NUL). */
static void lower_word(const char *code, char *word, size_t n)
{
    size_t i = 0;
    for (; code[i] && i + 1 < n; i++) {
        char c = code[i];
        word[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    word[i] = '\0';
}

/* Build the error object of an event into b (its code word into out,
 * n bytes, when not NULL); returns the HTTP status. */
static int event_error_json(struct omni_buf *b, const char *code, int status,
                            const char *message, char *out, size_t n)
{
    int st = event_status(code ? code : "INTERNAL", status);
    char word[64];
    lower_word(code ? code : "INTERNAL", word, sizeof word);
    struct upstream_err u;
    if (code && strcmp(code, "UPSTREAM") == 0 && upstream_error(message, &u)) {
        error_json(b, st, u.code ? u.code : word, u.message, u.param, out, n);
        json_decref(u.root);
    } else {
        error_json(b, st, word, message ? message : "", NULL, out, n);
    }
    return st;
}

void omni_reply_event_error(struct omni_http_out *out, const char *code,
                            int status, const char *message,
                            uint32_t retry_after_ms)
{
    omni_buf_reset(&out->body);
    out->status = event_error_json(&out->body, code, status, message, out->code,
                                   sizeof out->code);
    out->content_type = JSON_CT;
    out->retry_after_s = retry_after_ms ? (retry_after_ms + 999) / 1000 : 0;
}

/* Serialise j compactly into b. */
static int dump_cb(const char *p, size_t n, void *arg)
{
    omni_buf_add(arg, p, n);
    return 0;
}

static void dump_json(const json_t *j, struct omni_buf *b)
{
    json_dump_callback(j, dump_cb, b, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* MCP's {session,status,message}: status and headers from the broker,
 * the JSON-RPC message as the body, 202 with no body for none. */
static void mcp_final(struct omni_http_out *out, const void *body, size_t n)
{
    json_t *j = json_loadb(body, n, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        omni_reply_error(out, 502, "upstream",
                         "malformed mcp/rpc reply: want an object");
        return;
    }
    json_t *st = json_object_get(j, "status");
    json_t *msg = json_object_get(j, "message");
    json_t *sess = json_object_get(j, "session");
    int status = json_is_integer(st) ? (int)json_integer_value(st) : 200;
    if (status < 100 || status > 599)
        status = 502;
    if (json_is_string(sess))
        out->session = omni_strdup(json_string_value(sess));
    if (!msg || json_is_null(msg)) {
        out->status = status >= 300 ? status : 202;
        out->content_type = NULL;
    } else {
        out->status = status;
        out->content_type = JSON_CT;
        dump_json(msg, &out->body);
    }
    json_decref(j);
}

void omni_reply_final(struct omni_http_out *out, enum omni_reply_shape shape,
                      const void *body, size_t n)
{
    omni_buf_reset(&out->body);
    if (shape == OMNI_SHAPE_MCP) {
        mcp_final(out, body, n);
        return;
    }
    out->status = 200;
    out->content_type = JSON_CT;
    if (n)
        omni_buf_add(&out->body, body, n);
    else
        omni_buf_adds(&out->body, "{}");
}

/* One SSE data field per line of p[0..n): a JSON body with newlines in
 * it still arrives as one event. */
static void sse_data(struct omni_buf *sse, const char *p, size_t n)
{
    do {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) : n;
        size_t keep = len && p[len - 1] == '\r' ? len - 1 : len;
        omni_buf_adds(sse, "data: ");
        omni_buf_add(sse, p, keep);
        omni_buf_addch(sse, '\n');
        p += len + (nl ? 1 : 0);
        n -= len + (nl ? 1 : 0);
    } while (n);
    omni_buf_addch(sse, '\n');
}

void omni_reply_chunk(struct omni_buf *sse, enum omni_reply_shape shape,
                      const void *body, size_t n)
{
    if (shape == OMNI_SHAPE_MCP_SSE)
        omni_buf_adds(sse, "event: message\n");
    sse_data(sse, body, n);
}

void omni_reply_stream_end(struct omni_buf *sse, enum omni_reply_shape shape)
{
    if (shape == OMNI_SHAPE_SSE)
        omni_buf_adds(sse, "data: [DONE]\n\n");
}

void omni_reply_stream_error(struct omni_buf *sse, enum omni_reply_shape shape,
                             const char *code, int status, const char *message)
{
    if (shape != OMNI_SHAPE_SSE)
        return;
    struct omni_buf e = OMNI_BUF_INIT;
    event_error_json(&e, code, status, message, NULL, 0);
    sse_data(sse, e.data, e.len);
    omni_buf_release(&e);
}

/* -------------------------------------------------------------- checks */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int omni_route_unescape(const char *s, size_t n, struct omni_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0')
            return -1;
        omni_buf_addch(out, c);
    }
    return 0;
}

bool omni_route_valid_collection(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* Length of the UTF-8 sequence at s[0..n), or 0 if it is not valid
 * (overlong forms and surrogates included). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        len = 2, min = 0x80, c &= 0x1f;
    else if ((c & 0xf0) == 0xe0)
        len = 3, min = 0x800, c &= 0x0f;
    else if ((c & 0xf8) == 0xf0)
        len = 4, min = 0x10000, c &= 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    return len;
}

bool omni_route_valid_id(const char *s, size_t n)
{
    if (n < 1 || n > OMNI_ROUTE_MAX_ID)
        return false;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x20 || u[i] == 0x7f)
            return false;
        size_t l = utf8_len(u + i, n - i);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

/* Equal in time that depends only on a's length, never on where the
 * first difference is or on b's bytes. */
static unsigned ct_eq(const char *a, size_t an, const char *b, size_t bn)
{
    unsigned char d = 0;
    for (size_t i = 0; i < an; i++)
        d |= (unsigned char)a[i] ^ (unsigned char)(i < bn ? b[i] : 0);
    return (d == 0) & (an == bn);
}

bool omni_route_auth(const struct omni_route_cfg *cfg,
                     const char *authorization, const char **key)
{
    *key = NULL;
    if (!authorization)
        return false;
    const char *p = authorization;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return false;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    unsigned hit = 0;
    for (size_t i = 0; i < cfg->nkeys; i++) {
        unsigned eq = ct_eq(p, n, cfg->keys[i], strlen(cfg->keys[i]));
        if (eq && !hit)
            *key = cfg->keys[i];
        hit |= eq;
    }
    return hit != 0;
}

void omni_route_cfg_keys(struct omni_route_cfg *cfg, const char *list)
{
    cfg->keys = NULL;
    cfg->nkeys = 0;
    const char *p = list ? list : "";
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *s = p, *e = p + n;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s) {
            cfg->keys =
                omni_realloc(cfg->keys, (cfg->nkeys + 1) * sizeof *cfg->keys);
            cfg->keys[cfg->nkeys++] = omni_strndup(s, (size_t)(e - s));
        }
        p += n + (p[n] == ',');
    }
}

void omni_route_cfg_release(struct omni_route_cfg *cfg)
{
    for (size_t i = 0; i < cfg->nkeys; i++) {
        explicit_bzero(cfg->keys[i], strlen(cfg->keys[i]));
        omni_free(cfg->keys[i]);
    }
    omni_free(cfg->keys);
    cfg->keys = NULL;
    cfg->nkeys = 0;
}

/* --------------------------------------------------------- resolution */

/* The path split into percent-decoded segments. */
struct segs {
    size_t n;
    struct omni_buf s[MAX_SEGS];
};

static void segs_release(struct segs *sg)
{
    for (size_t i = 0; i < MAX_SEGS; i++)
        omni_buf_release(&sg->s[i]);
}

/* Split target's path; 1 on a bad escape, 2 on too many segments. */
static int split_path(const char *target, struct segs *sg)
{
    for (size_t i = 0; i < MAX_SEGS; i++)
        omni_buf_init(&sg->s[i]);
    sg->n = 0;
    size_t len = strcspn(target, "?#");
    if (len == 0 || target[0] != '/')
        return 2;
    const char *p = target + 1, *end = target + len;
    for (;;) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *e = slash ? slash : end;
        if (sg->n == MAX_SEGS)
            return 2;
        if (omni_route_unescape(p, (size_t)(e - p), &sg->s[sg->n]) < 0)
            return 1;
        sg->n++;
        if (!slash)
            return 0;
        p = slash + 1;
    }
}

static bool seg_is(const struct segs *sg, size_t i, const char *s)
{
    return i < sg->n && strcmp(sg->s[i].data, s) == 0;
}

/* Method bits. */
enum { M_GET = 1, M_POST = 2, M_DELETE = 4 };

static unsigned method_bit(const char *m)
{
    if (strcmp(m, "GET") == 0)
        return M_GET;
    if (strcmp(m, "POST") == 0)
        return M_POST;
    if (strcmp(m, "DELETE") == 0)
        return M_DELETE;
    return 0;
}

static const char *allow_header(unsigned methods)
{
    switch (methods) {
    case M_GET: return "GET";
    case M_POST: return "POST";
    case M_DELETE: return "DELETE";
    case M_GET | M_POST: return "GET, POST";
    }
    return "GET, POST, DELETE";
}

/* Which route the path names, with its methods; collection and id are
 * the indexes of those segments (0 when absent). */
struct match {
    enum omni_route_name name;
    unsigned methods;
    size_t coll, id;
};

static void match_path(const struct segs *sg, struct match *m)
{
    memset(m, 0, sizeof *m);
    if (sg->n == 1 && seg_is(sg, 0, "health"))
        *m = (struct match){OMNI_R_HEALTH, M_GET, 0, 0};
    else if (sg->n == 1 && seg_is(sg, 0, "metrics"))
        *m = (struct match){OMNI_R_METRICS, M_GET, 0, 0};
    else if (sg->n == 1 && seg_is(sg, 0, "mcp"))
        *m = (struct match){OMNI_R_MCP, M_GET | M_POST | M_DELETE, 0, 0};
    else if (!seg_is(sg, 0, "v1"))
        return;
    else if (sg->n == 3 && seg_is(sg, 1, "chat") &&
             seg_is(sg, 2, "completions"))
        *m = (struct match){OMNI_R_CHAT, M_POST, 0, 0};
    else if (sg->n == 2 && seg_is(sg, 1, "embeddings"))
        *m = (struct match){OMNI_R_EMBEDDINGS, M_POST, 0, 0};
    else if (sg->n == 2 && seg_is(sg, 1, "models"))
        *m = (struct match){OMNI_R_MODELS, M_GET, 0, 0};
    else if (sg->n == 3 && seg_is(sg, 1, "mcp") && seg_is(sg, 2, "tools"))
        *m = (struct match){OMNI_R_MCP_TOOLS, M_GET, 0, 0};
    else if (sg->n == 3 && seg_is(sg, 1, "mcp") && seg_is(sg, 2, "call"))
        *m = (struct match){OMNI_R_MCP_CALL, M_POST, 0, 0};
    else if (sg->n == 4 && seg_is(sg, 1, "rag") && seg_is(sg, 3, "documents"))
        *m = (struct match){OMNI_R_RAG_INGEST, M_GET | M_POST, 2, 0};
    else if (sg->n == 4 && seg_is(sg, 1, "rag") && seg_is(sg, 3, "query"))
        *m = (struct match){OMNI_R_RAG_QUERY, M_POST, 2, 0};
    else if (sg->n == 5 && seg_is(sg, 1, "rag") && seg_is(sg, 3, "documents"))
        *m = (struct match){OMNI_R_RAG_DELETE, M_DELETE, 2, 4};
}

static void fail(struct omni_route *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Make r an immediate error reply. */
static void fail(struct omni_route *r, int status, const char *fmt, ...)
{
    char msg[MAX_MSG];
    va_list ap;
    va_start(ap, fmt);
    /* The analyzer misreads glibc's va_list here (as in omni_buf.c). */
    /* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized) */
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->kind = OMNI_ROUTE_REPLY;
    omni_reply_error(&r->out, status, NULL, msg);
}

/* Parse the body as JSON; NULL (and r failed) when it is not. */
static json_t *parse_body(const struct omni_http_in *in, struct omni_route *r,
                          bool want_object)
{
    if (in->body_len == 0) {
        fail(r, 400, "missing request body: want a JSON %s",
             want_object ? "object" : "value");
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(in->body, in->body_len, JSON_DECODE_ANY, &e);
    if (!j) {
        fail(r, 400, "invalid JSON body: %s (line %d, column %d)", e.text,
             e.line, e.column);
        return NULL;
    }
    if (want_object && !json_is_object(j)) {
        fail(r, 400, "invalid request body: want a JSON object");
        json_decref(j);
        return NULL;
    }
    return j;
}

static void call(struct omni_route *r, const char *service, const char *op)
{
    r->kind = OMNI_ROUTE_CALL;
    r->service = service;
    r->op = op;
}

/* A header value usable as an MCP session id or protocol version. */
static bool visible_ascii(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 256)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static bool accepts_sse(const char *accept)
{
    return accept && strcasestr(accept, "text/event-stream");
}

/* /mcp: the JSON-RPC envelope of mcp/rpc, or mcp/listen for GET. */
static void route_mcp(const struct omni_http_in *in, unsigned method,
                      struct omni_route *r)
{
    if (in->mcp_session && !visible_ascii(in->mcp_session)) {
        fail(r, 400,
             "bad Mcp-Session-Id: want 1 to 256 visible ASCII "
             "characters");
        return;
    }
    if (in->mcp_protocol && !visible_ascii(in->mcp_protocol)) {
        fail(r, 400,
             "bad MCP-Protocol-Version: want 1 to 256 visible "
             "ASCII characters");
        return;
    }
    json_t *env = json_object();
    json_object_set_new(env, "session", str_or_null(in->mcp_session));
    if (method == M_GET) {
        if (!accepts_sse(in->accept)) {
            fail(r, 406,
                 "GET /mcp opens an event stream: send "
                 "'Accept: text/event-stream'");
            json_decref(env);
            return;
        }
        call(r, "mcp", "listen");
        r->stream = true;
        r->shape = OMNI_SHAPE_MCP_SSE;
    } else {
        json_t *msg = json_null();
        if (method == M_POST && !(msg = parse_body(in, r, false))) {
            json_decref(env);
            return;
        }
        json_object_set_new(env, "message", msg);
        json_object_set_new(env, "protocol_version",
                            str_or_null(in->mcp_protocol));
        if (method == M_DELETE)
            json_object_set_new(env, "delete", json_true());
        call(r, "mcp", "rpc");
        r->shape = OMNI_SHAPE_MCP;
    }
    dump_json(env, &r->body);
    json_decref(env);
}

/* POST /v1/rag/{c}/documents: a JSON body with "documents", or files. */
static void route_ingest(const struct omni_http_in *in, const char *coll,
                         struct omni_route *r)
{
    json_t *j;
    if (in->content_type &&
        strncasecmp(in->content_type, "multipart/form-data", 19) == 0) {
        char err[OMNI_ERR_LEN];
        json_t *docs = json_array();
        if (omni_multipart_files(in->content_type, in->body, in->body_len, docs,
                                 err) < 0) {
            fail(r, 400, "%s", err);
            json_decref(docs);
            return;
        }
        if (json_array_size(docs) == 0) {
            fail(r, 400,
                 "no file in multipart body: send one or more "
                 "parts named 'file'");
            json_decref(docs);
            return;
        }
        j = json_object();
        json_object_set_new(j, "documents", docs);
    } else {
        if (!(j = parse_body(in, r, true)))
            return;
        if (!json_is_array(json_object_get(j, "documents"))) {
            fail(r, 400,
                 "missing 'documents': want an array of "
                 "{\"id\",\"text\",\"metadata\"} objects");
            json_decref(j);
            return;
        }
    }
    json_object_set_new(j, "collection", json_string(coll));
    call(r, "rag", "ingest");
    dump_json(j, &r->body);
    json_decref(j);
}

/* The body-taking and body-less routes once everything else passed. */
static void route_call(const struct omni_http_in *in, const struct match *m,
                       const struct segs *sg, unsigned method,
                       struct omni_route *r)
{
    const char *coll = m->coll ? sg->s[m->coll].data : NULL;
    json_t *j = NULL;
    switch (m->name) {
    case OMNI_R_CHAT:
    case OMNI_R_EMBEDDINGS:
    case OMNI_R_MCP_CALL:
        if (!(j = parse_body(in, r, true)))
            return;
        if (m->name == OMNI_R_MCP_CALL &&
            !json_is_string(json_object_get(j, "name"))) {
            fail(r, 400, "missing 'name': want the tool name as a string");
            break;
        }
        /* The body is the OpenAI request itself: forward it as sent. */
        omni_buf_add(&r->body, in->body, in->body_len);
        if (m->name == OMNI_R_CHAT) {
            call(r, "llm", "chat");
            r->stream = json_is_true(json_object_get(j, "stream"));
            r->shape = r->stream ? OMNI_SHAPE_SSE : OMNI_SHAPE_JSON;
        } else {
            call(r, m->name == OMNI_R_MCP_CALL ? "mcp" : "llm",
                 m->name == OMNI_R_MCP_CALL ? "call" : "embeddings");
        }
        break;
    case OMNI_R_MODELS:
    case OMNI_R_MCP_TOOLS:
        omni_buf_adds(&r->body, "{}");
        call(r, m->name == OMNI_R_MODELS ? "llm" : "mcp",
             m->name == OMNI_R_MODELS ? "models" : "tools");
        break;
    case OMNI_R_MCP: route_mcp(in, method, r); break;
    case OMNI_R_RAG_INGEST:
        if (method == M_POST) {
            route_ingest(in, coll, r);
            break;
        }
        r->name = OMNI_R_RAG_LIST;
        j = json_pack("{s:s}", "collection", coll);
        dump_json(j, &r->body);
        call(r, "rag", "list");
        break;
    case OMNI_R_RAG_QUERY:
        if (!(j = parse_body(in, r, true)))
            return;
        json_object_set_new(j, "collection", json_string(coll));
        dump_json(j, &r->body);
        call(r, "rag", "query");
        break;
    case OMNI_R_RAG_DELETE: {
        const struct omni_buf *id = &sg->s[m->id];
        j = json_object();
        json_object_set_new(j, "collection", json_string(coll));
        json_object_set_new(j, "id", json_stringn(id->data, id->len));
        dump_json(j, &r->body);
        call(r, "rag", "delete");
        break;
    }
    default: break;
    }
    json_decref(j);
}

/* x-omni-timeout-ms; false (and r failed) when malformed. */
static bool parse_timeout(const char *v, struct omni_route *r)
{
    if (!v)
        return true;
    char *end;
    errno = 0;
    unsigned long long ms = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || ms < 1 ||
        ms > OMNI_ROUTE_MAX_TIMEOUT_MS) {
        fail(r, 400,
             "bad x-omni-timeout-ms '%.32s': want milliseconds in "
             "[1, %u]",
             v, OMNI_ROUTE_MAX_TIMEOUT_MS);
        return false;
    }
    r->timeout_ms = (uint32_t)ms;
    return true;
}

static bool needs_key(const char *target)
{
    return strncmp(target, "/v1/", 4) == 0 || strcmp(target, "/v1") == 0 ||
           (strncmp(target, "/mcp", 4) == 0 &&
            strchr("/?#", target[4] ? target[4] : '/'));
}

void omni_route_resolve(const struct omni_route_cfg *cfg,
                        const struct omni_http_in *in, struct omni_route *r)
{
    memset(r, 0, sizeof *r);
    omni_buf_init(&r->body);
    omni_http_out_init(&r->out);
    r->kind = OMNI_ROUTE_REPLY;

    if (cfg->nkeys && needs_key(in->target) &&
        !omni_route_auth(cfg, in->authorization, &r->auth)) {
        fail(r, 401,
             in->authorization ? "invalid client key"
                               : "missing client key: send 'Authorization: "
                                 "Bearer <key>'");
        return;
    }
    struct segs sg;
    int rc = split_path(in->target, &sg);
    struct match m;
    match_path(&sg, &m);
    unsigned method = method_bit(in->method);
    r->name = m.name;
    if (rc == 1) {
        fail(r, 400, "bad percent-escape in path");
    } else if (m.name == OMNI_R_UNKNOWN) {
        fail(r, 404, "unknown path '%.200s'", in->target);
    } else if (!(method & m.methods)) {
        fail(r, 405, "method %.16s not allowed here: use %s", in->method,
             allow_header(m.methods));
        r->out.allow = allow_header(m.methods);
    } else if (m.name == OMNI_R_MCP && !cfg->nkeys && !in->loopback) {
        fail(r, 403,
             "/mcp serves loopback clients only unless client "
             "keys are configured");
    } else if (m.coll && !omni_route_valid_collection(sg.s[m.coll].data)) {
        fail(r, 400, "bad collection name: want 1 to 64 of [A-Za-z0-9_.-]");
    } else if (m.id && !omni_route_valid_id(sg.s[m.id].data, sg.s[m.id].len)) {
        fail(r, 400,
             "bad document id: want 1 to %d bytes of UTF-8 without "
             "control characters",
             OMNI_ROUTE_MAX_ID);
    } else if (in->body_len > cfg->max_body) {
        fail(r, 413, "request body of %zu bytes is over the limit of %zu",
             in->body_len, cfg->max_body);
    } else if (m.name == OMNI_R_HEALTH) {
        r->kind = OMNI_ROUTE_HEALTH;
    } else if (m.name == OMNI_R_METRICS) {
        r->kind = OMNI_ROUTE_METRICS;
    } else if (parse_timeout(in->timeout_ms, r)) {
        route_call(in, &m, &sg, method, r);
    }
    segs_release(&sg);
}

void omni_route_release(struct omni_route *r)
{
    omni_buf_release(&r->body);
    omni_http_out_release(&r->out);
}
