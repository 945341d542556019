/* Snapshots: the compiled, immutable configuration that shards read. */
#include <errno.h>
#include <stdlib.h>

#include "ringside/config.h"
#include "ringside/proxy.h"
#include "ringside/upstream.h"

int rs_snapshot_build(struct rs_config *cfg, const char *ns, uint64_t generation,
		      struct rs_snapshot **out, struct rs_diags *diags)
{
	struct rs_snapshot *s = calloc(1, sizeof *s);
	int ret = -ENOMEM;

	if (!s)
		goto fail;
	s->generation = generation;
	s->cfg = cfg;
	ret = rs_clusters_build(cfg, &s->clusters, diags);
	if (ret < 0)
		goto fail;
	ret = rs_router_init(&s->router, &s->clusters, ns);
	if (ret < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	if (s) {
		rs_clusters_free(&s->clusters);
		free(s);
	}
	rs_config_free(cfg);
	return ret;
}

void rs_snapshot_free(struct rs_snapshot *s)
{
	if (!s)
		return;
	rs_router_free(&s->router);
	rs_clusters_free(&s->clusters);
	rs_config_free(s->cfg);
	free(s);
}
