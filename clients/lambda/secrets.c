/*
 * secrets - GetSecretValue, signed by libcurl, parsed with jansson.
 *
 * Errors name the secret's ARN, the HTTP status and the AWS error type
 * (__type), never a value.  The response body holds the secret, so it
 * is wiped before it is freed.
 */
#include "secrets.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lapi.h"
#include "omni_alloc.h"
#include "omni_buf.h"

#define MAX_NAME 128

void omni_secrets_arn_region(const char *arn, char *out, size_t n)
{
    /* arn:aws:secretsmanager:us-east-1:123456789012:secret:name */
    const char *p = arn;
    for (int i = 0; i < 3 && p; i++) {
        p = strchr(p, ':');
        if (p)
            p++;
    }
    const char *e = p ? strchr(p, ':') : NULL;
    snprintf(out, n, "%.*s", e ? (int)(e - p) : 0, e ? p : "");
}

static bool env_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > MAX_NAME || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

void omni_secrets_release(struct omni_secrets *s)
{
    for (size_t i = 0; i < s->n; i++) {
        explicit_bzero(s->values[i], strlen(s->values[i]));
        omni_free(s->values[i]);
        omni_free(s->names[i]);
    }
    omni_free(s->names);
    omni_free(s->values);
    memset(s, 0, sizeof *s);
}

enum omni_err omni_secrets_parse(const char *body, size_t n,
                                 struct omni_secrets *out,
                                 char err[OMNI_ERR_LEN])
{
    omni_secrets_release(out);
    json_t *j = json_loadb(body, n, 0, NULL);
    const char *str = json_string_value(json_object_get(j, "SecretString"));
    if (!str) {
        snprintf(err, OMNI_ERR_LEN,
                 json_object_get(j, "SecretBinary")
                     ? "secret has SecretBinary: want SecretString JSON"
                     : "invalid GetSecretValue reply: no SecretString");
        json_decref(j);
        return OMNI_E_CONFIG;
    }
    json_t *kv = json_loads(str, 0, NULL);
    json_decref(j);
    if (!json_is_object(kv)) {
        snprintf(err, OMNI_ERR_LEN,
                 "invalid SecretString: want a JSON object of "
                 "{\"NAME\": \"value\"}");
        json_decref(kv);
        return OMNI_E_CONFIG;
    }
    const char *k;
    json_t *v;
    json_object_foreach(kv, k, v)
    {
        if (!json_is_string(v) || !env_name(k)) {
            out->skipped++;
            continue;
        }
        out->names = omni_realloc(out->names, (out->n + 1) * sizeof(char *));
        out->values = omni_realloc(out->values, (out->n + 1) * sizeof(char *));
        out->names[out->n] = omni_strdup(k);
        out->values[out->n] = omni_strdup(json_string_value(v));
        out->n++;
    }
    /* jansson's copies of the values go back to the allocator as they
     * are: the parse tree cannot be wiped through the public API. */
    json_decref(kv);
    return OMNI_OK;
}

/* One signed POST; *status gets the HTTP status (0 on a network error). */
static enum omni_err attempt(const struct omni_secrets_cfg *cfg,
                             const char *url, const char *region,
                             struct omni_lapi_resp *r, char err[OMNI_ERR_LEN])
{
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, OMNI_ERR_LEN, "cannot create a curl handle");
        return OMNI_E_IO;
    }
    omni_lapi_setup(h);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cfg->timeout_ms);
    const char *ca = omni_lapi_ca_file();
    if (ca)
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    struct omni_buf sig = OMNI_BUF_INIT, tok = OMNI_BUF_INIT,
                    body = OMNI_BUF_INIT;
    omni_buf_addf(&sig, "aws:amz:%s:secretsmanager", region);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sig.data);
    curl_easy_setopt(h, CURLOPT_USERNAME, cfg->key_id);
    curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->secret_key);
    const char *hdrs[4] = {"Content-Type: application/x-amz-json-1.1",
                           "X-Amz-Target: secretsmanager.GetSecretValue", NULL,
                           NULL};
    if (cfg->token && *cfg->token) {
        omni_buf_addf(&tok, "x-amz-security-token: %s", cfg->token);
        hdrs[2] = tok.data;
    }
    omni_buf_adds(&body, "{\"SecretId\":");
    omni_buf_add_json_str(&body, cfg->arn, strlen(cfg->arn));
    omni_buf_addch(&body, '}');
    struct omni_lapi_req req = {.method = "POST",
                                .url = url,
                                .hdrs = hdrs,
                                .body = body.data,
                                .body_len = body.len,
                                .timeout_ms = cfg->timeout_ms};
    enum omni_err e = omni_lapi_do(h, &req, r, err);
    curl_easy_cleanup(h);
    explicit_bzero(tok.data, tok.len);
    omni_buf_release(&tok);
    omni_buf_release(&sig);
    omni_buf_release(&body);
    return e;
}

enum omni_err omni_secrets_fetch(const struct omni_secrets_cfg *cfg,
                                 struct omni_secrets *out,
                                 char err[OMNI_ERR_LEN])
{
    omni_secrets_release(out);
    char region[64];
    if (cfg->region && *cfg->region)
        snprintf(region, sizeof region, "%s", cfg->region);
    else
        omni_secrets_arn_region(cfg->arn, region, sizeof region);
    if (!*region) {
        snprintf(err, OMNI_ERR_LEN,
                 "cannot fetch secret '%s': no AWS_REGION and no region in "
                 "the ARN",
                 cfg->arn);
        return OMNI_E_CONFIG;
    }
    if (!cfg->key_id || !*cfg->key_id || !cfg->secret_key ||
        !*cfg->secret_key) {
        snprintf(err, OMNI_ERR_LEN,
                 "cannot fetch secret '%s': AWS_ACCESS_KEY_ID or "
                 "AWS_SECRET_ACCESS_KEY is not set",
                 cfg->arn);
        return OMNI_E_CONFIG;
    }
    struct omni_buf url = OMNI_BUF_INIT;
    if (cfg->endpoint && *cfg->endpoint)
        omni_buf_adds(&url, cfg->endpoint);
    else
        omni_buf_addf(&url, "https://secretsmanager.%s.amazonaws.com/", region);
    struct omni_lapi_resp r;
    omni_lapi_resp_init(&r);
    enum omni_err e = OMNI_E_IO;
    for (int i = 0; i < 2; i++) {
        char why[OMNI_ERR_LEN];
        e = attempt(cfg, url.data, region, &r, why);
        if (e != OMNI_OK) {
            snprintf(err, OMNI_ERR_LEN, "cannot fetch secret '%s': %s",
                     cfg->arn, why);
            continue;
        }
        if (r.status == 200) {
            e = omni_secrets_parse(r.body.data, r.body.len, out, why);
            if (e != OMNI_OK)
                snprintf(err, OMNI_ERR_LEN, "secret '%s': %s", cfg->arn, why);
            break;
        }
        /* AWS errors are {"__type":"...","message":"..."}: the type says
         * enough and the message cannot hold the secret. */
        json_t *j = json_loadb(r.body.data, r.body.len, 0, NULL);
        const char *type = json_string_value(json_object_get(j, "__type"));
        snprintf(err, OMNI_ERR_LEN, "cannot fetch secret '%s': HTTP %ld %s",
                 cfg->arn, r.status, type ? type : "");
        json_decref(j);
        e = r.status >= 500 ? OMNI_E_UPSTREAM : OMNI_E_FORBIDDEN;
        if (r.status < 500)
            break;
    }
    explicit_bzero(r.body.data, r.body.len);
    omni_lapi_resp_release(&r);
    omni_buf_release(&url);
    return e;
}
