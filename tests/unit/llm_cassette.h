/*
 * llm_cassette - reads the VCR.py cassettes under shared/fixtures (YAML)
 * into jansson values, for the LLM provider tests.
 */
#ifndef LLM_CASSETTE_H
#define LLM_CASSETTE_H

#include <jansson.h>
#include <stddef.h>

/* The cassette at shared/fixtures/<rel> as JSON (the whole document:
 * {"interactions":[{"request":{...},"response":{...}}],...}); NULL with
 * a note on stderr when shared/ is absent, and a CUnit failure when the
 * file is there but unreadable. */
json_t *llm_cassette_load(const char *rel);

/* Interaction i's response body as bytes: body.string as recorded, or
 * parsed_body serialised; NULL if none.  The caller frees with free(). */
char *llm_cassette_body(json_t *cassette, size_t i, size_t *len);

/* Interaction i's request body as JSON (body text parsed, or
 * parsed_body); a new reference or NULL. */
json_t *llm_cassette_request(json_t *cassette, size_t i);

/* Interaction i's response status code, 0 if none. */
int llm_cassette_status(json_t *cassette, size_t i);

#include "provider.h"

/* Run a streamed reply body through the SSE parser (fed in pieces of
 * piece bytes) and p's stream translator; returns the unified chunks,
 * the last stream_event result in *rc (LLM_STREAM_MORE if the body
 * ended without DONE), *err filled on LLM_STREAM_ERROR, and a copy of
 * the stream's usage in *usage (NULL if none). */
json_t *llm_test_stream(const struct llm_provider *p,
                        const struct llm_target *t, json_t *req,
                        const char *body, size_t len, size_t piece,
                        enum llm_stream_rc *rc, struct llm_error *err,
                        json_t **usage);

/* What an OpenAI client makes of chunks: {"role","content",
 * "reasoning_content","tool_calls":[{"id","name","arguments"}],
 * "finish_reason","usage","nchunks"}; also asserts the shape of every
 * chunk. */
json_t *llm_test_assemble(json_t *chunks);

#endif
