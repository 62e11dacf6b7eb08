/*
 * test_http_metrics - the HTTP front's counters and their Prometheus
 * text exposition, broker stats included.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "unit.h"

/* True when text has line as one whole line. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    fprintf(stderr, "missing line: %s\n", line);
    return false;
}

/* Check the text format: every sample's family was declared by a TYPE
 * line just before its first sample, and no family appears twice. */
static void check_format(const char *text)
{
    char family[256] = "";
    char seen[8192] = " ";
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        char line[512];
        if (!nl || (size_t)(nl - p) >= sizeof line) {
            CU_FAIL("unterminated or overlong line");
            return;
        }
        size_t len = (size_t)(nl - p);
        memcpy(line, p, len);
        line[len] = '\0';
        p = nl + 1;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            sscanf(line + 7, "%255s", family);
            char key[260];
            snprintf(key, sizeof key, " %s ", family);
            CU_ASSERT_PTR_NULL(strstr(seen, key));
            strncat(seen, key + 1, sizeof seen - strlen(seen) - 1);
            continue;
        }
        if (line[0] == '#')
            continue;
        size_t fl = strlen(family);
        CU_ASSERT(fl > 0 && strncmp(line, family, fl) == 0);
        const char *sp = strrchr(line, ' ');
        if (!sp) {
            CU_FAIL("sample line without a value");
            return;
        }
        char *end;
        strtod(sp + 1, &end);
        CU_ASSERT(*end == '\0' && end > sp + 1);
        const char *brace = strchr(line, '{');
        if (brace && brace < sp)
            CU_ASSERT(sp[-1] == '}');
    }
}

static void test_metrics_counts(void)
{
    struct omni_metrics *m = omni_metrics_new();
    omni_metrics_begin(m);
    omni_metrics_begin(m);
    omni_metrics_begin(m);
    omni_metrics_end(m, OMNI_R_CHAT, 200, NULL, 0.0004);
    omni_metrics_end(m, OMNI_R_CHAT, 200, "", 0.2);
    omni_metrics_end(m, OMNI_R_CHAT, 429, "RATE_LIMITED", 100.0);
    omni_metrics_begin(m);
    omni_metrics_first_chunk(m, OMNI_R_CHAT, 0.003);
    omni_metrics_error(m, "upstream");
    omni_metrics_error(m, "we\"ird\n");

    struct omni_buf b = OMNI_BUF_INIT;
    omni_metrics_render(m, NULL, 0, &b);
    check_format(b.data);
    CU_ASSERT(has_line(b.data, "# TYPE omni_http_requests_total counter"));
    CU_ASSERT(has_line(b.data, "omni_http_requests_total{route=\"chat\","
                               "code=\"200\"} 2"));
    CU_ASSERT(has_line(b.data, "omni_http_requests_total{route=\"chat\","
                               "code=\"429\"} 1"));
    CU_ASSERT(
        has_line(b.data, "omni_http_errors_total{code=\"rate_limited\"} 1"));
    CU_ASSERT(has_line(b.data, "omni_http_errors_total{code=\"upstream\"} 1"));
    CU_ASSERT(
        has_line(b.data, "omni_http_errors_total{code=\"we\\\"ird\\n\"} 1"));
    CU_ASSERT(has_line(b.data, "omni_http_request_duration_seconds_bucket{"
                               "route=\"chat\",le=\"0.001\"} 1"));
    CU_ASSERT(has_line(b.data, "omni_http_request_duration_seconds_bucket{"
                               "route=\"chat\",le=\"0.25\"} 2"));
    CU_ASSERT(has_line(b.data, "omni_http_request_duration_seconds_bucket{"
                               "route=\"chat\",le=\"60\"} 2"));
    CU_ASSERT(has_line(b.data, "omni_http_request_duration_seconds_bucket{"
                               "route=\"chat\",le=\"+Inf\"} 3"));
    CU_ASSERT(has_line(b.data, "omni_http_request_duration_seconds_count{"
                               "route=\"chat\"} 3"));
    CU_ASSERT(has_line(b.data, "omni_http_time_to_first_chunk_seconds_bucket{"
                               "route=\"chat\",le=\"0.0025\"} 0"));
    CU_ASSERT(has_line(b.data, "omni_http_time_to_first_chunk_seconds_bucket{"
                               "route=\"chat\",le=\"0.005\"} 1"));
    CU_ASSERT(has_line(b.data, "omni_http_in_flight 1"));
    CU_ASSERT(has_line(b.data, "omni_broker_up 0"));
    CU_ASSERT_PTR_NULL(strstr(b.data, "route=\"models\""));
    omni_buf_release(&b);
    omni_metrics_free(m);
    omni_metrics_free(NULL);
}

static void test_metrics_stats(void)
{
    static const char stats[] =
        "{\"uptime_ms\":1234,\"clients\":2,\"in_flight\":1,\"name\":\"x\","
        "\"services\":{"
        "\"llm\":{\"workers\":1,\"in_flight\":3,\"queued\":0,\"requests\":9,"
        "\"errors\":1,\"worker_lost\":0,\"overloaded\":2,"
        "\"cache\":{\"hits\":5,\"misses\":4},\"upstream_latency_ms\":12.5,"
        "\"ready\":true},"
        "\"e\\\"cho\":{\"requests\":7,\"new-counter\":1}}}";
    struct omni_metrics *m = omni_metrics_new();
    struct omni_buf b = OMNI_BUF_INIT;
    omni_metrics_render(m, stats, sizeof stats - 1, &b);
    check_format(b.data);
    CU_ASSERT(has_line(b.data, "omni_broker_up 1"));
    CU_ASSERT(has_line(b.data, "omni_broker_uptime_ms 1234"));
    CU_ASSERT(has_line(b.data, "omni_broker_clients 2"));
    CU_ASSERT(has_line(b.data, "# TYPE omni_service_requests gauge"));
    CU_ASSERT(has_line(b.data, "omni_service_requests{service=\"llm\"} 9"));
    CU_ASSERT(
        has_line(b.data, "omni_service_requests{service=\"e\\\"cho\"} 7"));
    CU_ASSERT(has_line(b.data, "omni_service_in_flight{service=\"llm\"} 3"));
    CU_ASSERT(has_line(b.data, "omni_service_overloaded{service=\"llm\"} 2"));
    CU_ASSERT(has_line(b.data, "omni_service_worker_lost{service=\"llm\"} 0"));
    CU_ASSERT(has_line(b.data, "omni_service_cache_hits{service=\"llm\"} 5"));
    CU_ASSERT(has_line(b.data, "omni_service_cache_misses{service=\"llm\"} 4"));
    CU_ASSERT(has_line(b.data, "omni_service_upstream_latency_ms{service="
                               "\"llm\"} 12.5"));
    CU_ASSERT(
        has_line(b.data, "omni_service_new_counter{service=\"e\\\"cho\"} 1"));
    CU_ASSERT_PTR_NULL(strstr(b.data, "omni_service_ready"));
    CU_ASSERT_PTR_NULL(strstr(b.data, "omni_broker_name"));
    omni_buf_release(&b);

    /* A stats reply that is not JSON still renders our own metrics. */
    omni_metrics_render(m, "nope", 4, &b);
    check_format(b.data);
    CU_ASSERT(has_line(b.data, "omni_broker_up 1"));
    CU_ASSERT_PTR_NULL(strstr(b.data, "omni_service_"));
    omni_buf_release(&b);
    omni_metrics_free(m);
}

static CU_TestInfo metrics_tests[] = {
    {"counters and histograms", test_metrics_counts},
    {"broker stats", test_metrics_stats},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"metrics", NULL, NULL, NULL, NULL, metrics_tests},
    CU_SUITE_INFO_NULL,
};
