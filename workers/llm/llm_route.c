/*
 * llm_route - provider table and model routing (see llm_route.h).
 *
 * Fails at load time on a malformed llm.providers entry (the worker then
 * exits at start-up with the reason), and at request time with a
 * BAD_REQUEST or NOT_FOUND naming the model.
 */
#include "llm_route.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "omni_alloc.h"
#include "omni_cfg.h"
#include "omni_log.h"

#define OPENAI_DEFAULT_URL    "https://api.openai.com/v1"
#define ANTHROPIC_DEFAULT_URL "https://api.anthropic.com"

static char *url_dup(const char *s, size_t n)
{
    while (n > 0 && s[n - 1] == '/')
        n--;
    return omni_strndup(s, n);
}

static struct llm_prov_cfg *add(struct llm_routes *rt, const char *name,
                                size_t name_len)
{
    rt->v = omni_realloc(rt->v, (rt->n + 1) * sizeof *rt->v);
    struct llm_prov_cfg *p = &rt->v[rt->n++];
    memset(p, 0, sizeof *p);
    p->name = omni_strndup(name, name_len);
    return p;
}

static const struct llm_prov_cfg *find(const struct llm_routes *rt,
                                       const char *name, size_t n)
{
    for (size_t i = 0; i < rt->n; i++)
        if (strlen(rt->v[i].name) == n && memcmp(rt->v[i].name, name, n) == 0)
            return &rt->v[i];
    return NULL;
}

/* openai or anthropic from their cfg rows. */
static void add_std(struct llm_routes *rt, const struct llm_provider *prov,
                    const char *name, const char *def_url, const char *key_var)
{
    char row[64];
    struct llm_prov_cfg *p = add(rt, name, strlen(name));
    p->prov = prov;
    snprintf(row, sizeof row, "%s.api_key", name);
    p->api_key = omni_strdup(omni_cfg_str(row));
    snprintf(row, sizeof row, "%s.base_url", name);
    const char *url = omni_cfg_str(row);
    p->base_url = url_dup(url, strlen(url));
    p->key_var = omni_strdup(key_var);
    p->enabled = *p->api_key || strcmp(p->base_url, def_url) != 0;
}

static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
            return false;
    return true;
}

static bool var_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128 || isdigit((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

/* One "name=base_url[|KEY_VAR]" entry, already trimmed. */
static enum omni_err add_entry(struct llm_routes *rt, const char *s, size_t n,
                               char err[OMNI_ERR_LEN])
{
    const char *eq = memchr(s, '=', n), *end = s + n;
    if (!eq || !name_ok(s, (size_t)(eq - s))) {
        snprintf(err, OMNI_ERR_LEN,
                 "bad llm.providers entry '%.*s': want name=base_url[|KEY_VAR]",
                 (int)(n > 80 ? 80 : n), s);
        return OMNI_E_CONFIG;
    }
    if (find(rt, s, (size_t)(eq - s))) {
        snprintf(err, OMNI_ERR_LEN,
                 "duplicate provider '%.*s' in llm.providers", (int)(eq - s),
                 s);
        return OMNI_E_CONFIG;
    }
    const char *url = eq + 1, *bar = memchr(url, '|', (size_t)(end - url));
    const char *url_end = bar ? bar : end;
    size_t url_len = (size_t)(url_end - url);
    if (!((url_len > 7 && strncmp(url, "http://", 7) == 0) ||
          (url_len > 8 && strncmp(url, "https://", 8) == 0))) {
        snprintf(err, OMNI_ERR_LEN,
                 "bad base URL for provider '%.*s': want http:// or https://",
                 (int)(eq - s), s);
        return OMNI_E_CONFIG;
    }
    if (bar && !var_ok(bar + 1, (size_t)(end - bar - 1))) {
        snprintf(err, OMNI_ERR_LEN,
                 "bad key variable for provider '%.*s': want a variable name",
                 (int)(eq - s), s);
        return OMNI_E_CONFIG;
    }
    struct llm_prov_cfg *p = add(rt, s, (size_t)(eq - s));
    p->prov = &llm_openai;
    p->base_url = url_dup(url, url_len);
    if (bar) {
        p->key_var = omni_strndup(bar + 1, (size_t)(end - bar - 1));
        /* The key variable is named by the user, so it cannot be a row of
         * the settings table: read it here and register it as a secret. */
        const char *key = getenv(p->key_var);
        p->api_key = omni_strdup(key ? key : "");
        omni_redact_add(p->api_key);
        p->enabled = *p->api_key != '\0';
    } else {
        p->api_key = omni_strdup("");
        p->enabled = true;
    }
    return OMNI_OK;
}

enum omni_err llm_routes_add_spec(struct llm_routes *rt, const char *spec,
                                  char err[OMNI_ERR_LEN])
{
    const char *s = spec;
    while (*s) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        const char *a = s, *b = end;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a) {
            enum omni_err rc = add_entry(rt, a, (size_t)(b - a), err);
            if (rc != OMNI_OK)
                return rc;
        }
        s = comma ? comma + 1 : end;
    }
    return OMNI_OK;
}

enum omni_err llm_routes_load(struct llm_routes *rt, char err[OMNI_ERR_LEN])
{
    memset(rt, 0, sizeof *rt);
    add_std(rt, &llm_openai, "openai", OPENAI_DEFAULT_URL, "OPENAI_API_KEY");
    add_std(rt, &llm_anthropic, "anthropic", ANTHROPIC_DEFAULT_URL,
            "ANTHROPIC_API_KEY");
    rt->v[1].version = omni_strdup(omni_cfg_str("anthropic.version"));
    rt->default_model = omni_strdup(omni_cfg_str("llm.default_model"));
    enum omni_err rc =
        llm_routes_add_spec(rt, omni_cfg_str("llm.providers"), err);
    if (rc != OMNI_OK)
        llm_routes_release(rt);
    return rc;
}

void llm_routes_release(struct llm_routes *rt)
{
    for (size_t i = 0; i < rt->n; i++) {
        struct llm_prov_cfg *p = &rt->v[i];
        omni_free(p->name);
        omni_free(p->base_url);
        omni_free(p->api_key);
        omni_free(p->version);
        omni_free(p->key_var);
    }
    omni_free(rt->v);
    omni_free(rt->default_model);
    memset(rt, 0, sizeof *rt);
}

size_t llm_routes_enabled(const struct llm_routes *rt)
{
    size_t n = 0;
    for (size_t i = 0; i < rt->n; i++)
        n += rt->v[i].enabled;
    return n;
}

enum omni_err llm_route(const struct llm_routes *rt, const char *model,
                        struct llm_target *t, char err[OMNI_ERR_LEN])
{
    if (!model || !*model)
        model = rt->default_model;
    if (!model || !*model) {
        snprintf(err, OMNI_ERR_LEN,
                 "missing field 'model' (no default model is configured)");
        return OMNI_E_BAD_REQUEST;
    }
    const char *slash = strchr(model, '/');
    if (!slash || slash == model || !slash[1]) {
        snprintf(err, OMNI_ERR_LEN, "bad model '%.128s': want provider/model",
                 model);
        return OMNI_E_BAD_REQUEST;
    }
    const struct llm_prov_cfg *p = find(rt, model, (size_t)(slash - model));
    if (!p) {
        snprintf(err, OMNI_ERR_LEN, "unknown provider '%.*s' in model '%.128s'",
                 (int)(slash - model > 64 ? 64 : slash - model), model, model);
        return OMNI_E_NOT_FOUND;
    }
    if (!p->enabled) {
        snprintf(err, OMNI_ERR_LEN,
                 "provider '%s' of model '%.128s' is not configured (set %s)",
                 p->name, model, p->key_var);
        return OMNI_E_NOT_FOUND;
    }
    memset(t, 0, sizeof *t);
    t->prov = p->prov;
    t->name = p->name;
    t->model = slash + 1;
    t->base_url = p->base_url;
    t->api_key = p->api_key;
    t->version = p->version;
    return OMNI_OK;
}
