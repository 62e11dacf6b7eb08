/*
 * test_rag_chunk - chunk boundaries, sizes and overlap, Markdown
 * sections and heading paths, token mode, oversized words.
 */
#include <stdio.h>
#include <string.h>

#include "chunk.h"
#include "omni_alloc.h"
#include "omni_buf.h"
#include "text.h"
#include "unit.h"

static size_t split(const char *t, enum omni_chunk_mode m, size_t size,
                    size_t ov, bool md, struct omni_chunk **c)
{
    struct omni_chunk_opts o = {m, size, ov, md};
    return omni_chunk_split(t, strlen(t), &o, c);
}

/* Every chunk is within size, trimmed, and consecutive chunks of one
 * section overlap by at most ov and leave no gap. */
static void check_invariants(const char *t, struct omni_chunk *c, size_t n,
                             size_t size, size_t ov)
{
    for (size_t i = 0; i < n; i++) {
        size_t cp = omni_text_codepoints(t + c[i].start, c[i].end - c[i].start);
        if (cp > size)
            fprintf(stderr, "chunk %zu: got %zu code points, want <= %zu\n", i,
                    cp, size);
        CU_ASSERT(cp <= size);
        CU_ASSERT(c[i].end > c[i].start);
        CU_ASSERT(!strchr(" \n\t", t[c[i].start]));
        CU_ASSERT(!strchr(" \n\t", t[c[i].end - 1]));
        if (i == 0)
            continue;
        CU_ASSERT(c[i].start > c[i - 1].start);
        CU_ASSERT(c[i].end > c[i - 1].end);
        if (c[i].start < c[i - 1].end) {
            size_t shared =
                omni_text_codepoints(t + c[i].start, c[i - 1].end - c[i].start);
            CU_ASSERT(shared <= ov);
        } else {
            /* No overlap: only whitespace between them. */
            for (size_t k = c[i - 1].end; k < c[i].start; k++)
                CU_ASSERT(strchr(" \n\t", t[k]) != NULL);
        }
    }
}

static void test_sentences_overlap(void)
{
    struct omni_buf b = OMNI_BUF_INIT;
    for (int i = 0; i < 40; i++)
        omni_buf_addf(&b, "Sentence number %02d is here. ", i);
    struct omni_chunk *c;
    size_t n = split(b.data, OMNI_CHUNK_CHARS, 120, 60, false, &c);
    CU_ASSERT(n > 10);
    check_invariants(b.data, c, n, 120, 60);
    /* Sentence boundaries: each chunk starts a sentence, ends with '.'. */
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(b.data[c[i].start], 'S');
        CU_ASSERT_EQUAL(b.data[c[i].end - 1], '.');
        if (i)
            CU_ASSERT(c[i].start < c[i - 1].end); /* overlapping */
    }
    CU_ASSERT_EQUAL(c[0].start, 0);
    CU_ASSERT_EQUAL(c[n - 1].end, b.len - 1);
    omni_chunk_free(c, n);
    /* No overlap requested: chunks tile the text. */
    n = split(b.data, OMNI_CHUNK_CHARS, 120, 0, false, &c);
    check_invariants(b.data, c, n, 120, 0);
    for (size_t i = 1; i < n; i++)
        CU_ASSERT(c[i].start >= c[i - 1].end);
    omni_chunk_free(c, n);
    omni_buf_release(&b);
}

static void test_paragraph_preferred(void)
{
    /* Two paragraphs; the first fills more than half a chunk, so the
     * chunk ends at the paragraph break, not mid-way through the second. */
    const char *t = "Alpha one. Alpha two. Alpha three. Alpha four.\n\n"
                    "Beta one. Beta two. Beta three.";
    struct omni_chunk *c;
    size_t n = split(t, OMNI_CHUNK_CHARS, 70, 0, false, &c);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(c[0].end, strlen("Alpha one. Alpha two. Alpha three. "
                                     "Alpha four."));
    CU_ASSERT_EQUAL(t[c[1].start], 'B');
    omni_chunk_free(c, n);
}

static void test_markdown(void)
{
    const char *t = "Intro line.\n\n# Guide\n\nText of guide.\n\n## Setup\n\n"
                    "Install it.\n\n```\n# not a heading\n```\n\n"
                    "### Deep ###\n\nDeep text.\n\n# Other\n\nMore.";
    struct omni_chunk *c;
    size_t n = split(t, OMNI_CHUNK_CHARS, 800, 400, true, &c);
    static const struct {
        const char *heading, *starts;
    } want[] = {
        {NULL, "Intro line."},         {"Guide", "# Guide"},
        {"Guide > Setup", "## Setup"}, {"Guide > Setup > Deep", "### Deep"},
        {"Other", "# Other"},
    };
    CU_ASSERT_EQUAL(n, 5);
    for (size_t i = 0; i < n && i < 5; i++) {
        if (!want[i].heading) {
            CU_ASSERT_PTR_NULL(c[i].heading);
        } else {
            CU_ASSERT(c[i].heading && !strcmp(c[i].heading, want[i].heading));
        }
        CU_ASSERT_EQUAL(
            strncmp(t + c[i].start, want[i].starts, strlen(want[i].starts)), 0);
    }
    /* The fenced "# not a heading" stays inside the Setup chunk. */
    CU_ASSERT(memmem(t + c[2].start, c[2].end - c[2].start, "# not a heading",
                     15) != NULL);
    omni_chunk_free(c, n);
    /* Without Markdown, '#' lines are text. */
    n = split(t, OMNI_CHUNK_CHARS, 800, 400, false, &c);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_PTR_NULL(c[0].heading);
    omni_chunk_free(c, n);
}

static void test_tokens(void)
{
    struct omni_buf b = OMNI_BUF_INIT;
    for (int i = 0; i < 100; i++)
        omni_buf_addf(&b, "w%d ", i);
    struct omni_chunk *c;
    size_t n = split(b.data, OMNI_CHUNK_TOKENS, 30, 10, false, &c);
    /* One 100-word sentence: split into words, 30 per chunk, 10 shared. */
    CU_ASSERT_EQUAL(n, 5);
    for (size_t i = 0; i < n; i++) {
        size_t words = 0;
        for (size_t k = c[i].start; k < c[i].end; k++)
            words += b.data[k] == 'w';
        CU_ASSERT(words <= 30);
        if (i + 1 < n)
            CU_ASSERT_EQUAL(words, 30);
    }
    CU_ASSERT_EQUAL(strncmp(b.data + c[1].start, "w20 ", 4), 0);
    omni_chunk_free(c, n);
    omni_buf_release(&b);
}

static void test_long_word_utf8(void)
{
    struct omni_buf b = OMNI_BUF_INIT;
    for (int i = 0; i < 25; i++)
        omni_buf_adds(&b, "\xc3\xa9"); /* e acute, 2 bytes */
    struct omni_chunk *c;
    size_t n = split(b.data, OMNI_CHUNK_CHARS, 10, 5, false, &c);
    CU_ASSERT(n >= 3);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT(
            omni_text_valid(b.data + c[i].start, c[i].end - c[i].start, NULL));
        CU_ASSERT(omni_text_codepoints(b.data + c[i].start,
                                       c[i].end - c[i].start) <= 10);
    }
    CU_ASSERT_EQUAL(c[n - 1].end, b.len);
    omni_chunk_free(c, n);
    omni_buf_release(&b);
}

static void test_empty(void)
{
    struct omni_chunk *c;
    size_t n = split("  \n\n \t ", OMNI_CHUNK_CHARS, 10, 5, true, &c);
    CU_ASSERT_EQUAL(n, 0);
    omni_chunk_free(c, n);
    n = split("x", OMNI_CHUNK_CHARS, 10, 5, true, &c);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(c[0].end, 1);
    omni_chunk_free(c, n);
}

static CU_TestInfo chunk_tests[] = {
    {"sentences and overlap", test_sentences_overlap},
    {"paragraph preferred", test_paragraph_preferred},
    {"markdown sections", test_markdown},
    {"token mode", test_tokens},
    {"long word, utf8", test_long_word_utf8},
    {"empty", test_empty},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"rag_chunk", NULL, NULL, NULL, NULL, chunk_tests},
    CU_SUITE_INFO_NULL,
};
