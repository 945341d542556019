/* Types of the protocol-neutral HTTP message that every codec produces and
 * consumes: HTTP/1.1 now, HTTP/2 later, behind the same stream. */
#ifndef RINGSIDE_HTTP_T_H
#define RINGSIDE_HTTP_T_H

#include <stdbool.h>
#include <stdint.h>

/* A header field: offsets into its message's byte buffer, so that the buffer
 * may grow while headers are parsed. name_len 0 marks a removed field. */
struct rs_hdr {
	uint32_t name_off;
	uint32_t name_len;
	uint32_t value_off;
	uint32_t value_len;
};

enum rs_body {
	RS_BODY_NONE,   /* no body follows the head */
	RS_BODY_LENGTH, /* content_length bytes follow */
	RS_BODY_STREAM, /* a body of unknown length follows (chunked, until close) */
};

enum rs_method {
	RS_METHOD_OTHER,
	RS_METHOD_GET,
	RS_METHOD_HEAD,
	RS_METHOD_POST,
	RS_METHOD_PUT,
	RS_METHOD_DELETE,
	RS_METHOD_OPTIONS,
	RS_METHOD_CONNECT,
};

struct rs_msg {
	char *buf; /* owns: method, path, authority and header bytes */
	uint32_t len;
	uint32_t cap;
	struct rs_hdr *h; /* owns */
	uint32_t nh;
	uint32_t hcap;
	/* request */
	enum rs_method method;
	struct rs_hdr method_s; /* name unused; value = method text */
	struct rs_hdr path;     /* value = request target */
	struct rs_hdr authority;
	/* response */
	int status;
	uint8_t http_major;
	uint8_t http_minor;
	enum rs_body body;
	int64_t content_length; /* -1 when unknown */
	uint32_t header_bytes;  /* as received, for limits */
};

#endif
