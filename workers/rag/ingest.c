/*
 * ingest - document validation, extraction, chunking and hashing.
 *
 * The version hash is sha256 over the content as received, its content
 * type, the metadata (canonical JSON) and the chunking options: when
 * any of them changes the document is re-chunked and re-embedded, and
 * when none does a re-ingest is a no-op.
 */
#include "ingest.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "omni_alloc.h"
#include "omni_buf.h"
#include "omni_time.h"
#include "text.h"

enum omni_err omni_ingest_chunking(const json_t *opt,
                                   const struct omni_chunk_opts *chars_def,
                                   struct omni_chunk_opts *out,
                                   char err[OMNI_ERR_LEN])
{
    *out = *chars_def;
    if (!opt || json_is_null(opt))
        return OMNI_OK;
    if (!json_is_object(opt)) {
        snprintf(err, OMNI_ERR_LEN, "bad 'chunking': want an object");
        return OMNI_E_BAD_REQUEST;
    }
    json_t *mode = json_object_get(opt, "mode");
    if (mode) {
        const char *m = json_string_value(mode);
        if (m && !strcmp(m, "tokens")) {
            out->mode = OMNI_CHUNK_TOKENS;
            out->size = 1024;
            out->overlap = 200;
        } else if (!m || strcmp(m, "chars")) {
            snprintf(err, OMNI_ERR_LEN,
                     "bad 'chunking.mode': want \"chars\" or \"tokens\"");
            return OMNI_E_BAD_REQUEST;
        }
    }
    json_t *size = json_object_get(opt, "size");
    json_t *ov = json_object_get(opt, "overlap");
    if (size) {
        if (!json_is_integer(size) || json_integer_value(size) < 1 ||
            json_integer_value(size) > 1000000) {
            snprintf(err, OMNI_ERR_LEN,
                     "bad 'chunking.size': want an integer in [1, 1000000]");
            return OMNI_E_BAD_REQUEST;
        }
        out->size = (size_t)json_integer_value(size);
        if (!ov && out->overlap >= out->size)
            out->overlap = out->size / 2;
    }
    if (ov) {
        if (!json_is_integer(ov) || json_integer_value(ov) < 0) {
            snprintf(err, OMNI_ERR_LEN,
                     "bad 'chunking.overlap': want an integer >= 0");
            return OMNI_E_BAD_REQUEST;
        }
        out->overlap = (size_t)json_integer_value(ov);
    }
    if (out->overlap >= out->size) {
        snprintf(err, OMNI_ERR_LEN,
                 "bad 'chunking.overlap': %zu is not below the size %zu",
                 out->overlap, out->size);
        return OMNI_E_BAD_REQUEST;
    }
    return OMNI_OK;
}

/* Guess the kind of a text document without a content type from its id
 * ("notes.md", "page.html"). */
static int kind_from_id(const char *id)
{
    const char *dot = strrchr(id, '.');
    if (!dot)
        return OMNI_TEXT_PLAIN;
    if (!strcasecmp(dot, ".md") || !strcasecmp(dot, ".markdown"))
        return OMNI_TEXT_MARKDOWN;
    if (!strcasecmp(dot, ".html") || !strcasecmp(dot, ".htm"))
        return OMNI_TEXT_HTML;
    return OMNI_TEXT_PLAIN;
}

static void version_hash(const char *content, size_t n, const char *ct,
                         const json_t *md, const struct omni_chunk_opts *co,
                         char out[65])
{
    GChecksum *h = g_checksum_new(G_CHECKSUM_SHA256);
    g_checksum_update(h, (const guchar *)content, (gssize)n);
    char *mdj = json_dumps(md, JSON_COMPACT | JSON_SORT_KEYS);
    struct omni_buf b = OMNI_BUF_INIT;
    omni_buf_addf(&b, "%c%s%c%s%c%d/%zu/%zu", 0, ct, 0, mdj ? mdj : "{}", 0,
                  (int)co->mode, co->size, co->overlap);
    g_checksum_update(h, (const guchar *)b.data, (gssize)b.len);
    omni_buf_release(&b);
    free(mdj);
    snprintf(out, 65, "%s", g_checksum_get_string(h));
    g_checksum_free(h);
}

static uint32_t page_of(const uint32_t *pages, uint32_t np, size_t off)
{
    uint32_t lo = 0, hi = np;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (pages[mid] <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

enum omni_err omni_ingest_prepare(const json_t *doc,
                                  const struct omni_chunk_opts *co,
                                  size_t max_bytes, struct omni_prep **out,
                                  char err[OMNI_ERR_LEN])
{
    *out = NULL;
    if (!json_is_object(doc)) {
        snprintf(err, OMNI_ERR_LEN, "bad 'documents': want objects");
        return OMNI_E_BAD_REQUEST;
    }
    const char *id = json_string_value(json_object_get(doc, "id"));
    if (!id || !*id || strlen(id) > OMNI_RAG_ID_MAX ||
        strlen(id) != json_string_length(json_object_get(doc, "id")) ||
        !omni_text_valid(id, strlen(id), NULL)) {
        snprintf(err, OMNI_ERR_LEN,
                 "bad 'documents[].id': want a non-empty string of at most "
                 "%d bytes",
                 OMNI_RAG_ID_MAX);
        return OMNI_E_BAD_REQUEST;
    }
    json_t *md = json_object_get(doc, "metadata");
    if (md && !json_is_object(md) && !json_is_null(md)) {
        snprintf(err, OMNI_ERR_LEN,
                 "bad 'metadata' of document '%.64s': "
                 "want an object",
                 id);
        return OMNI_E_BAD_REQUEST;
    }
    json_t *jtext = json_object_get(doc, "text");
    json_t *jb64 = json_object_get(doc, "content_base64");
    json_t *jct = json_object_get(doc, "content_type");
    const char *ct = json_string_value(jct);
    if ((jtext && !json_is_string(jtext)) || (jb64 && !json_is_string(jb64)) ||
        (jct && !ct) || (!jtext == !jb64)) {
        snprintf(err, OMNI_ERR_LEN,
                 "bad document '%.64s': want a string 'text' or "
                 "'content_base64' (with 'content_type')",
                 id);
        return OMNI_E_BAD_REQUEST;
    }
    struct omni_buf raw = OMNI_BUF_INIT;
    const char *content;
    size_t n;
    if (jtext) {
        content = json_string_value(jtext);
        n = json_string_length(jtext);
    } else {
        const char *b = json_string_value(jb64);
        size_t bl = json_string_length(jb64);
        if (bl / 4 * 3 > max_bytes + 3) {
            snprintf(err, OMNI_ERR_LEN,
                     "document '%.64s' is too large: over rag.max_doc_bytes "
                     "(%zu)",
                     id, max_bytes);
            return OMNI_E_TOO_LARGE;
        }
        if (!omni_text_base64(b, bl, &raw)) {
            omni_buf_release(&raw);
            snprintf(err, OMNI_ERR_LEN,
                     "bad 'content_base64' of document '%.64s': not base64",
                     id);
            return OMNI_E_BAD_REQUEST;
        }
        content = raw.data;
        n = raw.len;
    }
    enum omni_err rc = OMNI_OK;
    int kind = ct      ? omni_text_kind(ct)
               : jtext ? kind_from_id(id)
                       : OMNI_TEXT_PLAIN;
    struct omni_buf text = OMNI_BUF_INIT;
    uint32_t *pages = NULL, npages = 0;
    size_t bad = 0;
    if (n > max_bytes) {
        snprintf(err, OMNI_ERR_LEN,
                 "document '%.64s' is too large: %zu bytes, "
                 "rag.max_doc_bytes is %zu",
                 id, n, max_bytes);
        rc = OMNI_E_TOO_LARGE;
    } else if (kind < 0) {
        snprintf(err, OMNI_ERR_LEN,
                 "document '%.64s': unsupported content type '%.64s' (want "
                 "text/plain, text/markdown, text/html or application/pdf)",
                 id, ct);
        rc = OMNI_E_BAD_REQUEST;
    } else if (n == 0) {
        snprintf(err, OMNI_ERR_LEN, "document '%.64s' is empty", id);
        rc = OMNI_E_BAD_REQUEST;
    } else if (kind != OMNI_TEXT_PDF && !omni_text_valid(content, n, &bad)) {
        snprintf(err, OMNI_ERR_LEN,
                 "document '%.64s' is binary, not UTF-8 text (%s at byte "
                 "%zu)",
                 id, content[bad] ? "invalid UTF-8" : "NUL", bad);
        rc = OMNI_E_BAD_REQUEST;
    } else if (kind == OMNI_TEXT_PDF) {
        rc = omni_text_from_pdf(content, n, &text, &pages, &npages, err);
    } else if (kind == OMNI_TEXT_HTML) {
        omni_text_from_html(content, n, &text);
    } else {
        omni_buf_add(&text, content, n);
    }
    bool blank = true;
    for (size_t i = 0; rc == OMNI_OK && i < text.len && blank; i++)
        blank = strchr(" \t\r\n\f\v", text.data[i]) != NULL;
    if (rc == OMNI_OK && blank) {
        snprintf(err, OMNI_ERR_LEN, "document '%.64s' has no text", id);
        rc = OMNI_E_BAD_REQUEST;
    }
    if (rc == OMNI_OK && kind == OMNI_TEXT_PDF &&
        !omni_text_valid(text.data, text.len, NULL)) {
        snprintf(err, OMNI_ERR_LEN,
                 "document '%.64s': the PDF's text is not valid UTF-8", id);
        rc = OMNI_E_BAD_REQUEST;
    }
    if (rc != OMNI_OK) {
        omni_buf_release(&raw);
        omni_buf_release(&text);
        omni_free(pages);
        return rc;
    }
    static const char *const names[] = {"text/plain", "text/markdown",
                                        "text/html", "application/pdf"};
    struct omni_prep *p = omni_calloc(1, sizeof *p);
    p->id = omni_strdup(id);
    p->metadata = json_is_object(md) ? json_deep_copy(md) : json_object();
    p->content_type = omni_strdup(names[kind]);
    p->bytes = n;
    p->ingested_ms = omni_wall_ms();
    version_hash(content, n, p->content_type, p->metadata, co, p->hash);
    struct omni_chunk_opts o = *co;
    o.markdown = kind == OMNI_TEXT_MARKDOWN || kind == OMNI_TEXT_HTML;
    struct omni_chunk *ch;
    size_t nc = omni_chunk_split(text.data, text.len, &o, &ch);
    p->chunks = omni_calloc(nc ? nc : 1, sizeof *p->chunks);
    p->nchunks = (uint32_t)nc;
    for (size_t i = 0; i < nc; i++) {
        struct omni_prep_chunk *pc = &p->chunks[i];
        pc->text =
            omni_strndup(text.data + ch[i].start, ch[i].end - ch[i].start);
        pc->len = ch[i].end - ch[i].start;
        pc->start = (uint32_t)ch[i].start;
        pc->end = (uint32_t)ch[i].end;
        pc->heading = ch[i].heading;
        ch[i].heading = NULL;
        pc->page = npages ? page_of(pages, npages, ch[i].start) : 0;
    }
    omni_chunk_free(ch, nc);
    omni_free(pages);
    omni_buf_release(&raw);
    omni_buf_release(&text);
    *out = p;
    return OMNI_OK;
}

void omni_ingest_index_text(const struct omni_prep_chunk *c,
                            struct omni_buf *out)
{
    omni_buf_reset(out);
    if (c->heading) {
        omni_buf_adds(out, c->heading);
        omni_buf_addch(out, '\n');
    }
    omni_buf_add(out, c->text, c->len);
}

void omni_ingest_embed_local(struct omni_embedder *e, struct omni_prep *p)
{
    uint32_t dim = omni_embed_dim(e);
    p->vecs = omni_realloc(p->vecs,
                           (p->nchunks ? p->nchunks : 1) * dim * sizeof(float));
    struct omni_buf t = OMNI_BUF_INIT;
    for (uint32_t i = 0; i < p->nchunks; i++) {
        omni_ingest_index_text(&p->chunks[i], &t);
        omni_embed_one(e, t.data, t.len, p->vecs + (size_t)i * dim);
    }
    omni_buf_release(&t);
}
