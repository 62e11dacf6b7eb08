/*
 * omni - the command-line client of the Omni broker.
 *
 * Parses the global options, dispatches to a subcommand, and holds the
 * broker-level ones (ping, stats) and the raw `call`.  Every request
 * goes through libomni; an error event is printed as
 * "omni: CODE: message" and the command exits 1 (2 on a usage error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "omni_alloc.h"
#include "omni_time.h"

static const char help[] =
    "usage: omni [-s SOCKET] COMMAND [ARGS]\n"
    "\n"
    "  ping [-w SECS]            exit 0 when every service has a ready\n"
    "                            worker; -w waits up to SECS for it\n"
    "  stats                     broker counters (JSON)\n"
    "  call SERVICE OP JSON [--stream] [--timeout MS] [--idempotent]\n"
    "                            send one request (JSON '-' reads stdin);\n"
    "                            prints chunk bodies, then the final body\n"
    "  chat [-m MODEL] [--no-stream] PROMPT...\n"
    "                            chat with a model (llm/chat)\n"
    "  embed [-m MODEL] [--json] TEXT...\n"
    "                            embeddings: dimension and first values\n"
    "  models                    model ids, one per line\n"
    "  mcp tools [--json]        MCP tools: name and description\n"
    "  mcp call NAME JSON        call an MCP tool; prints its result\n"
    "                            (exit 1 when the result has isError)\n"
    "  rag ingest COLLECTION FILE...\n"
    "                            add files to a collection (text or binary\n"
    "                            such as PDF), one request per file\n"
    "  rag query COLLECTION TEXT [-k K] [--mode hybrid|bm25|vector] "
    "[--json]\n"
    "                            rank, score, document and excerpt\n"
    "\n"
    "options:\n"
    "  -s, --socket SOCKET       broker socket (default: $OMNI_SOCKET, else\n"
    "                            $XDG_RUNTIME_DIR/omni/omni.sock,\n"
    "                            /run/omni/omni.sock as root,\n"
    "                            /tmp/omni-$UID/omni.sock)\n"
    "  -h, --help                this text\n"
    "\n"
    "environment: OMNI_SOCKET, OMNI_DEFAULT_MODEL (chat and embed)\n"
    "exit status: 0 done, 1 the request failed, 2 usage error\n";

/* One try of omni/ping: 0 ready, 1 not (why in err). */
static int ping_once(struct cli *cli, char *err, size_t errlen)
{
    if (!cli->c) {
        cli->c = omni_connect(cli->socket, err, errlen);
        if (!cli->c)
            return 1;
    }
    struct omni_request req = {.service = "omni",
                               .op = "ping",
                               .body = "{}",
                               .body_len = 2,
                               .timeout_ms = 5000};
    if (omni_call(cli->c, &req, NULL, NULL, NULL, NULL, NULL) == 0)
        return 0;
    snprintf(err, errlen, "%s", omni_last_error(cli->c));
    /* Reconnect next time: the broker may be restarting. */
    omni_close(cli->c);
    cli->c = NULL;
    return 1;
}

static int cmd_ping(struct cli *cli, int argc, char **argv)
{
    const char *wait = NULL;
    struct cli_opt opts[] = {{"--wait", "-w", &wait, NULL}, {0}};
    char *pos[1];
    int npos;
    if (cli_parse(argc, argv, opts, pos, 0, &npos))
        return cli_usage("ping [-w SECS]");
    long secs = 0;
    if (wait && cli_number("-w", wait, 0, 86400, &secs))
        return CLI_USAGE;
    int64_t end = omni_now_ms() + secs * 1000;
    char err[512];
    for (;;) {
        if (ping_once(cli, err, sizeof err) == 0) {
            puts("ready");
            return 0;
        }
        if (omni_now_ms() >= end)
            return cli_fail("%s", err);
        usleep(100 * 1000);
    }
}

static int cmd_stats(struct cli *cli, int argc, char **argv)
{
    char *pos[1];
    int npos;
    struct cli_opt opts[] = {{0}};
    if (cli_parse(argc, argv, opts, pos, 0, &npos))
        return cli_usage("stats");
    struct cli_req r = {
        .service = "omni", .op = "stats", .body = "{}", .body_len = 2};
    char *out;
    size_t n;
    if (cli_call(cli, &r, &out, &n))
        return 1;
    cli_print_json(out, n);
    free(out);
    return 0;
}

struct printed {
    size_t bytes; /* chunk bytes written */
    char last;    /* last byte written */
};

/* Write a chunk straight to stdout, unbuffered. */
static void put_chunk(const void *p, size_t n, void *arg)
{
    struct printed *o = arg;
    if (!n)
        return;
    fwrite(p, 1, n, stdout);
    fflush(stdout);
    o->bytes += n;
    o->last = ((const char *)p)[n - 1];
}

static int cmd_call(struct cli *cli, int argc, char **argv)
{
    static const char use[] =
        "call SERVICE OP JSON [--stream] [--timeout MS] [--idempotent]";
    bool stream = false, idem = false;
    const char *timeout = NULL;
    struct cli_opt opts[] = {{"--stream", NULL, NULL, &stream},
                             {"--idempotent", NULL, NULL, &idem},
                             {"--timeout", "-t", &timeout, NULL},
                             {0}};
    char *pos[3];
    int npos;
    if (cli_parse(argc, argv, opts, pos, 3, &npos) || npos != 3)
        return cli_usage(use);
    long ms = 0;
    if (timeout && cli_number("--timeout", timeout, 0, UINT32_MAX, &ms))
        return CLI_USAGE;
    char *body = pos[2];
    size_t len = strlen(body);
    char *in = NULL;
    if (!strcmp(body, "-")) {
        in = cli_read_all(stdin, &len);
        if (!in)
            return cli_fail("cannot read the body from stdin");
        body = in;
    }
    struct printed o = {0, '\n'};
    struct cli_req r = {.service = pos[0],
                        .op = pos[1],
                        .body = body,
                        .body_len = len,
                        .stream = stream,
                        .idempotent = idem,
                        .timeout_ms = (uint32_t)ms,
                        .on_chunk = put_chunk,
                        .arg = &o};
    char *out;
    size_t n;
    int rc = cli_call(cli, &r, &out, &n);
    omni_free(in);
    if (rc)
        return rc;
    /* omni_call returns the chunks and the final body joined; the
     * chunks went out as they came, so only the final part is left. */
    if (n > o.bytes) {
        fwrite(out + o.bytes, 1, n - o.bytes, stdout);
        o.last = out[n - 1];
    }
    if (o.last != '\n')
        fputc('\n', stdout);
    free(out);
    return 0;
}

static int dispatch(struct cli *cli, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(struct cli *, int, char **);
    } cmds[] = {
        {"ping", cmd_ping},           {"stats", cmd_stats},
        {"call", cmd_call},           {"chat", cli_cmd_llm_chat},
        {"embed", cli_cmd_llm_embed}, {"models", cli_cmd_llm_models},
        {"mcp", cli_cmd_mcp},         {"rag", cli_cmd_rag},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        if (!strcmp(argv[0], cmds[i].name))
            return cmds[i].run(cli, argc - 1, argv + 1);
    cli_fail("unknown command '%s' (see omni --help)", argv[0]);
    return CLI_USAGE;
}

int main(int argc, char **argv)
{
    struct cli cli = {0};
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help, stdout);
            return 0;
        }
        if (!strcmp(a, "-s") || !strcmp(a, "--socket")) {
            if (i + 1 == argc) {
                cli_fail("option '%s' needs a value", a);
                return CLI_USAGE;
            }
            cli.socket = argv[i + 1];
            i += 2;
            continue;
        }
        cli_fail("unknown option '%s' (see omni --help)", a);
        return CLI_USAGE;
    }
    if (i == argc) {
        fputs(help, stderr);
        return CLI_USAGE;
    }
    int rc = dispatch(&cli, argc - i, argv + i);
    omni_close(cli.c);
    if (fflush(stdout) != 0 && !rc)
        rc = cli_fail("cannot write the output");
    return rc;
}
