/* Loading Istio YAML into the typed model (config-t.h). */
#ifndef RINGSIDE_CONFIG_H
#define RINGSIDE_CONFIG_H

#include <stdio.h>

#include "ringside/config-t.h"

/* Loads every path: a file, or a directory read recursively for `*.yaml` and
 * `*.yml` (hidden entries such as a ConfigMap's `..data` are followed once,
 * never listed twice). Multi-document files and `kind: List` are accepted.
 *
 * A broken resource is rejected alone with an RS_DIAG_ERROR in diags; the rest
 * loads. Kinds that this build does not handle yet are skipped with an
 * RS_DIAG_WARNING naming them.
 *
 * Returns 0 and sets *out (even when diags holds errors), or a negative errno
 * when nothing could be read at all (-ENOENT for a missing path, -ENOMEM). */
int rs_config_load(const char *const *paths, size_t npaths, struct rs_config **out,
		   struct rs_diags *diags);

/* After a reload: loads again, from the text prev read, the previous version
 * of every resource that cfg rejected, and of every resource missing from a
 * file of cfg that could not be read to its end (a YAML syntax error, an I/O
 * error). A resource gone from a file that loaded was deleted and stays
 * gone. Each kept resource is noted in cfg->resources (kept) and by a
 * warning in diags. Returns how many were kept, or -ENOMEM. */
int rs_config_keep_last_good(struct rs_config *cfg, const struct rs_config *prev,
			     struct rs_diags *diags);

void rs_config_free(struct rs_config *cfg);

/* The configuration as a JSON object (jansson) for admin /config_dump:
 * `files`, and `resources` each with kind, namespace, name, file, line,
 * column, status (active, kept, rejected) and the object as read. NULL when
 * out of memory. */
typedef struct json_t json_t;
json_t *rs_config_dump(const struct rs_config *cfg);

/* Appends a formatted problem to diags. resource may be NULL. */
void rs_diags_add(struct rs_diags *diags, enum rs_diag_level level, const struct rs_pos *pos,
		  const char *resource, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Prints each problem as `file:line:col: Kind/ns/name: message`, one a line. */
void rs_diags_print(const struct rs_diags *diags, FILE *f);

void rs_diags_free(struct rs_diags *diags);

#endif
