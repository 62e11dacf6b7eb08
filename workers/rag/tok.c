/*
 * tok - word tokenizer with optional stop words and Snowball stemming.
 *
 * The stemmer instance is not thread-safe; each tokenizer owns one and
 * every process is single-threaded.
 */
#include "tok.h"

#include <libstemmer.h>
#include <string.h>

#include "omni_alloc.h"
#include "smap.h"

struct omni_tok {
    struct sb_stemmer *stemmer;
    bool stop;
};

/* A short general-English list: function words only, so that topical
 * words (even frequent ones) stay searchable. */
static const char *const stop_words[] = {
    "a",      "about",   "above",      "after",    "again",      "against",
    "all",    "am",      "an",         "and",      "any",        "are",
    "as",     "at",      "be",         "been",     "before",     "being",
    "below",  "between", "both",       "but",      "by",         "can",
    "could",  "did",     "do",         "does",     "doing",      "down",
    "during", "each",    "few",        "for",      "from",       "further",
    "had",    "has",     "have",       "having",   "he",         "her",
    "here",   "hers",    "herself",    "him",      "himself",    "his",
    "how",    "i",       "if",         "in",       "into",       "is",
    "it",     "its",     "itself",     "just",     "me",         "more",
    "most",   "my",      "myself",     "no",       "nor",        "not",
    "now",    "of",      "off",        "on",       "once",       "only",
    "or",     "other",   "our",        "ours",     "ourselves",  "out",
    "over",   "own",     "same",       "she",      "should",     "so",
    "some",   "such",    "than",       "that",     "the",        "their",
    "theirs", "them",    "themselves", "then",     "there",      "these",
    "they",   "this",    "those",      "through",  "to",         "too",
    "under",  "until",   "up",         "very",     "was",        "we",
    "were",   "what",    "when",       "where",    "which",      "while",
    "who",    "whom",    "why",        "will",     "with",       "would",
    "you",    "your",    "yours",      "yourself", "yourselves", NULL};

static struct omni_smap stops;

bool omni_tok_is_stop(const char *w, size_t n)
{
    /* Built once; the set is read-only afterwards. */
    if (!stops.len)
        for (const char *const *s = stop_words; *s; s++)
            omni_smap_put(&stops, *s, strlen(*s), (void *)1);
    return omni_smap_get(&stops, w, n) != NULL;
}

struct omni_tok *omni_tok_new(bool stem, bool stop)
{
    struct omni_tok *t = omni_calloc(1, sizeof *t);
    if (stem)
        t->stemmer = sb_stemmer_new("english", NULL);
    t->stop = stop;
    return t;
}

void omni_tok_free(struct omni_tok *t)
{
    if (!t)
        return;
    if (t->stemmer)
        sb_stemmer_delete(t->stemmer);
    omni_free(t);
}

static bool word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c >= 0x80;
}

void omni_tok_each(struct omni_tok *t, const char *text, size_t n,
                   omni_tok_cb cb, void *arg)
{
    char w[OMNI_TOK_MAX];
    size_t i = 0;
    while (i < n) {
        while (i < n && !word_byte((unsigned char)text[i]))
            i++;
        size_t len = 0;
        while (i < n && word_byte((unsigned char)text[i])) {
            unsigned char c = (unsigned char)text[i];
            if (len < OMNI_TOK_MAX)
                w[len++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            i++;
        }
        /* Do not leave a cut UTF-8 sequence at the end of a long word. */
        if (len == OMNI_TOK_MAX)
            while (len && ((unsigned char)w[len - 1] & 0xc0) == 0x80)
                len--;
        if (len && ((unsigned char)w[len - 1] & 0xc0) == 0xc0)
            len--;
        if (!len)
            continue;
        if (t->stop && omni_tok_is_stop(w, len))
            continue;
        if (t->stemmer) {
            const sb_symbol *s =
                sb_stemmer_stem(t->stemmer, (const sb_symbol *)w, (int)len);
            int sl = sb_stemmer_length(t->stemmer);
            if (s && sl > 0) {
                cb((const char *)s, (size_t)sl, arg);
                continue;
            }
        }
        cb(w, len, arg);
    }
}
