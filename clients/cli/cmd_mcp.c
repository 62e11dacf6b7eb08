/*
 * cmd_mcp - `omni mcp tools` and `omni mcp call`: the mcp service.
 *
 * A tool's own failure comes back as a result with isError true; we
 * print it like any result and exit 1 so scripts can tell.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int mcp_tools(struct cli *cli, int argc, char **argv)
{
    bool raw = false;
    struct cli_opt opts[] = {{"--json", NULL, NULL, &raw}, {0}};
    char *pos[1];
    int npos;
    if (cli_parse(argc, argv, opts, pos, 0, &npos))
        return cli_usage("mcp tools [--json]");
    json_t *body = json_object(), *out = NULL;
    int rc = cli_call_show(cli, "mcp", "tools", body, raw, &out);
    if (rc || !out)
        return rc;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(out, "tools"), i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        const char *desc = json_string_value(json_object_get(t, "description"));
        if (!name)
            continue;
        /* One line per tool: the description's first line only. */
        int dn = desc ? (int)strcspn(desc, "\r\n") : 0;
        printf("%-32s %.*s\n", name, dn, desc ? desc : "");
    }
    json_decref(out);
    return 0;
}

static int mcp_call(struct cli *cli, int argc, char **argv)
{
    static const char use[] = "mcp call NAME JSON";
    struct cli_opt opts[] = {{0}};
    char *pos[2];
    int npos;
    if (cli_parse(argc, argv, opts, pos, 2, &npos) || npos < 1)
        return cli_usage(use);
    json_error_t je;
    json_t *args = npos == 2 ? json_loads(pos[1], 0, &je) : json_object();
    if (!args)
        return cli_fail("arguments are not JSON: %s", je.text);
    json_t *body = json_pack("{s:s, s:o}", "name", pos[0], "arguments", args);
    if (!body)
        return cli_fail("tool name is not valid UTF-8");
    json_t *out = NULL;
    int rc = cli_call_json(cli, "mcp", "call", body, &out);
    json_decref(body);
    if (rc)
        return rc;
    json_dumpf(out, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    rc = json_is_true(json_object_get(out, "isError")) ? 1 : 0;
    json_decref(out);
    return rc;
}

int cli_cmd_mcp(struct cli *cli, int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "tools"))
        return mcp_tools(cli, argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "call"))
        return mcp_call(cli, argc - 1, argv + 1);
    return cli_usage("mcp tools [--json] | mcp call NAME JSON");
}
