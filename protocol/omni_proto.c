/*
 * omni_proto - frame and message codec.
 *
 * Encoding goes through msgpack-c's packer.  Decoding uses a small
 * validating reader instead of msgpack-c's unpacker: the C unpacker has
 * no limits (a 5-byte header can claim a 4 GiB array and make it
 * allocate), while our envelope is one flat map whose values we can
 * borrow in place.  The reader walks the bytes once to check every
 * limit, then a second pass picks out the known fields, allocating
 * nothing.
 */
#include "omni_proto.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "omni_log.h"

struct omni_str omni_str_c(const char *s)
{
    struct omni_str r = {s, s ? strlen(s) : 0};
    return r;
}

bool omni_str_eq(struct omni_str s, const char *c)
{
    size_t n = strlen(c);
    return s.n == n && memcmp(s.p, c, n) == 0;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

enum omni_err omni_frame_peek(const void *buf, size_t len, size_t max_frame,
                              size_t *payload_len)
{
    if (len < OMNI_FRAME_HDR)
        return OMNI_AGAIN;
    uint64_t n = be(buf, 4);
    if (n > max_frame || n == 0)
        return OMNI_E_TOO_LARGE;
    if (len - OMNI_FRAME_HDR < n)
        return OMNI_AGAIN;
    *payload_len = (size_t)n;
    return OMNI_OK;
}

/* ------------------------------------------------------------------ */
/* The reader.                                                         */

enum kind {
    K_NIL,
    K_BOOL,
    K_UINT,
    K_INT,
    K_FLOAT,
    K_STR,
    K_BIN,
    K_ARRAY,
    K_MAP,
    K_EXT
};

struct item {
    enum kind kind;
    uint64_t u; /* uint value, bool, or count for array/map */
    int64_t i;
    const char *p; /* str, bin, ext payload */
    size_t n;
};

struct reader {
    const uint8_t *p, *end;
};

/* Read one item header at r->p (not the contents of arrays or maps).
 * Returns 0, or -1 when the bytes are truncated or invalid; *it is
 * always written (a nil item on failure). */
static int head(struct reader *r, struct item *it)
{
    memset(it, 0, sizeof *it);
    if (r->p >= r->end)
        return -1;
    uint8_t b = *r->p++;
    size_t avail = (size_t)(r->end - r->p);
    int w = 0; /* width of a following length or value */
    if (b <= 0x7f) {
        it->kind = K_UINT;
        it->u = b;
        return 0;
    }
    if (b >= 0xe0) {
        it->kind = K_INT;
        it->i = (int64_t)b - 256; /* negative fixint: -32..-1 */
        return 0;
    }
    if ((b & 0xf0) == 0x80) {
        it->kind = K_MAP;
        it->u = b & 0x0f;
        return 0;
    }
    if ((b & 0xf0) == 0x90) {
        it->kind = K_ARRAY;
        it->u = b & 0x0f;
        return 0;
    }
    if ((b & 0xe0) == 0xa0) {
        it->kind = K_STR;
        it->n = b & 0x1f;
        goto payload;
    }
    switch (b) {
    case 0xc0: it->kind = K_NIL; return 0;
    case 0xc2:
    case 0xc3:
        it->kind = K_BOOL;
        it->u = b == 0xc3;
        return 0;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        it->kind = K_BIN;
        w = 1 << (b - 0xc4);
        break;
    case 0xc7:
    case 0xc8:
    case 0xc9:
        it->kind = K_EXT;
        w = 1 << (b - 0xc7);
        break;
    case 0xca:
        it->kind = K_FLOAT;
        it->n = 4;
        goto fixed;
    case 0xcb:
        it->kind = K_FLOAT;
        it->n = 8;
        goto fixed;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        w = 1 << (b - 0xcc);
        if (avail < (size_t)w)
            return -1;
        it->kind = K_UINT;
        it->u = be(r->p, w);
        r->p += w;
        return 0;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        w = 1 << (b - 0xd0);
        if (avail < (size_t)w)
            return -1;
        uint64_t v = be(r->p, w);
        int shift = 64 - 8 * w;
        it->kind = K_INT;
        it->i = shift ? (int64_t)(v << shift) >> shift : (int64_t)v;
        r->p += w;
        return 0;
    }
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        it->kind = K_EXT;
        it->n = (size_t)1 + ((size_t)1 << (b - 0xd4));
        goto payload;
    case 0xd9:
    case 0xda:
    case 0xdb:
        it->kind = K_STR;
        w = 1 << (b - 0xd9);
        break;
    case 0xdc:
    case 0xdd:
        w = 2 << (b - 0xdc);
        if (avail < (size_t)w)
            return -1;
        it->kind = K_ARRAY;
        it->u = be(r->p, w);
        r->p += w;
        return 0;
    case 0xde:
    case 0xdf:
        w = 2 << (b - 0xde);
        if (avail < (size_t)w)
            return -1;
        it->kind = K_MAP;
        it->u = be(r->p, w);
        r->p += w;
        return 0;
    default: return -1; /* 0xc1 is never used */
    }
    /* Length-prefixed payload: str, bin, ext. */
    if (avail < (size_t)w)
        return -1;
    it->n = (size_t)be(r->p, w);
    r->p += w;
    if (it->kind == K_EXT)
        it->n += 1; /* the type byte */
    goto payload;
fixed:
payload:
    if ((size_t)(r->end - r->p) < it->n)
        return -1;
    it->p = (const char *)r->p;
    r->p += it->n;
    return 0;
}

/* Walk one whole value, checking limits; leaves r->p after it. */
static enum omni_err walk(struct reader *r, char err[OMNI_ERR_LEN])
{
    uint64_t stack[OMNI_MAX_DEPTH + 1];
    int depth = 0;
    stack[0] = 1;
    while (depth >= 0) {
        if (stack[depth] == 0) {
            depth--;
            continue;
        }
        stack[depth]--;
        struct item it;
        if (head(r, &it) < 0) {
            snprintf(err, OMNI_ERR_LEN, "truncated or invalid msgpack");
            return OMNI_E_PROTOCOL;
        }
        if ((it.kind == K_STR || it.kind == K_BIN) && it.n > OMNI_MAX_STR) {
            snprintf(err, OMNI_ERR_LEN, "string of %zu bytes over the limit",
                     it.n);
            return OMNI_E_TOO_LARGE;
        }
        if (it.kind != K_ARRAY && it.kind != K_MAP)
            continue;
        uint64_t items = it.kind == K_MAP ? it.u * 2 : it.u;
        if (it.u > OMNI_MAX_ITEMS) {
            snprintf(err, OMNI_ERR_LEN, "%s of %llu entries over the limit",
                     it.kind == K_MAP ? "map" : "array",
                     (unsigned long long)it.u);
            return OMNI_E_TOO_LARGE;
        }
        /* Every entry takes at least one byte. */
        if (items > (uint64_t)(r->end - r->p)) {
            snprintf(err, OMNI_ERR_LEN, "truncated or invalid msgpack");
            return OMNI_E_PROTOCOL;
        }
        if (depth == OMNI_MAX_DEPTH) {
            snprintf(err, OMNI_ERR_LEN, "nesting deeper than %d",
                     OMNI_MAX_DEPTH);
            return OMNI_E_TOO_LARGE;
        }
        stack[++depth] = items;
    }
    return OMNI_OK;
}

enum omni_err omni_msgpack_check(const void *p, size_t n,
                                 char err[OMNI_ERR_LEN])
{
    struct reader r = {p, (const uint8_t *)p + n};
    enum omni_err rc = walk(&r, err);
    if (rc == OMNI_OK && r.p != r.end) {
        snprintf(err, OMNI_ERR_LEN, "trailing bytes after the message");
        rc = OMNI_E_PROTOCOL;
    }
    return rc;
}

static const char *const type_names[] = {"none",  "req",    "chunk", "final",
                                         "error", "cancel", "ready"};

const char *omni_msg_type_name(enum omni_msg_type t)
{
    return (unsigned)t < sizeof type_names / sizeof *type_names ? type_names[t]
                                                                : "none";
}

static enum omni_err want(char err[OMNI_ERR_LEN], const char *field,
                          const char *what)
{
    snprintf(err, OMNI_ERR_LEN, "field '%s': want %s", field, what);
    return OMNI_E_BAD_REQUEST;
}

/* Fields we know; anything else is skipped (unknown fields ignored). */
static enum omni_err field(struct omni_msg *m, struct omni_str key,
                           const struct item *v, char err[OMNI_ERR_LEN])
{
    char wire[24];
    snprintf(wire, sizeof wire, "%.*s", (int)(key.n < 20 ? key.n : 20), key.p);
#define KEY(s) omni_str_eq(key, s)
#define UINT(dst, max)                                                         \
    do {                                                                       \
        if (v->kind != K_UINT || v->u > (max))                                 \
            return want(err, wire, "unsigned integer in range");               \
        m->dst = (__typeof__(m->dst))v->u;                                     \
    } while (0)
#define STR(dst)                                                               \
    do {                                                                       \
        if (v->kind == K_NIL)                                                  \
            break;                                                             \
        if (v->kind != K_STR)                                                  \
            return want(err, wire, "string");                                  \
        m->dst.p = v->p;                                                       \
        m->dst.n = v->n;                                                       \
    } while (0)
    if (KEY("t")) {
        if (v->kind != K_STR)
            return want(err, "t", "string");
        struct omni_str t = {v->p, v->n};
        for (size_t i = 1; i < sizeof type_names / sizeof *type_names; i++)
            if (omni_str_eq(t, type_names[i]))
                m->type = (enum omni_msg_type)i;
        if (m->type == OMNI_MSG_NONE)
            return want(err, "t", "a known message type");
    } else if (KEY("v")) {
        UINT(version, UINT32_MAX);
    } else if (KEY("id")) {
        UINT(id, UINT64_MAX);
    } else if (KEY("svc")) {
        STR(service);
    } else if (KEY("op")) {
        STR(op);
    } else if (KEY("deadline_ms")) {
        UINT(deadline_ms, UINT64_MAX);
    } else if (KEY("stream")) {
        if (v->kind != K_BOOL)
            return want(err, "stream", "boolean");
        m->stream = v->u;
    } else if (KEY("idempotent")) {
        if (v->kind != K_BOOL)
            return want(err, "idempotent", "boolean");
        m->idempotent = v->u;
    } else if (KEY("auth")) {
        STR(auth);
    } else if (KEY("trace")) {
        STR(trace);
    } else if (KEY("body")) {
        if (v->kind != K_STR && v->kind != K_BIN && v->kind != K_NIL)
            return want(err, "body", "bin or str");
        m->body.p = v->p;
        m->body.n = v->n;
    } else if (KEY("seq")) {
        UINT(seq, UINT64_MAX);
    } else if (KEY("code")) {
        if (v->kind != K_STR)
            return want(err, "code", "string");
        m->code = omni_err_parse(v->p, v->n);
    } else if (KEY("status")) {
        UINT(status, 999);
    } else if (KEY("message")) {
        STR(message);
    } else if (KEY("retry_after_ms")) {
        UINT(retry_after_ms, UINT32_MAX);
    } else if (KEY("capacity")) {
        UINT(capacity, UINT32_MAX);
    } else if (KEY("pid")) {
        UINT(pid, UINT32_MAX);
    }
    return OMNI_OK;
#undef KEY
#undef UINT
#undef STR
}

enum omni_err omni_msg_decode(const void *p, size_t n, struct omni_msg *m,
                              char err[OMNI_ERR_LEN])
{
    memset(m, 0, sizeof *m);
    enum omni_err rc = omni_msgpack_check(p, n, err);
    if (rc != OMNI_OK)
        return rc;
    struct reader r = {p, (const uint8_t *)p + n};
    struct item top;
    head(&r, &top);
    if (top.kind != K_MAP) {
        snprintf(err, OMNI_ERR_LEN, "message is not a msgpack map");
        return OMNI_E_PROTOCOL;
    }
    enum omni_err first = OMNI_OK;
    for (uint64_t i = 0; i < top.u; i++) {
        struct item k, v;
        head(&r, &k);
        const uint8_t *vstart = r.p;
        head(&r, &v);
        if (v.kind == K_ARRAY || v.kind == K_MAP) {
            /* Skip nested values whole; none of our fields has one. */
            char skip_err[OMNI_ERR_LEN];
            r.p = vstart;
            walk(&r, skip_err);
        }
        if (k.kind != K_STR)
            continue;
        struct omni_str key = {k.p, k.n};
        char scratch[OMNI_ERR_LEN];
        enum omni_err frc = field(m, key, &v, first == OMNI_OK ? err : scratch);
        if (frc != OMNI_OK && first == OMNI_OK)
            first = frc;
    }
    if (first != OMNI_OK)
        return first;
    if (m->type == OMNI_MSG_NONE) {
        snprintf(err, OMNI_ERR_LEN, "field 't': missing");
        return OMNI_E_BAD_REQUEST;
    }
    if (m->type == OMNI_MSG_REQUEST) {
        if (!m->service.n)
            return want(err, "svc", "non-empty string");
        if (m->service.n > OMNI_MAX_SERVICE || m->op.n > OMNI_MAX_OP) {
            snprintf(err, OMNI_ERR_LEN, "field '%s': longer than %d bytes",
                     m->service.n > OMNI_MAX_SERVICE ? "svc" : "op",
                     OMNI_MAX_SERVICE);
            return OMNI_E_BAD_REQUEST;
        }
    }
    return OMNI_OK;
}

/* ------------------------------------------------------------------ */
/* The writer: msgpack-c's packer appending to an omni_buf.            */

static int buf_write(void *data, const char *p, size_t n)
{
    omni_buf_add(data, p, n);
    return 0;
}

static void kstr(msgpack_packer *pk, const char *k)
{
    size_t n = strlen(k);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, k, n);
}

static void vstr(msgpack_packer *pk, struct omni_str s)
{
    msgpack_pack_str(pk, s.n);
    msgpack_pack_str_body(pk, s.p, s.n);
}

void omni_msg_pack(const struct omni_msg *m, struct omni_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_write);
    bool req = m->type == OMNI_MSG_REQUEST;
    bool err = m->type == OMNI_MSG_ERROR;
    bool has_body =
        req || m->type == OMNI_MSG_CHUNK || m->type == OMNI_MSG_FINAL;
    uint32_t n = 3; /* t, v, id */
    if (req)
        n += 2 + !!m->deadline_ms + m->stream + m->idempotent + !!m->auth.n +
             !!m->trace.n;
    if (has_body)
        n += 1;
    if (m->type == OMNI_MSG_CHUNK)
        n += 1;
    if (err)
        n += 3 + !!m->retry_after_ms;
    if (m->capacity)
        n++;
    if (m->pid)
        n++;
    msgpack_pack_map(&pk, n);
    kstr(&pk, "t");
    kstr(&pk, omni_msg_type_name(m->type));
    kstr(&pk, "v");
    msgpack_pack_uint32(&pk, m->version ? m->version : OMNI_PROTOCOL_VERSION);
    kstr(&pk, "id");
    msgpack_pack_uint64(&pk, m->id);
    if (req) {
        kstr(&pk, "svc");
        vstr(&pk, m->service);
        kstr(&pk, "op");
        vstr(&pk, m->op);
        if (m->deadline_ms) {
            kstr(&pk, "deadline_ms");
            msgpack_pack_uint64(&pk, m->deadline_ms);
        }
        if (m->stream) {
            kstr(&pk, "stream");
            msgpack_pack_true(&pk);
        }
        if (m->idempotent) {
            kstr(&pk, "idempotent");
            msgpack_pack_true(&pk);
        }
        if (m->auth.n) {
            kstr(&pk, "auth");
            vstr(&pk, m->auth);
        }
        if (m->trace.n) {
            kstr(&pk, "trace");
            vstr(&pk, m->trace);
        }
    }
    if (m->type == OMNI_MSG_CHUNK) {
        kstr(&pk, "seq");
        msgpack_pack_uint64(&pk, m->seq);
    }
    if (has_body) {
        kstr(&pk, "body");
        msgpack_pack_bin(&pk, m->body.n);
        msgpack_pack_bin_body(&pk, m->body.p, m->body.n);
    }
    if (err) {
        kstr(&pk, "code");
        kstr(&pk, omni_err_code(m->code));
        kstr(&pk, "status");
        msgpack_pack_uint32(
            &pk, m->status ? m->status : (uint32_t)omni_err_status(m->code));
        kstr(&pk, "message");
        vstr(&pk, m->message);
        if (m->retry_after_ms) {
            kstr(&pk, "retry_after_ms");
            msgpack_pack_uint32(&pk, m->retry_after_ms);
        }
    }
    if (m->capacity) {
        kstr(&pk, "capacity");
        msgpack_pack_uint32(&pk, m->capacity);
    }
    if (m->pid) {
        kstr(&pk, "pid");
        msgpack_pack_uint32(&pk, m->pid);
    }
}

void omni_msg_encode(const struct omni_msg *m, struct omni_buf *out)
{
    size_t at = out->len;
    omni_buf_add(out, "\0\0\0\0", 4);
    omni_msg_pack(m, out);
    size_t n = out->len - at - 4;
    uint8_t *h = (uint8_t *)out->data + at;
    h[0] = (uint8_t)(n >> 24);
    h[1] = (uint8_t)(n >> 16);
    h[2] = (uint8_t)(n >> 8);
    h[3] = (uint8_t)n;
}

void omni_msg_encode_error(struct omni_buf *out, uint64_t id,
                           enum omni_err code, uint32_t retry_after_ms,
                           const char *fmt, ...)
{
    struct omni_buf text = OMNI_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    omni_buf_vaddf(&text, fmt, ap);
    va_end(ap);
    omni_redact(&text);
    struct omni_msg m = {.type = OMNI_MSG_ERROR,
                         .id = id,
                         .code = code,
                         .retry_after_ms = retry_after_ms,
                         .message = {text.data, text.len}};
    omni_msg_encode(&m, out);
    omni_buf_release(&text);
}
