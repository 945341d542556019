/* libFuzzer target over the configuration loader (DESIGN.md "Robustness
 * contract": a bad configuration file gets a clear error, never a crash).
 *
 * Each input is read twice:
 *   1. by rs_yaml__parse_string, with a callback that walks every document's
 *      tree and checks what src/config/yaml.h promises about it (positions,
 *      NUL-terminated scalars, weights, bounded nesting, aliases that share
 *      rather than copy);
 *   2. by rs_config_load, the path `ringside validate` and the proxy take,
 *      through a memfd so that no file is written per input. The result must
 *      be a configuration (a broken file is reported, never fatal), every
 *      ServiceEntry it kept must pass the checks service_entry.c makes, and
 *      the diagnostics must print one line each, as diag.c promises.
 * A broken promise aborts, so libFuzzer saves the input as a crash.
 *
 * How to build and run it: tests/fuzz/README.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ringside/config.h"
/* Module-private, reached by path: src/config must not be an include
 * directory, or its yaml.h would shadow libyaml's <yaml.h>. */
#include "../../src/config/yaml.h"

/* yaml.c's MAX_DEPTH: the deepest node a delivered tree may hold. */
#define MAX_DEPTH 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "yaml_fuzz: %s:%d: broken promise: %s\n", __FILE__,        \
				__LINE__, #cond);                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Returns the node's weight as recomputed from its children. An alias is not
 * descended into: it shares the anchored node's children, which were walked
 * where the anchor was written, and walking them again per alias is exactly
 * the blow-up the builder avoids. */
static size_t walk(const struct rs_ynode *n, int depth)
{
	size_t weight = 1;

	CHECK(n != NULL);
	CHECK(depth <= MAX_DEPTH);
	CHECK(n->line >= 1 && n->col >= 1);
	CHECK(n->weight >= 1);
	/* The helpers every reader calls on any node must accept it. */
	(void)rs_yaml__is_null(n);
	(void)rs_yaml__get(n, "kind");
	switch (n->type) {
	case RS_YNODE_SCALAR:
		CHECK(n->str != NULL);
		CHECK(n->str[n->len] == '\0');
		CHECK(strlen(n->str) <= n->len);
		CHECK(n->n == 0);
		CHECK(n->weight == 1);
		break;
	case RS_YNODE_SEQUENCE:
		CHECK(n->n == 0 || n->items != NULL);
		if (n->alias)
			return n->weight;
		for (size_t i = 0; i < n->n; i++)
			weight += walk(n->items[i], depth + 1);
		CHECK(weight == n->weight);
		break;
	case RS_YNODE_MAPPING:
		CHECK(n->n == 0 || n->pairs != NULL);
		if (n->alias)
			return n->weight;
		for (size_t i = 0; i < n->n; i++) {
			weight += walk(n->pairs[i].key, depth + 1);
			weight += walk(n->pairs[i].value, depth + 1);
		}
		CHECK(weight == n->weight);
		break;
	default:
		CHECK(!"unknown node type");
	}
	return n->weight;
}

static int on_doc(const struct rs_ynode *root, void *user_data)
{
	size_t *docs = user_data;

	walk(root, 0);
	(*docs)++;
	return 0;
}

static void check_parse_string(const uint8_t *data, size_t size)
{
	struct rs_diags diags = {0};
	size_t docs = 0;
	int r;

	r = rs_yaml__parse_string("fuzz.yaml", (const char *)data, size, &diags, on_doc, &docs);
	/* Memory does not run out here (libFuzzer's -rss_limit_mb and
	 * -malloc_limit_mb report a crash instead), so only these two remain. */
	CHECK(r == 0 || r == -EINVAL);
	if (r == -EINVAL) {
		/* A syntax error is reported, at the place it was found. */
		CHECK(diags.errors >= 1 && diags.n >= 1);
		CHECK(diags.v[diags.n - 1].level == RS_DIAG_ERROR);
		CHECK(diags.v[diags.n - 1].line >= 1);
	}
	rs_diags_free(&diags);
}

static bool is_ip(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* A ServiceEntry the loader kept: what service_entry.c rejects must not be
 * in it, and every string in it must be readable (ASan checks the reads). */
static void check_service_entry(const struct rs_config *cfg, const struct rs_service_entry *se)
{
	CHECK(se->name && se->name[0]);
	CHECK(se->ns && se->ns[0]);
	CHECK(se->pos.file == cfg->files[0].path);
	CHECK(se->nhosts >= 1 && se->hosts);
	for (size_t i = 0; i < se->nhosts; i++)
		CHECK(se->hosts[i][0] && strcmp(se->hosts[i], "*") != 0);
	for (size_t i = 0; i < se->naddresses; i++)
		CHECK(strlen(se->addresses[i]) > 0);
	for (size_t i = 0; i < se->nports; i++) {
		CHECK(se->ports[i].number >= 1 && se->ports[i].number <= 65535);
		CHECK(se->ports[i].name != NULL);
		CHECK(se->ports[i].target_port <= 65535);
		if (se->ports[i].protocol)
			(void)strlen(se->ports[i].protocol);
		for (size_t j = 0; j < i; j++) {
			CHECK(se->ports[i].number != se->ports[j].number);
			CHECK(strcmp(se->ports[i].name, se->ports[j].name) != 0);
		}
	}
	CHECK(se->resolution <= RS_SE_RESOLUTION_DNS_ROUND_ROBIN);
	CHECK(se->location <= RS_SE_MESH_INTERNAL);
	CHECK(!(se->resolution == RS_SE_RESOLUTION_NONE && se->nendpoints));
	for (size_t i = 0; i < se->nendpoints; i++) {
		const struct rs_se_endpoint *ep = &se->endpoints[i];

		CHECK(ep->address && ep->address[0]);
		if (se->resolution == RS_SE_RESOLUTION_STATIC)
			CHECK(is_ip(ep->address) || strncmp(ep->address, "unix:///", 8) == 0);
		for (size_t j = 0; j < ep->nports; j++)
			CHECK(ep->ports[j].name && ep->ports[j].number >= 1 &&
			      ep->ports[j].number <= 65535);
		for (size_t j = 0; j < ep->nlabels; j++)
			CHECK(ep->labels[j].key && ep->labels[j].value);
		if (ep->network)
			(void)strlen(ep->network);
		if (ep->locality)
			(void)strlen(ep->locality);
		if (ep->service_account)
			(void)strlen(ep->service_account);
	}
	for (const struct rs_service_entry *o = cfg->service_entries; o < se; o++)
		CHECK(strcmp(o->ns, se->ns) != 0 || strcmp(o->name, se->name) != 0);
}

/* Diagnostics quote text from the file; printed, each must stay one line
 * with no control character (diag.c's one_line). */
static void check_printed(const struct rs_diags *diags)
{
	size_t len = 0, lines = 0;
	char *out = NULL;
	FILE *f = open_memstream(&out, &len);

	CHECK(f != NULL);
	rs_diags_print(diags, f);
	CHECK(fclose(f) == 0);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c == '\n')
			lines++;
		else
			CHECK(c >= 0x20 && c != 0x7f);
	}
	CHECK(lines == diags->n);
	CHECK(len == 0 || out[len - 1] == '\n');
	free(out);
}

/* One memfd for the whole run, rewritten per input: the loader opens it by
 * its /proc path like any configuration file. */
static int config_fd = -1;
static char config_path[64];

static void check_config_load(const uint8_t *data, size_t size)
{
	const char *paths[] = {config_path};
	struct rs_diags diags = {0};
	struct rs_config *cfg = NULL;
	size_t errors = 0;
	int r;

	if (config_fd < 0) {
		config_fd = memfd_create("rs-yaml-fuzz", MFD_CLOEXEC);
		CHECK(config_fd >= 0);
		snprintf(config_path, sizeof config_path, "/proc/self/fd/%d", config_fd);
	}
	CHECK(ftruncate(config_fd, 0) == 0);
	CHECK(size == 0 || pwrite(config_fd, data, size, 0) == (ssize_t)size);

	r = rs_config_load(paths, 1, &cfg, &diags);
	/* The file exists and memory does not run out: a configuration always
	 * comes back, with whatever was wrong in diags. */
	CHECK(r == 0 && cfg != NULL);
	CHECK(cfg->nfiles == 1 && strcmp(cfg->files[0].path, config_path) == 0);
	for (size_t i = 0; i < cfg->n_service_entries; i++)
		check_service_entry(cfg, &cfg->service_entries[i]);
	for (size_t i = 0; i < diags.n; i++) {
		CHECK(diags.v[i].msg != NULL);
		errors += diags.v[i].level == RS_DIAG_ERROR;
	}
	CHECK(errors == diags.errors);
	check_printed(&diags);
	rs_config_free(cfg);
	rs_diags_free(&diags);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse_string(data, size);
	check_config_load(data, size);
	return 0;
}
