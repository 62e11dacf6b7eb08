/*
 * levent - Lambda events to requests, replies to Lambda payloads.
 *
 * Parsing never fails hard: a malformed event becomes kind BAD with a
 * message naming the field and what was expected, which the runtime
 * reports as a Function.InvalidEvent error.  Every string kept is a
 * copy, so the event outlives the JSON it came from.
 */
#include "levent.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "omni_alloc.h"
#include "omni_log.h"

#define MAX_NAME 64

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void omni_levent_b64_encode(const void *p, size_t n, struct omni_buf *out)
{
    const unsigned char *s = p;
    omni_buf_reserve(out, (n + 2) / 3 * 4);
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        omni_buf_addch(out, b64chars[v >> 18 & 63]);
        omni_buf_addch(out, b64chars[v >> 12 & 63]);
        omni_buf_addch(out, i + 1 < n ? b64chars[v >> 6 & 63] : '=');
        omni_buf_addch(out, i + 2 < n ? b64chars[v & 63] : '=');
    }
}

static int b64val(char c)
{
    const char *p = c ? strchr(b64chars, c) : NULL;
    return p ? (int)(p - b64chars) : -1;
}

int omni_levent_b64_decode(const char *s, size_t n, struct omni_buf *out)
{
    while (n && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int d = b64val(s[i]);
        if (d < 0)
            return -1;
        v = (v << 6 | (unsigned)d) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            omni_buf_addch(out, (char)(v >> bits & 0xff));
        }
    }
    return 0;
}

/* ------------------------------------------------------------ parsing */

/* Make ev an invalid event with message msg. */
static void bad(struct omni_levent *ev, const char *msg)
{
    snprintf(ev->err, sizeof ev->err, "%s", msg);
    ev->kind = OMNI_LEVENT_BAD;
}

static char *dup_or_null(const char *s)
{
    return s ? omni_strdup(s) : NULL;
}

/* A header of a payload-2.0 headers object, any case. */
static char *header(json_t *headers, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach(headers, k, v)
    {
        if (strcasecmp(k, name) == 0 && json_is_string(v))
            return omni_strdup(json_string_value(v));
    }
    return NULL;
}

/* rawPath without the API Gateway stage prefix ("/prod/v1/x" with stage
 * "prod" is "/v1/x"); Function URLs and $default have none. */
static const char *strip_stage(const char *path, const char *stage)
{
    if (!stage || !*stage || strcmp(stage, "$default") == 0 || path[0] != '/')
        return path;
    size_t n = strlen(stage);
    if (strncmp(path + 1, stage, n) != 0)
        return path;
    if (path[1 + n] == '/')
        return path + 1 + n;
    return path[1 + n] == '\0' ? "/" : path;
}

static void parse_http(json_t *j, struct omni_levent *ev)
{
    json_t *ctx = json_object_get(j, "requestContext");
    json_t *http = json_object_get(ctx, "http");
    const char *method = json_string_value(json_object_get(http, "method"));
    const char *raw = json_string_value(json_object_get(j, "rawPath"));
    if (!method || !raw) {
        bad(ev, "invalid HTTP event: want 'rawPath' and "
                "'requestContext.http.method' strings");
        return;
    }
    ev->kind = OMNI_LEVENT_HTTP;
    const char *stage = json_string_value(json_object_get(ctx, "stage"));
    const char *domain = json_string_value(json_object_get(ctx, "domainName"));
    ev->function_url = domain && strstr(domain, ".lambda-url.");
    const char *q = json_string_value(json_object_get(j, "rawQueryString"));
    struct omni_buf t = OMNI_BUF_INIT;
    omni_buf_adds(&t, strip_stage(raw, stage));
    if (q && *q)
        omni_buf_addf(&t, "?%s", q);
    ev->target = omni_buf_detach(&t, NULL);
    ev->method = omni_strdup(method);
    json_t *h = json_object_get(j, "headers");
    ev->authorization = header(h, "authorization");
    ev->content_type = header(h, "content-type");
    ev->accept = header(h, "accept");
    ev->mcp_session = header(h, "mcp-session-id");
    ev->mcp_protocol = header(h, "mcp-protocol-version");
    ev->timeout_ms = header(h, "x-omni-timeout-ms");
    json_t *body = json_object_get(j, "body");
    const char *b = json_string_value(body);
    size_t bn = json_string_length(body);
    if (!b)
        return;
    if (json_is_true(json_object_get(j, "isBase64Encoded"))) {
        if (omni_levent_b64_decode(b, bn, &ev->body) < 0)
            ev->body_invalid = true;
    } else {
        omni_buf_add(&ev->body, b, bn);
    }
}

static int dump_cb(const char *p, size_t n, void *arg)
{
    omni_buf_add(arg, p, n);
    return 0;
}

/* A string field of at most MAX_NAME bytes, or NULL (and ev made BAD). */
static const char *name_field(json_t *j, const char *key,
                              struct omni_levent *ev)
{
    json_t *v = json_object_get(j, key);
    if (!json_is_string(v) || json_string_length(v) < 1 ||
        json_string_length(v) > MAX_NAME) {
        char msg[OMNI_ERR_LEN];
        snprintf(msg, sizeof msg,
                 "invalid direct invocation: want '%s' as a string of 1 to "
                 "%d bytes",
                 key, MAX_NAME);
        bad(ev, msg);
        return NULL;
    }
    return json_string_value(v);
}

static void parse_direct(json_t *j, struct omni_levent *ev)
{
    const char *svc = name_field(j, "service", ev);
    const char *op = svc ? name_field(j, "op", ev) : NULL;
    if (!op)
        return;
    json_t *stream = json_object_get(j, "stream");
    json_t *idem = json_object_get(j, "idempotent");
    json_t *tmo = json_object_get(j, "timeout_ms");
    json_t *auth = json_object_get(j, "auth");
    if ((stream && !json_is_boolean(stream)) ||
        (idem && !json_is_boolean(idem))) {
        bad(ev, "invalid direct invocation: want 'stream' and "
                "'idempotent' as booleans");
        return;
    }
    if (tmo && (!json_is_integer(tmo) || json_integer_value(tmo) < 0 ||
                json_integer_value(tmo) > OMNI_ROUTE_MAX_TIMEOUT_MS)) {
        char msg[OMNI_ERR_LEN];
        snprintf(msg, sizeof msg,
                 "invalid direct invocation: want 'timeout_ms' as an "
                 "integer in [0, %u]",
                 OMNI_ROUTE_MAX_TIMEOUT_MS);
        bad(ev, msg);
        return;
    }
    if (auth && !json_is_null(auth) && !json_is_string(auth)) {
        bad(ev, "invalid direct invocation: want 'auth' as a string");
        return;
    }
    ev->kind = OMNI_LEVENT_DIRECT;
    ev->service = omni_strdup(svc);
    ev->op = omni_strdup(op);
    ev->auth = dup_or_null(json_string_value(auth));
    ev->stream = json_is_true(stream);
    ev->idempotent = json_is_true(idem);
    ev->direct_timeout_ms = tmo ? (uint32_t)json_integer_value(tmo) : 0;
    /* A string body goes as it is; any other JSON value as JSON. */
    json_t *body = json_object_get(j, "body");
    if (json_is_string(body))
        omni_buf_add(&ev->body, json_string_value(body),
                     json_string_length(body));
    else if (body && !json_is_null(body))
        json_dump_callback(body, dump_cb, &ev->body,
                           JSON_COMPACT | JSON_ENCODE_ANY);
    else
        omni_buf_adds(&ev->body, "{}");
}

void omni_levent_parse(const char *p, size_t n, struct omni_levent *ev)
{
    memset(ev, 0, sizeof *ev);
    omni_buf_init(&ev->body);
    json_error_t e;
    json_t *j = json_loadb(p, n, 0, &e);
    if (!json_is_object(j)) {
        char msg[OMNI_ERR_LEN];
        snprintf(msg, sizeof msg, "invalid event: %s%s%s",
                 j ? "want a JSON object" : "not JSON (", j ? "" : e.text,
                 j ? "" : ")");
        bad(ev, msg);
    } else if (json_object_get(j, "rawPath") ||
               json_object_get(j, "requestContext")) {
        if (json_object_get(j, "httpMethod"))
            bad(ev, "payload format 1.0 is not supported: configure "
                    "payload format version 2.0");
        else
            parse_http(j, ev);
    } else if (json_object_get(j, "service")) {
        parse_direct(j, ev);
    } else {
        bad(ev, "invalid event: want an HTTP event (payload format 2.0) "
                "or a direct invocation with 'service' and 'op'");
    }
    json_decref(j);
}

void omni_levent_release(struct omni_levent *ev)
{
    char **strs[] = {&ev->method,       &ev->target,     &ev->authorization,
                     &ev->content_type, &ev->accept,     &ev->mcp_session,
                     &ev->mcp_protocol, &ev->timeout_ms, &ev->service,
                     &ev->op,           &ev->auth};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
        omni_free(*strs[i]);
        *strs[i] = NULL;
    }
    omni_buf_release(&ev->body);
}

void omni_levent_http_in(const struct omni_levent *ev, struct omni_http_in *in)
{
    memset(in, 0, sizeof *in);
    in->method = ev->method;
    in->target = ev->target;
    in->authorization = ev->authorization;
    in->content_type = ev->content_type;
    in->accept = ev->accept;
    in->mcp_session = ev->mcp_session;
    in->mcp_protocol = ev->mcp_protocol;
    in->timeout_ms = ev->timeout_ms;
    /* Lambda callers are never the loopback clients that /mcp trusts. */
    in->loopback = false;
    in->body = ev->body.data;
    in->body_len = ev->body.len;
}

/* ------------------------------------------------------------ replies */

/* Append "name":"value" (with a leading comma unless first). */
static void header_pair(struct omni_buf *b, bool *first, const char *name,
                        const char *value)
{
    if (!*first)
        omni_buf_addch(b, ',');
    *first = false;
    omni_buf_add_json_str(b, name, strlen(name));
    omni_buf_addch(b, ':');
    omni_buf_add_json_str(b, value, strlen(value));
}

void omni_levent_response(const struct omni_http_out *out,
                          struct omni_buf *json)
{
    bool first = true;
    omni_buf_addf(json, "{\"statusCode\":%d,\"headers\":{", out->status);
    if (out->content_type)
        header_pair(json, &first, "content-type", out->content_type);
    if (out->allow)
        header_pair(json, &first, "allow", out->allow);
    if (out->session)
        header_pair(json, &first, "mcp-session-id", out->session);
    if (out->retry_after_s) {
        char v[16];
        snprintf(v, sizeof v, "%u", out->retry_after_s);
        header_pair(json, &first, "retry-after", v);
    }
    omni_buf_adds(json, "},\"body\":");
    omni_buf_add_json_str(json, out->body.data, out->body.len);
    omni_buf_adds(json, ",\"isBase64Encoded\":false}");
}

void omni_levent_prelude(int status, const char *content_type,
                         struct omni_buf *b)
{
    omni_buf_addf(b, "{\"statusCode\":%d,\"headers\":{", status);
    if (content_type) {
        bool first = true;
        header_pair(b, &first, "content-type", content_type);
        if (strncmp(content_type, "text/event-stream", 17) == 0)
            header_pair(b, &first, "cache-control", "no-cache");
    }
    omni_buf_adds(b, "},\"cookies\":[]}");
    static const char nul[OMNI_LEVENT_NUL_LEN];
    omni_buf_add(b, nul, sizeof nul);
}

void omni_levent_error_type(const char *code, char *out, size_t n)
{
    struct omni_buf b = OMNI_BUF_INIT;
    omni_buf_adds(&b, "Function.");
    bool up = true;
    for (const char *p = code && *code ? code : "INTERNAL"; *p; p++) {
        char c = *p;
        if (c == '_' || c == '-' || c == ' ') {
            up = true;
            continue;
        }
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            continue;
        if (up && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (!up && c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        omni_buf_addch(&b, c);
        up = false;
    }
    if (b.len == strlen("Function."))
        omni_buf_adds(&b, "Internal");
    snprintf(out, n, "%s", b.data);
    omni_buf_release(&b);
}

void omni_levent_error_body(struct omni_buf *b, const char *type,
                            const char *message, const char *code, int status,
                            uint32_t retry_after_ms)
{
    char red[1024];
    omni_redact_str(message ? message : "", red, sizeof red);
    omni_buf_adds(b, "{\"errorMessage\":");
    omni_buf_add_json_str(b, red, strlen(red));
    omni_buf_adds(b, ",\"errorType\":");
    omni_buf_add_json_str(b, type, strlen(type));
    omni_buf_adds(b, ",\"stackTrace\":[]");
    if (code) {
        omni_buf_adds(b, ",\"code\":");
        omni_buf_add_json_str(b, code, strlen(code));
        omni_buf_addf(b, ",\"status\":%d", status);
        if (retry_after_ms)
            omni_buf_addf(b, ",\"retryAfterMs\":%u", retry_after_ms);
    }
    omni_buf_addch(b, '}');
}
