/*
 * test_rag_text - UTF-8 validation, HTML stripping, base64, PDF text
 * and the ingest preparation errors.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "ingest.h"
#include "omni_alloc.h"
#include "text.h"
#include "unit.h"

static void test_utf8(void)
{
    static const struct {
        const char *s;
        size_t n;
        bool ok;
        size_t bad;
    } cases[] = {
        {"plain ascii", 11, true, 0},
        {"caf\xc3\xa9", 5, true, 0},
        {"\xe2\x82\xac euro", 8, true, 0},
        {"\xf0\x9f\x98\x80", 4, true, 0},
        {"nul\0byte", 8, false, 3},
        {"bad \xff", 5, false, 4},
        {"overlong \xc0\xaf", 11, false, 9},
        {"cut \xe2\x82", 6, false, 4},
        {"surrogate \xed\xa0\x80", 13, false, 10},
        {"lone cont \x80", 11, false, 10},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t bad = 999;
        bool ok = omni_text_valid(cases[i].s, cases[i].n, &bad);
        if (ok != cases[i].ok || (!ok && bad != cases[i].bad))
            fprintf(stderr, "case %zu: got ok=%d bad=%zu, want ok=%d bad=%zu\n",
                    i, ok, bad, cases[i].ok, cases[i].bad);
        CU_ASSERT_EQUAL(ok, cases[i].ok);
        if (!cases[i].ok)
            CU_ASSERT_EQUAL(bad, cases[i].bad);
    }
    CU_ASSERT_EQUAL(omni_text_codepoints("caf\xc3\xa9 \xf0\x9f\x98\x80", 10),
                    6);
}

static void check_html(const char *html, const char *want)
{
    struct omni_buf b = OMNI_BUF_INIT;
    omni_text_from_html(html, strlen(html), &b);
    if (strcmp(b.data, want))
        fprintf(stderr, "html %s\n got  [%s]\n want [%s]\n", html, b.data,
                want);
    CU_ASSERT_STRING_EQUAL(b.data, want);
    omni_buf_release(&b);
}

static void test_html(void)
{
    check_html("<html><head><title>T</title><style>p{color:red}</style>"
               "</head><body><h1>Main  Title</h1><p>Hello <b>big</b>\n"
               "world.</p><script>var x = '<p>no</p>';</script>"
               "<h2>Sub</h2><ul><li>one</li><li>two &amp; three</li></ul>"
               "</body></html>",
               "# Main Title\n\nHello big world.\n\n## Sub\n\n- one\n- two "
               "& three");
    check_html("a&lt;b&gt;c &#65;&#x42; &copy; &bogus; &nbsp;x",
               "a<b>c AB \xc2\xa9 &bogus; x");
    check_html("<!-- hidden <p>x</p> --><p>kept</p><br>next<br/>line",
               "kept\n\nnext\nline");
    check_html("<pre>  keep\n  spaces</pre><p>after</p>",
               "  keep\n  spaces\n\nafter");
    check_html("<h3 class=\"x\">Multi\nline <br>head</h3>body",
               "### Multi line head\n\nbody");
    check_html("1 < 2 and <a href='x>y'>link</a>", "1 < 2 and link");
    check_html("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr>"
               "</table>",
               "a b\nc");
    check_html("<noscript>x</noscript><svg><text>y</text></svg>z", "z");
}

static void test_base64(void)
{
    struct omni_buf b = OMNI_BUF_INIT;
    CU_ASSERT(omni_text_base64("aGVsbG8gd29ybGQ=", 16, &b));
    CU_ASSERT_STRING_EQUAL(b.data, "hello world");
    omni_buf_reset(&b);
    CU_ASSERT(omni_text_base64("aGVs\nbG8", 8, &b));
    CU_ASSERT_STRING_EQUAL(b.data, "hello");
    omni_buf_reset(&b);
    CU_ASSERT(!omni_text_base64("aGV*bG8=", 8, &b));
    omni_buf_reset(&b);
    CU_ASSERT(!omni_text_base64("aG=Vs", 5, &b));
    omni_buf_release(&b);
}

/* A one-page PDF with "Hello PDF" in Helvetica, xref offsets computed. */
static char *tiny_pdf(size_t *len)
{
    static const char *const objs[] = {
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 300 100] >>",
        "<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Resources 6 0 R >>",
        NULL,
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        "<< /Font << /F1 5 0 R >> >>",
    };
    const char *stream = "BT /F1 12 Tf 20 50 Td (Hello PDF world) Tj ET";
    struct omni_buf b = OMNI_BUF_INIT;
    size_t off[6];
    omni_buf_adds(&b, "%PDF-1.4\n");
    for (int i = 0; i < 6; i++) {
        off[i] = b.len;
        if (objs[i])
            omni_buf_addf(&b, "%d 0 obj\n%s\nendobj\n", i + 1, objs[i]);
        else
            omni_buf_addf(&b,
                          "%d 0 obj\n<< /Length %zu >>\nstream\n%s\n"
                          "endstream\nendobj\n",
                          i + 1, strlen(stream), stream);
    }
    size_t xref = b.len;
    omni_buf_adds(&b, "xref\n0 7\n0000000000 65535 f \n");
    for (int i = 0; i < 6; i++)
        omni_buf_addf(&b, "%010zu 00000 n \n", off[i]);
    omni_buf_addf(&b,
                  "trailer\n<< /Size 7 /Root 1 0 R >>\nstartxref\n%zu\n"
                  "%%%%EOF\n",
                  xref);
    return omni_buf_detach(&b, len);
}

static void test_pdf(void)
{
    size_t n;
    char *pdf = tiny_pdf(&n);
    struct omni_buf out = OMNI_BUF_INIT;
    uint32_t *pages, np;
    char err[OMNI_ERR_LEN];
    CU_ASSERT_EQUAL(omni_text_from_pdf(pdf, n, &out, &pages, &np, err),
                    OMNI_OK);
    CU_ASSERT_EQUAL(np, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "Hello PDF world"));
    omni_free(pages);
    omni_buf_release(&out);
    CU_ASSERT_EQUAL(omni_text_from_pdf("not a pdf", 9, &out, &pages, &np, err),
                    OMNI_E_BAD_REQUEST);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot read PDF"));
    omni_free(pages);
    omni_buf_release(&out);
    omni_free(pdf);
}

static enum omni_err prep(const char *json, size_t max, struct omni_prep **p,
                          char err[OMNI_ERR_LEN])
{
    json_t *doc = json_loads(json, JSON_ALLOW_NUL, NULL);
    struct omni_chunk_opts co = {OMNI_CHUNK_CHARS, 800, 400, false};
    enum omni_err rc = omni_ingest_prepare(doc, &co, max, p, err);
    json_decref(doc);
    return rc;
}

static void test_prepare_errors(void)
{
    static const struct {
        const char *doc;
        enum omni_err rc;
        const char *msg;
    } cases[] = {
        {"{\"id\":\"e\",\"text\":\"\"}", OMNI_E_BAD_REQUEST, "is empty"},
        {"{\"id\":\"w\",\"text\":\"  \\n\\t \"}", OMNI_E_BAD_REQUEST,
         "has no text"},
        {"{\"id\":\"n\",\"text\":\"a\\u0000b\"}", OMNI_E_BAD_REQUEST, "binary"},
        {"{\"id\":\"b\",\"content_base64\":\"/w==\",\"content_type\":"
         "\"text/plain\"}",
         OMNI_E_BAD_REQUEST, "binary"},
        {"{\"id\":\"big\",\"text\":\"0123456789012345678901234567890\"}",
         OMNI_E_TOO_LARGE, "too large"},
        {"{\"id\":\"x\",\"content_base64\":\"!!\",\"content_type\":"
         "\"text/plain\"}",
         OMNI_E_BAD_REQUEST, "not base64"},
        {"{\"id\":\"x\",\"text\":\"hi\",\"content_type\":\"image/png\"}",
         OMNI_E_BAD_REQUEST, "unsupported content type"},
        {"{\"text\":\"hi\"}", OMNI_E_BAD_REQUEST, "documents[].id"},
        {"{\"id\":\"x\"}", OMNI_E_BAD_REQUEST, "want a string 'text'"},
        {"{\"id\":\"x\",\"text\":\"hi\",\"metadata\":[1]}", OMNI_E_BAD_REQUEST,
         "metadata"},
        {"{\"id\":\"p\",\"content_base64\":\"aGVsbG8=\",\"content_type\":"
         "\"application/pdf\"}",
         OMNI_E_BAD_REQUEST, "cannot read PDF"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct omni_prep *p = NULL;
        char err[OMNI_ERR_LEN] = "";
        enum omni_err rc = prep(cases[i].doc, 30, &p, err);
        if (rc != cases[i].rc || !strstr(err, cases[i].msg))
            fprintf(stderr, "case %zu: got %d '%s', want %d '%s'\n", i, rc, err,
                    cases[i].rc, cases[i].msg);
        CU_ASSERT_EQUAL(rc, cases[i].rc);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].msg));
        CU_ASSERT_PTR_NULL(p);
    }
}

static void test_prepare_ok(void)
{
    struct omni_prep *a, *b, *c;
    char err[OMNI_ERR_LEN];
    const char *d1 = "{\"id\":\"doc.html\",\"text\":\"<h1>T</h1><p>Body "
                     "text.</p>\",\"metadata\":{\"k\":1}}";
    CU_ASSERT_EQUAL(prep(d1, 1000, &a, err), OMNI_OK);
    CU_ASSERT_EQUAL(prep(d1, 1000, &b, err), OMNI_OK);
    CU_ASSERT_EQUAL(prep("{\"id\":\"doc.html\",\"text\":\"<h1>T</h1><p>Body "
                         "text.</p>\",\"metadata\":{\"k\":2}}",
                         1000, &c, err),
                    OMNI_OK);
    CU_ASSERT_STRING_EQUAL(a->hash, b->hash);
    CU_ASSERT_STRING_NOT_EQUAL(a->hash, c->hash);
    CU_ASSERT_STRING_EQUAL(a->content_type, "text/html");
    CU_ASSERT_EQUAL(a->nchunks, 1);
    CU_ASSERT_STRING_EQUAL(a->chunks[0].text, "# T\n\nBody text.");
    CU_ASSERT_STRING_EQUAL(a->chunks[0].heading, "T");
    omni_prep_free(a);
    omni_prep_free(b);
    omni_prep_free(c);

    size_t n;
    char *pdf = tiny_pdf(&n);
    struct omni_buf b64 = OMNI_BUF_INIT;
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)pdf[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)pdf[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)pdf[i + 2];
        omni_buf_addch(&b64, abc[v >> 18 & 63]);
        omni_buf_addch(&b64, abc[v >> 12 & 63]);
        omni_buf_addch(&b64, i + 1 < n ? abc[v >> 6 & 63] : '=');
        omni_buf_addch(&b64, i + 2 < n ? abc[v & 63] : '=');
    }
    json_t *doc = json_pack("{s:s, s:s, s:s}", "id", "p.pdf", "content_base64",
                            b64.data, "content_type", "application/pdf");
    struct omni_chunk_opts co = {OMNI_CHUNK_CHARS, 800, 400, false};
    CU_ASSERT_EQUAL(omni_ingest_prepare(doc, &co, 1 << 20, &a, err), OMNI_OK);
    CU_ASSERT_EQUAL(a->nchunks, 1);
    CU_ASSERT_EQUAL(a->chunks[0].page, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(a->chunks[0].text, "Hello PDF world"));
    CU_ASSERT_EQUAL(a->bytes, n);
    omni_prep_free(a);
    json_decref(doc);
    omni_buf_release(&b64);
    omni_free(pdf);
}

static void test_chunking_option(void)
{
    struct omni_chunk_opts def = {OMNI_CHUNK_CHARS, 800, 400, false}, o;
    char err[OMNI_ERR_LEN];
    json_t *j = json_loads("{\"mode\":\"tokens\"}", 0, NULL);
    CU_ASSERT_EQUAL(omni_ingest_chunking(j, &def, &o, err), OMNI_OK);
    CU_ASSERT_EQUAL(o.mode, OMNI_CHUNK_TOKENS);
    CU_ASSERT_EQUAL(o.size, 1024);
    CU_ASSERT_EQUAL(o.overlap, 200);
    json_decref(j);
    j = json_loads("{\"size\":100}", 0, NULL);
    CU_ASSERT_EQUAL(omni_ingest_chunking(j, &def, &o, err), OMNI_OK);
    CU_ASSERT_EQUAL(o.size, 100);
    CU_ASSERT_EQUAL(o.overlap, 50);
    json_decref(j);
    j = json_loads("{\"size\":100,\"overlap\":100}", 0, NULL);
    CU_ASSERT_EQUAL(omni_ingest_chunking(j, &def, &o, err), OMNI_E_BAD_REQUEST);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "chunking.overlap"));
    json_decref(j);
    j = json_loads("{\"mode\":\"pages\"}", 0, NULL);
    CU_ASSERT_EQUAL(omni_ingest_chunking(j, &def, &o, err), OMNI_E_BAD_REQUEST);
    json_decref(j);
    CU_ASSERT_EQUAL(omni_ingest_chunking(NULL, &def, &o, err), OMNI_OK);
    CU_ASSERT_EQUAL(o.size, 800);
}

static CU_TestInfo text_tests[] = {
    {"utf8", test_utf8},
    {"html", test_html},
    {"base64", test_base64},
    {"pdf", test_pdf},
    {"prepare errors", test_prepare_errors},
    {"prepare ok", test_prepare_ok},
    {"chunking option", test_chunking_option},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"rag_text", NULL, NULL, NULL, NULL, text_tests},
    CU_SUITE_INFO_NULL,
};
