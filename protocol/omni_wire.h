/*
 * omni_wire - broker <-> worker commands over ZeroMQ (MDP/0.2 shape).
 *
 * Workers connect a DEALER to the broker's ROUTER.  Every message is a
 * multipart ZeroMQ message; the ROUTER side sees the worker's identity
 * as an extra first frame.  After it:
 *
 *   frame 0  "OMNIW1"                signature and version
 *   frame 1  command, one byte
 *   then, per command:
 *   READY      W->B  service, map{t:"ready", capacity, pid}
 *   REQUEST    B->W  key, map{t:"req", op, deadline_ms, stream, auth,
 *                    trace, ...}, body
 *   PARTIAL    W->B  key, body
 *   FINAL      W->B  key, body
 *   ERROR      W->B  key, map{t:"error", code, status, message,
 *                    retry_after_ms}
 *   CANCEL     B->W  key
 *   STATS      W->B  JSON object of the worker's counters (every heartbeat
 *                    interval, when the worker kind has any)
 *   HEARTBEAT  both  (nothing)
 *   DISCONNECT both  (nothing)
 *
 * key is the broker's 8-byte big-endian request key, unique for the
 * broker's lifetime; workers echo it and never interpret it.  The maps
 * are omni_proto maps (omni_msg_pack / omni_msg_decode).
 */
#ifndef OMNI_WIRE_H
#define OMNI_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "omni_err.h"

#define OMNI_WIRE_SIG     "OMNIW1"
#define OMNI_WIRE_SIG_LEN 6

enum omni_wire_cmd {
    OMNI_W_READY = 1,
    OMNI_W_REQUEST = 2,
    OMNI_W_PARTIAL = 3,
    OMNI_W_FINAL = 4,
    OMNI_W_HEARTBEAT = 5,
    OMNI_W_DISCONNECT = 6,
    OMNI_W_CANCEL = 7,
    OMNI_W_ERROR = 8,
    OMNI_W_STATS = 9,
};

#define OMNI_WIRE_MAX_PARTS 3

/* A received command.  Frames are owned by the struct until
 * omni_wire_msg_close(); parts[] are the frames after the command byte
 * (key, then map/body), or the service for READY. */
struct omni_wire_msg {
    enum omni_wire_cmd cmd;
    bool has_ident;
    zmq_msg_t ident;
    uint64_t key;
    int nparts;
    zmq_msg_t parts[OMNI_WIRE_MAX_PARTS];
};

/* Receive one command without blocking.  Returns OMNI_OK, OMNI_AGAIN when
 * nothing is waiting, or OMNI_E_PROTOCOL when the message is malformed
 * (it has been consumed and discarded; err says why, and m->has_ident
 * tells whether m->ident names the sender, which the caller must still
 * close with omni_wire_msg_close).  router: sock is a ROUTER. */
enum omni_err omni_wire_recv(void *sock, bool router, struct omni_wire_msg *m,
                             char err[OMNI_ERR_LEN]);
void omni_wire_msg_close(struct omni_wire_msg *m);

/* Data and size of part i. */
const void *omni_wire_part(struct omni_wire_msg *m, int i, size_t *len);

/* Send a command.  ident/ident_len: the worker identity (ROUTER side) or
 * NULL (DEALER side).  has_key adds the key frame.  a and b are
 * optional extra frames (pass NULL to omit; a zero-length frame needs a
 * non-NULL pointer).  If move_b is not NULL, it is sent as the last
 * frame by zmq_msg_send (zero copy) and consumed.  Never blocks:
 * returns OMNI_E_IO with errno set (EHOSTUNREACH for a gone peer under
 * ZMQ_ROUTER_MANDATORY, EAGAIN at the high-water mark). */
enum omni_err omni_wire_send(void *sock, const void *ident, size_t ident_len,
                             enum omni_wire_cmd cmd, bool has_key, uint64_t key,
                             const void *a, size_t alen, const void *b,
                             size_t blen, zmq_msg_t *move_b);

#endif
