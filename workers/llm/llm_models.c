/*
 * llm_models - the "models" operation: every enabled provider's model
 * list, fetched at once and merged into one OpenAI list whose ids are
 * "provider/model" (what chat accepts back).
 *
 * A provider that fails (no answer, an error status, a reply that does
 * not parse) is left out with a warning; the answer is the list of the
 * others, empty if none answered.  Owns one transfer per provider.
 */
#include <string.h>

#include "llm.h"
#include "omni_alloc.h"
#include "omni_log.h"

/* Largest model list accepted from one provider. */
#define LIST_MAX (4u << 20)

struct models;

struct sub {
    struct models *m;
    struct llm_target t;
    struct llm_xfer *x;
    struct omni_buf body;
};

struct models {
    struct llm_op op; /* first: the engine sees a struct llm_op */
    json_t *data;
    size_t pending;
    size_t n;
    struct sub subs[];
};

static void models_free(struct models *m)
{
    llm_op_end(&m->op);
    for (size_t i = 0; i < m->n; i++) {
        llm_xfer_cancel(m->subs[i].x);
        omni_buf_release(&m->subs[i].body);
    }
    json_decref(m->data);
    omni_free(m);
}

static void cancel_op(struct llm_op *op)
{
    models_free((struct models *)op);
}

static void answer(struct models *m)
{
    json_t *list = json_pack("{s:s, s:O}", "object", "list", "data", m->data);
    char *s = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    omni_wreq_final(m->op.r, s, strlen(s));
    free(s);
    m->op.r = NULL;
    models_free(m);
}

/* Add one provider's entries, with ids made "provider/model". */
static void merge(struct models *m, const struct sub *s, json_t *list)
{
    json_t *arr = json_is_array(list) ? list : json_object_get(list, "data");
    size_t i;
    json_t *it;
    size_t plen = strlen(s->t.name);
    json_array_foreach(arr, i, it)
    {
        const char *id = json_string_value(json_object_get(it, "id"));
        if (!id || !*id)
            continue;
        json_t *o = json_object();
        if (strncmp(id, s->t.name, plen) == 0 && id[plen] == '/') {
            json_object_set_new(o, "id", json_string(id));
        } else {
            struct omni_buf b = OMNI_BUF_INIT;
            omni_buf_addf(&b, "%s/%s", s->t.name, id);
            json_object_set_new(o, "id", json_string(b.data));
            omni_buf_release(&b);
        }
        json_object_set_new(o, "object", json_string("model"));
        json_t *owner = json_object_get(it, "owned_by");
        json_object_set_new(o, "owned_by",
                            json_is_string(owner) ? json_copy(owner)
                                                  : json_string(s->t.name));
        json_t *created = json_object_get(it, "created");
        if (json_is_integer(created))
            json_object_set(o, "created", created);
        json_array_append_new(m->data, o);
    }
}

static int on_data(void *arg, const char *p, size_t n)
{
    struct sub *s = arg;
    if (s->body.len + n > LIST_MAX) {
        omni_warn("models: provider '%s' sent a list over %u bytes; "
                  "skipping it",
                  s->t.name, LIST_MAX);
        s->x = NULL;
        if (--s->m->pending == 0)
            answer(s->m);
        return 1;
    }
    omni_buf_add(&s->body, p, n);
    return 0;
}

static void on_done(void *arg, const struct llm_xfer_result *res)
{
    struct sub *s = arg;
    struct models *m = s->m;
    s->x = NULL;
    char why[OMNI_ERR_LEN] = "";
    if (res->end != LLM_XFER_OK) {
        omni_warn("models: provider '%s' failed: %s", s->t.name, res->error);
        llm_stats_upstream_error(m->op.e, 0);
    } else if (res->status < 200 || res->status >= 300) {
        omni_warn("models: provider '%s' answered status %d", s->t.name,
                  res->status);
        llm_stats_upstream_error(m->op.e, res->status);
    } else {
        json_t *list =
            s->t.prov->parse_models(&s->t, s->body.data, s->body.len, why);
        if (list)
            merge(m, s, list);
        else
            omni_warn("models: provider '%s' sent a bad list: %s", s->t.name,
                      why);
        json_decref(list);
    }
    if (--m->pending == 0)
        answer(m);
}

void llm_models_start(struct llm_engine *e, struct omni_wreq *r)
{
    const struct llm_routes *rt = &e->routes;
    struct models *m = omni_calloc(1, sizeof *m + rt->n * sizeof *m->subs);
    llm_op_begin(&m->op, e, r, cancel_op);
    m->data = json_array();
    omni_wreq_set_data(r, m);
    for (size_t i = 0; i < rt->n; i++) {
        const struct llm_prov_cfg *p = &rt->v[i];
        if (!p->enabled || !p->prov->build_models)
            continue;
        struct sub *s = &m->subs[m->n++];
        s->m = m;
        omni_buf_init(&s->body);
        s->t = (struct llm_target){
            .prov = p->prov,
            .name = p->name,
            .model = "",
            .base_url = p->base_url,
            .api_key = p->api_key,
            .version = p->version,
        };
        struct llm_http_req hr = {0};
        char err[OMNI_ERR_LEN] = "";
        if (p->prov->build_models(&s->t, &hr, err) == OMNI_OK)
            s->x = llm_http_start(e->http, &hr, omni_wreq_deadline(r), on_data,
                                  on_done, s, err);
        llm_http_req_release(&hr);
        if (!s->x) {
            omni_warn("models: cannot ask provider '%s': %s", p->name, err);
            continue;
        }
        m->pending++;
        e->stats.upstream_calls++;
    }
    if (m->pending == 0)
        answer(m);
}
