/* The networking kinds: parsing into the typed model, and every problem reported
 * with its position. Runs from this folder (meson's workdir), so fixtures are
 * data/networking/... */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ringside/config-networking-t.h"
#include "ringside/config.h"
#include "harness.h"

/* full.yaml sets every field; the one the data path does not act on is named. */
#define FULL_WARNINGS                                                                              \
	"data/networking/full.yaml:62:7: VirtualService/prod/shop: warning: field "                \
	"'spec.http[0].retries.retryRemoteLocalities' is not implemented yet; ignored\n"

#define SEC  1000000000ull
#define MSEC 1000000ull

/* Loads one of the mission's files, or skips when the shared folder is absent. */
static void load_mission(struct loaded *l, const char *name)
{
	if (!load_mission_file(l, name))
		skip();
	assert_int_equal(l->rc, 0);
}

static const char *label(const struct rs_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(kv[i].key, key) == 0)
			return kv[i].value;
	}
	return NULL;
}

/* 01: beta users (header x-user-type exact beta) go to subset v2, the rest to v1. */
static void test_mission_header_routing(void **state)
{
	const struct rs_virtual_service *vs;
	const struct rs_destination_rule *dr;
	const struct rs_vs_match *m;
	struct loaded l;

	(void)state;
	load_mission(&l, "01-reviews-header-routing.yaml");
	assert_string_equal(l.out, "");
	assert_int_equal(l.cfg->n_virtual_services, 1);
	vs = &l.cfg->virtual_services[0];
	assert_string_equal(vs->name, "reviews");
	assert_string_equal(vs->ns, "default");
	assert_int_equal(vs->pos.line, 2);
	assert_int_equal(vs->nhosts, 1);
	assert_string_equal(vs->hosts[0], "reviews");
	assert_string_equal(vs->hosts_fqdn[0], "reviews.default.svc.cluster.local");
	assert_int_equal(vs->nhttp, 2);

	assert_int_equal(vs->http[0].nmatch, 1);
	m = &vs->http[0].match[0];
	assert_int_equal(m->uri.kind, RS_SM_NONE);
	assert_int_equal(m->nheaders, 1);
	assert_string_equal(m->headers[0].name, "x-user-type");
	assert_int_equal(m->headers[0].match.kind, RS_SM_EXACT);
	assert_string_equal(m->headers[0].match.value, "beta");
	assert_int_equal(vs->http[0].nroute, 1);
	assert_string_equal(vs->http[0].route[0].dest.host, "reviews");
	assert_string_equal(vs->http[0].route[0].dest.host_fqdn,
	                    "reviews.default.svc.cluster.local");
	assert_string_equal(vs->http[0].route[0].dest.subset, "v2");
	assert_int_equal(vs->http[0].route[0].weight, 100);
	assert_false(vs->http[0].route[0].weight_set);
	assert_false(vs->http[0].timeout.set);
	assert_false(vs->http[0].retries.set);

	assert_int_equal(vs->http[1].nmatch, 0);
	assert_int_equal(vs->http[1].nroute, 1);
	assert_string_equal(vs->http[1].route[0].dest.subset, "v1");
	assert_int_equal(vs->http[1].route[0].weight, 100);

	assert_int_equal(l.cfg->n_destination_rules, 1);
	dr = &l.cfg->destination_rules[0];
	assert_string_equal(dr->host, "reviews");
	assert_string_equal(dr->host_fqdn, "reviews.default.svc.cluster.local");
	assert_false(dr->traffic_policy.set);
	assert_int_equal(dr->nsubsets, 2);
	assert_string_equal(dr->subsets[0].name, "v1");
	assert_string_equal(label(dr->subsets[0].labels, dr->subsets[0].nlabels, "version"), "v1");
	assert_string_equal(dr->subsets[1].name, "v2");
	assert_string_equal(label(dr->subsets[1].labels, dr->subsets[1].nlabels, "version"), "v2");
	unload(&l);
}

/* 02: a 90/10 canary split. */
static void test_mission_canary_split(void **state)
{
	const struct rs_vs_http_route *h;
	struct loaded l;

	(void)state;
	load_mission(&l, "02-api-canary-split.yaml");
	assert_string_equal(l.out, "");
	assert_int_equal(l.cfg->n_virtual_services, 1);
	assert_string_equal(l.cfg->virtual_services[0].hosts_fqdn[0],
	                    "api.default.svc.cluster.local");
	h = &l.cfg->virtual_services[0].http[0];
	assert_int_equal(h->nroute, 2);
	assert_string_equal(h->route[0].dest.host_fqdn, "api.default.svc.cluster.local");
	assert_string_equal(h->route[0].dest.subset, "v1");
	assert_int_equal(h->route[0].weight, 90);
	assert_true(h->route[0].weight_set);
	assert_string_equal(h->route[1].dest.subset, "v2");
	assert_int_equal(h->route[1].weight, 10);
	unload(&l);
}

/* 03: timeout 10s, three retries of 3s each on the listed conditions. */
static void test_mission_retries_timeouts(void **state)
{
	const struct rs_vs_http_route *h;
	struct loaded l;

	(void)state;
	load_mission(&l, "03-ratings-retries-timeouts.yaml");
	assert_string_equal(l.out, "");
	h = &l.cfg->virtual_services[0].http[0];
	assert_string_equal(h->route[0].dest.host_fqdn, "ratings.default.svc.cluster.local");
	assert_null(h->route[0].dest.subset);
	assert_int_equal(h->route[0].weight, 100);
	assert_true(h->timeout.set);
	assert_int_equal(h->timeout.ns, 10 * SEC);
	assert_true(h->retries.set);
	assert_int_equal(h->retries.attempts, 3);
	assert_true(h->retries.per_try_timeout.set);
	assert_int_equal(h->retries.per_try_timeout.ns, 3 * SEC);
	assert_string_equal(h->retries.retry_on, "connect-failure,refused-stream,503");
	unload(&l);
}

/* 04: connection pool limits and outlier detection. */
static void test_mission_circuit_breaking(void **state)
{
	const struct rs_traffic_policy *tp;
	struct loaded l;

	(void)state;
	load_mission(&l, "04-reviews-circuit-breaking.yaml");
	assert_string_equal(l.out, "");
	assert_int_equal(l.cfg->n_destination_rules, 1);
	assert_string_equal(l.cfg->destination_rules[0].host_fqdn,
	                    "reviews.default.svc.cluster.local");
	tp = &l.cfg->destination_rules[0].traffic_policy;
	assert_true(tp->set);
	assert_false(tp->load_balancer.set);
	assert_true(tp->connection_pool.set);
	assert_true(tp->connection_pool.max_connections.set);
	assert_int_equal(tp->connection_pool.max_connections.v, 100);
	assert_false(tp->connection_pool.connect_timeout.set);
	assert_int_equal(tp->connection_pool.h2_upgrade_policy, RS_H2_UPGRADE_UPGRADE);
	assert_int_equal(tp->connection_pool.http1_max_pending_requests.v, 100);
	assert_int_equal(tp->connection_pool.http2_max_requests.v, 1000);
	assert_false(tp->connection_pool.max_retries.set);
	assert_true(tp->outlier_detection.set);
	assert_true(tp->outlier_detection.consecutive_5xx_errors.set);
	assert_int_equal(tp->outlier_detection.consecutive_5xx_errors.v, 5);
	assert_false(tp->outlier_detection.consecutive_gateway_errors.set);
	assert_int_equal(tp->outlier_detection.interval.ns, 30 * SEC);
	assert_int_equal(tp->outlier_detection.base_ejection_time.ns, 30 * SEC);
	assert_int_equal(tp->outlier_detection.max_ejection_percent.v, 100);
	assert_false(tp->outlier_detection.min_health_percent.set);
	unload(&l);
}

/* Both DestinationRules named default/reviews (01 and 04) load side by side. */
static void test_same_name_in_two_files(void **state)
{
	const char *dir = getenv("RINGSIDE_MISSION_CONFIG");
	char a[4096], b[4096];
	const char *paths[] = {a, b};
	struct rs_diags diags = {0};
	struct rs_config *cfg = NULL;

	(void)state;
	if (!dir)
		skip();
	snprintf(a, sizeof a, "%s/01-reviews-header-routing.yaml", dir);
	snprintf(b, sizeof b, "%s/04-reviews-circuit-breaking.yaml", dir);
	if (rs_config_load(paths, 2, &cfg, &diags) == -ENOENT) {
		rs_diags_free(&diags);
		skip();
	}
	assert_int_equal(diags.n, 0);
	assert_int_equal(cfg->n_destination_rules, 2);
	assert_int_equal(cfg->destination_rules[0].nsubsets, 2);
	assert_true(cfg->destination_rules[1].traffic_policy.connection_pool.set);
	rs_config_free(cfg);
	rs_diags_free(&diags);
}

/* Within one file the same name twice is a mistake: the first is kept. */
static void test_same_name_in_one_file(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/networking/dr-twice.yaml");
	assert_string_equal(l.out, "data/networking/dr-twice.yaml:8:1: DestinationRule/prod/twice: "
	                           "error: already defined at data/networking/dr-twice.yaml:1:1\n");
	assert_int_equal(l.cfg->n_destination_rules, 1);
	assert_string_equal(l.cfg->destination_rules[0].host, "a");
	unload(&l);
}

/* Every field read from a valid resource lands where it should. */
static void test_full_virtual_service(void **state)
{
	const struct rs_virtual_service *vs;
	const struct rs_vs_http_route *h;
	const struct rs_vs_match *m;
	struct loaded l;

	(void)state;
	LOAD(&l, "data/networking/full.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, FULL_WARNINGS);
	assert_int_equal(l.cfg->n_virtual_services, 1);
	vs = &l.cfg->virtual_services[0];
	assert_int_equal(vs->nhosts, 3);
	assert_string_equal(vs->hosts_fqdn[0], "shop.prod.svc.cluster.local");
	assert_string_equal(vs->hosts_fqdn[1], "shop.example.com");
	assert_string_equal(vs->hosts_fqdn[2], "*.shop.example.com");
	assert_int_equal(vs->ngateways, 1);
	assert_string_equal(vs->gateways[0], "mesh");
	assert_int_equal(vs->nhttp, 3);

	h = &vs->http[0];
	assert_string_equal(h->name, "canary");
	assert_int_equal(h->pos.line, 14);
	assert_int_equal(h->pos.col, 5);
	assert_int_equal(h->nmatch, 2);
	m = &h->match[0];
	assert_string_equal(m->name, "beta");
	assert_int_equal(m->uri.kind, RS_SM_PREFIX);
	assert_string_equal(m->uri.value, "/api/");
	assert_int_equal(m->method.kind, RS_SM_EXACT);
	assert_string_equal(m->method.value, "GET");
	assert_int_equal(m->authority.kind, RS_SM_REGEX);
	assert_string_equal(m->authority.value, "shop(\\.example\\.com)?");
	assert_int_equal(m->nheaders, 2);
	assert_string_equal(m->headers[0].name, "x-canary"); /* lower-cased */
	assert_int_equal(m->headers[0].match.kind, RS_SM_PRESENT);
	assert_null(m->headers[0].match.value);
	assert_int_equal(m->headers[1].match.kind, RS_SM_REGEX);
	assert_int_equal(m->nwithout_headers, 1);
	assert_string_equal(m->without_headers[0].name, "x-debug");
	assert_string_equal(m->without_headers[0].match.value, "1");
	assert_int_equal(m->nquery_params, 1);
	assert_string_equal(m->query_params[0].name, "v");
	assert_int_equal(m->query_params[0].match.kind, RS_SM_EXACT);
	assert_int_equal(m->port, 8080);
	assert_string_equal(label(m->source_labels, m->nsource_labels, "app"), "web");
	assert_true(m->ignore_uri_case);
	assert_string_equal(m->source_namespace, "front");
	assert_int_equal(h->match[1].scheme.kind, RS_SM_EXACT);
	assert_string_equal(h->match[1].scheme.value, "https");

	assert_int_equal(h->nroute, 2);
	assert_int_equal(h->route[0].dest.port, 8080);
	assert_int_equal(h->route[0].weight, 25);
	assert_string_equal(h->route[0].headers.request.set[0].key, "x-route");
	assert_string_equal(h->route[1].dest.host_fqdn, "shop.other");
	assert_int_equal(h->route[1].weight, 75);
	assert_true(h->rewrite.set);
	assert_string_equal(h->rewrite.uri, "/v2/");
	assert_string_equal(h->rewrite.authority, "shop-v2");
	assert_int_equal(h->timeout.ns, 5400 * SEC);
	assert_int_equal(h->retries.attempts, 2);
	assert_int_equal(h->retries.per_try_timeout.ns, 1500 * MSEC);
	assert_true(h->retries.retry_remote_localities);
	assert_true(h->fault.delay_set);
	assert_int_equal(h->fault.fixed_delay_ns, 250 * MSEC);
	assert_true(h->fault.delay_percentage.set);
	assert_true(h->fault.delay_percentage.v == 12.5);
	assert_true(h->fault.abort_set);
	assert_int_equal(h->fault.abort_http_status, 503);
	assert_false(h->fault.abort_percentage.set);
	assert_true(h->mirror_set);
	assert_string_equal(h->mirror.host_fqdn, "shadow.prod.svc.cluster.local");
	assert_true(h->mirror_percentage.v == 5);
	assert_string_equal(h->headers.request.add[0].value, "1");
	assert_string_equal(h->headers.request.remove[0], "x-b");
	assert_string_equal(h->headers.response.set[0].key, "x-c");

	assert_true(vs->http[1].redirect.set);
	assert_string_equal(vs->http[1].redirect.uri, "/new");
	assert_int_equal(vs->http[1].redirect.redirect_code, 308);
	assert_int_equal(vs->http[1].nroute, 0);
	assert_true(vs->http[2].direct_response.set);
	assert_int_equal(vs->http[2].direct_response.status, 404);
	assert_string_equal(vs->http[2].direct_response.body, "not here");
	unload(&l);
}

static void test_full_destination_rule(void **state)
{
	const struct rs_destination_rule *dr;
	const struct rs_traffic_policy *tp;
	struct loaded l;

	(void)state;
	LOAD(&l, "data/networking/full.yaml");
	assert_string_equal(l.out, FULL_WARNINGS);
	assert_int_equal(l.cfg->n_destination_rules, 1);
	dr = &l.cfg->destination_rules[0];
	assert_string_equal(dr->host_fqdn, "shop.prod.svc.cluster.local");
	tp = &dr->traffic_policy;
	assert_true(tp->load_balancer.consistent_hash);
	assert_int_equal(tp->load_balancer.simple, RS_LB_UNSPECIFIED);
	assert_int_equal(tp->load_balancer.hash_key, RS_LB_HASH_COOKIE);
	assert_string_equal(tp->load_balancer.cookie_name, "session");
	assert_string_equal(tp->load_balancer.cookie_path, "/");
	assert_true(tp->load_balancer.cookie_ttl.set);
	assert_int_equal(tp->load_balancer.cookie_ttl.ns, 0);
	assert_int_equal(tp->load_balancer.hash_algo, RS_LB_HASH_MAGLEV);
	assert_int_equal(tp->load_balancer.maglev_table_size, 65537);
	assert_int_equal(tp->connection_pool.max_connections.v, 10);
	assert_int_equal(tp->connection_pool.connect_timeout.ns, 250 * MSEC);
	assert_true(tp->connection_pool.tcp_keepalive.set);
	assert_int_equal(tp->connection_pool.tcp_keepalive.probes.v, 3);
	assert_int_equal(tp->connection_pool.tcp_keepalive.time.ns, 7200 * SEC);
	assert_int_equal(tp->connection_pool.tcp_keepalive.interval.ns, 75 * SEC);
	assert_int_equal(tp->connection_pool.max_requests_per_connection.v, 1);
	assert_true(tp->connection_pool.max_retries.set);
	assert_int_equal(tp->connection_pool.max_retries.v, 0);
	assert_int_equal(tp->connection_pool.idle_timeout.ns, 60 * SEC);
	assert_int_equal(tp->connection_pool.h2_upgrade_policy, RS_H2_UPGRADE_DO_NOT_UPGRADE);
	assert_int_equal(tp->outlier_detection.consecutive_gateway_errors.v, 2);
	assert_int_equal(tp->outlier_detection.min_health_percent.v, 50);
	assert_int_equal(tp->tls.mode, RS_TLS_SIMPLE);
	assert_string_equal(tp->tls.sni, "shop.example.com");
	assert_int_equal(tp->tls.nsubject_alt_names, 1);
	assert_int_equal(tp->nport_level_settings, 1);
	assert_int_equal(tp->port_level_settings[0].port, 8080);
	assert_int_equal(tp->port_level_settings[0].load_balancer.simple, RS_LB_LEAST_REQUEST);
	assert_int_equal(dr->nsubsets, 1);
	assert_int_equal(dr->subsets[0].traffic_policy.load_balancer.hash_key,
	                 RS_LB_HASH_SOURCE_IP);
	assert_int_equal(dr->subsets[0].traffic_policy.load_balancer.hash_algo, RS_LB_HASH_RING);
	assert_int_equal(dr->subsets[0].traffic_policy.load_balancer.minimum_ring_size, 1024);
	unload(&l);
}

/* Fields parsed but not acted on yet, and unknown ones, are warnings in the
 * order written; the resource still loads. */
static void test_warnings(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/networking/vs-warnings.yaml");
	assert_string_equal(
	    l.out, "data/networking/vs-warnings.yaml:14:3: VirtualService/prod/not-impl: warning: "
	           "field 'spec.tcp' is not implemented yet; ignored\n"
	           "data/networking/vs-warnings.yaml:11:5: VirtualService/prod/not-impl: warning: "
	           "field 'spec.http[0].corsPolicy' is not implemented yet; ignored\n"
	           "data/networking/vs-warnings.yaml:13:5: VirtualService/prod/not-impl: warning: "
	           "unknown field 'spec.http[0].colour'\n");
	assert_int_equal(l.diags.errors, 0);
	assert_int_equal(l.cfg->n_virtual_services, 1);
	assert_true(l.cfg->virtual_services[0].has_tcp);
	assert_true(l.cfg->virtual_services[0].http[0].has_cors_policy);
	unload(&l);
}

/* RE2 syntax that Istio accepts loads, as written: flags, \d, non-capturing
 * and named groups, Unicode classes. \pL+ compiles to a program of 1197,
 * over Envoy's default limit of 100 but under the 32768 Istio's sidecars run
 * with. */
static void test_regex_re2(void **state)
{
	const struct rs_vs_match *m;
	struct loaded l;

	(void)state;
	LOAD(&l, "data/networking/vs-regex-re2.yaml");
	assert_string_equal(l.out, "");
	assert_int_equal(l.cfg->n_virtual_services, 1);
	m = &l.cfg->virtual_services[0].http[0].match[0];
	assert_int_equal(m->uri.kind, RS_SM_REGEX);
	assert_string_equal(m->uri.value, "(?i)/api/v\\d+/(?:users|groups)/.*");
	assert_int_equal(m->authority.kind, RS_SM_REGEX);
	assert_string_equal(m->authority.value, "(?P<shop>[a-z]+)\\.example\\.com");
	assert_int_equal(m->nheaders, 1);
	assert_int_equal(m->headers[0].match.kind, RS_SM_REGEX);
	assert_string_equal(m->headers[0].match.value, "\\pL+");
	unload(&l);
}

/* One broken resource is rejected alone; the one before it loads. */
static void test_one_rejected(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/networking/vs-one-rejected.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "data/networking/vs-one-rejected.yaml:22:14: "
	                           "VirtualService/prod/broken: error: spec.http[0].timeout: "
	                           "'soon' is not a duration (such as 10s, 250ms or 1h30m)\n");
	assert_int_equal(l.cfg->n_virtual_services, 1);
	assert_string_equal(l.cfg->virtual_services[0].name, "good");
	unload(&l);
}

static void test_workload_entry_and_sidecar(void **state)
{
	const struct rs_workload_entry *we;
	const struct rs_sidecar *sc;
	struct loaded l;

	(void)state;
	LOAD(&l, "data/networking/we-sidecar.yaml");
	assert_string_equal(l.out, "");
	assert_int_equal(l.cfg->n_workload_entries, 1);
	we = &l.cfg->workload_entries[0];
	assert_string_equal(we->address, "10.0.0.7");
	assert_int_equal(we->nports, 1);
	assert_string_equal(we->ports[0].name, "http");
	assert_int_equal(we->ports[0].number, 8080);
	assert_string_equal(label(we->labels, we->nlabels, "version"), "v3");
	assert_string_equal(we->network, "vpc1");
	assert_string_equal(we->locality, "us-east1/us-east1-b");
	assert_int_equal(we->weight, 5);
	assert_string_equal(we->service_account, "ratings");

	assert_int_equal(l.cfg->n_sidecars, 1);
	sc = &l.cfg->sidecars[0];
	assert_true(sc->has_workload_selector);
	assert_string_equal(label(sc->workload_selector, sc->nworkload_selector, "app"), "ratings");
	assert_int_equal(sc->ningress, 1);
	assert_int_equal(sc->ingress[0].port.number, 9080);
	assert_string_equal(sc->ingress[0].port.protocol, "HTTP");
	assert_string_equal(sc->ingress[0].default_endpoint, "127.0.0.1:8080");
	assert_int_equal(sc->ingress[0].capture_mode, RS_CAPTURE_IPTABLES);
	assert_int_equal(sc->negress, 2);
	assert_true(sc->egress[0].has_port);
	assert_int_equal(sc->egress[0].port.number, 3306);
	assert_string_equal(sc->egress[0].hosts[0], "data/mysql.example.com");
	assert_false(sc->egress[1].has_port);
	assert_int_equal(sc->egress[1].nhosts, 2);
	assert_string_equal(sc->egress[1].hosts[1], "istio-system/*");
	assert_int_equal(sc->outbound_mode, RS_OUTBOUND_REGISTRY_ONLY);
	unload(&l);
}

struct broken {
	const char *file; /* under data/networking/ */
	const char *out;  /* everything printed, with the file name left out of each line */
};

#define VS(name) "VirtualService/prod/" name ": error: "
#define DR(name) "DestinationRule/prod/" name ": error: "

static const struct broken broken[] = {
    {"vs-weight-sum.yaml",
     "13:15: " VS("bad-weights") "spec.http[0].route[1].weight: the weights of 2 destinations "
                                 "add up to 110, not 100\n"},
    {"vs-weight-missing.yaml",
     "12:7: " VS("missing-weight") "spec.http[0].route[1].weight: the weights of 2 "
                                   "destinations add up to 90, not 100\n"},
    {"vs-weight-range.yaml",
     "11:15: " VS("big-weight") "spec.http[0].route[0].weight: 101 is out of range 0-100\n"},
    {"vs-timeout.yaml",
     "11:14: " VS("bad-timeout") "spec.http[0].timeout: '10 seconds' is not a duration (such "
                                 "as 10s, 250ms or 1h30m)\n"},
    {"vs-retries.yaml",
     "12:17: " VS("bad-retries") "spec.http[0].retries.attempts: -1 is out of range "
                                 "0-2147483647\n"
                                 "13:22: " VS("bad-retries") "spec.http[0].retries.perTryTimeout: "
                                                             "'3x' is not a duration "
                                                             "(such as 10s, 250ms or 1h30m)\n"},
    {"vs-regex.yaml",
     "11:16: " VS("bad-regex") "spec.http[0].match[0].uri.regex: invalid regex '/api/(v1': "
                               "missing ): /api/(v1\n"
                               "17:18: " VS(
                                   "bad-regex") "spec.http[1].match[0].headers.x-a."
                                                "regex: invalid regex 'a(b': "
                                                "missing ): a(b\n"
                                                "19:18: " VS(
                                                    "bad-regex") "spec.http[1].match[0]."
                                                                 "headers.x-letters.regex: "
                                                                 "invalid regex "
                                                                 "'\\pL{30}': RE2 "
                                                                 "program size of 35794 > "
                                                                 "max program size of "
                                                                 "32768\n"},
    {"vs-string-match-oneof.yaml",
     "13:11: " VS("two-matches") "spec.http[0].match[0].headers.x-user-type: only one of "
                                 "exact, prefix or regex may be set (also 'exact' at 12:11)\n"},
    {"vs-destination-host.yaml",
     "11:9: " VS("no-host") "spec.http[0].route[0].destination.host: required field is "
                            "missing\n"},
    {"vs-hosts-missing.yaml", "7:3: " VS("no-hosts") "spec.hosts: required field is missing\n"},
    {"vs-no-action.yaml",
     "9:5: " VS("no-action") "spec.http[0]: one of route, redirect or directResponse is "
                             "required\n"},
    {"vs-two-actions.yaml",
     "9:5: " VS("two-actions") "spec.http[0]: only one of route, redirect or directResponse "
                               "may be set\n"},
    {"vs-fault-percentage.yaml",
     "15:18: " VS("fault-pct") "spec.http[0].fault.abort.percentage.value: '150' is not a "
                               "percentage in 0-100\n"},
    {"vs-port-range.yaml",
     "13:19: " VS("port-range") "spec.http[0].route[0].destination.port.number: 70000 is out "
                                "of range 1-65535\n"},
    {"vs-query-prefix.yaml",
     "12:11: " VS("query-prefix") "spec.http[0].match[0].queryParams.user.prefix: prefix "
                                  "matching is not supported here (Istio supports exact and "
                                  "regex only)\n"},
    {"dr-lb-enum.yaml",
     "10:15: " DR("bad-lb") "spec.trafficPolicy.loadBalancer.simple: unknown value 'FASTEST' "
                            "(expected UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, "
                            "ROUND_ROBIN or LEAST_REQUEST)\n"},
    {"dr-pool.yaml",
     "11:25: " DR("bad-pool") "spec.trafficPolicy.connectionPool.tcp.maxConnections: wrong "
                              "type: expected an integer, got 'lots'\n"
                              "12:25: " DR("bad-pool") "spec.trafficPolicy.connectionPool.tcp."
                                                       "connectTimeout: must be "
                                                       "at least 1ms\n"},
    {"dr-outlier.yaml",
     "11:17: " DR("bad-outlier") "spec.trafficPolicy.outlierDetection.interval: '30' is not a "
                                 "duration (such as 10s, 250ms or 1h30m)\n"
                                 "12:27: " DR("bad-outlier") "spec.trafficPolicy.outlierDetection."
                                                             "maxEjectionPercent: 101 "
                                                             "is out of range 0-100\n"},
    {"dr-subset-duplicate.yaml",
     "11:11: " DR("dup-subset") "spec.subsets[1].name: subset 'v1' is already defined by "
                                "spec.subsets[0]\n"},
    {"dr-host-missing.yaml",
     "7:3: " DR("no-host") "spec.host: required field is missing\n"
                           "8:5: " DR(
                               "no-host") "spec.subsets[0].name: required field is missing\n"},
    {"dr-hash-oneof.yaml",
     "12:9: " DR("hash-oneof") "spec.trafficPolicy.loadBalancer.consistentHash: only one of "
                               "httpHeaderName, httpCookie, useSourceIp or "
                               "httpQueryParameterName may be set (also 'httpHeaderName' at "
                               "11:9)\n"},
    {"dr-port-level.yaml",
     "10:7: " DR(
         "port-level") "spec.trafficPolicy.portLevelSettings[0].port: required field "
                       "is missing\n"
                       "12:12: " DR(
                           "port-level") "spec.trafficPolicy.portLevelSettings[1].tls: mode MUTUAL "
                                         "requires clientCertificate and privateKey (or "
                                         "credentialName)\n"},
    {"vs-headers.yaml",
     "11:9: " VS(
         "bad-headers") "spec.http[0].match[0].headers.x user: 'x user' is not a valid "
                        "header name\n"
                        "12:9: " VS(
                            "bad-headers") "spec.http[0].match[0].headers.x-empty: cannot be null "
                                           "(write "
                                           "{} to match any value)\n"
                                           "14:18: " VS(
                                               "bad-headers") "spec.http[0].match[0].headers.x-ref."
                                                              "regex: invalid regex "
                                                              "'(a)\\1': invalid escape "
                                                              "sequence: \\1\n"
                                                              "17:15: " VS(
                                                                  "bad-headers") "spec.http[0]."
                                                                                 "route[0].weight: "
                                                                                 "a lone "
                                                                                 "destination's "
                                                                                 "weight "
                                                                                 "must be 100 or "
                                                                                 "left out, not "
                                                                                 "50\n"},
    {"we-address.yaml",
     "8:11: WorkloadEntry/prod/no-address: error: spec.ports.http: 0 is out of range "
     "1-65535\n"
     "7:3: WorkloadEntry/prod/no-address: error: spec.address: required field is missing "
     "(unless spec.network is set)\n"},
    {"sidecar-egress.yaml",
     "8:13: Sidecar/prod/bad-egress: error: spec.egress[0].hosts[0]: 'mysql.example.com' "
     "must be namespace/dnsName (such as './*' or 'istio-system/*')\n"
     "9:5: Sidecar/prod/bad-egress: error: spec.egress[1]: only one egress listener may "
     "leave out the port (spec.egress[0] already does)\n"
     "9:18: Sidecar/prod/bad-egress: error: spec.egress[1].captureMode: unknown value "
     "'SOMETIMES' (expected DEFAULT, IPTABLES or NONE)\n"},
    {"sidecar-empty.yaml", "6:7: Sidecar/prod/empty: error: spec: empty configuration provided\n"},
};

/* Each broken input is rejected with exactly its messages and positions. */
static void test_broken(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
		char path[256], *expected = NULL, *p;
		size_t size = 0;
		struct loaded l;
		FILE *f;

		snprintf(path, sizeof path, "data/networking/%s", broken[i].file);
		f = open_memstream(&expected, &size);
		assert_non_null(f);
		/* Each expected line gets the file name in front. */
		for (const char *line = broken[i].out; *line; line = strchr(line, '\n') + 1)
			fprintf(f, "%s:%.*s\n", path, (int)(strchr(line, '\n') - line), line);
		fclose(f);
		LOAD(&l, path);
		assert_int_equal(l.rc, 0);
		p = l.out;
		if (strcmp(p, expected) != 0)
			fprintf(stderr, "%s:\nexpected:\n%sgot:\n%s", path, expected, p);
		assert_string_equal(p, expected);
		assert_true(l.diags.errors > 0);
		assert_int_equal(l.cfg->n_virtual_services, 0);
		assert_int_equal(l.cfg->n_destination_rules, 0);
		assert_int_equal(l.cfg->n_workload_entries, 0);
		assert_int_equal(l.cfg->n_sidecars, 0);
		free(expected);
		unload(&l);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mission_config_has_no_errors),
	    cmocka_unit_test(test_mission_header_routing),
	    cmocka_unit_test(test_mission_canary_split),
	    cmocka_unit_test(test_mission_retries_timeouts),
	    cmocka_unit_test(test_mission_circuit_breaking),
	    cmocka_unit_test(test_same_name_in_two_files),
	    cmocka_unit_test(test_same_name_in_one_file),
	    cmocka_unit_test(test_full_virtual_service),
	    cmocka_unit_test(test_full_destination_rule),
	    cmocka_unit_test(test_warnings),
	    cmocka_unit_test(test_regex_re2),
	    cmocka_unit_test(test_one_rejected),
	    cmocka_unit_test(test_workload_entry_and_sidecar),
	    cmocka_unit_test(test_broken),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
