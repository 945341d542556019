/* Per-shard statistics as the admin port shows them: counters by response
 * class, and the Prometheus text a scraper parses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ringside/telemetry.h"

static struct rs_stats *stats_new(void)
{
	struct rs_stats *s = aligned_alloc(64, sizeof *s);

	assert_non_null(s);
	memset(s, 0, sizeof *s);
	return s;
}

/* noinline: inlined, GCC 12+ mistakes the returned buffer for a pointer to
 * the local whose address open_memstream took (-Wdangling-pointer). */
__attribute__((noinline)) static char *prometheus(const struct rs_stats *s)
{
	char *out = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&out, &size);

	assert_non_null(f);
	rs_stats_write_prometheus(s, f);
	assert_int_equal(fclose(f), 0);
	return out;
}

/* The value of the sample line that starts with exactly `series ` . */
static int sample(const char *text, const char *series, unsigned long long *v)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return sscanf(p + n + 1, "%llu", v) == 1 ? 0 : -1;
	}
	return -1;
}

static unsigned long long must_sample(const char *text, const char *series)
{
	unsigned long long v;

	if (sample(text, series, &v) < 0)
		fail_msg("no sample \"%s\" in:\n%s", series, text);
	return v;
}

static size_t count_lines(const char *text, const char *line)
{
	size_t n = 0, len = strlen(line);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, line, len) == 0 && p[len] == '\n')
			n++;
	return n;
}

static void test_record_request_classes(void **state)
{
	static const int statuses[] = {100, 101, 200, 204, 299, 301, 304, 404, 431, 499,
				       500, 503, 599, 0,   99,  600, 1000, -200};
	struct rs_stats *s = stats_new();

	for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
		rs_stats_record_request(s, statuses[i], 10, 1);
	/* Every request counts; only 1xx..5xx have a class. */
	assert_int_equal(s->c[RS_C_DS_RQ_TOTAL], 18);
	assert_int_equal(s->c[RS_C_DS_RQ_1XX], 2);
	assert_int_equal(s->c[RS_C_DS_RQ_2XX], 3);
	assert_int_equal(s->c[RS_C_DS_RQ_3XX], 2);
	assert_int_equal(s->c[RS_C_DS_RQ_4XX], 3);
	assert_int_equal(s->c[RS_C_DS_RQ_5XX], 3);
	assert_int_equal(s->rq_duration.count, 18);
	assert_int_equal(s->added.count, 18);
	assert_int_equal(s->rq_duration_prom.count, 18);
	assert_int_equal(s->added_prom.count, 18);
	assert_int_equal(s->rq_duration.sum, 180);
	assert_int_equal(s->added.sum, 18);
	/* Nothing else moves. */
	assert_int_equal(s->c[RS_C_DS_CX_TOTAL], 0);
	assert_int_equal(s->c[RS_C_DS_RQ_ACTIVE], 0);
	free(s);
}

static void test_merge(void **state)
{
	struct rs_stats *a = stats_new(), *b = stats_new(), *sum = stats_new();

	rs_stats_record_request(a, 200, 100, 5);
	rs_stats_record_request(b, 503, 70000, 30);
	rs_stat_inc(a, RS_C_DS_CX_ACTIVE);
	rs_stat_inc(b, RS_C_DS_CX_ACTIVE);
	rs_stat_dec(b, RS_C_DS_CX_ACTIVE);
	rs_stats_merge(sum, a);
	rs_stats_merge(sum, b);
	assert_int_equal(sum->c[RS_C_DS_RQ_TOTAL], 2);
	assert_int_equal(sum->c[RS_C_DS_RQ_2XX], 1);
	assert_int_equal(sum->c[RS_C_DS_RQ_5XX], 1);
	assert_int_equal(sum->c[RS_C_DS_CX_ACTIVE], 1);
	assert_int_equal(sum->rq_duration.max, 70000);
	assert_int_equal(sum->rq_duration_prom.count, 2);
	assert_int_equal(sum->added.sum, 35);
	free(a);
	free(b);
	free(sum);
}

/* A gauge decremented on a shard that did not increment it reads as the
 * signed sum after merging, never as a 20-digit number. */
static void test_gauge_prints_signed(void **state)
{
	struct rs_stats *a = stats_new(), *sum = stats_new();
	char *out;

	rs_stat_dec(a, RS_C_US_CX_ACTIVE);
	rs_stats_merge(sum, a);
	out = prometheus(sum);
	assert_non_null(strstr(out, "\nringside_upstream_cx_active -1\n"));
	free(out);
	free(a);
	free(sum);
}

static const char *const families[][2] = {
	{"ringside_downstream_rq_total", "counter"},
	{"ringside_downstream_cx_total", "counter"},
	{"ringside_downstream_cx_active", "gauge"},
	{"ringside_downstream_cx_overflow_total", "counter"},
	{"ringside_downstream_rx_bytes_total", "counter"},
	{"ringside_downstream_tx_bytes_total", "counter"},
	{"ringside_downstream_rq_active", "gauge"},
	{"ringside_downstream_rq_rejected_total", "counter"},
	{"ringside_upstream_cx_total", "counter"},
	{"ringside_upstream_cx_active", "gauge"},
	{"ringside_upstream_cx_connect_fail_total", "counter"},
	{"ringside_upstream_cx_connect_timeout_total", "counter"},
	{"ringside_upstream_cx_reused_total", "counter"},
	{"ringside_upstream_rq_timeout_total", "counter"},
	{"ringside_upstream_rq_reset_total", "counter"},
	{"ringside_downstream_cx_tls_total", "counter"},
	{"ringside_downstream_cx_tls_resumed_total", "counter"},
	{"ringside_upstream_cx_tls_total", "counter"},
	{"ringside_upstream_cx_tls_resumed_total", "counter"},
	{"ringside_downstream_rq_duration_microseconds", "histogram"},
	{"ringside_proxy_added_microseconds", "histogram"},
};

static void test_prometheus_help_and_type(void **state)
{
	struct rs_stats *s = stats_new();
	char *out = prometheus(s);

	for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
		char line[200];
		const char *help, *type;

		snprintf(line, sizeof line, "# TYPE %s %s", families[i][0], families[i][1]);
		if (count_lines(out, line) != 1)
			fail_msg("want one \"%s\" line in:\n%s", line, out);
		type = strstr(out, line);
		snprintf(line, sizeof line, "# HELP %s ", families[i][0]);
		help = strstr(out, line);
		if (!help)
			fail_msg("no \"%s\" line in:\n%s", line, out);
		/* HELP comes right before TYPE, and has text. */
		assert_true(help < type);
		assert_ptr_equal(strchr(help, '\n') + 1, type);
		assert_true(help[strlen(line)] != '\n');
	}
	/* The text ends with a newline and has no empty line. */
	assert_true(strlen(out) > 0 && out[strlen(out) - 1] == '\n');
	assert_null(strstr(out, "\n\n"));
	free(out);
	free(s);
}

/* Each sample belongs to the family whose TYPE line came last: a scraper
 * rejects a sample of an undeclared family. */
static void test_prometheus_samples_follow_their_type(void **state)
{
	struct rs_stats *s = stats_new();
	char *out, *save = NULL, family[128] = "";

	rs_stats_record_request(s, 200, 1, 1);
	out = prometheus(s);
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(family);

		if (strncmp(line, "# TYPE ", 7) == 0) {
			assert_int_equal(sscanf(line + 7, "%127s", family), 1);
			continue;
		}
		if (line[0] == '#')
			continue;
		if (n == 0 || strncmp(line, family, n) != 0)
			fail_msg("sample \"%s\" after TYPE of \"%s\"", line, family);
		/* The rest is the family itself, a label set, or a histogram suffix. */
		if (!(line[n] == ' ' || line[n] == '{' || strncmp(line + n, "_bucket{", 8) == 0 ||
		      strncmp(line + n, "_sum ", 5) == 0 || strncmp(line + n, "_count ", 7) == 0))
			fail_msg("sample \"%s\" is not part of family \"%s\"", line, family);
	}
	free(out);
	free(s);
}

static void check_histogram(const char *out, const char *name, unsigned long long count,
			    unsigned long long sum)
{
	unsigned long long prev = 0, v;
	char series[200];

	for (unsigned i = 0; i < RS_PROM_BOUNDS; i++) {
		snprintf(series, sizeof series, "%s_bucket{le=\"%llu\"}", name,
			 (unsigned long long)rs_prom_bounds_us[i]);
		v = must_sample(out, series);
		if (v < prev)
			fail_msg("%s = %llu, below the previous bucket's %llu", series, v, prev);
		prev = v;
	}
	snprintf(series, sizeof series, "%s_bucket{le=\"+Inf\"}", name);
	v = must_sample(out, series);
	assert_true(v >= prev);
	assert_int_equal(v, count);
	snprintf(series, sizeof series, "%s_count", name);
	assert_int_equal(must_sample(out, series), count);
	snprintf(series, sizeof series, "%s_sum", name);
	assert_int_equal(must_sample(out, series), sum);
}

static void test_prometheus_histograms(void **state)
{
	static const uint64_t durations[] = {0, 25, 26, 100, 999, 1000, 1001, 60000000, 60000001,
					     UINT32_MAX};
	struct rs_stats *s = stats_new();
	unsigned long long sum = 0;
	char *out;

	for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
		rs_stats_record_request(s, 200, durations[i], 3);
		sum += durations[i];
	}
	rs_stats_record_request(s, 404, 50, 3);
	sum += 50;
	out = prometheus(s);
	check_histogram(out, "ringside_downstream_rq_duration_microseconds", 11, sum);
	check_histogram(out, "ringside_proxy_added_microseconds", 11, 33);

	/* Cumulative: le="25" holds 0 and 25; le="50" adds 26 and 50; le="1000"
	 * holds everything up to 1000; le="60000000" all but the last two. */
	assert_int_equal(
		must_sample(out, "ringside_downstream_rq_duration_microseconds_bucket{le=\"25\"}"),
		2);
	assert_int_equal(
		must_sample(out, "ringside_downstream_rq_duration_microseconds_bucket{le=\"50\"}"),
		4);
	assert_int_equal(
		must_sample(out,
			    "ringside_downstream_rq_duration_microseconds_bucket{le=\"1000\"}"),
		7);
	assert_int_equal(
		must_sample(out,
			    "ringside_downstream_rq_duration_microseconds_bucket{le=\"60000000\"}"),
		9);
	/* Every added time of 3 falls in the first bucket. */
	assert_int_equal(must_sample(out, "ringside_proxy_added_microseconds_bucket{le=\"25\"}"),
			 11);

	assert_int_equal(
		must_sample(out, "ringside_downstream_rq_total{response_code_class=\"2xx\"}"), 10);
	assert_int_equal(
		must_sample(out, "ringside_downstream_rq_total{response_code_class=\"4xx\"}"), 1);
	assert_int_equal(
		must_sample(out, "ringside_downstream_rq_total{response_code_class=\"5xx\"}"), 0);
	free(out);
	free(s);
}

static void test_prometheus_counters(void **state)
{
	struct rs_stats *s = stats_new();
	char *out;

	rs_stat_add(&s->c[RS_C_DS_RX_BYTES], 123456789);
	rs_stat_inc(s, RS_C_US_CX_REUSED);
	rs_stat_inc(s, RS_C_US_CX_REUSED);
	out = prometheus(s);
	assert_int_equal(must_sample(out, "ringside_downstream_rx_bytes_total"), 123456789);
	assert_int_equal(must_sample(out, "ringside_upstream_cx_reused_total"), 2);
	assert_int_equal(must_sample(out, "ringside_downstream_tx_bytes_total"), 0);
	free(out);
	free(s);
}

static void test_text(void **state)
{
	struct rs_stats *s = stats_new();
	char *out = NULL;
	size_t size = 0;
	FILE *f;

	for (uint64_t v = 1; v <= 1000; v++)
		rs_stats_record_request(s, 200, v, 1);
	f = open_memstream(&out, &size);
	assert_non_null(f);
	rs_stats_write_text(s, f);
	fclose(f);
	assert_non_null(strstr(out, "ringside_downstream_rq_2xx: 1000\n"));
	assert_non_null(strstr(out, "ringside_downstream_rq_duration_microseconds_max: 1000\n"));
	assert_non_null(strstr(out, "ringside_proxy_added_microseconds_p99: 1\n"));
	{
		const char *p = strstr(out, "ringside_downstream_rq_duration_microseconds_p50: ");
		unsigned long long v;

		assert_non_null(p);
		assert_int_equal(sscanf(strchr(p, ':') + 1, "%llu", &v), 1);
		assert_true(v >= 500 && v <= 500 + 500 / 32);
	}
	free(out);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_request_classes),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_gauge_prints_signed),
		cmocka_unit_test(test_prometheus_help_and_type),
		cmocka_unit_test(test_prometheus_samples_follow_their_type),
		cmocka_unit_test(test_prometheus_histograms),
		cmocka_unit_test(test_prometheus_counters),
		cmocka_unit_test(test_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
