/*
 * cmd_llm - `omni chat`, `omni embed`, `omni models`: the llm service.
 *
 * Bodies are OpenAI-shaped (protocol/PROTOCOL.md section 5).  A streamed
 * chat prints each chunk's choices[0].delta.content as it arrives; a
 * chunk that is not the expected JSON is skipped, not fatal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* -m, else $OMNI_DEFAULT_MODEL, else NULL (the worker chooses). */
static const char *pick_model(const char *opt)
{
    if (opt)
        return opt;
    const char *env = getenv("OMNI_DEFAULT_MODEL");
    return env && *env ? env : NULL;
}

/* Join argv with spaces: several words make one prompt or text. */
static char *join(int argc, char **argv)
{
    size_t n = 1;
    for (int i = 0; i < argc; i++)
        n += strlen(argv[i]) + 1;
    char *s = malloc(n), *p = s;
    if (!s)
        return NULL;
    for (int i = 0; i < argc; i++) {
        size_t k = strlen(argv[i]);
        if (i)
            *p++ = ' ';
        memcpy(p, argv[i], k);
        p += k;
    }
    *p = '\0';
    return s;
}

/* The first choice's text: delta.content (chunks) or message.content. */
static const char *choice_text(json_t *j, const char *part)
{
    json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    return json_string_value(
        json_object_get(json_object_get(c, part), "content"));
}

struct chat_out {
    bool any;  /* printed something */
    char last; /* last byte printed */
};

static void on_chat_chunk(const void *p, size_t n, void *arg)
{
    struct chat_out *o = arg;
    json_t *j = json_loadb(p, n, 0, NULL);
    const char *text = j ? choice_text(j, "delta") : NULL;
    if (text && *text) {
        fputs(text, stdout);
        fflush(stdout);
        o->any = true;
        o->last = text[strlen(text) - 1];
    }
    json_decref(j);
}

int cli_cmd_llm_chat(struct cli *cli, int argc, char **argv)
{
    static const char use[] = "chat [-m MODEL] [--no-stream] PROMPT...";
    const char *model = NULL;
    bool no_stream = false;
    struct cli_opt opts[] = {{"--model", "-m", &model, NULL},
                             {"--no-stream", NULL, NULL, &no_stream},
                             {0}};
    char *pos[256];
    int npos;
    if (cli_parse(argc, argv, opts, pos, 256, &npos) || npos == 0)
        return cli_usage(use);
    char *prompt = join(npos, pos);
    if (!prompt)
        return cli_fail("out of memory");
    json_t *body = json_object();
    model = pick_model(model);
    if (model)
        json_object_set_new(body, "model", json_string(model));
    json_t *msg = json_pack("{s:s, s:s}", "role", "user", "content", prompt);
    free(prompt);
    if (!msg) {
        json_decref(body);
        return cli_fail("the prompt is not valid UTF-8");
    }
    json_object_set_new(body, "messages", json_pack("[o]", msg));
    json_object_set_new(body, "stream", json_boolean(!no_stream));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct chat_out o = {false, '\n'};
    struct cli_req r = {.service = "llm",
                        .op = "chat",
                        .body = text,
                        .body_len = strlen(text),
                        .stream = !no_stream,
                        .on_chunk = on_chat_chunk,
                        .arg = &o};
    char *out = NULL;
    size_t n = 0;
    int rc = cli_call(cli, &r, &out, &n);
    free(text);
    if (rc) {
        if (o.any && o.last != '\n')
            fputc('\n', stdout);
        return rc;
    }
    if (no_stream) {
        json_t *j = json_loadb(out, n, 0, NULL);
        const char *answer = j ? choice_text(j, "message") : NULL;
        if (answer)
            puts(answer);
        else
            cli_print_json(out, n);
        json_decref(j);
    } else {
        fputc('\n', stdout);
    }
    free(out);
    return 0;
}

int cli_cmd_llm_embed(struct cli *cli, int argc, char **argv)
{
    static const char use[] = "embed [-m MODEL] [--json] TEXT...";
    const char *model = NULL;
    bool raw = false;
    struct cli_opt opts[] = {
        {"--model", "-m", &model, NULL}, {"--json", NULL, NULL, &raw}, {0}};
    char *pos[256];
    int npos;
    if (cli_parse(argc, argv, opts, pos, 256, &npos) || npos == 0)
        return cli_usage(use);
    json_t *body = json_object();
    model = pick_model(model);
    if (model)
        json_object_set_new(body, "model", json_string(model));
    json_t *input = json_array();
    for (int i = 0; i < npos; i++)
        if (json_array_append_new(input, json_string(pos[i]))) {
            json_decref(input);
            json_decref(body);
            return cli_fail("text %d is not valid UTF-8", i + 1);
        }
    json_object_set_new(body, "input", input);
    json_t *out = NULL;
    int rc = cli_call_show(cli, "llm", "embeddings", body, raw, &out);
    if (rc || !out)
        return rc;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(out, "data"), i, d)
    {
        json_t *vec = json_object_get(d, "embedding");
        size_t dim = json_array_size(vec);
        if (json_is_string(vec)) {
            printf("%zu: base64, %zu characters\n", i,
                   strlen(json_string_value(vec)));
            continue;
        }
        printf("%zu: %zu dims [", i, dim);
        for (size_t k = 0; k < dim && k < 8; k++)
            printf("%s%.6g", k ? ", " : "",
                   json_number_value(json_array_get(vec, k)));
        printf("%s]\n", dim > 8 ? ", ..." : "");
    }
    json_decref(out);
    return 0;
}

int cli_cmd_llm_models(struct cli *cli, int argc, char **argv)
{
    char *pos[1];
    int npos;
    struct cli_opt opts[] = {{0}};
    if (cli_parse(argc, argv, opts, pos, 0, &npos))
        return cli_usage("models");
    json_t *body = json_object(), *out = NULL;
    int rc = cli_call_json(cli, "llm", "models", body, &out);
    json_decref(body);
    if (rc)
        return rc;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(out, "data"), i, m)
    {
        const char *id = json_string_value(json_object_get(m, "id"));
        if (id)
            puts(id);
    }
    json_decref(out);
    return 0;
}
