/* Regular expressions as Istio and Envoy read them: RE2 syntax
 * (https://github.com/google/re2/wiki/Syntax), UTF-8, matched against the
 * whole string like Envoy's safe_regex. A thin C API over RE2's C++ one
 * (src/core/regex.cc); no C++ exception ever crosses it. */
#ifndef RINGSIDE_REGEX_H
#define RINGSIDE_REGEX_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The largest RE2 program (ProgramSize(), roughly one unit per instruction)
 * a pattern may compile to. Envoy refuses bigger programs at the runtime key
 * re2.max_program_size.error_level; Envoy's own default is 100, but Istio's
 * sidecar bootstrap sets 32768 (istio/istio pkg/bootstrap/config.go), and
 * that sidecar is what a resource has to work on. 100 would refuse `\pL`
 * (1197) and ordinary alternations of a few paths. */
#define RS_REGEX_MAX_PROGRAM_SIZE 32768

/* Compiled pattern; opaque, immutable once compiled, so one may be matched
 * from several threads at once. */
struct rs_regex;

/* Compiles pattern[0..len) (it may hold NULs). Returns the compiled regex,
 * or NULL with errno set and a one-line reason in err (when errlen > 0):
 *   EINVAL  not valid RE2, or its program is bigger than
 *           RS_REGEX_MAX_PROGRAM_SIZE; err holds RE2's own message
 *           ("missing ): a(b") or the program size
 *   ENOMEM  out of memory; err says "out of memory" */
struct rs_regex *rs_regex_compile(const char *pattern, size_t len, char *err, size_t errlen);

/* True when re matches all of s[0..len), as RE2::FullMatch and Envoy's
 * safe_regex: "a+" matches "aaa" but not "aaab". RE2 reports no errors while
 * matching; should it run out of memory all the same, this returns false. */
bool rs_regex_full_match(const struct rs_regex *re, const char *s, size_t len);

/* Frees re; NULL is allowed. */
void rs_regex_free(struct rs_regex *re);
/* The range [*min, *max] every string re can match lies in (bytes, not
 * NUL-terminated; they live as long as re), for callers that turn values
 * away before calling rs_regex_full_match. False when re has no useful
 * range (then every value must be tried). */
bool rs_regex_range(const struct rs_regex *re, const char **min, size_t *minlen, const char **max,
		    size_t *maxlen);

#ifdef __cplusplus
}
#endif

#endif
