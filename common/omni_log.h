/*
 * omni_log - one line per event on stderr, secrets redacted by construction.
 *
 * Every line, whatever its origin, passes through omni_redact() before it
 * is written: registered secret values (provider keys, client keys, AWS
 * credentials: registered by omni_cfg when it loads a SENSITIVE key, and
 * from the standard provider variables at omni_log_init) and anything
 * shaped like a credential (Bearer tokens, sk-... keys, AWS key ids,
 * api-key headers) become "(redacted)".  Error messages meant for clients
 * go through the same routine (omni_redact_str).
 *
 * Format: JSON lines by default ({"ts","level","prog","pid","msg"}), or
 * Postfix-style text "prog[pid]: warning: msg" with log_format = text.
 */
#ifndef OMNI_LOG_H
#define OMNI_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "omni_buf.h"

enum omni_log_level {
    OMNI_LOG_DEBUG = 0,
    OMNI_LOG_INFO,
    OMNI_LOG_WARN,
    OMNI_LOG_ERROR,
};

/* prog is borrowed and must outlive the process (argv[0] basename). */
void omni_log_init(const char *prog);
void omni_log_set_level(enum omni_log_level level);
enum omni_log_level omni_log_get_level(void);
void omni_log_set_json(bool json);
/* "debug", "info", "warn", "error"; -1 when unknown. */
int omni_log_level_parse(const char *s);
/* Send lines to fd instead of stderr (tests). */
void omni_log_set_fd(int fd);

void omni_log(enum omni_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define omni_debug(...) omni_log(OMNI_LOG_DEBUG, __VA_ARGS__)
#define omni_info(...)  omni_log(OMNI_LOG_INFO, __VA_ARGS__)
#define omni_warn(...)  omni_log(OMNI_LOG_WARN, __VA_ARGS__)
#define omni_error(...) omni_log(OMNI_LOG_ERROR, __VA_ARGS__)
/* Log at error level and exit(1): start-up and configuration only. */
void omni_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));

/* Register a secret value (copied) to be masked wherever it appears.
 * Values shorter than 4 bytes are ignored (they would mask noise). */
void omni_redact_add(const char *secret);
/* Forget every registered secret (tests, process exit). */
void omni_redact_clear(void);
/* Mask secrets in b in place. */
void omni_redact(struct omni_buf *b);
/* Copy s into out (size n, always terminated) with secrets masked. */
void omni_redact_str(const char *s, char *out, size_t n);

#endif
