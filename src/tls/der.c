/* The few DER values ringside builds itself for wolfSSL's certificate
 * generation (X.690 §8 and §10, distinguished encoding): wolfSSL 5.5.4 writes
 * a subjectAltName and a validity it is given as raw DER (Cert.altNames,
 * Cert.beforeDate/afterDate), and has no call that builds a URI name or a
 * validity shorter than a day; and it writes basicConstraints non-critical,
 * which RFC 5280 §4.2.1.9 forbids in a CA certificate, so the extension is
 * marked critical in the TBSCertificate before it is signed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

enum {
	TAG_SEQUENCE = 0x30,
	TAG_UTC_TIME = 0x17,
	TAG_GENERALIZED_TIME = 0x18,
	TAG_CONTEXT_URI =
	    0x86, /* [6] IMPLICIT, primitive: GeneralName's uniformResourceIdentifier */
};

/* Bytes of a DER length of n (X.690 §10.1: the shortest form). */
static size_t len_size(size_t n)
{
	size_t k = 1;

	if (n < 0x80)
		return 1;
	while (n) {
		k++;
		n >>= 8;
	}
	return k;
}

static uint8_t *put_len(uint8_t *p, size_t n)
{
	size_t k = len_size(n) - 1;

	if (k == 0) {
		*p++ = (uint8_t)n;
		return p;
	}
	*p++ = (uint8_t)(0x80 | k);
	while (k--)
		*p++ = (uint8_t)(n >> (8 * k));
	return p;
}

int rs_cert__der_san_uri(uint8_t *out, size_t cap, const char *uri, size_t len)
{
	size_t inner, total;
	uint8_t *p = out;

	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)uri[i] >= 0x80 || uri[i] == '\0')
			return -EINVAL; /* IA5String is ASCII */
	inner = 1 + len_size(len) + len;
	total = 1 + len_size(inner) + inner;
	if (total > cap || total > 0x7fffffff)
		return -ENOSPC;
	*p++ = TAG_SEQUENCE;
	p = put_len(p, inner);
	*p++ = TAG_CONTEXT_URI;
	p = put_len(p, len);
	memcpy(p, uri, len);
	return (int)total;
}

int rs_cert__der_time(uint8_t *out, size_t cap, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char s[20];
	int n, year;

	if (!gmtime_r(&tt, &tm))
		return -EINVAL;
	year = tm.tm_year + 1900;
	if (year < 0 || year > 9999)
		return -EINVAL;
	if (year >= 1950 && year < 2050)
		n = snprintf(s, sizeof s, "%02d%02d%02d%02d%02d%02dZ", year % 100, tm.tm_mon + 1,
		             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	else
		n = snprintf(s, sizeof s, "%04d%02d%02d%02d%02d%02dZ", year, tm.tm_mon + 1,
		             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if ((size_t)n + 2 > cap)
		return -ENOSPC;
	out[0] = n == 13 ? TAG_UTC_TIME : TAG_GENERALIZED_TIME;
	out[1] = (uint8_t)n;
	memcpy(out + 2, s, (size_t)n);
	return n + 2;
}

/* One TLV of DER with a one-byte tag: where it starts, where its content
 * starts and ends. */
struct tlv {
	size_t start, content, end;
	uint8_t tag;
};

/* Reads the TLV at p[off] within p[0..limit). 0 or -EINVAL. */
static int read_tlv(const uint8_t *p, size_t off, size_t limit, struct tlv *t)
{
	size_t n, len = 0;

	if (off + 2 > limit || (p[off] & 0x1f) == 0x1f)
		return -EINVAL; /* truncated, or a multi-byte tag */
	t->start = off;
	t->tag = p[off++];
	n = p[off++];
	if (n & 0x80) {
		n &= 0x7f;
		if (n == 0 || n > sizeof(size_t) - 1 || off + n > limit)
			return -EINVAL;
		while (n--)
			len = (len << 8) | p[off++];
	} else {
		len = n;
	}
	if (len > limit - off)
		return -EINVAL;
	t->content = off;
	t->end = off + len;
	return 0;
}

/* The child of parent whose tag is tag and, when oid is given, whose first
 * child is that OBJECT IDENTIFIER. 0, -ENOENT or -EINVAL. */
static int find_child(const uint8_t *p, const struct tlv *parent, uint8_t tag, const uint8_t *oid,
                      size_t oid_len, struct tlv *out)
{
	for (size_t off = parent->content; off < parent->end; off = out->end) {
		struct tlv first;

		if (read_tlv(p, off, parent->end, out) < 0)
			return -EINVAL;
		if (out->tag != tag)
			continue;
		if (!oid)
			return 0;
		if (read_tlv(p, out->content, out->end, &first) < 0)
			return -EINVAL;
		if (first.tag == 0x06 && first.end - first.content == oid_len &&
		    memcmp(p + first.content, oid, oid_len) == 0)
			return 0;
	}
	return -ENOENT;
}

int rs_cert__der_set_critical(uint8_t *tbs, size_t len, size_t cap, const uint8_t *oid,
                              size_t oid_len)
{
	static const uint8_t critical[] = {0x01, 0x01, 0xff}; /* BOOLEAN TRUE */
	/* The way down: TBSCertificate, [3] EXPLICIT, Extensions, the Extension. */
	struct tlv lv[4], ext_oid, next;
	size_t grow[4], at, o = 0, total;
	uint8_t *out;
	int ret;

	if (read_tlv(tbs, 0, len, &lv[0]) < 0 || lv[0].tag != TAG_SEQUENCE || lv[0].end != len)
		return -EINVAL;
	ret = find_child(tbs, &lv[0], 0xa3, NULL, 0, &lv[1]);
	if (ret == 0)
		ret = find_child(tbs, &lv[1], TAG_SEQUENCE, NULL, 0, &lv[2]);
	if (ret == 0)
		ret = find_child(tbs, &lv[2], TAG_SEQUENCE, oid, oid_len, &lv[3]);
	if (ret < 0)
		return ret;
	if (read_tlv(tbs, lv[3].content, lv[3].end, &ext_oid) < 0 ||
	    read_tlv(tbs, ext_oid.end, lv[3].end, &next) < 0)
		return -EINVAL;
	if (next.tag == 0x01)
		return (int)len; /* a critical field is there already */
	at = ext_oid.end;

	/* New content lengths, inside out: each level grows by what its child's
	 * content and length octets grew. */
	grow[3] = sizeof critical;
	for (int i = 2; i >= 0; i--) {
		size_t child_len = lv[i + 1].end - lv[i + 1].content;

		grow[i] = grow[i + 1] + len_size(child_len + grow[i + 1]) - len_size(child_len);
	}
	total = len + grow[0] + len_size(len - lv[0].content + grow[0]) -
	        len_size(lv[0].end - lv[0].content);
	if (total > cap || total > 0x7fffffff)
		return -ENOSPC;
	out = malloc(total);
	if (!out)
		return -ENOMEM;
	for (int i = 0; i < 4; i++) {
		out[o++] = lv[i].tag;
		o = (size_t)(put_len(out + o, lv[i].end - lv[i].content + grow[i]) - out);
		if (i < 3) {
			memcpy(out + o, tbs + lv[i].content, lv[i + 1].start - lv[i].content);
			o += lv[i + 1].start - lv[i].content;
		}
	}
	memcpy(out + o, tbs + lv[3].content, at - lv[3].content);
	o += at - lv[3].content;
	memcpy(out + o, critical, sizeof critical);
	o += sizeof critical;
	memcpy(out + o, tbs + at, lv[3].end - at);
	o += lv[3].end - at;
	for (int i = 2; i >= 0; i--) {
		memcpy(out + o, tbs + lv[i + 1].end, lv[i].end - lv[i + 1].end);
		o += lv[i].end - lv[i + 1].end;
	}
	memcpy(tbs, out, o);
	free(out);
	return (int)o;
}
