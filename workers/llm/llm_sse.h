/*
 * llm_sse - incremental Server-Sent Events parser (WHATWG EventSource
 * rules): bytes go in as they arrive, in any split, and whole events come
 * out.  Handles LF, CRLF and CR line ends (a CRLF split across two feeds
 * included), ':' comments, multi-line data (joined with '\n'), a field
 * without a colon, one optional space after the colon, and a UTF-8 BOM
 * at the start of the stream.  An event is dispatched at a blank line;
 * one with no data lines is not dispatched.
 */
#ifndef LLM_SSE_H
#define LLM_SSE_H

#include <stddef.h>

#include "omni_buf.h"

struct llm_sse_event {
    const char *event; /* "message" when the stream named none */
    size_t event_len;
    const char *data; /* NUL-terminated; may contain '\n' */
    size_t data_len;
    const char *id; /* last event id, "" if none; NUL-terminated */
};

/* Called once per event; the event is borrowed for the call.  Return 0
 * to go on, non-zero to stop: llm_sse_feed then returns that value. */
typedef int (*llm_sse_cb)(const struct llm_sse_event *ev, void *arg);

struct llm_sse {
    struct omni_buf line;  /* the incomplete current line */
    struct omni_buf event; /* event field of the event being built */
    struct omni_buf data;  /* data of the event being built */
    struct omni_buf id;
    int state;        /* parser state bits (BOM, pending CR, data) */
    size_t max_event; /* limit on one event's size */
};

/* max_event: largest line or event accepted (bytes); beyond it feed
 * fails with -1. */
void llm_sse_init(struct llm_sse *p, size_t max_event);
void llm_sse_release(struct llm_sse *p);
/* Feed n bytes; dispatches each complete event.  Returns 0, the
 * callback's non-zero value, or -1 when an event exceeds max_event. */
int llm_sse_feed(struct llm_sse *p, const char *buf, size_t n, llm_sse_cb cb,
                 void *arg);

#endif
