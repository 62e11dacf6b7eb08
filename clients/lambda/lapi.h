/*
 * lapi - plain HTTP/1.1 calls to the Lambda Runtime and Extensions APIs
 * (and to Secrets Manager) over one libcurl easy handle.
 *
 * Calls block: Lambda runs one invocation at a time per environment and
 * freezes the process between them, so there is nothing else to do
 * while waiting.  Requests ignore proxy variables, suppress "Expect:",
 * set TCP_NODELAY and a 1 s connect timeout, and have no total timeout
 * unless one is asked for (never on /next or /event/next).
 */
#ifndef OMNI_LAPI_H
#define OMNI_LAPI_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "omni_buf.h"
#include "omni_err.h"

/* A response: status, the raw header block, the body. */
struct omni_lapi_resp {
    long status;
    struct omni_buf headers;
    struct omni_buf body;
};

/* One request.  hdrs is NULL or a NULL-terminated list of "Name: value"
 * lines; body may be NULL for GET.  timeout_ms 0 means none. */
struct omni_lapi_req {
    const char *method; /* "GET" or "POST" */
    const char *url;
    const char *const *hdrs;
    const void *body;
    size_t body_len;
    long timeout_ms;
};

void omni_lapi_resp_init(struct omni_lapi_resp *r);
void omni_lapi_resp_release(struct omni_lapi_resp *r);

/* Set h up the way every Runtime API call wants (see above). */
void omni_lapi_setup(CURL *h);

/* Perform req on h; r is reset and filled.  Returns OMNI_OK when an HTTP
 * response arrived (whatever its status), else OMNI_E_IO with err. */
enum omni_err omni_lapi_do(CURL *h, const struct omni_lapi_req *req,
                           struct omni_lapi_resp *r, char err[OMNI_ERR_LEN]);

/* The value of header name (case-insensitive) in r, copied into out
 * (n bytes, always terminated); false when absent. */
bool omni_lapi_header(const struct omni_lapi_resp *r, const char *name,
                      char *out, size_t n);

/* A CA bundle that exists on this system for TLS peers ($SSL_CERT_FILE,
 * Debian's, Amazon Linux's), or NULL: libcurl's built-in default names
 * Debian's path, which Amazon Linux 2023 lacks. */
const char *omni_lapi_ca_file(void);

#endif
