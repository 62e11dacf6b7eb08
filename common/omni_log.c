/*
 * omni_log - line logging with structural secret redaction.
 *
 * A line is formatted into a buffer, redacted, then written with one
 * write(2), so lines from several processes sharing stderr never
 * interleave mid-line.
 */
#include "omni_log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "omni_alloc.h"

#define REDACTED    "(redacted)"
#define MAX_SECRETS 64

static const char *prog_name = "omni";
static enum omni_log_level cur_level = OMNI_LOG_INFO;
static bool as_json = true;
static int log_fd = 2;
static char *secrets[MAX_SECRETS];
static size_t nsecrets;

static const char *const level_names[] = {"debug", "info", "warning", "error"};

/* The standard variables that hold credentials, masked from the start. */
static const char *const secret_vars[] = {
    "OPENAI_API_KEY",       "ANTHROPIC_API_KEY",     "GEMINI_API_KEY",
    "AZURE_OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",    "OMNI_CLIENT_KEYS",      "OMNI_REDIS_URL",
};

void omni_log_init(const char *prog)
{
    const char *slash = strrchr(prog, '/');
    prog_name = slash ? slash + 1 : prog;
    for (size_t i = 0; i < sizeof secret_vars / sizeof *secret_vars; i++) {
        const char *v = getenv(secret_vars[i]);
        if (v && strcmp(secret_vars[i], "OMNI_REDIS_URL") == 0) {
            /* Only the password part of a Redis URL is secret. */
            const char *at = strrchr(v, '@');
            const char *colon = at ? memchr(v + 8, ':', (size_t)(at - v)) : 0;
            if (at && colon && colon < at) {
                char *pw = omni_strndup(colon + 1, (size_t)(at - colon - 1));
                omni_redact_add(pw);
                omni_free(pw);
            }
        } else if (v) {
            omni_redact_add(v);
        }
    }
    const char *lvl = getenv("OMNI_LOG_LEVEL");
    if (lvl && omni_log_level_parse(lvl) >= 0)
        cur_level = (enum omni_log_level)omni_log_level_parse(lvl);
    const char *fmt = getenv("OMNI_LOG_FORMAT");
    if (fmt)
        as_json = strcmp(fmt, "text") != 0;
}

void omni_log_set_level(enum omni_log_level level)
{
    cur_level = level;
}

enum omni_log_level omni_log_get_level(void)
{
    return cur_level;
}

void omni_log_set_json(bool json)
{
    as_json = json;
}

void omni_log_set_fd(int fd)
{
    log_fd = fd;
}

int omni_log_level_parse(const char *s)
{
    if (strcmp(s, "debug") == 0)
        return OMNI_LOG_DEBUG;
    if (strcmp(s, "info") == 0)
        return OMNI_LOG_INFO;
    if (strcmp(s, "warn") == 0 || strcmp(s, "warning") == 0)
        return OMNI_LOG_WARN;
    if (strcmp(s, "error") == 0)
        return OMNI_LOG_ERROR;
    return -1;
}

void omni_redact_add(const char *secret)
{
    if (!secret || strlen(secret) < 4 || nsecrets == MAX_SECRETS)
        return;
    for (size_t i = 0; i < nsecrets; i++)
        if (strcmp(secrets[i], secret) == 0)
            return;
    secrets[nsecrets++] = omni_strdup(secret);
}

void omni_redact_clear(void)
{
    for (size_t i = 0; i < nsecrets; i++) {
        explicit_bzero(secrets[i], strlen(secrets[i]));
        omni_free(secrets[i]);
    }
    nsecrets = 0;
}

/* Replace b[at, at+n) with the marker. */
static void splice(struct omni_buf *b, size_t at, size_t n)
{
    size_t m = sizeof REDACTED - 1;
    omni_buf_reserve(b, m);
    memmove(b->data + at + m, b->data + at + n, b->len - at - n + 1);
    memcpy(b->data + at, REDACTED, m);
    b->len = b->len - n + m;
}

static bool tokch(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' ||
           c == '/' || c == '+' || c == '=';
}

/* Length of the token that starts at p (credential alphabet). */
static size_t toklen(const char *p)
{
    size_t n = 0;
    while (p[n] && tokch(p[n]))
        n++;
    return n;
}

/* Case-insensitive prefix test. */
static bool iprefix(const char *p, const char *word)
{
    return strncasecmp(p, word, strlen(word)) == 0;
}

/* Shapes of credentials we mask even when nobody registered them:
 * "Bearer X", "sk-X" (OpenAI, Anthropic), AWS key ids, and the value
 * after an api-key style header or JSON field name. */
static void redact_shapes(struct omni_buf *b)
{
    static const char *const labels[] = {
        "x-api-key", "api-key",       "api_key",
        "apikey",    "authorization", "x-amz-security-token",
        "secret",    "password",      "token",
    };
    for (size_t i = 0; i < b->len; i++) {
        char *p = b->data + i;
        if (i > 0 && tokch(p[-1]))
            continue;
        if (iprefix(p, "bearer ") && toklen(p + 7) >= 4) {
            splice(b, i + 7, toklen(p + 7));
            i += 7 + sizeof REDACTED - 2;
            continue;
        }
        if ((strncmp(p, "sk-", 3) == 0 && toklen(p) >= 12) ||
            ((strncmp(p, "AKIA", 4) == 0 || strncmp(p, "ASIA", 4) == 0) &&
             toklen(p) >= 16)) {
            splice(b, i, toklen(p));
            i += sizeof REDACTED - 2;
            continue;
        }
        for (size_t l = 0; l < sizeof labels / sizeof *labels; l++) {
            size_t ln = strlen(labels[l]);
            if (!iprefix(p, labels[l]) || isalnum((unsigned char)p[ln]) ||
                p[ln] == '-' || p[ln] == '_')
                continue;
            /* Skip separators: quote, colon, equals, spaces.  A label
             * needs a colon or an equals sign before its value, so prose
             * such as "unexpected token near" is left alone. */
            size_t j = ln;
            bool assign = false;
            while (p[j] == '"' || p[j] == '\'' || p[j] == ':' || p[j] == '=' ||
                   p[j] == ' ') {
                assign |= p[j] == ':' || p[j] == '=';
                j++;
            }
            if (!assign || iprefix(p + j, "(redacted)"))
                break;
            if (iprefix(p + j, "bearer "))
                j += 7;
            size_t t = toklen(p + j);
            if (t >= 4) {
                splice(b, i + j, t);
                i += j + sizeof REDACTED - 2;
            }
            break;
        }
    }
}

void omni_redact(struct omni_buf *b)
{
    for (size_t s = 0; s < nsecrets; s++) {
        size_t n = strlen(secrets[s]);
        char *hit;
        size_t from = 0;
        while (from < b->len &&
               (hit = memmem(b->data + from, b->len - from, secrets[s], n))) {
            size_t at = (size_t)(hit - b->data);
            splice(b, at, n);
            from = at + sizeof REDACTED - 1;
        }
    }
    redact_shapes(b);
}

void omni_redact_str(const char *s, char *out, size_t n)
{
    struct omni_buf b = OMNI_BUF_INIT;
    omni_buf_adds(&b, s);
    omni_redact(&b);
    if (n) {
        size_t m = b.len < n - 1 ? b.len : n - 1;
        memcpy(out, b.data, m);
        out[m] = '\0';
    }
    omni_buf_release(&b);
}

static void vlog(enum omni_log_level level, const char *fmt, va_list ap)
{
    struct omni_buf msg = OMNI_BUF_INIT, line = OMNI_BUF_INIT;
    omni_buf_vaddf(&msg, fmt, ap);
    omni_redact(&msg);
    if (as_json) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        omni_buf_addf(&line, "{\"ts\":%lld.%03ld,\"level\":\"%s\",",
                      (long long)ts.tv_sec, ts.tv_nsec / 1000000,
                      level_names[level]);
        omni_buf_adds(&line, "\"prog\":");
        omni_buf_add_json_str(&line, prog_name, strlen(prog_name));
        omni_buf_addf(&line, ",\"pid\":%d,\"msg\":", (int)getpid());
        omni_buf_add_json_str(&line, msg.data, msg.len);
        omni_buf_adds(&line, "}\n");
    } else {
        omni_buf_addf(&line, "%s[%d]: ", prog_name, (int)getpid());
        if (level != OMNI_LOG_INFO)
            omni_buf_addf(&line, "%s: ", level_names[level]);
        omni_buf_add(&line, msg.data, msg.len);
        omni_buf_addch(&line, '\n');
    }
    ssize_t rc = write(log_fd, line.data, line.len);
    (void)rc;
    omni_buf_release(&msg);
    omni_buf_release(&line);
}

void omni_log(enum omni_log_level level, const char *fmt, ...)
{
    if (level < cur_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

void omni_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(OMNI_LOG_ERROR, fmt, ap);
    va_end(ap);
    exit(1);
}
