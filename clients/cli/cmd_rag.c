/*
 * cmd_rag - `omni rag ingest` and `omni rag query`: the rag service.
 *
 * Ingest sends one request per file: a text file (valid UTF-8, no NUL)
 * as {"id","text","metadata"}, anything else (PDF, ...) as
 * {"id","content_base64","content_type"}.  Progress goes to stderr: a
 * bar redrawn in place on a terminal, one line per file otherwise.  A
 * file that fails is reported and the rest still go; the exit status is
 * then 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "omni_alloc.h"

#define EXCERPT 100 /* bytes of text shown per query result */

/* Read a whole file; NULL with errno set on failure. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *p = cli_read_all(f, len);
    int keep = errno;
    fclose(f);
    errno = keep;
    return p;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t k = s[0] < 0x80   ? 1
               : s[0] < 0xc2 ? 0
               : s[0] < 0xe0 ? 2
               : s[0] < 0xf0 ? 3
               : s[0] < 0xf5 ? 4
                             : 0;
    if (!k || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return k;
}

static bool is_text(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        size_t k = s[i] ? utf8_len(s + i, n - i) : 0;
        if (!k)
            return false;
        i += k;
    }
    return true;
}

static const char *content_type(const char *path, const char *p, size_t n)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".pdf", "application/pdf"},
        {".docx", "application/vnd.openxmlformats-officedocument."
                  "wordprocessingml.document"},
        {".html", "text/html"},
        {".htm", "text/html"},
        {".txt", "text/plain"},
        {".md", "text/markdown"},
    };
    if (n >= 5 && !memcmp(p, "%PDF-", 5))
        return "application/pdf";
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof *types; i++)
        if (!strcasecmp(dot, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

/* Standard base64 (RFC 4648) with padding; caller frees. */
static char *base64(const unsigned char *s, size_t n)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        *o++ = abc[v >> 18 & 63];
        *o++ = abc[v >> 12 & 63];
        *o++ = i + 1 < n ? abc[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? abc[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* The document object for one file, or NULL after a message. */
static json_t *document(const char *path)
{
    size_t n;
    char *p = slurp(path, &n);
    if (!p) {
        cli_fail("cannot read '%s': %s", path, strerror(errno));
        return NULL;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    json_t *doc;
    if (is_text(p, n)) {
        doc = json_pack("{s:s, s:s%, s:{s:s}}", "id", base, "text", p, n,
                        "metadata", "path", path);
    } else {
        char *b64 = base64((const unsigned char *)p, n);
        doc =
            b64 ? json_pack("{s:s, s:s, s:s, s:{s:s}}", "id", base,
                            "content_base64", b64, "content_type",
                            content_type(path, p, n), "metadata", "path", path)
                : NULL;
        free(b64);
    }
    omni_free(p);
    if (!doc)
        cli_fail("cannot encode '%s' (is its name valid UTF-8?)", path);
    return doc;
}

/* Draw the progress bar in place (terminal only). */
static void bar(int done, int total, const char *name)
{
    enum { W = 30 };
    int fill = total ? done * W / total : W;
    fprintf(stderr, "\r[%.*s%*s] %d/%d %-.40s\033[K", fill,
            "##############################", W - fill, "", done, total, name);
    fflush(stderr);
}

/* "ingested" or "unchanged", as the reply lists the document id. */
static const char *outcome(json_t *reply, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(reply, "unchanged"), i, v)
    {
        const char *s = json_string_value(v);
        if (!s)
            s = json_string_value(json_object_get(v, "id"));
        if (s && !strcmp(s, id))
            return "unchanged";
    }
    return "ingested";
}

static int rag_ingest(struct cli *cli, int argc, char **argv)
{
    static const char use[] = "rag ingest COLLECTION FILE...";
    struct cli_opt opts[] = {{0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, failed = 0;
    if (!pos)
        return cli_fail("out of memory");
    if (cli_parse(argc, argv, opts, pos, argc, &npos) || npos < 2) {
        free(pos);
        return cli_usage(use);
    }
    bool tty = isatty(STDERR_FILENO);
    int total = npos - 1;
    for (int i = 1; i < npos; i++) {
        const char *path = pos[i];
        if (tty)
            bar(i - 1, total, path);
        json_t *doc = document(path), *out = NULL;
        if (!doc) {
            failed++;
            continue;
        }
        const char *id = json_string_value(json_object_get(doc, "id"));
        char *idc = strdup(id);
        json_t *body =
            json_pack("{s:s, s:[o]}", "collection", pos[0], "documents", doc);
        int rc = body ? cli_call_json(cli, "rag", "ingest", body, &out)
                      : cli_fail("collection name is not valid UTF-8");
        json_decref(body);
        if (rc) {
            failed++;
        } else if (!tty) {
            fprintf(stderr, "%s '%s' as '%s'\n", outcome(out, idc), path, idc);
        }
        free(idc);
        json_decref(out);
    }
    if (tty) {
        bar(total, total, "");
        fputc('\n', stderr);
    }
    fprintf(stderr, "%d of %d files ingested into '%s'\n", total - failed,
            total, pos[0]);
    free(pos);
    return failed ? 1 : 0;
}

/* Print at most EXCERPT bytes of text on one line, whole characters. */
static void excerpt(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text), i = 0;
    bool space = false;
    while (i < n && i < EXCERPT) {
        size_t k = utf8_len(s + i, n - i);
        if (!k)
            break;
        if (s[i] == '\n' || s[i] == '\r' || s[i] == '\t' || s[i] == ' ') {
            if (!space)
                putchar(' ');
            space = true;
        } else {
            fwrite(s + i, 1, k, stdout);
            space = false;
        }
        i += k;
    }
    fputs(i < n ? "...\n" : "\n", stdout);
}

static int rag_query(struct cli *cli, int argc, char **argv)
{
    static const char use[] = "rag query COLLECTION TEXT [-k K] "
                              "[--mode hybrid|bm25|vector] [--json]";
    const char *k = NULL, *mode = NULL;
    bool raw = false;
    struct cli_opt opts[] = {{"--top-k", "-k", &k, NULL},
                             {"--mode", NULL, &mode, NULL},
                             {"--json", NULL, NULL, &raw},
                             {0}};
    char *pos[2];
    int npos;
    if (cli_parse(argc, argv, opts, pos, 2, &npos) || npos != 2)
        return cli_usage(use);
    long top = 5;
    if (k && cli_number("-k", k, 1, 1000, &top))
        return CLI_USAGE;
    if (mode && strcmp(mode, "hybrid") && strcmp(mode, "bm25") &&
        strcmp(mode, "vector")) {
        cli_fail("bad --mode '%s': want hybrid, bm25 or vector", mode);
        return CLI_USAGE;
    }
    json_t *body = json_pack("{s:s, s:s, s:i}", "collection", pos[0], "query",
                             pos[1], "top_k", (json_int_t)top);
    if (!body)
        return cli_fail("collection or query is not valid UTF-8");
    if (mode)
        json_object_set_new(body, "mode", json_string(mode));
    json_t *out = NULL;
    int rc = cli_call_show(cli, "rag", "query", body, raw, &out);
    if (rc || !out)
        return rc;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(out, "results"), i, r)
    {
        const char *doc = json_string_value(json_object_get(r, "document_id"));
        const char *text = json_string_value(json_object_get(r, "text"));
        printf("%2zu. %.4f  %s  ", i + 1,
               json_number_value(json_object_get(r, "score")), doc ? doc : "?");
        excerpt(text ? text : "");
    }
    json_decref(out);
    return 0;
}

int cli_cmd_rag(struct cli *cli, int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "ingest"))
        return rag_ingest(cli, argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "query"))
        return rag_query(cli, argc - 1, argv + 1);
    return cli_usage("rag ingest COLLECTION FILE... | rag query COLLECTION "
                     "TEXT [-k K] [--mode M]");
}
