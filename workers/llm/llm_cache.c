/*
 * llm_cache - Redis response cache (see llm_cache.h).
 *
 * Owns one hiredis async context and its timers (connect timeout,
 * reconnect backoff) and one timeout per lookup.  A lookup is a small
 * heap object handed to hiredis as privdata: when it times out or is
 * cancelled it becomes an orphan, and the reply callback (which hiredis
 * always calls, with a NULL reply at worst when the context goes) frees
 * it.  SHA-256 comes from OpenSSL's libcrypto.
 */
#include "llm_cache.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "omni_alloc.h"
#include "omni_log.h"
#include "omni_time.h"

#define CONNECT_TIMEOUT_MS 2000
#define BACKOFF_MIN_MS     100
#define BACKOFF_MAX_MS     5000
#define WARN_EVERY_MS      30000

/* Fields that do not change the answer. */
static const char *const dropped[] = {
    "stream",       "stream_options",   "user",
    "omni",         "metadata",         "store",
    "service_tier", "prompt_cache_key", "safety_identifier",
};

struct llm_cache {
    struct event_base *base;
    struct llm_cache_url url;
    redisAsyncContext *ac;
    enum llm_cache_state state;
    long ttl_s;
    long timeout_ms;
    struct event *conn_timer;  /* connect timeout */
    struct event *retry_timer; /* reconnect */
    long backoff_ms;
    int64_t last_warn;
    bool closing;
};

struct llm_cache_op {
    llm_cache_cb cb;
    void *arg;
    struct event *tmo;
    bool orphan;
};

static int dump_cb(const char *p, size_t n, void *arg)
{
    omni_buf_add(arg, p, n);
    return 0;
}

void llm_cache_canonical(json_t *req, const char *model, struct omni_buf *out)
{
    json_t *o = json_copy(req);
    for (size_t i = 0; i < sizeof dropped / sizeof *dropped; i++)
        json_object_del(o, dropped[i]);
    json_object_set_new(o, "model", json_string(model));
    json_dump_callback(o, dump_cb, out, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(o);
}

void llm_cache_key(json_t *req, const char *model, char key[LLM_CACHE_KEY_LEN])
{
    static const char hex[] = "0123456789abcdef";
    struct omni_buf b = OMNI_BUF_INIT;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    llm_cache_canonical(req, model, &b);
    EVP_Digest(b.data, b.len, md, &mdlen, EVP_sha256(), NULL);
    omni_buf_release(&b);
    size_t k = sizeof LLM_CACHE_PREFIX - 1;
    memcpy(key, LLM_CACHE_PREFIX, k);
    for (unsigned i = 0; i < mdlen && i < 32; i++) {
        key[k++] = hex[md[i] >> 4];
        key[k++] = hex[md[i] & 15];
    }
    key[k] = '\0';
}

void llm_cache_url_release(struct llm_cache_url *u)
{
    omni_free(u->host);
    omni_free(u->path);
    omni_free(u->user);
    omni_free(u->pass);
    memset(u, 0, sizeof *u);
}

static bool parse_int(const char *s, size_t n, long lo, long hi, int *out)
{
    long v = 0;
    if (n == 0 || n > 9)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static enum omni_err bad_url(struct llm_cache_url *u, char err[OMNI_ERR_LEN],
                             const char *why)
{
    llm_cache_url_release(u);
    snprintf(err, OMNI_ERR_LEN, "bad redis_url: %s", why);
    return OMNI_E_CONFIG;
}

enum omni_err llm_cache_parse_url(const char *url, struct llm_cache_url *u,
                                  char err[OMNI_ERR_LEN])
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (strncmp(url, "unix://", 7) == 0) {
        const char *p = url + 7, *q = strchr(p, '?');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 0 || p[0] != '/')
            return bad_url(u, err, "want unix:///path/to/redis.sock");
        if (q && (strncmp(q, "?db=", 4) != 0 ||
                  !parse_int(q + 4, strlen(q + 4), 0, 1 << 20, &u->db)))
            return bad_url(u, err, "want ?db=N after the socket path");
        u->path = omni_strndup(p, n);
        return OMNI_OK;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return bad_url(u, err, "want redis://host:port/db or unix:///path");
    const char *p = url + 8, *end = p + strlen(p);
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *hp_end = slash ? slash : end;
    const char *at = NULL;
    for (const char *s = p; s < hp_end; s++)
        if (*s == '@')
            at = s;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (colon > p)
                u->user = omni_strndup(p, (size_t)(colon - p));
            u->pass = omni_strndup(colon + 1, (size_t)(at - colon - 1));
        } else {
            u->pass = omni_strndup(p, (size_t)(at - p));
        }
        p = at + 1;
    }
    const char *host = p, *host_end, *port = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(hp_end - p));
        if (!rb)
            return bad_url(u, err, "unclosed '[' in the host");
        host = p + 1;
        host_end = rb;
        if (rb + 1 < hp_end) {
            if (rb[1] != ':')
                return bad_url(u, err, "want ':port' after ']'");
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(hp_end - p));
        host_end = colon ? colon : hp_end;
        if (colon)
            port = colon + 1;
    }
    if (host_end == host)
        return bad_url(u, err, "missing host");
    if (port && !parse_int(port, (size_t)(hp_end - port), 1, 65535, &u->port))
        return bad_url(u, err, "bad port");
    if (slash && slash + 1 < end &&
        !parse_int(slash + 1, (size_t)(end - slash - 1), 0, 1 << 20, &u->db))
        return bad_url(u, err, "bad database number");
    u->host = omni_strndup(host, (size_t)(host_end - host));
    return OMNI_OK;
}

static void warn_down(struct llm_cache *c, const char *what, const char *why)
{
    int64_t now = omni_now_ms();
    if (c->last_warn && now - c->last_warn < WARN_EVERY_MS)
        return;
    c->last_warn = now;
    if (c->url.host)
        omni_warn("cache unavailable: %s redis at '%s:%d': %s; serving "
                  "without the cache",
                  what, c->url.host, c->url.port, why);
    else
        omni_warn("cache unavailable: %s redis at '%s': %s; serving "
                  "without the cache",
                  what, c->url.path, why);
}

static void schedule_reconnect(struct llm_cache *c)
{
    c->state = LLM_CACHE_DOWN;
    struct timeval tv = {c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000};
    evtimer_add(c->retry_timer, &tv);
    c->backoff_ms *= 2;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *arg)
{
    redisReply *r = reply;
    (void)ac;
    if (r && r->type == REDIS_REPLY_ERROR)
        omni_warn("cache: redis refused '%s': %s", (const char *)arg, r->str);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct llm_cache *c = ac->data;
    evtimer_del(c->conn_timer);
    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns. */
        c->ac = NULL;
        warn_down(c, "cannot connect to", ac->errstr);
        schedule_reconnect(c);
        return;
    }
    c->state = LLM_CACHE_UP;
    c->backoff_ms = BACKOFF_MIN_MS;
    if (c->last_warn) {
        omni_info("cache: connected to redis again");
        c->last_warn = 0;
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct llm_cache *c = ac->data;
    (void)status;
    c->ac = NULL;
    if (c->closing)
        return;
    warn_down(c, "lost", ac->errstr[0] ? ac->errstr : "connection closed");
    schedule_reconnect(c);
}

static void connect_now(struct llm_cache *c)
{
    redisAsyncContext *ac = c->url.host
                                ? redisAsyncConnect(c->url.host, c->url.port)
                                : redisAsyncConnectUnix(c->url.path);
    if (!ac || ac->err) {
        warn_down(c, "cannot connect to", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_reconnect(c);
        return;
    }
    ac->data = c;
    redisLibeventAttach(ac, c->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->state = LLM_CACHE_CONNECTING;
    /* Commands queue until the connection is up, so authentication and
     * the database go first. */
    if (c->url.pass && c->url.user)
        redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s %s", c->url.user,
                          c->url.pass);
    else if (c->url.pass)
        redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s", c->url.pass);
    if (c->url.db)
        redisAsyncCommand(ac, on_setup_reply, "SELECT", "SELECT %d", c->url.db);
    struct timeval tv = {CONNECT_TIMEOUT_MS / 1000,
                         (CONNECT_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(c->conn_timer, &tv);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_now(arg);
}

/* A connect that hangs (a dropped SYN) would otherwise last minutes. */
static void on_conn_timer(evutil_socket_t fd, short what, void *arg)
{
    struct llm_cache *c = arg;
    (void)fd;
    (void)what;
    if (c->state != LLM_CACHE_CONNECTING || !c->ac)
        return;
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    redisAsyncFree(ac);
    warn_down(c, "cannot connect to", "connect timed out");
    schedule_reconnect(c);
}

struct llm_cache *llm_cache_new(struct event_base *base, const char *url,
                                long ttl_s, long timeout_ms,
                                char err[OMNI_ERR_LEN])
{
    struct llm_cache *c = omni_calloc(1, sizeof *c);
    if (llm_cache_parse_url(url, &c->url, err) != OMNI_OK) {
        omni_free(c);
        return NULL;
    }
    c->base = base;
    c->ttl_s = ttl_s;
    c->timeout_ms = timeout_ms;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->conn_timer = evtimer_new(base, on_conn_timer, c);
    c->retry_timer = evtimer_new(base, on_retry_timer, c);
    connect_now(c);
    return c;
}

void llm_cache_free(struct llm_cache *c)
{
    if (!c)
        return;
    c->closing = true;
    if (c->ac)
        redisAsyncFree(c->ac);
    event_free(c->conn_timer);
    event_free(c->retry_timer);
    llm_cache_url_release(&c->url);
    omni_free(c);
}

enum llm_cache_state llm_cache_state(const struct llm_cache *c)
{
    return c->state;
}

const char *llm_cache_state_name(const struct llm_cache *c)
{
    switch (c->state) {
    case LLM_CACHE_CONNECTING: return "connecting";
    case LLM_CACHE_UP: return "up";
    case LLM_CACHE_DOWN: return "down";
    }
    return "down";
}

static void op_free(struct llm_cache_op *op)
{
    event_free(op->tmo);
    omni_free(op);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *arg)
{
    struct llm_cache_op *op = arg;
    redisReply *r = reply;
    (void)ac;
    if (op->orphan) {
        op_free(op);
        return;
    }
    event_del(op->tmo);
    if (r && r->type == REDIS_REPLY_STRING)
        op->cb(op->arg, LLM_CACHE_HIT, r->str, r->len);
    else if (r && r->type == REDIS_REPLY_NIL)
        op->cb(op->arg, LLM_CACHE_MISS, NULL, 0);
    else
        op->cb(op->arg, LLM_CACHE_UNAVAILABLE, NULL, 0);
    op_free(op);
}

static void on_op_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct llm_cache_op *op = arg;
    (void)fd;
    (void)what;
    op->orphan = true;
    op->cb(op->arg, LLM_CACHE_UNAVAILABLE, NULL, 0);
}

struct llm_cache_op *llm_cache_get(struct llm_cache *c, const char *key,
                                   const char *field, llm_cache_cb cb,
                                   void *arg)
{
    if (c->state != LLM_CACHE_UP || !c->ac)
        return NULL;
    struct llm_cache_op *op = omni_calloc(1, sizeof *op);
    op->cb = cb;
    op->arg = arg;
    op->tmo = evtimer_new(c->base, on_op_timeout, op);
    const char *argv[] = {"HGET", key, field};
    if (redisAsyncCommandArgv(c->ac, on_reply, op, 3, argv, NULL) != REDIS_OK) {
        op_free(op);
        return NULL;
    }
    struct timeval tv = {c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000};
    evtimer_add(op->tmo, &tv);
    return op;
}

void llm_cache_op_cancel(struct llm_cache_op *op)
{
    if (!op)
        return;
    op->orphan = true;
    event_del(op->tmo);
}

void llm_cache_put(struct llm_cache *c, const char *key, const char *field,
                   const char *val, size_t n)
{
    if (c->state != LLM_CACHE_UP || !c->ac)
        return;
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%ld", c->ttl_s);
    const char *hset[] = {"HSET", key, field, val};
    size_t hset_len[] = {4, strlen(key), strlen(field), n};
    const char *exp[] = {"EXPIRE", key, ttl};
    redisAsyncCommandArgv(c->ac, NULL, NULL, 4, hset, hset_len);
    redisAsyncCommandArgv(c->ac, NULL, NULL, 3, exp, NULL);
}
