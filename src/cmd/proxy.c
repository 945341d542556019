/* `ringside proxy`: start the shards, serve the admin ports, drain on
 * SIGTERM. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmd.h"
#include "ringside/admin.h"
#include "ringside/config.h"
#include "ringside/core.h"
#include "ringside/net.h"
#include "ringside/proxy.h"
#include "ringside/reload.h"
#include "ringside/telemetry.h"
#include "ringside/tls-session.h"

struct flag {
	const char *name;
	const char *env;
	const char *def;
	const char *help;
};

/* Every flag has an environment variable; the flag wins. */
static const struct flag flags[] = {
	{"config", "RINGSIDE_CONFIG", NULL, "Istio YAML file or directory (repeatable)"},
	{"concurrency", "RINGSIDE_CONCURRENCY", "0", "shards; 0: one per CPU this process may use"},
	{"namespace", "RINGSIDE_NAMESPACE", "default", "this workload's namespace"},
	{"service-account", "RINGSIDE_SERVICE_ACCOUNT", "default", "this workload's service account"},
	{"trust-domain", "RINGSIDE_TRUST_DOMAIN", "cluster.local", "SPIFFE trust domain"},
	{"cert", "RINGSIDE_CERT", NULL, "this workload's certificate chain (PEM), for ISTIO_MUTUAL"},
	{"key", "RINGSIDE_KEY", NULL, "its private key (PEM)"},
	{"ca", "RINGSIDE_CA", NULL, "the mesh's root certificates (PEM)"},
	{"tls-min-version", "RINGSIDE_TLS_MIN_VERSION", "1.3", "lowest TLS version between sidecars: 1.3 or 1.2"},
	{"listen-address", "RINGSIDE_LISTEN_ADDRESS", "0.0.0.0", "address of the traffic ports"},
	{"outbound-port", "RINGSIDE_OUTBOUND_PORT", "15001", "outbound listener"},
	{"inbound-port", "RINGSIDE_INBOUND_PORT", "15006", "inbound listener (mTLS per PeerAuthentication); 0: off"},
	{"admin-port", "RINGSIDE_ADMIN_PORT", "15000", "admin port on 127.0.0.1; 0: off"},
	{"stats-port", "RINGSIDE_STATS_PORT", "15090", "Prometheus /stats/prometheus; 0: off"},
	{"health-port", "RINGSIDE_HEALTH_PORT", "15021", "/healthz/ready; 0: off"},
	{"drain-timeout", "RINGSIDE_DRAIN_TIMEOUT", "5s", "longest wait for requests in flight"},
	{"connect-timeout", "RINGSIDE_CONNECT_TIMEOUT", "10s", "upstream connect timeout"},
	{"route-timeout", "RINGSIDE_ROUTE_TIMEOUT", "0", "upstream response timeout; 0: none (Istio)"},
	{"stream-idle-timeout", "RINGSIDE_STREAM_IDLE_TIMEOUT", "5m", "request without activity"},
	{"idle-timeout", "RINGSIDE_IDLE_TIMEOUT", "1h", "downstream connection without requests"},
	{"upstream-idle-timeout", "RINGSIDE_UPSTREAM_IDLE_TIMEOUT", "60s", "pooled upstream connection unused"},
	{"max-connections", "RINGSIDE_MAX_CONNECTIONS", "0", "downstream connections; 0: no limit"},
	{"max-request-headers-kb", "RINGSIDE_MAX_REQUEST_HEADERS_KB", "60", "request header bytes, KiB"},
	{"max-headers-count", "RINGSIDE_MAX_HEADERS_COUNT", "100", "request header fields"},
	{"h2-max-concurrent-streams", "RINGSIDE_H2_MAX_CONCURRENT_STREAMS", "100", "HTTP/2 streams per client connection"},
	{"h2-stream-window", "RINGSIDE_H2_STREAM_WINDOW", "65536", "HTTP/2 receive window per stream, bytes"},
	{"h2-connection-window", "RINGSIDE_H2_CONNECTION_WINDOW", "1048576", "HTTP/2 receive window per connection, bytes"},
	{"busy-poll", "RINGSIDE_BUSY_POLL", "0", "spin this long for work before sleeping (e.g. 50us)"},
	{"buffers", "RINGSIDE_BUFFERS", "256", "receive buffers per shard (power of two)"},
	{"log-level", "RINGSIDE_LOG_LEVEL", "info", "debug, info, warn or error"},
};

#define NFLAGS (sizeof flags / sizeof flags[0])

static void proxy_usage(FILE *f)
{
	fprintf(f, "usage: ringside proxy --config PATH [flags]\n\nflags (and environment):\n");
	for (size_t i = 0; i < NFLAGS; i++)
		fprintf(f, "  --%-24s %s [%s]%s%s\n", flags[i].name, flags[i].help, flags[i].env,
			flags[i].def ? " default " : "", flags[i].def ? flags[i].def : "");
	fprintf(f, "  --%-24s %s [%s]\n", "label KEY=VALUE",
		"workload label, read by workload selectors (repeatable)",
		"RINGSIDE_LABELS=k=v,k2=v2");
}

struct proxy {
	struct rs_proxy_opts o;
	struct rs_proxy_shared shared;
	struct rs_worker *w; /* owns: o.concurrency shards */
	struct rs_reloader rl;
	struct rs_identity id;
	struct rs_kv labels[64]; /* borrowed strings: argv and the environment */
	pthread_barrier_t ready;
	atomic_uint running;
	int done_fd;
};

struct start_arg {
	struct proxy *px;
	struct rs_worker *w;
	int ret;
};

static void *shard_main(void *arg)
{
	struct rs_worker *w = arg;
	struct proxy *px = w->owner;

	/* The ring must be created on the thread that submits to it
	 * (IORING_SETUP_SINGLE_ISSUER). */
	w->failed = rs_worker_init(w, w->id, w->cpu, w->opts, w->shared) < 0;
	/* A shard that never ran holds no snapshot (the process drains). */
	if (w->failed)
		rs_rcu_report(&w->shared->rcu.readers[w->id], UINT64_MAX, UINT64_MAX);
	pthread_barrier_wait(&px->ready);
	if (!w->failed)
		rs_worker_main(w);
	atomic_fetch_sub(&px->running, 1);
	{
		uint64_t one = 1;

		(void)!write(px->done_fd, &one, sizeof one);
	}
	return NULL;
}

static void merge_stats(void *arg, struct rs_stats *s)
{
	struct proxy *px = arg;

	for (unsigned i = 0; i < px->o.concurrency; i++)
		rs_stats_merge(s, px->w[i].stats);
}

static void wake_all(void *arg)
{
	struct proxy *px = arg;

	for (unsigned i = 0; px->w && i < px->o.concurrency; i++)
		rs_worker_wake(&px->w[i]);
}

static void drain(void *arg)
{
	struct proxy *px = arg;

	if (atomic_exchange(&px->shared.drain, true))
		return;
	wake_all(px);
}

static void reload(void *arg, const char *trigger)
{
	rs_reloader_reload(&((struct proxy *)arg)->rl, trigger, true);
}

static void config_status(void *arg, FILE *f)
{
	rs_reloader_write_status(&((struct proxy *)arg)->rl, f);
}

static void config_dump(void *arg, FILE *f)
{
	rs_reloader_write_dump(&((struct proxy *)arg)->rl, f);
}

static void config_metrics(void *arg, FILE *f)
{
	rs_reloader_write_prometheus(&((struct proxy *)arg)->rl, f);
}

static void on_watch(void *arg)
{
	rs_reloader_on_fd(&((struct proxy *)arg)->rl);
}

static int timeout_ms(void *arg)
{
	return rs_reloader_timeout_ms(&((struct proxy *)arg)->rl);
}

static void tick(void *arg)
{
	rs_reloader_tick(&((struct proxy *)arg)->rl);
}

static bool draining(void *arg)
{
	return atomic_load(&((struct proxy *)arg)->shared.drain);
}

static bool stopped(void *arg)
{
	return atomic_load(&((struct proxy *)arg)->running) == 0;
}

static int parse_port(const char *name, const char *v, uint16_t *out)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (*v == '\0' || *end || n < 0 || n > 65535) {
		fprintf(stderr, "ringside proxy: --%s: '%s' is not a port (0-65535)\n", name, v);
		return -1;
	}
	*out = (uint16_t)n;
	return 0;
}

static int parse_uint(const char *name, const char *v, unsigned max, unsigned *out)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (*v == '\0' || *end || n < 0 || (unsigned long)n > max) {
		fprintf(stderr, "ringside proxy: --%s: '%s' is not a number from 0 to %u\n", name,
			v, max);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

static int parse_dur(const char *name, const char *v, uint64_t *out)
{
	if (rs_duration_parse(v, out) < 0) {
		fprintf(stderr,
			"ringside proxy: --%s: '%s' is not a duration (examples: 250ms, 10s, 5m)\n",
			name, v);
		return -1;
	}
	return 0;
}

/* Kubernetes' label syntax (a name of up to 63 characters, alphanumeric at
 * both ends, `-`, `_` and `.` inside; a key may have a `prefix/`), so that a
 * typo is an error at start rather than a selector that never matches. */
static bool label_name_ok(const char *s, size_t len, bool may_be_empty)
{
	if (len == 0)
		return may_be_empty;
	if (len > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

/* Splits "key=value" in place into px->labels. */
static int add_label(struct proxy *px, char *kv, const char *from)
{
	char *eq = strchr(kv, '='), *slash;
	const char *name;

	if (!eq) {
		fprintf(stderr, "ringside proxy: %s: '%s' is not KEY=VALUE\n", from, kv);
		return -1;
	}
	*eq = '\0';
	slash = strrchr(kv, '/');
	name = slash ? slash + 1 : kv;
	if ((slash && (slash == kv || slash - kv > 253)) ||
	    !label_name_ok(name, strlen(name), false) ||
	    !label_name_ok(eq + 1, strlen(eq + 1), true)) {
		fprintf(stderr,
			"ringside proxy: %s: '%s=%s' is not a Kubernetes label (names and values: "
			"up to 63 of [A-Za-z0-9-_.], alphanumeric at both ends)\n",
			from, kv, eq + 1);
		return -1;
	}
	for (size_t i = 0; i < px->id.nlabels; i++) {
		if (strcmp(px->labels[i].key, kv) == 0) {
			px->labels[i].value = eq + 1; /* the last one wins */
			return 0;
		}
	}
	if (px->id.nlabels == sizeof px->labels / sizeof px->labels[0]) {
		fprintf(stderr, "ringside proxy: %s: more than %zu labels\n", from,
			sizeof px->labels / sizeof px->labels[0]);
		return -1;
	}
	px->labels[px->id.nlabels++] = (struct rs_kv){kv, eq + 1};
	return 0;
}

static unsigned cpus_allowed(int *cpu_list, unsigned max)
{
	cpu_set_t set;
	unsigned n = 0;

	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return 1;
	for (int c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, &set))
			cpu_list[n++] = c;
	return n ? n : 1;
}

/* SO_REUSEPORT would let a second ringside share a port silently; a plain
 * bind first says whether it is taken (and prints so). */
static bool port_taken(const char *addr, uint16_t port, const char *what)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	int fd;

	if (rs_sockaddr_parse(addr, port, &sa, &salen) < 0) {
		fprintf(stderr, "ringside: --listen-address: '%s' is not an IP address\n", addr);
		return true;
	}
	fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	/* SO_REUSEADDR: connections of a previous run in TIME_WAIT do not make
	 * the port "taken"; a live listener still does. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
	if (bind(fd, (struct sockaddr *)&sa, salen) < 0 && errno == EADDRINUSE) {
		fprintf(stderr, "ringside: cannot listen on %s:%u (%s port): %s\n", addr, port, what,
			strerror(errno));
		close(fd);
		return true;
	}
	close(fd);
	return false;
}

int rs_cmd_proxy(int argc, char **argv)
{
	const char *val[NFLAGS];
	const char *paths[64];
	size_t npaths = 0;
	struct option longopts[NFLAGS + 3];
	struct proxy px;
	struct rs_admin admin;
	struct rs_admin_hooks hooks;
	char err[1024];
	int cpu_list[1024], ncpus, ret = 1, opt, idx;
	unsigned u = 0, kb = 60, maxh = 100, nbufs = 256, conc = 0;
	uint16_t admin_port = 0, stats_port = 0, health_port = 0;
	enum rs_log_level lvl = RS_LOG_INFO;
	bool config_flag_seen = false;
	char *env_labels = NULL; /* owns: RINGSIDE_LABELS split in place */
	struct rs_tls_ctx *inbound_tls = NULL;
	char own_id[512];

	memset(&px, 0, sizeof px);
	for (size_t i = 0; i < NFLAGS; i++) {
		const char *e = getenv(flags[i].env);

		val[i] = e && *e ? e : flags[i].def;
		longopts[i] = (struct option){flags[i].name, required_argument, NULL, (int)i};
	}
	longopts[NFLAGS] = (struct option){"label", required_argument, NULL, 1000};
	longopts[NFLAGS + 1] = (struct option){"help", no_argument, NULL, 'h'};
	longopts[NFLAGS + 2] = (struct option){0};
	if (getenv("RINGSIDE_CONFIG") && *getenv("RINGSIDE_CONFIG"))
		paths[npaths++] = getenv("RINGSIDE_CONFIG");
	px.id.labels = px.labels;
	if (getenv("RINGSIDE_LABELS") && *getenv("RINGSIDE_LABELS")) {
		env_labels = strdup(getenv("RINGSIDE_LABELS"));
		if (!env_labels) {
			fprintf(stderr, "ringside proxy: out of memory\n");
			goto out;
		}
		for (char *save = NULL, *kv = strtok_r(env_labels, ",", &save); kv;
		     kv = strtok_r(NULL, ",", &save))
			if (add_label(&px, kv, "RINGSIDE_LABELS") < 0)
				goto usage_error;
	}
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
		if (opt == 'h') {
			proxy_usage(stdout);
			ret = 0;
			goto out;
		}
		if (opt == 1000) {
			if (add_label(&px, optarg, "--label") < 0)
				goto usage_error;
			continue;
		}
		if (opt < 0 || (size_t)opt >= NFLAGS) {
			proxy_usage(stderr);
			goto usage_error;
		}
		if (opt == 0) {
			if (!config_flag_seen)
				npaths = 0; /* --config replaces RINGSIDE_CONFIG */
			config_flag_seen = true;
			if (npaths == sizeof paths / sizeof paths[0]) {
				fprintf(stderr, "ringside proxy: too many --config paths\n");
				goto usage_error;
			}
			paths[npaths++] = optarg;
			continue;
		}
		val[opt] = optarg;
	}
	if (optind < argc) {
		fprintf(stderr, "ringside proxy: unexpected argument '%s'\n", argv[optind]);
		goto usage_error;
	}
	if (npaths == 0) {
		fprintf(stderr, "ringside proxy: --config PATH is required (Istio YAML: a "
				"ServiceEntry names the hosts to route)\n");
		goto usage_error;
	}
	for (size_t i = 0; i < NFLAGS; i++) {
		const char *n = flags[i].name, *v = val[i];

		if (!v)
			continue;
		if (!strcmp(n, "concurrency") && parse_uint(n, v, 1024, &conc) < 0)
			goto usage_error;
		if (!strcmp(n, "outbound-port") && parse_port(n, v, &px.o.outbound_port) < 0)
			goto usage_error;
		if (!strcmp(n, "inbound-port") && parse_port(n, v, &px.o.inbound_port) < 0)
			goto usage_error;
		if (!strcmp(n, "admin-port") && parse_port(n, v, &admin_port) < 0)
			goto usage_error;
		if (!strcmp(n, "stats-port") && parse_port(n, v, &stats_port) < 0)
			goto usage_error;
		if (!strcmp(n, "health-port") && parse_port(n, v, &health_port) < 0)
			goto usage_error;
		if (!strcmp(n, "drain-timeout") && parse_dur(n, v, &px.o.drain_timeout_ns) < 0)
			goto usage_error;
		if (!strcmp(n, "connect-timeout") && parse_dur(n, v, &px.o.connect_timeout_ns) < 0)
			goto usage_error;
		if (!strcmp(n, "route-timeout") && parse_dur(n, v, &px.o.route_timeout_ns) < 0)
			goto usage_error;
		if (!strcmp(n, "stream-idle-timeout") &&
		    parse_dur(n, v, &px.o.stream_idle_timeout_ns) < 0)
			goto usage_error;
		if (!strcmp(n, "busy-poll") && parse_dur(n, v, &px.o.busy_poll_ns) < 0)
			goto usage_error;
		if (!strcmp(n, "idle-timeout") && parse_dur(n, v, &px.o.idle_timeout_ns) < 0)
			goto usage_error;
		if (!strcmp(n, "upstream-idle-timeout") &&
		    parse_dur(n, v, &px.o.upstream_idle_timeout_ns) < 0)
			goto usage_error;
		if (!strcmp(n, "max-connections") && parse_uint(n, v, 10000000, &u) < 0)
			goto usage_error;
		if (!strcmp(n, "max-connections"))
			px.o.max_connections = u;
		if (!strcmp(n, "max-request-headers-kb") && parse_uint(n, v, 8192, &kb) < 0)
			goto usage_error;
		if (!strcmp(n, "max-headers-count") && parse_uint(n, v, 10000, &maxh) < 0)
			goto usage_error;
		/* RFC 9113 §6.5.2, §6.9.1: windows up to 2^31-1. */
		if (!strcmp(n, "h2-max-concurrent-streams") &&
		    parse_uint(n, v, 100000, &px.o.h2_max_streams) < 0)
			goto usage_error;
		if (!strcmp(n, "h2-stream-window") &&
		    parse_uint(n, v, 0x7fffffff, &px.o.h2_stream_window) < 0)
			goto usage_error;
		if (!strcmp(n, "h2-connection-window") &&
		    parse_uint(n, v, 0x7fffffff, &px.o.h2_conn_window) < 0)
			goto usage_error;
		if (!strcmp(n, "buffers") && parse_uint(n, v, 32768, &nbufs) < 0)
			goto usage_error;
		if (!strcmp(n, "buffers") && (nbufs < 16 || (nbufs & (nbufs - 1)))) {
			fprintf(stderr, "ringside proxy: --buffers: %u is not a power of two >= 16\n",
				nbufs);
			goto usage_error;
		}
		if (!strcmp(n, "log-level") && rs_log_parse_level(v, &lvl) < 0) {
			fprintf(stderr, "ringside proxy: --log-level: '%s' is not one of debug, "
					"info, warn, error\n",
				v);
			goto usage_error;
		}
		if (!strcmp(n, "namespace"))
			px.o.ns = px.id.ns = v;
		if (!strcmp(n, "service-account"))
			px.id.service_account = v;
		if (!strcmp(n, "trust-domain"))
			px.id.trust_domain = v;
		if (!strcmp(n, "cert"))
			px.id.cert_file = v;
		if (!strcmp(n, "key"))
			px.id.key_file = v;
		if (!strcmp(n, "ca"))
			px.id.ca_file = v;
		if (!strcmp(n, "listen-address"))
			px.o.listen_addr = v;
		if (!strcmp(n, "tls-min-version")) {
			if (strcmp(v, "1.2") && strcmp(v, "1.3")) {
				fprintf(stderr, "ringside proxy: --tls-min-version: '%s' is not 1.2 or "
						"1.3\n",
					v);
				goto usage_error;
			}
			rs_tls_set_mesh_min_version(strcmp(v, "1.2") == 0);
		}
	}
	if (kb == 0 || maxh == 0) {
		fprintf(stderr, "ringside proxy: header limits must be at least 1\n");
		goto usage_error;
	}
	/* Below the protocol's initial 65,535 the windows could only shrink
	 * after the client had already sent: not offered. */
	if (px.o.h2_max_streams == 0 || px.o.h2_stream_window < 65535 ||
	    px.o.h2_conn_window < 65535) {
		fprintf(stderr, "ringside proxy: --h2-max-concurrent-streams must be at least 1, "
				"--h2-stream-window and --h2-connection-window at least 65535\n");
		goto usage_error;
	}
	px.o.max_header_bytes = kb * 1024;
	px.o.max_headers = maxh;
	px.o.nbufs = nbufs;
	px.o.buf_size = 16384;
	rs_log_min = lvl;

	ncpus = (int)cpus_allowed(cpu_list, 1024);
	px.o.concurrency = conc ? conc : (unsigned)ncpus;

	if (rs_ring_probe(err, sizeof err) < 0) {
		fprintf(stderr, "ringside: %s\n", err);
		goto out;
	}

	if (px.id.cert_file || px.id.key_file || px.id.ca_file) {
		if (!px.id.cert_file || !px.id.key_file || !px.id.ca_file) {
			fprintf(stderr, "ringside: --cert, --key and --ca go together\n");
			ret = 2;
			goto out;
		}
		/* Said at start, plainly; each snapshot builds its own from the
		 * files as they are then (rotation). */
		inbound_tls = rs_tls_server_ctx_new(px.id.cert_file, px.id.key_file, px.id.ca_file,
						    err, sizeof err);
		if (!inbound_tls) {
			fprintf(stderr, "ringside: %s\n", err);
			ret = 2;
			goto out;
		}
		rs_tls_ctx_free(inbound_tls);
	}
	if (rs_reloader_init(&px.rl, paths, npaths, &px.id, px.o.concurrency, &px.shared) < 0)
		goto out;
	px.rl.wake = wake_all;
	px.rl.wake_arg = &px;

	ret = 1;
	if (port_taken(px.o.listen_addr, px.o.outbound_port, "outbound") ||
	    (px.o.inbound_port && port_taken(px.o.listen_addr, px.o.inbound_port, "inbound")))
		goto out_snap;
	snprintf(own_id, sizeof own_id, "spiffe://%s/ns/%s/sa/%s", px.id.trust_domain, px.id.ns,
		 px.id.service_account);
	px.o.own_id = own_id;
	px.w = calloc(px.o.concurrency, sizeof *px.w);
	if (!px.w)
		goto out_snap;
	for (unsigned i = 0; i < px.o.concurrency; i++)
		px.w[i].listen_fd = px.w[i].inbound_fd = px.w[i].wake_fd = -1;
	for (unsigned i = 0; i < px.o.concurrency; i++) {
		struct rs_worker *w = &px.w[i];
		int fd = rs_listen_socket(px.o.listen_addr, px.o.outbound_port, 4096);

		w->listen_fd = fd;
		if (fd < 0) {
			fprintf(stderr, "ringside: cannot listen on %s:%u (outbound port): %s\n",
				px.o.listen_addr, px.o.outbound_port, strerror(-fd));
			goto out_listen;
		}
		if (px.o.inbound_port) {
			fd = rs_listen_socket(px.o.listen_addr, px.o.inbound_port, 4096);
			w->inbound_fd = fd;
			if (fd < 0) {
				fprintf(stderr, "ringside: cannot listen on %s:%u (inbound port): %s\n",
					px.o.listen_addr, px.o.inbound_port, strerror(-fd));
				goto out_listen;
			}
		}
		w->stats = aligned_alloc(64, sizeof *w->stats);
		if (!w->stats)
			goto out_listen;
		memset(w->stats, 0, sizeof *w->stats);
	}
	px.done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	hooks = (struct rs_admin_hooks){.merge_stats = merge_stats,
					.drain = drain,
					.draining = draining,
					.stopped = stopped,
					.reload = reload,
					.config_status = config_status,
					.config_dump = config_dump,
					.config_metrics = config_metrics,
					.watch_fd = rs_reloader_fd(&px.rl),
					.on_watch = on_watch,
					.timeout_ms = timeout_ms,
					.tick = tick,
					.arg = &px,
					.done_fd = px.done_fd};
	if (rs_admin_init(&admin, admin_port, stats_port, health_port, &hooks, err, sizeof err) <
	    0) {
		fprintf(stderr, "ringside: %s\n", err);
		goto out_listen;
	}
	{
		/* Shards inherit this mask: signals go to the main thread's
		 * signalfd only. SIGPIPE never: sends use MSG_NOSIGNAL. */
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGHUP);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		signal(SIGPIPE, SIG_IGN);
	}
	px.shared.workers = px.w;
	px.shared.nworkers = px.o.concurrency;
	pthread_barrier_init(&px.ready, NULL, px.o.concurrency + 1);
	atomic_store(&px.running, px.o.concurrency);
	for (unsigned i = 0; i < px.o.concurrency; i++) {
		struct rs_worker *w = &px.w[i];

		w->id = i;
		w->cpu = px.o.concurrency <= (unsigned)ncpus ? cpu_list[i] : -1;
		w->opts = &px.o;
		w->shared = &px.shared;
		w->owner = &px;
		if (rs_thread_start(&w->thread, w->cpu, shard_main, w) < 0) {
			fprintf(stderr, "ringside: cannot start shard %u\n", i);
			exit(1);
		}
	}
	pthread_barrier_wait(&px.ready);
	ret = 0;
	for (unsigned i = 0; i < px.o.concurrency; i++)
		if (px.w[i].failed)
			ret = 1;
	if (ret) {
		fprintf(stderr, "ringside: a shard failed to start (see above)\n");
		drain(&px);
	} else {
		rs_info("ringside %s: %u shard(s), outbound %s:%u, admin 127.0.0.1:%u, "
			"stats :%u, health :%u",
			RINGSIDE_VERSION, px.o.concurrency, px.o.listen_addr, px.o.outbound_port,
			admin_port, stats_port, health_port);
	}
	rs_admin_run(&admin);
	for (unsigned i = 0; i < px.o.concurrency; i++)
		pthread_join(px.w[i].thread, NULL);
	rs_admin_fini(&admin);
	pthread_barrier_destroy(&px.ready);
	close(px.done_fd);
	if (!ret)
		rs_info("drained; exiting");
out_listen:
	for (unsigned i = 0; i < px.o.concurrency; i++) {
		if (px.w[i].listen_fd >= 0)
			close(px.w[i].listen_fd);
		if (px.w[i].inbound_fd >= 0)
			close(px.w[i].inbound_fd);
		free(px.w[i].stats);
	}
	free(px.w);
out_snap:
	rs_reloader_fini(&px.rl);
out:
	free(env_labels);
	return ret;
usage_error:
	free(env_labels);
	return 2;
}
