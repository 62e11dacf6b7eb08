/*
 * fuzz_proto - libFuzzer target over the frame and message codec.
 *
 * The input is read as a byte stream of frames (omni_frame_peek) and,
 * whole, as one bare message.  Every payload goes through
 * omni_msgpack_check and omni_msg_decode; a message that decodes is
 * encoded again with omni_msg_encode and decoded a second time, and the
 * fields that belong to its type must survive the round trip.  Any
 * difference aborts (a finding), as do sanitizer reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_str(struct omni_str a, struct omni_str b)
{
    return a.n == b.n && (!a.n || memcmp(a.p, b.p, a.n) == 0);
}

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "round trip changed %s\n", what);
        abort();
    }
}

/* Encode a decoded message again and compare what must survive. */
static void roundtrip(const struct omni_msg *a)
{
    struct omni_buf b = OMNI_BUF_INIT;
    omni_msg_encode(a, &b);
    size_t n = 0;
    check(omni_frame_peek(b.data, b.len, SIZE_MAX, &n) == OMNI_OK &&
              n + OMNI_FRAME_HDR == b.len,
          "the frame length");
    struct omni_msg m;
    char err[OMNI_ERR_LEN];
    enum omni_err rc = omni_msg_decode(b.data + OMNI_FRAME_HDR, n, &m, err);
    if (rc != OMNI_OK) {
        fprintf(stderr, "re-encoded message does not decode: %s\n", err);
        abort();
    }
    check(m.type == a->type, "t");
    check(m.id == a->id, "id");
    check(m.version == (a->version ? a->version : OMNI_PROTOCOL_VERSION), "v");
    check(m.capacity == a->capacity && m.pid == a->pid, "capacity/pid");
    switch (a->type) {
    case OMNI_MSG_REQUEST:
        check(same_str(m.service, a->service), "svc");
        check(same_str(m.op, a->op), "op");
        check(m.deadline_ms == a->deadline_ms, "deadline_ms");
        check(m.stream == a->stream && m.idempotent == a->idempotent,
              "stream/idempotent");
        check(same_str(m.auth, a->auth) && same_str(m.trace, a->trace),
              "auth/trace");
        check(same_str(m.body, a->body), "body");
        break;
    case OMNI_MSG_CHUNK:
        check(m.seq == a->seq, "seq");
        check(same_str(m.body, a->body), "body");
        break;
    case OMNI_MSG_FINAL: check(same_str(m.body, a->body), "body"); break;
    case OMNI_MSG_ERROR:
        check(m.code == a->code, "code");
        check(!a->status || m.status == a->status, "status");
        check(same_str(m.message, a->message), "message");
        check(m.retry_after_ms == a->retry_after_ms, "retry_after_ms");
        break;
    default: break;
    }
    omni_buf_release(&b);
}

static void one_message(const uint8_t *p, size_t n)
{
    char err[OMNI_ERR_LEN];
    omni_msgpack_check(p, n, err);
    struct omni_msg m;
    if (omni_msg_decode(p, n, &m, err) == OMNI_OK)
        roundtrip(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one_message(data, size);
    size_t off = 0, n;
    while (omni_frame_peek(data + off, size - off, OMNI_MAX_FRAME_DEFAULT,
                           &n) == OMNI_OK) {
        /* Copy so ASan sees reads past the payload's own end. */
        uint8_t *p = malloc(n);
        memcpy(p, data + off + OMNI_FRAME_HDR, n);
        one_message(p, n);
        free(p);
        off += OMNI_FRAME_HDR + n;
    }
    return 0;
}
