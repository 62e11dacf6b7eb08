/*
 * cli.h - what the parts of the `omni` command share.
 *
 * main.c parses the global options and dispatches; each cmd_*.c file
 * holds the subcommands of one service.  A subcommand returns the exit
 * status: 0 done, 1 the request failed (already reported on stderr as
 * "omni: CODE: message"), 2 a usage error.
 */
#ifndef OMNI_CLI_H
#define OMNI_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "omni.h"

#define CLI_USAGE 2

struct cli {
    const char *socket; /* -s, or NULL for the default */
    omni_client *c;     /* opened by cli_connect */
};

/* One option of a subcommand: --name / -alias, with a value or a flag. */
struct cli_opt {
    const char *name;
    const char *alias;
    const char **value; /* set when the option takes a value */
    bool *flag;         /* set when it is a flag */
};

/* Split argv into options (from opts, ended by a zeroed entry) and
 * positional arguments (into pos, at most maxpos; *npos gets the
 * count).  Options may come anywhere; "--" ends them.  Returns 0, or
 * CLI_USAGE after a message on stderr. */
int cli_parse(int argc, char **argv, const struct cli_opt *opts, char **pos,
              int maxpos, int *npos);

/* Print "omni: " + message to stderr; returns 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print a usage line to stderr; returns CLI_USAGE. */
int cli_usage(const char *line);

/* Connect to the broker unless already connected: 0, or 1 after an
 * error message. */
int cli_connect(struct cli *cli);

struct cli_req {
    const char *service, *op;
    const char *body;
    size_t body_len;
    bool stream, idempotent;
    uint32_t timeout_ms;
    void (*on_chunk)(const void *p, size_t n, void *arg);
    void *arg;
};

/* Send one request and wait for its end.  Returns 0 with the FINAL
 * body in *out (NUL-terminated, free() it; may be NULL to drop), or 1
 * after printing "omni: CODE: message". */
int cli_call(struct cli *cli, const struct cli_req *r, char **out,
             size_t *outlen);
/* As cli_call with a JSON body; *out parsed as JSON (NULL to drop). */
int cli_call_json(struct cli *cli, const char *service, const char *op,
                  json_t *body, json_t **out);

/* cli_call_json, then free body.  With raw, print the reply as indented
 * JSON and set *out to NULL; otherwise the caller owns *out. */
int cli_call_show(struct cli *cli, const char *service, const char *op,
                  json_t *body, bool raw, json_t **out);

/* Read all of f into a new NUL-terminated buffer (omni_free it), its
 * length in *len.  NULL with errno set when reading fails. */
char *cli_read_all(FILE *f, size_t *len);

/* Print JSON text: indented when it parses, as is otherwise. */
void cli_print_json(const char *text, size_t n);
/* Parse a number option; 0 or CLI_USAGE after a message. */
int cli_number(const char *opt, const char *s, long min, long max, long *out);

int cli_cmd_llm_chat(struct cli *cli, int argc, char **argv);
int cli_cmd_llm_embed(struct cli *cli, int argc, char **argv);
int cli_cmd_llm_models(struct cli *cli, int argc, char **argv);
int cli_cmd_mcp(struct cli *cli, int argc, char **argv);
int cli_cmd_rag(struct cli *cli, int argc, char **argv);

#endif
