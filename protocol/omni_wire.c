/*
 * omni_wire - ZeroMQ framing of broker <-> worker commands.
 */
#include "omni_wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* How many frames follow the command byte, per command. */
static int parts_for(enum omni_wire_cmd cmd, bool *keyed)
{
    *keyed = true;
    switch (cmd) {
    case OMNI_W_READY: *keyed = false; return 2;
    case OMNI_W_REQUEST: return 3;
    case OMNI_W_PARTIAL: return 2;
    case OMNI_W_FINAL: return 2;
    case OMNI_W_ERROR: return 2;
    case OMNI_W_CANCEL: return 1;
    case OMNI_W_STATS: *keyed = false; return 1;
    case OMNI_W_HEARTBEAT: *keyed = false; return 0;
    case OMNI_W_DISCONNECT: *keyed = false; return 0;
    }
    return -1;
}

static bool more(void *sock)
{
    int more = 0;
    size_t len = sizeof more;
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len);
    return more != 0;
}

static void drain(void *sock)
{
    while (more(sock)) {
        zmq_msg_t f;
        zmq_msg_init(&f);
        zmq_msg_recv(&f, sock, ZMQ_DONTWAIT);
        zmq_msg_close(&f);
    }
}

void omni_wire_msg_close(struct omni_wire_msg *m)
{
    if (m->has_ident)
        zmq_msg_close(&m->ident);
    for (int i = 0; i < m->nparts; i++)
        zmq_msg_close(&m->parts[i]);
    m->has_ident = false;
    m->nparts = 0;
}

static enum omni_err bad(void *sock, struct omni_wire_msg *m, char *err,
                         const char *why)
{
    drain(sock);
    for (int i = 0; i < m->nparts; i++)
        zmq_msg_close(&m->parts[i]);
    m->nparts = 0;
    snprintf(err, OMNI_ERR_LEN, "%s", why);
    return OMNI_E_PROTOCOL;
}

enum omni_err omni_wire_recv(void *sock, bool router, struct omni_wire_msg *m,
                             char err[OMNI_ERR_LEN])
{
    memset(m, 0, sizeof *m);
    zmq_msg_t f;
    if (router) {
        zmq_msg_init(&m->ident);
        if (zmq_msg_recv(&m->ident, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m->ident);
            return OMNI_AGAIN;
        }
        m->has_ident = true;
        if (!more(sock))
            return bad(sock, m, err, "empty message");
    }
    zmq_msg_init(&f);
    if (zmq_msg_recv(&f, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&f);
        if (router)
            return bad(sock, m, err, "truncated message");
        return OMNI_AGAIN;
    }
    bool sig = zmq_msg_size(&f) == OMNI_WIRE_SIG_LEN &&
               memcmp(zmq_msg_data(&f), OMNI_WIRE_SIG, OMNI_WIRE_SIG_LEN) == 0;
    zmq_msg_close(&f);
    if (!sig || !more(sock))
        return bad(sock, m, err, "bad signature");
    zmq_msg_init(&f);
    zmq_msg_recv(&f, sock, ZMQ_DONTWAIT);
    int cmd = zmq_msg_size(&f) == 1 ? *(uint8_t *)zmq_msg_data(&f) : -1;
    zmq_msg_close(&f);
    bool keyed;
    int want = cmd < 0 ? -1 : parts_for((enum omni_wire_cmd)cmd, &keyed);
    if (want < 0)
        return bad(sock, m, err, "unknown command");
    m->cmd = (enum omni_wire_cmd)cmd;
    if (keyed) {
        if (!more(sock))
            return bad(sock, m, err, "missing key");
        zmq_msg_init(&f);
        zmq_msg_recv(&f, sock, ZMQ_DONTWAIT);
        bool ok = zmq_msg_size(&f) == 8;
        if (ok) {
            const uint8_t *k = zmq_msg_data(&f);
            for (int i = 0; i < 8; i++)
                m->key = (m->key << 8) | k[i];
        }
        zmq_msg_close(&f);
        if (!ok)
            return bad(sock, m, err, "bad key frame");
        want--;
    }
    for (int i = 0; i < want; i++) {
        if (!more(sock))
            return bad(sock, m, err, "missing frame");
        zmq_msg_init(&m->parts[i]);
        m->nparts++;
        zmq_msg_recv(&m->parts[i], sock, ZMQ_DONTWAIT);
    }
    if (more(sock))
        return bad(sock, m, err, "extra frames");
    return OMNI_OK;
}

const void *omni_wire_part(struct omni_wire_msg *m, int i, size_t *len)
{
    *len = zmq_msg_size(&m->parts[i]);
    return zmq_msg_data(&m->parts[i]);
}

enum omni_err omni_wire_send(void *sock, const void *ident, size_t ident_len,
                             enum omni_wire_cmd cmd, bool has_key, uint64_t key,
                             const void *a, size_t alen, const void *b,
                             size_t blen, zmq_msg_t *move_b)
{
    uint8_t c = (uint8_t)cmd;
    uint8_t k[8];
    bool tail = has_key || a || b || move_b;
    int fl = ZMQ_DONTWAIT | ZMQ_SNDMORE;
    if (ident && zmq_send(sock, ident, ident_len, fl) < 0)
        return OMNI_E_IO;
    /* Once the first frame is queued, ZeroMQ delivers the rest
     * atomically, so later failures cannot leave half a message. */
    if (zmq_send(sock, OMNI_WIRE_SIG, OMNI_WIRE_SIG_LEN, fl) < 0 && !ident)
        return OMNI_E_IO;
    zmq_send(sock, &c, 1, tail ? fl : ZMQ_DONTWAIT);
    if (has_key) {
        for (int i = 0; i < 8; i++)
            k[i] = (uint8_t)(key >> (56 - 8 * i));
        bool last = !a && !b && !move_b;
        zmq_send(sock, k, 8, last ? ZMQ_DONTWAIT : fl);
    }
    if (a)
        zmq_send(sock, a, alen, (b || move_b) ? fl : ZMQ_DONTWAIT);
    if (move_b)
        zmq_msg_send(move_b, sock, ZMQ_DONTWAIT);
    else if (b)
        zmq_send(sock, b, blen, ZMQ_DONTWAIT);
    return OMNI_OK;
}
