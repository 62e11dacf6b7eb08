/*
 * mcp_testlib - what the MCP tests that drive a hub on a real event loop
 * share: running the loop until a condition holds, and collecting the
 * result of an operation's callback.
 */
#ifndef MCP_TESTLIB_H
#define MCP_TESTLIB_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>

#include "omni_err.h"

typedef bool (*cond_fn)(void *arg);

/* Run base until cond(arg) or ms pass; false on time-out. */
bool run_until(struct event_base *base, cond_fn cond, void *arg, int ms);

/* An operation's outcome; res is a deep copy the test releases. */
struct result {
    bool done;
    enum omni_err err;
    char msg[OMNI_ERR_LEN + 256];
    json_t *res;
};

/* cond_fn: the result has arrived. */
bool is_done(void *arg);
/* The hub's completion callback, filling a struct result. */
void on_done(void *arg, enum omni_err err, const char *msg, json_t *result);

#endif
