/*
 * secrets - provider keys from AWS Secrets Manager.
 *
 * GetSecretValue over its JSON API (POST / with X-Amz-Target
 * secretsmanager.GetSecretValue, body {"SecretId": ARN}), signed with
 * libcurl's SigV4 ("aws:amz:REGION:secretsmanager") from the function's
 * credentials; the session token goes in x-amz-security-token.  The
 * SecretString must be a JSON object; its string members whose names
 * are environment-variable names become (name, value) pairs.
 *
 * Values are secret: they never appear in errors, and release wipes
 * them.  The caller registers them with the log redactor.
 */
#ifndef OMNI_SECRETS_H
#define OMNI_SECRETS_H

#include <stddef.h>

#include "omni_err.h"

struct omni_secrets_cfg {
    const char *arn;
    const char *region; /* "" or NULL: the region in the ARN */
    const char *
        endpoint; /* "" or NULL: https://secretsmanager.REGION.amazonaws.com/ */
    const char *key_id;     /* AWS_ACCESS_KEY_ID */
    const char *secret_key; /* AWS_SECRET_ACCESS_KEY */
    const char *token;      /* AWS_SESSION_TOKEN, "" or NULL: none */
    long timeout_ms;        /* per attempt */
};

struct omni_secrets {
    char **names;
    char **values;
    size_t n;
    size_t skipped; /* members that were not strings or not valid names */
};

/* Fetch and parse cfg->arn into out (reset first; release it even on
 * failure).  Tries twice on a network error or a 5xx. */
enum omni_err omni_secrets_fetch(const struct omni_secrets_cfg *cfg,
                                 struct omni_secrets *out,
                                 char err[OMNI_ERR_LEN]);

/* Parse a GetSecretValue response body into out. */
enum omni_err omni_secrets_parse(const char *body, size_t n,
                                 struct omni_secrets *out,
                                 char err[OMNI_ERR_LEN]);

void omni_secrets_release(struct omni_secrets *s);

/* The region field of an ARN (arn:PARTITION:SERVICE:REGION:...) into
 * out; "" when it has none. */
void omni_secrets_arn_region(const char *arn, char *out, size_t n);

#endif
