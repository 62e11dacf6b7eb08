/*
 * mcp_config - read the mcpServers document MCP desktop clients use.
 *
 *   {"mcpServers": {
 *      "files": {"command": "node", "args": ["server.js", "/srv"],
 *                "env": {"KEY": "v"}},
 *      "remote": {"url": "https://h/mcp", "headers": {"Authorization": ".."}}}}
 *
 * A broken document fails as a whole; a broken entry is refused alone
 * with a message naming it, so one typo does not take every server
 * down.  Entries are kept sorted by name, the order the catalog uses.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"
#include "omni_alloc.h"
#include "omni_log.h"

bool omni_mcp_server_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || name[n - 1] == '_' || strstr(name, "__"))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

static void refuse(struct omni_mcp_config *cfg, const char *name,
                   const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Record why entry name was left out. */
static void refuse(struct omni_mcp_config *cfg, const char *name,
                   const char *fmt, ...)
{
    struct omni_buf msg = OMNI_BUF_INIT;
    va_list ap;
    omni_buf_addf(&msg, "mcp server '%.64s' refused: ", name);
    va_start(ap, fmt);
    omni_buf_vaddf(&msg, fmt, ap);
    va_end(ap);
    cfg->errors =
        omni_realloc(cfg->errors, (cfg->nerrors + 1) * sizeof(char *));
    cfg->errors[cfg->nerrors++] = omni_buf_detach(&msg, NULL);
}

static void free_vec(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        omni_free(v[i]);
    omni_free(v);
}

static void server_release(struct omni_mcp_server_cfg *s)
{
    omni_free(s->name);
    omni_free(s->command);
    omni_free(s->url);
    free_vec(s->argv);
    free_vec(s->env);
    free_vec(s->headers);
    memset(s, 0, sizeof *s);
}

/* An object of strings as "K<sep>V" entries; NULL if a value is not a
 * string (what names it). */
static char **string_map(const json_t *o, const char *sep, bool secret,
                         const char **bad)
{
    size_t n = json_object_size(o), i = 0;
    char **v = omni_calloc(n + 1, sizeof *v);
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)o, k, val)
    {
        if (!json_is_string(val) || !*k || strpbrk(k, "=:\r\n")) {
            *bad = k;
            free_vec(v);
            return NULL;
        }
        const char *s = json_string_value(val);
        if (strpbrk(s, "\r\n") && secret) {
            *bad = k;
            free_vec(v);
            return NULL;
        }
        size_t len = strlen(k) + strlen(sep) + strlen(s) + 1;
        v[i] = omni_malloc(len);
        snprintf(v[i], len, "%s%s%s", k, sep, s);
        if (secret) {
            /* "Bearer TOKEN": the token alone must not leak either. */
            const char *sp = strrchr(s, ' ');
            omni_redact_add(s);
            if (sp && strlen(sp + 1) >= 8)
                omni_redact_add(sp + 1);
        }
        i++;
    }
    return v;
}

/* Fill s from entry e; false (with the entry refused) when it is bad. */
static bool parse_stdio(struct omni_mcp_config *cfg, const char *name,
                        const json_t *e, struct omni_mcp_server_cfg *s)
{
    const json_t *cmd = json_object_get(e, "command");
    const json_t *args = json_object_get(e, "args");
    const json_t *env = json_object_get(e, "env");
    if (!json_is_string(cmd) || !*json_string_value(cmd)) {
        refuse(cfg, name, "'command' must be a non-empty string");
        return false;
    }
    if (args && !json_is_array(args)) {
        refuse(cfg, name, "'args' must be an array of strings");
        return false;
    }
    if (env && !json_is_object(env)) {
        refuse(cfg, name, "'env' must be an object of strings");
        return false;
    }
    size_t nargs = args ? json_array_size(args) : 0;
    s->tp = OMNI_MCP_STDIO;
    s->command = omni_strdup(json_string_value(cmd));
    s->argv = omni_calloc(nargs + 2, sizeof *s->argv);
    s->argv[0] = omni_strdup(s->command);
    for (size_t i = 0; i < nargs; i++) {
        const json_t *a = json_array_get(args, i);
        if (!json_is_string(a)) {
            refuse(cfg, name, "'args[%zu]' is not a string", i);
            return false;
        }
        s->argv[i + 1] = omni_strdup(json_string_value(a));
    }
    const char *bad = NULL;
    json_t *none = json_object();
    s->env = string_map(env ? env : none, "=", false, &bad);
    json_decref(none);
    if (!s->env) {
        refuse(cfg, name, "'env.%.64s' must be a string with a plain name",
               bad);
        return false;
    }
    return true;
}

static bool parse_http(struct omni_mcp_config *cfg, const char *name,
                       const json_t *e, struct omni_mcp_server_cfg *s)
{
    const json_t *url = json_object_get(e, "url");
    const json_t *hdr = json_object_get(e, "headers");
    const char *u = json_is_string(url) ? json_string_value(url) : "";
    if (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) {
        refuse(cfg, name, "'url' must be an http:// or https:// URL");
        return false;
    }
    if (hdr && !json_is_object(hdr)) {
        refuse(cfg, name, "'headers' must be an object of strings");
        return false;
    }
    s->tp = OMNI_MCP_HTTP;
    s->url = omni_strdup(u);
    const char *bad = NULL;
    json_t *none = json_object();
    s->headers = string_map(hdr ? hdr : none, ": ", true, &bad);
    json_decref(none);
    if (!s->headers) {
        refuse(cfg, name, "'headers.%.64s' must be a one-line string", bad);
        return false;
    }
    return true;
}

/* One entry of mcpServers. */
static void parse_entry(struct omni_mcp_config *cfg, const char *name,
                        const json_t *e)
{
    if (!omni_mcp_server_name_ok(name)) {
        refuse(cfg, name,
               "want a name of letters, digits, '-' and '_' "
               "(at most 64, no '__', not ending in '_')");
        return;
    }
    if (!json_is_object(e)) {
        refuse(cfg, name, "entry is not an object");
        return;
    }
    const json_t *dis = json_object_get(e, "disabled");
    if (json_is_true(dis))
        return;
    const json_t *type = json_object_get(e, "type");
    const char *t = json_is_string(type) ? json_string_value(type) : NULL;
    bool has_cmd = json_object_get(e, "command") != NULL;
    bool has_url = json_object_get(e, "url") != NULL;
    if (type && !t) {
        refuse(cfg, name, "'type' must be a string");
        return;
    }
    if (t && strcmp(t, "sse") == 0) {
        refuse(cfg, name,
               "the HTTP+SSE transport (2024-11-05) is not "
               "supported; use Streamable HTTP");
        return;
    }
    if (t && strcmp(t, "stdio") && strcmp(t, "http") &&
        strcmp(t, "streamable-http") && strcmp(t, "streamableHttp")) {
        refuse(cfg, name, "unknown type '%.32s'", t);
        return;
    }
    if (has_cmd == has_url) {
        refuse(cfg, name, "want exactly one of 'command' and 'url'");
        return;
    }
    if (t && (strcmp(t, "stdio") == 0) != has_cmd) {
        refuse(cfg, name, "type '%s' does not match its fields", t);
        return;
    }
    struct omni_mcp_server_cfg s = {0};
    s.name = omni_strdup(name);
    bool ok =
        has_cmd ? parse_stdio(cfg, name, e, &s) : parse_http(cfg, name, e, &s);
    if (!ok) {
        server_release(&s);
        return;
    }
    cfg->servers =
        omni_realloc(cfg->servers, (cfg->n + 1) * sizeof *cfg->servers);
    cfg->servers[cfg->n++] = s;
}

static int by_name(const void *a, const void *b)
{
    const struct omni_mcp_server_cfg *x = a, *y = b;
    return strcmp(x->name, y->name);
}

enum omni_err omni_mcp_config_parse(const char *text, size_t n,
                                    struct omni_mcp_config *cfg,
                                    char err[OMNI_ERR_LEN])
{
    memset(cfg, 0, sizeof *cfg);
    json_error_t je;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, OMNI_ERR_LEN, "bad JSON at line %d column %d: %s",
                 je.line, je.column, je.text);
        return OMNI_E_CONFIG;
    }
    const json_t *servers = json_object_get(root, "mcpServers");
    if (!servers)
        servers = json_object_get(root, "servers");
    if (!json_is_object(servers)) {
        snprintf(err, OMNI_ERR_LEN, "want an object 'mcpServers'");
        json_decref(root);
        return OMNI_E_CONFIG;
    }
    const char *name;
    json_t *e;
    json_object_foreach((json_t *)servers, name, e)
    {
        parse_entry(cfg, name, e);
    }
    json_decref(root);
    if (cfg->n > 1)
        qsort(cfg->servers, cfg->n, sizeof *cfg->servers, by_name);
    return OMNI_OK;
}

enum omni_err omni_mcp_config_load(const char *spec,
                                   struct omni_mcp_config *cfg,
                                   char err[OMNI_ERR_LEN])
{
    memset(cfg, 0, sizeof *cfg);
    const char *p = spec;
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (!*p)
        return OMNI_OK;
    if (*p == '{')
        return omni_mcp_config_parse(p, strlen(p), cfg, err);
    FILE *f = fopen(spec, "r");
    if (!f) {
        snprintf(err, OMNI_ERR_LEN, "cannot open '%s': %s", spec,
                 strerror(errno));
        return OMNI_E_CONFIG;
    }
    struct omni_buf b = OMNI_BUF_INIT;
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < (1 << 24))
        omni_buf_add(&b, chunk, got);
    fclose(f);
    char why[OMNI_ERR_LEN];
    enum omni_err rc = omni_mcp_config_parse(b.data, b.len, cfg, why);
    if (rc != OMNI_OK)
        snprintf(err, OMNI_ERR_LEN, "'%s': %s", spec, why);
    omni_buf_release(&b);
    return rc;
}

void omni_mcp_config_release(struct omni_mcp_config *cfg)
{
    for (size_t i = 0; i < cfg->n; i++)
        server_release(&cfg->servers[i]);
    for (size_t i = 0; i < cfg->nerrors; i++)
        omni_free(cfg->errors[i]);
    omni_free(cfg->servers);
    omni_free(cfg->errors);
    memset(cfg, 0, sizeof *cfg);
}
