/* `ringside validate PATH...`: load the YAML and print every problem. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "ringside/config.h"

int rs_cmd_validate(int argc, char **argv)
{
	struct rs_diags diags = {0};
	struct rs_config *cfg = NULL;
	int ret;

	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: ringside validate PATH...\n"
			"Checks Istio resources in YAML files and directories; prints each "
			"problem as\n`file:line:col: Kind/namespace/name: message` and exits 1 "
			"if any is an error.\n");
		return argc < 2 ? 2 : 0;
	}
	ret = rs_config_load((const char *const *)argv + 1, (size_t)argc - 1, &cfg, &diags);
	rs_diags_print(&diags, stdout);
	if (ret < 0 && diags.n == 0)
		fprintf(stdout, "ringside: cannot load configuration: %s\n", strerror(-ret));
	ret = (ret < 0 || diags.errors) ? 1 : 0;
	rs_config_free(cfg);
	rs_diags_free(&diags);
	return ret;
}
