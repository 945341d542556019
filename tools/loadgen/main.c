/* ringside-load: command line, report and JSON. See tools/loadgen/README.md. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "load.h"

static const char usage[] =
	"usage: ringside-load [options] URL\n"
	"  URL is http://host[:port]/path or https://host[:port]/path\n"
	"  -c, --connections N   connections, all opened before the clock starts (default 1)\n"
	"  -r, --rate R          requests per second over all connections, sent on schedule\n"
	"                        whether or not earlier ones were answered (open loop);\n"
	"                        0: closed loop, each answer lets the next request go (default 0)\n"
	"  -d, --duration T      time measured (default 10s; units us, ms, s, m)\n"
	"  -w, --warmup T        time run first and not counted (default 0)\n"
	"  -H, --header 'N: V'   request header, repeatable; 'Host: x' sets the authority\n"
	"  -m, --method M        request method (default GET)\n"
	"      --body-size N     request body of N bytes\n"
	"      --h2              HTTP/2: prior knowledge on http://, ALPN h2 on https://\n"
	"  -s, --streams N       HTTP/2 requests in flight per connection (default 10)\n"
	"      --per-conn N      replace each connection after N requests (1: one per request)\n"
	"      --timeout T       a request not answered in T fails (default 10s)\n"
	"      --spin T          open loop: busy-wait the last T before each due time\n"
	"                        instead of sleeping (e.g. 100us; costs a core)\n"
	"      --cacert FILE     CA bundle to verify the server with (https)\n"
	"      --cert FILE       client certificate chain (mutual TLS)\n"
	"      --key FILE        client private key\n"
	"      --sni NAME        server name sent and verified (default: the URL's host, not verified)\n"
	"  -k, --insecure        do not verify the server's certificate\n"
	"      --json FILE       also write the report as JSON (- for stdout)\n"
	"  -q, --quiet           no text report\n"
	"      --version         print the version\n"
	"Exit status: 0 done; 1 could not start; 2 bad arguments; 3 nothing was answered.\n";

static int fail(const char *what, const char *arg)
{
	fprintf(stderr, "ringside-load: %s: %s\n%s", what, arg, usage);
	return 2;
}

/* "250ms", "10s", "2m" or a bare number of seconds; -1 when not a duration. */
static double parse_time(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0 || !isfinite(v))
		return -1;
	if (*end == 0 || strcmp(end, "s") == 0)
		return v;
	if (strcmp(end, "ms") == 0)
		return v / 1e3;
	if (strcmp(end, "us") == 0)
		return v / 1e6;
	if (strcmp(end, "m") == 0)
		return v * 60;
	return -1;
}

static int parse_count(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (end == s || *end || *s == '-' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_url(struct lg_opts *o)
{
	const char *u = o->url, *host, *hend, *path;
	size_t n;

	if (strncmp(u, "http://", 7) == 0) {
		host = u + 7;
	} else if (strncmp(u, "https://", 8) == 0) {
		host = u + 8;
		o->tls = true;
	} else {
		return -1;
	}
	path = host + strcspn(host, "/?");
	if (*host == '[') { /* [v6]:port */
		hend = strchr(host, ']');
		if (!hend || hend > path)
			return -1;
		n = (size_t)(hend - host - 1);
		if (n == 0 || n >= sizeof(o->host))
			return -1;
		memcpy(o->host, host + 1, n);
		o->host[n] = 0;
		hend++;
	} else {
		hend = host + strcspn(host, ":/?");
		n = (size_t)(hend - host);
		if (n == 0 || n >= sizeof(o->host))
			return -1;
		memcpy(o->host, host, n);
		o->host[n] = 0;
	}
	if (*hend == ':') {
		uint64_t port;
		char digits[8] = {0};

		n = (size_t)(path - hend - 1);
		if (n == 0 || n >= sizeof(digits))
			return -1;
		memcpy(digits, hend + 1, n);
		if (parse_count(digits, 1, 65535, &port) < 0)
			return -1;
		snprintf(o->port, sizeof(o->port), "%u", (unsigned)port);
	} else if (hend != path) {
		return -1;
	} else {
		strcpy(o->port, o->tls ? "443" : "80");
	}
	n = (size_t)(path - host);
	if (n >= sizeof(o->authority))
		return -1;
	memcpy(o->authority, host, n);
	o->authority[n] = 0;
	snprintf(o->path, sizeof(o->path), "%s%s", *path == '?' ? "/" : "", *path ? path : "/");
	return strlen(path) + 2 > sizeof(o->path) ? -1 : 0;
}

static int header_ok(const char *h)
{
	const char *colon = strchr(h, ':');

	if (!colon || colon == h || strpbrk(h, "\r\n"))
		return 0;
	for (const char *p = h; p < colon; p++)
		if (*p <= ' ' || *p >= 127)
			return 0;
	return 1;
}

enum { O_H2 = 256, O_BODY, O_PERCONN, O_TIMEOUT, O_CACERT, O_CERT, O_KEY, O_SNI, O_JSON, O_SPIN,
       O_VERSION };

static int parse_args(int argc, char **argv, struct lg_opts *o)
{
	static const struct option longs[] = {
		{"connections", required_argument, NULL, 'c'},
		{"rate", required_argument, NULL, 'r'},
		{"duration", required_argument, NULL, 'd'},
		{"warmup", required_argument, NULL, 'w'},
		{"header", required_argument, NULL, 'H'},
		{"method", required_argument, NULL, 'm'},
		{"body-size", required_argument, NULL, O_BODY},
		{"h2", no_argument, NULL, O_H2},
		{"streams", required_argument, NULL, 's'},
		{"per-conn", required_argument, NULL, O_PERCONN},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"cacert", required_argument, NULL, O_CACERT},
		{"cert", required_argument, NULL, O_CERT},
		{"key", required_argument, NULL, O_KEY},
		{"sni", required_argument, NULL, O_SNI},
		{"insecure", no_argument, NULL, 'k'},
		{"json", required_argument, NULL, O_JSON},
		{"spin", required_argument, NULL, O_SPIN},
		{"version", no_argument, NULL, O_VERSION},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	uint64_t v;
	int ch;

	o->connections = 1;
	o->streams = 10;
	o->duration = 10;
	o->timeout = 10;
	o->method = "GET";
	while ((ch = getopt_long(argc, argv, "c:r:d:w:H:m:s:kqh", longs, NULL)) != -1) {
		switch (ch) {
		case 'c':
			if (parse_count(optarg, 1, 100000, &v) < 0)
				return fail("--connections wants 1 to 100000", optarg);
			o->connections = (unsigned)v;
			break;
		case 'r': {
			char *end;

			o->rate = strtod(optarg, &end);
			if (end == optarg || *end || o->rate < 0 || !isfinite(o->rate) || o->rate > 1e8)
				return fail("--rate wants requests per second, 0 to 1e8", optarg);
			break;
		}
		case 'd':
			if ((o->duration = parse_time(optarg)) <= 0)
				return fail("--duration wants a time above zero such as 10s", optarg);
			break;
		case 'w':
			if ((o->warmup = parse_time(optarg)) < 0)
				return fail("--warmup wants a time such as 2s", optarg);
			break;
		case O_TIMEOUT:
			if ((o->timeout = parse_time(optarg)) <= 0)
				return fail("--timeout wants a time above zero such as 2s", optarg);
			break;
		case 'H':
			if (!header_ok(optarg))
				return fail("--header wants 'Name: value'", optarg);
			if (o->nheaders == sizeof(o->headers) / sizeof(o->headers[0]))
				return fail("too many --header options (64 at most)", optarg);
			o->headers[o->nheaders++] = optarg;
			break;
		case 'm':
			if (!*optarg || strpbrk(optarg, " \t\r\n"))
				return fail("--method wants a token", optarg);
			o->method = optarg;
			break;
		case O_BODY:
			if (parse_count(optarg, 0, 1 << 24, &v) < 0)
				return fail("--body-size wants 0 to 16777216 bytes", optarg);
			o->body_size = (size_t)v;
			break;
		case O_H2:
			o->proto = LG_H2;
			break;
		case 's':
			if (parse_count(optarg, 1, 1000, &v) < 0)
				return fail("--streams wants 1 to 1000", optarg);
			o->streams = (unsigned)v;
			break;
		case O_PERCONN:
			if (parse_count(optarg, 1, UINT64_MAX, &v) < 0)
				return fail("--per-conn wants a count of 1 or more", optarg);
			o->per_conn = v;
			break;
		case O_CACERT: o->cacert = optarg; break;
		case O_CERT: o->cert = optarg; break;
		case O_KEY: o->key = optarg; break;
		case O_SNI: o->sni = optarg; break;
		case 'k': o->insecure = true; break;
		case O_JSON: o->json = optarg; break;
		case O_SPIN: {
			double t = parse_time(optarg);

			if (t < 0 || t > 1)
				return fail("--spin wants a time up to 1s, such as 100us", optarg);
			o->spin_ns = (uint64_t)(t * 1e9);
			break;
		}
		case O_VERSION: printf("ringside-load %s\n", RINGSIDE_VERSION); exit(0);
		case 'q': o->quiet = true; break;
		case 'h': fputs(usage, stdout); exit(0);
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind != argc - 1)
		return fail("want exactly one URL", optind < argc ? argv[optind + 1] : "none given");
	o->url = argv[optind];
	if (parse_url(o) < 0)
		return fail("not an http:// or https:// URL with a host, an optional port and a path",
			    o->url);
	for (unsigned i = 0; i < o->nheaders; i++) {
		const char *h = o->headers[i];

		if (strncasecmp(h, "host:", 5) == 0) {
			h += 5;
			while (*h == ' ' || *h == '\t')
				h++;
			if (!*h || strlen(h) >= sizeof(o->authority))
				return fail("--header Host: wants a value", o->headers[i]);
			strcpy(o->authority, h);
		}
	}
	if (o->tls && !o->insecure && !o->cacert)
		return fail("https:// wants --cacert FILE to verify the server, or --insecure", o->url);
	if (!o->tls && (o->cacert || o->cert || o->key || o->sni))
		return fail("TLS options given for a plain http:// URL", o->url);
	if (!o->cert != !o->key)
		return fail("--cert and --key go together", o->cert ? o->cert : o->key);
	return 0;
}

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

static const double marks[] = {0.5, 0.9, 0.99, 0.999, 0.9999};
static const char *const mark_names[] = {"p50", "p90", "p99", "p99.9", "p99.99"};
#define NMARKS (sizeof(marks) / sizeof(marks[0]))

static void print_row(const char *name, const struct lg_hist *h)
{
	printf("  %-12s", name);
	for (unsigned i = 0; i < NMARKS; i++)
		printf(" %9.1f", us(lg_hist_quantile(h, marks[i])));
	printf(" %9.1f %9.1f\n", us(h->max), h->count ? us(h->sum / h->count) : 0.0);
}

static const char *proto_name(const struct lg_opts *o)
{
	return o->proto == LG_H2 ? "HTTP/2" : "HTTP/1.1";
}

static void print_report(const struct lg_opts *o, const struct lg_run *run)
{
	const struct lg_result *r = &run->meas;
	static const char *const cls[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
	uint64_t nerr = 0;

	printf("ringside-load %s: %s%s, %u connection%s", o->url, proto_name(o), o->tls ? " over TLS" : "",
	       o->connections, o->connections == 1 ? "" : "s");
	if (o->proto == LG_H2)
		printf(" x %u streams", o->streams);
	if (o->rate > 0)
		printf(", open loop at %.0f req/s", o->rate);
	else
		printf(", closed loop");
	printf(", %.3g s", run->measured_s);
	if (o->warmup > 0)
		printf(" after %.3g s warm-up", o->warmup);
	printf("\n  requests    %llu sent, %llu answered, %.1f/s\n", (unsigned long long)r->sent,
	       (unsigned long long)r->completed, (double)r->completed / run->measured_s);
	printf("  responses  ");
	for (unsigned i = 1; i <= 6; i++)
		if (r->status[i % 6])
			printf(" %s %llu", cls[i % 6], (unsigned long long)r->status[i % 6]);
	printf("\n  errors     ");
	for (unsigned i = 0; i < LG_E_MAX; i++)
		if (r->errors[i]) {
			printf(" %s %llu", lg_error_names[i], (unsigned long long)r->errors[i]);
			nerr += r->errors[i];
		}
	printf("%s\n", nerr ? "" : " none");
	printf("  latency µs  %9s %9s %9s %9s %9s %9s %9s\n", "p50", "p90", "p99", "p99.9", "p99.99",
	       "max", "mean");
	print_row("corrected", &r->corrected);
	print_row("uncorrected", &r->uncorrected);
	print_row("send lag", &r->lag);
	printf("  transfer    %.1f kB in, %.1f kB out; %llu new connection%s while measured\n",
	       r->bytes_in / 1e3, r->bytes_out / 1e3, (unsigned long long)r->connects,
	       r->connects == 1 ? "" : "s");
	if (run->alpn)
		printf("  tls         ALPN %s\n", run->alpn);
	if (run->backlog_end)
		printf("  warning: %llu requests due in the measurement were never sent: the target "
		       "did not keep up with %.0f/s\n",
		       (unsigned long long)run->backlog_end, o->rate);
	if (run->inflight_end)
		printf("  warning: %llu requests were still unanswered %.3g s after the end\n",
		       (unsigned long long)run->inflight_end, o->timeout);
}

/* Percentiles 1 - 2^(-i/4) up to the last rank the count resolves, then the
 * max: the points of a latency-by-percentile plot. */
static json_t *spectrum(const struct lg_hist *h)
{
	json_t *a = json_array();

	for (unsigned i = 0; h->count; i++) {
		double q = 1 - pow(2, -(double)i / 4);

		if (1 - q < 1.0 / (double)h->count)
			break;
		json_array_append_new(a, json_pack("[f,f]", q * 100, us(lg_hist_quantile(h, q))));
	}
	if (h->count)
		json_array_append_new(a, json_pack("[f,f]", 100.0, us(h->max)));
	return a;
}

static json_t *hist_json(const struct lg_hist *h)
{
	json_t *o = json_pack("{s:I,s:f,s:f,s:f}", "count", (json_int_t)h->count, "min",
			      h->count ? us(h->min) : 0.0, "mean", h->count ? us(h->sum / h->count) : 0.0,
			      "max", us(h->max));

	for (unsigned i = 0; i < NMARKS; i++)
		json_object_set_new(o, mark_names[i], json_real(us(lg_hist_quantile(h, marks[i]))));
	json_object_set_new(o, "spectrum", spectrum(h));
	return o;
}

static int write_json(const struct lg_opts *o, const struct lg_run *run)
{
	const struct lg_result *r = &run->meas;
	json_t *status = json_object(), *errors = json_object(), *root;
	static const char *const cls[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
	uint64_t nerr = 0;
	int rc;

	for (unsigned i = 0; i < 6; i++)
		json_object_set_new(status, cls[i], json_integer((json_int_t)r->status[i]));
	for (unsigned i = 0; i < LG_E_MAX; i++) {
		json_object_set_new(errors, lg_error_names[i], json_integer((json_int_t)r->errors[i]));
		nerr += r->errors[i];
	}
	json_object_set_new(errors, "total", json_integer((json_int_t)nerr));
	root = json_pack("{s:s,s:s,s:s,s:s,s:b,s:s?,s:I,s:I,s:s,s:f,s:f,s:f,s:f}", "tool",
			 "ringside-load", "version", RINGSIDE_VERSION, "url", o->url, "protocol", o->proto == LG_H2 ? "h2" : "http/1.1", "tls",
			 o->tls, "alpn", run->alpn, "connections", (json_int_t)o->connections,
			 "streams", (json_int_t)(o->proto == LG_H2 ? o->streams : 1), "mode",
			 o->rate > 0 ? "open" : "closed", "rate_target", o->rate, "duration_s",
			 run->measured_s, "warmup_s", o->warmup, "timeout_s", o->timeout);
	json_object_set_new(root, "requests",
			    json_pack("{s:I,s:I,s:f,s:I,s:I}", "sent", (json_int_t)r->sent, "completed",
				      (json_int_t)r->completed, "rate",
				      (double)r->completed / run->measured_s, "backlog_end",
				      (json_int_t)run->backlog_end, "inflight_end",
				      (json_int_t)run->inflight_end));
	json_object_set_new(root, "status", status);
	json_object_set_new(root, "errors", errors);
	json_object_set_new(root, "connects", json_integer((json_int_t)r->connects));
	json_object_set_new(root, "bytes_in", json_integer((json_int_t)r->bytes_in));
	json_object_set_new(root, "bytes_out", json_integer((json_int_t)r->bytes_out));
	json_object_set_new(root, "latency_us",
			    json_pack("{s:o,s:o,s:o}", "corrected", hist_json(&r->corrected),
				      "uncorrected", hist_json(&r->uncorrected), "send_lag",
				      hist_json(&r->lag)));
	if (strcmp(o->json, "-") == 0)
		rc = json_dumpf(root, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(7)) == 0 &&
			     fputc('\n', stdout) != EOF
			     ? 0
			     : -1;
	else
		rc = json_dump_file(root, o->json, JSON_INDENT(1) | JSON_REAL_PRECISION(7));
	json_decref(root);
	if (rc < 0)
		fprintf(stderr, "ringside-load: cannot write %s\n", o->json);
	return rc;
}

int main(int argc, char **argv)
{
	static struct lg_opts o;
	static struct lg_run run;
	int rc = parse_args(argc, argv, &o);

	if (rc)
		return rc;
	if (lg_run(&o, &run) < 0)
		return 1;
	if (!o.quiet)
		print_report(&o, &run);
	if (o.json && write_json(&o, &run) < 0)
		return 1;
	if (run.meas.completed == 0) {
		fprintf(stderr, "ringside-load: no request was answered in the measured time\n");
		return 3;
	}
	return 0;
}
