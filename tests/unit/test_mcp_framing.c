/*
 * test_mcp_framing - the MCP worker's byte-level layers: newline
 * framing (split at every boundary, over-long lines), the SSE parser,
 * JSON-RPC classification, and id matching in any order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"
#include "omni_alloc.h"
#include "unit.h"

/* ---- lines ---- */

struct got {
    struct omni_buf all; /* lines joined by '|' */
    int nlines;
    int nlong;
    size_t long_n;
    struct omni_buf edges; /* edge bytes seen by too_long */
};

static void got_line(void *arg, const char *s, size_t n)
{
    struct got *g = arg;
    omni_buf_add(&g->all, s, n);
    omni_buf_addch(&g->all, '|');
    g->nlines++;
}

static void got_long(void *arg, size_t n, const char *edge, size_t edgen,
                     bool end)
{
    struct got *g = arg;
    if (!end) {
        g->nlong++;
        g->long_n = n;
    }
    omni_buf_add(&g->edges, end ? "E:" : "S:", 2);
    omni_buf_add(&g->edges, edge, edgen);
    omni_buf_addch(&g->edges, ';');
}

static void got_init(struct got *g)
{
    memset(g, 0, sizeof *g);
    omni_buf_init(&g->all);
    omni_buf_init(&g->edges);
}

static void got_release(struct got *g)
{
    omni_buf_release(&g->all);
    omni_buf_release(&g->edges);
}

/* Feed in in pieces split at a and b; compare with want. */
static void feed3(const char *in, size_t a, size_t b, size_t max,
                  const char *want, int want_long)
{
    struct omni_mcp_lines l;
    struct got g;
    size_t n = strlen(in);
    got_init(&g);
    omni_mcp_lines_init(&l, max);
    omni_mcp_lines_feed(&l, in, a, got_line, got_long, &g);
    omni_mcp_lines_feed(&l, in + a, b - a, got_line, got_long, &g);
    omni_mcp_lines_feed(&l, in + b, n - b, got_line, got_long, &g);
    if (strcmp(g.all.data, want) || g.nlong != want_long)
        fprintf(stderr, "split %zu/%zu: got '%s' (%d long), want '%s' (%d)\n",
                a, b, g.all.data, g.nlong, want, want_long);
    CU_ASSERT_STRING_EQUAL(g.all.data, want);
    CU_ASSERT_EQUAL(g.nlong, want_long);
    omni_mcp_lines_release(&l);
    got_release(&g);
}

static void test_lines_every_boundary(void)
{
    static const struct {
        const char *in;
        size_t max;
        const char *want;
        int nlong;
    } cases[] = {
        {"{\"a\":1}\n{\"b\":2}\n", 64, "{\"a\":1}|{\"b\":2}|", 0},
        {"a\r\nbb\r\n\r\n  \nccc\n", 64, "a|bb|ccc|", 0},
        {"one\ntwo", 64, "one|", 0}, /* unfinished line kept back */
        {"short\n0123456789ABCDEF\nok\n", 8, "short|ok|", 1},
        {"0123456789\n0123456789\nx\n", 8, "x|", 2},
        {"12345678\n123456789\n", 8, "12345678|", 1}, /* max exactly */
        {"\n\n\n", 4, "", 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        size_t n = strlen(cases[c].in);
        for (size_t a = 0; a <= n; a++)
            for (size_t b = a; b <= n; b++)
                feed3(cases[c].in, a, b, cases[c].max, cases[c].want,
                      cases[c].nlong);
    }
}

static void test_lines_byte_by_byte(void)
{
    const char *in = "{\"id\":1}\n{\"id\":2,\"x\":\"y\"}\r\n";
    struct omni_mcp_lines l;
    struct got g;
    got_init(&g);
    omni_mcp_lines_init(&l, 1024);
    for (size_t i = 0; in[i]; i++)
        omni_mcp_lines_feed(&l, in + i, 1, got_line, got_long, &g);
    CU_ASSERT_STRING_EQUAL(g.all.data, "{\"id\":1}|{\"id\":2,\"x\":\"y\"}|");
    CU_ASSERT_EQUAL(g.nlines, 2);
    omni_mcp_lines_release(&l);
    got_release(&g);
}

static void test_lines_long_edges(void)
{
    /* The head is reported at once, the tail when the line ends, so an
     * id at either end of a too-long reply can be found. */
    struct omni_mcp_lines l;
    struct got g;
    got_init(&g);
    omni_mcp_lines_init(&l, 16);
    const char *a = "{\"id\":7,\"result\":";
    omni_mcp_lines_feed(&l, a, strlen(a), got_line, got_long, &g);
    CU_ASSERT_EQUAL(g.nlong, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(g.edges.data, "S:{\"id\":7"));
    const char *b = "\"xxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"id\":9}\nnext\n";
    omni_mcp_lines_feed(&l, b, strlen(b), got_line, got_long, &g);
    CU_ASSERT_PTR_NOT_NULL(strstr(g.edges.data, "E:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g.edges.data, "\"id\":9};"));
    CU_ASSERT_STRING_EQUAL(g.all.data, "next|");
    CU_ASSERT_EQUAL(g.long_n, strlen(a));
    omni_mcp_lines_release(&l);
    got_release(&g);
}

/* ---- SSE ---- */

static void got_event(void *arg, const char *event, const char *data, size_t n)
{
    struct got *g = arg;
    omni_buf_adds(&g->all, event);
    omni_buf_addch(&g->all, '=');
    omni_buf_add(&g->all, data, n);
    omni_buf_addch(&g->all, '|');
    g->nlines++;
}

static void test_sse_every_boundary(void)
{
    const char *in = "id: p1\ndata:\n\n" /* priming */
                     ": comment\nevent: message\nid: 2\n"
                     "data: {\"a\":1}\n\n"
                     "data: line1\r\ndata:line2\r\n\r\n"
                     "event: other\ndata: x\n\n"
                     "retry: 100\ndata: last\n\n";
    const char *want = "message={\"a\":1}|message=line1\nline2|other=x|"
                       "message=last|";
    size_t n = strlen(in);
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b += 3) {
            struct omni_mcp_sse s;
            struct got g;
            got_init(&g);
            omni_mcp_sse_init(&s, 1024);
            omni_mcp_sse_feed(&s, in, a, got_event, got_long, &g);
            omni_mcp_sse_feed(&s, in + a, b - a, got_event, got_long, &g);
            omni_mcp_sse_feed(&s, in + b, n - b, got_event, got_long, &g);
            if (strcmp(g.all.data, want))
                fprintf(stderr, "sse split %zu/%zu: got '%s'\n", a, b,
                        g.all.data);
            CU_ASSERT_STRING_EQUAL(g.all.data, want);
            omni_mcp_sse_release(&s);
            got_release(&g);
        }
    }
}

static void test_sse_too_big(void)
{
    struct omni_mcp_sse s;
    struct got g;
    got_init(&g);
    omni_mcp_sse_init(&s, 8);
    const char *in = "data: 0123456789abcdef\n\ndata: ok\n\n"
                     "data: 1234\ndata: 5678\n\ndata: fine\n\n";
    omni_mcp_sse_feed(&s, in, strlen(in), got_event, got_long, &g);
    CU_ASSERT_STRING_EQUAL(g.all.data, "message=ok|message=fine|");
    CU_ASSERT(g.nlong >= 2);
    omni_mcp_sse_release(&s);
    got_release(&g);
}

/* ---- JSON-RPC ---- */

static void test_classify(void)
{
    static const struct {
        const char *json;
        enum omni_mcp_kind want;
    } cases[] = {
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
         OMNI_MCP_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"x\"}",
         OMNI_MCP_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}",
         OMNI_MCP_NOTIFICATION},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}", OMNI_MCP_RESPONSE},
        {"{\"result\":{},\"jsonrpc\":\"2.0\",\"id\":3}", OMNI_MCP_RESPONSE},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700}}",
         OMNI_MCP_RESPONSE},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":{}}", OMNI_MCP_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{},\"error\":{}}",
         OMNI_MCP_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":3}", OMNI_MCP_INVALID},
        {"{\"jsonrpc\":\"1.0\",\"id\":3,\"result\":1}", OMNI_MCP_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"x\"}",
         OMNI_MCP_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"x\"}", OMNI_MCP_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"method\":7}", OMNI_MCP_INVALID},
        {"[1,2]", OMNI_MCP_INVALID},
        {"\"x\"", OMNI_MCP_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *m = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        enum omni_mcp_kind k = omni_mcp_classify(m);
        if (k != cases[i].want)
            fprintf(stderr, "classify %s: got %d, want %d\n", cases[i].json, k,
                    cases[i].want);
        CU_ASSERT_EQUAL(k, cases[i].want);
        json_decref(m);
    }
}

static void test_dump_one_line(void)
{
    json_t *m = omni_mcp_request(5, "tools/call",
                                 json_pack("{s:s}", "text", "a\nb\r\nc"));
    size_t n;
    char *s = omni_mcp_dump(m, &n);
    CU_ASSERT_PTR_NULL(memchr(s, '\n', n));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"id\":5"));
    omni_free(s);
    json_decref(m);
    json_t *e = omni_mcp_error(NULL, -32601, "no %s", "such");
    CU_ASSERT(json_is_null(json_object_get(e, "id")));
    CU_ASSERT_EQUAL(json_integer_value(
                        json_object_get(json_object_get(e, "error"), "code")),
                    -32601);
    json_decref(e);
}

static void test_id_value(void)
{
    int64_t v = 0;
    json_t *i = json_integer(42), *s = json_string("17"),
           *bad = json_string("1x"), *neg = json_string("-3"),
           *r = json_real(1.0);
    CU_ASSERT(omni_mcp_id_value(i, &v) && v == 42);
    CU_ASSERT(omni_mcp_id_value(s, &v) && v == 17);
    CU_ASSERT(!omni_mcp_id_value(bad, &v));
    CU_ASSERT(!omni_mcp_id_value(neg, &v));
    CU_ASSERT(!omni_mcp_id_value(r, &v));
    json_decref(i);
    json_decref(s);
    json_decref(bad);
    json_decref(neg);
    json_decref(r);
}

/* Replies come back in any order: every one finds its request, once. */
static void test_ptab_out_of_order(void)
{
    enum { N = 1000 };
    struct omni_mcp_ptab t;
    struct omni_mcp_pending *p = omni_calloc(N, sizeof *p);
    int64_t *order = omni_calloc(N, sizeof *order);
    omni_mcp_ptab_init(&t);
    for (int i = 0; i < N; i++) {
        omni_mcp_ptab_add(&t, &p[i]);
        CU_ASSERT_EQUAL(p[i].id, i + 1);
        order[i] = p[i].id;
    }
    CU_ASSERT_EQUAL(t.count, N);
    srand(7);
    for (int i = N - 1; i > 0; i--) {
        int j = rand() % (i + 1);
        int64_t x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
    for (int i = 0; i < N; i++) {
        struct omni_mcp_pending *q = omni_mcp_ptab_find(&t, order[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q);
        CU_ASSERT_EQUAL(q->id, order[i]);
        omni_mcp_ptab_remove(&t, q);
        CU_ASSERT_PTR_NULL(omni_mcp_ptab_find(&t, order[i]));
    }
    CU_ASSERT_EQUAL(t.count, 0);
    CU_ASSERT_PTR_NULL(omni_mcp_ptab_find(&t, 5));
    CU_ASSERT_PTR_NULL(omni_mcp_ptab_pop(&t));
    /* pop empties a table holding a few */
    for (int i = 0; i < 3; i++)
        omni_mcp_ptab_add(&t, &p[i]);
    int popped = 0;
    while (omni_mcp_ptab_pop(&t))
        popped++;
    CU_ASSERT_EQUAL(popped, 3);
    omni_mcp_ptab_release(&t);
    omni_free(p);
    omni_free(order);
}

static CU_TestInfo tests[] = {
    {"lines split at every boundary", test_lines_every_boundary},
    {"lines byte by byte", test_lines_byte_by_byte},
    {"over-long line edges", test_lines_long_edges},
    {"sse split at every boundary", test_sse_every_boundary},
    {"sse event over the limit", test_sse_too_big},
    {"json-rpc classify", test_classify},
    {"messages are one line", test_dump_one_line},
    {"id values", test_id_value},
    {"ids matched out of order", test_ptab_out_of_order},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"mcp_framing", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};
