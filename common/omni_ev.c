/*
 * omni_ev - the event loop every Omni process runs.
 *
 * libevent documents one hazard of the change list: an fd that is
 * dup()ed while registered.  No Omni process registers a dup()ed fd
 * (children dup2 their pipes after fork, in their own process).
 */
#include "omni_ev.h"

struct event_base *omni_ev_base_new(void)
{
    struct event_config *cfg = event_config_new();
    if (!cfg)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}
