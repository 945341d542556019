/* Loading Istio YAML: what `ringside validate` and the proxy's log show for
 * each file, and what ends up in the typed model. Runs from this folder
 * (meson's workdir), so fixtures are data/... */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringside/config.h"
/* The module-private YAML layer, for the readers no kind uses yet. */
#include "../../../src/config/yaml.h"
#include "harness.h"

static const struct rs_service_entry *find_se(const struct rs_config *cfg, const char *ns,
					      const char *name)
{
	for (size_t i = 0; i < cfg->n_service_entries; i++) {
		const struct rs_service_entry *se = &cfg->service_entries[i];

		if (strcmp(se->ns, ns) == 0 && strcmp(se->name, name) == 0)
			return se;
	}
	return NULL;
}

static const char *label(const struct rs_se_endpoint *ep, const char *key)
{
	for (size_t i = 0; i < ep->nlabels; i++) {
		if (strcmp(ep->labels[i].key, key) == 0)
			return ep->labels[i].value;
	}
	return NULL;
}

static void test_valid_service_entry(void **state)
{
	const struct rs_service_entry *se;
	const struct rs_se_endpoint *ep;
	struct loaded l;

	(void)state;
	LOAD(&l, "data/valid.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "");
	assert_int_equal(l.diags.errors, 0);
	assert_int_equal(l.cfg->nfiles, 1);
	assert_string_equal(l.cfg->files[0].path, "data/valid.yaml");
	assert_int_equal(l.cfg->n_service_entries, 1);

	se = find_se(l.cfg, "bookinfo", "reviews");
	assert_non_null(se);
	assert_ptr_equal(se->pos.file, l.cfg->files[0].path);
	assert_int_equal(se->pos.line, 2);
	assert_int_equal(se->pos.col, 1);
	assert_int_equal(se->nhosts, 2);
	assert_string_equal(se->hosts[0], "reviews.bookinfo.svc.cluster.local");
	assert_string_equal(se->hosts[1], "*.reviews.example.com");
	assert_int_equal(se->naddresses, 2);
	assert_string_equal(se->addresses[0], "10.96.0.10");
	assert_string_equal(se->addresses[1], "2001:db8::/64");

	assert_int_equal(se->nports, 2);
	assert_int_equal(se->ports[0].number, 9080);
	assert_string_equal(se->ports[0].name, "http");
	assert_string_equal(se->ports[0].protocol, "HTTP");
	assert_int_equal(se->ports[0].target_port, 8080);
	assert_int_equal(se->ports[1].number, 9443); /* written quoted: "9443" */
	assert_string_equal(se->ports[1].name, "grpc");
	assert_string_equal(se->ports[1].protocol, "grpc"); /* kept as written */
	assert_int_equal(se->ports[1].target_port, 0);

	assert_int_equal(se->location, RS_SE_MESH_INTERNAL);
	assert_int_equal(se->resolution, RS_SE_RESOLUTION_STATIC);

	assert_int_equal(se->nendpoints, 3);
	ep = &se->endpoints[0];
	assert_string_equal(ep->address, "10.0.0.1");
	assert_int_equal(ep->pos.line, 27);
	assert_int_equal(ep->pos.col, 5);
	assert_int_equal(ep->nports, 1);
	assert_string_equal(ep->ports[0].name, "http");
	assert_int_equal(ep->ports[0].number, 8081);
	assert_int_equal(ep->nlabels, 2);
	assert_string_equal(label(ep, "version"), "v1");
	assert_string_equal(label(ep, "app"), "reviews");
	assert_string_equal(ep->network, "net1");
	assert_string_equal(ep->locality, "us-east1/us-east1-b");
	assert_int_equal(ep->weight, 3);
	assert_string_equal(ep->service_account, "reviews-sa");

	ep = &se->endpoints[1];
	assert_string_equal(ep->address, "2001:db8::2");
	assert_int_equal(ep->nports, 0);
	assert_string_equal(label(ep, "version"), "v2");
	assert_string_equal(label(ep, "empty"), ""); /* `empty:` is an empty value */
	assert_null(ep->network);
	assert_int_equal(ep->weight, 0);

	assert_string_equal(se->endpoints[2].address, "unix:///var/run/reviews.sock");
	unload(&l);
}

static void test_defaults(void **state)
{
	const struct rs_service_entry *se;
	struct loaded l;

	(void)state;
	LOAD(&l, "data/defaults.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "");
	se = find_se(l.cfg, "default", "httpbin");
	assert_non_null(se);
	assert_int_equal(se->location, RS_SE_MESH_EXTERNAL);
	assert_int_equal(se->resolution, RS_SE_RESOLUTION_NONE);
	assert_int_equal(se->naddresses, 0);
	assert_int_equal(se->nendpoints, 0);
	assert_null(se->ports[0].protocol);
	/* `namespace: ""` is the default namespace, as for kubectl. */
	assert_non_null(find_se(l.cfg, "default", "blank-namespace"));
	unload(&l);
}

static void test_multi_document(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/multi.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, ""); /* empty documents are skipped silently */
	assert_int_equal(l.cfg->n_service_entries, 2);
	assert_string_equal(l.cfg->service_entries[0].name, "first");
	assert_int_equal(l.cfg->service_entries[0].pos.line, 2);
	assert_string_equal(l.cfg->service_entries[1].name, "second");
	assert_string_equal(l.cfg->service_entries[1].ns, "ns2");
	assert_int_equal(l.cfg->service_entries[1].pos.line, 10);
	assert_int_equal(l.cfg->service_entries[1].resolution, RS_SE_RESOLUTION_DNS);
	unload(&l);
}

static void test_kind_list(void **state)
{
	const struct rs_service_entry *se;
	struct loaded l;

	(void)state;
	LOAD(&l, "data/list.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "");
	assert_int_equal(l.diags.errors, 0);
	assert_int_equal(l.cfg->n_virtual_services, 1);
	assert_int_equal(l.cfg->n_service_entries, 2);
	se = find_se(l.cfg, "prod", "one");
	assert_non_null(se);
	assert_int_equal(se->pos.line, 6);
	assert_int_equal(se->pos.col, 3);
	assert_int_equal(se->resolution, RS_SE_RESOLUTION_DNS_ROUND_ROBIN);
	assert_non_null(find_se(l.cfg, "prod", "two"));
	unload(&l);
}

static void test_anchors_and_aliases(void **state)
{
	const struct rs_service_entry *se;
	struct loaded l;

	(void)state;
	LOAD(&l, "data/alias.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "");
	se = find_se(l.cfg, "default", "second");
	assert_non_null(se);
	assert_int_equal(se->nhosts, 1);
	assert_string_equal(se->hosts[0], "shared.example.com");
	assert_int_equal(se->ports[0].number, 80);
	unload(&l);

	LOAD(&l, "data/bad/alias-unknown.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out,
			    "data/bad/alias-unknown.yaml:4:7: error: syntax error: unknown anchor 'nope'\n");
	unload(&l);
}

static void test_directory_recursive_sorted(void **state)
{
	struct loaded l;

	(void)state;
	/* b.yaml again by another name: read once. */
	LOAD(&l, "data/dir", "data/dir/b.yaml", "./data/dir/sub/../b.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "");
	/* Byte order, depth first; notes.txt and .hidden.yaml are not read. */
	assert_int_equal(l.cfg->nfiles, 3);
	assert_string_equal(l.cfg->files[0].path, "data/dir/a.yml");
	assert_string_equal(l.cfg->files[1].path, "data/dir/b.yaml");
	assert_string_equal(l.cfg->files[2].path, "data/dir/sub/c.yaml");
	assert_int_equal(l.cfg->n_service_entries, 3);
	assert_string_equal(l.cfg->service_entries[0].name, "a");
	assert_string_equal(l.cfg->service_entries[1].name, "b");
	assert_string_equal(l.cfg->service_entries[2].name, "c");
	assert_null(find_se(l.cfg, "default", "hidden"));
	unload(&l);
}

static void write_se(const char *dir, const char *file, const char *name)
{
	char path[PATH_MAX];
	FILE *f;

	assert_true(snprintf(path, sizeof path, "%s/%s", dir, file) < (int)sizeof path);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f,
		"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n"
		"  name: %s\nspec:\n  hosts: [%s.example.com]\n",
		name, name);
	fclose(f);
}

static void in_dir(char *buf, const char *dir, const char *name)
{
	assert_true(snprintf(buf, PATH_MAX, "%s/%s", dir, name) < PATH_MAX);
}

/* The layout kubelet writes for a ConfigMap volume: the data in a hidden
 * timestamped directory, `..data` pointing at it, and each key a visible
 * symlink through `..data`. An update writes a new directory and swaps the
 * `..data` link atomically. */
static void test_configmap_volume(void **state)
{
	char dir[] = "/tmp/rs-config-test-XXXXXX";
	char cur[PATH_MAX], old[PATH_MAX], p[PATH_MAX], want[PATH_MAX];
	const char *const links[] = {"se.yaml", "other.yaml"};
	struct loaded l;

	(void)state;
	assert_non_null(mkdtemp(dir));
	in_dir(cur, dir, "..2024_05_01_10_00_00.123456789");
	in_dir(old, dir, "..2024_04_01_10_00_00.987654321");
	assert_int_equal(mkdir(cur, 0755), 0);
	assert_int_equal(mkdir(old, 0755), 0);
	write_se(cur, "se.yaml", "se");
	write_se(cur, "other.yaml", "other");
	write_se(cur, "extra.yaml", "extra"); /* in ..data, with no visible link */
	write_se(old, "se.yaml", "stale");    /* the previous version: never read */
	in_dir(p, dir, "..data");
	assert_int_equal(symlink("..2024_05_01_10_00_00.123456789", p), 0);
	for (size_t i = 0; i < 2; i++) {
		char target[PATH_MAX];

		assert_true(snprintf(target, sizeof target, "..data/%s", links[i]) <
			    (int)sizeof target);
		in_dir(p, dir, links[i]);
		assert_int_equal(symlink(target, p), 0);
	}

	LOAD(&l, dir);
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "");
	/* Each file once, by its visible name; ..data only adds what no
	 * visible name covers. */
	assert_int_equal(l.cfg->nfiles, 3);
	in_dir(want, dir, "other.yaml");
	assert_string_equal(l.cfg->files[0].path, want);
	in_dir(want, dir, "se.yaml");
	assert_string_equal(l.cfg->files[1].path, want);
	in_dir(want, dir, "..data/extra.yaml");
	assert_string_equal(l.cfg->files[2].path, want);
	assert_int_equal(l.cfg->n_service_entries, 3);
	assert_non_null(find_se(l.cfg, "default", "se"));
	assert_non_null(find_se(l.cfg, "default", "other"));
	assert_non_null(find_se(l.cfg, "default", "extra"));
	assert_null(find_se(l.cfg, "default", "stale"));
	unload(&l);

	for (size_t i = 0; i < 2; i++) {
		in_dir(p, dir, links[i]);
		unlink(p);
	}
	in_dir(p, dir, "..data");
	unlink(p);
	in_dir(p, cur, "se.yaml");
	unlink(p);
	in_dir(p, cur, "other.yaml");
	unlink(p);
	in_dir(p, cur, "extra.yaml");
	unlink(p);
	in_dir(p, old, "se.yaml");
	unlink(p);
	rmdir(cur);
	rmdir(old);
	assert_int_equal(rmdir(dir), 0);
}

static void test_missing_path(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/valid.yaml", "data/nope.yaml");
	assert_int_equal(l.rc, -ENOENT);
	assert_null(l.cfg);
	assert_string_equal(l.out,
			    "data/nope.yaml: error: cannot read: No such file or directory\n");
	assert_int_equal(l.diags.errors, 1);
	unload(&l);
}

static void test_syntax_error(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/syntax.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "data/bad/syntax.yaml:13:14: error: syntax error: mapping "
				   "values are not allowed in this context\n");
	/* Documents before the error load; YAML cannot resume after one. */
	assert_int_equal(l.cfg->n_service_entries, 1);
	assert_string_equal(l.cfg->service_entries[0].name, "before-error");
	unload(&l);
}

static void test_invalid_utf8(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/utf8.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "data/bad/utf8.yaml:2:14: error: syntax error: invalid "
				   "leading UTF-8 octet #FF\n");
	unload(&l);
}

/* "Billion laughs": aliases are shared, and what they may add is capped. */
static void test_alias_expansion_limit(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/laughs.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "data/bad/laughs.yaml:7:40: error: syntax error: aliases "
				   "expand to more than 1048576 nodes\n");
	unload(&l);
}

/* Text quoted from the file cannot break the one-problem-a-line output or
 * send escape sequences to a terminal. */
static void test_control_characters_in_messages(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/control-chars.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "data/bad/control-chars.yaml:7:13: ServiceEntry/default/evil?[31m: "
				   "error: spec.location: unknown value 'MESH?EXTERNAL' (expected "
				   "MESH_EXTERNAL or MESH_INTERNAL)\n");
	unload(&l);
}

static void test_nesting_limit(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/deep.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out, "data/bad/deep.yaml:1:68: error: syntax error: nesting is "
				   "deeper than 64 levels\n");
	unload(&l);
}

static void test_port_out_of_range(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/range.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out,
			    "data/bad/range.yaml:10:13: ServiceEntry/default/big-port: error: "
			    "spec.ports[1].number: 70000 is out of range 1-65535\n"
			    "data/bad/range.yaml:12:17: ServiceEntry/default/big-port: error: "
			    "spec.ports[1].targetPort: -1 is out of range 1-65535\n");
	assert_int_equal(l.diags.errors, 2);
	assert_int_equal(l.cfg->n_service_entries, 0);
	unload(&l);
}

static void test_hosts_required(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/hosts.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(
		l.out,
		"data/bad/hosts.yaml:6:3: ServiceEntry/default/no-hosts: error: spec.hosts: "
		"required field is missing\n"
		"data/bad/hosts.yaml:14:10: ServiceEntry/default/empty-hosts: error: spec.hosts: "
		"must list at least one host\n"
		"data/bad/hosts.yaml:21:11: ServiceEntry/default/bad-hosts: error: spec.hosts[0]: "
		"must not be empty\n"
		"data/bad/hosts.yaml:21:15: ServiceEntry/default/bad-hosts: error: spec.hosts[1]: "
		"'*' is not allowed: name the hosts, or a wildcard domain such as "
		"'*.example.com'\n"
		"data/bad/hosts.yaml:23:1: ServiceEntry/default/no-spec: error: spec: required "
		"field is missing\n");
	assert_int_equal(l.cfg->n_service_entries, 0);
	unload(&l);
}

static void test_wrong_types(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/wrong-type.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(
		l.out,
		"data/bad/wrong-type.yaml:6:10: ServiceEntry/default/wrong-types: error: "
		"spec.hosts: wrong type: expected a sequence, got 'example.com'\n"
		"data/bad/wrong-type.yaml:8:5: ServiceEntry/default/wrong-types: error: "
		"spec.ports: wrong type: expected a sequence, got a mapping\n"
		"data/bad/wrong-type.yaml:11:14: ServiceEntry/default/wrong-types: error: "
		"spec.endpoints[0].address: wrong type: expected a string, got a sequence\n"
		"data/bad/wrong-type.yaml:13:13: ServiceEntry/default/wrong-types: error: "
		"spec.endpoints[0].labels: wrong type: expected a mapping, got a sequence\n"
		"data/bad/wrong-type.yaml:12:13: ServiceEntry/default/wrong-types: error: "
		"spec.endpoints[0].weight: wrong type: expected an integer, got 'heavy'\n");
	assert_int_equal(l.cfg->n_service_entries, 0);
	unload(&l);
}

static void test_duplicate_ports(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/duplicate-ports.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out,
			    "data/bad/duplicate-ports.yaml:10:13: ServiceEntry/default/dup-ports: "
			    "error: spec.ports[1].number: port 80 is already defined by "
			    "spec.ports[0]\n"
			    "data/bad/duplicate-ports.yaml:13:11: ServiceEntry/default/dup-ports: "
			    "error: spec.ports[2].name: port name 'http' is already used by "
			    "spec.ports[0]\n");
	assert_int_equal(l.cfg->n_service_entries, 0);
	unload(&l);
}

static void test_resolution_rules(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/static.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(
		l.out,
		"data/bad/static.yaml:10:14: ServiceEntry/default/static-names: error: "
		"spec.endpoints[1].address: 'backend.example.com' is not an IP address or "
		"unix:// path, as resolution STATIC requires\n"
		"data/bad/static.yaml:11:14: ServiceEntry/default/static-names: error: "
		"spec.endpoints[2].address: 'unix://relative.sock' must be unix:// followed by "
		"an absolute path\n"
		"data/bad/static.yaml:19:15: ServiceEntry/default/static-empty: error: "
		"spec.endpoints: required when resolution is STATIC\n"
		"data/bad/static.yaml:28:3: ServiceEntry/default/none-with-endpoints: error: "
		"spec.endpoints: must be empty when resolution is NONE\n"
		"data/bad/static.yaml:37:14: ServiceEntry/default/static-scalar: error: "
		"spec.endpoints: wrong type: expected a sequence, got '10.0.0.1'\n");
	assert_int_equal(l.cfg->n_service_entries, 0);
	unload(&l);
}

static void test_bad_enum_values(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/enum.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out,
			    "data/bad/enum.yaml:7:13: ServiceEntry/default/enums: error: "
			    "spec.location: unknown value 'MESH_OUTSIDE' (expected MESH_EXTERNAL "
			    "or MESH_INTERNAL)\n"
			    "data/bad/enum.yaml:8:15: ServiceEntry/default/enums: error: "
			    "spec.resolution: unknown value 'dns' (expected NONE, STATIC, DNS or "
			    "DNS_ROUND_ROBIN)\n");
	assert_int_equal(l.cfg->n_service_entries, 0);
	unload(&l);
}

static void test_kinds_and_api_versions(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/kinds.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(
		l.out,
		"data/bad/kinds.yaml:2:7: Deployment/default/web: error: unknown kind "
		"'Deployment'\n"
		"data/bad/kinds.yaml:6:13: ServiceEntry/default/future: error: apiVersion "
		"'networking.istio.io/v2' is not served for kind ServiceEntry (expected "
		"networking.istio.io/v1alpha3, networking.istio.io/v1beta1 or "
		"networking.istio.io/v1)\n"
		"data/bad/kinds.yaml:27:13: PeerAuthentication/default/strict: error: apiVersion "
		"'networking.istio.io/v1' is not served for kind PeerAuthentication (expected "
		"security.istio.io/v1beta1 or security.istio.io/v1)\n");
	assert_int_equal(l.diags.errors, 3);
	/* the kinds it knows load beside the rejected ones */
	assert_int_equal(l.cfg->n_virtual_services, 1);
	assert_int_equal(l.cfg->n_authorization_policies, 1);
	unload(&l);
}

static void test_identity_required(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/identity.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(
		l.out,
		"data/bad/identity.yaml:4:3: error: metadata.name: required field is missing\n"
		"data/bad/identity.yaml:8:1: error: kind: required field is missing\n"
		"data/bad/identity.yaml:11:1: error: wrong type: expected a mapping, got a "
		"sequence\n"
		"data/bad/identity.yaml:15:11: error: metadata: wrong type: expected a mapping, "
		"got 'just-a-name'\n"
		"data/bad/identity.yaml:17:1: ServiceEntry/default/no-version: error: apiVersion: "
		"required field is missing\n");
	assert_int_equal(l.cfg->n_service_entries, 0);
	unload(&l);
}

/* Warnings do not reject: the resource loads, minus what was ignored. */
static void test_unknown_and_unimplemented_fields(void **state)
{
	const struct rs_service_entry *se;
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/unknown-field.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(
		l.out,
		"data/bad/unknown-field.yaml:18:1: ServiceEntry/default/typos: warning: unknown "
		"field 'extra'\n"
		"data/bad/unknown-field.yaml:12:3: ServiceEntry/default/typos: warning: unknown "
		"field 'spec.endpoint'\n"
		"data/bad/unknown-field.yaml:14:3: ServiceEntry/default/typos: warning: field "
		"'spec.exportTo' is not implemented yet; ignored\n"
		"data/bad/unknown-field.yaml:15:3: ServiceEntry/default/typos: warning: field "
		"'spec.subjectAltNames' is not implemented yet; ignored\n"
		"data/bad/unknown-field.yaml:10:5: ServiceEntry/default/typos: warning: unknown "
		"field 'spec.ports[0].nmae'\n");
	assert_int_equal(l.diags.errors, 0);
	se = find_se(l.cfg, "default", "typos");
	assert_non_null(se);
	assert_string_equal(se->ports[0].name, "http");
	assert_int_equal(se->nendpoints, 0);
	unload(&l);
}

static void test_endpoint_port_without_service_port(void **state)
{
	const struct rs_service_entry *se;
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/endpoint-port.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(
		l.out,
		"data/bad/endpoint-port.yaml:9:40: ServiceEntry/default/ep-ports: warning: "
		"spec.ports[0].protocol: unknown protocol 'HTTP1' (Istio knows HTTP, HTTPS, "
		"HTTP2, HTTP_PROXY, GRPC, GRPC-Web, TCP, TLS, UDP, Mongo, MySQL and Redis)\n"
		"data/bad/endpoint-port.yaml:14:7: ServiceEntry/default/ep-ports: warning: "
		"spec.endpoints[0].ports.https: no port named 'https' in spec.ports; ignored\n");
	assert_int_equal(l.diags.errors, 0);
	se = find_se(l.cfg, "default", "ep-ports");
	assert_non_null(se);
	assert_int_equal(se->endpoints[0].nports, 2);
	unload(&l);
}

static void test_duplicates(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/duplicate.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out,
			    "data/bad/duplicate.yaml:8:1: ServiceEntry/default/twice: error: "
			    "already defined at data/bad/duplicate.yaml:1:1\n"
			    "data/bad/duplicate.yaml:21:3: ServiceEntry/default/dup-key: error: "
			    "duplicate field 'spec.hosts' (first at 20:3)\n");
	assert_int_equal(l.cfg->n_service_entries, 1);
	assert_string_equal(l.cfg->service_entries[0].hosts[0], "twice.example.com");
	unload(&l);
}

/* One broken resource is rejected alone; the ones around it, in the same
 * file and in other files, still load. */
static void test_rejected_resource_does_not_stop_others(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, "data/bad/mixed.yaml", "data/bad/syntax.yaml", "data/valid.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.out,
			    "data/bad/mixed.yaml:12:14: ServiceEntry/default/bad: error: "
			    "spec.ports[0].number: 0 is out of range 1-65535\n"
			    "data/bad/syntax.yaml:13:14: error: syntax error: mapping values are "
			    "not allowed in this context\n");
	assert_int_equal(l.diags.errors, 2);
	assert_int_equal(l.cfg->n_service_entries, 4);
	assert_string_equal(l.cfg->service_entries[0].name, "good-1");
	assert_string_equal(l.cfg->service_entries[1].name, "good-2");
	assert_string_equal(l.cfg->service_entries[2].name, "before-error");
	assert_string_equal(l.cfg->service_entries[3].name, "reviews");
	assert_null(find_se(l.cfg, "default", "bad"));
	unload(&l);
}

static void test_no_paths_and_no_diags(void **state)
{
	const char *const paths[] = {"data/bad/range.yaml"};
	struct rs_config *cfg = NULL;

	(void)state;
	assert_int_equal(rs_config_load(NULL, 0, &cfg, NULL), 0);
	assert_non_null(cfg);
	assert_int_equal(cfg->nfiles, 0);
	rs_config_free(cfg);
	/* Problems still reject the resource when the caller does not want them. */
	assert_int_equal(rs_config_load(paths, 1, &cfg, NULL), 0);
	assert_int_equal(cfg->n_service_entries, 0);
	rs_config_free(cfg);
	rs_config_free(NULL);
}

static void test_diag_print_format(void **state)
{
	struct rs_diags d = {0};
	struct rs_pos pos = {.file = "a.yaml", .line = 3, .col = 7};
	struct rs_pos file_only = {.file = "b.yaml"};
	char *out = NULL;
	size_t size = 0;
	FILE *f;

	(void)state;
	rs_diags_add(&d, RS_DIAG_ERROR, &pos, "ServiceEntry/default/x", "spec: %s", "broken");
	rs_diags_add(&d, RS_DIAG_WARNING, &pos, NULL, "looks odd: %d", 42);
	rs_diags_add(&d, RS_DIAG_ERROR, &file_only, NULL, "cannot read");
	rs_diags_add(&d, RS_DIAG_WARNING, NULL, NULL, "nowhere");
	assert_int_equal(d.n, 4);
	assert_int_equal(d.errors, 2);
	f = open_memstream(&out, &size);
	assert_non_null(f);
	rs_diags_print(&d, f);
	fclose(f);
	assert_string_equal(out, "a.yaml:3:7: ServiceEntry/default/x: error: spec: broken\n"
				 "a.yaml:3:7: warning: looks odd: 42\n"
				 "b.yaml: error: cannot read\n"
				 "warning: nowhere\n");
	free(out);
	rs_diags_free(&d);
	assert_int_equal(d.n, 0);
	assert_null(d.v);
	rs_diags_free(&d);
}

/* The YAML layer's readers, including those no kind uses yet. */
struct yaml_probe {
	struct rs_yctx ctx;
	int docs;
};

static int probe_doc(const struct rs_ynode *root, void *user_data)
{
	struct yaml_probe *p = user_data;
	const struct rs_ynode *n;
	uint32_t u = 7;
	bool b = false;
	char *s = NULL;

	p->docs++;
	assert_int_equal(root->type, RS_YNODE_MAPPING);
	assert_int_equal(root->line, 2);
	assert_int_equal(root->col, 1);

	n = rs_yaml__get(root, "flag");
	assert_true(rs_yaml__bool(&p->ctx, n, "flag", &b));
	assert_true(b);
	n = rs_yaml__get(root, "off");
	assert_true(rs_yaml__bool(&p->ctx, n, "off", &b));
	assert_false(b);
	n = rs_yaml__get(root, "quoted");
	assert_false(rs_yaml__bool(&p->ctx, n, "quoted", &b));

	n = rs_yaml__get(root, "big");
	assert_int_equal(n->line, 6);
	assert_int_equal(n->col, 6);
	assert_false(rs_yaml__u32(&p->ctx, n, "big", 0, UINT32_MAX, &u));
	assert_int_equal(u, 7);
	n = rs_yaml__get(root, "max");
	assert_true(rs_yaml__u32(&p->ctx, n, "max", 0, UINT32_MAX, &u));
	assert_int_equal(u, UINT32_MAX);

	/* Null is "not written"; a quoted "null" is a string. */
	assert_null(rs_yaml__get(root, "nothing"));
	assert_null(rs_yaml__get(root, "tilde"));
	assert_null(rs_yaml__get(root, "absent"));
	n = rs_yaml__get(root, "text");
	assert_true(rs_yaml__str(&p->ctx, n, "text", &s));
	assert_string_equal(s, "null");
	n = rs_yaml__get(root, "nul");
	assert_false(rs_yaml__str(&p->ctx, n, "nul", &s));
	assert_string_equal(s, "null");
	free(s);
	return 0;
}

static void test_yaml_readers(void **state)
{
	static const char text[] = "---\n"
				   "flag: yes\n"
				   "off: false\n"
				   "quoted: \"true\"\n"
				   "max: 4294967295\n"
				   "big: 4294967296\n"
				   "nothing:\n"
				   "tilde: ~\n"
				   "text: \"null\"\n"
				   "nul: \"a\\0b\"\n";
	struct rs_diags d = {0};
	struct yaml_probe p = {.ctx = {.file = "mem.yaml", .diags = &d}};
	char *out = NULL;
	size_t size = 0;
	FILE *f;

	(void)state;
	assert_int_equal(rs_yaml__parse_string("mem.yaml", text, strlen(text), &d, probe_doc, &p),
			 0);
	assert_int_equal(p.docs, 1);
	assert_true(p.ctx.rejected);
	f = open_memstream(&out, &size);
	assert_non_null(f);
	rs_diags_print(&d, f);
	fclose(f);
	assert_string_equal(out,
			    "mem.yaml:4:9: error: quoted: wrong type: expected a boolean, got "
			    "'true'\n"
			    "mem.yaml:6:6: error: big: 4294967296 is out of range 0-4294967295\n"
			    "mem.yaml:10:6: error: nul: contains a NUL character\n");
	free(out);
	rs_diags_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_service_entry),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_multi_document),
		cmocka_unit_test(test_kind_list),
		cmocka_unit_test(test_anchors_and_aliases),
		cmocka_unit_test(test_directory_recursive_sorted),
		cmocka_unit_test(test_configmap_volume),
		cmocka_unit_test(test_missing_path),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_nesting_limit),
		cmocka_unit_test(test_alias_expansion_limit),
		cmocka_unit_test(test_control_characters_in_messages),
		cmocka_unit_test(test_port_out_of_range),
		cmocka_unit_test(test_hosts_required),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_duplicate_ports),
		cmocka_unit_test(test_resolution_rules),
		cmocka_unit_test(test_bad_enum_values),
		cmocka_unit_test(test_kinds_and_api_versions),
		cmocka_unit_test(test_identity_required),
		cmocka_unit_test(test_unknown_and_unimplemented_fields),
		cmocka_unit_test(test_endpoint_port_without_service_port),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_rejected_resource_does_not_stop_others),
		cmocka_unit_test(test_no_paths_and_no_diags),
		cmocka_unit_test(test_diag_print_format),
		cmocka_unit_test(test_yaml_readers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
