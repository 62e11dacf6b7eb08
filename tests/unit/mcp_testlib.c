/*
 * mcp_testlib - loop and result helpers of the MCP tests.
 */
#include "mcp_testlib.h"

#include <stdio.h>

#include "omni_time.h"

bool run_until(struct event_base *base, cond_fn cond, void *arg, int ms)
{
    int64_t end = omni_now_ms() + ms;
    while (!cond(arg)) {
        if (omni_now_ms() > end)
            return false;
        event_base_loop(base, EVLOOP_ONCE);
    }
    return true;
}

bool is_done(void *arg)
{
    return ((struct result *)arg)->done;
}

void on_done(void *arg, enum omni_err err, const char *msg, json_t *result)
{
    struct result *r = arg;
    r->done = true;
    r->err = err;
    snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "");
    r->res = result ? json_deep_copy(result) : NULL;
}
