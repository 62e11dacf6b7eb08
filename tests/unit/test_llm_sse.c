/*
 * test_llm_sse - the incremental SSE parser: synthetic streams for each
 * rule of the spec, the recorded provider streams, and every way of
 * splitting them (two feeds at every offset, byte by byte) giving the
 * same events as one feed.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_cassette.h"
#include "llm_sse.h"
#include "unit.h"

#define MAX_EVENT (1u << 20)

/* Events as [event, data, id] arrays. */
static int collect(const struct llm_sse_event *ev, void *arg)
{
    CU_ASSERT_EQUAL(strlen(ev->event), ev->event_len);
    CU_ASSERT_EQUAL(strlen(ev->data), ev->data_len);
    json_array_append_new(arg, json_pack("[s%,s%,s]", ev->event, ev->event_len,
                                         ev->data, ev->data_len, ev->id));
    return 0;
}

/* Parse s in pieces of the given sizes (0-terminated list; the last
 * piece takes the rest); returns the events, rc in *rc. */
static json_t *parse_pieces(const char *s, size_t n, const size_t *cuts,
                            size_t max, int *rc)
{
    struct llm_sse p;
    llm_sse_init(&p, max);
    json_t *evs = json_array();
    size_t at = 0;
    *rc = 0;
    for (size_t k = 0; cuts && cuts[k] && at < n && !*rc; k++) {
        size_t len = cuts[k] < n - at ? cuts[k] : n - at;
        *rc = llm_sse_feed(&p, s + at, len, collect, evs);
        at += len;
    }
    if (!*rc && at < n)
        *rc = llm_sse_feed(&p, s + at, n - at, collect, evs);
    llm_sse_release(&p);
    return evs;
}

static json_t *parse_all(const char *s, size_t n, int *rc)
{
    return parse_pieces(s, n, NULL, MAX_EVENT, rc);
}

/* Every two-feed split and the byte-by-byte feed give the events of the
 * single feed. */
static void check_splits(const char *s, size_t n, json_t *want)
{
    int rc;
    size_t bad = 0;
    for (size_t i = 1; i < n; i++) {
        size_t cuts[] = {i, 0};
        json_t *got = parse_pieces(s, n, cuts, MAX_EVENT, &rc);
        if (rc != 0 || !json_equal(got, want)) {
            if (!bad)
                fprintf(stderr, "split at %zu differs\n", i);
            bad++;
        }
        json_decref(got);
    }
    CU_ASSERT_EQUAL(bad, 0);
    struct llm_sse p;
    llm_sse_init(&p, MAX_EVENT);
    json_t *got = json_array();
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(llm_sse_feed(&p, s + i, 1, collect, got), 0);
    llm_sse_release(&p);
    CU_ASSERT(json_equal(got, want));
    json_decref(got);
}

static char *events_text(json_t *evs)
{
    return json_dumps(evs, JSON_COMPACT);
}

static void test_synthetic(void)
{
    static const struct {
        const char *in;
        size_t len; /* 0: strlen */
        const char *want;
    } cases[] = {
        {"data: a\n\n", 0, "[[\"message\",\"a\",\"\"]]"},
        {"data: a\r\n\r\n", 0, "[[\"message\",\"a\",\"\"]]"},
        {"data: a\r\rdata: b\r\r", 0,
         "[[\"message\",\"a\",\"\"],[\"message\",\"b\",\"\"]]"},
        {": comment\ndata: x\n:another\n\n", 0, "[[\"message\",\"x\",\"\"]]"},
        {"data: a\ndata: b\ndata\n\n", 0, "[[\"message\",\"a\\nb\\n\",\"\"]]"},
        {"data: a\r\ndata: b\rdata: c\n\n", 0,
         "[[\"message\",\"a\\nb\\nc\",\"\"]]"},
        {"\xef\xbb\xbf"
         "data: bom\n\n",
         0, "[[\"message\",\"bom\",\"\"]]"},
        /* a BOM later in the stream is not special */
        {"data: 1\n\n\xef\xbb\xbf"
         "data: 2\n\n",
         0, "[[\"message\",\"1\",\"\"]]"},
        /* half a BOM is content: the field name is not "data" */
        {"\xef\xbb"
         "data: x\n\ndata: y\n\n",
         0, "[[\"message\",\"y\",\"\"]]"},
        {"\xef"
         "data: x\n\n",
         0, "[]"},
        {"id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n", 0,
         "[[\"message\",\"a\",\"7\"],[\"message\",\"b\",\"7\"],"
         "[\"message\",\"c\",\"\"]]"},
        {"id: 1\0002\ndata: a\n\n", 17, "[[\"message\",\"a\",\"\"]]"},
        {"event: ping\ndata: {}\n\ndata: x\n\n", 0,
         "[[\"ping\",\"{}\",\"\"],[\"message\",\"x\",\"\"]]"},
        {"event: lonely\n\ndata: x\n\n", 0, "[[\"message\",\"x\",\"\"]]"},
        {"data\n\n", 0, "[[\"message\",\"\",\"\"]]"},
        {"data:\n\n", 0, "[[\"message\",\"\",\"\"]]"},
        {"data:tight\n\ndata:  two\n\n", 0,
         "[[\"message\",\"tight\",\"\"],[\"message\",\" two\",\"\"]]"},
        {"data: no end\n", 0, "[]"},
        {"data: no blank line", 0, "[]"},
        {"retry: 100\nfoo: bar\ndata: z\n\n", 0, "[[\"message\",\"z\",\"\"]]"},
        {"data: a:b: c\n\n", 0, "[[\"message\",\"a:b: c\",\"\"]]"},
        {"\n\n\r\n\r\r", 0, "[]"},
        {"event: e\nevent: f\ndata: x\n\n", 0, "[[\"f\",\"x\",\"\"]]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = cases[i].len ? cases[i].len : strlen(cases[i].in);
        int rc;
        json_t *got = parse_all(cases[i].in, n, &rc);
        char *txt = events_text(got);
        CU_ASSERT_EQUAL(rc, 0);
        if (strcmp(txt, cases[i].want) != 0) {
            fprintf(stderr, "case %zu: got %s, want %s\n", i, txt,
                    cases[i].want);
            CU_FAIL("synthetic stream");
        }
        check_splits(cases[i].in, n, got);
        free(txt);
        json_decref(got);
    }
}

/* A CR at the end of one feed and the LF at the start of the next are one
 * line end, not two (which would dispatch an extra blank line). */
static void test_crlf_across_feeds(void)
{
    const char *s = "data: a\r\ndata: b\r\n\r\n";
    size_t cuts[] = {8, 0};
    int rc;
    json_t *got = parse_pieces(s, strlen(s), cuts, MAX_EVENT, &rc);
    char *txt = events_text(got);
    CU_ASSERT_STRING_EQUAL(txt, "[[\"message\",\"a\\nb\",\"\"]]");
    free(txt);
    json_decref(got);
}

static void test_oversize(void)
{
    static const struct {
        const char *in;
        size_t cut;
    } cases[] = {
        {"data: 0123456789abcdefghij\n\n", 0},            /* one long line */
        {"data: 0123456789abcdefghij\n\n", 9},            /* split long line */
        {"data: 0123456789abcdefghij", 0},                /* never terminated */
        {"data: 0123456\ndata: 789abcd\ndata: x\n\n", 0}, /* event */
        {"data: 0123456\ndata: 789abcd\ndata: x\n\n", 20},
        {":0123456789abcdefghijklmnop\n", 0}, /* even a comment line */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t cuts[] = {cases[i].cut, 0};
        int rc;
        json_t *got = parse_pieces(cases[i].in, strlen(cases[i].in),
                                   cases[i].cut ? cuts : NULL, 16, &rc);
        if (rc != -1)
            fprintf(stderr, "oversize case %zu: got rc %d, want -1\n", i, rc);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_EQUAL(json_array_size(got), 0);
        json_decref(got);
    }
    /* at the limit is fine; after a failure every feed fails */
    struct llm_sse p;
    llm_sse_init(&p, 16);
    json_t *evs = json_array();
    CU_ASSERT_EQUAL(llm_sse_feed(&p, "data: 0123456789\n\n", 18, collect, evs),
                    0);
    CU_ASSERT_EQUAL(json_array_size(evs), 1);
    CU_ASSERT_EQUAL(
        llm_sse_feed(&p, "data: 0123456789abcdef\n\n", 24, collect, evs), -1);
    CU_ASSERT_EQUAL(llm_sse_feed(&p, "data: x\n\n", 9, collect, evs), -1);
    CU_ASSERT_EQUAL(json_array_size(evs), 1);
    llm_sse_release(&p);
    json_decref(evs);
}

static int stop_second(const struct llm_sse_event *ev, void *arg)
{
    int *count = arg;
    (void)ev;
    return ++*count == 2 ? 42 : 0;
}

static void test_callback_stops(void)
{
    struct llm_sse p;
    int count = 0;
    llm_sse_init(&p, 1024);
    const char *s = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    CU_ASSERT_EQUAL(llm_sse_feed(&p, s, strlen(s), stop_second, &count), 42);
    CU_ASSERT_EQUAL(count, 2);
    llm_sse_release(&p);
}

/* A copy of s with each "\n" replaced by eol. */
static char *with_eol(const char *s, size_t n, const char *eol, size_t *out)
{
    size_t el = strlen(eol), k = 0;
    char *r = malloc(n * el + 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') {
            memcpy(r + k, eol, el);
            k += el;
        } else {
            r[k++] = s[i];
        }
    }
    r[k] = '\0';
    *out = k;
    return r;
}

static const char *const streams[] = {
    "openai/test_run_stream_sync_streams_real_model.yaml",
    "openai/test_tool_use_basic.yaml",
    "anthropic/test_tools.yaml",
    "anthropic/test_anthropic_native_tool_search_streaming.yaml",
    "anthropic/test_anthropic_model_thinking_part_stream.yaml",
    "gemini/test_google_model_iter_stream.yaml",
    "gemini/test_google_model_stream.yaml",
};

/* What each recorded stream must look like once parsed: one event per
 * "data:" line (every recorded event has one), each well-formed. */
static void check_recorded(const char *file, const char *body, json_t *evs)
{
    size_t n = json_array_size(evs), lines = 0;
    for (const char *p = body; p; p = strchr(p + 1, '\n'))
        lines += strncmp(p == body ? p : p + 1, "data:", 5) == 0;
    if (n != lines)
        fprintf(stderr, "%s: got %zu events, want %zu\n", file, n, lines);
    CU_ASSERT(n > 0 && n == lines);
    const char *last =
        json_string_value(json_array_get(json_array_get(evs, n - 1), 1));
    size_t i;
    json_t *ev;
    if (strncmp(file, "openai/", 7) == 0) {
        CU_ASSERT_STRING_EQUAL(last, "[DONE]");
        json_array_foreach(evs, i, ev)
        {
            const char *data = json_string_value(json_array_get(ev, 1));
            CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(ev, 0)),
                                   "message");
            json_t *j = json_loads(data, 0, NULL);
            CU_ASSERT(i == n - 1 || json_is_object(j));
            json_decref(j);
        }
    } else if (strncmp(file, "anthropic/", 10) == 0) {
        /* the event line names the type the data carries */
        json_array_foreach(evs, i, ev)
        {
            json_t *j =
                json_loads(json_string_value(json_array_get(ev, 1)), 0, NULL);
            CU_ASSERT_PTR_NOT_NULL(j);
            const char *type = json_string_value(json_object_get(j, "type"));
            CU_ASSERT(type && strcmp(type, json_string_value(
                                               json_array_get(ev, 0))) == 0);
            json_decref(j);
        }
        CU_ASSERT(strstr(last, "message_stop") != NULL);
    } else {
        json_array_foreach(evs, i, ev)
        {
            json_t *j =
                json_loads(json_string_value(json_array_get(ev, 1)), 0, NULL);
            CU_ASSERT(json_is_object(json_object_get(j, "usageMetadata")) ||
                      json_is_array(json_object_get(j, "candidates")));
            json_decref(j);
        }
    }
}

static void test_recorded_streams(void)
{
    size_t checked = 0;
    for (size_t f = 0; f < sizeof streams / sizeof *streams; f++) {
        json_t *c = llm_cassette_load(streams[f]);
        if (!c) {
            fprintf(stderr, "note: skipping recorded streams (no shared/)\n");
            return;
        }
        size_t ni = json_array_size(json_object_get(c, "interactions"));
        for (size_t i = 0; i < ni; i++) {
            size_t n;
            char *body = llm_cassette_body(c, i, &n);
            if (!body || llm_cassette_status(c, i) != 200 ||
                (strncmp(body, "data:", 5) != 0 &&
                 strncmp(body, "event:", 6) != 0)) {
                free(body);
                continue;
            }
            int rc;
            json_t *want = parse_all(body, n, &rc);
            CU_ASSERT_EQUAL(rc, 0);
            check_recorded(streams[f], body, want);
            check_splits(body, n, want);
            static const char *const eols[] = {"\r\n", "\r"};
            for (size_t e = 0; e < 2; e++) {
                size_t m;
                char *alt = with_eol(body, n, eols[e], &m);
                json_t *got = parse_all(alt, m, &rc);
                CU_ASSERT(json_equal(got, want));
                json_decref(got);
                free(alt);
            }
            /* a BOM in front changes nothing */
            char *bom = malloc(n + 3);
            bom[0] = (char)0xef;
            bom[1] = (char)0xbb;
            bom[2] = (char)0xbf;
            memcpy(bom + 3, body, n);
            json_t *got = parse_all(bom, n + 3, &rc);
            CU_ASSERT(json_equal(got, want));
            json_decref(got);
            free(bom);
            json_decref(want);
            free(body);
            checked++;
        }
        json_decref(c);
    }
    CU_ASSERT(checked >= 9);
}

static CU_TestInfo sse_tests[] = {
    {"synthetic streams, all splits", test_synthetic},
    {"CRLF across feeds", test_crlf_across_feeds},
    {"oversize line or event", test_oversize},
    {"callback stops the feed", test_callback_stops},
    {"recorded streams, all splits", test_recorded_streams},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"llm_sse", NULL, NULL, NULL, NULL, sse_tests},
    CU_SUITE_INFO_NULL,
};
