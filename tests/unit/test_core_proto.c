/*
 * test_core_proto - frame and message codec.
 */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "omni_proto.h"
#include "unit.h"

static void test_roundtrip_request(void)
{
    struct omni_buf b = OMNI_BUF_INIT;
    struct omni_msg in = {.type = OMNI_MSG_REQUEST,
                          .id = 0x123456789abcULL,
                          .service = omni_str_c("echo"),
                          .op = omni_str_c("say"),
                          .deadline_ms = 2500,
                          .stream = true,
                          .auth = omni_str_c("k"),
                          .body = omni_str_c("{\"a\":1}")};
    omni_msg_encode(&in, &b);
    size_t n = 0;
    CU_ASSERT_EQUAL(omni_frame_peek(b.data, b.len, 1 << 20, &n), OMNI_OK);
    CU_ASSERT_EQUAL(n + 4, b.len);
    struct omni_msg out;
    char err[OMNI_ERR_LEN];
    CU_ASSERT_EQUAL(omni_msg_decode(b.data + 4, n, &out, err), OMNI_OK);
    CU_ASSERT_EQUAL(out.type, OMNI_MSG_REQUEST);
    CU_ASSERT_EQUAL(out.id, in.id);
    CU_ASSERT(omni_str_eq(out.service, "echo"));
    CU_ASSERT(omni_str_eq(out.op, "say"));
    CU_ASSERT(omni_str_eq(out.auth, "k"));
    CU_ASSERT(omni_str_eq(out.body, "{\"a\":1}"));
    CU_ASSERT_EQUAL(out.deadline_ms, 2500);
    CU_ASSERT(out.stream);
    CU_ASSERT(!out.idempotent);
    omni_buf_release(&b);
}

static void test_roundtrip_error(void)
{
    struct omni_buf b = OMNI_BUF_INIT;
    omni_msg_encode_error(&b, 7, OMNI_E_OVERLOADED, 250, "queue '%s' full",
                          "llm");
    struct omni_msg out;
    char err[OMNI_ERR_LEN];
    CU_ASSERT_EQUAL(omni_msg_decode(b.data + 4, b.len - 4, &out, err), OMNI_OK);
    CU_ASSERT_EQUAL(out.type, OMNI_MSG_ERROR);
    CU_ASSERT_EQUAL(out.code, OMNI_E_OVERLOADED);
    CU_ASSERT_EQUAL(out.status, 503);
    CU_ASSERT_EQUAL(out.retry_after_ms, 250);
    CU_ASSERT(omni_str_eq(out.message, "queue 'llm' full"));
    omni_buf_release(&b);
}

static void test_frame_limits(void)
{
    size_t n;
    uint8_t big[4] = {0x01, 0x00, 0x00, 0x01};
    CU_ASSERT_EQUAL(omni_frame_peek(big, 4, 1 << 20, &n), OMNI_E_TOO_LARGE);
    uint8_t zero[4] = {0, 0, 0, 0};
    CU_ASSERT_EQUAL(omni_frame_peek(zero, 4, 1 << 20, &n), OMNI_E_TOO_LARGE);
    uint8_t part[6] = {0, 0, 0, 9, 0x80, 0x80};
    CU_ASSERT_EQUAL(omni_frame_peek(part, 3, 1 << 20, &n), OMNI_AGAIN);
    CU_ASSERT_EQUAL(omni_frame_peek(part, 6, 1 << 20, &n), OMNI_AGAIN);
}

/* Every malformed input gets an error, never a crash. */
static void test_bad_inputs(void)
{
    static const struct {
        const char *hex;
        enum omni_err want;
    } cases[] = {
        {"c1", OMNI_E_PROTOCOL},            /* never-used byte */
        {"dd7fffffff", OMNI_E_TOO_LARGE},   /* 2^31-entry array */
        {"dcffff", OMNI_E_TOO_LARGE},       /* 65535-entry array */
        {"da0010", OMNI_E_PROTOCOL},        /* truncated string */
        {"92", OMNI_E_PROTOCOL},            /* array, no entries */
        {"81a174", OMNI_E_PROTOCOL},        /* map, missing value */
        {"93010203", OMNI_E_PROTOCOL},      /* not a map */
        {"80", OMNI_E_BAD_REQUEST},         /* no type */
        {"81a17401", OMNI_E_BAD_REQUEST},   /* t not a string */
        {"81a174a178", OMNI_E_BAD_REQUEST}, /* unknown type */
        {"82a174a3726571a26964a178", OMNI_E_BAD_REQUEST}, /* id a str */
        {"81a174a3726571", OMNI_E_BAD_REQUEST},           /* req without svc */
        {"8001", OMNI_E_PROTOCOL},                        /* trailing byte */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint8_t buf[64];
        size_t n = strlen(cases[i].hex) / 2;
        for (size_t j = 0; j < n; j++) {
            unsigned v;
            sscanf(cases[i].hex + 2 * j, "%2x", &v);
            buf[j] = (uint8_t)v;
        }
        struct omni_msg m;
        char err[OMNI_ERR_LEN] = "";
        enum omni_err got = omni_msg_decode(buf, n, &m, err);
        if (got != cases[i].want)
            fprintf(stderr, "case %zu (%s): got %s, want %s (%s)\n", i,
                    cases[i].hex, omni_err_code(got),
                    omni_err_code(cases[i].want), err);
        CU_ASSERT_EQUAL(got, cases[i].want);
        CU_ASSERT(err[0] != '\0');
    }
}

static void test_deep_nesting(void)
{
    /* map {t: "req", x: [[[[...]]]]} nested 40 deep */
    uint8_t buf[128];
    size_t n = 0;
    const uint8_t head[] = {0x82, 0xa1, 't', 0xa3, 'r', 'e', 'q', 0xa1, 'x'};
    memcpy(buf, head, sizeof head);
    n = sizeof head;
    for (int i = 0; i < 40; i++)
        buf[n++] = 0x91;
    buf[n++] = 0x01;
    struct omni_msg m;
    char err[OMNI_ERR_LEN];
    CU_ASSERT_EQUAL(omni_msg_decode(buf, n, &m, err), OMNI_E_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nesting"));
}

static void test_unknown_fields_skipped(void)
{
    /* {t:"cancel", id:5, extra:{a:[1,2]}, v:1} */
    const uint8_t buf[] = {0x84, 0xa1, 't',  0xa6, 'c',  'a',  'n',  'c',
                           'e',  'l',  0xa2, 'i',  'd',  0x05, 0xa5, 'e',
                           'x',  't',  'r',  'a',  0x81, 0xa1, 'a',  0x92,
                           0x01, 0x02, 0xa1, 'v',  0x01};
    struct omni_msg m;
    char err[OMNI_ERR_LEN];
    CU_ASSERT_EQUAL(omni_msg_decode(buf, sizeof buf, &m, err), OMNI_OK);
    CU_ASSERT_EQUAL(m.type, OMNI_MSG_CANCEL);
    CU_ASSERT_EQUAL(m.id, 5);
    CU_ASSERT_EQUAL(m.version, 1);
}

/* Our reader agrees with msgpack-c on every scalar encoding. */
static void test_reader_vs_msgpack_c(void)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const uint64_t ids[] = {
        0,     127,   128,           255,           256,
        65535, 65536, 4294967295ULL, 4294967296ULL, UINT64_MAX};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_map(&pk, 4);
        msgpack_pack_str_with_body(&pk, "t", 1);
        msgpack_pack_str_with_body(&pk, "chunk", 5);
        msgpack_pack_str_with_body(&pk, "id", 2);
        msgpack_pack_uint64(&pk, ids[i]);
        msgpack_pack_str_with_body(&pk, "neg", 3);
        msgpack_pack_int64(&pk, -(int64_t)(ids[i] >> 2));
        msgpack_pack_str_with_body(&pk, "f", 1);
        msgpack_pack_double(&pk, 1.5);
        struct omni_msg m;
        char err[OMNI_ERR_LEN];
        CU_ASSERT_EQUAL(omni_msg_decode(sb.data, sb.size, &m, err), OMNI_OK);
        CU_ASSERT_EQUAL(m.id, ids[i]);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* The example of PROTOCOL.md section 2, byte for byte. */
static void test_golden_example(void)
{
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x2e, 0x86, 0xa1, 0x74, 0xa3, 0x72, 0x65,
        0x71, 0xa1, 0x76, 0x01, 0xa2, 0x69, 0x64, 0x07, 0xa3, 0x73,
        0x76, 0x63, 0xa4, 0x65, 0x63, 0x68, 0x6f, 0xa2, 0x6f, 0x70,
        0xa4, 0x65, 0x63, 0x68, 0x6f, 0xa4, 0x62, 0x6f, 0x64, 0x79,
        0xc4, 0x08, 0x7b, 0x22, 0x68, 0x69, 0x22, 0x3a, 0x31, 0x7d};
    struct omni_buf b = OMNI_BUF_INIT;
    struct omni_msg m = {.type = OMNI_MSG_REQUEST,
                         .id = 7,
                         .service = omni_str_c("echo"),
                         .op = omni_str_c("echo"),
                         .body = omni_str_c("{\"hi\":1}")};
    omni_msg_encode(&m, &b);
    CU_ASSERT_EQUAL(b.len, sizeof want);
    CU_ASSERT(b.len == sizeof want && memcmp(b.data, want, b.len) == 0);
    omni_buf_release(&b);
}

static CU_TestInfo proto_tests[] = {
    {"golden example", test_golden_example},
    {"roundtrip request", test_roundtrip_request},
    {"roundtrip error", test_roundtrip_error},
    {"frame limits", test_frame_limits},
    {"bad inputs", test_bad_inputs},
    {"deep nesting", test_deep_nesting},
    {"unknown fields skipped", test_unknown_fields_skipped},
    {"reader vs msgpack-c", test_reader_vs_msgpack_c},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"proto", NULL, NULL, NULL, NULL, proto_tests},
    CU_SUITE_INFO_NULL,
};
