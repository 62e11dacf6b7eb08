/*
 * multipart - file uploads in a multipart/form-data body (RFC 7578) as
 * RAG documents.
 *
 * Each part named "file" becomes {"id": its file name, "content_base64",
 * "content_type"}; other parts are ignored.  The parser works on the
 * whole body in memory (the front has already bounded its size) and
 * fails with a message naming what is wrong, never reading past n.
 */
#ifndef OMNI_MULTIPART_H
#define OMNI_MULTIPART_H

#include <jansson.h>
#include <stddef.h>

#include "omni_buf.h"
#include "omni_err.h"

/* Append one document per "file" part of body[0..n) to the JSON array
 * docs.  content_type is the request's Content-Type (it carries the
 * boundary).  Returns 0, or -1 with err set. */
int omni_multipart_files(const char *content_type, const char *body, size_t n,
                         json_t *docs, char err[OMNI_ERR_LEN]);

/* Append the base64 (RFC 4648, padded) of p[0..n) to out. */
void omni_base64_add(struct omni_buf *out, const void *p, size_t n);

#endif
