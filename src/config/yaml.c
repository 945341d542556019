/* YAML to a positioned node tree, with libyaml's event parser.
 *
 * libyaml's own document loader (yaml_parser_load) would do most of this, but
 * it keeps anchors resolved to node indexes that can blow up, and it reports
 * marks we would have to copy anyway; building the tree from events keeps
 * positions next to the nodes, bounds nesting, and keeps aliases linear in
 * memory (an alias shares the anchored node's children instead of copying
 * them, so a "billion laughs" file costs its own size, not 10^9 nodes). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "ringside/config.h"
#include "yaml.h"

/* Istio resources nest about a dozen levels (AuthorizationPolicy rules);
 * anything much deeper is a mistake or an attack on the recursive builder. */
#define MAX_DEPTH 64

/* Aliases are shared, not copied, but a reader walking the tree still visits
 * an aliased subtree once per alias: cap how many nodes aliases may add, so a
 * small file cannot make the load quadratic (go-yaml limits aliases too). */
#define MAX_ALIAS_EXPANSION (1u << 20)

/* Configuration files are small; a larger file is almost certainly the wrong
 * path, and reading it whole would cost the main thread for nothing. */
#define MAX_FILE_SIZE (64u << 20)

struct anchor {
	char *name;            /* owns */
	struct rs_ynode *node; /* borrowed: a node of the current document */
};

struct builder {
	yaml_parser_t parser;
	const char *file;
	const char *text; /* the whole input, to place reader errors exactly */
	size_t len;
	struct rs_diags *diags;
	size_t alias_nodes; /* nodes added by aliases in the current document */
	struct anchor *anchors; /* owns; reset at each document, as YAML scopes anchors */
	size_t nanchors;
	size_t cap_anchors;
};

static void node_free(struct rs_ynode *n)
{
	if (!n)
		return;
	if (!n->alias) {
		free(n->str);
		for (size_t i = 0; i < n->n; i++) {
			if (n->type == RS_YNODE_SEQUENCE) {
				node_free(n->items[i]);
			} else if (n->type == RS_YNODE_MAPPING) {
				node_free(n->pairs[i].key);
				node_free(n->pairs[i].value);
			}
		}
		free(n->items);
		free(n->pairs);
	}
	free(n);
}

static void anchors_clear(struct builder *b)
{
	for (size_t i = 0; i < b->nanchors; i++)
		free(b->anchors[i].name);
	b->nanchors = 0;
}

static int anchor_add(struct builder *b, const char *name, struct rs_ynode *node)
{
	char *copy = strdup(name);

	if (!copy)
		return -ENOMEM;
	if (b->nanchors == b->cap_anchors) {
		size_t cap = b->cap_anchors ? b->cap_anchors * 2 : 8;
		struct anchor *v = realloc(b->anchors, cap * sizeof *v);

		if (!v) {
			free(copy);
			return -ENOMEM;
		}
		b->anchors = v;
		b->cap_anchors = cap;
	}
	b->anchors[b->nanchors].name = copy;
	b->anchors[b->nanchors].node = node;
	b->nanchors++;
	return 0;
}

static struct rs_ynode *anchor_find(const struct builder *b, const char *name)
{
	/* Newest first: YAML lets a later anchor of the same name override. */
	for (size_t i = b->nanchors; i-- > 0;) {
		if (strcmp(b->anchors[i].name, name) == 0)
			return b->anchors[i].node;
	}
	return NULL;
}

static void error_at(struct builder *b, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void error_at(struct builder *b, int line, int col, const char *fmt, ...)
{
	struct rs_pos pos = {.file = b->file, .line = line, .col = col};
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	rs_diags_add(b->diags, RS_DIAG_ERROR, &pos, NULL, "%s", msg);
}

/* libyaml's reader reports a byte offset, not a mark; count lines and UTF-8
 * characters up to it so the error lands where an editor shows the bad byte. */
static void offset_to_pos(const struct builder *b, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < b->len; i++) {
		unsigned char c = (unsigned char)b->text[i];

		if (c == '\n') {
			(*line)++;
			*col = 1;
		} else if ((c & 0xc0) != 0x80) {
			(*col)++;
		}
	}
}

static int parser_error(struct builder *b)
{
	const yaml_parser_t *p = &b->parser;
	const char *problem = p->problem ? p->problem : "unknown error";
	int line, col;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return -ENOMEM;
	case YAML_READER_ERROR:
		offset_to_pos(b, p->problem_offset, &line, &col);
		if (p->problem_value != -1)
			error_at(b, line, col, "syntax error: %s #%X", problem, p->problem_value);
		else
			error_at(b, line, col, "syntax error: %s", problem);
		return -EINVAL;
	default:
		line = (int)p->problem_mark.line + 1;
		col = (int)p->problem_mark.column + 1;
		/* The context names the construct that was left open, which is
		 * often where the real mistake is (an unclosed quote or bracket). */
		if (p->context)
			error_at(b, line, col, "syntax error: %s (%s at %d:%d)", problem, p->context,
				 (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
		else
			error_at(b, line, col, "syntax error: %s", problem);
		return -EINVAL;
	}
}

static int next_event(struct builder *b, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&b->parser, ev))
		return parser_error(b);
	return 0;
}

static struct rs_ynode *node_new(enum rs_ynode_type type, const yaml_mark_t *mark)
{
	struct rs_ynode *n = calloc(1, sizeof *n);

	if (!n)
		return NULL;
	n->type = type;
	n->weight = 1;
	n->line = (int)mark->line + 1;
	n->col = (int)mark->column + 1;
	return n;
}

static int build(struct builder *b, yaml_event_t *ev, int depth, struct rs_ynode **out);

static int build_sequence(struct builder *b, struct rs_ynode *n, int depth)
{
	size_t cap = 0;
	yaml_event_t ev;
	int r;

	for (;;) {
		struct rs_ynode *child;

		r = next_event(b, &ev);
		if (r < 0)
			return r;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		r = build(b, &ev, depth + 1, &child);
		if (r < 0)
			return r;
		if (n->n == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct rs_ynode **v = realloc(n->items, ncap * sizeof *v);

			if (!v) {
				node_free(child);
				return -ENOMEM;
			}
			n->items = v;
			cap = ncap;
		}
		n->items[n->n++] = child;
		n->weight += child->weight;
	}
}

static int build_mapping(struct builder *b, struct rs_ynode *n, int depth)
{
	size_t cap = 0;
	yaml_event_t ev;
	int r;

	for (;;) {
		struct rs_ynode *key = NULL, *value = NULL;

		r = next_event(b, &ev);
		if (r < 0)
			return r;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		r = build(b, &ev, depth + 1, &key);
		if (r < 0)
			return r;
		r = next_event(b, &ev);
		if (r == 0)
			r = build(b, &ev, depth + 1, &value);
		if (r == 0 && n->n == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct rs_ypair *v = realloc(n->pairs, ncap * sizeof *v);

			if (v) {
				n->pairs = v;
				cap = ncap;
			} else {
				r = -ENOMEM;
			}
		}
		if (r < 0) {
			node_free(key);
			node_free(value);
			return r;
		}
		n->pairs[n->n].key = key;
		n->pairs[n->n].value = value;
		n->n++;
		n->weight += key->weight + value->weight;
	}
}

static int build_alias(struct builder *b, const yaml_event_t *ev, struct rs_ynode **out)
{
	const char *name = (const char *)ev->data.alias.anchor;
	struct rs_ynode *target = anchor_find(b, name);
	struct rs_ynode *n;

	if (!target) {
		/* Also reached by `&a [*a]`: an anchor exists only once its node
		 * is complete, which keeps the tree free of cycles. */
		error_at(b, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			 "syntax error: unknown anchor '%s'", name);
		return -EINVAL;
	}
	b->alias_nodes += target->weight;
	if (b->alias_nodes > MAX_ALIAS_EXPANSION) {
		error_at(b, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			 "syntax error: aliases expand to more than %u nodes",
			 MAX_ALIAS_EXPANSION);
		return -EINVAL;
	}
	n = malloc(sizeof *n);
	if (!n)
		return -ENOMEM;
	*n = *target;
	n->alias = true;
	/* Problems found in the copy are reported where the alias is written. */
	n->line = (int)ev->start_mark.line + 1;
	n->col = (int)ev->start_mark.column + 1;
	*out = n;
	return 0;
}

/* Builds the node that starts with ev, taking ownership of ev. */
static int build(struct builder *b, yaml_event_t *ev, int depth, struct rs_ynode **out)
{
	struct rs_ynode *n = NULL;
	const char *anchor = NULL;
	int r = 0;

	*out = NULL;
	if (depth > MAX_DEPTH) {
		error_at(b, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			 "syntax error: nesting is deeper than %d levels", MAX_DEPTH);
		r = -EINVAL;
		goto cleanup;
	}
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		r = build_alias(b, ev, &n);
		goto cleanup;
	case YAML_SCALAR_EVENT:
		n = node_new(RS_YNODE_SCALAR, &ev->start_mark);
		if (!n) {
			r = -ENOMEM;
			goto cleanup;
		}
		n->len = ev->data.scalar.length;
		n->str = malloc(n->len + 1);
		if (!n->str) {
			r = -ENOMEM;
			goto cleanup;
		}
		memcpy(n->str, ev->data.scalar.value, n->len);
		n->str[n->len] = '\0';
		/* An explicit `!!str` makes `null` a string, like quoting it. */
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			   !(ev->data.scalar.tag &&
			     strcmp((const char *)ev->data.scalar.tag, YAML_STR_TAG) == 0);
		anchor = (const char *)ev->data.scalar.anchor;
		break;
	case YAML_SEQUENCE_START_EVENT:
		n = node_new(RS_YNODE_SEQUENCE, &ev->start_mark);
		if (!n) {
			r = -ENOMEM;
			goto cleanup;
		}
		r = build_sequence(b, n, depth);
		anchor = (const char *)ev->data.sequence_start.anchor;
		break;
	case YAML_MAPPING_START_EVENT:
		n = node_new(RS_YNODE_MAPPING, &ev->start_mark);
		if (!n) {
			r = -ENOMEM;
			goto cleanup;
		}
		r = build_mapping(b, n, depth);
		anchor = (const char *)ev->data.mapping_start.anchor;
		break;
	default:
		/* libyaml only yields node events here; anything else is a bug in
		 * the event order, reported rather than trusted. */
		error_at(b, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			 "syntax error: unexpected YAML event %d", (int)ev->type);
		r = -EINVAL;
		goto cleanup;
	}
	if (r == 0 && anchor)
		r = anchor_add(b, anchor, n);
cleanup:
	yaml_event_delete(ev);
	if (r < 0) {
		node_free(n);
		return r;
	}
	*out = n;
	return 0;
}

static int parse_stream(struct builder *b, rs_yaml_doc_cb on_doc, void *user_data)
{
	struct rs_ynode *root = NULL;
	yaml_event_t ev;
	int r;

	for (;;) {
		r = next_event(b, &ev);
		if (r < 0)
			goto cleanup;
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type != YAML_DOCUMENT_START_EVENT) {
			/* STREAM_START: the rest of a document is read below. */
			yaml_event_delete(&ev);
			continue;
		}
		yaml_event_delete(&ev);
		r = next_event(b, &ev);
		if (r == 0)
			r = build(b, &ev, 0, &root);
		if (r < 0)
			goto cleanup;
		/* Deliver only after DOCUMENT_END parses, so a document cut off by
		 * a syntax error is never half-read as if it were complete. */
		r = next_event(b, &ev);
		if (r < 0)
			goto cleanup;
		yaml_event_delete(&ev);
		r = on_doc(root, user_data);
		node_free(root);
		root = NULL;
		anchors_clear(b);
		b->alias_nodes = 0;
		if (r < 0)
			goto cleanup;
	}
	r = 0;
cleanup:
	node_free(root);
	return r;
}

int rs_yaml__parse_string(const char *name, const char *text, size_t len,
			  struct rs_diags *diags, rs_yaml_doc_cb on_doc, void *user_data)
{
	struct builder b = {.file = name, .text = text, .len = len, .diags = diags};
	int r;

	if (!yaml_parser_initialize(&b.parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);
	r = parse_stream(&b, on_doc, user_data);
	anchors_clear(&b);
	free(b.anchors);
	yaml_parser_delete(&b.parser);
	return r;
}

static int read_all(int fd, char **out, size_t *len)
{
	struct stat st;
	size_t cap, n = 0;
	char *buf = NULL;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size > (off_t)MAX_FILE_SIZE)
		return -EFBIG;
	/* st_size is only a hint: a file being rewritten may grow under us. */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t got;

		if (n == cap) {
			char *v;

			if (cap > MAX_FILE_SIZE) {
				r = -EFBIG;
				goto cleanup;
			}
			v = realloc(buf, cap * 2);
			if (!v) {
				r = -ENOMEM;
				goto cleanup;
			}
			buf = v;
			cap *= 2;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			goto cleanup;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	*out = buf;
	*len = n;
	buf = NULL;
	r = 0;
cleanup:
	free(buf);
	return r;
}

int rs_yaml__read_file(const char *file, struct rs_diags *diags, char **text, size_t *len)
{
	struct rs_pos pos = {.file = file};
	int fd, r;

	*text = NULL;
	*len = 0;
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto cleanup;
	}
	r = read_all(fd, text, len);
	close(fd);
cleanup:
	if (r == -EFBIG)
		rs_diags_add(diags, RS_DIAG_ERROR, &pos, NULL,
			     "cannot read: file is larger than %u MiB", MAX_FILE_SIZE >> 20);
	else if (r < 0 && r != -ENOMEM)
		rs_diags_add(diags, RS_DIAG_ERROR, &pos, NULL, "cannot read: %s", strerror(-r));
	return r;
}

bool rs_yaml__is_null(const struct rs_ynode *n)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

	if (n->type != RS_YNODE_SCALAR || !n->plain)
		return false;
	for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++) {
		if (strcmp(n->str, nulls[i]) == 0)
			return true;
	}
	return false;
}

const struct rs_ypair *rs_yaml__find(const struct rs_ynode *map, const char *key)
{
	if (!map || map->type != RS_YNODE_MAPPING)
		return NULL;
	for (size_t i = 0; i < map->n; i++) {
		const struct rs_ynode *k = map->pairs[i].key;

		if (k->type == RS_YNODE_SCALAR && strcmp(k->str, key) == 0)
			return &map->pairs[i];
	}
	return NULL;
}

const struct rs_ynode *rs_yaml__get(const struct rs_ynode *map, const char *key)
{
	const struct rs_ypair *p = rs_yaml__find(map, key);

	if (!p || rs_yaml__is_null(p->value))
		return NULL;
	return p->value;
}

const char *rs_yaml__path_key(char buf[RS_YPATH_MAX], const char *parent, const char *key)
{
	if (parent && parent[0])
		snprintf(buf, RS_YPATH_MAX, "%s.%s", parent, key);
	else
		snprintf(buf, RS_YPATH_MAX, "%s", key);
	return buf;
}

const char *rs_yaml__path_index(char buf[RS_YPATH_MAX], const char *parent, size_t i)
{
	snprintf(buf, RS_YPATH_MAX, "%s[%zu]", parent ? parent : "", i);
	return buf;
}

void rs_yaml__report(struct rs_yctx *ctx, enum rs_diag_level level, const struct rs_ynode *node,
		     const char *path, const char *fmt, ...)
{
	struct rs_pos pos = {.file = ctx->file};
	char *msg = NULL;
	va_list ap;
	int r;

	if (node) {
		pos.line = node->line;
		pos.col = node->col;
	}
	if (level == RS_DIAG_ERROR)
		ctx->rejected = true;
	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0) {
		ctx->nomem = true;
		return;
	}
	if (path && path[0])
		rs_diags_add(ctx->diags, level, &pos, ctx->resource[0] ? ctx->resource : NULL,
			     "%s: %s", path, msg);
	else
		rs_diags_add(ctx->diags, level, &pos, ctx->resource[0] ? ctx->resource : NULL,
			     "%s", msg);
	free(msg);
}

/* What a node is, for "got ..." in a message: the text itself for a scalar,
 * since `got 'foo.com'` says more than `got a string`. */
static const char *describe(const struct rs_ynode *n, char *buf, size_t size)
{
	if (n->type == RS_YNODE_MAPPING)
		return "a mapping";
	if (n->type == RS_YNODE_SEQUENCE)
		return "a sequence";
	if (rs_yaml__is_null(n))
		return "null";
	if (n->len > 40)
		snprintf(buf, size, "'%.37s...'", n->str);
	else
		snprintf(buf, size, "'%s'", n->str);
	return buf;
}

static void wrong_type(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
		       const char *expected)
{
	char buf[64];

	rs_yaml__report(ctx, RS_DIAG_ERROR, n, path, "wrong type: expected %s, got %s", expected,
			describe(n, buf, sizeof buf));
}

bool rs_yaml__expect(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
		     enum rs_ynode_type type)
{
	static const char *const names[] = {
		[RS_YNODE_SCALAR] = "a string",
		[RS_YNODE_SEQUENCE] = "a sequence",
		[RS_YNODE_MAPPING] = "a mapping",
	};

	if (n->type == type && !(type == RS_YNODE_SCALAR && rs_yaml__is_null(n)))
		return true;
	wrong_type(ctx, n, path, names[type]);
	return false;
}

bool rs_yaml__str(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path, char **out)
{
	char *copy;

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_SCALAR))
		return false;
	if (strlen(n->str) != n->len) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, path, "contains a NUL character");
		return false;
	}
	copy = strdup(n->str);
	if (!copy) {
		ctx->nomem = true;
		ctx->rejected = true;
		return false;
	}
	free(*out);
	*out = copy;
	return true;
}

bool rs_yaml__u32(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path, uint32_t min,
		  uint32_t max, uint32_t *out)
{
	const char *s, *digits;
	uint64_t v = 0;
	bool negative;

	if (n->type != RS_YNODE_SCALAR || rs_yaml__is_null(n)) {
		wrong_type(ctx, n, path, "an integer");
		return false;
	}
	/* Quoted numbers are accepted: proto3's JSON mapping, which Istio
	 * decodes with, takes "80" for an integer field too. */
	s = n->str;
	negative = s[0] == '-';
	digits = s + (s[0] == '-' || s[0] == '+');
	if (!digits[0] || strspn(digits, "0123456789") != strlen(digits) ||
	    strlen(s) != n->len) {
		wrong_type(ctx, n, path, "an integer");
		return false;
	}
	for (const char *p = digits; *p; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			break;
	}
	if ((negative && v != 0) || v < min || v > max) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, path, "%s is out of range %" PRIu32 "-%" PRIu32,
				s, min, max);
		return false;
	}
	*out = (uint32_t)v;
	return true;
}

bool rs_yaml__bool(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path, bool *out)
{
	/* YAML 1.1 spellings too: Kubernetes decodes with go-yaml v2, which
	 * reads `yes` and `on` as true. */
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
	static const char *const no[] = {"false", "False", "FALSE", "no",
					 "No",    "NO",    "off",   "Off", "OFF"};

	if (n->type == RS_YNODE_SCALAR && n->plain) {
		for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
			if (strcmp(n->str, yes[i]) == 0) {
				*out = true;
				return true;
			}
			if (strcmp(n->str, no[i]) == 0) {
				*out = false;
				return true;
			}
		}
	}
	wrong_type(ctx, n, path, "a boolean");
	return false;
}

bool rs_yaml__str_field(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
			const char *key, bool required, char **out)
{
	const struct rs_ynode *n = rs_yaml__get(map, key);
	char buf[RS_YPATH_MAX];

	rs_yaml__path_key(buf, path, key);
	if (!n) {
		if (required)
			rs_yaml__report(ctx, RS_DIAG_ERROR, map, buf, "required field is missing");
		return false;
	}
	return rs_yaml__str(ctx, n, buf, out);
}

bool rs_yaml__str_list(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
		       char ***out, size_t *count)
{
	char buf[RS_YPATH_MAX];
	char **v = NULL;
	bool ok = true;

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_SEQUENCE))
		return false;
	if (n->n) {
		v = calloc(n->n, sizeof *v);
		if (!v) {
			ctx->nomem = true;
			ctx->rejected = true;
			return false;
		}
	}
	/* Every item is checked, so one run reports every bad one. */
	for (size_t i = 0; i < n->n; i++)
		ok &= rs_yaml__str(ctx, n->items[i], rs_yaml__path_index(buf, path, i), &v[i]);
	if (!ok) {
		for (size_t i = 0; i < n->n; i++)
			free(v[i]);
		free(v);
		return false;
	}
	*out = v;
	*count = n->n;
	return true;
}

static bool check_key(struct rs_yctx *ctx, const struct rs_ynode *map, size_t i, const char *path)
{
	const struct rs_ynode *k = map->pairs[i].key;
	char buf[RS_YPATH_MAX];

	if (k->type != RS_YNODE_SCALAR) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, k, path, "a key must be a string, not %s",
				k->type == RS_YNODE_MAPPING ? "a mapping" : "a sequence");
		return false;
	}
	for (size_t j = 0; j < i; j++) {
		const struct rs_ynode *prev = map->pairs[j].key;

		if (prev->type == RS_YNODE_SCALAR && strcmp(prev->str, k->str) == 0) {
			rs_yaml__report(ctx, RS_DIAG_ERROR, k, NULL,
					"duplicate field '%s' (first at %d:%d)",
					rs_yaml__path_key(buf, path, k->str), prev->line, prev->col);
			return false;
		}
	}
	return true;
}

bool rs_yaml__str_map(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
		      struct rs_kv **out, size_t *count)
{
	char buf[RS_YPATH_MAX];
	struct rs_kv *v = NULL;
	bool ok = true;

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING))
		return false;
	if (n->n) {
		v = calloc(n->n, sizeof *v);
		if (!v) {
			ctx->nomem = true;
			ctx->rejected = true;
			return false;
		}
	}
	for (size_t i = 0; i < n->n; i++) {
		const struct rs_ypair *p = &n->pairs[i];

		if (!check_key(ctx, n, i, path)) {
			ok = false;
			continue;
		}
		rs_yaml__path_key(buf, path, p->key->str);
		ok &= rs_yaml__str(ctx, p->key, buf, &v[i].key);
		/* `version:` with no value is an empty label value in Kubernetes. */
		if (rs_yaml__is_null(p->value)) {
			v[i].value = strdup("");
			if (!v[i].value) {
				ctx->nomem = true;
				ctx->rejected = true;
				ok = false;
			}
		} else {
			ok &= rs_yaml__str(ctx, p->value, buf, &v[i].value);
		}
	}
	if (!ok) {
		for (size_t i = 0; i < n->n; i++) {
			free(v[i].key);
			free(v[i].value);
		}
		free(v);
		return false;
	}
	*out = v;
	*count = n->n;
	return true;
}

void rs_yaml__check_fields(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
			   const char *const *known)
{
	char buf[RS_YPATH_MAX];

	if (!map || map->type != RS_YNODE_MAPPING)
		return;
	for (size_t i = 0; i < map->n; i++) {
		const struct rs_ynode *k = map->pairs[i].key;
		bool found = false;

		if (!check_key(ctx, map, i, path) || !known)
			continue;
		for (const char *const *f = known; *f; f++) {
			if (strcmp(*f, k->str) == 0) {
				found = true;
				break;
			}
		}
		if (!found)
			rs_yaml__report(ctx, RS_DIAG_WARNING, k, NULL, "unknown field '%s'",
					rs_yaml__path_key(buf, path, k->str));
	}
}
