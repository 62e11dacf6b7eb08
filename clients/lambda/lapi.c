/*
 * lapi - blocking HTTP calls to the Lambda APIs over a libcurl easy
 * handle (the handle keeps its connection between calls).
 *
 * Fails with OMNI_E_IO and curl's message when no response arrived;
 * any HTTP status is a response and left to the caller to judge.
 */
#include "lapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "omni_alloc.h"

void omni_lapi_resp_init(struct omni_lapi_resp *r)
{
    r->status = 0;
    omni_buf_init(&r->headers);
    omni_buf_init(&r->body);
}

void omni_lapi_resp_release(struct omni_lapi_resp *r)
{
    omni_buf_release(&r->headers);
    omni_buf_release(&r->body);
    r->status = 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    omni_buf_add(arg, p, size * n);
    return size * n;
}

/* Keep only the last response's header block (curl also reports the
 * headers of interim 1xx responses). */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct omni_buf *b = arg;
    if (size * n > 5 && strncmp(p, "HTTP/", 5) == 0)
        omni_buf_reset(b);
    omni_buf_add(b, p, size * n);
    return size * n;
}

void omni_lapi_setup(CURL *h)
{
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
}

enum omni_err omni_lapi_do(CURL *h, const struct omni_lapi_req *req,
                           struct omni_lapi_resp *r, char err[OMNI_ERR_LEN])
{
    char cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; req->hdrs && req->hdrs[i]; i++)
        hl = curl_slist_append(hl, req->hdrs[i]);
    omni_buf_reset(&r->headers);
    omni_buf_reset(&r->body);
    r->status = 0;
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS,
                         req->body ? (const char *)req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)req->body_len);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hl);
    if (rc != CURLE_OK) {
        snprintf(err, OMNI_ERR_LEN, "%s %s: %s", req->method, req->url,
                 *cerr ? cerr : curl_easy_strerror(rc));
        return OMNI_E_IO;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    return OMNI_OK;
}

bool omni_lapi_header(const struct omni_lapi_resp *r, const char *name,
                      char *out, size_t n)
{
    size_t nl = strlen(name);
    const char *p = r->headers.data, *end = p + r->headers.len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *e = eol ? eol : end;
        if ((size_t)(e - p) > nl && p[nl] == ':' &&
            strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = e;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            snprintf(out, n, "%.*s", (int)(ve - v), v);
            return true;
        }
        p = e + 1;
    }
    if (n)
        out[0] = '\0';
    return false;
}

const char *omni_lapi_ca_file(void)
{
    static const char *const known[] = {
        "/etc/ssl/certs/ca-certificates.crt", /* Debian */
        "/etc/pki/tls/certs/ca-bundle.crt",   /* Amazon Linux */
    };
    const char *env = getenv("SSL_CERT_FILE");
    if (env && *env && access(env, R_OK) == 0)
        return env;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (access(known[i], R_OK) == 0)
            return known[i];
    return NULL;
}
