/* Configuration on the main thread: first load, reload on SIGHUP and file
 * changes, publish and reclaim of snapshots, and their admin views. */
#ifndef RINGSIDE_RELOAD_H
#define RINGSIDE_RELOAD_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "ringside/config-t.h"
#include "ringside/proxy-t.h"

struct rs_watch {
	int wd;
	char *name; /* owns; NULL: any entry of the directory */
};

struct rs_reload_event {
	time_t at;
	const char *trigger; /* "start", "SIGHUP", "file change" */
	const char *result;  /* "applied", "unchanged", "failed" */
	double ms;
	char error[128];
};

struct rs_reloader {
	const char *const *paths; /* borrowed */
	size_t npaths;
	const struct rs_identity *id; /* borrowed */
	unsigned nshards;
	struct rs_proxy_shared *shared; /* borrowed; its rcu is set up here */
	void (*wake)(void *arg);        /* tells the shards to look (may be NULL) */
	void *wake_arg;
	int ifd; /* inotify, or -1 */
	struct rs_watch *watches; /* owns */
	size_t nwatches;
	uint64_t due_ns; /* a reload is due at this time (0: none) */
	uint64_t generation;
	uint64_t id_hash; /* of the certificate files the snapshot in force was built with */
	size_t rejected; /* resources rejected by the load in force */
	size_t kept;     /* of them, kept in their previous version */
	uint64_t applied, unchanged, failed;
	struct rs_reload_event last;
	struct rs_diags diags; /* problems of the load in force */
};

/* Loads paths and publishes generation 1 into shared->rcu, with the
 * resources that select workload id. Problems are
 * logged; a resource in error is left out. Fails (negative errno) only when
 * nothing could be read at all. */
int rs_reloader_init(struct rs_reloader *rl, const char *const *paths, size_t npaths,
		     const struct rs_identity *id, unsigned nshards, struct rs_proxy_shared *shared);
/* Loads again and publishes a new generation; force: even when no file
 * changed (SIGHUP). On failure the snapshot in force stays. */
void rs_reloader_reload(struct rs_reloader *rl, const char *trigger, bool force);
/* The inotify descriptor to poll, or -1; on_fd when it is readable. */
static inline int rs_reloader_fd(const struct rs_reloader *rl)
{
	return rl->ifd;
}
void rs_reloader_on_fd(struct rs_reloader *rl);
/* How long the main loop may sleep; then call tick (due reloads, reclaim). */
int rs_reloader_timeout_ms(const struct rs_reloader *rl);
void rs_reloader_tick(struct rs_reloader *rl);
/* Admin views: /config_status and /config_dump (JSON), and metrics. */
void rs_reloader_write_status(const struct rs_reloader *rl, FILE *f);
void rs_reloader_write_dump(const struct rs_reloader *rl, FILE *f);
void rs_reloader_write_prometheus(const struct rs_reloader *rl, FILE *f);
/* Frees the snapshots too; the shards must have stopped. */
void rs_reloader_fini(struct rs_reloader *rl);

#endif
