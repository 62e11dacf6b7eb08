/*
 * mcp_testlib - what the MCP tests that drive a hub on a real event loop
 * share: running the loop until a condition holds, collecting the
 * result of an operation's callback, calling a tool and reading its text.
 */
#ifndef MCP_TESTLIB_H
#define MCP_TESTLIB_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

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

struct omni_mcp_hub;
/* Call tool name on hub with args (JSON text, NULL: none) and deadline
 * (as omni_mcp_hub_call), running base until the result is in r (15 s);
 * false on time-out.  r->res is the caller's to release. */
bool hub_call(struct event_base *base, struct omni_mcp_hub *hub,
              const char *name, const char *args, int64_t deadline,
              struct result *r);
/* The first text block of a CallToolResult, or "(no text)". */
const char *text0(const json_t *res);

#endif
