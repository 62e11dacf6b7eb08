/*
 * omni_cfg - one table of settings; file, then environment, then -o.
 *
 * Precedence: built-in default < config file (flat "key = value" lines,
 * '#' comments) < environment < omni_cfg_set() (the -o option).  Every
 * key is one row of omni_cfg_defs[] in omni_cfg.c with its environment
 * name, type, default, bounds and flags; an unknown key in the file is
 * an error naming file and line.  SENSITIVE values are registered with
 * the log redactor as they load and print as "(redacted)".
 *
 * Each process loads the configuration itself: the broker passes
 * OMNI_CONFIG (the file it read) to the workers it spawns, and the
 * environment is inherited, so every process sees the same values.
 */
#ifndef OMNI_CFG_H
#define OMNI_CFG_H

#include <stdbool.h>
#include <stdio.h>

#include "omni_err.h"

enum omni_cfg_type { OMNI_CFG_STR, OMNI_CFG_INT, OMNI_CFG_BOOL };

#define OMNI_CFG_SENSITIVE 0x1

struct omni_cfg_def {
    const char *name; /* "broker.queue_max" */
    const char *env;  /* "OMNI_QUEUE_MAX" */
    enum omni_cfg_type type;
    const char *def; /* default, as text */
    long min, max;   /* bounds for INT */
    unsigned flags;
    const char *help;
};

/* Reset to defaults, then read path (NULL: $OMNI_CONFIG if set, else no
 * file), then the environment.  On failure err says why, e.g.
 * "omni.conf:12: unknown key 'brokr.socket'". */
enum omni_err omni_cfg_load(const char *path, char err[OMNI_ERR_LEN]);
/* Set one key from "key=value" or (name, value); highest precedence. */
enum omni_err omni_cfg_set(const char *name, const char *value,
                           char err[OMNI_ERR_LEN]);
/* The file loaded, or NULL. */
const char *omni_cfg_path(void);
/* Values.  Unknown names are a programming error and abort.  Strings
 * are never NULL ("" when unset) and stay valid until the next load. */
const char *omni_cfg_str(const char *name);
long omni_cfg_int(const char *name);
bool omni_cfg_bool(const char *name);
/* Print every key with its value and source; sensitive values redacted. */
void omni_cfg_print(FILE *out);
/* Free every loaded value. */
void omni_cfg_free(void);

/* The broker socket path: socket if set, else the contract's default
 * (/tmp/omni.sock in Lambda, where AWS_LAMBDA_RUNTIME_API is set;
 * else $XDG_RUNTIME_DIR/omni/omni.sock, /run/omni/omni.sock as root,
 * /tmp/omni-$UID/omni.sock).  Returns a static buffer. */
const char *omni_cfg_socket_path(void);

#endif
