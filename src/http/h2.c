/* HTTP/2 header translation (RFC 9113 §8): header fields as nghttp2 hands
 * them over, into the protocol-neutral message, and a message back into the
 * name/value pairs nghttp2 sends. nghttp2 itself checks what the RFC makes
 * a stream error (field names in lower case, connection-specific fields, te
 * other than trailers, pseudo-header order and set, content-length against
 * DATA); what is left here is mapping and the checks a proxy adds. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ringside/http.h"

int rs_h2_request_field(struct rs_msg *m, const char *name, size_t nlen, const char *value,
			size_t vlen)
{
	m->header_bytes += (uint32_t)(nlen + vlen);
	if (nlen && name[0] == ':') {
		if (nlen == 7 && memcmp(name, ":method", 7) == 0) {
			m->method = rs_method_from(value, vlen);
			return rs_msg_set_value(m, &m->method_s, value, vlen);
		}
		if (nlen == 5 && memcmp(name, ":path", 5) == 0)
			return rs_msg_set_value(m, &m->path, value, vlen);
		if (nlen == 10 && memcmp(name, ":authority", 10) == 0)
			return rs_msg_set_value(m, &m->authority, value, vlen);
		return 0; /* :scheme; nghttp2 refuses any other */
	}
	return rs_msg_add_header(m, name, nlen, value, vlen) < 0 ? -ENOMEM : 0;
}

int rs_h2_response_field(struct rs_msg *m, const char *name, size_t nlen, const char *value,
			 size_t vlen)
{
	m->header_bytes += (uint32_t)(nlen + vlen);
	if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
		int s = 0;

		for (size_t i = 0; i < vlen; i++)
			s = s * 10 + (value[i] - '0');
		m->status = s; /* nghttp2 checked: three digits */
		return 0;
	}
	if (nlen && name[0] == ':')
		return 0;
	return rs_msg_add_header(m, name, nlen, value, vlen) < 0 ? -ENOMEM : 0;
}

/* RFC 9113 §8.2.3: a cookie may arrive split into several fields; before
 * it goes to an HTTP/1.1 hop (or to a generic application) the crumbs are
 * joined with "; " into one field. */
static int join_cookies(struct rs_msg *m)
{
	uint32_t n = 0, total = 0, first = 0;
	char *v, *p;
	int ret = 0;

	for (uint32_t i = 0; i < m->nh; i++) {
		if (m->h[i].name_len && rs_hdr_name_is(m, &m->h[i], "cookie", 6)) {
			if (!n++)
				first = i;
			total += m->h[i].value_len + 2;
		}
	}
	if (n < 2)
		return 0;
	p = v = malloc(total);
	if (!v)
		return -ENOMEM;
	for (uint32_t i = first; i < m->nh; i++) {
		struct rs_hdr *h = &m->h[i];

		if (!h->name_len || !rs_hdr_name_is(m, h, "cookie", 6))
			continue;
		if (p != v) {
			memcpy(p, "; ", 2);
			p += 2;
		}
		memcpy(p, m->buf + h->value_off, h->value_len);
		p += h->value_len;
		if (i != first)
			h->name_len = 0;
	}
	{
		int64_t off = rs_msg_append(m, v, (size_t)(p - v));

		if (off < 0) {
			ret = -ENOMEM;
		} else {
			m->h[first].value_off = (uint32_t)off;
			m->h[first].value_len = (uint32_t)(p - v);
		}
	}
	free(v);
	return ret;
}

int rs_h2_request_done(struct rs_msg *m, bool end_stream, const char **why)
{
	const struct rs_hdr *host = NULL, *cl;
	unsigned nhost = 0;

	m->http_major = 2;
	m->http_minor = 0;
	for (uint32_t i = 0; i < m->nh; i++) {
		if (m->h[i].name_len && rs_hdr_name_is(m, &m->h[i], "host", 4)) {
			host = &m->h[i];
			nhost++;
		}
	}
	/* RFC 9113 §8.3.1: with :authority, Host is not used to find the
	 * target, and an intermediary sets the HTTP/1.1 Host from :authority:
	 * one a client sent as well is dropped (as Envoy does). */
	if (m->authority.value_len) {
		rs_msg_remove(m, "host", 4);
		if (rs_msg_add_header(m, "host", 4, m->buf + m->authority.value_off,
				      m->authority.value_len) < 0)
			return -ENOMEM;
	} else if (nhost > 1) {
		*why = "more than one host header";
		return -EINVAL;
	} else if (host) {
		m->authority = *host;
	} else if (m->method != RS_METHOD_CONNECT) {
		*why = "no :authority and no host";
		return -EINVAL;
	}
	if (join_cookies(m) < 0)
		return -ENOMEM;
	cl = rs_msg_find(m, "content-length");
	if (end_stream) {
		m->body = RS_BODY_NONE;
	} else if (cl) {
		/* nghttp2 has checked it is a number and will check it against
		 * the DATA that follows. */
		m->content_length = strtoll(m->buf + cl->value_off, NULL, 10);
		m->body = m->content_length ? RS_BODY_LENGTH : RS_BODY_NONE;
	} else {
		m->body = RS_BODY_STREAM;
	}
	return 0;
}

/* Connection-specific fields (RFC 9113 §8.2.2) never go on an HTTP/2
 * stream, whatever an HTTP/1.1 peer sent. */
static bool connection_specific(const char *n, size_t len)
{
	switch (len) {
	case 2: return memcmp(n, "te", 2) == 0;
	case 4: return memcmp(n, "host", 4) == 0;
	case 7: return memcmp(n, "upgrade", 7) == 0;
	case 10: return memcmp(n, "connection", 10) == 0 || memcmp(n, "keep-alive", 10) == 0;
	case 16: return memcmp(n, "proxy-connection", 16) == 0;
	case 17: return memcmp(n, "transfer-encoding", 17) == 0;
	}
	return false;
}

static void lower(char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] >= 'A' && p[i] <= 'Z')
			p[i] = (char)(p[i] + 32);
}

static void put_nv(nghttp2_nv *nv, const char *n, size_t nlen, const char *v, size_t vlen)
{
	nv->name = (uint8_t *)n;
	nv->namelen = nlen;
	nv->value = (uint8_t *)v;
	nv->valuelen = vlen;
	nv->flags = NGHTTP2_NV_FLAG_NONE;
}

/* The message's regular fields after the pseudo-headers already in nv[0..k),
 * names lowered in place (HTTP/1.1 peers may send any case). */
static size_t fields_nv(struct rs_msg *m, nghttp2_nv *nv, size_t k, size_t cap, bool keep_te)
{
	for (uint32_t i = 0; i < m->nh && k < cap; i++) {
		struct rs_hdr *h = &m->h[i];
		char *n = m->buf + h->name_off;

		if (!h->name_len)
			continue;
		lower(n, h->name_len);
		if (connection_specific(n, h->name_len)) {
			/* te: trailers is the one value HTTP/2 keeps (§8.2.2). */
			if (!(keep_te && h->name_len == 2 && h->value_len == 8 &&
			      strncasecmp(m->buf + h->value_off, "trailers", 8) == 0))
				continue;
		}
		put_nv(&nv[k++], n, h->name_len, m->buf + h->value_off, h->value_len);
	}
	return k;
}

nghttp2_nv *rs_h2_nv_for(const struct rs_msg *m, nghttp2_nv *stack, size_t *cap)
{
	*cap = (size_t)m->nh + 8;
	if (*cap <= RS_H2_NV_STACK) {
		*cap = RS_H2_NV_STACK;
		return stack;
	}
	return malloc(*cap * sizeof(nghttp2_nv));
}

void rs_h2_nv_free(nghttp2_nv *nv, nghttp2_nv *stack)
{
	if (nv != stack)
		free(nv);
}

size_t rs_h2_response_nv(struct rs_msg *m, nghttp2_nv *nv, size_t cap, char status[4])
{
	int s = m->status;

	if (s < 100 || s > 999)
		s = 502;
	status[0] = (char)('0' + s / 100);
	status[1] = (char)('0' + s / 10 % 10);
	status[2] = (char)('0' + s % 10);
	status[3] = '\0';
	put_nv(&nv[0], ":status", 7, status, 3);
	return fields_nv(m, nv, 1, cap, false);
}

size_t rs_h2_trailers_nv(struct rs_msg *m, nghttp2_nv *nv, size_t cap)
{
	return fields_nv(m, nv, 0, cap, false);
}

size_t rs_h2_request_nv(struct rs_msg *m, nghttp2_nv *nv, size_t cap, const char *scheme)
{
	size_t k = 0;

	put_nv(&nv[k++], ":method", 7, m->buf + m->method_s.value_off, m->method_s.value_len);
	put_nv(&nv[k++], ":scheme", 7, scheme, strlen(scheme));
	put_nv(&nv[k++], ":authority", 10, m->buf + m->authority.value_off,
	       m->authority.value_len);
	put_nv(&nv[k++], ":path", 5, m->buf + m->path.value_off, m->path.value_len);
	return fields_nv(m, nv, k, cap, true);
}
