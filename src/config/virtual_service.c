/* VirtualService: not parsed yet (issue 3). */
#include <stdlib.h>

#include "ringside/config.h"
#include "yaml.h"

int rs_config__virtual_service_load(struct rs_yctx *ctx, const struct rs_ynode *root, const char *name,
		const char *ns, struct rs_config *cfg)
{
	rs_yaml__report(ctx, RS_DIAG_WARNING, root, NULL, "kind VirtualService is not handled yet; skipped");
	return 0;
}

void rs_config__virtual_service_free_all(struct rs_config *cfg)
{
	(void)cfg;
}
