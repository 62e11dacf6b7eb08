/*
 * pdf - PDF text extraction through poppler-glib.
 *
 * The document is opened from memory (no temporary file); each page's
 * text is appended in reading order as poppler lays it out.  Encrypted
 * or damaged files fail with poppler's own message.
 */
#include <poppler.h>
#include <stdio.h>
#include <string.h>

#include "omni_alloc.h"
#include "text.h"

enum omni_err omni_text_from_pdf(const void *p, size_t n, struct omni_buf *out,
                                 uint32_t **pages, uint32_t *npages,
                                 char err[OMNI_ERR_LEN])
{
    GError *gerr = NULL;
    GBytes *bytes = g_bytes_new(p, n);
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &gerr);
    g_bytes_unref(bytes);
    *pages = NULL;
    *npages = 0;
    if (!doc) {
        snprintf(err, OMNI_ERR_LEN, "cannot read PDF: %s",
                 gerr ? gerr->message : "unknown error");
        if (gerr)
            g_error_free(gerr);
        return OMNI_E_BAD_REQUEST;
    }
    int np = poppler_document_get_n_pages(doc);
    *pages = omni_calloc(np > 0 ? (size_t)np : 1, sizeof **pages);
    for (int i = 0; i < np; i++) {
        PopplerPage *page = poppler_document_get_page(doc, i);
        if (out->len)
            omni_buf_adds(out, "\n\n");
        (*pages)[i] = (uint32_t)out->len;
        if (page) {
            char *t = poppler_page_get_text(page);
            if (t) {
                omni_buf_adds(out, t);
                g_free(t);
            }
            g_object_unref(page);
        }
    }
    *npages = (uint32_t)(np > 0 ? np : 0);
    g_object_unref(doc);
    return OMNI_OK;
}
