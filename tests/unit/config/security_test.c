/* The security kinds (PeerAuthentication, AuthorizationPolicy,
 * RequestAuthentication) and Telemetry: parsing into the typed model, and
 * every problem reported with its position, exactly as `ringside validate`
 * prints it. Runs from this folder (meson's workdir), so fixtures are
 * data/security/... */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ringside/config-security-t.h"
#include "ringside/config.h"
#include "harness.h"

static const char *label(const struct rs_selector *sel, const char *key)
{
	for (size_t i = 0; i < sel->nlabels; i++) {
		if (strcmp(sel->labels[i].key, key) == 0)
			return sel->labels[i].value;
	}
	return NULL;
}

static const struct rs_peer_authentication *find_pa(const struct rs_config *cfg, const char *ns,
						    const char *name)
{
	for (size_t i = 0; i < cfg->n_peer_authentications; i++) {
		if (strcmp(cfg->peer_authentications[i].ns, ns) == 0 &&
		    strcmp(cfg->peer_authentications[i].name, name) == 0)
			return &cfg->peer_authentications[i];
	}
	return NULL;
}

static const struct rs_authorization_policy *find_ap(const struct rs_config *cfg, const char *ns,
						     const char *name)
{
	for (size_t i = 0; i < cfg->n_authorization_policies; i++) {
		if (strcmp(cfg->authorization_policies[i].ns, ns) == 0 &&
		    strcmp(cfg->authorization_policies[i].name, name) == 0)
			return &cfg->authorization_policies[i];
	}
	return NULL;
}

static const struct rs_request_authentication *find_ra(const struct rs_config *cfg,
						       const char *ns, const char *name)
{
	for (size_t i = 0; i < cfg->n_request_authentications; i++) {
		if (strcmp(cfg->request_authentications[i].ns, ns) == 0 &&
		    strcmp(cfg->request_authentications[i].name, name) == 0)
			return &cfg->request_authentications[i];
	}
	return NULL;
}

static const struct rs_telemetry *find_tel(const struct rs_config *cfg, const char *ns,
					   const char *name)
{
	for (size_t i = 0; i < cfg->n_telemetries; i++) {
		if (strcmp(cfg->telemetries[i].ns, ns) == 0 &&
		    strcmp(cfg->telemetries[i].name, name) == 0)
			return &cfg->telemetries[i];
	}
	return NULL;
}

/* Loads one of the mission's files, or skips when the folder is absent. */
static bool load_mission(struct loaded *l, const char *file)
{
	return load_mission_file(l, file);
}

/* 05: STRICT mTLS for the whole mesh, from the root namespace. */
static void test_mission_mesh_strict_mtls(void **state)
{
	const struct rs_peer_authentication *pa;
	struct loaded l;

	(void)state;
	if (!load_mission(&l, "05-mesh-strict-mtls.yaml"))
		skip();
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "");
	assert_int_equal(l.cfg->n_peer_authentications, 1);
	pa = find_pa(l.cfg, RS_ROOT_NAMESPACE, "default");
	assert_non_null(pa);
	assert_int_equal(pa->mode, RS_MTLS_STRICT);
	assert_false(pa->selector.set);
	assert_int_equal(pa->selector.nlabels, 0);
	assert_int_equal(pa->nport_mtls, 0);
	assert_int_equal(pa->pos.line, 2);
	assert_int_equal(pa->pos.col, 1);
	unload(&l);
}

/* 06: an ALLOW for productpage's GETs to reviews, and an empty deny-all. */
static void test_mission_reviews_authorization(void **state)
{
	const struct rs_authorization_policy *ap;
	const struct rs_authz_rule *rule;
	struct loaded l;

	(void)state;
	if (!load_mission(&l, "06-reviews-authorization.yaml"))
		skip();
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "");
	assert_int_equal(l.cfg->n_authorization_policies, 2);

	ap = find_ap(l.cfg, "default", "reviews-policy");
	assert_non_null(ap);
	assert_int_equal(ap->action, RS_AUTHZ_ALLOW);
	assert_null(ap->provider);
	assert_true(ap->selector.set);
	assert_int_equal(ap->selector.nlabels, 1);
	assert_string_equal(label(&ap->selector, "app"), "reviews");
	assert_int_equal(ap->nrules, 1);
	rule = &ap->rules[0];
	assert_int_equal(rule->nfrom, 1);
	assert_int_equal(rule->from[0].principals.n, 1);
	assert_string_equal(rule->from[0].principals.v[0],
			    "cluster.local/ns/default/sa/productpage");
	assert_int_equal(rule->from[0].request_principals.n, 0);
	assert_int_equal(rule->nto, 1);
	assert_int_equal(rule->to[0].methods.n, 1);
	assert_string_equal(rule->to[0].methods.v[0], "GET");
	assert_int_equal(rule->to[0].nports, 0);
	assert_int_equal(rule->nwhen, 0);

	/* `spec: {}`: every workload of the namespace, ALLOW, matches nothing. */
	ap = find_ap(l.cfg, "default", "deny-all");
	assert_non_null(ap);
	assert_int_equal(ap->action, RS_AUTHZ_ALLOW);
	assert_false(ap->selector.set);
	assert_int_equal(ap->nrules, 0);
	assert_int_equal(ap->ntarget_refs, 0);
	unload(&l);
}

/* 07: a JWT issuer with its JWKS URL, and an ALLOW for any request principal. */
static void test_mission_api_jwt(void **state)
{
	const struct rs_request_authentication *ra;
	const struct rs_authorization_policy *ap;
	struct loaded l;

	(void)state;
	if (!load_mission(&l, "07-api-jwt.yaml"))
		skip();
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "");
	ra = find_ra(l.cfg, "default", "jwt-auth");
	assert_non_null(ra);
	assert_string_equal(label(&ra->selector, "app"), "api");
	assert_int_equal(ra->njwt_rules, 1);
	assert_string_equal(ra->jwt_rules[0].issuer, "https://auth.example.com");
	assert_string_equal(ra->jwt_rules[0].jwks_uri,
			    "https://auth.example.com/.well-known/jwks.json");
	assert_null(ra->jwt_rules[0].jwks);
	assert_int_equal(ra->jwt_rules[0].nfrom_headers, 0);
	assert_false(ra->jwt_rules[0].forward_original_token);

	ap = find_ap(l.cfg, "default", "require-jwt");
	assert_non_null(ap);
	assert_int_equal(ap->action, RS_AUTHZ_ALLOW);
	assert_string_equal(label(&ap->selector, "app"), "api");
	assert_int_equal(ap->nrules, 1);
	assert_int_equal(ap->rules[0].nfrom, 1);
	assert_int_equal(ap->rules[0].from[0].request_principals.n, 1);
	assert_string_equal(ap->rules[0].from[0].request_principals.v[0], "*");
	assert_int_equal(ap->rules[0].nto, 0);
	unload(&l);
}

/* 08: Envoy access logs for the whole mesh. */
static void test_mission_telemetry(void **state)
{
	const struct rs_telemetry *t;
	struct loaded l;

	(void)state;
	if (!load_mission(&l, "08-telemetry-access-logs.yaml"))
		skip();
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "");
	t = find_tel(l.cfg, RS_ROOT_NAMESPACE, "mesh-default");
	assert_non_null(t);
	assert_false(t->selector.set);
	assert_int_equal(t->naccess_logging, 1);
	assert_int_equal(t->access_logging[0].providers.n, 1);
	assert_string_equal(t->access_logging[0].providers.v[0], "envoy");
	assert_int_equal(t->access_logging[0].disabled, RS_TEL_UNSET);
	assert_int_equal(t->access_logging[0].mode, RS_TEL_CLIENT_AND_SERVER);
	assert_null(t->access_logging[0].filter);
	assert_int_equal(t->nmetrics, 0);
	assert_int_equal(t->ntracing, 0);
	unload(&l);
}

/* Every field read, from a fixture with no problem but one announced gap. */
static void test_valid_fields(void **state)
{
	const struct rs_peer_authentication *pa;
	const struct rs_authorization_policy *ap;
	const struct rs_authz_source *src;
	const struct rs_authz_operation *op;
	const struct rs_request_authentication *ra;
	const struct rs_jwt_rule *jr;
	const struct rs_telemetry *t;
	struct loaded l;

	(void)state;
	LOAD(&l, "data/security/valid.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "data/security/valid.yaml:82:5: "
				   "AuthorizationPolicy/bookinfo/ext: warning: field "
				   "'spec.provider' is not implemented yet; ignored\n");

	pa = find_pa(l.cfg, "bookinfo", "reviews-mtls");
	assert_non_null(pa);
	assert_int_equal(pa->selector.nlabels, 2);
	assert_string_equal(label(&pa->selector, "version"), "v2");
	assert_int_equal(pa->mode, RS_MTLS_PERMISSIVE);
	assert_int_equal(pa->nport_mtls, 2);
	assert_int_equal(pa->port_mtls[0].port, 9080);
	assert_int_equal(pa->port_mtls[0].mode, RS_MTLS_STRICT);
	assert_int_equal(pa->port_mtls[1].port, 15020);
	assert_int_equal(pa->port_mtls[1].mode, RS_MTLS_DISABLE);
	pa = find_pa(l.cfg, "bookinfo", "inherit");
	assert_non_null(pa);
	assert_int_equal(pa->mode, RS_MTLS_UNSET);

	ap = find_ap(l.cfg, "bookinfo", "full");
	assert_non_null(ap);
	assert_int_equal(ap->action, RS_AUTHZ_DENY);
	assert_int_equal(ap->nrules, 2);
	assert_int_equal(ap->rules[0].nfrom, 2);
	src = &ap->rules[0].from[0];
	assert_string_equal(src->principals.v[0], "cluster.local/ns/default/sa/*");
	assert_string_equal(src->not_principals.v[0], "*/sa/admin");
	assert_string_equal(src->request_principals.v[0], "https://auth.example.com/*");
	assert_string_equal(src->not_request_principals.v[0], "https://evil.example.com/alice");
	assert_int_equal(src->namespaces.n, 2);
	assert_string_equal(src->namespaces.v[1], "prod-*");
	assert_string_equal(src->not_namespaces.v[0], "kube-system");
	assert_int_equal(src->ip_blocks.n, 2);
	assert_string_equal(src->ip_blocks.v[1], "192.168.1.7");
	assert_string_equal(src->not_ip_blocks.v[0], "10.1.0.0/16");
	assert_string_equal(src->remote_ip_blocks.v[0], "2001:db8::/32");
	assert_string_equal(src->not_remote_ip_blocks.v[0], "2001:db8::1");
	assert_string_equal(ap->rules[0].from[1].namespaces.v[0], "istio-system");
	assert_int_equal(ap->rules[0].nto, 1);
	op = &ap->rules[0].to[0];
	assert_int_equal(op->hosts.n, 2);
	assert_string_equal(op->not_hosts.v[0], "admin.example.com");
	assert_int_equal(op->nports, 2);
	assert_int_equal(op->ports[0], 9080);
	assert_int_equal(op->ports[1], 8080);
	assert_int_equal(op->nnot_ports, 1);
	assert_int_equal(op->not_ports[0], 15000);
	assert_string_equal(op->methods.v[1], "DELETE");
	assert_string_equal(op->not_methods.v[0], "GET");
	assert_string_equal(op->paths.v[0], "/ratings/*");
	assert_string_equal(op->not_paths.v[0], "*.html");
	assert_int_equal(ap->rules[0].nwhen, 3);
	assert_string_equal(ap->rules[0].when[0].key, "request.headers[x-token]");
	assert_string_equal(ap->rules[0].when[0].values.v[0], "secret");
	assert_int_equal(ap->rules[0].when[1].values.n, 0);
	assert_string_equal(ap->rules[0].when[1].not_values.v[0], "10.2.0.0/16");
	/* `- {}`: a rule that matches every request. */
	assert_int_equal(ap->rules[1].nfrom, 0);
	assert_int_equal(ap->rules[1].nto, 0);
	assert_int_equal(ap->rules[1].nwhen, 0);

	ap = find_ap(l.cfg, "bookinfo", "ext");
	assert_non_null(ap);
	assert_int_equal(ap->action, RS_AUTHZ_CUSTOM);
	assert_string_equal(ap->provider, "my-ext-authz");

	ra = find_ra(l.cfg, "bookinfo", "jwt");
	assert_non_null(ra);
	assert_int_equal(ra->njwt_rules, 2);
	jr = &ra->jwt_rules[0];
	assert_int_equal(jr->audiences.n, 2);
	assert_string_equal(jr->audiences.v[1], "bookinfo");
	assert_int_equal(jr->nfrom_headers, 2);
	assert_string_equal(jr->from_headers[0].name, "x-jwt");
	assert_string_equal(jr->from_headers[0].prefix, "Bearer ");
	assert_null(jr->from_headers[1].prefix);
	assert_string_equal(jr->from_params.v[0], "token");
	assert_string_equal(jr->from_cookies.v[0], "session");
	assert_string_equal(jr->output_payload_to_header, "x-jwt-payload");
	assert_true(jr->forward_original_token);
	assert_int_equal(jr->noutput_claim_to_headers, 1);
	assert_string_equal(jr->output_claim_to_headers[0].header, "x-sub");
	assert_string_equal(jr->output_claim_to_headers[0].claim, "sub");
	assert_string_equal(jr->timeout, "5s");
	assert_string_equal(ra->jwt_rules[1].jwks, "{\"keys\": []}");
	assert_null(ra->jwt_rules[1].jwks_uri);

	t = find_tel(l.cfg, "bookinfo", "ratings");
	assert_non_null(t);
	assert_string_equal(label(&t->selector, "app"), "ratings");
	assert_int_equal(t->naccess_logging, 1);
	assert_int_equal(t->access_logging[0].mode, RS_TEL_SERVER);
	assert_int_equal(t->access_logging[0].disabled, RS_TEL_FALSE);
	assert_int_equal(t->nmetrics, 1);
	assert_string_equal(t->metrics[0].providers.v[0], "prometheus");
	assert_string_equal(t->metrics[0].reporting_interval, "10s");
	assert_int_equal(t->ntracing, 1);
	assert_int_equal(t->tracing[0].mode, RS_TEL_CLIENT);
	assert_string_equal(t->tracing[0].providers.v[0], "zipkin");
	assert_true(t->tracing[0].has_sampling);
	assert_true(t->tracing[0].random_sampling_percentage == 12.5);
	assert_int_equal(t->tracing[0].disable_span_reporting, RS_TEL_TRUE);
	assert_int_equal(t->tracing[0].use_request_id_for_trace_sampling, RS_TEL_FALSE);
	unload(&l);
}

/* One broken resource is rejected alone; the rest of the file loads, and a
 * second resource of the same name is refused. */
static void test_broken_rejected_alone(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/security/bad/mixed.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out,
			    "data/security/bad/mixed.yaml:19:20: AuthorizationPolicy/foo/bad: "
			    "error: spec.rules[0].from[0].source.ipBlocks[0]: 'not-an-ip' is not "
			    "an IP address or CIDR block\n"
			    "data/security/bad/mixed.yaml:28:1: AuthorizationPolicy/foo/good2: "
			    "error: already defined at data/security/bad/mixed.yaml:21:1\n");
	assert_int_equal(l.diags.errors, 2);
	assert_non_null(find_pa(l.cfg, "foo", "good1"));
	assert_null(find_ap(l.cfg, "foo", "bad"));
	assert_non_null(find_ap(l.cfg, "foo", "good2"));
	assert_int_equal(find_ap(l.cfg, "foo", "good2")->action, RS_AUTHZ_ALLOW);
	assert_int_equal(l.cfg->n_authorization_policies, 1);
	unload(&l);
}

/* A broken input: its file, what validate prints, and whether the resource
 * still loads (warnings only). */
struct broken {
	const char *file;
	const char *out;
	bool loads;
};

#define BAD "data/security/bad/"

static const struct broken broken[] = {
	{BAD "pa-mode.yaml",
	 BAD "pa-mode.yaml:8:11: PeerAuthentication/istio-system/default: error: spec.mtls.mode: "
	     "unknown value 'STRICTT' (expected UNSET, DISABLE, PERMISSIVE or STRICT)\n"},
	{BAD "pa-port-range.yaml",
	 BAD "pa-port-range.yaml:13:5: PeerAuthentication/foo/ports: error: "
	     "spec.portLevelMtls.70000: 70000 is out of range 1-65535\n"},
	{BAD "pa-port-no-selector.yaml",
	 BAD "pa-port-no-selector.yaml:10:5: PeerAuthentication/foo/ns-wide: error: "
	     "spec.portLevelMtls: requires a selector with labels (a namespace- or mesh-wide "
	     "policy cannot set port-level mTLS)\n"},
	{BAD "pa-unknown-field.yaml",
	 BAD "pa-unknown-field.yaml:8:5: PeerAuthentication/foo/typo: warning: unknown field "
	     "'spec.mtls.mod'\n",
	 true},
	{BAD "ap-empty-selector.yaml",
	 BAD "ap-empty-selector.yaml:8:18: AuthorizationPolicy/foo/empty-selector: warning: "
	     "spec.selector.matchLabels: no labels: applies to every workload of the namespace, "
	     "as Istio does without a selector\n",
	 true},
	{BAD "ap-ipblocks.yaml",
	 BAD "ap-ipblocks.yaml:10:34: AuthorizationPolicy/foo/ips: error: "
	     "spec.rules[0].from[0].source.ipBlocks[1]: '10.0.0.300' is not an IP address or "
	     "CIDR block\n" BAD "ap-ipblocks.yaml:11:26: AuthorizationPolicy/foo/ips: error: "
	     "spec.rules[0].from[0].source.remoteIpBlocks[0]: '10.0.0.0/33' is not an IP "
	     "address or CIDR block\n"},
	{BAD "ap-ports.yaml",
	 BAD "ap-ports.yaml:10:23: AuthorizationPolicy/foo/ports: error: "
	     "spec.rules[0].to[0].operation.ports[1]: 0 is out of range 1-65535\n" BAD
	     "ap-ports.yaml:11:20: AuthorizationPolicy/foo/ports: error: "
	     "spec.rules[0].to[0].operation.notPorts[0]: 65536 is out of range 1-65535\n"},
	{BAD "ap-custom-no-provider.yaml",
	 BAD "ap-custom-no-provider.yaml:7:11: AuthorizationPolicy/foo/ext: error: "
	     "spec.provider: required when action is CUSTOM\n"},
	{BAD "ap-deny-no-rules.yaml",
	 BAD "ap-deny-no-rules.yaml:7:11: AuthorizationPolicy/foo/deny-nothing: warning: "
	     "spec.rules: a DENY policy without rules matches nothing and denies no request (to "
	     "deny all, use an ALLOW policy with no rules)\n",
	 true},
	{BAD "ap-action.yaml",
	 BAD "ap-action.yaml:7:11: AuthorizationPolicy/foo/action: error: spec.action: unknown "
	     "value 'ALOW' (expected ALLOW, DENY, AUDIT or CUSTOM)\n"},
	{BAD "ap-request-principals.yaml",
	 BAD "ap-request-principals.yaml:10:38: AuthorizationPolicy/foo/principals: error: "
	     "spec.rules[0].from[0].source.requestPrincipals[1]: 'https://a*/b': '*' is only "
	     "supported as a prefix, a suffix or the whole value\n" BAD
	     "ap-request-principals.yaml:10:54: AuthorizationPolicy/foo/principals: warning: "
	     "spec.rules[0].from[0].source.requestPrincipals[2]: 'alice' never matches: a "
	     "request principal is <issuer>/<subject>\n"},
	{BAD "ap-when.yaml",
	 BAD "ap-when.yaml:9:12: AuthorizationPolicy/foo/when: error: spec.rules[0].when[0].key: "
	     "unknown attribute 'request.header[x]' (see "
	     "https://istio.io/latest/docs/reference/config/security/conditions/)\n" BAD
	     "ap-when.yaml:11:7: AuthorizationPolicy/foo/when: error: spec.rules[0].when[1]: at "
	     "least one of values or notValues must be set\n" BAD
	     "ap-when.yaml:13:16: AuthorizationPolicy/foo/when: error: "
	     "spec.rules[0].when[2].values[0]: 99999 is out of range 1-65535\n"},
	{BAD "ap-empty-source.yaml",
	 BAD "ap-empty-source.yaml:9:15: AuthorizationPolicy/foo/empty-source: error: "
	     "spec.rules[0].from[0].source: must not be empty\n" BAD
	     "ap-empty-source.yaml:10:9: AuthorizationPolicy/foo/empty-source: error: "
	     "spec.rules[0].to: must not be empty\n"},
	{BAD "ap-provider-allow.yaml",
	 BAD "ap-provider-allow.yaml:8:5: AuthorizationPolicy/foo/provider: error: spec.provider: "
	     "only allowed when action is CUSTOM\n"},
	{BAD "ap-wrong-type.yaml",
	 BAD "ap-wrong-type.yaml:10:21: AuthorizationPolicy/foo/wrong-type: error: "
	     "spec.rules[0].from[0].source.principals: wrong type: expected a sequence, got "
	     "'cluster.local/ns/a/sa/b'\n"},
	/* A misspelt field warns; a source left with none would widen an ALLOW. */
	{BAD "ap-unknown-field.yaml",
	 BAD "ap-unknown-field.yaml:10:9: AuthorizationPolicy/foo/typo: warning: unknown field "
	     "'spec.rules[0].from[0].source.principal'\n" BAD
	     "ap-unknown-field.yaml:10:9: AuthorizationPolicy/foo/typo: error: "
	     "spec.rules[0].from[0].source: no known field: as written it would match every "
	     "request\n" BAD "ap-unknown-field.yaml:14:9: AuthorizationPolicy/foo/typo: warning: "
	     "unknown field 'spec.rules[0].to[0].operation.method'\n"},
	{BAD "ap-target-ref.yaml",
	 BAD "ap-target-ref.yaml:8:5: AuthorizationPolicy/foo/waypoint: warning: field "
	     "'spec.targetRef' is not implemented yet; ignored\n",
	 true},
	{BAD "ra-no-issuer.yaml",
	 BAD "ra-no-issuer.yaml:8:5: RequestAuthentication/foo/no-issuer: error: "
	     "spec.jwtRules[0].issuer: required field is missing\n"},
	{BAD "ra-both-jwks.yaml",
	 BAD "ra-both-jwks.yaml:9:14: RequestAuthentication/foo/both: warning: "
	     "spec.jwtRules[0].jwksUri: ignored: jwks is set too, and the inline jwks wins, as in "
	     "Istio\n",
	 true},
	{BAD "ra-jwks-uri.yaml",
	 BAD "ra-jwks-uri.yaml:9:14: RequestAuthentication/foo/uri: error: "
	     "spec.jwtRules[0].jwksUri: 'ftp://a.example.com/jwks' is not an http:// or https:// "
	     "URL\n" BAD "ra-jwks-uri.yaml:11:7: RequestAuthentication/foo/uri: error: "
	     "spec.jwtRules[0].fromHeaders[0].name: required field is missing\n"},
	{BAD "tel-sampling.yaml",
	 BAD "tel-sampling.yaml:8:31: Telemetry/foo/sampling: error: "
	     "spec.tracing[0].randomSamplingPercentage: 150 is out of range 0-100\n" BAD
	     "tel-sampling.yaml:9:31: Telemetry/foo/sampling: error: "
	     "spec.tracing[1].randomSamplingPercentage: wrong type: expected a number, got "
	     "'ten'\n"},
	{BAD "tel-mode.yaml",
	 BAD "tel-mode.yaml:9:13: Telemetry/foo/mode: error: spec.accessLogging[0].match.mode: "
	     "unknown value 'BOTH' (expected CLIENT_AND_SERVER, CLIENT or SERVER)\n"},
	{BAD "tel-tag-overrides.yaml",
	 BAD "tel-tag-overrides.yaml:9:5: Telemetry/foo/tags: warning: field "
	     "'spec.metrics[0].overrides' is not implemented yet; ignored\n" BAD
	     "tel-tag-overrides.yaml:13:11: Telemetry/foo/tags: error: "
	     "spec.metrics[0].overrides[0].tagOverrides.request_host.value: required when "
	     "operation is UPSERT\n" BAD "tel-tag-overrides.yaml:16:18: Telemetry/foo/tags: "
	     "error: spec.metrics[0].overrides[0].tagOverrides.response_code.value: must be empty "
	     "when operation is REMOVE\n"},
	{BAD "tel-filter.yaml",
	 BAD "tel-filter.yaml:9:13: Telemetry/foo/filter: warning: "
	     "spec.accessLogging[0].providers[0].name: provider 'otel' is not implemented yet "
	     "(ringside has 'envoy'); ignored\n" BAD "tel-filter.yaml:11:19: Telemetry/foo/filter: "
	     "warning: field 'spec.accessLogging[0].filter.expression' is not implemented yet; "
	     "every request is logged\n",
	 true},
};

static void test_broken(void **state)
{
	const struct broken *b = *state;
	struct rs_config *cfg;
	size_t n;
	struct loaded l;

	LOAD(&l, b->file);
	cfg = l.cfg;
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, b->out);
	n = cfg->n_peer_authentications + cfg->n_authorization_policies +
	    cfg->n_request_authentications + cfg->n_telemetries;
	assert_int_equal(n, b->loads ? 1 : 0);
	assert_int_equal(l.diags.errors == 0, b->loads);
	unload(&l);
}

int main(void)
{
	enum { NFIXED = 7, NBROKEN = sizeof broken / sizeof broken[0] };
	struct CMUnitTest tests[NFIXED + NBROKEN] = {
		cmocka_unit_test(test_mission_config_has_no_errors),
		cmocka_unit_test(test_mission_mesh_strict_mtls),
		cmocka_unit_test(test_mission_reviews_authorization),
		cmocka_unit_test(test_mission_api_jwt),
		cmocka_unit_test(test_mission_telemetry),
		cmocka_unit_test(test_valid_fields),
		cmocka_unit_test(test_broken_rejected_alone),
	};

	/* One test per broken input, named by its file. */
	for (size_t i = 0; i < NBROKEN; i++) {
		tests[NFIXED + i].name = broken[i].file;
		tests[NFIXED + i].test_func = test_broken;
		tests[NFIXED + i].initial_state = (void *)&broken[i];
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
