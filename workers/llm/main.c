/*
 * omni-llm - the llm worker: chat, embeddings and models over the
 * providers' HTTP APIs (libcurl multi), with a Redis response cache, all
 * on the worker runtime's one event loop.
 *
 * Exits 1 at start-up when the provider list or the Redis URL is
 * malformed; a provider or Redis that is down later only fails (or
 * un-caches) the requests that need it.
 */
#include <curl/curl.h>
#include <sys/resource.h>

#include "llm.h"
#include "omni_log.h"

/* One worker holds thousands of upstream connections at once: lift the
 * soft limit on open files to the hard one. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            omni_warn("cannot raise the open-file limit");
    }
}

static int init(struct omni_worker *w)
{
    char err[OMNI_ERR_LEN];
    raise_nofile();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        omni_error("cannot initialise libcurl");
        return -1;
    }
    struct llm_engine *e = llm_engine_new(w, err);
    if (!e) {
        omni_error("cannot start the llm worker: %s", err);
        return -1;
    }
    omni_worker_set_data(w, e);
    return 0;
}

static void request(struct omni_wreq *r)
{
    struct llm_engine *e = omni_worker_data(omni_wreq_worker(r));
    if (!e) {
        omni_wreq_error(r, OMNI_E_UNAVAILABLE, 0, 0, "llm worker is draining");
        return;
    }
    llm_request(e, r);
}

static void cancel(struct omni_wreq *r)
{
    llm_cancel(r);
}

static void drain(struct omni_worker *w)
{
    struct llm_engine *e = omni_worker_data(w);
    if (e)
        llm_engine_drain(e);
}

static void stats(struct omni_worker *w, struct omni_buf *out)
{
    struct llm_engine *e = omni_worker_data(w);
    if (e)
        llm_stats_json(e, out);
}

int main(int argc, char **argv)
{
    static const struct omni_worker_def def = {
        .service = "llm",
        .capacity = 0, /* capacity.llm */
        .init = init,
        .request = request,
        .cancel = cancel,
        .shutdown = drain,
        .stats = stats,
    };
    int rc = omni_worker_main(argc, argv, &def);
    curl_global_cleanup();
    return rc;
}
