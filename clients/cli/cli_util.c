/*
 * cli_util - option splitting, connection and request helpers of the
 * `omni` command.  Requests go through omni_call (libomni); errors come
 * back as "CODE: message" and are printed as "omni: CODE: message".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "omni_alloc.h"
#include "omni_buf.h"

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("omni: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_usage(const char *line)
{
    fprintf(stderr, "usage: omni %s\n(see omni --help)\n", line);
    return CLI_USAGE;
}

static const struct cli_opt *find_opt(const struct cli_opt *opts,
                                      const char *arg)
{
    for (; opts->name; opts++)
        if (!strcmp(arg, opts->name) ||
            (opts->alias && !strcmp(arg, opts->alias)))
            return opts;
    return NULL;
}

int cli_parse(int argc, char **argv, const struct cli_opt *opts, char **pos,
              int maxpos, int *npos)
{
    bool only_pos = false;
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && !strcmp(a, "--")) {
            only_pos = true;
            continue;
        }
        if (only_pos || a[0] != '-' || !a[1]) {
            if (*npos == maxpos) {
                cli_fail("unexpected argument '%s'", a);
                return CLI_USAGE;
            }
            pos[(*npos)++] = argv[i];
            continue;
        }
        const struct cli_opt *o = find_opt(opts, a);
        if (!o) {
            cli_fail("unknown option '%s'", a);
            return CLI_USAGE;
        }
        if (o->flag) {
            *o->flag = true;
            continue;
        }
        if (i + 1 == argc) {
            cli_fail("option '%s' needs a value", a);
            return CLI_USAGE;
        }
        *o->value = argv[++i];
    }
    return 0;
}

int cli_number(const char *opt, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        cli_fail("bad value '%s' for %s: want a number in [%ld, %ld]", s, opt,
                 min, max);
        return CLI_USAGE;
    }
    *out = v;
    return 0;
}

int cli_connect(struct cli *cli)
{
    if (cli->c)
        return 0;
    char err[512];
    cli->c = omni_connect(cli->socket, err, sizeof err);
    return cli->c ? 0 : cli_fail("%s", err);
}

int cli_call(struct cli *cli, const struct cli_req *r, char **out,
             size_t *outlen)
{
    if (cli_connect(cli))
        return 1;
    struct omni_request req = {.service = r->service,
                               .op = r->op,
                               .body = r->body,
                               .body_len = r->body_len,
                               .stream = r->stream,
                               .idempotent = r->idempotent,
                               .timeout_ms = r->timeout_ms};
    char *body = NULL;
    size_t n = 0;
    if (omni_call(cli->c, &req, r->on_chunk, r->arg, &body, &n, NULL) < 0)
        return cli_fail("%s", omni_last_error(cli->c));
    if (out)
        *out = body;
    else
        free(body);
    if (outlen)
        *outlen = n;
    return 0;
}

int cli_call_json(struct cli *cli, const char *service, const char *op,
                  json_t *body, json_t **out)
{
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text)
        return cli_fail("cannot encode the request body as JSON");
    struct cli_req r = {
        .service = service, .op = op, .body = text, .body_len = strlen(text)};
    char *reply = NULL;
    size_t n = 0;
    int rc = cli_call(cli, &r, &reply, &n);
    free(text);
    if (rc)
        return rc;
    if (out) {
        json_error_t je;
        *out = json_loadb(reply, n, 0, &je);
        if (!*out)
            rc = cli_fail("cannot parse the reply of %s/%s: %s", service, op,
                          je.text);
    }
    free(reply);
    return rc;
}

int cli_call_show(struct cli *cli, const char *service, const char *op,
                  json_t *body, bool raw, json_t **out)
{
    *out = NULL;
    json_t *reply = NULL;
    int rc = cli_call_json(cli, service, op, body, &reply);
    json_decref(body);
    if (rc)
        return rc;
    if (!raw) {
        *out = reply;
        return 0;
    }
    json_dumpf(reply, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(reply);
    return 0;
}

void cli_print_json(const char *text, size_t n)
{
    json_error_t je;
    json_t *j = json_loadb(text, n, JSON_DECODE_ANY, &je);
    if (j) {
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
        json_decref(j);
    } else {
        fwrite(text, 1, n, stdout);
    }
    if (!n || (j || text[n - 1] != '\n'))
        fputc('\n', stdout);
}

char *cli_read_all(FILE *f, size_t *len)
{
    struct omni_buf b = OMNI_BUF_INIT;
    char chunk[65536];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0)
        omni_buf_add(&b, chunk, r);
    if (ferror(f)) {
        omni_buf_release(&b);
        errno = EIO;
        return NULL;
    }
    return omni_buf_detach(&b, len);
}
