/* The protocol-neutral message: a byte buffer and header offsets into it. */
#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#include "ringside/http.h"

void rs_msg_init(struct rs_msg *m)
{
	memset(m, 0, sizeof *m);
	m->content_length = -1;
}

void rs_msg_reset(struct rs_msg *m)
{
	char *buf = m->buf;
	struct rs_hdr *h = m->h;
	uint32_t cap = m->cap, hcap = m->hcap;

	memset(m, 0, sizeof *m);
	m->buf = buf;
	m->cap = cap;
	m->h = h;
	m->hcap = hcap;
	m->content_length = -1;
}

void rs_msg_free(struct rs_msg *m)
{
	free(m->buf);
	free(m->h);
	rs_msg_init(m);
}

int64_t rs_msg_append(struct rs_msg *m, const char *p, size_t n)
{
	uint32_t off = m->len;
	/* p may point into the buffer itself (copying a field's value into a
	 * new field): keep it as an offset across the realloc. */
	bool inside = m->buf && p >= m->buf && p < m->buf + m->len;
	size_t pin = inside ? (size_t)(p - m->buf) : 0;

	if ((size_t)m->len + n > UINT32_MAX / 2)
		return -1;
	if (m->len + n > m->cap) {
		size_t cap = m->cap ? m->cap : 1024;
		char *b;

		while (cap < m->len + n)
			cap *= 2;
		b = realloc(m->buf, cap);
		if (!b)
			return -1;
		m->buf = b;
		m->cap = (uint32_t)cap;
		if (inside)
			p = m->buf + pin;
	}
	memcpy(m->buf + m->len, p, n);
	m->len += (uint32_t)n;
	return off;
}

int rs_msg_set_value(struct rs_msg *m, struct rs_hdr *f, const char *v, size_t len)
{
	int64_t off = rs_msg_append(m, v, len);

	if (off < 0)
		return -ENOMEM;
	f->value_off = (uint32_t)off;
	f->value_len = (uint32_t)len;
	return 0;
}

struct rs_hdr *rs_msg_new_hdr(struct rs_msg *m)
{
	if (m->nh == m->hcap) {
		uint32_t cap = m->hcap ? m->hcap * 2 : 32;
		struct rs_hdr *h = realloc(m->h, cap * sizeof *h);

		if (!h)
			return NULL;
		m->h = h;
		m->hcap = cap;
	}
	return &m->h[m->nh++];
}

int rs_msg_add_header(struct rs_msg *m, const char *name, size_t nlen, const char *value,
		      size_t vlen)
{
	bool inside = m->buf && value >= m->buf && value < m->buf + m->len;
	size_t vin = inside ? (size_t)(value - m->buf) : 0;
	int64_t no = rs_msg_append(m, name, nlen);
	int64_t vo;
	struct rs_hdr *h;

	if (inside)
		value = m->buf + vin; /* the name's append may have moved it */
	vo = no < 0 ? -1 : rs_msg_append(m, value, vlen);

	if (vo < 0)
		return -ENOMEM;
	h = rs_msg_new_hdr(m);
	if (!h)
		return -ENOMEM;
	h->name_off = (uint32_t)no;
	h->name_len = (uint32_t)nlen;
	h->value_off = (uint32_t)vo;
	h->value_len = (uint32_t)vlen;
	return 0;
}

bool rs_hdr_name_is(const struct rs_msg *m, const struct rs_hdr *h, const char *name,
		    size_t nlen)
{
	return h->name_len == nlen && strncasecmp(m->buf + h->name_off, name, nlen) == 0;
}

const struct rs_hdr *rs_msg_find(const struct rs_msg *m, const char *name)
{
	size_t nlen = strlen(name);

	for (uint32_t i = 0; i < m->nh; i++)
		if (rs_hdr_name_is(m, &m->h[i], name, nlen))
			return &m->h[i];
	return NULL;
}

unsigned rs_msg_remove(struct rs_msg *m, const char *name, size_t nlen)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < m->nh; i++) {
		if (m->h[i].name_len && rs_hdr_name_is(m, &m->h[i], name, nlen)) {
			m->h[i].name_len = 0;
			n++;
		}
	}
	return n;
}

static inline bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Calls fn for each comma-separated element of a field value, trimmed. */
static bool each_token(const char *v, size_t vlen, bool (*fn)(const char *t, size_t n, void *a),
		       void *arg)
{
	size_t i = 0;

	while (i < vlen) {
		size_t s, e;

		while (i < vlen && (is_ows(v[i]) || v[i] == ','))
			i++;
		s = i;
		while (i < vlen && v[i] != ',')
			i++;
		e = i;
		while (e > s && is_ows(v[e - 1]))
			e--;
		if (e > s && fn(v + s, e - s, arg))
			return true;
	}
	return false;
}

static bool token_eq(const char *t, size_t n, void *arg)
{
	const char *want = arg;

	return strlen(want) == n && strncasecmp(t, want, n) == 0;
}

bool rs_value_has_token(const char *v, size_t vlen, const char *token)
{
	return each_token(v, vlen, token_eq, (void *)token);
}

static bool not_chunked(const char *t, size_t n, void *arg)
{
	return !(n == 7 && strncasecmp(t, "chunked", 7) == 0);
}

bool rs_msg_only_chunked(const struct rs_msg *m)
{
	for (uint32_t i = 0; i < m->nh; i++) {
		const struct rs_hdr *h = &m->h[i];

		if (h->name_len && rs_hdr_name_is(m, h, "transfer-encoding", 17) &&
		    each_token(m->buf + h->value_off, h->value_len, not_chunked, NULL))
			return false;
	}
	return true;
}

struct strip_ctx {
	struct rs_msg *m;
	bool close;
};

static bool strip_named(const char *t, size_t n, void *arg)
{
	struct strip_ctx *s = arg;

	if (n == 5 && strncasecmp(t, "close", 5) == 0)
		s->close = true;
	/* A connection option may not remove what frames or routes the
	 * message (RFC 9110 §7.6.1 forbids sending such options): dropping
	 * Content-Length or Host on request would let a body pass as the next
	 * request. */
	if ((n == 14 && strncasecmp(t, "content-length", 14) == 0) ||
	    (n == 4 && strncasecmp(t, "host", 4) == 0))
		return false;
	rs_msg_remove(s->m, t, n);
	return false;
}

bool rs_msg_strip_hop_by_hop(struct rs_msg *m)
{
	static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
					  "te",         "transfer-encoding", "upgrade"};
	struct strip_ctx s = {.m = m};
	uint32_t n = m->nh;
	uint32_t conn[16], nconn = 0;

	/* Find every Connection field before removing anything: an option may
	 * name "connection" itself and would hide the fields after it. */
	for (uint32_t i = 0; i < n; i++) {
		struct rs_hdr *h = &m->h[i];

		if (h->name_len && rs_hdr_name_is(m, h, "connection", 10)) {
			if (nconn < sizeof conn / sizeof conn[0])
				conn[nconn++] = i;
			else
				each_token(m->buf + h->value_off, h->value_len, strip_named, &s);
		}
	}
	for (uint32_t i = 0; i < nconn; i++) {
		struct rs_hdr *h = &m->h[conn[i]];

		each_token(m->buf + h->value_off, h->value_len, strip_named, &s);
	}
	for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
		rs_msg_remove(m, hop[i], strlen(hop[i]));
	return s.close;
}

const char *rs_status_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}

enum rs_method rs_method_from(const char *p, size_t n)
{
	static const struct {
		const char *s;
		enum rs_method m;
	} t[] = {{"GET", RS_METHOD_GET},         {"HEAD", RS_METHOD_HEAD},
		 {"POST", RS_METHOD_POST},       {"PUT", RS_METHOD_PUT},
		 {"DELETE", RS_METHOD_DELETE},   {"OPTIONS", RS_METHOD_OPTIONS},
		 {"CONNECT", RS_METHOD_CONNECT}};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (strlen(t[i].s) == n && memcmp(t[i].s, p, n) == 0)
			return t[i].m;
	return RS_METHOD_OTHER;
}
