/* The admin (loopback), Prometheus and health ports, served by the main
 * thread with poll(2): never on a shard, so a slow scraper costs no request
 * latency. */
#ifndef RINGSIDE_ADMIN_H
#define RINGSIDE_ADMIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ringside/telemetry-t.h"

struct rs_admin_hooks {
	/* Fills s with the sum over shards. */
	void (*merge_stats)(void *arg, struct rs_stats *s);
	/* Starts a drain (SIGTERM, /quitquitquit). */
	void (*drain)(void *arg);
	bool (*draining)(void *arg);
	/* True once every shard has stopped. */
	bool (*stopped)(void *arg);
	/* Configuration: SIGHUP, /config_status, /config_dump, and its
	 * metrics after the shards' ones. */
	void (*reload)(void *arg, const char *trigger);
	void (*config_status)(void *arg, FILE *f);
	void (*config_dump)(void *arg, FILE *f);
	void (*config_metrics)(void *arg, FILE *f);
	/* Another descriptor to poll (the config watcher), with what to do
	 * when it is readable; how long poll may sleep; what to do after each
	 * wake-up. Each may be unset. */
	int watch_fd;
	void (*on_watch)(void *arg);
	int (*timeout_ms)(void *arg);
	void (*tick)(void *arg);
	void *arg;
	int done_fd; /* readable when a shard stops; may be -1 */
};

struct rs_admin {
	int admin_fd;  /* 127.0.0.1 only: /quitquitquit must not be reachable */
	int stats_fd;  /* /stats/prometheus */
	int health_fd; /* /healthz/ready */
	int signal_fd;
	struct rs_admin_hooks hooks;
};

/* Binds the three ports (a port of 0 disables one). Returns 0 or a negative
 * errno with a message naming the port in err. */
int rs_admin_init(struct rs_admin *a, uint16_t admin_port, uint16_t stats_port,
		  uint16_t health_port, const struct rs_admin_hooks *hooks, char *err,
		  size_t errlen);
/* Serves until every shard has stopped. Handles SIGTERM/SIGINT (drain). */
void rs_admin_run(struct rs_admin *a);
void rs_admin_fini(struct rs_admin *a);

#endif
