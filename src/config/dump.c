/* The loaded configuration as JSON, for admin /config_dump: every resource
 * with where it came from and its object as read. The objects are read again
 * from the kept file texts, so the dump shows exactly what is in force,
 * kept versions included, without a printer per kind. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config.h"
#include "yaml.h"

struct dumper {
	const struct rs_config *cfg;
	const char *path; /* borrowed: the file entry being read */
	json_t **objects; /* one a resource, NULL until found */
	bool nomem;
};

/* A plain scalar as YAML's core schema types it; a quoted one is a string. */
static json_t *scalar(const struct rs_ynode *n)
{
	char *end;

	if (rs_yaml__is_null(n))
		return json_null();
	if (!n->plain)
		return json_stringn(n->str, n->len);
	if (!strcmp(n->str, "true") || !strcmp(n->str, "True") || !strcmp(n->str, "TRUE"))
		return json_true();
	if (!strcmp(n->str, "false") || !strcmp(n->str, "False") || !strcmp(n->str, "FALSE"))
		return json_false();
	/* YAML 1.2's core schema: decimal, 0x and 0o integers, and decimal
	 * floats; `.inf` and `.nan`, which JSON cannot hold, stay strings. */
	if (n->str[0] && strchr("+-0123456789.", n->str[0]) &&
	    strspn(n->str, "+-0123456789.eExXoOabcdefABCDEF") == n->len) {
		int base = n->str[0] == '0' && (n->str[1] == 'x' || n->str[1] == 'o') ? 0 : 10;
		long long v;
		double d;

		errno = 0;
		v = strtoll(base ? n->str : n->str + 2, &end, base ? 10 : n->str[1] == 'x' ? 16 : 8);
		if (!*end && !errno && end != n->str)
			return json_integer(v);
		errno = 0;
		d = strtod(n->str, &end);
		if (base && !*end && !errno && isfinite(d) && !strpbrk(n->str, "xXoOabcdfABCDF"))
			return json_real(d);
	}
	return json_stringn(n->str, n->len);
}

static json_t *to_json(const struct rs_ynode *n)
{
	json_t *j;

	switch (n->type) {
	case RS_YNODE_SCALAR:
		return scalar(n);
	case RS_YNODE_SEQUENCE:
		j = json_array();
		for (size_t i = 0; j && i < n->n; i++)
			if (json_array_append_new(j, to_json(n->items[i])) < 0) {
				json_decref(j);
				return NULL;
			}
		return j;
	case RS_YNODE_MAPPING:
		j = json_object();
		for (size_t i = 0; j && i < n->n; i++) {
			const struct rs_ynode *k = n->pairs[i].key;

			if (k->type != RS_YNODE_SCALAR)
				continue;
			if (json_object_setn_new(j, k->str, k->len, to_json(n->pairs[i].value)) <
			    0) {
				json_decref(j);
				return NULL;
			}
		}
		return j;
	}
	return NULL;
}

static void visit(struct dumper *d, const struct rs_ynode *n)
{
	const struct rs_config *cfg = d->cfg;

	for (size_t i = 0; i < cfg->n_resources; i++) {
		const struct rs_config_res *r = &cfg->resources[i];

		if (r->pos.file != d->path || r->pos.line != n->line || r->pos.col != n->col ||
		    d->objects[i])
			continue;
		d->objects[i] = to_json(n);
		d->nomem |= !d->objects[i];
		return;
	}
}

static int on_doc(const struct rs_ynode *root, void *arg)
{
	struct dumper *d = arg;
	const struct rs_ynode *items = rs_yaml__get(root, "items");
	const struct rs_ynode *kind = rs_yaml__get(root, "kind");

	if (kind && kind->type == RS_YNODE_SCALAR && !strcmp(kind->str, "List") && items &&
	    items->type == RS_YNODE_SEQUENCE) {
		for (size_t i = 0; i < items->n; i++)
			visit(d, items->items[i]);
	} else {
		visit(d, root);
	}
	return d->nomem ? -ENOMEM : 0;
}

/* "Kind/namespace/name" into the object's kind, namespace and name. */
static int set_identity(json_t *o, const char *id)
{
	const char *a = strchr(id, '/'), *b = a ? strchr(a + 1, '/') : NULL;

	if (!b)
		return json_object_set_new(o, "id", json_string(id));
	return json_object_set_new(o, "kind", json_stringn(id, (size_t)(a - id))) |
	       json_object_set_new(o, "namespace", json_stringn(a + 1, (size_t)(b - a - 1))) |
	       json_object_set_new(o, "name", json_string(b + 1));
}

json_t *rs_config_dump(const struct rs_config *cfg)
{
	struct dumper d = {.cfg = cfg};
	struct rs_diags quiet = {0};
	json_t *res = json_array(), *files = json_array(), *out = NULL;
	int r = 0;

	d.objects = calloc(cfg->n_resources ? cfg->n_resources : 1, sizeof *d.objects);
	if (!d.objects || !res || !files)
		goto cleanup;
	for (size_t i = 0; i < cfg->nfiles && r == 0; i++) {
		const struct rs_config_file *f = &cfg->files[i];

		if (json_array_append_new(files, json_pack("{s:s, s:b, s:b}", "path", f->path,
							   "unreadable", f->broken, "kept",
							   f->kept)) < 0)
			goto cleanup;
		if (!f->text)
			continue;
		d.path = f->path;
		r = rs_yaml__parse_string(f->path, f->text, f->len, &quiet, on_doc, &d);
		if (r == -ENOMEM || d.nomem)
			goto cleanup;
		r = 0;
	}
	for (size_t i = 0; i < cfg->n_resources; i++) {
		const struct rs_config_res *rr = &cfg->resources[i];
		json_t *o = json_pack("{s:s, s:s, s:i, s:i}", "status",
				      rr->rejected ? "rejected"
				      : rr->kept   ? "kept"
						   : "active",
				      "file", rr->pos.file, "line", rr->pos.line, "column",
				      rr->pos.col);

		if (!o || set_identity(o, rr->id) < 0 ||
		    (!rr->rejected && d.objects[i] &&
		     json_object_set(o, "object", d.objects[i]) < 0) ||
		    json_array_append_new(res, o) < 0) {
			json_decref(o);
			goto cleanup;
		}
	}
	out = json_pack("{s:O, s:O}", "files", files, "resources", res);
cleanup:
	if (d.objects)
		for (size_t i = 0; i < cfg->n_resources; i++)
			json_decref(d.objects[i]);
	free(d.objects);
	json_decref(files);
	json_decref(res);
	rs_diags_free(&quiet);
	return out;
}
