/*
 * metrics - counters of the HTTP front and their Prometheus exposition.
 *
 * Everything lives in one struct updated from the single event-loop
 * thread, so there is no locking.  Status and error-code dimensions are
 * small growing arrays searched linearly: a front sees a handful of
 * distinct statuses and code words.  Rendering the broker's stats walks
 * its JSON and turns every number into a gauge, nested objects joined
 * with '_', grouped by metric name as the text format requires.
 */
#include "metrics.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni_alloc.h"

static const double bounds[OMNI_METRICS_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5,   1,      2.5,   5,    10,    30,   60,
};

struct histogram {
    uint64_t buckets[OMNI_METRICS_BUCKETS]; /* non-cumulative */
    uint64_t count;
    double sum;
};

struct status_count {
    enum omni_route_name route;
    int status;
    uint64_t n;
};

struct code_count {
    char code[48];
    uint64_t n;
};

struct omni_metrics {
    struct status_count *requests;
    size_t nrequests;
    struct code_count *errors;
    size_t nerrors;
    struct histogram duration[OMNI_R__COUNT];
    struct histogram first_chunk[OMNI_R__COUNT];
    long in_flight;
};

struct omni_metrics *omni_metrics_new(void)
{
    return omni_calloc(1, sizeof(struct omni_metrics));
}

void omni_metrics_free(struct omni_metrics *m)
{
    if (!m)
        return;
    omni_free(m->requests);
    omni_free(m->errors);
    omni_free(m);
}

static void observe(struct histogram *h, double v)
{
    size_t i = 0;
    while (i < OMNI_METRICS_BUCKETS && v > bounds[i])
        i++;
    if (i < OMNI_METRICS_BUCKETS)
        h->buckets[i]++;
    h->count++;
    h->sum += v;
}

void omni_metrics_begin(struct omni_metrics *m)
{
    m->in_flight++;
}

void omni_metrics_error(struct omni_metrics *m, const char *code)
{
    char word[sizeof m->errors->code];
    size_t i = 0;
    for (; code[i] && i + 1 < sizeof word; i++)
        word[i] = code[i] >= 'A' && code[i] <= 'Z' ? (char)(code[i] - 'A' + 'a')
                                                   : code[i];
    word[i] = '\0';
    for (i = 0; i < m->nerrors; i++) {
        if (strcmp(m->errors[i].code, word) == 0) {
            m->errors[i].n++;
            return;
        }
    }
    m->errors = omni_realloc(m->errors, (m->nerrors + 1) * sizeof *m->errors);
    memcpy(m->errors[m->nerrors].code, word, sizeof word);
    m->errors[m->nerrors++].n = 1;
}

void omni_metrics_end(struct omni_metrics *m, enum omni_route_name route,
                      int status, const char *code, double seconds)
{
    if (route >= OMNI_R__COUNT)
        route = OMNI_R_UNKNOWN;
    m->in_flight--;
    observe(&m->duration[route], seconds);
    if (code && *code)
        omni_metrics_error(m, code);
    for (size_t i = 0; i < m->nrequests; i++) {
        if (m->requests[i].route == route && m->requests[i].status == status) {
            m->requests[i].n++;
            return;
        }
    }
    m->requests =
        omni_realloc(m->requests, (m->nrequests + 1) * sizeof *m->requests);
    m->requests[m->nrequests++] = (struct status_count){route, status, 1};
}

void omni_metrics_first_chunk(struct omni_metrics *m,
                              enum omni_route_name route, double seconds)
{
    observe(&m->first_chunk[route < OMNI_R__COUNT ? route : 0], seconds);
}

/* A label value with \, " and newline escaped. */
static void add_label(struct omni_buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            omni_buf_addch(out, '\\');
        if (*s == '\n')
            omni_buf_adds(out, "\\n");
        else
            omni_buf_addch(out, *s);
    }
}

static void render_histograms(struct omni_buf *out, const char *name,
                              const char *help, const struct histogram *h)
{
    omni_buf_addf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int r = 0; r < OMNI_R__COUNT; r++) {
        if (!h[r].count)
            continue;
        const char *label = omni_route_label((enum omni_route_name)r);
        uint64_t cum = 0;
        for (int i = 0; i < OMNI_METRICS_BUCKETS; i++) {
            cum += h[r].buckets[i];
            omni_buf_addf(out, "%s_bucket{route=\"%s\",le=\"%g\"} %llu\n", name,
                          label, bounds[i], (unsigned long long)cum);
        }
        omni_buf_addf(out, "%s_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", name,
                      label, (unsigned long long)h[r].count);
        omni_buf_addf(out, "%s_sum{route=\"%s\"} %.9g\n", name, label,
                      h[r].sum);
        omni_buf_addf(out, "%s_count{route=\"%s\"} %llu\n", name, label,
                      (unsigned long long)h[r].count);
    }
}

/* One gauge sample taken from the stats JSON. */
struct sample {
    char *name;    /* full metric name */
    char *service; /* label value, NULL for broker-wide gauges */
    double v;
    bool integer;
};

struct samples {
    struct sample *s;
    size_t n;
};

/* Append key to prefix as a metric-name part: [a-zA-Z0-9_] kept, the
 * rest made '_'. */
static char *name_join(const char *prefix, const char *key)
{
    struct omni_buf b = OMNI_BUF_INIT;
    omni_buf_adds(&b, prefix);
    omni_buf_addch(&b, '_');
    for (const char *k = key; *k; k++) {
        char c = *k;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_';
        omni_buf_addch(&b, ok ? c : '_');
    }
    return omni_buf_detach(&b, NULL);
}

/* Collect every number under obj (nested objects flattened). */
static void collect(struct samples *sm, json_t *obj, const char *prefix,
                    const char *service, int depth)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        char *name = name_join(prefix, key);
        if (json_is_number(v)) {
            sm->s = omni_realloc(sm->s, (sm->n + 1) * sizeof *sm->s);
            sm->s[sm->n++] =
                (struct sample){name, service ? omni_strdup(service) : NULL,
                                json_number_value(v), json_is_integer(v)};
            continue;
        }
        if (json_is_object(v) && depth < 4)
            collect(sm, v, name, service, depth + 1);
        omni_free(name);
    }
}

static int sample_cmp(const void *a, const void *b)
{
    const struct sample *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return strcmp(x->service ? x->service : "", y->service ? y->service : "");
}

/* The broker's gauges: top-level numbers as omni_broker_<field>, and
 * each service's as omni_service_<field>{service}. */
static void render_stats(struct omni_buf *out, const char *stats, size_t n)
{
    json_t *j = json_loadb(stats, n, 0, NULL);
    struct samples sm = {NULL, 0};
    if (json_is_object(j)) {
        json_t *services = json_object_get(j, "services");
        json_t *top = json_copy(j);
        json_object_del(top, "services");
        collect(&sm, top, "omni_broker", NULL, 0);
        json_decref(top);
        const char *svc;
        json_t *v;
        json_object_foreach(services, svc, v)
        {
            if (json_is_object(v))
                collect(&sm, v, "omni_service", svc, 0);
        }
    }
    json_decref(j);
    if (sm.n)
        qsort(sm.s, sm.n, sizeof *sm.s, sample_cmp);
    for (size_t i = 0; i < sm.n; i++) {
        struct sample *s = &sm.s[i];
        if (i == 0 || strcmp(s->name, sm.s[i - 1].name) != 0)
            omni_buf_addf(out, "# TYPE %s gauge\n", s->name);
        omni_buf_adds(out, s->name);
        if (s->service) {
            omni_buf_adds(out, "{service=\"");
            add_label(out, s->service);
            omni_buf_adds(out, "\"}");
        }
        if (s->integer)
            omni_buf_addf(out, " %.0f\n", s->v);
        else
            omni_buf_addf(out, " %.17g\n", s->v);
    }
    for (size_t i = 0; i < sm.n; i++) {
        omni_free(sm.s[i].name);
        omni_free(sm.s[i].service);
    }
    omni_free(sm.s);
}

void omni_metrics_render(const struct omni_metrics *m, const char *stats,
                         size_t n, struct omni_buf *out)
{
    omni_buf_adds(out, "# HELP omni_http_requests_total HTTP requests "
                       "answered, by route and status code.\n"
                       "# TYPE omni_http_requests_total counter\n");
    for (size_t i = 0; i < m->nrequests; i++)
        omni_buf_addf(out,
                      "omni_http_requests_total{route=\"%s\",code=\"%d\"} "
                      "%llu\n",
                      omni_route_label(m->requests[i].route),
                      m->requests[i].status,
                      (unsigned long long)m->requests[i].n);

    omni_buf_adds(out, "# HELP omni_http_errors_total Error replies, by "
                       "error code word.\n"
                       "# TYPE omni_http_errors_total counter\n");
    for (size_t i = 0; i < m->nerrors; i++) {
        omni_buf_adds(out, "omni_http_errors_total{code=\"");
        add_label(out, m->errors[i].code);
        omni_buf_addf(out, "\"} %llu\n", (unsigned long long)m->errors[i].n);
    }

    render_histograms(out, "omni_http_request_duration_seconds",
                      "Time from request to the end of the reply.",
                      m->duration);
    render_histograms(out, "omni_http_time_to_first_chunk_seconds",
                      "Time from request to the first streamed chunk.",
                      m->first_chunk);
    omni_buf_addf(out,
                  "# HELP omni_http_in_flight Requests being answered.\n"
                  "# TYPE omni_http_in_flight gauge\n"
                  "omni_http_in_flight %ld\n",
                  m->in_flight);
    omni_buf_addf(out,
                  "# HELP omni_broker_up Whether the broker answered the "
                  "stats request.\n"
                  "# TYPE omni_broker_up gauge\n"
                  "omni_broker_up %d\n",
                  stats ? 1 : 0);
    if (stats)
        render_stats(out, stats, n);
}
