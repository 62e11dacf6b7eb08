/*
 * llm_route - the configured providers and "provider/model" routing.
 *
 * Providers are zero-config: openai and anthropic from their standard
 * variables (through omni_cfg), and any number of OpenAI-compatible
 * ones from llm.providers (OMNI_PROVIDERS), "name=base_url[|KEY_VAR]"
 * separated by commas.  A provider is enabled when its key is set; a
 * keyless one when its base URL was given explicitly (a local server,
 * an emulator).  Keys read here are registered with the log redactor.
 */
#ifndef LLM_ROUTE_H
#define LLM_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "omni_err.h"
#include "providers/provider.h"

struct llm_prov_cfg {
    char *name; /* "openai", "groq" */
    const struct llm_provider *prov;
    char *base_url; /* without a trailing '/' */
    char *api_key;  /* "" when keyless */
    char *version;  /* anthropic-version, or NULL */
    char *key_var;  /* the variable that enables it, for messages */
    bool enabled;
};

struct llm_routes {
    struct llm_prov_cfg *v;
    size_t n;
    char *default_model; /* "" when unset */
};

/* Load openai, anthropic and llm.providers from the configuration.
 * On failure (a malformed llm.providers) err names the bad entry and
 * rt is left empty. */
enum omni_err llm_routes_load(struct llm_routes *rt, char err[OMNI_ERR_LEN]);
/* Add the OpenAI-compatible providers of spec (llm.providers syntax). */
enum omni_err llm_routes_add_spec(struct llm_routes *rt, const char *spec,
                                  char err[OMNI_ERR_LEN]);
void llm_routes_release(struct llm_routes *rt);
/* How many providers are enabled. */
size_t llm_routes_enabled(const struct llm_routes *rt);

/* Resolve model ("provider/model"; NULL or "" = the default model) into
 * t.  t borrows from rt and from model, which must outlive it.  Errors:
 * BAD_REQUEST (no model, no '/'), NOT_FOUND (unknown or disabled
 * provider); err names the model. */
enum omni_err llm_route(const struct llm_routes *rt, const char *model,
                        struct llm_target *t, char err[OMNI_ERR_LEN]);

#endif
