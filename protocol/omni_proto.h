/*
 * omni_proto - the one codec for Omni messages (see protocol/PROTOCOL.md).
 *
 * A frame is a 4-byte big-endian payload length followed by one msgpack
 * map.  The same maps travel inside ZeroMQ frames between broker and
 * workers (omni_wire.h), without the length prefix.
 *
 * Decoding never allocates from sizes it has not checked: omni_msg_decode
 * first walks the raw bytes against the limits below (nesting depth,
 * string, array and map lengths, each claimed length against the bytes
 * actually present), and only then hands them to msgpack-c.  Decoded
 * strings and the body are borrowed: they point into the caller's
 * buffer, are NOT NUL-terminated, and live as long as that buffer.
 */
#ifndef OMNI_PROTO_H
#define OMNI_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omni_buf.h"
#include "omni_err.h"

#define OMNI_PROTOCOL_VERSION  1
#define OMNI_FRAME_HDR         4
#define OMNI_MAX_FRAME_DEFAULT (16u * 1024 * 1024)
#define OMNI_MAX_DEPTH         16
#define OMNI_MAX_STR           (16u * 1024 * 1024)
#define OMNI_MAX_ITEMS         4096 /* entries of one array or map */
#define OMNI_MAX_SERVICE       64
#define OMNI_MAX_OP            64

enum omni_msg_type {
    OMNI_MSG_NONE = 0,
    OMNI_MSG_REQUEST, /* "req"    client -> broker */
    OMNI_MSG_CHUNK,   /* "chunk"  broker -> client, streamed part */
    OMNI_MSG_FINAL,   /* "final"  broker -> client, last reply */
    OMNI_MSG_ERROR,   /* "error"  broker -> client, last reply */
    OMNI_MSG_CANCEL,  /* "cancel" client -> broker */
    OMNI_MSG_READY,   /* "ready"  worker READY map (omni_wire.h) */
};

/* A borrowed byte string: not NUL-terminated. */
struct omni_str {
    const char *p;
    size_t n;
};

struct omni_msg {
    enum omni_msg_type type;
    uint32_t version;
    uint64_t id;             /* client-chosen request id */
    struct omni_str service; /* request */
    struct omni_str op;      /* request */
    uint64_t deadline_ms;    /* request: relative timeout, 0 = default */
    bool stream;             /* request: caller accepts chunks */
    bool idempotent;         /* request: safe to re-dispatch */
    struct omni_str auth;    /* request: client credential, optional */
    struct omni_str trace;   /* request: trace id, optional */
    struct omni_str body;    /* request, chunk, final */
    uint64_t seq;            /* chunk: 0, 1, 2, ... */
    enum omni_err code;      /* error */
    uint32_t status;         /* error: HTTP-like status */
    struct omni_str message; /* error */
    uint32_t retry_after_ms; /* error: hint for OVERLOADED etc., 0 = none */
    uint32_t capacity;       /* worker READY map */
    uint32_t pid;            /* worker READY map */
};

/* Make a borrowed string from a C string. */
struct omni_str omni_str_c(const char *s);
/* Compare a borrowed string with a C string. */
bool omni_str_eq(struct omni_str s, const char *c);

/* Look at the start of buf: OMNI_OK with *payload_len set when a whole
 * frame is present (its bytes are buf[4 .. 4 + *payload_len)); OMNI_AGAIN
 * when more bytes are needed; OMNI_E_TOO_LARGE when the length exceeds
 * max_frame (the connection cannot be resynchronised: close it). */
enum omni_err omni_frame_peek(const void *buf, size_t len, size_t max_frame,
                              size_t *payload_len);

/* Check that p[0..n) is exactly one msgpack value within the limits. */
enum omni_err omni_msgpack_check(const void *p, size_t n,
                                 char err[OMNI_ERR_LEN]);

/* Decode one msgpack map (no length prefix) into m.  On failure returns
 * OMNI_E_PROTOCOL (undecodable) or OMNI_E_BAD_REQUEST (a missing or
 * mistyped field) with err naming the field; m->id is set whenever the
 * id itself could be read, so the error can be tagged. */
enum omni_err omni_msg_decode(const void *p, size_t n, struct omni_msg *m,
                              char err[OMNI_ERR_LEN]);

/* Append m as a msgpack map (no prefix) to out.  Only the fields that
 * belong to m->type are written; empty optional strings are omitted. */
void omni_msg_pack(const struct omni_msg *m, struct omni_buf *out);
/* Append m as a whole frame (length prefix + map) to out. */
void omni_msg_encode(const struct omni_msg *m, struct omni_buf *out);

/* Append an error frame for id to out; message is redacted first. */
void omni_msg_encode_error(struct omni_buf *out, uint64_t id,
                           enum omni_err code, uint32_t retry_after_ms,
                           const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

const char *omni_msg_type_name(enum omni_msg_type t);

#endif
