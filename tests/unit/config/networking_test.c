/* The networking kinds: parsing into the typed model, and every problem reported
 * with its position. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "ringside/config.h"

/* The mission's own examples load with no error. */
static void test_mission_config_has_no_errors(void **state)
{
	const char *paths[] = {getenv("RINGSIDE_MISSION_CONFIG")};
	struct rs_diags diags = {0};
	struct rs_config *cfg = NULL;

	(void)state;
	if (!paths[0] || rs_config_load(paths, 1, &cfg, &diags) == -ENOENT) {
		rs_config_free(cfg);
		rs_diags_free(&diags);
		skip();
	}
	rs_diags_print(&diags, stderr);
	assert_int_equal(diags.errors, 0);
	rs_config_free(cfg);
	rs_diags_free(&diags);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mission_config_has_no_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
