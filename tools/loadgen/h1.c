/* HTTP/1.1 on a load-generator connection: one request at a time (keep-alive,
 * no pipelining, as a browser or a sidecar's pool sends), responses read by
 * llhttp. */
#include <string.h>

#include "conn.h"

static struct lg_conn *conn_of(llhttp_t *p)
{
	return p->data;
}

static int on_headers_complete(llhttp_t *p)
{
	struct lg_conn *c = conn_of(p);

	c->h1req.status = p->status_code;
	/* A response to HEAD has no body whatever its length says (RFC 9110 §9.3.2). */
	return strcmp(lg_conn_opts(c)->method, "HEAD") == 0 ? 1 : 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct lg_conn *c = conn_of(p);

	if (!c->h1busy)
		return -1; /* a response nobody asked for */
	c->h1busy = false;
	lg_conn_done(c, &c->h1req, c->h1req.status);
	/* One response per execute call, so that the caller sees keep-alive. */
	return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

static int h1_open(struct lg_conn *c)
{
	llhttp_init(&c->parser, HTTP_RESPONSE, &settings);
	c->parser.data = c;
	c->h1busy = false;
	return 0;
}

static int h1_submit(struct lg_conn *c, struct lg_req *r)
{
	const uint8_t *p;
	size_t n;

	lg_conn_h1_request(c, &p, &n);
	c->h1req = *r;
	c->h1busy = true;
	return lg_conn_write(c, p, n);
}

static int h1_input(struct lg_conn *c, const uint8_t *p, size_t n)
{
	while (n > 0) {
		llhttp_errno_t rc = llhttp_execute(&c->parser, (const char *)p, n);
		size_t used;

		if (rc == HPE_OK)
			return 0;
		if (rc != HPE_PAUSED)
			return -LG_E_PROTOCOL;
		used = (size_t)(llhttp_get_error_pos(&c->parser) - (const char *)p);
		if (!llhttp_should_keep_alive(&c->parser))
			return 1; /* the server said Connection: close */
		llhttp_resume(&c->parser);
		p += used;
		n -= used;
	}
	return 0;
}

static int h1_eof(struct lg_conn *c)
{
	/* A body delimited by the end of the connection is complete now
	 * (RFC 9112 §6.3). */
	if (c->h1busy && llhttp_finish(&c->parser) != HPE_OK)
		return -LG_E_PROTOCOL;
	return c->h1busy ? -LG_E_CLOSED : 1;
}

static int h1_flush(struct lg_conn *c)
{
	return 0; /* h1_submit writes the request whole */
}

static unsigned h1_capacity(const struct lg_conn *c)
{
	return c->h1busy ? 0 : 1;
}

static void h1_close(struct lg_conn *c, int err)
{
	if (c->h1busy) {
		c->h1busy = false;
		lg_conn_fail(c, &c->h1req, (enum lg_error)err);
	}
}

const struct lg_codec lg_h1_codec = {
	.open = h1_open,
	.submit = h1_submit,
	.input = h1_input,
	.flush = h1_flush,
	.eof = h1_eof,
	.capacity = h1_capacity,
	.close = h1_close,
};
