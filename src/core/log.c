/* Logging: one line a message on stderr, written with a single write(2) so
 * lines from shards never interleave. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ringside/core.h"

enum rs_log_level rs_log_min = RS_LOG_INFO;

static __thread char thread_name[16] = "main";

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void rs_log_set_thread(const char *name)
{
	snprintf(thread_name, sizeof thread_name, "%s", name);
}

int rs_log_parse_level(const char *s, enum rs_log_level *out)
{
	for (unsigned i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum rs_log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = RS_LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

void rs_log(enum rs_log_level lvl, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (lvl < rs_log_min)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s [%s] ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000000, level_names[lvl], thread_name);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}
