/*
 * store - hiredis async persistence, loader and change follower.
 *
 * Two connections on the worker's loop: "cmd" for loading, writes and
 * fetches, "sub" for XREAD BLOCK on the change stream (a blocked read
 * would hold up every other command of its connection).  Every
 * connection-scoped piece of work records the generation it started
 * in; a disconnection bumps the generation, so late callbacks (hiredis
 * calls pending ones with a NULL reply when a context goes away) see
 * the mismatch and only release their memory.
 */
#include "store.h"

#include <errno.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "omni_alloc.h"
#include "omni_buf.h"
#include "omni_log.h"
#include "omni_time.h"

#define STREAM          "omni:{rag}:changes"
#define STREAM_MAXLEN   "100000"
#define CHUNKS_PER_HSET 256

enum state { ST_DOWN, ST_LOADING, ST_UP };

struct change {
    struct change *next;
    bool del;
    char *coll, *doc;
};

struct load;

struct omni_rstore {
    struct event_base *base;
    char *host, *path, *user, *pass;
    int port, db;
    redisAsyncContext *cmd, *sub;
    enum state state;
    uint64_t gen;
    struct event *retry;
    struct omni_coll_params cp;
    struct omni_rstore_cbs cbs;
    void *arg;
    char origin[48];
    char last_id[64];
    struct load *load;
    struct change *qhead, *qtail;
    bool busy;   /* a change is being fetched */
    bool warned; /* the current outage was logged */
    bool freeing;
};

/* ---- small helpers ---- */

struct argv {
    const char **v;
    size_t *len;
    int n, cap;
    struct omni_buf own; /* numbers formatted for this command */
    size_t *own_at;      /* offsets into own, -1 for borrowed args */
};

static void arg_add(struct argv *a, const char *p, size_t n)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = omni_realloc(a->v, (size_t)a->cap * sizeof *a->v);
        a->len = omni_realloc(a->len, (size_t)a->cap * sizeof *a->len);
        a->own_at = omni_realloc(a->own_at, (size_t)a->cap * sizeof(size_t));
    }
    a->v[a->n] = p;
    a->len[a->n] = n;
    a->own_at[a->n] = (size_t)-1;
    a->n++;
}

static void arg_adds(struct argv *a, const char *s)
{
    arg_add(a, s, strlen(s));
}

/* A formatted argument, kept in a->own until the command is sent. */
static void arg_addf(struct argv *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void arg_addf(struct argv *a, const char *fmt, ...)
{
    size_t at = a->own.len;
    va_list ap;
    va_start(ap, fmt);
    omni_buf_vaddf(&a->own, fmt, ap);
    va_end(ap);
    omni_buf_addch(&a->own, '\0');
    arg_add(a, NULL, a->own.len - at - 1);
    a->own_at[a->n - 1] = at;
}

static int arg_send(redisAsyncContext *c, struct argv *a, redisCallbackFn *fn,
                    void *priv)
{
    for (int i = 0; i < a->n; i++)
        if (a->own_at[i] != (size_t)-1)
            a->v[i] = a->own.data + a->own_at[i];
    int rc = redisAsyncCommandArgv(c, fn, priv, a->n, a->v, a->len);
    a->n = 0;
    omni_buf_reset(&a->own);
    return rc;
}

static void arg_free(struct argv *a)
{
    omni_free(a->v);
    omni_free(a->len);
    omni_free(a->own_at);
    omni_buf_release(&a->own);
}

static void key(struct omni_buf *b, const char *coll, const char *what,
                const char *id)
{
    omni_buf_reset(b);
    omni_buf_addf(b, "omni:{rag:%s}:%s", coll, what);
    if (id) {
        omni_buf_addch(b, ':');
        omni_buf_adds(b, id);
    }
}

static bool reply_ok(const redisReply *r)
{
    return r && r->type != REDIS_REPLY_ERROR;
}

/* Field value of a HGETALL reply, or NULL. */
static const redisReply *hget(const redisReply *r, const char *field)
{
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            r->element[i]->len == strlen(field) &&
            memcmp(r->element[i]->str, field, strlen(field)) == 0)
            return r->element[i + 1];
    return NULL;
}

static long long hget_int(const redisReply *r, const char *field, bool *ok)
{
    const redisReply *v = hget(r, field);
    if (!v || v->type != REDIS_REPLY_STRING) {
        *ok = false;
        return 0;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%.*s", (int)(v->len < 31 ? v->len : 31), v->str);
    char *end;
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    if (errno || end == buf || *end)
        *ok = false;
    return x;
}

static char *hget_str(const redisReply *r, const char *field)
{
    const redisReply *v = hget(r, field);
    if (!v || v->type != REDIS_REPLY_STRING)
        return NULL;
    return omni_strndup(v->str, (size_t)v->len);
}

/* Build a prep from a document hash; chunks are filled separately.
 * NULL if the hash is empty (document gone) or malformed. */
static struct omni_prep *prep_from_doc(const redisReply *r, const char *id)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return NULL;
    bool ok = true;
    long long nch = hget_int(r, "chunks", &ok);
    long long bytes = hget_int(r, "bytes", &ok);
    long long ts = hget_int(r, "ingested_ms", &ok);
    char *hash = hget_str(r, "hash");
    char *md = hget_str(r, "metadata");
    json_t *mdj = md ? json_loads(md, 0, NULL) : NULL;
    omni_free(md);
    if (!ok || nch < 0 || nch > 100000000 || !hash || strlen(hash) != 64 ||
        !json_is_object(mdj)) {
        omni_warn("redis: document '%s' is malformed; skipped", id);
        omni_free(hash);
        json_decref(mdj);
        return NULL;
    }
    struct omni_prep *p = omni_calloc(1, sizeof *p);
    p->id = omni_strdup(id);
    memcpy(p->hash, hash, 65);
    omni_free(hash);
    p->metadata = mdj;
    p->content_type = hget_str(r, "content_type");
    p->bytes = (uint64_t)bytes;
    p->ingested_ms = ts;
    p->nchunks = (uint32_t)nch;
    p->chunks = omni_calloc(nch ? (size_t)nch : 1, sizeof *p->chunks);
    return p;
}

/* Fill p's chunks and vectors from its chunk hash; false if any chunk
 * is missing or has a vector of the wrong size. */
static bool prep_chunks(struct omni_prep *p, const redisReply *r, uint32_t dim)
{
    p->vecs =
        omni_calloc(p->nchunks ? p->nchunks : 1, (size_t)dim * sizeof(float));
    char f[32];
    for (uint32_t i = 0; i < p->nchunks; i++) {
        snprintf(f, sizeof f, "t:%u", i);
        const redisReply *t = hget(r, f);
        snprintf(f, sizeof f, "p:%u", i);
        const redisReply *pr = hget(r, f);
        snprintf(f, sizeof f, "v:%u", i);
        const redisReply *v = hget(r, f);
        if (!t || !pr || !v || t->type != REDIS_REPLY_STRING ||
            pr->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            (size_t)v->len != dim * sizeof(float))
            return false;
        struct omni_prep_chunk *c = &p->chunks[i];
        c->text = omni_strndup(t->str, (size_t)t->len);
        c->len = (size_t)t->len;
        json_t *pj = json_loadb(pr->str, (size_t)pr->len, 0, NULL);
        c->start = (uint32_t)json_integer_value(json_object_get(pj, "s"));
        c->end = (uint32_t)json_integer_value(json_object_get(pj, "e"));
        c->page = (uint32_t)json_integer_value(json_object_get(pj, "pg"));
        const char *h = json_string_value(json_object_get(pj, "h"));
        c->heading = h ? omni_strdup(h) : NULL;
        json_decref(pj);
        memcpy(p->vecs + (size_t)i * dim, v->str, (size_t)v->len);
    }
    return true;
}

/* ---- connection life ---- */

static void start(struct omni_rstore *rs);
static void follow(struct omni_rstore *rs);
static void next_change(struct omni_rstore *rs);

static void clear_queue(struct omni_rstore *rs)
{
    while (rs->qhead) {
        struct change *c = rs->qhead;
        rs->qhead = c->next;
        omni_free(c->coll);
        omni_free(c->doc);
        omni_free(c);
    }
    rs->qtail = NULL;
    rs->busy = false;
}

struct load {
    struct omni_rstore *rs;
    uint64_t gen;
    int pending;
    bool failed, scanned;
    struct omni_smap colls;
};

static void load_free(struct load *ld)
{
    size_t pos = 0;
    struct omni_smap_slot *s;
    while ((s = omni_smap_next(&ld->colls, &pos)))
        omni_coll_free(s->val);
    omni_smap_free(&ld->colls);
    omni_free(ld);
}

/* Drop both connections and try again in a second. */
static void teardown(struct omni_rstore *rs, const char *why)
{
    /* Warn once per outage; the retries every second stay quiet. */
    if (!rs->freeing && !rs->warned) {
        omni_warn("redis: %s; retrying every second", why);
        rs->warned = true;
    } else if (!rs->freeing) {
        omni_debug("redis: %s", why);
    }
    rs->state = ST_DOWN;
    rs->gen++;
    if (rs->load) {
        rs->load->failed = true;
        rs->load = NULL;
    }
    clear_queue(rs);
    redisAsyncContext *c = rs->cmd, *s = rs->sub;
    rs->cmd = rs->sub = NULL;
    if (c)
        redisAsyncFree(c);
    if (s)
        redisAsyncFree(s);
    if (!rs->freeing) {
        struct timeval tv = {1, 0};
        evtimer_add(rs->retry, &tv);
    }
}

static void on_connect(const redisAsyncContext *c, int status)
{
    struct omni_rstore *rs = c->data;
    if (status == REDIS_OK)
        return;
    /* hiredis frees c after this callback. */
    if (rs->cmd == c)
        rs->cmd = NULL;
    if (rs->sub == c)
        rs->sub = NULL;
    char why[OMNI_ERR_LEN];
    snprintf(why, sizeof why, "cannot connect: %s", c->errstr);
    teardown(rs, why);
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    struct omni_rstore *rs = c->data;
    (void)status;
    if (rs->cmd != c && rs->sub != c)
        return; /* we dropped it ourselves */
    if (rs->cmd == c)
        rs->cmd = NULL;
    if (rs->sub == c)
        rs->sub = NULL;
    char why[OMNI_ERR_LEN];
    snprintf(why, sizeof why, "connection lost: %s",
             c->err ? c->errstr : "closed by the server");
    teardown(rs, why);
}

static void on_setup(redisAsyncContext *c, void *r, void *priv)
{
    struct omni_rstore *rs = c->data;
    const redisReply *rep = r;
    (void)priv;
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        char why[OMNI_ERR_LEN];
        snprintf(why, sizeof why, "AUTH or SELECT failed: %.128s", rep->str);
        teardown(rs, why);
    }
}

static redisAsyncContext *open_ctx(struct omni_rstore *rs)
{
    redisAsyncContext *c = rs->path ? redisAsyncConnectUnix(rs->path)
                                    : redisAsyncConnect(rs->host, rs->port);
    if (!c)
        return NULL;
    if (c->err) {
        omni_debug("redis: cannot connect: %s", c->errstr);
        redisAsyncFree(c);
        return NULL;
    }
    c->data = rs;
    redisLibeventAttach(c, rs->base);
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    struct argv a = {0};
    if (rs->pass) {
        arg_adds(&a, "AUTH");
        if (rs->user)
            arg_adds(&a, rs->user);
        arg_adds(&a, rs->pass);
        arg_send(c, &a, on_setup, NULL);
    }
    if (rs->db) {
        arg_adds(&a, "SELECT");
        arg_addf(&a, "%d", rs->db);
        arg_send(c, &a, on_setup, NULL);
    }
    arg_free(&a);
    return c;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start(arg);
}

/* ---- loading ---- */

static void load_check(struct load *ld)
{
    if (ld->pending > 0 || (!ld->failed && !ld->scanned))
        return;
    struct omni_rstore *rs = ld->rs;
    bool current = rs->load == ld && ld->gen == rs->gen;
    if (current)
        rs->load = NULL;
    if (ld->failed || !current) {
        load_free(ld);
        return;
    }
    size_t chunks = 0, pos = 0;
    struct omni_smap_slot *s;
    while ((s = omni_smap_next(&ld->colls, &pos)))
        chunks += ((struct omni_coll *)s->val)->nchunks;
    omni_info("redis: loaded %zu collections, %zu chunks", ld->colls.len,
              chunks);
    rs->warned = false;
    struct omni_smap colls = ld->colls;
    ld->colls = (struct omni_smap)OMNI_SMAP_INIT;
    omni_free(ld);
    rs->state = ST_UP;
    rs->cbs.loaded(&colls, rs->arg);
    follow(rs);
}

struct ldoc {
    struct load *ld;
    char *coll, *id;
    struct omni_prep *p;
};

static void ldoc_free(struct ldoc *d)
{
    omni_prep_free(d->p);
    omni_free(d->coll);
    omni_free(d->id);
    omni_free(d);
}

static bool load_live(struct load *ld, const redisReply *r)
{
    if (!reply_ok(r) || ld->gen != ld->rs->gen)
        ld->failed = true;
    return !ld->failed;
}

static void on_load_chunks(redisAsyncContext *c, void *r, void *priv)
{
    struct ldoc *d = priv;
    struct load *ld = d->ld;
    (void)c;
    ld->pending--;
    if (load_live(ld, r)) {
        struct omni_coll *co =
            omni_smap_get(&ld->colls, d->coll, strlen(d->coll));
        if (co && prep_chunks(d->p, r, co->dim))
            omni_coll_put(co, d->p);
        else
            omni_warn("redis: chunks of '%s' in '%s' are malformed; skipped",
                      d->id, d->coll);
    }
    ldoc_free(d);
    load_check(ld);
}

static void on_load_doc(redisAsyncContext *c, void *r, void *priv)
{
    struct ldoc *d = priv;
    struct load *ld = d->ld;
    ld->pending--;
    if (load_live(ld, r) && (d->p = prep_from_doc(r, d->id))) {
        struct omni_buf k = OMNI_BUF_INIT;
        key(&k, d->coll, "chunks", d->id);
        const char *argv[] = {"HGETALL", k.data};
        size_t lens[] = {7, k.len};
        if (redisAsyncCommandArgv(c, on_load_chunks, d, 2, argv, lens) ==
            REDIS_OK) {
            ld->pending++;
            d = NULL;
        } else {
            ld->failed = true;
        }
        omni_buf_release(&k);
    }
    if (d)
        ldoc_free(d);
    load_check(ld);
}

static void on_load_members(redisAsyncContext *c, void *r, void *priv)
{
    struct ldoc *cd = priv;
    struct load *ld = cd->ld;
    const redisReply *rep = r;
    ld->pending--;
    if (load_live(ld, r) && rep->type == REDIS_REPLY_ARRAY &&
        omni_smap_get(&ld->colls, cd->coll, strlen(cd->coll))) {
        struct omni_buf k = OMNI_BUF_INIT;
        for (size_t i = 0; i < rep->elements; i++) {
            const redisReply *e = rep->element[i];
            if (e->type != REDIS_REPLY_STRING)
                continue;
            struct ldoc *d = omni_calloc(1, sizeof *d);
            d->ld = ld;
            d->coll = omni_strdup(cd->coll);
            d->id = omni_strndup(e->str, (size_t)e->len);
            key(&k, d->coll, "doc", d->id);
            const char *argv[] = {"HGETALL", k.data};
            size_t lens[] = {7, k.len};
            if (redisAsyncCommandArgv(c, on_load_doc, d, 2, argv, lens) !=
                REDIS_OK) {
                ld->failed = true;
                ldoc_free(d);
                break;
            }
            ld->pending++;
        }
        omni_buf_release(&k);
    }
    ldoc_free(cd);
    load_check(ld);
}

static void on_load_meta(redisAsyncContext *c, void *r, void *priv)
{
    struct ldoc *cd = priv;
    struct load *ld = cd->ld;
    (void)c;
    ld->pending--;
    if (load_live(ld, r)) {
        bool ok = true;
        long long dim = hget_int(r, "dim", &ok);
        char *emb = hget_str(r, "embedder");
        if (ok && dim > 0 && dim <= 65536 && emb)
            omni_smap_put(
                &ld->colls, cd->coll, strlen(cd->coll),
                omni_coll_new(cd->coll, (uint32_t)dim, emb, &ld->rs->cp));
        else
            omni_warn("redis: collection '%s' has a malformed meta key; "
                      "skipped",
                      cd->coll);
        omni_free(emb);
    }
    ldoc_free(cd);
    load_check(ld);
}

static void load_scan(struct load *ld, const char *cursor);

static void on_load_scan(redisAsyncContext *c, void *r, void *priv)
{
    struct load *ld = priv;
    const redisReply *rep = r;
    ld->pending--;
    if (load_live(ld, r) && rep->type == REDIS_REPLY_ARRAY &&
        rep->elements == 2 && rep->element[1]->type == REDIS_REPLY_ARRAY) {
        const redisReply *keys = rep->element[1];
        struct omni_buf k = OMNI_BUF_INIT;
        static const char pre[] = "omni:{rag:", suf[] = "}:meta";
        for (size_t i = 0; i < keys->elements; i++) {
            const redisReply *e = keys->element[i];
            size_t n = (size_t)e->len;
            if (e->type != REDIS_REPLY_STRING || n <= 16 ||
                memcmp(e->str, pre, 10) || memcmp(e->str + n - 6, suf, 6))
                continue;
            char *name = omni_strndup(e->str + 10, n - 16);
            for (int step = 0; step < 2; step++) {
                struct ldoc *cd = omni_calloc(1, sizeof *cd);
                cd->ld = ld;
                cd->coll = omni_strdup(name);
                key(&k, name, step ? "docs" : "meta", NULL);
                const char *argv[] = {step ? "SMEMBERS" : "HGETALL", k.data};
                size_t lens[] = {strlen(argv[0]), k.len};
                if (redisAsyncCommandArgv(c,
                                          step ? on_load_members : on_load_meta,
                                          cd, 2, argv, lens) != REDIS_OK) {
                    ld->failed = true;
                    ldoc_free(cd);
                } else {
                    ld->pending++;
                }
            }
            omni_free(name);
        }
        omni_buf_release(&k);
        const redisReply *cur = rep->element[0];
        if (cur->type == REDIS_REPLY_STRING &&
            !(cur->len == 1 && cur->str[0] == '0')) {
            char next[32];
            snprintf(next, sizeof next, "%.*s",
                     (int)(cur->len < 31 ? cur->len : 31), cur->str);
            load_scan(ld, next);
        } else {
            ld->scanned = true;
        }
    } else {
        ld->failed = true;
    }
    load_check(ld);
}

static void load_scan(struct load *ld, const char *cursor)
{
    const char *argv[] = {"SCAN",  cursor, "MATCH", "omni:{rag:*}:meta",
                          "COUNT", "1000"};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(ld->rs->cmd, on_load_scan, ld, 6, argv, lens) ==
        REDIS_OK)
        ld->pending++;
    else
        ld->failed = true;
}

/* The stream position before loading: changes after it are replayed. */
static void on_load_pos(redisAsyncContext *c, void *r, void *priv)
{
    struct load *ld = priv;
    const redisReply *rep = r;
    (void)c;
    ld->pending--;
    if (load_live(ld, r)) {
        snprintf(ld->rs->last_id, sizeof ld->rs->last_id, "0-0");
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
            rep->element[0]->type == REDIS_REPLY_ARRAY &&
            rep->element[0]->elements > 0 &&
            rep->element[0]->element[0]->type == REDIS_REPLY_STRING) {
            const redisReply *id = rep->element[0]->element[0];
            snprintf(ld->rs->last_id, sizeof ld->rs->last_id, "%.*s",
                     (int)(id->len < 63 ? id->len : 63), id->str);
        }
        load_scan(ld, "0");
    }
    load_check(ld);
}

static void start(struct omni_rstore *rs)
{
    rs->cmd = open_ctx(rs);
    rs->sub = rs->cmd ? open_ctx(rs) : NULL;
    if (!rs->cmd || !rs->sub) {
        teardown(rs, "cannot connect");
        return;
    }
    rs->state = ST_LOADING;
    struct load *ld = omni_calloc(1, sizeof *ld);
    ld->rs = rs;
    ld->gen = rs->gen;
    rs->load = ld;
    const char *argv[] = {"XREVRANGE", STREAM, "+", "-", "COUNT", "1"};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(rs->cmd, on_load_pos, ld, 6, argv, lens) ==
        REDIS_OK) {
        ld->pending++;
    } else {
        ld->failed = true;
        load_check(ld);
    }
}

/* ---- following the change stream ---- */

struct fetch {
    struct omni_rstore *rs;
    uint64_t gen;
    struct change *ch;
    long long dim;
    char *embedder;
    struct omni_prep *p;
    bool skip; /* unreadable: a later change brings the next version */
};

static void fetch_free(struct fetch *f)
{
    omni_free(f->ch->coll);
    omni_free(f->ch->doc);
    omni_free(f->ch);
    omni_free(f->embedder);
    omni_prep_free(f->p);
    omni_free(f);
}

/* Finish the current change: hand it over, go on with the queue. */
static void fetch_done(struct fetch *f, bool ok)
{
    struct omni_rstore *rs = f->rs;
    bool live = f->gen == rs->gen;
    if (live && ok && !f->skip) {
        rs->cbs.changed(f->ch->coll, (uint32_t)f->dim,
                        f->embedder ? f->embedder : "", f->ch->doc, f->p,
                        rs->arg);
        f->p = NULL;
    }
    fetch_free(f);
    if (!live)
        return;
    rs->busy = false;
    if (ok)
        next_change(rs);
    else
        teardown(rs, "cannot read a change back");
}

static bool fetch_live(struct fetch *f, const redisReply *r)
{
    if (reply_ok(r) && f->gen == f->rs->gen)
        return true;
    fetch_done(f, false);
    return false;
}

static void on_fetch_chunks(redisAsyncContext *c, void *r, void *priv)
{
    struct fetch *f = priv;
    (void)c;
    if (!fetch_live(f, r))
        return;
    if (!prep_chunks(f->p, r, (uint32_t)f->dim)) {
        omni_warn("redis: change of '%s' in '%s' unreadable; skipped",
                  f->ch->doc, f->ch->coll);
        f->skip = true;
    }
    fetch_done(f, true);
}

static void on_fetch_doc(redisAsyncContext *c, void *r, void *priv)
{
    struct fetch *f = priv;
    if (!fetch_live(f, r))
        return;
    f->p = prep_from_doc(r, f->ch->doc);
    if (!f->p || f->dim <= 0) {
        /* Gone (deleted since): hand over a deletion. */
        omni_prep_free(f->p);
        f->p = NULL;
        f->skip = f->dim <= 0 && ((const redisReply *)r)->elements > 0;
        fetch_done(f, true);
        return;
    }
    struct omni_buf k = OMNI_BUF_INIT;
    key(&k, f->ch->coll, "chunks", f->ch->doc);
    const char *argv[] = {"HGETALL", k.data};
    size_t lens[] = {7, k.len};
    int rc = redisAsyncCommandArgv(c, on_fetch_chunks, f, 2, argv, lens);
    omni_buf_release(&k);
    if (rc != REDIS_OK)
        fetch_done(f, false);
}

static void on_fetch_meta(redisAsyncContext *c, void *r, void *priv)
{
    struct fetch *f = priv;
    if (!fetch_live(f, r))
        return;
    bool ok = true;
    f->dim = hget_int(r, "dim", &ok);
    f->embedder = hget_str(r, "embedder");
    if (!ok)
        f->dim = 0;
    struct omni_buf k = OMNI_BUF_INIT;
    key(&k, f->ch->coll, "doc", f->ch->doc);
    const char *argv[] = {"HGETALL", k.data};
    size_t lens[] = {7, k.len};
    int rc = redisAsyncCommandArgv(c, on_fetch_doc, f, 2, argv, lens);
    omni_buf_release(&k);
    if (rc != REDIS_OK)
        fetch_done(f, false);
}

/* Apply queued changes one at a time, in stream order; read the stream
 * again once the queue is empty. */
static void next_change(struct omni_rstore *rs)
{
    while (!rs->busy && rs->qhead) {
        struct change *ch = rs->qhead;
        rs->qhead = ch->next;
        if (!rs->qhead)
            rs->qtail = NULL;
        if (ch->del) {
            rs->cbs.changed(ch->coll, 0, "", ch->doc, NULL, rs->arg);
            omni_free(ch->coll);
            omni_free(ch->doc);
            omni_free(ch);
            continue;
        }
        struct fetch *f = omni_calloc(1, sizeof *f);
        f->rs = rs;
        f->gen = rs->gen;
        f->ch = ch;
        rs->busy = true;
        struct omni_buf k = OMNI_BUF_INIT;
        key(&k, ch->coll, "meta", NULL);
        const char *argv[] = {"HGETALL", k.data};
        size_t lens[] = {7, k.len};
        int rc =
            redisAsyncCommandArgv(rs->cmd, on_fetch_meta, f, 2, argv, lens);
        omni_buf_release(&k);
        if (rc != REDIS_OK) {
            fetch_done(f, false);
            return;
        }
    }
    if (!rs->busy && rs->state == ST_UP)
        follow(rs);
}

static const redisReply *field(const redisReply *kv, const char *name)
{
    for (size_t i = 0; i + 1 < kv->elements; i += 2)
        if (kv->element[i]->type == REDIS_REPLY_STRING &&
            (size_t)kv->element[i]->len == strlen(name) &&
            !memcmp(kv->element[i]->str, name, strlen(name)))
            return kv->element[i + 1];
    return NULL;
}

static void on_xread(redisAsyncContext *c, void *r, void *priv)
{
    struct omni_rstore *rs = c->data;
    const redisReply *rep = r;
    (void)priv;
    /* NULL: the context is going away (teardown handles the rest). */
    if (!rep)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        char why[OMNI_ERR_LEN];
        snprintf(why, sizeof why, "XREAD failed: %.128s", rep->str);
        teardown(rs, why);
        return;
    }
    /* [[stream, [[id, [field, value, ...]], ...]]], or nil on timeout. */
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
        rep->element[0]->elements == 2) {
        const redisReply *entries = rep->element[0]->element[1];
        for (size_t i = 0; i < entries->elements; i++) {
            const redisReply *e = entries->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
                continue;
            const redisReply *id = e->element[0], *kv = e->element[1];
            snprintf(rs->last_id, sizeof rs->last_id, "%.*s",
                     (int)(id->len < 63 ? id->len : 63), id->str);
            const redisReply *op = field(kv, "op"), *co = field(kv, "coll"),
                             *doc = field(kv, "doc"),
                             *org = field(kv, "origin");
            if (!op || !co || !doc)
                continue;
            if (org && (size_t)org->len == strlen(rs->origin) &&
                !memcmp(org->str, rs->origin, (size_t)org->len))
                continue;
            struct change *ch = omni_calloc(1, sizeof *ch);
            ch->del = op->len == 3 && !memcmp(op->str, "del", 3);
            ch->coll = omni_strndup(co->str, (size_t)co->len);
            ch->doc = omni_strndup(doc->str, (size_t)doc->len);
            if (rs->qtail)
                rs->qtail->next = ch;
            else
                rs->qhead = ch;
            rs->qtail = ch;
        }
    }
    next_change(rs);
}

static void follow(struct omni_rstore *rs)
{
    if (!rs->sub)
        return;
    const char *argv[] = {"XREAD", "COUNT",   "256",  "BLOCK",
                          "5000",  "STREAMS", STREAM, rs->last_id};
    size_t lens[8];
    for (int i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(rs->sub, on_xread, NULL, 8, argv, lens) !=
        REDIS_OK)
        teardown(rs, "cannot send XREAD");
}

/* ---- writes ---- */

struct write {
    struct omni_rstore *rs;
    uint64_t gen;
    omni_rstore_done done;
    void *arg;
    bool del;
    char *coll;
    char **ids;
    size_t n;
};

static void write_free(struct write *w)
{
    for (size_t i = 0; i < w->n; i++)
        omni_free(w->ids[i]);
    omni_free(w->ids);
    omni_free(w->coll);
    omni_free(w);
}

/* Tell the caller from the loop, never from inside put/del. */
struct later {
    omni_rstore_done done;
    void *arg;
    enum omni_err rc;
    char msg[OMNI_ERR_LEN];
    struct event *ev;
};

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    struct later *l = arg;
    (void)fd;
    (void)what;
    l->done(l->rc, l->msg, l->arg);
    event_free(l->ev);
    omni_free(l);
}

static void fail_later(struct omni_rstore *rs, omni_rstore_done done, void *arg,
                       enum omni_err rc, const char *msg)
{
    struct later *l = omni_calloc(1, sizeof *l);
    l->done = done;
    l->arg = arg;
    l->rc = rc;
    snprintf(l->msg, sizeof l->msg, "%s", msg);
    l->ev = evtimer_new(rs->base, on_later, l);
    struct timeval tv = {0, 0};
    evtimer_add(l->ev, &tv);
}

static void on_exec(redisAsyncContext *c, void *r, void *priv)
{
    struct write *w = priv;
    const redisReply *rep = r;
    char msg[OMNI_ERR_LEN] = "";
    enum omni_err rc = OMNI_OK;
    if (!rep) {
        rc = OMNI_E_UNAVAILABLE;
        snprintf(msg, sizeof msg,
                 "redis connection lost during the write; nothing written");
    } else if (rep->type == REDIS_REPLY_ERROR) {
        rc = OMNI_E_UNAVAILABLE;
        snprintf(msg, sizeof msg, "redis refused the write: %.160s", rep->str);
    } else if (rep->type != REDIS_REPLY_ARRAY) {
        rc = OMNI_E_UNAVAILABLE;
        snprintf(msg, sizeof msg, "redis aborted the transaction");
    } else {
        for (size_t i = 0; i < rep->elements; i++)
            if (rep->element[i]->type == REDIS_REPLY_ERROR) {
                rc = OMNI_E_INTERNAL;
                snprintf(msg, sizeof msg, "redis write failed: %.160s",
                         rep->element[i]->str);
                break;
            }
    }
    if (rc == OMNI_OK && w->gen == w->rs->gen && c) {
        struct argv a = {0};
        for (size_t i = 0; i < w->n; i++) {
            const char *pre[] = {
                "XADD",        STREAM, "MAXLEN", "~",
                STREAM_MAXLEN, "*",    "op",     w->del ? "del" : "put",
                "coll"};
            for (size_t k = 0; k < sizeof pre / sizeof *pre; k++)
                arg_adds(&a, pre[k]);
            arg_adds(&a, w->coll);
            arg_adds(&a, "doc");
            arg_adds(&a, w->ids[i]);
            arg_adds(&a, "origin");
            arg_adds(&a, w->rs->origin);
            arg_send(c, &a, NULL, NULL);
        }
        arg_free(&a);
    }
    if (rc != OMNI_OK)
        omni_warn("redis: write to '%s' failed: %s", w->coll, msg);
    w->done(rc, msg, w->arg);
    write_free(w);
}

static struct write *write_new(struct omni_rstore *rs, const char *coll,
                               size_t n, bool del, omni_rstore_done done,
                               void *arg)
{
    struct write *w = omni_calloc(1, sizeof *w);
    w->rs = rs;
    w->gen = rs->gen;
    w->done = done;
    w->arg = arg;
    w->del = del;
    w->coll = omni_strdup(coll);
    w->ids = omni_calloc(n ? n : 1, sizeof *w->ids);
    w->n = n;
    return w;
}

void omni_rstore_put(struct omni_rstore *rs, const char *coll, uint32_t dim,
                     const char *embedder, struct omni_prep *const *docs,
                     size_t n, omni_rstore_done done, void *arg)
{
    if (rs->state != ST_UP || !rs->cmd) {
        fail_later(rs, done, arg, OMNI_E_UNAVAILABLE,
                   "redis is unavailable; nothing written");
        return;
    }
    redisAsyncContext *c = rs->cmd;
    struct write *w = write_new(rs, coll, n, false, done, arg);
    struct argv a = {0};
    struct omni_buf k = OMNI_BUF_INIT, pj = OMNI_BUF_INIT;
    arg_adds(&a, "MULTI");
    arg_send(c, &a, NULL, NULL);
    key(&k, coll, "meta", NULL);
    arg_adds(&a, "HSET");
    arg_add(&a, k.data, k.len);
    arg_adds(&a, "dim");
    arg_addf(&a, "%u", dim);
    arg_adds(&a, "embedder");
    arg_adds(&a, embedder);
    arg_send(c, &a, NULL, NULL);
    for (size_t d = 0; d < n; d++) {
        const struct omni_prep *p = docs[d];
        w->ids[d] = omni_strdup(p->id);
        for (int step = 0; step < 2; step++) {
            key(&k, coll, step ? "chunks" : "doc", p->id);
            arg_adds(&a, "DEL");
            arg_add(&a, k.data, k.len);
            arg_send(c, &a, NULL, NULL);
        }
        key(&k, coll, "doc", p->id);
        char *md = json_dumps(p->metadata, JSON_COMPACT);
        arg_adds(&a, "HSET");
        arg_add(&a, k.data, k.len);
        arg_adds(&a, "hash");
        arg_adds(&a, p->hash);
        arg_adds(&a, "metadata");
        arg_adds(&a, md ? md : "{}");
        arg_adds(&a, "bytes");
        arg_addf(&a, "%llu", (unsigned long long)p->bytes);
        arg_adds(&a, "chunks");
        arg_addf(&a, "%u", p->nchunks);
        arg_adds(&a, "content_type");
        arg_adds(&a, p->content_type ? p->content_type : "");
        arg_adds(&a, "ingested_ms");
        arg_addf(&a, "%lld", (long long)p->ingested_ms);
        arg_send(c, &a, NULL, NULL);
        free(md);
        key(&k, coll, "chunks", p->id);
        for (uint32_t i = 0; i < p->nchunks; i += CHUNKS_PER_HSET) {
            arg_adds(&a, "HSET");
            arg_add(&a, k.data, k.len);
            /* Provenance JSON for the whole batch goes into one buffer
             * first, so its pointers stay put while arguments build. */
            omni_buf_reset(&pj);
            size_t *at = omni_malloc(CHUNKS_PER_HSET * 2 * sizeof *at);
            uint32_t end = i + CHUNKS_PER_HSET < p->nchunks
                               ? i + CHUNKS_PER_HSET
                               : p->nchunks;
            for (uint32_t j = i; j < end; j++) {
                const struct omni_prep_chunk *ch = &p->chunks[j];
                at[(j - i) * 2] = pj.len;
                omni_buf_addf(&pj, "{\"s\":%u,\"e\":%u,\"pg\":%u", ch->start,
                              ch->end, ch->page);
                if (ch->heading) {
                    omni_buf_adds(&pj, ",\"h\":");
                    omni_buf_add_json_str(&pj, ch->heading,
                                          strlen(ch->heading));
                }
                omni_buf_addch(&pj, '}');
                at[(j - i) * 2 + 1] = pj.len;
            }
            for (uint32_t j = i; j < end; j++) {
                const struct omni_prep_chunk *ch = &p->chunks[j];
                arg_addf(&a, "t:%u", j);
                arg_add(&a, ch->text, ch->len);
                arg_addf(&a, "p:%u", j);
                arg_add(&a, pj.data + at[(j - i) * 2],
                        at[(j - i) * 2 + 1] - at[(j - i) * 2]);
                arg_addf(&a, "v:%u", j);
                arg_add(&a, (const char *)(p->vecs + (size_t)j * dim),
                        dim * sizeof(float));
            }
            arg_send(c, &a, NULL, NULL);
            omni_free(at);
        }
        key(&k, coll, "docs", NULL);
        arg_adds(&a, "SADD");
        arg_add(&a, k.data, k.len);
        arg_adds(&a, p->id);
        arg_send(c, &a, NULL, NULL);
    }
    arg_adds(&a, "EXEC");
    arg_send(c, &a, on_exec, w);
    arg_free(&a);
    omni_buf_release(&k);
    omni_buf_release(&pj);
}

void omni_rstore_del(struct omni_rstore *rs, const char *coll,
                     const char *const *ids, size_t n, omni_rstore_done done,
                     void *arg)
{
    if (rs->state != ST_UP || !rs->cmd) {
        fail_later(rs, done, arg, OMNI_E_UNAVAILABLE,
                   "redis is unavailable; nothing deleted");
        return;
    }
    redisAsyncContext *c = rs->cmd;
    struct write *w = write_new(rs, coll, n, true, done, arg);
    struct argv a = {0};
    struct omni_buf k = OMNI_BUF_INIT;
    arg_adds(&a, "MULTI");
    arg_send(c, &a, NULL, NULL);
    for (size_t d = 0; d < n; d++) {
        w->ids[d] = omni_strdup(ids[d]);
        for (int step = 0; step < 2; step++) {
            key(&k, coll, step ? "chunks" : "doc", ids[d]);
            arg_adds(&a, "DEL");
            arg_add(&a, k.data, k.len);
            arg_send(c, &a, NULL, NULL);
        }
        key(&k, coll, "docs", NULL);
        arg_adds(&a, "SREM");
        arg_add(&a, k.data, k.len);
        arg_adds(&a, ids[d]);
        arg_send(c, &a, NULL, NULL);
    }
    arg_adds(&a, "EXEC");
    arg_send(c, &a, on_exec, w);
    arg_free(&a);
    omni_buf_release(&k);
}

/* ---- life ---- */

static bool parse_url(struct omni_rstore *rs, const char *url,
                      char err[OMNI_ERR_LEN])
{
    if (!strncmp(url, "unix://", 7)) {
        const char *p = url + 7;
        const char *q = strchr(p, '?');
        rs->path = omni_strndup(p, q ? (size_t)(q - p) : strlen(p));
        if (q && !strncmp(q, "?db=", 4))
            rs->db = (int)strtol(q + 4, NULL, 10);
        if (!*rs->path) {
            snprintf(err, OMNI_ERR_LEN, "bad redis_url: no socket path");
            return false;
        }
        return true;
    }
    if (strncmp(url, "redis://", 8)) {
        snprintf(err, OMNI_ERR_LEN,
                 "bad redis_url: want redis://host:port/db or unix:///path");
        return false;
    }
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (colon > p)
                rs->user = omni_strndup(p, (size_t)(colon - p));
            rs->pass = omni_strndup(colon + 1, (size_t)(at - colon - 1));
        } else {
            rs->pass = omni_strndup(p, (size_t)(at - p));
        }
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    rs->host = hl ? omni_strndup(p, hl) : omni_strdup("127.0.0.1");
    rs->port = 6379;
    p += hl;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535) {
            snprintf(err, OMNI_ERR_LEN, "bad redis_url: bad port");
            return false;
        }
        rs->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1])
        rs->db = (int)strtol(p + 1, NULL, 10);
    return true;
}

struct omni_rstore *omni_rstore_new(struct event_base *base, const char *url,
                                    const struct omni_coll_params *cp,
                                    const struct omni_rstore_cbs *cbs,
                                    void *arg, char err[OMNI_ERR_LEN])
{
    struct omni_rstore *rs = omni_calloc(1, sizeof *rs);
    if (!parse_url(rs, url, err)) {
        omni_free(rs->host);
        omni_free(rs->path);
        omni_free(rs->user);
        omni_free(rs->pass);
        omni_free(rs);
        return NULL;
    }
    rs->base = base;
    rs->cp = *cp;
    rs->cbs = *cbs;
    rs->arg = arg;
    snprintf(rs->origin, sizeof rs->origin, "%ld-%lx", (long)getpid(),
             (unsigned long)omni_now_us());
    snprintf(rs->last_id, sizeof rs->last_id, "0-0");
    rs->retry = evtimer_new(base, on_retry, rs);
    start(rs);
    return rs;
}

void omni_rstore_free(struct omni_rstore *rs)
{
    if (!rs)
        return;
    rs->freeing = true;
    teardown(rs, NULL);
    event_free(rs->retry);
    omni_free(rs->host);
    omni_free(rs->path);
    omni_free(rs->user);
    omni_free(rs->pass);
    omni_free(rs);
}

bool omni_rstore_up(const struct omni_rstore *rs)
{
    return rs->state == ST_UP && rs->cmd;
}

const char *omni_rstore_state(const struct omni_rstore *rs)
{
    static const char *const names[] = {"down", "loading", "up"};
    return names[rs->state];
}
