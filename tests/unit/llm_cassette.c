/*
 * llm_cassette - VCR.py YAML cassettes -> jansson, through libyaml's
 * document API.  Plain scalars are resolved as YAML 1.1 core types
 * (null, booleans, integers, floats), quoted and block scalars stay
 * strings, so parsed_body comes back as the JSON it was made from.
 */
#include "llm_cassette.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "llm_sse.h"
#include "unit.h"

static json_t *scalar(yaml_node_t *n)
{
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return json_stringn(v, len);
    if (len == 0 || strcmp(v, "null") == 0 || strcmp(v, "~") == 0)
        return json_null();
    if (strcmp(v, "true") == 0)
        return json_true();
    if (strcmp(v, "false") == 0)
        return json_false();
    if (!strchr("+-.0123456789", v[0]) || strpbrk(v, "xXnN"))
        return json_stringn(v, len);
    char *end;
    long long i = strtoll(v, &end, 10);
    if (*end == '\0')
        return json_integer(i);
    double d = strtod(v, &end);
    if (*end == '\0')
        return json_real(d);
    return json_stringn(v, len);
}

static json_t *convert(yaml_document_t *doc, yaml_node_t *n, int depth)
{
    if (!n || depth > 64)
        return json_null();
    switch (n->type) {
    case YAML_SCALAR_NODE: return scalar(n);
    case YAML_SEQUENCE_NODE: {
        json_t *a = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start;
             it < n->data.sequence.items.top; it++)
            json_array_append_new(
                a, convert(doc, yaml_document_get_node(doc, *it), depth + 1));
        return a;
    }
    case YAML_MAPPING_NODE: {
        json_t *o = json_object();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
             p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            if (!k || k->type != YAML_SCALAR_NODE)
                continue;
            json_object_set_new(
                o, (const char *)k->data.scalar.value,
                convert(doc, yaml_document_get_node(doc, p->value), depth + 1));
        }
        return o;
    }
    case YAML_NO_NODE: break;
    }
    return json_null();
}

json_t *llm_cassette_load(const char *rel)
{
    char sub[512];
    snprintf(sub, sizeof sub, "fixtures/%s", rel);
    const char *path = omni_test_shared(sub);
    if (!path)
        return NULL;
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    json_t *out = NULL;
    if (yaml_parser_load(&parser, &doc)) {
        out = convert(&doc, yaml_document_get_root_node(&doc), 0);
        yaml_document_delete(&doc);
    } else {
        fprintf(stderr, "cannot parse '%s': %s\n", path,
                parser.problem ? parser.problem : "?");
    }
    yaml_parser_delete(&parser);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(out);
    return out;
}

static json_t *interaction(json_t *c, size_t i, const char *which)
{
    return json_object_get(
        json_array_get(json_object_get(c, "interactions"), i), which);
}

char *llm_cassette_body(json_t *c, size_t i, size_t *len)
{
    json_t *resp = interaction(c, i, "response");
    json_t *s = json_object_get(json_object_get(resp, "body"), "string");
    json_t *pb = json_object_get(resp, "parsed_body");
    char *out = NULL;
    if (json_is_string(s)) {
        *len = json_string_length(s);
        out = malloc(*len + 1);
        memcpy(out, json_string_value(s), *len + 1);
    } else if (pb) {
        out = json_dumps(pb, JSON_COMPACT | JSON_ENCODE_ANY);
        *len = out ? strlen(out) : 0;
    }
    return out;
}

json_t *llm_cassette_request(json_t *c, size_t i)
{
    json_t *req = interaction(c, i, "request");
    json_t *pb = json_object_get(req, "parsed_body");
    if (pb)
        return json_incref(pb);
    const char *body = json_string_value(json_object_get(req, "body"));
    return body ? json_loads(body, 0, NULL) : NULL;
}

int llm_cassette_status(json_t *c, size_t i)
{
    json_t *st = json_object_get(interaction(c, i, "response"), "status");
    return (int)json_integer_value(json_object_get(st, "code"));
}

struct stream_run {
    const struct llm_provider *p;
    struct llm_stream *s;
    json_t *chunks;
    enum llm_stream_rc rc;
    struct llm_error *err;
};

static void keep_chunk(json_t *chunk, void *arg)
{
    json_array_append(arg, chunk);
}

static int on_event(const struct llm_sse_event *ev, void *arg)
{
    struct stream_run *r = arg;
    CU_ASSERT_EQUAL(r->rc, LLM_STREAM_MORE); /* nothing after DONE */
    r->rc = r->p->stream_event(r->s, ev, keep_chunk, r->chunks, r->err);
    return r->rc == LLM_STREAM_ERROR ? 1 : 0;
}

json_t *llm_test_stream(const struct llm_provider *p,
                        const struct llm_target *t, json_t *req,
                        const char *body, size_t len, size_t piece,
                        enum llm_stream_rc *rc, struct llm_error *err,
                        json_t **usage)
{
    struct stream_run r = {p, p->stream_new(t, req), json_array(),
                           LLM_STREAM_MORE, err};
    struct llm_sse sse;
    llm_sse_init(&sse, 1 << 20);
    for (size_t at = 0; at < len && r.rc != LLM_STREAM_ERROR;) {
        size_t n = len - at < piece ? len - at : piece;
        int frc = llm_sse_feed(&sse, body + at, n, on_event, &r);
        CU_ASSERT(frc == 0 || frc == 1);
        at += n;
    }
    llm_sse_release(&sse);
    json_t *u = p->stream_usage(r.s);
    *usage = u ? json_deep_copy(u) : NULL;
    p->stream_free(r.s);
    *rc = r.rc;
    return r.chunks;
}

static void append_str(json_t *obj, const char *key, json_t *frag)
{
    if (!json_is_string(frag))
        return;
    const char *old = json_string_value(json_object_get(obj, key));
    size_t ol = old ? strlen(old) : 0, fl = json_string_length(frag);
    char *both = malloc(ol + fl + 1);
    memcpy(both, old ? old : "", ol);
    memcpy(both + ol, json_string_value(frag), fl);
    json_object_set_new(obj, key, json_stringn(both, ol + fl));
    free(both);
}

json_t *llm_test_assemble(json_t *chunks)
{
    json_t *out =
        json_pack("{s:s,s:s,s:[],s:n,s:n,s:i}", "content", "",
                  "reasoning_content", "", "tool_calls", "finish_reason",
                  "usage", "nchunks", (int)json_array_size(chunks));
    json_t *calls = json_object_get(out, "tool_calls");
    size_t i;
    json_t *c;
    json_array_foreach(chunks, i, c)
    {
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(c, "object")),
                               "chat.completion.chunk");
        CU_ASSERT(json_is_string(json_object_get(c, "id")));
        CU_ASSERT(json_is_string(json_object_get(c, "model")));
        CU_ASSERT(json_is_integer(json_object_get(c, "created")));
        json_t *choices = json_object_get(c, "choices");
        CU_ASSERT(json_is_array(choices));
        json_t *u = json_object_get(c, "usage");
        if (json_is_object(u))
            json_object_set(out, "usage", u);
        json_t *ch = json_array_get(choices, 0);
        if (!ch)
            continue;
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(ch, "index")), 0);
        CU_ASSERT(json_object_get(ch, "finish_reason") != NULL);
        json_t *fr = json_object_get(ch, "finish_reason");
        if (json_is_string(fr))
            json_object_set(out, "finish_reason", fr);
        json_t *d = json_object_get(ch, "delta");
        CU_ASSERT(json_is_object(d));
        json_t *role = json_object_get(d, "role");
        if (role) {
            CU_ASSERT_EQUAL(i, 0); /* only the first chunk has a role */
            json_object_set(out, "role", role);
        }
        append_str(out, "content", json_object_get(d, "content"));
        append_str(out, "reasoning_content",
                   json_object_get(d, "reasoning_content"));
        size_t k;
        json_t *tc;
        json_array_foreach(json_object_get(d, "tool_calls"), k, tc)
        {
            size_t idx =
                (size_t)json_integer_value(json_object_get(tc, "index"));
            CU_ASSERT(idx <= json_array_size(calls));
            if (idx == json_array_size(calls)) {
                /* the first fragment of a call names it */
                CU_ASSERT(json_is_string(json_object_get(tc, "id")));
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(tc, "type")), "function");
                json_array_append_new(
                    calls,
                    json_pack("{s:O,s:O,s:s}", "id", json_object_get(tc, "id"),
                              "name",
                              json_object_get(json_object_get(tc, "function"),
                                              "name"),
                              "arguments", ""));
            }
            append_str(
                json_array_get(calls, idx), "arguments",
                json_object_get(json_object_get(tc, "function"), "arguments"));
        }
    }
    return out;
}
