/*
 * mcp.h - the MCP worker's internal interfaces, one section per file.
 *
 * The worker is a client of many MCP servers (stdio children and
 * Streamable HTTP endpoints) and an MCP server itself (behind the HTTP
 * front's /mcp).  Layers, bottom up: framing and JSON-RPC helpers
 * (mcp_lines, mcp_sse, mcp_rpc), pure policy (mcp_config, mcp_era,
 * mcp_catalog), transports (mcp_stdio, mcp_http over mcp_curl), one
 * upstream connection (mcp_up), the set of them (mcp_hub), Omni's own
 * MCP server side (mcp_front), and the broker operations (mcp_ops).
 * Everything runs on one libevent loop; nothing here blocks.
 */
#ifndef OMNI_MCP_H
#define OMNI_MCP_H

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omni_buf.h"
#include "omni_err.h"

#define OMNI_MCP_SEP       "__"
#define OMNI_MCP_MAX_PAGES 1000

/* ---- mcp_lines.c: newline-delimited framing with a size limit ---- */

struct omni_mcp_lines {
    struct omni_buf buf; /* the unfinished line */
    size_t max;          /* longest line accepted, newline excluded */
    bool dropping;       /* inside an over-long line: skip to '\n' */
    size_t dropped;      /* bytes of it so far */
    char tail[128];      /* its last bytes */
    size_t tailn;
};

/* One complete line (no newline, trailing '\r' removed, never empty). */
typedef void (*omni_mcp_line_cb)(void *arg, const char *line, size_t n);
/* A line went over the limit: called as soon as seen (end false, edge
 * = its first bytes) and again when its newline comes (end true, edge =
 * its last bytes), with the bytes counted so far. */
typedef void (*omni_mcp_long_cb)(void *arg, size_t n, const char *edge,
                                 size_t edgen, bool end);

void omni_mcp_lines_init(struct omni_mcp_lines *l, size_t max);
void omni_mcp_lines_release(struct omni_mcp_lines *l);
/* Split p[0..n) into lines.  The callbacks must not release l. */
void omni_mcp_lines_feed(struct omni_mcp_lines *l, const char *p, size_t n,
                         omni_mcp_line_cb line, omni_mcp_long_cb too_long,
                         void *arg);

/* ---- mcp_sse.c: text/event-stream parser ---- */

struct omni_mcp_sse {
    struct omni_mcp_lines lines;
    struct omni_buf data;  /* data lines of the event being read */
    struct omni_buf event; /* its event type */
    bool has_data;
    bool overflow; /* the event went over max: drop it */
    size_t max;
};

/* One dispatched event: type ("message" when absent) and data. */
typedef void (*omni_mcp_sse_cb)(void *arg, const char *event, const char *data,
                                size_t n);

void omni_mcp_sse_init(struct omni_mcp_sse *s, size_t max);
void omni_mcp_sse_release(struct omni_mcp_sse *s);
/* Feed body bytes.  Events whose data exceed max are dropped and
 * reported through too_long (may be NULL). */
void omni_mcp_sse_feed(struct omni_mcp_sse *s, const char *p, size_t n,
                       omni_mcp_sse_cb cb, omni_mcp_long_cb too_long,
                       void *arg);

/* ---- mcp_rpc.c: JSON-RPC 2.0 messages and the pending table ---- */

enum omni_mcp_kind {
    OMNI_MCP_INVALID = 0,
    OMNI_MCP_REQUEST,
    OMNI_MCP_NOTIFICATION,
    OMNI_MCP_RESPONSE,
};

/* What a message is; a response has an id and exactly one of result
 * and error; a request's id is a string or an integer. */
enum omni_mcp_kind omni_mcp_classify(const json_t *m);
/* Serialize compactly, no newline inside; caller frees. */
char *omni_mcp_dump(const json_t *m, size_t *n);
/* New message objects (caller owns the reference). */
json_t *omni_mcp_request(int64_t id, const char *method, json_t *params);
json_t *omni_mcp_notification(const char *method, json_t *params);
json_t *omni_mcp_result(const json_t *id, json_t *result);
json_t *omni_mcp_error(const json_t *id, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Read a response id we issued (integer, or a string of digits). */
bool omni_mcp_id_value(const json_t *id, int64_t *out);

struct omni_mcp_up;
struct omni_mcp_pending;

enum omni_mcp_outcome {
    OMNI_MCP_OK,         /* result */
    OMNI_MCP_RPC_ERROR,  /* JSON-RPC error object */
    OMNI_MCP_TIMEOUT,    /* no reply in time */
    OMNI_MCP_DOWN,       /* the server went away */
    OMNI_MCP_HTTP_ERROR, /* HTTP status other than 2xx */
};

struct omni_mcp_reply {
    enum omni_mcp_outcome outcome;
    json_t *result;  /* OK: borrowed */
    json_t *error;   /* RPC_ERROR, or HTTP_ERROR with a JSON-RPC body */
    int http_status; /* HTTP transports */
    const char *why; /* TIMEOUT, DOWN, HTTP_ERROR: text */
};

typedef void (*omni_mcp_reply_fn)(struct omni_mcp_pending *p,
                                  const struct omni_mcp_reply *r);

/* A request we sent and await.  Owned by the up's table until answered,
 * then freed by the table's owner right after the callback returns. */
struct omni_mcp_pending {
    int64_t id;
    struct omni_mcp_pending *next; /* hash chain */
    struct omni_mcp_up *up;
    json_t *msg; /* the request as sent (one HTTP retry) */
    bool retried;
    struct event *timer; /* NULL: no timeout of its own */
    omni_mcp_reply_fn fn;
    void *arg;
    void *xfer; /* HTTP transfer carrying it */
    bool held;  /* waiting for a new session (HTTP) */
    struct omni_mcp_pending *hnext;
};

struct omni_mcp_ptab {
    struct omni_mcp_pending **slots;
    size_t nslots; /* power of two */
    size_t count;
    int64_t next_id;
};

void omni_mcp_ptab_init(struct omni_mcp_ptab *t);
/* Frees the table only; entries must have been taken out. */
void omni_mcp_ptab_release(struct omni_mcp_ptab *t);
/* Give p a fresh id and insert it. */
void omni_mcp_ptab_add(struct omni_mcp_ptab *t, struct omni_mcp_pending *p);
struct omni_mcp_pending *omni_mcp_ptab_find(const struct omni_mcp_ptab *t,
                                            int64_t id);
/* Remove p (no-op if absent). */
void omni_mcp_ptab_remove(struct omni_mcp_ptab *t, struct omni_mcp_pending *p);
/* Remove and return any entry, or NULL when empty. */
struct omni_mcp_pending *omni_mcp_ptab_pop(struct omni_mcp_ptab *t);

/* ---- mcp_pager.c: accumulating a paged list ---- */

struct omni_mcp_pager {
    json_t *items;   /* array being filled */
    const char *key; /* "tools", "prompts", "resources" */
    char *cursor;    /* next cursor, or NULL when done */
    json_t *seen;    /* cursors already followed */
    unsigned pages;
};

void omni_mcp_pager_init(struct omni_mcp_pager *g, const char *key);
void omni_mcp_pager_release(struct omni_mcp_pager *g);
/* Add one page result.  Returns 1 if another page is to be fetched
 * (g->cursor), 0 when complete, -1 with err on a malformed page, a
 * repeated cursor or too many pages. */
int omni_mcp_pager_add(struct omni_mcp_pager *g, const json_t *result,
                       char err[OMNI_ERR_LEN]);
/* Take the finished array (caller owns it). */
json_t *omni_mcp_pager_take(struct omni_mcp_pager *g);

/* ---- mcp_config.c: the mcpServers file ---- */

enum omni_mcp_tp { OMNI_MCP_STDIO, OMNI_MCP_HTTP };

struct omni_mcp_server_cfg {
    char *name;
    enum omni_mcp_tp tp;
    char *command;  /* stdio */
    char **argv;    /* stdio: command, args..., NULL */
    char **env;     /* stdio: "K=V" from the entry, NULL-terminated */
    char *url;      /* http */
    char **headers; /* http: "Name: value", NULL-terminated */
};

struct omni_mcp_config {
    struct omni_mcp_server_cfg *servers; /* sorted by name */
    size_t n;
    char **errors; /* entries refused, one message each */
    size_t nerrors;
};

/* Parse an mcpServers document.  A document that is not JSON or has no
 * "mcpServers" object fails with err; a bad entry is refused alone, its
 * reason appended to cfg->errors.  Header values are registered with
 * the log redactor. */
enum omni_err omni_mcp_config_parse(const char *text, size_t n,
                                    struct omni_mcp_config *cfg,
                                    char err[OMNI_ERR_LEN]);
/* Read spec: a path, or the JSON itself when it starts with '{'. */
enum omni_err omni_mcp_config_load(const char *spec,
                                   struct omni_mcp_config *cfg,
                                   char err[OMNI_ERR_LEN]);
void omni_mcp_config_release(struct omni_mcp_config *cfg);
/* True if name can prefix tools: [A-Za-z0-9_-]{1,64}, no "__", not
 * ending in '_' (so "server__tool" splits one way only). */
bool omni_mcp_server_name_ok(const char *name);

/* ---- mcp_era.c: protocol versions and the era probe ---- */

#define OMNI_MCP_V_MODERN "2026-07-28"
#define OMNI_MCP_V_LATEST "2025-11-25"

enum omni_mcp_era {
    OMNI_MCP_ERA_UNKNOWN,
    OMNI_MCP_ERA_LEGACY,
    OMNI_MCP_ERA_MODERN
};

/* Client side: the version a server answered to our initialize, if we
 * speak it (returns our static copy), else NULL. */
const char *omni_mcp_version_accept(const char *answered);
/* Server side: the version to answer to a client's initialize. */
const char *omni_mcp_version_negotiate(const char *requested);
/* True for a handshake-era version we serve. */
bool omni_mcp_version_known(const char *v);
/* The era a probe (server/discover) reply means: for stdio, a result or
 * a modern error means modern, anything else (other errors, timeout)
 * legacy; for HTTP, a result or a 400 whose body is a modern error. */
enum omni_mcp_era omni_mcp_era_decide(enum omni_mcp_tp tp,
                                      const struct omni_mcp_reply *r);
/* The _meta envelope of a modern request (new reference). */
json_t *omni_mcp_modern_meta(void);

/* ---- mcp_catalog.c: the merged tool list ---- */

struct omni_mcp_tool {
    char *name;        /* "server__tool" */
    size_t server;     /* index into the hub's servers */
    const char *sname; /* server name, borrowed from the config */
    char *tool;        /* the upstream name */
    json_t *def;       /* upstream tool object (reference held) */
};

struct omni_mcp_catalog {
    struct omni_mcp_tool *tools; /* sorted by name */
    size_t n;
};

/* The tools one server listed, as input to the merge. */
struct omni_mcp_source {
    const char *server;
    const json_t *tools; /* array, may be NULL */
};

/* Called for each tool left out: a collision or a malformed entry. */
typedef void (*omni_mcp_refuse_cb)(void *arg, const char *msg);

/* Build cat from the sources, sorted by namespaced name.  A name that
 * is already taken is refused (first source, first position wins), as
 * is a tool without a string name; each refusal reported. */
void omni_mcp_catalog_build(struct omni_mcp_catalog *cat,
                            const struct omni_mcp_source *src, size_t n,
                            omni_mcp_refuse_cb refuse, void *arg);
void omni_mcp_catalog_release(struct omni_mcp_catalog *cat);
const struct omni_mcp_tool *
omni_mcp_catalog_find(const struct omni_mcp_catalog *cat, const char *name);
/* Index of the first tool whose name is >= name. */
size_t omni_mcp_catalog_lower(const struct omni_mcp_catalog *cat,
                              const char *name);
/* {"tools":[{"name","description","inputSchema","server"}]}, keeping
 * only what filter allows: {"servers":[...],"allowed_tools":[...]}
 * (either may be absent; a tool matches allowed_tools by its upstream
 * or namespaced name).  Returns NULL with err if filter is malformed. */
json_t *omni_mcp_catalog_json(const struct omni_mcp_catalog *cat,
                              const json_t *filter, char err[OMNI_ERR_LEN]);
/* The tool as Omni's MCP server lists it: the upstream object with the
 * namespaced name (new reference). */
json_t *omni_mcp_catalog_tool(const struct omni_mcp_tool *t);
/* True if the two catalogs list the same tools with the same
 * definitions (decides whether to tell clients it changed). */
bool omni_mcp_catalog_same(const struct omni_mcp_catalog *a,
                           const struct omni_mcp_catalog *b);

/* ---- mcp_curl.c: libcurl multi on libevent ---- */

struct omni_mcp_curl;
/* A finished transfer; the easy handle is already out of the multi. */
typedef void (*omni_mcp_curl_done)(void *arg, CURL *easy, int curlcode);

struct omni_mcp_curl *omni_mcp_curl_new(struct event_base *base);
void omni_mcp_curl_free(struct omni_mcp_curl *c);
/* Start easy; done is called once when it ends (never from inside this
 * call).  Returns 0 or -1. */
int omni_mcp_curl_add(struct omni_mcp_curl *c, CURL *easy,
                      omni_mcp_curl_done done, void *arg);
/* Abort easy; done is not called.  Not from curl's own callbacks. */
void omni_mcp_curl_remove(struct omni_mcp_curl *c, CURL *easy);

/* ---- transports (mcp_stdio.c, mcp_http.c) ---- */

struct omni_mcp_tp_ops {
    /* Connect or spawn; 0, or -1 with why filled. */
    int (*open)(struct omni_mcp_up *u, char why[OMNI_ERR_LEN]);
    /* Send one message; p is its pending entry for requests, else NULL. */
    void (*send)(struct omni_mcp_up *u, const json_t *msg,
                 struct omni_mcp_pending *p);
    /* p will not be answered any more: stop carrying it. */
    void (*forget)(struct omni_mcp_up *u, struct omni_mcp_pending *p);
    /* The session is established (HTTP: open the GET stream). */
    void (*ready)(struct omni_mcp_up *u);
    /* Forget the session (HTTP: session id), keep the transport. */
    void (*reset)(struct omni_mcp_up *u);
    /* Tear down; no callbacks after.  Never called from the transport's
     * own callbacks. */
    void (*close)(struct omni_mcp_up *u);
    /* For stats: child pid or 0. */
    long (*pid)(const struct omni_mcp_up *u);
};

extern const struct omni_mcp_tp_ops omni_mcp_stdio_ops;
extern const struct omni_mcp_tp_ops omni_mcp_http_ops;

/* ---- mcp_up.c: one upstream server ---- */

enum omni_mcp_state {
    OMNI_MCP_S_DOWN,    /* waiting to (re)start */
    OMNI_MCP_S_PROBING, /* server/discover sent */
    OMNI_MCP_S_INIT,    /* initialize sent */
    OMNI_MCP_S_READY,
    OMNI_MCP_S_STOPPED, /* shutting down for good */
};

struct omni_mcp_hub;
struct omni_mcp_call;
struct omni_mcp_gather_part;

struct omni_mcp_up {
    struct omni_mcp_hub *hub;
    size_t index; /* in the hub */
    const struct omni_mcp_server_cfg *cfg;
    const struct omni_mcp_tp_ops *ops;
    void *tp; /* transport state */
    enum omni_mcp_state state;
    enum omni_mcp_era era; /* remembered across restarts */
    char version[16];      /* negotiated, or the modern one */
    json_t *caps;          /* server capabilities */
    struct omni_mcp_ptab ptab;
    json_t *tools;               /* last complete tools/list */
    struct omni_mcp_pager pager; /* tools/list in progress */
    bool listing, relist;
    struct omni_mcp_pending *listen; /* modern subscriptions/listen */
    struct omni_mcp_call *queue;     /* calls waiting for READY */
    struct omni_mcp_call **qtail;
    struct omni_mcp_pending *held; /* HTTP: to resend after re-init */
    char why[OMNI_ERR_LEN];        /* last failure */
    struct event *restart_ev;
    struct event *fail_ev; /* deferred teardown */
    bool failing;
    int64_t backoff_ms;
    int64_t up_since;
    unsigned restarts;
};

struct omni_mcp_up *omni_mcp_up_new(struct omni_mcp_hub *hub, size_t index,
                                    const struct omni_mcp_server_cfg *cfg);
void omni_mcp_up_free(struct omni_mcp_up *u);
void omni_mcp_up_start(struct omni_mcp_up *u);
/* Transport upcalls. */
void omni_mcp_up_input(struct omni_mcp_up *u, const char *text, size_t n);
/* The transport is broken: fail everything, restart later. */
void omni_mcp_up_fail(struct omni_mcp_up *u, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* An HTTP request failed with a status (or a gone session). */
void omni_mcp_up_http_failed(struct omni_mcp_up *u, struct omni_mcp_pending *p,
                             int status, json_t *error, bool session_gone);
/* The HTTP session is gone outside any request (GET stream). */
void omni_mcp_up_session_gone(struct omni_mcp_up *u);
/* Answer p with r, remove it from the table, free it. */
void omni_mcp_up_answer(struct omni_mcp_up *u, struct omni_mcp_pending *p,
                        const struct omni_mcp_reply *r);
const char *omni_mcp_state_name(enum omni_mcp_state s);

/* ---- mcp_hub.c: every upstream, the catalog, calls ---- */

/* The end of a call: err OMNI_OK with result (borrowed), or an error
 * code and message. */
typedef void (*omni_mcp_done_fn)(void *arg, enum omni_err err, const char *msg,
                                 json_t *result);
typedef void (*omni_mcp_changed_fn)(void *arg);

struct omni_mcp_hub {
    struct event_base *base;
    struct omni_mcp_config cfg;
    struct omni_mcp_up **ups;
    size_t nups;
    struct omni_mcp_curl *curl;
    struct omni_mcp_catalog cat;
    omni_mcp_changed_fn changed; /* catalog changed (front) */
    void *changed_arg;
    int64_t call_timeout_ms;
    int64_t init_timeout_ms;
    int64_t restart_min_ms;
    int64_t restart_max_ms;
    size_t max_line;
    bool stopping;
};

/* Make the hub for cfg (taken over: *cfg is cleared) and start every
 * server.  Settings from omni_cfg. */
struct omni_mcp_hub *omni_mcp_hub_new(struct event_base *base,
                                      struct omni_mcp_config *cfg);
void omni_mcp_hub_free(struct omni_mcp_hub *h);
/* Rebuild the catalog from every server's tools; call h->changed if it
 * differs. */
void omni_mcp_hub_rebuild(struct omni_mcp_hub *h);
/* Call tool name with arguments (borrowed; NULL: {}).  deadline is an
 * absolute omni_now_ms() time, 0 = only mcp.call_timeout_ms.  Returns
 * a handle, or NULL when done was already called (unknown tool, server
 * down). */
struct omni_mcp_call *omni_mcp_hub_call(struct omni_mcp_hub *h,
                                        const char *name, json_t *arguments,
                                        int64_t deadline, omni_mcp_done_fn done,
                                        void *arg);
/* The caller gives up on c: tell the server, never call done. */
void omni_mcp_call_cancel(struct omni_mcp_call *c);
/* Gather method ("prompts/list" or "resources/list") from every ready
 * server that declares the capability, merged under key. */
struct omni_mcp_call *omni_mcp_hub_gather(struct omni_mcp_hub *h,
                                          const char *what,
                                          omni_mcp_done_fn done, void *arg);
/* Find the server by name, or NULL. */
struct omni_mcp_up *omni_mcp_hub_server(struct omni_mcp_hub *h,
                                        const char *name, size_t n);
/* ,"servers":{...} for stats. */
void omni_mcp_hub_stats(struct omni_mcp_hub *h, struct omni_buf *out);

/* mcp_up.c and mcp_hub.c share the call record. */
struct omni_mcp_call {
    struct omni_mcp_hub *hub;
    struct omni_mcp_up *up;
    char *tool; /* upstream name */
    json_t *args;
    omni_mcp_done_fn done;
    void *arg;
    struct event *timer;
    int64_t timeout_ms;
    struct omni_mcp_pending *p;  /* while sent */
    struct omni_mcp_call *qnext; /* while queued */
    bool queued;
    /* gather */
    const char *what;
    json_t *merged;
    unsigned waiting;
    struct omni_mcp_gather_part *parts;
};

/* mcp_up.c: send or queue c on its server.  Returns 0 while under way,
 * 1 when c was already finished (server down). */
int omni_mcp_up_call(struct omni_mcp_up *u, struct omni_mcp_call *c);
/* Drop c from u's queue or table, telling the server it was cancelled
 * (reason) if it was sent. */
void omni_mcp_up_uncall(struct omni_mcp_up *u, struct omni_mcp_call *c,
                        const char *reason);
/* Stop waiting for p: stop its transfer, tell the server (reason), free
 * it without calling its callback. */
void omni_mcp_up_drop(struct omni_mcp_up *u, struct omni_mcp_pending *p,
                      const char *reason);
/* Send a request with a callback (internal requests: lists). */
struct omni_mcp_pending *omni_mcp_up_request(struct omni_mcp_up *u,
                                             const char *method, json_t *params,
                                             int64_t timeout_ms,
                                             omni_mcp_reply_fn fn, void *arg);
/* mcp_hub.c: end c with err/msg/result and free it. */
void omni_mcp_call_finish(struct omni_mcp_call *c, enum omni_err err,
                          const char *msg, json_t *result);

/* ---- mcp_front.c: Omni as an MCP server ---- */

struct omni_mcp_front;
struct omni_mcp_rpc;
struct omni_mcp_listener;

/* The final answer to an rpc: {"session","status","message"}. */
typedef void (*omni_mcp_rpc_fn)(void *arg, json_t *answer);
typedef void (*omni_mcp_push_fn)(void *arg, const char *json, size_t n);
typedef void (*omni_mcp_end_fn)(void *arg);

struct omni_mcp_front *omni_mcp_front_new(struct omni_mcp_hub *hub);
void omni_mcp_front_free(struct omni_mcp_front *f);
/* Handle one rpc body.  Returns a handle while a tools/call is under
 * way, NULL when fn was already called. */
struct omni_mcp_rpc *omni_mcp_front_rpc(struct omni_mcp_front *f,
                                        const json_t *body, int64_t deadline,
                                        omni_mcp_rpc_fn fn, void *arg);
void omni_mcp_front_rpc_cancel(struct omni_mcp_rpc *r);
/* Open a notification stream for session.  NULL with err when the
 * session is unknown (NOT_FOUND). */
struct omni_mcp_listener *omni_mcp_front_listen(struct omni_mcp_front *f,
                                                const char *session,
                                                omni_mcp_push_fn push,
                                                omni_mcp_end_fn end, void *arg,
                                                char err[OMNI_ERR_LEN]);
void omni_mcp_front_unlisten(struct omni_mcp_listener *l);
/* Tell every listener the tool list changed. */
void omni_mcp_front_changed(void *front);
/* End every listen stream (drain: they never end by themselves). */
void omni_mcp_front_end_streams(struct omni_mcp_front *f);
size_t omni_mcp_front_sessions(const struct omni_mcp_front *f);

/* ---- mcp_ops.c: the broker operations ---- */

struct omni_worker_def;
extern const struct omni_worker_def omni_mcp_worker_def;

#endif
