/* Telemetry (telemetry.istio.io): access logs, metrics and tracing for the
 * workloads a resource selects (mesh-wide in the root namespace). Fields
 * and checks follow Istio's reference
 * (https://istio.io/latest/docs/reference/config/telemetry/) and its
 * validation (pkg/config/validation ValidateTelemetry). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config-security-t.h"
#include "ringside/config.h"
#include "yaml.h"

static const char *const spec_fields[] = {
	"selector", "targetRef", "targetRefs", "accessLogging", "metrics", "tracing", NULL,
};
static const char *const access_logging_fields[] = {"match", "providers", "disabled", "filter",
						    NULL};
static const char *const metrics_fields[] = {"providers", "overrides", "reportingInterval", NULL};
static const char *const override_fields[] = {"match", "disabled", "tagOverrides", NULL};
static const char *const metric_match_fields[] = {"metric", "customMetric", "mode", NULL};
static const char *const tag_override_fields[] = {"operation", "value", NULL};
static const char *const tracing_fields[] = {
	"match", "providers", "randomSamplingPercentage", "disableSpanReporting", "customTags",
	"useRequestIdForTraceSampling", NULL,
};
static const char *const custom_tag_fields[] = {"literal", "environment", "header", NULL};
static const char *const literal_fields[] = {"value", NULL};
static const char *const env_fields[] = {"name", "defaultValue", NULL};
static const char *const match_fields[] = {"mode", NULL};
static const char *const provider_fields[] = {"name", NULL};
static const char *const filter_fields[] = {"expression", NULL};

static const char *const modes[] = {
	[RS_TEL_CLIENT_AND_SERVER] = "CLIENT_AND_SERVER",
	[RS_TEL_CLIENT] = "CLIENT",
	[RS_TEL_SERVER] = "SERVER",
};

static const char *const tag_ops[] = {
	[RS_TEL_TAG_UPSERT] = "UPSERT",
	[RS_TEL_TAG_REMOVE] = "REMOVE",
};

/* Istio's standard metrics (MetricSelector.IstioMetric). */
static const char *const metric_names[] = {
	"ALL_METRICS", "REQUEST_COUNT", "REQUEST_DURATION", "REQUEST_SIZE", "RESPONSE_SIZE",
	"TCP_OPENED_CONNECTIONS", "TCP_CLOSED_CONNECTIONS", "TCP_SENT_BYTES", "TCP_RECEIVED_BYTES",
	"GRPC_REQUEST_MESSAGES", "GRPC_RESPONSE_MESSAGES",
};



static void access_logging_clear(struct rs_tel_access_logging *a)
{
	rs_config__strs_clear(&a->providers);
	free(a->filter);
}

static void metrics_clear(struct rs_tel_metrics *m)
{
	rs_config__strs_clear(&m->providers);
	for (size_t i = 0; i < m->noverrides; i++) {
		struct rs_tel_metric_override *o = &m->overrides[i];

		free(o->metric);
		for (size_t j = 0; j < o->ntags; j++) {
			free(o->tags[j].name);
			free(o->tags[j].value);
		}
		free(o->tags);
	}
	free(m->overrides);
	free(m->reporting_interval);
}

static void tracing_clear(struct rs_tel_tracing *t)
{
	rs_config__strs_clear(&t->providers);
	for (size_t i = 0; i < t->ncustom_tags; i++) {
		free(t->custom_tags[i].tag);
		free(t->custom_tags[i].value);
		free(t->custom_tags[i].default_value);
	}
	free(t->custom_tags);
}

static void clear(struct rs_telemetry *t)
{
	free(t->name);
	free(t->ns);
	rs_config__kvs_free(t->selector.labels, t->selector.nlabels);
	rs_config__target_refs_free(t->target_refs, t->ntarget_refs);
	for (size_t i = 0; i < t->naccess_logging; i++)
		access_logging_clear(&t->access_logging[i]);
	free(t->access_logging);
	for (size_t i = 0; i < t->nmetrics; i++)
		metrics_clear(&t->metrics[i]);
	free(t->metrics);
	for (size_t i = 0; i < t->ntracing; i++)
		tracing_clear(&t->tracing[i]);
	free(t->tracing);
	memset(t, 0, sizeof *t);
}

/* map[key] as a tri-state boolean. */
static void parse_flag(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
		       const char *key, enum rs_tel_flag *out)
{
	const struct rs_ynode *n = rs_yaml__get(map, key);
	char sub[RS_YPATH_MAX];
	bool b;

	if (n && rs_yaml__bool(ctx, n, rs_yaml__path_key(sub, path, key), &b))
		*out = b ? RS_TEL_TRUE : RS_TEL_FALSE;
}

/* map.match: {mode: CLIENT|SERVER|CLIENT_AND_SERVER}. */
static void parse_match(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
			enum rs_tel_mode *mode)
{
	const struct rs_ynode *n = rs_yaml__get(map, "match"), *v;
	char sub[RS_YPATH_MAX], m[RS_YPATH_MAX];
	int i;

	rs_yaml__path_key(sub, path, "match");
	if (!n || !rs_yaml__expect(ctx, n, sub, RS_YNODE_MAPPING))
		return;
	rs_yaml__check_fields(ctx, n, sub, match_fields);
	v = rs_yaml__get(n, "mode");
	if (v && rs_config__parse_enum(ctx, v, rs_yaml__path_key(m, sub, "mode"), modes, 3, &i))
		*mode = (enum rs_tel_mode)i;
}

/* providers: [{name: envoy}, ...], kept as the names. known, when not
 * NULL, is the one provider ringside implements for this signal. */
static void parse_providers(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
			    const char *known, struct rs_strs *out)
{
	const struct rs_ynode *n = rs_yaml__get(map, "providers");
	char sub[RS_YPATH_MAX], item[RS_YPATH_MAX], name[RS_YPATH_MAX];

	rs_yaml__path_key(sub, path, "providers");
	if (!n || !rs_yaml__expect(ctx, n, sub, RS_YNODE_SEQUENCE))
		return;
	out->v = rs_config__alloc_items(ctx, n->n, sizeof *out->v);
	if (!out->v)
		return;
	for (size_t i = 0; i < n->n; i++) {
		const struct rs_ynode *p = n->items[i];
		char **s = &out->v[out->n];

		rs_yaml__path_index(item, sub, i);
		if (!rs_yaml__expect(ctx, p, item, RS_YNODE_MAPPING))
			continue;
		rs_yaml__check_fields(ctx, p, item, provider_fields);
		if (!rs_yaml__str_field(ctx, p, item, "name", true, s))
			continue;
		out->n++;
		rs_yaml__path_key(name, item, "name");
		if (!(*s)[0])
			rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(p, "name"), name,
					"must not be empty");
		/* Other providers are meshConfig.extensionProviders entries,
		 * which ringside does not read: their output would be lost. */
		else if (known && strcmp(*s, known) != 0)
			rs_yaml__report(ctx, RS_DIAG_WARNING, rs_yaml__get(p, "name"), name,
					"provider '%s' is not implemented yet (ringside has "
					"'%s'); ignored",
					*s, known);
	}
}

/* Reads one item of a section into out. */
typedef void (*item_fn)(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
			void *out);

/* A section of the spec: a sequence of mappings, each read by one(). */
static void *parse_section(struct rs_yctx *ctx, const struct rs_ynode *spec, const char *key,
			   size_t size, size_t *count,
			   item_fn one)
{
	const struct rs_ynode *n = rs_yaml__get(spec, key);
	char path[RS_YPATH_MAX], item[RS_YPATH_MAX];
	char *v;

	rs_yaml__path_key(path, "spec", key);
	if (!n || !rs_yaml__expect(ctx, n, path, RS_YNODE_SEQUENCE))
		return NULL;
	v = rs_config__alloc_items(ctx, n->n, size);
	if (!v)
		return NULL;
	*count = n->n;
	for (size_t i = 0; i < n->n; i++) {
		rs_yaml__path_index(item, path, i);
		if (rs_yaml__expect(ctx, n->items[i], item, RS_YNODE_MAPPING))
			one(ctx, n->items[i], item, v + i * size);
	}
	return v;
}

static void parse_access_logging(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
				 void *out)
{
	struct rs_tel_access_logging *a = out;
	const struct rs_ynode *f;
	char sub[RS_YPATH_MAX];

	rs_yaml__check_fields(ctx, n, path, access_logging_fields);
	parse_match(ctx, n, path, &a->mode);
	parse_providers(ctx, n, path, "envoy", &a->providers);
	parse_flag(ctx, n, path, "disabled", &a->disabled);
	f = rs_yaml__get(n, "filter");
	rs_yaml__path_key(sub, path, "filter");
	if (f && rs_yaml__expect(ctx, f, sub, RS_YNODE_MAPPING)) {
		rs_yaml__check_fields(ctx, f, sub, filter_fields);
		/* A CEL expression: logging everything instead would be a
		 * behaviour change the user must hear about. */
		if (rs_yaml__str_field(ctx, f, sub, "expression", false, &a->filter))
			rs_yaml__report(ctx, RS_DIAG_WARNING, rs_yaml__get(f, "expression"), NULL,
					"field '%s.expression' is not implemented yet; every "
					"request is logged",
					sub);
	}
}

static void parse_metric_override(struct rs_yctx *ctx, const struct rs_ynode *n,
				  const char *path, struct rs_tel_metric_override *o)
{
	const struct rs_ynode *m, *v, *tags;
	char sub[RS_YPATH_MAX], key[RS_YPATH_MAX], item[RS_YPATH_MAX];
	int i;

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING))
		return;
	rs_yaml__check_fields(ctx, n, path, override_fields);
	m = rs_yaml__get(n, "match");
	rs_yaml__path_key(sub, path, "match");
	if (m && rs_yaml__expect(ctx, m, sub, RS_YNODE_MAPPING)) {
		rs_yaml__check_fields(ctx, m, sub, metric_match_fields);
		v = rs_yaml__get(m, "metric");
		if (v && rs_config__parse_enum(ctx, v, rs_yaml__path_key(key, sub, "metric"),
		                               metric_names,
		                               sizeof metric_names / sizeof metric_names[0], &i))
			rs_yaml__str(ctx, v, key, &o->metric);
		if (rs_yaml__get(m, "customMetric")) {
			if (v)
				rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(m, "customMetric"),
						rs_yaml__path_key(key, sub, "customMetric"),
						"only one of metric or customMetric can be set");
			else
				rs_yaml__str_field(ctx, m, sub, "customMetric", false, &o->metric);
		}
		v = rs_yaml__get(m, "mode");
		if (v && rs_config__parse_enum(ctx, v, rs_yaml__path_key(key, sub, "mode"), modes,
		                               3, &i))
			o->mode = (enum rs_tel_mode)i;
	}
	parse_flag(ctx, n, path, "disabled", &o->disabled);
	tags = rs_yaml__get(n, "tagOverrides");
	rs_yaml__path_key(sub, path, "tagOverrides");
	if (!tags || !rs_yaml__expect(ctx, tags, sub, RS_YNODE_MAPPING))
		return;
	rs_yaml__check_fields(ctx, tags, sub, NULL);
	o->tags = rs_config__alloc_items(ctx, tags->n, sizeof *o->tags);
	if (!o->tags)
		return;
	for (size_t j = 0; j < tags->n; j++) {
		const struct rs_ypair *p = &tags->pairs[j];
		struct rs_tel_tag_override *t = &o->tags[o->ntags];

		if (p->key->type != RS_YNODE_SCALAR)
			continue;
		rs_yaml__path_key(item, sub, p->key->str);
		if (!rs_yaml__str(ctx, p->key, item, &t->name))
			continue;
		o->ntags++;
		/* `name:` alone is an UPSERT with nothing to write. */
		if (rs_yaml__is_null(p->value)) {
			rs_yaml__report(ctx, RS_DIAG_ERROR, p->key,
					rs_yaml__path_key(key, item, "value"),
					"required when operation is UPSERT");
			continue;
		}
		if (!rs_yaml__expect(ctx, p->value, item, RS_YNODE_MAPPING))
			continue;
		rs_yaml__check_fields(ctx, p->value, item, tag_override_fields);
		v = rs_yaml__get(p->value, "operation");
		if (v && rs_config__parse_enum(ctx, v, rs_yaml__path_key(key, item, "operation"),
		                               tag_ops, 2, &i))
			t->op = (enum rs_tel_tag_op)i;
		rs_yaml__str_field(ctx, p->value, item, "value", false, &t->value);
		/* Istio: REMOVE takes no value, UPSERT needs one. */
		if (t->op == RS_TEL_TAG_REMOVE && t->value)
			rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(p->value, "value"),
					rs_yaml__path_key(key, item, "value"),
					"must be empty when operation is REMOVE");
		else if (t->op == RS_TEL_TAG_UPSERT && !t->value)
			rs_yaml__report(ctx, RS_DIAG_ERROR, p->value,
					rs_yaml__path_key(key, item, "value"),
					"required when operation is UPSERT");
	}
}

static void parse_metrics(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
			  void *out)
{
	struct rs_tel_metrics *m = out;
	const struct rs_ynode *ov, *v;
	char sub[RS_YPATH_MAX], item[RS_YPATH_MAX];

	rs_yaml__check_fields(ctx, n, path, metrics_fields);
	parse_providers(ctx, n, path, "prometheus", &m->providers);
	ov = rs_yaml__get(n, "overrides");
	rs_yaml__path_key(sub, path, "overrides");
	if (ov && rs_yaml__expect(ctx, ov, sub, RS_YNODE_SEQUENCE)) {
		/* Istio's standard labels are what dashboards rely on;
		 * changing them silently would be worse than saying so. */
		if (ov->n)
			rs_yaml__report(ctx, RS_DIAG_WARNING, ov, NULL,
					"field '%s' is not implemented yet; ignored", sub);
		m->overrides = rs_config__alloc_items(ctx, ov->n, sizeof *m->overrides);
		if (m->overrides) {
			m->noverrides = ov->n;
			for (size_t i = 0; i < ov->n; i++)
				parse_metric_override(ctx, ov->items[i],
						      rs_yaml__path_index(item, sub, i),
						      &m->overrides[i]);
		}
	}
	v = rs_yaml__get(n, "reportingInterval");
	if (v)
		rs_yaml__str(ctx, v, rs_yaml__path_key(sub, path, "reportingInterval"),
			     &m->reporting_interval);
}

/* randomSamplingPercentage: a double in proto, so 0.5 is fine. */
static void parse_percent(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
			  struct rs_tel_tracing *t)
{
	const struct rs_ynode *n = rs_yaml__get(map, "randomSamplingPercentage");
	char sub[RS_YPATH_MAX];
	char *end;
	double d;

	if (!n)
		return;
	rs_yaml__path_key(sub, path, "randomSamplingPercentage");
	if (n->type != RS_YNODE_SCALAR) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, sub, "wrong type: expected a number, got %s",
				n->type == RS_YNODE_MAPPING ? "a mapping" : "a sequence");
		return;
	}
	errno = 0;
	d = strtod(n->str, &end);
	if (!n->str[0] || *end || errno || !isfinite(d) || strlen(n->str) != n->len) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, sub,
				"wrong type: expected a number, got '%s'", n->str);
		return;
	}
	if (d < 0 || d > 100) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, sub, "%s is out of range 0-100", n->str);
		return;
	}
	t->has_sampling = true;
	t->random_sampling_percentage = d;
}

/* customTags: a map of tag name to one of literal, environment, header. */
static void parse_custom_tags(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
			      struct rs_tel_tracing *t)
{
	static const char *const kinds[] = {
		[RS_TEL_TAG_LITERAL] = "literal",
		[RS_TEL_TAG_ENVIRONMENT] = "environment",
		[RS_TEL_TAG_HEADER] = "header",
	};
	const struct rs_ynode *n = rs_yaml__get(map, "customTags");
	char sub[RS_YPATH_MAX], item[RS_YPATH_MAX], key[RS_YPATH_MAX];

	rs_yaml__path_key(sub, path, "customTags");
	if (!n || !rs_yaml__expect(ctx, n, sub, RS_YNODE_MAPPING))
		return;
	rs_yaml__check_fields(ctx, n, sub, NULL);
	if (n->n)
		rs_yaml__report(ctx, RS_DIAG_WARNING, n, NULL,
				"field '%s' is not implemented yet; ignored", sub);
	t->custom_tags = rs_config__alloc_items(ctx, n->n, sizeof *t->custom_tags);
	if (!t->custom_tags)
		return;
	for (size_t i = 0; i < n->n; i++) {
		const struct rs_ypair *p = &n->pairs[i];
		struct rs_tel_custom_tag *c = &t->custom_tags[t->ncustom_tags];
		const struct rs_ynode *v = NULL;
		size_t found = 0;

		if (p->key->type != RS_YNODE_SCALAR)
			continue;
		rs_yaml__path_key(item, sub, p->key->str);
		if (!rs_yaml__str(ctx, p->key, item, &c->tag))
			continue;
		t->ncustom_tags++;
		if (!rs_yaml__expect(ctx, p->value, item, RS_YNODE_MAPPING))
			continue;
		rs_yaml__check_fields(ctx, p->value, item, custom_tag_fields);
		for (size_t k = 0; k < 3; k++) {
			if (rs_yaml__get(p->value, kinds[k])) {
				v = rs_yaml__get(p->value, kinds[k]);
				c->kind = (enum rs_tel_tag_kind)k;
				found++;
			}
		}
		if (found != 1) {
			rs_yaml__report(ctx, RS_DIAG_ERROR, p->value, item,
					"exactly one of literal, environment or header must "
					"be set");
			continue;
		}
		rs_yaml__path_key(key, item, kinds[c->kind]);
		if (!rs_yaml__expect(ctx, v, key, RS_YNODE_MAPPING))
			continue;
		if (c->kind == RS_TEL_TAG_LITERAL) {
			rs_yaml__check_fields(ctx, v, key, literal_fields);
			rs_yaml__str_field(ctx, v, key, "value", true, &c->value);
		} else {
			rs_yaml__check_fields(ctx, v, key, env_fields);
			rs_yaml__str_field(ctx, v, key, "name", true, &c->value);
			rs_yaml__str_field(ctx, v, key, "defaultValue", false, &c->default_value);
		}
	}
}

static void parse_tracing(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
			  void *out)
{
	struct rs_tel_tracing *t = out;

	rs_yaml__check_fields(ctx, n, path, tracing_fields);
	parse_match(ctx, n, path, &t->mode);
	parse_providers(ctx, n, path, NULL, &t->providers);
	parse_percent(ctx, n, path, t);
	parse_flag(ctx, n, path, "disableSpanReporting", &t->disable_span_reporting);
	parse_custom_tags(ctx, n, path, t);
	parse_flag(ctx, n, path, "useRequestIdForTraceSampling",
		   &t->use_request_id_for_trace_sampling);
}

int rs_config__telemetry_load(struct rs_yctx *ctx, const struct rs_ynode *root, const char *name,
			      const char *ns, struct rs_config *cfg)
{
	struct rs_telemetry t = {0};
	const struct rs_config__head *prev = rs_config__find(
	    cfg->telemetries, cfg->n_telemetries, sizeof *cfg->telemetries, NULL, ns, name);
	const struct rs_ynode *spec;
	int r = 0;

	if (!rs_config__begin(ctx, root, prev, name, ns, &t.name, &t.ns, &t.pos))
		goto cleanup;

	spec = rs_yaml__get(root, "spec");
	if (spec && rs_yaml__expect(ctx, spec, "spec", RS_YNODE_MAPPING)) {
		rs_yaml__check_fields(ctx, spec, "spec", spec_fields);
		rs_config__parse_selector(ctx, spec, &t.selector);
		rs_config__parse_target_refs(ctx, spec, &t.target_refs, &t.ntarget_refs);
		t.access_logging = parse_section(ctx, spec, "accessLogging",
						 sizeof *t.access_logging, &t.naccess_logging,
						 parse_access_logging);
		t.metrics = parse_section(ctx, spec, "metrics", sizeof *t.metrics, &t.nmetrics,
					  parse_metrics);
		t.tracing = parse_section(ctx, spec, "tracing", sizeof *t.tracing, &t.ntracing,
					  parse_tracing);
	}

	if (!ctx->rejected)
		r = rs_config__grow(&cfg->telemetries, &cfg->n_telemetries, &t, sizeof t);
cleanup:
	if (ctx->nomem)
		r = -ENOMEM;
	clear(&t);
	return r;
}

void rs_config__telemetry_free_all(struct rs_config *cfg)
{
	for (size_t i = 0; i < cfg->n_telemetries; i++)
		clear(&cfg->telemetries[i]);
	free(cfg->telemetries);
	cfg->telemetries = NULL;
	cfg->n_telemetries = 0;
}
