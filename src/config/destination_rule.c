/* DestinationRule (networking.istio.io): what happens to traffic for a host
 * after routing: subsets, load balancing, connection pools, outlier detection
 * and client TLS. Field names and checks follow Istio's reference
 * (https://istio.io/latest/docs/reference/config/networking/destination-rule/)
 * and its validation (pkg/config/validation ValidateDestinationRule). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config-networking-t.h"
#include "ringside/config.h"
#include "yaml.h"

static const char *const spec_fields[] = {"host",     "trafficPolicy",    "subsets",
                                          "exportTo", "workloadSelector", NULL};
static const char *const spec_not_implemented[] = {"exportTo", "workloadSelector", NULL};

static const char *const subset_fields[] = {"name", "labels", "trafficPolicy", NULL};

static const char *const policy_fields[] = {
    "loadBalancer",      "connectionPool", "outlierDetection", "tls",
    "portLevelSettings", "tunnel",         "proxyProtocol",    NULL,
};
static const char *const policy_not_implemented[] = {"tunnel", "proxyProtocol", NULL};
static const char *const port_policy_fields[] = {
    "port", "loadBalancer", "connectionPool", "outlierDetection", "tls", NULL};
static const char *const port_selector_fields[] = {"number", NULL};

static const char *const lb_fields[] = {
    "simple", "consistentHash", "localityLbSetting", "warmupDurationSecs", "warmup", NULL};
static const char *const lb_not_implemented[] = {"localityLbSetting", "warmupDurationSecs",
                                                 "warmup", NULL};
static const char *const hash_fields[] = {
    "httpHeaderName", "httpCookie", "useSourceIp",     "httpQueryParameterName",
    "ringHash",       "maglev",     "minimumRingSize", NULL,
};
static const char *const cookie_fields[] = {"name", "path", "ttl", "attributes", NULL};
static const char *const cookie_not_implemented[] = {"attributes", NULL};
static const char *const ring_hash_fields[] = {"minimumRingSize", NULL};
static const char *const maglev_fields[] = {"tableSize", NULL};

static const char *const pool_fields[] = {"tcp", "http", NULL};
static const char *const tcp_fields[] = {"maxConnections",        "connectTimeout", "tcpKeepalive",
                                         "maxConnectionDuration", "idleTimeout",    NULL};
static const char *const tcp_not_implemented[] = {"maxConnectionDuration", "idleTimeout", NULL};
static const char *const keepalive_fields[] = {"probes", "time", "interval", NULL};
static const char *const http_fields[] = {
    "http1MaxPendingRequests",
    "http2MaxRequests",
    "maxRequestsPerConnection",
    "maxRetries",
    "idleTimeout",
    "h2UpgradePolicy",
    "useClientProtocol",
    "maxConcurrentStreams",
    NULL,
};
static const char *const http_not_implemented[] = {"useClientProtocol", "maxConcurrentStreams",
                                                   NULL};

static const char *const outlier_fields[] = {
    "consecutiveErrors",
    "splitExternalLocalOriginErrors",
    "consecutiveLocalOriginFailures",
    "consecutiveGatewayErrors",
    "consecutive5xxErrors",
    "interval",
    "baseEjectionTime",
    "maxEjectionPercent",
    "minHealthPercent",
    NULL,
};
static const char *const outlier_not_implemented[] = {
    "consecutiveErrors",
    "splitExternalLocalOriginErrors",
    "consecutiveLocalOriginFailures",
    NULL,
};

static const char *const tls_fields[] = {
    "mode",
    "clientCertificate",
    "privateKey",
    "caCertificates",
    "credentialName",
    "subjectAltNames",
    "sni",
    "insecureSkipVerify",
    "caCrl",
    NULL,
};
static const char *const tls_not_implemented[] = {"caCrl", NULL};

static const char *const lb_simple_names[] = {
    [RS_LB_UNSPECIFIED] = "UNSPECIFIED",
    [RS_LB_LEAST_CONN] = "LEAST_CONN",
    [RS_LB_RANDOM] = "RANDOM",
    [RS_LB_PASSTHROUGH] = "PASSTHROUGH",
    [RS_LB_ROUND_ROBIN] = "ROUND_ROBIN",
    [RS_LB_LEAST_REQUEST] = "LEAST_REQUEST",
    NULL,
};
static const char *const h2_upgrade_names[] = {
    [RS_H2_UPGRADE_DEFAULT] = "DEFAULT",
    [RS_H2_UPGRADE_DO_NOT_UPGRADE] = "DO_NOT_UPGRADE",
    [RS_H2_UPGRADE_UPGRADE] = "UPGRADE",
    NULL,
};
static const char *const tls_mode_names[] = {
    [RS_TLS_DISABLE] = "DISABLE",
    [RS_TLS_SIMPLE] = "SIMPLE",
    [RS_TLS_MUTUAL] = "MUTUAL",
    [RS_TLS_ISTIO_MUTUAL] = "ISTIO_MUTUAL",
    NULL,
};


/* map[key] as a mapping checked against its fields, or NULL (absent, or
 * reported as the wrong type). Sets buf to the field's path. */
static const struct rs_ynode *open_map(struct rs_yctx *ctx, const struct rs_ynode *map,
                                       const char *path, const char *key, char buf[RS_YPATH_MAX],
                                       const char *const *fields,
                                       const char *const *not_implemented)
{
	const struct rs_ynode *n = rs_yaml__get(map, key);

	rs_yaml__path_key(buf, path, key);
	if (!n || !rs_yaml__expect(ctx, n, buf, RS_YNODE_MAPPING))
		return NULL;
	rs_config__check_fields(ctx, n, buf, fields, not_implemented);
	return n;
}

/* Istio's validation (ValidateDuration) refuses intervals under 1ms for the
 * outlier-detection and connect timers: Envoy would spin. */
static void read_positive_duration(struct rs_yctx *ctx, const struct rs_ynode *map,
                                   const char *path, const char *key, struct rs_opt_dur *out)
{
	char buf[RS_YPATH_MAX];

	rs_config__read_duration(ctx, map, path, key, out);
	if (out->set && out->ns < 1000000) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(map, key),
		                rs_yaml__path_key(buf, path, key), "must be at least 1ms");
		out->set = false;
	}
}

static void read_opt_u32(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                         const char *key, uint32_t min, uint32_t max, struct rs_opt_u32 *out)
{
	const struct rs_ynode *v = rs_yaml__get(map, key);
	char buf[RS_YPATH_MAX];

	if (v && rs_yaml__u32(ctx, v, rs_yaml__path_key(buf, path, key), min, max, &out->v))
		out->set = true;
}

static void read_u64(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                     const char *key, uint64_t *out)
{
	const struct rs_ynode *v = rs_yaml__get(map, key);
	char buf[RS_YPATH_MAX];
	char *end;

	if (!v)
		return;
	rs_yaml__path_key(buf, path, key);
	if (!rs_yaml__expect(ctx, v, buf, RS_YNODE_SCALAR))
		return;
	errno = 0;
	if (v->str[0] < '0' || v->str[0] > '9' || (*out = strtoull(v->str, &end, 10), errno) ||
	    *end)
		rs_yaml__report(ctx, RS_DIAG_ERROR, v, buf,
		                "wrong type: expected an integer, got '%s'", v->str);
}

static void read_consistent_hash(struct rs_yctx *ctx, const struct rs_ynode *lb, const char *path,
                                 struct rs_lb_settings *s)
{
	const struct rs_ynode *h, *c, *n;
	char buf[RS_YPATH_MAX], sub[RS_YPATH_MAX];
	const struct rs_ynode *first = NULL;
	static const char *const keys[] = {"httpHeaderName", "httpCookie", "useSourceIp",
	                                   "httpQueryParameterName"};
	static const enum rs_lb_hash_key kinds[] = {RS_LB_HASH_HEADER, RS_LB_HASH_COOKIE,
	                                            RS_LB_HASH_SOURCE_IP, RS_LB_HASH_QUERY_PARAM};

	h = open_map(ctx, lb, path, "consistentHash", buf, hash_fields, NULL);
	if (!h)
		return;
	s->consistent_hash = true;
	/* hash_key is a oneof: exactly one way to pick the key. */
	for (size_t i = 0; i < 4; i++) {
		const struct rs_ypair *p = rs_yaml__find(h, keys[i]);

		if (!p || rs_yaml__is_null(p->value))
			continue;
		if (first) {
			rs_yaml__report(ctx, RS_DIAG_ERROR, p->key, buf,
			                "only one of httpHeaderName, httpCookie, useSourceIp or "
			                "httpQueryParameterName may be set (also '%s' at %d:%d)",
			                first->str, first->line, first->col);
			return;
		}
		first = p->key;
		s->hash_key = kinds[i];
	}
	if (!first) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, h, buf,
		                "one of httpHeaderName, httpCookie, useSourceIp or "
		                "httpQueryParameterName is required");
		return;
	}
	rs_yaml__str_field(ctx, h, buf, "httpHeaderName", false, &s->http_header_name);
	rs_yaml__str_field(ctx, h, buf, "httpQueryParameterName", false,
	                   &s->http_query_parameter_name);
	if (s->hash_key == RS_LB_HASH_SOURCE_IP) {
		bool on = false;

		rs_yaml__bool(ctx, rs_yaml__get(h, "useSourceIp"),
		              rs_yaml__path_key(sub, buf, "useSourceIp"), &on);
		if (!on)
			s->hash_key = RS_LB_HASH_NONE;
	}
	c = open_map(ctx, h, buf, "httpCookie", sub, cookie_fields, cookie_not_implemented);
	if (c) {
		rs_yaml__str_field(ctx, c, sub, "name", true, &s->cookie_name);
		rs_yaml__str_field(ctx, c, sub, "path", false, &s->cookie_path);
		rs_config__read_duration(ctx, c, sub, "ttl", &s->cookie_ttl);
	}
	read_u64(ctx, h, buf, "minimumRingSize", &s->minimum_ring_size);
	if (rs_yaml__get(h, "ringHash") && rs_yaml__get(h, "maglev")) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(h, "maglev"), buf,
		                "only one of ringHash or maglev may be set");
		return;
	}
	n = open_map(ctx, h, buf, "ringHash", sub, ring_hash_fields, NULL);
	if (n) {
		s->hash_algo = RS_LB_HASH_RING;
		read_u64(ctx, n, sub, "minimumRingSize", &s->minimum_ring_size);
	}
	n = open_map(ctx, h, buf, "maglev", sub, maglev_fields, NULL);
	if (n) {
		s->hash_algo = RS_LB_HASH_MAGLEV;
		read_u64(ctx, n, sub, "tableSize", &s->maglev_table_size);
	}
}

static void read_load_balancer(struct rs_yctx *ctx, const struct rs_ynode *policy, const char *path,
                               struct rs_lb_settings *s)
{
	const struct rs_ynode *lb;
	char buf[RS_YPATH_MAX];
	int v = RS_LB_UNSPECIFIED;

	lb = open_map(ctx, policy, path, "loadBalancer", buf, lb_fields, lb_not_implemented);
	if (!lb)
		return;
	s->set = true;
	if (rs_yaml__get(lb, "simple") && rs_yaml__get(lb, "consistentHash")) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__find(lb, "consistentHash")->key, buf,
		                "only one of simple or consistentHash may be set");
		return;
	}
	rs_config__read_enum(ctx, lb, buf, "simple", lb_simple_names, SIZE_MAX, &v);
	s->simple = (enum rs_lb_simple)v;
	read_consistent_hash(ctx, lb, buf, s);
}

static void read_connection_pool(struct rs_yctx *ctx, const struct rs_ynode *policy,
                                 const char *path, struct rs_conn_pool *p)
{
	const struct rs_ynode *pool, *tcp, *http, *ka;
	char buf[RS_YPATH_MAX], sub[RS_YPATH_MAX], ka_path[RS_YPATH_MAX];
	int v = RS_H2_UPGRADE_DEFAULT;

	pool = open_map(ctx, policy, path, "connectionPool", buf, pool_fields, NULL);
	if (!pool)
		return;
	p->set = true;
	tcp = open_map(ctx, pool, buf, "tcp", sub, tcp_fields, tcp_not_implemented);
	if (tcp) {
		read_opt_u32(ctx, tcp, sub, "maxConnections", 1, INT32_MAX, &p->max_connections);
		read_positive_duration(ctx, tcp, sub, "connectTimeout", &p->connect_timeout);
		ka = open_map(ctx, tcp, sub, "tcpKeepalive", ka_path, keepalive_fields, NULL);
		if (ka) {
			p->tcp_keepalive.set = true;
			read_opt_u32(ctx, ka, ka_path, "probes", 0, UINT32_MAX,
			             &p->tcp_keepalive.probes);
			rs_config__read_duration(ctx, ka, ka_path, "time", &p->tcp_keepalive.time);
			rs_config__read_duration(ctx, ka, ka_path, "interval",
			                         &p->tcp_keepalive.interval);
		}
	}
	http = open_map(ctx, pool, buf, "http", sub, http_fields, http_not_implemented);
	if (http) {
		/* Istio's ranges (validateConnectionPool): the limits are
		 * int32 and must be at least 1 when written; maxRetries may be 0. */
		read_opt_u32(ctx, http, sub, "http1MaxPendingRequests", 1, INT32_MAX,
		             &p->http1_max_pending_requests);
		read_opt_u32(ctx, http, sub, "http2MaxRequests", 1, INT32_MAX,
		             &p->http2_max_requests);
		read_opt_u32(ctx, http, sub, "maxRequestsPerConnection", 0, INT32_MAX,
		             &p->max_requests_per_connection);
		read_opt_u32(ctx, http, sub, "maxRetries", 0, INT32_MAX, &p->max_retries);
		read_positive_duration(ctx, http, sub, "idleTimeout", &p->idle_timeout);
		rs_config__read_enum(ctx, http, sub, "h2UpgradePolicy", h2_upgrade_names, SIZE_MAX,
		                     &v);
		p->h2_upgrade_policy = (enum rs_h2_upgrade_policy)v;
	}
}

static void read_outlier_detection(struct rs_yctx *ctx, const struct rs_ynode *policy,
                                   const char *path, struct rs_outlier_detection *o)
{
	const struct rs_ynode *n;
	char buf[RS_YPATH_MAX];

	n = open_map(ctx, policy, path, "outlierDetection", buf, outlier_fields,
	             outlier_not_implemented);
	if (!n)
		return;
	o->set = true;
	read_opt_u32(ctx, n, buf, "consecutive5xxErrors", 0, INT32_MAX, &o->consecutive_5xx_errors);
	read_opt_u32(ctx, n, buf, "consecutiveGatewayErrors", 0, INT32_MAX,
	             &o->consecutive_gateway_errors);
	read_positive_duration(ctx, n, buf, "interval", &o->interval);
	read_positive_duration(ctx, n, buf, "baseEjectionTime", &o->base_ejection_time);
	read_opt_u32(ctx, n, buf, "maxEjectionPercent", 0, 100, &o->max_ejection_percent);
	read_opt_u32(ctx, n, buf, "minHealthPercent", 0, 100, &o->min_health_percent);
}

static void read_tls(struct rs_yctx *ctx, const struct rs_ynode *policy, const char *path,
                     struct rs_client_tls *t)
{
	const struct rs_ynode *n, *v;
	char buf[RS_YPATH_MAX], sub[RS_YPATH_MAX];
	int mode = RS_TLS_DISABLE;

	n = open_map(ctx, policy, path, "tls", buf, tls_fields, tls_not_implemented);
	if (!n)
		return;
	t->set = true;
	rs_config__read_enum(ctx, n, buf, "mode", tls_mode_names, SIZE_MAX, &mode);
	t->mode = (enum rs_tls_mode)mode;
	rs_yaml__str_field(ctx, n, buf, "clientCertificate", false, &t->client_certificate);
	rs_yaml__str_field(ctx, n, buf, "privateKey", false, &t->private_key);
	rs_yaml__str_field(ctx, n, buf, "caCertificates", false, &t->ca_certificates);
	rs_yaml__str_field(ctx, n, buf, "credentialName", false, &t->credential_name);
	v = rs_yaml__get(n, "subjectAltNames");
	if (v)
		rs_yaml__str_list(ctx, v, rs_yaml__path_key(sub, buf, "subjectAltNames"),
		                  &t->subject_alt_names, &t->nsubject_alt_names);
	rs_yaml__str_field(ctx, n, buf, "sni", false, &t->sni);
	v = rs_yaml__get(n, "insecureSkipVerify");
	if (v)
		rs_yaml__bool(ctx, v, rs_yaml__path_key(sub, buf, "insecureSkipVerify"),
		              &t->insecure_skip_verify);
	/* Istio (validateTLS): MUTUAL needs a certificate and key, unless
	 * they come from a Kubernetes secret named by credentialName. */
	if (t->mode == RS_TLS_MUTUAL && !t->credential_name &&
	    (!t->client_certificate || !t->private_key))
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, buf,
		                "mode MUTUAL requires clientCertificate and privateKey (or "
		                "credentialName)");
}

static void read_port_level(struct rs_yctx *ctx, const struct rs_ynode *policy, const char *path,
                            struct rs_traffic_policy *tp)
{
	const struct rs_ynode *n = rs_yaml__get(policy, "portLevelSettings");
	char buf[RS_YPATH_MAX], item[RS_YPATH_MAX], sub[RS_YPATH_MAX], num[RS_YPATH_MAX];

	rs_yaml__path_key(buf, path, "portLevelSettings");
	if (!n || !rs_yaml__expect(ctx, n, buf, RS_YNODE_SEQUENCE) || n->n == 0)
		return;
	tp->port_level_settings =
	    rs_config__alloc_items(ctx, n->n, sizeof *tp->port_level_settings);
	if (!tp->port_level_settings)
		return;
	tp->nport_level_settings = n->n;
	for (size_t i = 0; i < n->n; i++) {
		struct rs_port_traffic_policy *pp = &tp->port_level_settings[i];
		const struct rs_ynode *e = n->items[i], *port;

		rs_yaml__path_index(item, buf, i);
		if (!rs_yaml__expect(ctx, e, item, RS_YNODE_MAPPING))
			continue;
		rs_yaml__check_fields(ctx, e, item, port_policy_fields);
		rs_yaml__path_key(sub, item, "port");
		port = rs_yaml__get(e, "port");
		if (!port)
			rs_yaml__report(ctx, RS_DIAG_ERROR, e, sub, "required field is missing");
		else if (rs_yaml__expect(ctx, port, sub, RS_YNODE_MAPPING)) {
			rs_yaml__check_fields(ctx, port, sub, port_selector_fields);
			rs_yaml__path_key(num, sub, "number");
			if (rs_yaml__get(port, "number"))
				rs_yaml__u32(ctx, rs_yaml__get(port, "number"), num, 1, 65535,
				             &pp->port);
			else
				rs_yaml__report(ctx, RS_DIAG_ERROR, port, num,
				                "required field is missing");
		}
		for (size_t j = 0; j < i && pp->port; j++) {
			if (tp->port_level_settings[j].port == pp->port)
				rs_yaml__report(
				    ctx, RS_DIAG_ERROR, port, rs_yaml__path_key(sub, item, "port"),
				    "port %u is already configured by %s[%zu]", pp->port, buf, j);
		}
		read_load_balancer(ctx, e, item, &pp->load_balancer);
		read_connection_pool(ctx, e, item, &pp->connection_pool);
		read_outlier_detection(ctx, e, item, &pp->outlier_detection);
		read_tls(ctx, e, item, &pp->tls);
	}
}

static void read_traffic_policy(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                                struct rs_traffic_policy *tp)
{
	const struct rs_ynode *n;
	char buf[RS_YPATH_MAX];

	n = open_map(ctx, map, path, "trafficPolicy", buf, policy_fields, policy_not_implemented);
	if (!n)
		return;
	tp->set = true;
	read_load_balancer(ctx, n, buf, &tp->load_balancer);
	read_connection_pool(ctx, n, buf, &tp->connection_pool);
	read_outlier_detection(ctx, n, buf, &tp->outlier_detection);
	read_tls(ctx, n, buf, &tp->tls);
	read_port_level(ctx, n, buf, tp);
}

static void parse_subsets(struct rs_yctx *ctx, const struct rs_ynode *spec,
                          struct rs_destination_rule *dr)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "subsets");
	char path[RS_YPATH_MAX], sub[RS_YPATH_MAX];

	if (!n || !rs_yaml__expect(ctx, n, "spec.subsets", RS_YNODE_SEQUENCE) || n->n == 0)
		return;
	dr->subsets = rs_config__alloc_items(ctx, n->n, sizeof *dr->subsets);
	if (!dr->subsets)
		return;
	dr->nsubsets = n->n;
	for (size_t i = 0; i < n->n; i++) {
		struct rs_dr_subset *s = &dr->subsets[i];
		const struct rs_ynode *e = n->items[i], *v;

		rs_yaml__path_index(path, "spec.subsets", i);
		if (!rs_yaml__expect(ctx, e, path, RS_YNODE_MAPPING))
			continue;
		rs_yaml__check_fields(ctx, e, path, subset_fields);
		s->pos = (struct rs_pos){ctx->file, e->line, e->col};
		if (rs_yaml__str_field(ctx, e, path, "name", true, &s->name)) {
			v = rs_yaml__get(e, "name");
			s->name_pos = (struct rs_pos){ctx->file, v->line, v->col};
			rs_yaml__path_key(sub, path, "name");
			if (s->name[0] == '\0')
				rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(e, "name"), sub,
				                "must not be empty");
			/* Routes name subsets, so a name must mean one subset. */
			for (size_t j = 0; j < i; j++) {
				if (dr->subsets[j].name &&
				    strcmp(dr->subsets[j].name, s->name) == 0)
					rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(e, "name"),
					                sub,
					                "subset '%s' is already defined by "
					                "spec.subsets[%zu]",
					                s->name, j);
			}
		}
		v = rs_yaml__get(e, "labels");
		if (v) {
			s->labels_pos = (struct rs_pos){ctx->file, v->line, v->col};
			rs_yaml__str_map(ctx, v, rs_yaml__path_key(sub, path, "labels"), &s->labels,
			                 &s->nlabels);
		}
		read_traffic_policy(ctx, e, path, &s->traffic_policy);
	}
}

static void lb_clear(struct rs_lb_settings *s)
{
	free(s->http_header_name);
	free(s->http_query_parameter_name);
	free(s->cookie_name);
	free(s->cookie_path);
}

static void tls_clear(struct rs_client_tls *t)
{
	free(t->client_certificate);
	free(t->private_key);
	free(t->ca_certificates);
	free(t->credential_name);
	rs_config__strv_free(t->subject_alt_names, t->nsubject_alt_names);
	free(t->sni);
}

static void traffic_policy_clear(struct rs_traffic_policy *tp)
{
	lb_clear(&tp->load_balancer);
	tls_clear(&tp->tls);
	for (size_t i = 0; i < tp->nport_level_settings; i++) {
		lb_clear(&tp->port_level_settings[i].load_balancer);
		tls_clear(&tp->port_level_settings[i].tls);
	}
	free(tp->port_level_settings);
}

static void destination_rule_clear(struct rs_destination_rule *dr)
{
	free(dr->name);
	free(dr->ns);
	free(dr->host);
	free(dr->host_fqdn);
	traffic_policy_clear(&dr->traffic_policy);
	for (size_t i = 0; i < dr->nsubsets; i++) {
		free(dr->subsets[i].name);
		rs_config__kvs_free(dr->subsets[i].labels, dr->subsets[i].nlabels);
		traffic_policy_clear(&dr->subsets[i].traffic_policy);
	}
	free(dr->subsets);
	rs_config__strv_free(dr->export_to, dr->nexport_to);
	rs_config__kvs_free(dr->workload_selector, dr->nworkload_selector);
	memset(dr, 0, sizeof *dr);
}

int rs_config__destination_rule_load(struct rs_yctx *ctx, const struct rs_ynode *root,
                                     const char *name, const char *ns, struct rs_config *cfg)
{
	struct rs_destination_rule dr = {0};
	const struct rs_config__head *prev =
	    rs_config__find(cfg->destination_rules, cfg->n_destination_rules,
	                    sizeof *cfg->destination_rules, ctx->file, ns, name);
	const struct rs_ynode *spec, *v, *ws;
	char path[RS_YPATH_MAX];
	int r = 0;

	/* Within one file the same name twice is a mistake, as for
	 * ServiceEntry. Across files it is how the mission's examples are
	 * written (01 gives reviews its subsets, 04 its circuit breaker, both
	 * as DestinationRule default/reviews): both are kept, in load order,
	 * and the cluster builder merges rules for one host as Istio merges
	 * several DestinationRules of a host (subsets joined, the first
	 * trafficPolicy wins). */
	if (!rs_config__begin(ctx, root, prev, name, ns, &dr.name, &dr.ns, &dr.pos))
		goto cleanup;

	spec = rs_config__spec(ctx, root);
	if (!spec)
		goto cleanup;
	rs_config__check_fields(ctx, spec, "spec", spec_fields, spec_not_implemented);

	if (rs_yaml__str_field(ctx, spec, "spec", "host", true, &dr.host)) {
		if (dr.host[0] == '\0')
			rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(spec, "host"), "spec.host",
			                "must not be empty");
		else
			dr.host_fqdn = rs_config__resolve_host(ctx, dr.host, ns);
	}
	read_traffic_policy(ctx, spec, "spec", &dr.traffic_policy);
	parse_subsets(ctx, spec, &dr);
	v = rs_yaml__get(spec, "exportTo");
	if (v)
		rs_yaml__str_list(ctx, v, "spec.exportTo", &dr.export_to, &dr.nexport_to);
	ws = open_map(ctx, spec, "spec", "workloadSelector", path,
	              (const char *const[]){"matchLabels", NULL}, NULL);
	if (ws) {
		dr.has_workload_selector = true;
		v = rs_yaml__get(ws, "matchLabels");
		if (v)
			rs_yaml__str_map(ctx, v, "spec.workloadSelector.matchLabels",
			                 &dr.workload_selector, &dr.nworkload_selector);
	}

	if (!ctx->rejected)
		r = rs_config__grow(&cfg->destination_rules, &cfg->n_destination_rules, &dr,
		                    sizeof dr);
cleanup:
	if (ctx->nomem)
		r = -ENOMEM;
	destination_rule_clear(&dr);
	return r;
}

void rs_config__destination_rule_free_all(struct rs_config *cfg)
{
	for (size_t i = 0; i < cfg->n_destination_rules; i++)
		destination_rule_clear(&cfg->destination_rules[i]);
	free(cfg->destination_rules);
	cfg->destination_rules = NULL;
	cfg->n_destination_rules = 0;
}
