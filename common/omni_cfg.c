/*
 * omni_cfg - the settings table and its loader.
 *
 * Rows are grouped by the process that reads them.  Add a row here for a
 * new setting; the environment name is part of the contract once it
 * ships (see README, "Configuration").
 */
#include "omni_cfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "omni_alloc.h"
#include "omni_log.h"

#define S    OMNI_CFG_STR
#define I    OMNI_CFG_INT
#define B    OMNI_CFG_BOOL
#define SENS OMNI_CFG_SENSITIVE

static const struct omni_cfg_def omni_cfg_defs[] = {
    /* Shared by every process. */
    {"socket", "OMNI_SOCKET", S, "", 0, 0, 0, "broker Unix socket path"},
    {"log_level", "OMNI_LOG_LEVEL", S, "info", 0, 0, 0,
     "debug, info, warn or error"},
    {"log_format", "OMNI_LOG_FORMAT", S, "json", 0, 0, 0, "json or text"},
    {"redis_url", "OMNI_REDIS_URL", S, "", 0, 0, SENS,
     "redis://[user:pass@]host:port/db or unix:///path"},
    {"client_keys", "OMNI_CLIENT_KEYS", S, "", 0, 0, SENS,
     "comma-separated client keys; empty: loopback only, no keys"},

    /* Broker and supervisor. */
    {"services", "OMNI_SERVICES", S, "echo,llm,rag,mcp", 0, 0, 0,
     "services to serve; each runs workers of the same name"},
    {"workers.echo", "OMNI_WORKERS_ECHO", I, "1", 0, 64, 0, ""},
    {"workers.llm", "OMNI_WORKERS_LLM", I, "1", 0, 64, 0, ""},
    {"workers.rag", "OMNI_WORKERS_RAG", I, "1", 0, 64, 0, ""},
    {"workers.mcp", "OMNI_WORKERS_MCP", I, "1", 0, 64, 0, ""},
    {"worker_dir", "OMNI_WORKER_DIR", S, "", 0, 0, 0,
     "where omni-<service> binaries live; default: beside omni-broker"},
    {"broker.zmq_endpoint", "OMNI_ZMQ_ENDPOINT", S, "", 0, 0, 0,
     "worker endpoint; default ipc:// beside the socket"},
    {"broker.queue_max", "OMNI_QUEUE_MAX", I, "1024", 0, 1000000, 0,
     "requests queued per service before OVERLOADED"},
    {"broker.heartbeat_ms", "OMNI_HEARTBEAT_MS", I, "1000", 50, 60000, 0,
     "heartbeat interval, both ways"},
    {"broker.liveness", "OMNI_LIVENESS", I, "3", 2, 100, 0,
     "missed heartbeats before a peer is dead"},
    {"broker.drain_ms", "OMNI_DRAIN_MS", I, "10000", 0, 3600000, 0,
     "grace period for in-flight work on SIGTERM"},
    {"broker.max_frame", "OMNI_MAX_FRAME", I, "16777216", 1024, 1073741824, 0,
     "largest frame accepted, bytes"},
    {"broker.default_timeout_ms", "OMNI_DEFAULT_TIMEOUT_MS", I, "600000", 0,
     86400000, 0, "deadline for requests that carry none; 0 = none"},
    {"broker.max_clients", "OMNI_MAX_CLIENTS", I, "10000", 1, 1000000, 0,
     "concurrent client connections"},
    {"broker.restart_min_ms", "OMNI_RESTART_MIN_MS", I, "100", 0, 600000, 0,
     "first restart delay of a dead worker"},
    {"broker.restart_max_ms", "OMNI_RESTART_MAX_MS", I, "30000", 0, 3600000, 0,
     "restart delay cap; also the throttle of a kind failing at start"},
    {"http_listen", "OMNI_HTTP_LISTEN", S, "127.0.0.1:8080", 0, 0, 0,
     "HTTP front host:port; empty disables it"},

    /* HTTP front. */
    {"http.mode", "OMNI_HTTP_MODE", S, "process", 0, 0, 0,
     "process: the supervised omni-http; broker: the HTTP front runs in "
     "the broker's loop"},
    {"http.max_body", "OMNI_HTTP_MAX_BODY", I, "16777216", 1024, 1073741824, 0,
     "largest HTTP request body, bytes"},

    /* Worker runtime. */
    {"capacity.echo", "OMNI_CAPACITY_ECHO", I, "4096", 1, 1000000, 0, ""},
    {"capacity.llm", "OMNI_CAPACITY_LLM", I, "10000", 1, 1000000, 0, ""},
    {"capacity.rag", "OMNI_CAPACITY_RAG", I, "64", 1, 1000000, 0, ""},
    {"capacity.mcp", "OMNI_CAPACITY_MCP", I, "256", 1, 1000000, 0, ""},
    {"worker.sndhwm", "OMNI_WORKER_SNDHWM", I, "0", 0, 10000000, 0,
     "ZeroMQ send high-water mark of the broker link; 0 = unlimited"},

    /* LLM worker and providers (standard variable names). */
    {"openai.api_key", "OPENAI_API_KEY", S, "", 0, 0, SENS, ""},
    {"openai.base_url", "OPENAI_BASE_URL", S, "https://api.openai.com/v1", 0, 0,
     0, ""},
    {"anthropic.api_key", "ANTHROPIC_API_KEY", S, "", 0, 0, SENS, ""},
    {"anthropic.base_url", "ANTHROPIC_BASE_URL", S, "https://api.anthropic.com",
     0, 0, 0, ""},
    {"anthropic.version", "OMNI_ANTHROPIC_VERSION", S, "2023-06-01", 0, 0, 0,
     "anthropic-version header"},
    {"gemini.api_key", "GEMINI_API_KEY", S, "", 0, 0, SENS, ""},
    {"gemini.base_url", "GOOGLE_GEMINI_BASE_URL", S, "", 0, 0, 0, ""},
    {"azure.api_key", "AZURE_OPENAI_API_KEY", S, "", 0, 0, SENS, ""},
    {"azure.endpoint", "AZURE_OPENAI_ENDPOINT", S, "", 0, 0, 0, ""},
    {"aws.region", "AWS_REGION", S, "", 0, 0, 0, ""},
    {"aws.access_key_id", "AWS_ACCESS_KEY_ID", S, "", 0, 0, SENS, ""},
    {"aws.secret_access_key", "AWS_SECRET_ACCESS_KEY", S, "", 0, 0, SENS, ""},
    {"aws.session_token", "AWS_SESSION_TOKEN", S, "", 0, 0, SENS, ""},
    {"llm.providers", "OMNI_PROVIDERS", S, "", 0, 0, 0,
     "extra OpenAI-compatible providers: name=base_url[|KEY_VAR],..."},
    {"llm.default_model", "OMNI_DEFAULT_MODEL", S, "", 0, 0, 0,
     "model used when a request names none"},
    {"llm.retries", "OMNI_LLM_RETRIES", I, "2", 0, 10, 0,
     "retries of 429, 5xx, 529 and connection errors"},
    {"llm.connect_timeout_ms", "OMNI_LLM_CONNECT_TIMEOUT_MS", I, "10000", 1,
     600000, 0, ""},
    {"llm.first_byte_timeout_ms", "OMNI_LLM_FIRST_BYTE_TIMEOUT_MS", I, "120000",
     1, 3600000, 0, ""},
    {"llm.idle_timeout_ms", "OMNI_LLM_IDLE_TIMEOUT_MS", I, "60000", 1, 3600000,
     0, "longest silence inside a streamed reply"},
    {"llm.tool_loop_max", "OMNI_TOOL_LOOP_MAX", I, "8", 1, 100, 0,
     "model turns in one MCP tool loop"},
    {"llm.semantic_timeout_ms", "OMNI_SEMANTIC_TIMEOUT_MS", I, "2000", 1,
     600000, 0, "longest wait for a semantic cache lookup"},
    {"cache.ttl_s", "OMNI_CACHE_TTL_S", I, "3600", 0, 31536000, 0,
     "response cache TTL; 0 disables the cache"},
    {"cache.timeout_ms", "OMNI_CACHE_TIMEOUT_MS", I, "250", 1, 60000, 0,
     "longest wait for a cache lookup before serving without it"},
    {"llm.max_host_connections", "OMNI_LLM_MAX_HOST_CONNECTIONS", I, "4096", 0,
     1000000, 0, "upstream connections per host; 0 = no limit"},
    {"llm.max_idle_connections", "OMNI_LLM_MAX_IDLE_CONNECTIONS", I, "1024", 1,
     1000000, 0, "idle upstream connections kept open for reuse"},

    /* MCP worker. */
    {"mcp_config", "OMNI_MCP_CONFIG", S, "", 0, 0, 0, "mcpServers JSON file"},
    {"mcp.call_timeout_ms", "OMNI_MCP_CALL_TIMEOUT_MS", I, "60000", 1, 3600000,
     0, ""},
    {"mcp.max_line", "OMNI_MCP_MAX_LINE", I, "4194304", 1024, 268435456, 0,
     "longest JSON-RPC message from a server"},
    {"mcp.init_timeout_ms", "OMNI_MCP_INIT_TIMEOUT_MS", I, "10000", 1, 600000,
     0, "server/discover probe and initialize, each"},
    {"mcp.restart_min_ms", "OMNI_MCP_RESTART_MIN_MS", I, "250", 0, 600000, 0,
     "first restart delay of a failed MCP server"},
    {"mcp.restart_max_ms", "OMNI_MCP_RESTART_MAX_MS", I, "30000", 0, 3600000, 0,
     "restart delay cap of a failing MCP server"},
    {"mcp.session_idle_ms", "OMNI_MCP_SESSION_IDLE_MS", I, "1800000", 1000,
     86400000, 0, "idle time after which an /mcp session is dropped"},
    {"mcp.max_sessions", "OMNI_MCP_MAX_SESSIONS", I, "10000", 1, 10000000, 0,
     "/mcp sessions held by one mcp worker"},

    /* RAG worker. */
    {"rag.chunk_size", "OMNI_RAG_CHUNK_SIZE", I, "800", 32, 100000, 0,
     "chunk size, characters"},
    {"rag.chunk_overlap", "OMNI_RAG_CHUNK_OVERLAP", I, "400", 0, 100000, 0, ""},
    {"rag.max_doc_bytes", "OMNI_RAG_MAX_DOC_BYTES", I, "10485760", 1,
     1073741824, 0, ""},
    {"rag.embedder", "OMNI_RAG_EMBEDDER", S, "local", 0, 0, 0,
     "local, or provider/model served by the llm service"},
    {"rag.dim", "OMNI_RAG_DIM", I, "384", 8, 8192, 0,
     "local embedder dimension"},
    {"rag.ef_search", "OMNI_RAG_EF_SEARCH", I, "64", 1, 100000, 0,
     "HNSW search breadth (per query: \"ef\")"},
    {"rag.exact_below", "OMNI_RAG_EXACT_BELOW", I, "2000", 0, 100000000, 0,
     "exact vector search for collections smaller than this"},
    {"rag.bm25_stem", "OMNI_RAG_BM25_STEM", B, "yes", 0, 0, 0,
     "Snowball English stemming in BM25"},
    {"rag.rrf_k", "OMNI_RAG_RRF_K", I, "60", 1, 100000, 0,
     "reciprocal rank fusion constant"},
    {"rag.hybrid_vector_weight", "OMNI_RAG_HYBRID_VECTOR_WEIGHT", I, "50", 0,
     1000, 0,
     "weight of the vector ranking in hybrid fusion, percent of "
     "BM25's"},
    {"rag.semcache_max", "OMNI_RAG_SEMCACHE_MAX", I, "10000", 1, 100000000, 0,
     "entries kept per semantic cache namespace"},

    /* Lambda runtime (bootstrap) and extension (omni-extension). */
    {"lambda.runtime_api", "AWS_LAMBDA_RUNTIME_API", S, "", 0, 0, 0,
     "host:port of the Lambda Runtime and Extensions APIs"},
    {"lambda.secrets_arn", "OMNI_SECRETS_ARN", S, "", 0, 0, 0,
     "Secrets Manager secret whose JSON keys become broker variables"},
    {"lambda.secrets_endpoint", "AWS_ENDPOINT_URL_SECRETS_MANAGER", S, "", 0, 0,
     0, "Secrets Manager endpoint; empty: the region's"},
    {"lambda.wait_ms", "OMNI_LAMBDA_WAIT_MS", I, "5000", 10, 60000, 0,
     "longest wait for the broker socket at init"},
    {"lambda.ready_ms", "OMNI_LAMBDA_READY_MS", I, "8000", 0, 60000, 0,
     "longest wait for ready workers before the first event"},
    {"lambda.shutdown_ms", "OMNI_LAMBDA_SHUTDOWN_MS", I, "1500", 50, 10000, 0,
     "drain budget on SHUTDOWN before the broker tree is killed"},
};

#undef S
#undef I
#undef B
#undef SENS

#define NDEFS (sizeof omni_cfg_defs / sizeof *omni_cfg_defs)

enum source { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_OPTION };
static const char *const source_names[] = {"default", "file", "env", "option"};

static char *values[NDEFS];
static enum source sources[NDEFS];
static char *loaded_path;

static int find(const char *name, size_t n)
{
    for (size_t i = 0; i < NDEFS; i++)
        if (strlen(omni_cfg_defs[i].name) == n &&
            memcmp(omni_cfg_defs[i].name, name, n) == 0)
            return (int)i;
    return -1;
}

static enum omni_err check(size_t i, const char *v, char err[OMNI_ERR_LEN])
{
    const struct omni_cfg_def *d = &omni_cfg_defs[i];
    if (d->type == OMNI_CFG_INT) {
        char *end;
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < d->min || x > d->max) {
            snprintf(err, OMNI_ERR_LEN,
                     "bad value for '%s': want an integer in [%ld, %ld]",
                     d->name, d->min, d->max);
            return OMNI_E_CONFIG;
        }
    } else if (d->type == OMNI_CFG_BOOL) {
        if (strcmp(v, "yes") && strcmp(v, "no") && strcmp(v, "true") &&
            strcmp(v, "false") && strcmp(v, "1") && strcmp(v, "0")) {
            snprintf(err, OMNI_ERR_LEN, "bad value for '%s': want yes or no",
                     d->name);
            return OMNI_E_CONFIG;
        }
    }
    return OMNI_OK;
}

static void put(size_t i, const char *v, size_t n, enum source src)
{
    omni_free(values[i]);
    values[i] = omni_strndup(v, n);
    sources[i] = src;
    if (omni_cfg_defs[i].flags & OMNI_CFG_SENSITIVE)
        omni_redact_add(values[i]);
}

void omni_cfg_free(void)
{
    for (size_t i = 0; i < NDEFS; i++) {
        omni_free(values[i]);
        values[i] = NULL;
    }
    omni_free(loaded_path);
    loaded_path = NULL;
}

static char *trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
                       end[-1] == '\n'))
        end--;
    *end = '\0';
    return s;
}

static enum omni_err load_file(const char *path, char err[OMNI_ERR_LEN])
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, OMNI_ERR_LEN, "cannot open '%s': %s", path,
                 strerror(errno));
        return OMNI_E_CONFIG;
    }
    char line[4096];
    int lineno = 0;
    enum omni_err rc = OMNI_OK;
    while (rc == OMNI_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line, line + strlen(line));
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, OMNI_ERR_LEN, "%s:%d: want 'key = value'", path,
                     lineno);
            rc = OMNI_E_CONFIG;
            break;
        }
        char *key = trim(s, eq);
        char *val = trim(eq + 1, eq + 1 + strlen(eq + 1));
        int i = find(key, strlen(key));
        if (i < 0) {
            snprintf(err, OMNI_ERR_LEN, "%s:%d: unknown key '%.64s'", path,
                     lineno, key);
            rc = OMNI_E_CONFIG;
            break;
        }
        char why[OMNI_ERR_LEN];
        if (check((size_t)i, val, why) != OMNI_OK) {
            snprintf(err, OMNI_ERR_LEN, "%s:%d: %s", path, lineno, why);
            rc = OMNI_E_CONFIG;
            break;
        }
        put((size_t)i, val, strlen(val), SRC_FILE);
    }
    fclose(f);
    return rc;
}

enum omni_err omni_cfg_load(const char *path, char err[OMNI_ERR_LEN])
{
    omni_cfg_free();
    for (size_t i = 0; i < NDEFS; i++)
        put(i, omni_cfg_defs[i].def, strlen(omni_cfg_defs[i].def), SRC_DEFAULT);
    if (!path || !*path)
        path = getenv("OMNI_CONFIG");
    if (path && *path) {
        enum omni_err rc = load_file(path, err);
        if (rc != OMNI_OK)
            return rc;
        loaded_path = omni_strdup(path);
    }
    for (size_t i = 0; i < NDEFS; i++) {
        const char *v = getenv(omni_cfg_defs[i].env);
        if (!v)
            continue;
        char why[OMNI_ERR_LEN];
        if (check(i, v, why) != OMNI_OK) {
            snprintf(err, OMNI_ERR_LEN, "%s: %s", omni_cfg_defs[i].env, why);
            return OMNI_E_CONFIG;
        }
        put(i, v, strlen(v), SRC_ENV);
    }
    return OMNI_OK;
}

enum omni_err omni_cfg_set(const char *name, const char *value,
                           char err[OMNI_ERR_LEN])
{
    size_t n = strlen(name);
    if (!value) {
        const char *eq = strchr(name, '=');
        if (!eq) {
            snprintf(err, OMNI_ERR_LEN, "want key=value, got '%.64s'", name);
            return OMNI_E_CONFIG;
        }
        n = (size_t)(eq - name);
        value = eq + 1;
    }
    int i = find(name, n);
    if (i < 0) {
        snprintf(err, OMNI_ERR_LEN, "unknown key '%.*s'",
                 (int)(n > 64 ? 64 : n), name);
        return OMNI_E_CONFIG;
    }
    enum omni_err rc = check((size_t)i, value, err);
    if (rc == OMNI_OK)
        put((size_t)i, value, strlen(value), SRC_OPTION);
    return rc;
}

const char *omni_cfg_path(void)
{
    return loaded_path;
}

static size_t must_find(const char *name)
{
    int i = find(name, strlen(name));
    if (i < 0) {
        omni_error("config: no such key '%s'", name);
        abort();
    }
    if (!values[i])
        put((size_t)i, omni_cfg_defs[i].def, strlen(omni_cfg_defs[i].def),
            SRC_DEFAULT);
    return (size_t)i;
}

const char *omni_cfg_str(const char *name)
{
    return values[must_find(name)];
}

long omni_cfg_int(const char *name)
{
    return strtol(values[must_find(name)], NULL, 10);
}

bool omni_cfg_bool(const char *name)
{
    const char *v = values[must_find(name)];
    return strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 ||
           strcmp(v, "1") == 0;
}

void omni_cfg_print(FILE *out)
{
    for (size_t i = 0; i < NDEFS; i++) {
        const char *v = values[must_find(omni_cfg_defs[i].name)];
        bool hide = (omni_cfg_defs[i].flags & OMNI_CFG_SENSITIVE) && *v;
        fprintf(out, "%s = %s  # %s, %s\n", omni_cfg_defs[i].name,
                hide ? "(redacted)" : v, source_names[sources[i]],
                omni_cfg_defs[i].env);
    }
}

const char *omni_cfg_socket_path(void)
{
    static char path[256];
    const char *s = omni_cfg_str("socket");
    if (*s)
        return s;
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (getenv("AWS_LAMBDA_RUNTIME_API"))
        snprintf(path, sizeof path, "/tmp/omni.sock");
    else if (xdg && *xdg)
        snprintf(path, sizeof path, "%s/omni/omni.sock", xdg);
    else if (geteuid() == 0)
        snprintf(path, sizeof path, "/run/omni/omni.sock");
    else
        snprintf(path, sizeof path, "/tmp/omni-%u/omni.sock",
                 (unsigned)geteuid());
    return path;
}
