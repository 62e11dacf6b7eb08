/*
 * mcp_testlib - loop, call and result helpers of the MCP tests.
 */
#include "mcp_testlib.h"

#include <stdio.h>
#include <string.h>

#include "mcp.h"
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

bool hub_call(struct event_base *base, struct omni_mcp_hub *hub,
              const char *name, const char *args, int64_t deadline,
              struct result *r)
{
    memset(r, 0, sizeof *r);
    json_t *a = args ? json_loads(args, 0, NULL) : NULL;
    omni_mcp_hub_call(hub, name, a, deadline, on_done, r);
    json_decref(a);
    return run_until(base, is_done, r, 15000);
}

const char *text0(const json_t *res)
{
    const char *s = json_string_value(json_object_get(
        json_array_get(json_object_get(res, "content"), 0), "text"));
    return s ? s : "(no text)";
}
