/* What the config tests share: load paths and keep the diagnostics exactly
 * as `ringside validate` prints them, and the mission's examples. Included
 * by each test (one translation unit each). */
#ifndef RINGSIDE_TESTS_CONFIG_HARNESS_H
#define RINGSIDE_TESTS_CONFIG_HARNESS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config.h"

struct loaded {
	int rc;
	struct rs_config *cfg;
	struct rs_diags diags;
	char *out; /* the diagnostics exactly as printed */
};

static inline void load_paths(struct loaded *l, const char *const *paths, size_t n)
{
	size_t size = 0;
	FILE *f;

	memset(l, 0, sizeof *l);
	l->rc = rs_config_load(paths, n, &l->cfg, &l->diags);
	f = open_memstream(&l->out, &size);
	assert_non_null(f);
	rs_diags_print(&l->diags, f);
	fclose(f);
}

#define LOAD(l, ...)                                                                               \
	load_paths(l, (const char *const[]){__VA_ARGS__},                                          \
		   sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static inline void unload(struct loaded *l)
{
	rs_config_free(l->cfg);
	rs_diags_free(&l->diags);
	free(l->out);
}

/* Loads one of the mission's files (RINGSIDE_MISSION_CONFIG, set by meson);
 * false when the shared folder is absent. */
static inline bool load_mission_file(struct loaded *l, const char *file)
{
	const char *dir = getenv("RINGSIDE_MISSION_CONFIG");
	char path[4096];

	if (!dir)
		return false;
	snprintf(path, sizeof path, "%s/%s", dir, file);
	LOAD(l, path);
	if (l->rc == -ENOENT) {
		unload(l);
		return false;
	}
	return true;
}

/* The mission's own examples, all together, load with no error. */
static inline void test_mission_config_has_no_errors(void **state)
{
	const char *dir = getenv("RINGSIDE_MISSION_CONFIG");
	struct loaded l;

	(void)state;
	if (!dir)
		skip();
	LOAD(&l, dir);
	if (l.rc == -ENOENT) {
		unload(&l);
		skip();
	}
	fputs(l.out, stderr);
	assert_int_equal(l.diags.errors, 0);
	unload(&l);
}

#endif
