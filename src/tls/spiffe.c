/* SPIFFE IDs in Istio's form, spiffe://<trust-domain>/ns/<namespace>/sa/<sa>
 * (SPIFFE-ID, https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md;
 * Istio's pkg/spiffe). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ringside/tls.h"

#define SCHEME "spiffe://"

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Describes the first byte of s[0..len) that is not in a DNS-1123 label
 * ([a-z0-9-], alphanumeric at both ends); 0 when there is none. `at` is the
 * label's offset in the whole name, for the message. */
static int check_label(const char *s, size_t len, size_t at, char *err, size_t errlen)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			return fail(err, errlen, "must be lowercase ('%c' at position %zu)", c,
			            at + i + 1);
		if (!lower_alnum(c) && c != '-') {
			if (c == ' ')
				return fail(err, errlen, "has a space at position %zu", at + i + 1);
			if (c > ' ' && c < 0x7f)
				return fail(err, errlen,
				            "has '%c' at position %zu: only lowercase letters, "
				            "digits and '-' are allowed",
				            c, at + i + 1);
			return fail(err, errlen,
			            "has byte 0x%02x at position %zu: only lowercase letters, "
			            "digits and '-' are allowed",
			            (unsigned char)c, at + i + 1);
		}
	}
	if (len == 0)
		return fail(err, errlen, "is empty");
	if (!lower_alnum(s[0]))
		return fail(err, errlen, "must start with a letter or digit");
	if (!lower_alnum(s[len - 1]))
		return fail(err, errlen, "must end with a letter or digit");
	return 0;
}

int rs_spiffe_check_namespace(const char *ns, char *err, size_t errlen)
{
	size_t len = strlen(ns);

	if (len > RS_K8S_LABEL_MAX)
		return fail(err, errlen, "is %zu characters long; a namespace is at most %d", len,
		            RS_K8S_LABEL_MAX);
	return check_label(ns, len, 0, err, errlen);
}

int rs_spiffe_check_service_account(const char *sa, char *err, size_t errlen)
{
	size_t len = strlen(sa), at = 0;

	if (len > RS_K8S_SUBDOMAIN_MAX)
		return fail(err, errlen, "is %zu characters long; a service account is at most %d",
		            len, RS_K8S_SUBDOMAIN_MAX);
	if (len == 0)
		return fail(err, errlen, "is empty");
	/* A DNS-1123 subdomain: labels joined by dots. */
	for (;;) {
		const char *dot = memchr(sa + at, '.', len - at);
		size_t end = dot ? (size_t)(dot - sa) : len;
		int ret;

		if (end == at)
			return fail(err, errlen,
			            "has an empty label (two dots, or a dot at an end)");
		ret = check_label(sa + at, end - at, at, err, errlen);
		if (ret < 0)
			return ret;
		if (!dot)
			return 0;
		at = end + 1;
		if (at == len)
			return fail(err, errlen, "must end with a letter or digit");
	}
}

int rs_spiffe_check_trust_domain(const char *td, char *err, size_t errlen)
{
	size_t len = strlen(td);

	if (strncmp(td, SCHEME, strlen(SCHEME)) == 0)
		return fail(err, errlen,
		            "is a SPIFFE ID; give the trust domain alone (cluster.local, not "
		            "spiffe://cluster.local)");
	if (len == 0)
		return fail(err, errlen, "is empty");
	if (len > RS_SPIFFE_TRUST_DOMAIN_MAX)
		return fail(err, errlen, "is %zu characters long; a trust domain is at most %d",
		            len, RS_SPIFFE_TRUST_DOMAIN_MAX);
	for (size_t i = 0; i < len; i++) {
		char c = td[i];

		if (lower_alnum(c) || c == '.' || c == '-' || c == '_')
			continue;
		if (c >= 'A' && c <= 'Z')
			return fail(err, errlen, "must be lowercase ('%c' at position %zu)", c,
			            i + 1);
		if (c == ':')
			return fail(err, errlen,
			            "has ':' at position %zu: a trust domain has no port", i + 1);
		if (c == ' ')
			return fail(err, errlen, "has a space at position %zu", i + 1);
		if (c > ' ' && c < 0x7f)
			return fail(
			    err, errlen,
			    "has '%c' at position %zu: only lowercase letters, digits, '.', "
			    "'-' and '_' are allowed",
			    c, i + 1);
		return fail(err, errlen,
		            "has byte 0x%02x at position %zu: only lowercase letters, digits, '.', "
		            "'-' and '_' are allowed",
		            (unsigned char)c, i + 1);
	}
	return 0;
}

int rs_spiffe_format(const struct rs_spiffe_id *id, char *buf, size_t size)
{
	int n;

	if (rs_spiffe_check_trust_domain(id->td, NULL, 0) < 0 ||
	    rs_spiffe_check_namespace(id->ns, NULL, 0) < 0 ||
	    rs_spiffe_check_service_account(id->sa, NULL, 0) < 0)
		return -EINVAL;
	n = snprintf(buf, size, SCHEME "%s/ns/%s/sa/%s", id->td, id->ns, id->sa);
	if (n < 0 || (size_t)n >= size || n > RS_SPIFFE_ID_MAX)
		return -ENAMETOOLONG;
	return n;
}

/* Copies the part of s[0..len) up to the next '/' (or the end) into out of
 * size cap; *used is how much of s it took. -EINVAL when it does not fit. */
static int take_segment(const char *s, size_t len, char *out, size_t cap, size_t *used)
{
	const char *slash = memchr(s, '/', len);
	size_t n = slash ? (size_t)(slash - s) : len;

	if (n >= cap)
		return -EINVAL;
	memcpy(out, s, n);
	out[n] = '\0';
	*used = n;
	return 0;
}

int rs_spiffe_parse(const char *uri, size_t len, struct rs_spiffe_id *id)
{
	/* Each part: the text before it, and where it goes. */
	const struct {
		const char *before;
		char *out;
		size_t cap;
	} parts[] = {
	    {SCHEME, id->td, sizeof id->td},
	    {"/ns/", id->ns, sizeof id->ns},
	    {"/sa/", id->sa, sizeof id->sa},
	};
	size_t n, off = 0;

	if (len > RS_SPIFFE_ID_MAX)
		return -EINVAL;
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		size_t b = strlen(parts[i].before);

		if (len - off < b || memcmp(uri + off, parts[i].before, b) != 0)
			return -EINVAL;
		off += b;
		if (take_segment(uri + off, len - off, parts[i].out, parts[i].cap, &n) < 0)
			return -EINVAL;
		off += n;
	}
	if (off != len)
		return -EINVAL; /* more path, a query or a fragment */
	if (rs_spiffe_check_trust_domain(id->td, NULL, 0) < 0 ||
	    rs_spiffe_check_namespace(id->ns, NULL, 0) < 0 ||
	    rs_spiffe_check_service_account(id->sa, NULL, 0) < 0)
		return -EINVAL;
	return 0;
}
