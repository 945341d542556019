/* HTTP/1.1 serialisation (RFC 9112). Parsing is llhttp's, driven by proxy/. */
#include <errno.h>
#include <stdio.h>

#include "ringside/core.h"
#include "ringside/http.h"

bool rs_h1_value_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

static int put(struct rs_outq *q, struct rs_chunk_cache *cc, const char *p, size_t n)
{
	return rs_outq_append(q, cc, p, n);
}

static int put_fields(struct rs_outq *q, struct rs_chunk_cache *cc, const struct rs_msg *m)
{
	for (uint32_t i = 0; i < m->nh; i++) {
		const struct rs_hdr *h = &m->h[i];

		if (!h->name_len)
			continue;
		if (put(q, cc, m->buf + h->name_off, h->name_len) < 0 || put(q, cc, ": ", 2) < 0 ||
		    put(q, cc, m->buf + h->value_off, h->value_len) < 0 || put(q, cc, "\r\n", 2) < 0)
			return -ENOMEM;
	}
	return 0;
}

int rs_h1_encode_request_head(struct rs_outq *q, struct rs_chunk_cache *cc,
			      const struct rs_msg *m)
{
	if (put(q, cc, m->buf + m->method_s.value_off, m->method_s.value_len) < 0 ||
	    put(q, cc, " ", 1) < 0 || put(q, cc, m->buf + m->path.value_off, m->path.value_len) < 0 ||
	    put(q, cc, " HTTP/1.1\r\n", 11) < 0 || put_fields(q, cc, m) < 0)
		return -ENOMEM;
	if (m->body == RS_BODY_STREAM && put(q, cc, "transfer-encoding: chunked\r\n", 28) < 0)
		return -ENOMEM;
	return put(q, cc, "\r\n", 2);
}

int rs_h1_encode_response_head(struct rs_outq *q, struct rs_chunk_cache *cc,
			       const struct rs_msg *m, bool chunked, bool close)
{
	if (rs_outq_printf(q, cc, "HTTP/1.1 %d %s\r\n", m->status, rs_status_reason(m->status)) <
		    0 ||
	    put_fields(q, cc, m) < 0)
		return -ENOMEM;
	if (chunked && put(q, cc, "transfer-encoding: chunked\r\n", 28) < 0)
		return -ENOMEM;
	if (close && put(q, cc, "connection: close\r\n", 19) < 0)
		return -ENOMEM;
	return put(q, cc, "\r\n", 2);
}

int rs_h1_encode_chunk(struct rs_outq *q, struct rs_chunk_cache *cc, const char *p, size_t n)
{
	if (n == 0)
		return 0; /* a zero-size chunk would end the body */
	if (rs_outq_printf(q, cc, "%zx\r\n", n) < 0 || put(q, cc, p, n) < 0 ||
	    put(q, cc, "\r\n", 2) < 0)
		return -ENOMEM;
	return 0;
}

int rs_h1_encode_last_chunk(struct rs_outq *q, struct rs_chunk_cache *cc)
{
	return put(q, cc, "0\r\n\r\n", 5);
}

int rs_h1_encode_local_reply(struct rs_outq *q, struct rs_chunk_cache *cc, int status,
			     const char *body, bool close, const char *request_id)
{
	size_t blen = strlen(body);

	if (rs_outq_printf(q, cc,
			   "HTTP/1.1 %d %s\r\ncontent-length: %zu\r\ncontent-type: text/plain\r\n"
			   "server: ringside\r\n%s",
			   status, rs_status_reason(status), blen + 1,
			   close ? "connection: close\r\n" : "") < 0)
		return -ENOMEM;
	if (request_id && (put(q, cc, "x-request-id: ", 14) < 0 ||
			   put(q, cc, request_id, strlen(request_id)) < 0 || put(q, cc, "\r\n", 2) < 0))
		return -ENOMEM;
	if (put(q, cc, "\r\n", 2) < 0 || put(q, cc, body, blen) < 0 || put(q, cc, "\n", 1) < 0)
		return -ENOMEM;
	return 0;
}
