/* HTTP/1.1 serialisation (RFC 9112). Parsing is llhttp's, driven by proxy/. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Bytes the fields of m take on the wire, `name: value\r\n` each. */
static size_t fields_size(const struct rs_msg *m)
{
	size_t n = 0;

	for (uint32_t i = 0; i < m->nh; i++)
		if (m->h[i].name_len)
			n += m->h[i].name_len + m->h[i].value_len + 4;
	return n;
}

static char *copy(char *d, const void *s, size_t n)
{
	memcpy(d, s, n);
	return d + n;
}

static char *write_fields(char *d, const struct rs_msg *m)
{
	for (uint32_t i = 0; i < m->nh; i++) {
		const struct rs_hdr *h = &m->h[i];

		if (!h->name_len)
			continue;
		d = copy(d, m->buf + h->name_off, h->name_len);
		d = copy(d, ": ", 2);
		d = copy(d, m->buf + h->value_off, h->value_len);
		d = copy(d, "\r\n", 2);
	}
	return d;
}

/* A head is written in one pass into n contiguous bytes: one is on every
 * request and response, and appending it piece by piece (the status line
 * through printf) was a tenth of a shard's user time in perf/flame.sh. The
 * bytes are reserved in the queue; a head larger than a chunk, which is
 * rare, is built aside and appended. */
struct head {
	char *start; /* owns when aside */
	size_t n;
	bool aside;
};

static char *head_begin(struct head *hd, struct rs_outq *q, struct rs_chunk_cache *cc, size_t n)
{
	hd->n = n;
	hd->aside = n > RS_CHUNK_SIZE;
	hd->start = hd->aside ? malloc(n) : rs_outq_reserve(q, cc, n);
	return hd->start;
}

static int head_end(struct head *hd, struct rs_outq *q, struct rs_chunk_cache *cc)
{
	int rc = 0;

	if (hd->aside) {
		rc = put(q, cc, hd->start, hd->n);
		free(hd->start);
	}
	return rc;
}

static const char te_chunked[] = "transfer-encoding: chunked\r\n";
static const char conn_close[] = "connection: close\r\n";

int rs_h1_encode_request_head(struct rs_outq *q, struct rs_chunk_cache *cc,
			      const struct rs_msg *m)
{
	bool chunked = m->body == RS_BODY_STREAM;
	struct head hd;
	char *d = head_begin(&hd, q, cc,
			     m->method_s.value_len + 1 + m->path.value_len + 11 + fields_size(m) +
				     (chunked ? sizeof(te_chunked) - 1 : 0) + 2);

	if (!d)
		return -ENOMEM;
	d = copy(d, m->buf + m->method_s.value_off, m->method_s.value_len);
	*d++ = ' ';
	d = copy(d, m->buf + m->path.value_off, m->path.value_len);
	d = copy(d, " HTTP/1.1\r\n", 11);
	d = write_fields(d, m);
	if (chunked)
		d = copy(d, te_chunked, sizeof(te_chunked) - 1);
	copy(d, "\r\n", 2);
	return head_end(&hd, q, cc);
}

int rs_h1_encode_response_head(struct rs_outq *q, struct rs_chunk_cache *cc,
			       const struct rs_msg *m, bool chunked, bool close)
{
	int status = m->status >= 100 && m->status <= 999 ? m->status : 500;
	const char *reason = rs_status_reason(status);
	size_t rlen = strlen(reason);
	struct head hd;
	char *d = head_begin(&hd, q, cc,
			     15 + rlen + fields_size(m) + (chunked ? sizeof(te_chunked) - 1 : 0) +
				     (close ? sizeof(conn_close) - 1 : 0) + 2);

	if (!d)
		return -ENOMEM;
	d = copy(d, "HTTP/1.1 ", 9);
	*d++ = (char)('0' + status / 100);
	*d++ = (char)('0' + status / 10 % 10);
	*d++ = (char)('0' + status % 10);
	*d++ = ' ';
	d = copy(d, reason, rlen);
	d = copy(d, "\r\n", 2);
	d = write_fields(d, m);
	if (chunked)
		d = copy(d, te_chunked, sizeof(te_chunked) - 1);
	if (close)
		d = copy(d, conn_close, sizeof(conn_close) - 1);
	copy(d, "\r\n", 2);
	return head_end(&hd, q, cc);
}

int rs_h1_encode_chunk(struct rs_outq *q, struct rs_chunk_cache *cc, const char *p, size_t n)
{
	char size[20];
	unsigned k = sizeof(size);

	if (n == 0)
		return 0; /* a zero-size chunk would end the body */
	size[--k] = '\n';
	size[--k] = '\r';
	for (size_t v = n; v; v >>= 4)
		size[--k] = "0123456789abcdef"[v & 15];
	if (put(q, cc, size + k, sizeof(size) - k) < 0 || put(q, cc, p, n) < 0 ||
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
