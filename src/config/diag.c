/* Problems found while loading configuration, kept for `ringside validate`
 * and the proxy's log, printed the way compilers print them so editors and CI
 * annotations can jump to the line. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config.h"

/* One problem, one line: text quoted from a file (a name, a scalar) may hold
 * newlines or terminal escape sequences, which must not reach the output. */
static void one_line(char *s)
{
	for (; s && *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
	}
}

static char *dup_or_null(const char *s)
{
	char *d = s ? strdup(s) : NULL;

	one_line(d);
	return d;
}

void rs_diags_add(struct rs_diags *diags, enum rs_diag_level level, const struct rs_pos *pos,
		  const char *resource, const char *fmt, ...)
{
	struct rs_diag d = {.level = level};
	va_list ap;
	int r;

	/* errors counts every error reported, even one whose text could not be
	 * stored for lack of memory: a caller that checks it must never mistake
	 * an allocation failure for a clean load. */
	if (level == RS_DIAG_ERROR)
		diags->errors++;
	va_start(ap, fmt);
	r = vasprintf(&d.msg, fmt, ap);
	va_end(ap);
	if (r < 0) {
		d.msg = NULL;
		goto fail;
	}
	one_line(d.msg);
	if (pos) {
		d.line = pos->line;
		d.col = pos->col;
		d.file = dup_or_null(pos->file);
		if (pos->file && !d.file)
			goto fail;
	}
	d.resource = dup_or_null(resource);
	if (resource && !d.resource)
		goto fail;
	if (diags->n == diags->cap) {
		size_t cap = diags->cap ? diags->cap * 2 : 16;
		struct rs_diag *v = realloc(diags->v, cap * sizeof *v);

		if (!v)
			goto fail;
		diags->v = v;
		diags->cap = cap;
	}
	diags->v[diags->n++] = d;
	return;
fail:
	free(d.msg);
	free(d.file);
	free(d.resource);
}

void rs_diags_print(const struct rs_diags *diags, FILE *f)
{
	for (size_t i = 0; i < diags->n; i++) {
		const struct rs_diag *d = &diags->v[i];

		if (d->file && d->line > 0)
			fprintf(f, "%s:%d:%d: ", d->file, d->line, d->col);
		else if (d->file)
			fprintf(f, "%s: ", d->file);
		if (d->resource)
			fprintf(f, "%s: ", d->resource);
		fprintf(f, "%s: %s\n", d->level == RS_DIAG_ERROR ? "error" : "warning", d->msg);
	}
}

void rs_diags_free(struct rs_diags *diags)
{
	if (!diags)
		return;
	for (size_t i = 0; i < diags->n; i++) {
		free(diags->v[i].file);
		free(diags->v[i].resource);
		free(diags->v[i].msg);
	}
	free(diags->v);
	memset(diags, 0, sizeof *diags);
}
