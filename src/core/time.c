#include <errno.h>
#include <string.h>
#include <time.h>

#include "ringside/core.h"

uint64_t rs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Durations as Istio writes them (protobuf Duration in YAML: "10s", "250ms",
 * "1.5s", "5m", "1h"): digits, an optional fraction, a unit. Parsed in
 * integers so that "4.1s" is exactly 4100000000 ns. */
int rs_duration_parse(const char *s, uint64_t *ns)
{
	static const struct {
		const char *unit;
		uint64_t ns;
	} units[] = {{"ns", 1},          {"us", 1000},          {"\xc2\xb5s", 1000},
		     {"ms", 1000000},    {"s", 1000000000ull},  {"m", 60000000000ull},
		     {"h", 3600000000000ull}};
	uint64_t whole = 0, frac = 0, scale = 1;
	const char *p = s;

	if (!s || !*s)
		return -EINVAL;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	while (*p >= '0' && *p <= '9') {
		if (whole > UINT64_MAX / 10 - 1)
			return -EINVAL;
		whole = whole * 10 + (uint64_t)(*p++ - '0');
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9') {
			if (scale < 1000000000000000000ull) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				scale *= 10;
			}
			p++;
		}
	}
	if (*p == '\0') {
		if (whole || frac)
			return -EINVAL; /* a bare number has no unit */
		*ns = 0;
		return 0;
	}
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(p, units[i].unit) == 0) {
			uint64_t u = units[i].ns;

			if (whole > 1000000000000000000ull / u)
				return -EINVAL;
			/* frac/scale of a unit, rounded down to whole ns */
			*ns = whole * u + (uint64_t)(((unsigned __int128)frac * u) / scale);
			return 0;
		}
	}
	return -EINVAL;
}
