/*
 * provider_common - what every provider translator shares.
 *
 * Builds upstream requests (URL, header list, JSON body), checks JSON
 * replies, maps HTTP failures and retry headers onto struct llm_error,
 * and converts embedding vectors between float arrays and OpenAI's
 * base64 of little-endian float32.  Nothing here logs; every message
 * that may reach a client goes through omni_redact_str.
 */
#include "provider_common.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni_alloc.h"
#include "omni_buf.h"
#include "omni_log.h"
#include "omni_time.h"

void llm_http_req_release(struct llm_http_req *r)
{
    omni_free(r->url);
    curl_slist_free_all(r->headers);
    omni_free(r->body);
    memset(r, 0, sizeof *r);
}

void prov_req_header(struct llm_http_req *r, const char *name,
                     const char *value)
{
    struct omni_buf b = OMNI_BUF_INIT;
    omni_buf_addf(&b, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(r->headers, b.data);
    if (!l)
        omni_fatal("out of memory building header '%s'", name);
    r->headers = l;
    omni_buf_release(&b);
}

void prov_req_init(struct llm_http_req *r, const char *base, const char *path,
                   json_t *body, bool sse)
{
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    struct omni_buf u = OMNI_BUF_INIT;
    omni_buf_add(&u, base, n);
    omni_buf_adds(&u, path);
    r->url = omni_buf_detach(&u, NULL);
    r->headers = NULL;
    r->body = NULL;
    r->body_len = 0;
    prov_req_header(r, "Accept",
                    sse ? "text/event-stream" : "application/json");
    if (body) {
        prov_req_header(r, "Content-Type", "application/json");
        /* curl would otherwise wait for a "100 Continue" on big bodies */
        struct curl_slist *l = curl_slist_append(r->headers, "Expect:");
        if (!l)
            omni_fatal("out of memory building header 'Expect'");
        r->headers = l;
        char *s = json_dumps(body, JSON_COMPACT);
        if (!s)
            omni_fatal("cannot serialise request body for '%s'", r->url);
        r->body_len = strlen(s);
        r->body = omni_strndup(s, r->body_len);
        free(s);
    }
}

void prov_errf(char *err, const char *prov, const char *fmt, ...)
{
    struct omni_buf b = OMNI_BUF_INIT;
    va_list ap;
    omni_buf_addf(&b, "%s: ", prov);
    va_start(ap, fmt);
    omni_buf_vaddf(&b, fmt, ap);
    va_end(ap);
    omni_redact_str(b.data, err, OMNI_ERR_LEN);
    omni_buf_release(&b);
}

json_t *prov_parse_object(const char *prov, const char *body, size_t len,
                          char err[OMNI_ERR_LEN])
{
    json_error_t je;
    json_t *j = json_loadb(body ? body : "", len, 0, &je);
    if (!j) {
        prov_errf(err, prov, "invalid JSON reply: %s", je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        prov_errf(err, prov, "reply is not a JSON object");
        json_decref(j);
        return NULL;
    }
    return j;
}

void prov_body_excerpt(const char *body, size_t len, char *out, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < n && k < 120; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
        if (c < 0x20 || c == 0x7f)
            continue;
        if (c == ' ' && (k == 0 || out[k - 1] == ' '))
            continue;
        out[k++] = (char)c;
    }
    while (k && out[k - 1] == ' ')
        k--;
    if (n)
        out[k] = '\0';
}

void prov_error(struct llm_error *out, const char *prov, int status,
                const char *retry_after, const char *retry_after_ms,
                const char *msg)
{
    out->code = OMNI_E_UPSTREAM;
    out->status = status;
    out->retry_after_ms = llm_retry_after_ms(retry_after, retry_after_ms);
    out->retryable = status == 429 || status >= 500;
    if (msg && *msg)
        prov_errf(out->message, prov, "%s", msg);
    else
        prov_errf(out->message, prov, "upstream answered HTTP %d", status);
}

/* A non-negative decimal number of unit-scaled milliseconds, or -1. */
static double parse_num(const char *s, double scale)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (!isdigit((unsigned char)*s))
        return -1;
    char *end;
    double v = strtod(s, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end || !isfinite(v) || v < 0)
        return -1;
    return v * scale;
}

static uint32_t clamp_ms(double ms)
{
    if (ms >= (double)UINT32_MAX)
        return UINT32_MAX;
    return (uint32_t)ceil(ms);
}

uint32_t llm_retry_after_ms(const char *retry_after, const char *retry_after_ms)
{
    if (retry_after_ms) {
        double v = parse_num(retry_after_ms, 1);
        if (v >= 0)
            return clamp_ms(v);
    }
    if (!retry_after)
        return 0;
    double v = parse_num(retry_after, 1000);
    if (v >= 0)
        return clamp_ms(v);
    /* an HTTP date: how far in the future it is */
    time_t when = curl_getdate(retry_after, NULL);
    if (when == (time_t)-1)
        return 0;
    double ms = (double)when * 1000.0 - (double)omni_wall_ms();
    return ms > 0 ? clamp_ms(ms) : 0;
}

json_t *prov_clean_request(json_t *req, const char *model)
{
    json_t *c = json_deep_copy(req);
    json_object_del(c, "omni");
    json_object_set_new(c, "model", json_string(model));
    /* MCP tools are served by Omni itself, never by the upstream */
    json_t *tools = json_object_get(c, "tools");
    if (json_is_array(tools)) {
        for (size_t i = json_array_size(tools); i-- > 0;) {
            const char *type = json_string_value(
                json_object_get(json_array_get(tools, i), "type"));
            if (type && strcmp(type, "mcp") == 0)
                json_array_remove(tools, i);
        }
        if (json_array_size(tools) == 0) {
            json_object_del(c, "tools");
            json_object_del(c, "tool_choice");
            json_object_del(c, "parallel_tool_calls");
        }
    }
    return c;
}

bool prov_wants_usage(json_t *req)
{
    json_t *so = json_object_get(req, "stream_options");
    return json_is_true(json_object_get(so, "include_usage"));
}

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

json_t *prov_floats_to_b64(json_t *arr)
{
    size_t n = json_array_size(arr);
    unsigned char *raw = omni_malloc(n * 4 + 1);
    for (size_t i = 0; i < n; i++) {
        float f = (float)json_number_value(json_array_get(arr, i));
        uint32_t u;
        memcpy(&u, &f, 4);
        for (int k = 0; k < 4; k++)
            raw[i * 4 + (size_t)k] = (unsigned char)(u >> (8 * k));
    }
    size_t len = n * 4;
    struct omni_buf b = OMNI_BUF_INIT;
    omni_buf_reserve(&b, (len + 2) / 3 * 4);
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)raw[i + 1] << 8;
        if (i + 2 < len)
            v |= raw[i + 2];
        char q[4] = {b64chars[(v >> 18) & 63], b64chars[(v >> 12) & 63],
                     i + 1 < len ? b64chars[(v >> 6) & 63] : '=',
                     i + 2 < len ? b64chars[v & 63] : '='};
        omni_buf_add(&b, q, 4);
    }
    omni_free(raw);
    json_t *s = json_stringn(b.data, b.len);
    omni_buf_release(&b);
    return s;
}

static int b64val(unsigned char c)
{
    const char *p = c ? strchr(b64chars, c) : NULL;
    return p ? (int)(p - b64chars) : -1;
}

json_t *prov_b64_to_floats(const char *s, size_t n)
{
    unsigned char *raw = omni_malloc(n / 4 * 3 + 3);
    size_t len = 0, bits = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=')
            break;
        int v = b64val((unsigned char)s[i]);
        if (v < 0) {
            omni_free(raw);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[len++] = (unsigned char)(acc >> bits);
        }
    }
    if (len % 4) {
        omni_free(raw);
        return NULL;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < len; i += 4) {
        uint32_t u = raw[i] | (uint32_t)raw[i + 1] << 8 |
                     (uint32_t)raw[i + 2] << 16 | (uint32_t)raw[i + 3] << 24;
        float f;
        memcpy(&f, &u, 4);
        json_array_append_new(arr, json_real(f));
    }
    omni_free(raw);
    return arr;
}

json_t *prov_models_list(json_t *data, const char *name)
{
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(data, i, m)
    {
        const char *id = json_string_value(json_object_get(m, "id"));
        if (!id)
            continue;
        struct omni_buf b = OMNI_BUF_INIT;
        omni_buf_addf(&b, "%s/%s", name, id);
        const char *owner = json_string_value(json_object_get(m, "owned_by"));
        json_t *e = json_pack("{s:s%,s:s,s:s}", "id", b.data, b.len, "object",
                              "model", "owned_by", owner ? owner : name);
        json_t *created = json_object_get(m, "created");
        if (json_is_integer(created))
            json_object_set(e, "created", created);
        json_array_append_new(out, e);
        omni_buf_release(&b);
    }
    return json_pack("{s:s,s:o}", "object", "list", "data", out);
}

json_int_t prov_now(void)
{
    return (json_int_t)(omni_wall_ms() / 1000);
}
