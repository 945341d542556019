#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "ringside/admin.h"
#include "ringside/core.h"
#include "ringside/net.h"
#include "ringside/telemetry.h"

static int listen_on(const char *addr, uint16_t port, const char *what, char *err, size_t errlen)
{
	int fd;

	if (port == 0)
		return -1;
	fd = rs_listen_socket_opts(addr, port, 64, false);
	if (fd < 0)
		snprintf(err, errlen, "cannot listen on %s:%u (%s port): %s", addr, port, what,
			 strerror(-fd));
	return fd;
}

int rs_admin_init(struct rs_admin *a, uint16_t admin_port, uint16_t stats_port,
		  uint16_t health_port, const struct rs_admin_hooks *hooks, char *err,
		  size_t errlen)
{
	sigset_t set;

	memset(a, 0, sizeof *a);
	a->hooks = *hooks;
	a->admin_fd = a->stats_fd = a->health_fd = a->signal_fd = -1;
	if (admin_port && (a->admin_fd = listen_on("127.0.0.1", admin_port, "admin", err,
						   errlen)) < 0)
		goto fail;
	if (stats_port && (a->stats_fd = listen_on("0.0.0.0", stats_port, "stats", err,
						   errlen)) < 0)
		goto fail;
	if (health_port && (a->health_fd = listen_on("0.0.0.0", health_port, "health", err,
						     errlen)) < 0)
		goto fail;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	a->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (a->signal_fd < 0) {
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		goto fail;
	}
	return 0;
fail:
	rs_admin_fini(a);
	return -EADDRINUSE;
}

void rs_admin_fini(struct rs_admin *a)
{
	int *fds[] = {&a->admin_fd, &a->stats_fd, &a->health_fd, &a->signal_fd};

	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

static void reply(int fd, int status, const char *reason, const char *ctype, const char *body,
		  size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
			 "connection: close\r\n\r\n",
			 status, reason, ctype, len);
	struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, len}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
	/* Each send waits at most SO_SNDTIMEO; a reader this slow in all
	 * gets a cut answer (content-length tells it) rather than holding the
	 * probes that share this thread. */
	uint64_t deadline = rs_now_ns() + 2000000000ull;

	while (msg.msg_iovlen && rs_now_ns() < deadline) {
		ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL);

		if (sent < 0 && errno == EINTR)
			continue;
		if (sent <= 0)
			return;
		while (msg.msg_iovlen && (size_t)sent >= msg.msg_iov->iov_len) {
			sent -= (ssize_t)msg.msg_iov->iov_len;
			msg.msg_iov++;
			msg.msg_iovlen--;
		}
		if (msg.msg_iovlen) {
			msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + sent;
			msg.msg_iov->iov_len -= (size_t)sent;
		}
	}
}

static void reply_text(int fd, int status, const char *reason, const char *body)
{
	reply(fd, status, reason, "text/plain; charset=utf-8", body, strlen(body));
}

enum port_kind { PORT_ADMIN, PORT_STATS, PORT_HEALTH };

static void serve_stats(struct rs_admin *a, int fd, bool prometheus)
{
	struct rs_stats *s = calloc(1, sizeof *s);
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (!s) {
		reply_text(fd, 503, "Service Unavailable", "out of memory\n");
		return;
	}
	a->hooks.merge_stats(a->hooks.arg, s);
	f = open_memstream(&buf, &len);
	if (f) {
		if (prometheus) {
			rs_stats_write_prometheus(s, f);
			if (a->hooks.config_metrics)
				a->hooks.config_metrics(a->hooks.arg, f);
		} else
			rs_stats_write_text(s, f);
		fclose(f);
		reply(fd, 200, "OK",
		      prometheus ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain",
		      buf, len);
	}
	free(buf);
	free(s);
}

static void serve_json(struct rs_admin *a, int fd, void (*write)(void *arg, FILE *f))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f) {
		reply_text(fd, 503, "Service Unavailable", "out of memory\n");
		return;
	}
	write(a->hooks.arg, f);
	fclose(f);
	reply(fd, 200, "OK", "application/json", buf, len);
	free(buf);
}

static void serve(struct rs_admin *a, int fd, enum port_kind kind)
{
	char req[2048], method[16], path[256];
	/* A request that has not arrived within 200 ms is dropped: these
	 * ports are served one connection at a time, and a probe must not wait
	 * behind an idle client. */
	struct timeval tv = {.tv_usec = 200000};
	ssize_t n;
	char *q;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	n = recv(fd, req, sizeof req - 1, 0);
	if (n <= 0)
		return;
	req[n] = '\0';
	if (sscanf(req, "%15s %255s", method, path) != 2) {
		reply_text(fd, 400, "Bad Request", "bad request\n");
		return;
	}
	q = strchr(path, '?');
	if (q)
		*q = '\0';
	if (kind == PORT_HEALTH || (kind == PORT_ADMIN && strcmp(path, "/healthz/ready") == 0)) {
		if (strcmp(path, "/healthz/ready") != 0)
			reply_text(fd, 404, "Not Found", "not found\n");
		else if (a->hooks.draining(a->hooks.arg))
			reply_text(fd, 503, "Service Unavailable", "draining\n");
		else
			reply_text(fd, 200, "OK", "\n");
		return;
	}
	if (strcmp(path, "/stats/prometheus") == 0) {
		serve_stats(a, fd, true);
		return;
	}
	if (kind == PORT_STATS) {
		reply_text(fd, 404, "Not Found", "not found: try /stats/prometheus\n");
		return;
	}
	if (strcmp(path, "/ready") == 0) {
		if (a->hooks.draining(a->hooks.arg))
			reply_text(fd, 503, "Service Unavailable", "DRAINING\n");
		else
			reply_text(fd, 200, "OK", "LIVE\n");
	} else if (strcmp(path, "/stats") == 0) {
		serve_stats(a, fd, false);
	} else if (strcmp(path, "/config_status") == 0 && a->hooks.config_status) {
		serve_json(a, fd, a->hooks.config_status);
	} else if (strcmp(path, "/config_dump") == 0 && a->hooks.config_dump) {
		serve_json(a, fd, a->hooks.config_dump);
	} else if (strcmp(path, "/quitquitquit") == 0) {
		if (strcmp(method, "POST") != 0) {
			reply_text(fd, 405, "Method Not Allowed", "use POST /quitquitquit\n");
			return;
		}
		reply_text(fd, 200, "OK", "OK\n");
		rs_info("drain requested by POST /quitquitquit");
		a->hooks.drain(a->hooks.arg);
	} else if (strcmp(path, "/") == 0) {
		reply_text(fd, 200, "OK",
			   "ringside admin\n"
			   "  GET  /ready              LIVE when serving\n"
			   "  GET  /stats              counters and latency percentiles\n"
			   "  GET  /stats/prometheus   Prometheus text format\n"
			   "  GET  /config_status      generation, last reload, rejected resources\n"
			   "  GET  /config_dump        the configuration in force, as JSON\n"
			   "  POST /quitquitquit       drain and exit\n");
	} else {
		reply_text(fd, 404, "Not Found", "not found: see GET /\n");
	}
}

static void on_signal(struct rs_admin *a)
{
	struct signalfd_siginfo si;

	while (read(a->signal_fd, &si, sizeof si) == sizeof si) {
		if (si.ssi_signo == SIGHUP) {
			if (a->hooks.reload)
				a->hooks.reload(a->hooks.arg, "SIGHUP");
			continue;
		}
		rs_info("%s: draining", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		a->hooks.drain(a->hooks.arg);
	}
}

void rs_admin_run(struct rs_admin *a)
{
	while (!a->hooks.stopped(a->hooks.arg)) {
		struct pollfd p[6];
		enum port_kind kinds[3];
		int n = 0, ret, first_port;

		p[n++] = (struct pollfd){.fd = a->signal_fd, .events = POLLIN};
		p[n++] = (struct pollfd){.fd = a->hooks.done_fd, .events = POLLIN};
		/* A negative fd is ignored by poll. */
		p[n++] = (struct pollfd){.fd = a->hooks.on_watch ? a->hooks.watch_fd : -1,
					 .events = POLLIN};
		first_port = n;
		if (a->admin_fd >= 0) {
			kinds[n - first_port] = PORT_ADMIN;
			p[n++] = (struct pollfd){.fd = a->admin_fd, .events = POLLIN};
		}
		if (a->stats_fd >= 0) {
			kinds[n - first_port] = PORT_STATS;
			p[n++] = (struct pollfd){.fd = a->stats_fd, .events = POLLIN};
		}
		if (a->health_fd >= 0) {
			kinds[n - first_port] = PORT_HEALTH;
			p[n++] = (struct pollfd){.fd = a->health_fd, .events = POLLIN};
		}
		ret = poll(p, (nfds_t)n, a->hooks.timeout_ms ? a->hooks.timeout_ms(a->hooks.arg) : 1000);
		if (ret > 0 && p[0].revents)
			on_signal(a);
		if (ret > 0 && p[1].revents) {
			uint64_t v;

			(void)!read(a->hooks.done_fd, &v, sizeof v);
		}
		if (ret > 0 && p[2].revents)
			a->hooks.on_watch(a->hooks.arg);
		if (a->hooks.tick)
			a->hooks.tick(a->hooks.arg);
		if (ret <= 0)
			continue;
		for (int i = first_port; i < n; i++) {
			int fd;

			if (!(p[i].revents & POLLIN))
				continue;
			fd = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			/* accept4 without SOCK_NONBLOCK: the answer is written with
			 * blocking calls bounded by SO_SNDTIMEO. */
			serve(a, fd, kinds[i - first_port]);
			close(fd);
		}
	}
}
