/* The C face of RE2 (include/ringside/regex.h). Istio documents its regex
 * fields as RE2 syntax and Envoy compiles them with RE2 (safe_regex,
 * google_re2), so using RE2 itself is the only way to accept and refuse
 * exactly what they do.
 *
 * Nothing here may throw into C: std::nothrow for our own allocation, and a
 * catch-all around every call into RE2, whose internals allocate with plain
 * new (std::bad_alloc). */
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <new>
#include <string>

#include <re2/re2.h>

#include "ringside/regex.h"

struct rs_regex {
	re2::RE2 re;
	/* Every string the regex can match lies in [min, max] (RE2's
	 * PossibleMatchRange), for rs_regex_range; ranged false: no useful
	 * range. */
	std::string min, max;
	bool ranged;

	rs_regex(const re2::StringPiece &pattern, const re2::RE2::Options &opt)
	    : re(pattern, opt), ranged(false)
	{
	}
};

/* RE2's default budget, which Envoy runs with too (it changes no option but
 * log_errors). It bounds the compiled program (two thirds of it) and the
 * lazily built DFA caches of each regex; a program under
 * RS_REGEX_MAX_PROGRAM_SIZE needs about 0.5 MiB of it, and a DFA that fills
 * the rest makes RE2 fall back to its NFA, slower but still linear. */
static const int64_t max_mem = 8 << 20;

static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return e;
}

extern "C" struct rs_regex *rs_regex_compile(const char *pattern, size_t len, char *err,
                                             size_t errlen)
{
	struct rs_regex *r = nullptr;
	int e = 0;

	try {
		re2::RE2::Options opt;

		/* Errors come back in err; RE2 would also print them to stderr. */
		opt.set_log_errors(false);
		opt.set_max_mem(max_mem);
		r = new (std::nothrow) rs_regex(re2::StringPiece(pattern, len), opt);
		if (!r)
			e = fail(err, errlen, ENOMEM, "out of memory");
		else if (!r->re.ok())
			e = fail(err, errlen, EINVAL, "%s", r->re.error().c_str());
		else if (r->re.ProgramSize() > RS_REGEX_MAX_PROGRAM_SIZE)
			/* Envoy's wording, so the limit is recognisable. */
			e = fail(err, errlen, EINVAL,
			         "RE2 program size of %d > max program size of %d",
			         r->re.ProgramSize(), RS_REGEX_MAX_PROGRAM_SIZE);
		else
			r->ranged = r->re.PossibleMatchRange(&r->min, &r->max, 16);
	} catch (...) {
		/* std::bad_alloc is all RE2 throws; nothing else may escape. */
		e = fail(err, errlen, ENOMEM, "out of memory");
	}
	if (e) {
		delete r;
		r = nullptr;
		errno = e;
	}
	return r;
}

extern "C" bool rs_regex_full_match(const struct rs_regex *re, const char *s, size_t len)
{
	try {
		return re2::RE2::FullMatch(re2::StringPiece(s, len), re->re);
	} catch (...) {
		return false;
	}
}

extern "C" bool rs_regex_range(const struct rs_regex *re, const char **min, size_t *minlen,
                               const char **max, size_t *maxlen)
{
	if (!re->ranged)
		return false;
	*min = re->min.data();
	*minlen = re->min.size();
	*max = re->max.data();
	*maxlen = re->max.size();
	return true;
}

extern "C" void rs_regex_free(struct rs_regex *re)
{
	delete re;
}
