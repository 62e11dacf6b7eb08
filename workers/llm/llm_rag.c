/*
 * llm_rag - RAG prompt and citations, semantic cache namespace and text
 * (see llm_rag.h).
 *
 * Pure functions over jansson values; the namespace hash is SHA-256
 * (libcrypto) of the canonical JSON of what shapes the answer, so that
 * every llm worker computes the same one.
 */
#include "llm_rag.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "llm_tools.h"
#include "omni_alloc.h"
#include "omni_buf.h"

/* Largest citation number looked for in an answer. */
#define CITE_MAX 1024

static const char *role_of(json_t *m)
{
    const char *r = json_string_value(json_object_get(m, "role"));
    return r ? r : "";
}

char *llm_rag_query(json_t *messages)
{
    for (size_t i = json_array_size(messages); i-- > 0;) {
        json_t *m = json_array_get(messages, i);
        if (strcmp(role_of(m), "user") != 0)
            continue;
        char *t = llm_content_text(json_object_get(m, "content"), " ");
        if (*t)
            return t;
        omni_free(t);
    }
    return NULL;
}

json_t *llm_rag_system(const char *context)
{
    struct omni_buf b = OMNI_BUF_INIT;
    omni_buf_adds(&b, "Answer the user's question from the numbered context "
                      "below. Cite the passages you use with their numbers in "
                      "square brackets, like [1] or [2][3], right after the "
                      "statement they support. If the context does not hold "
                      "the answer, say so.\n\nContext:\n");
    omni_buf_adds(&b, context);
    json_t *m =
        json_pack("{s:s,s:s%}", "role", "system", "content", b.data, b.len);
    omni_buf_release(&b);
    return m;
}

/* Mark in seen[] every number of the [n], [n][m] and [n, m] markers of
 * s; true if there was one. */
static bool scan_markers(const char *s, bool seen[CITE_MAX + 1])
{
    bool any = false;
    for (const char *p = strchr(s, '['); p; p = strchr(p + 1, '[')) {
        const char *q = p + 1;
        unsigned nums[16];
        size_t n = 0;
        for (;;) {
            while (*q == ' ')
                q++;
            if (*q < '0' || *q > '9')
                break;
            unsigned v = 0;
            while (*q >= '0' && *q <= '9' && v <= CITE_MAX)
                v = v * 10 + (unsigned)(*q++ - '0');
            while (*q >= '0' && *q <= '9')
                q++;
            if (n < sizeof nums / sizeof *nums)
                nums[n++] = v;
            while (*q == ' ')
                q++;
            if (*q != ',')
                break;
            q++;
        }
        if (*q != ']' || n == 0)
            continue;
        for (size_t i = 0; i < n; i++) {
            if (nums[i] >= 1 && nums[i] <= CITE_MAX) {
                seen[nums[i]] = true;
                any = true;
            }
        }
    }
    return any;
}

json_t *llm_rag_cited(const char *answer, json_t *citations)
{
    bool *seen = omni_calloc(CITE_MAX + 1, sizeof *seen);
    json_t *out = json_array();
    size_t i;
    json_t *c;
    if (answer && scan_markers(answer, seen)) {
        json_array_foreach(citations, i, c)
        {
            json_t *n = json_object_get(c, "n");
            json_int_t v = json_is_integer(n) ? json_integer_value(n) : 0;
            if (v >= 1 && v <= CITE_MAX && seen[v])
                json_array_append_new(out, json_deep_copy(c));
        }
    }
    omni_free(seen);
    /* No marker names a retrieved passage: cite them all. */
    if (json_array_size(out) == 0)
        json_array_extend(out, citations);
    return out;
}

static int dump_cb(const char *p, size_t n, void *arg)
{
    omni_buf_add(arg, p, n);
    return 0;
}

void llm_sem_namespace(json_t *req, const char *model, json_t *rag,
                       char ns[LLM_SEM_NS_LEN])
{
    static const char hex[] = "0123456789abcdef";
    static const char *const shaping[] = {"tools", "tool_choice",
                                          "response_format"};
    json_t *key = json_pack("{s:s,s:[]}", "model", model, "system");
    json_t *sys = json_object_get(key, "system");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(req, "messages"), i, m)
    {
        const char *r = role_of(m);
        if (strcmp(r, "system") == 0 || strcmp(r, "developer") == 0)
            json_array_append(sys, json_object_get(m, "content"));
    }
    for (i = 0; i < sizeof shaping / sizeof *shaping; i++) {
        json_t *v = json_object_get(req, shaping[i]);
        if (v)
            json_object_set(key, shaping[i], v);
    }
    if (rag)
        json_object_set(key, "rag", rag);
    struct omni_buf b = OMNI_BUF_INIT;
    json_dump_callback(key, dump_cb, &b, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(key);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(b.data, b.len, md, &mdlen, EVP_sha256(), NULL);
    omni_buf_release(&b);

    size_t k = 0;
    for (const char *p = model; *p && k < 80; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
        ns[k++] = ok ? c : '_';
    }
    ns[k++] = '.';
    for (unsigned j = 0; j < 16 && j < mdlen; j++) {
        ns[k++] = hex[md[j] >> 4];
        ns[k++] = hex[md[j] & 15];
    }
    ns[k] = '\0';
}

char *llm_sem_text(json_t *messages)
{
    struct omni_buf b = OMNI_BUF_INIT;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        if (strcmp(role_of(m), "user") != 0)
            continue;
        char *t = llm_content_text(json_object_get(m, "content"), " ");
        if (*t) {
            if (b.len)
                omni_buf_addch(&b, '\n');
            omni_buf_adds(&b, t);
        }
        omni_free(t);
    }
    return omni_buf_detach(&b, NULL);
}
