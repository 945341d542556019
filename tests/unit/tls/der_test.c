/* The DER ringside builds for wolfSSL: the URI SAN, validity times, and the
 * critical flag put on basicConstraints. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../src/tls/internal.h"

static void test_san_uri_short(void **state)
{
	static const char uri[] = "spiffe://td/ns/a/sa/b";
	static const uint8_t want[] = {0x30, 23,  0x86, 21,  's', 'p', 'i', 'f', 'f',
	                               'e',  ':', '/',  '/', 't', 'd', '/', 'n', 's',
	                               '/',  'a', '/',  's', 'a', '/', 'b'};
	uint8_t out[64];

	(void)state;
	assert_int_equal(rs_cert__der_san_uri(out, sizeof out, uri, strlen(uri)), sizeof want);
	assert_memory_equal(out, want, sizeof want);
}

/* Lengths of 128 and more take the long form (X.690 §8.1.3.5), and at each
 * boundary the shortest one (§10.1). */
static void test_san_uri_lengths(void **state)
{
	static const struct {
		size_t len;
		uint8_t outer[4], inner[4];
		size_t outer_n, inner_n;
	} cases[] = {
	    {125, {0x30, 127}, {0x86, 125}, 2, 2},
	    {126, {0x30, 0x81, 128}, {0x86, 126}, 3, 2},
	    {127, {0x30, 0x81, 129}, {0x86, 127}, 3, 2},
	    {128, {0x30, 0x81, 131}, {0x86, 0x81, 128}, 3, 3},
	    {252, {0x30, 0x81, 255}, {0x86, 0x81, 252}, 3, 3},
	    {253, {0x30, 0x82, 0x01, 0x00}, {0x86, 0x81, 253}, 4, 3},
	    {2048, {0x30, 0x82, 0x08, 0x04}, {0x86, 0x82, 0x08, 0x00}, 4, 4},
	};
	static uint8_t out[4096];
	static char uri[4096];

	(void)state;
	memset(uri, 'a', sizeof uri);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len = cases[i].len, total = cases[i].outer_n + cases[i].inner_n + len;

		assert_int_equal(rs_cert__der_san_uri(out, sizeof out, uri, len), (int)total);
		assert_memory_equal(out, cases[i].outer, cases[i].outer_n);
		assert_memory_equal(out + cases[i].outer_n, cases[i].inner, cases[i].inner_n);
		assert_int_equal(out[total - 1], 'a');
		/* One byte short of room is refused whole. */
		assert_int_equal(rs_cert__der_san_uri(out, total - 1, uri, len), -ENOSPC);
	}
}

static void test_san_uri_refused(void **state)
{
	uint8_t out[64];

	(void)state;
	assert_int_equal(rs_cert__der_san_uri(out, sizeof out, "", 0), -EINVAL);
	/* IA5String is ASCII. */
	assert_int_equal(rs_cert__der_san_uri(out, sizeof out, "spiffe://caf\xc3\xa9", 14),
	                 -EINVAL);
	assert_int_equal(rs_cert__der_san_uri(out, sizeof out, "a\0b", 3), -EINVAL);
}

static void time_is(int64_t t, const char *want)
{
	uint8_t out[32];
	size_t n = strlen(want);
	int got = rs_cert__der_time(out, sizeof out, t);

	assert_int_equal(got, (int)n + 2);
	assert_int_equal(out[0], n == 13 ? 0x17 : 0x18);
	assert_int_equal(out[1], n);
	assert_memory_equal(out + 2, want, n);
}

/* RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
static void test_time(void **state)
{
	uint8_t out[32];

	(void)state;
	time_is(0, "700101000000Z");
	time_is(1795617296, "261125143456Z");
	time_is(2524607999, "491231235959Z");
	time_is(2524608000, "20500101000000Z");
	time_is(-631152000, "500101000000Z");
	time_is(-631152001, "19491231235959Z");
	time_is(253402300799, "99991231235959Z");
	assert_int_equal(rs_cert__der_time(out, sizeof out, 253402300800), -EINVAL);
	assert_int_equal(rs_cert__der_time(out, 14, 0), -ENOSPC);
	assert_int_equal(rs_cert__der_time(out, 15, 0), 15);
}

/* A TBSCertificate cut down to what the walk looks at: version, serial,
 * then [3] { Extensions { basicConstraints, keyUsage } }. */
static const uint8_t bc_oid[] = {0x55, 0x1d, 0x13};
static const uint8_t tbs[] = {
    0x30, 0x25,                               /* TBSCertificate */
    0xa0, 0x03, 0x02, 0x01, 0x02,             /* [0] version 3 */
    0x02, 0x01, 0x07,                         /* serial */
    0xa3, 0x1b, 0x30, 0x19,                   /* [3] Extensions */
    0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x13, /* basicConstraints */
    0x04, 0x03, 0x30, 0x01, 0x00,             /*   a value the walk does not open */
    0x30, 0x0b, 0x06, 0x03, 0x55, 0x1d, 0x0f, /* keyUsage */
    0x01, 0x01, 0xff, 0x04, 0x01, 0x00,       /*   critical */
};
static const uint8_t tbs_critical[] = {
    0x30, 0x28, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x01, 0x07, 0xa3, 0x1e, 0x30, 0x1c,
    0x30, 0x0d, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x03, 0x30, 0x01,
    0x00, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff, 0x04, 0x01, 0x00,
};

static void test_set_critical(void **state)
{
	uint8_t buf[64];

	(void)state;
	memcpy(buf, tbs, sizeof tbs);
	assert_int_equal(rs_cert__der_set_critical(buf, sizeof tbs, sizeof buf, bc_oid, 3),
	                 sizeof tbs_critical);
	assert_memory_equal(buf, tbs_critical, sizeof tbs_critical);
	/* Once is enough: a critical extension is left as it is. */
	assert_int_equal(rs_cert__der_set_critical(buf, sizeof tbs_critical, sizeof buf, bc_oid, 3),
	                 sizeof tbs_critical);
	assert_memory_equal(buf, tbs_critical, sizeof tbs_critical);

	memcpy(buf, tbs, sizeof tbs);
	assert_int_equal(rs_cert__der_set_critical(buf, sizeof tbs, sizeof tbs + 2, bc_oid, 3),
	                 -ENOSPC);
	assert_memory_equal(buf, tbs, sizeof tbs);
	assert_int_equal(rs_cert__der_set_critical(buf, sizeof tbs, sizeof buf,
	                                           (const uint8_t[]){0x55, 0x1d, 0x11}, 3),
	                 -ENOENT);
	/* Truncated or padded DER is refused, not walked past its end. */
	for (size_t cut = 0; cut < sizeof tbs; cut++)
		assert_int_equal(rs_cert__der_set_critical(buf, cut, sizeof buf, bc_oid, 3),
		                 -EINVAL);
}

/* When the insertion pushes a length past 127 (or 255), its length octets
 * grow too, and every enclosing length with them. */
static void test_set_critical_long_form(void **state)
{
	enum { PAD = 120 };
	static uint8_t in[512], out[512];
	size_t n = 0, want_len;
	int got;

	(void)state;
	/* TBS { serial(PAD bytes of content) [3] { Exts { Ext { OID, OCTET STRING } } } } */
	size_t ext_len = 5 + 5, exts_len = 2 + ext_len, a3_len = 2 + exts_len;
	size_t serial_len = 2 + PAD, tbs_len = serial_len + 2 + a3_len;

	in[n++] = 0x30;
	in[n++] = 0x81;
	in[n++] = (uint8_t)tbs_len;
	in[n++] = 0x02;
	in[n++] = PAD;
	memset(in + n, 0x11, PAD);
	n += PAD;
	in[n++] = 0xa3;
	in[n++] = (uint8_t)a3_len;
	in[n++] = 0x30;
	in[n++] = (uint8_t)exts_len;
	in[n++] = 0x30;
	in[n++] = (uint8_t)ext_len;
	memcpy(in + n,
	       (const uint8_t[]){0x06, 0x03, 0x55, 0x1d, 0x13, 0x04, 0x03, 0x30, 0x01, 0x00}, 10);
	n += 10;
	assert_int_equal(n, 3 + tbs_len);
	assert_true(tbs_len <= 255 && tbs_len + 3 > 127);

	memcpy(out, in, n);
	got = rs_cert__der_set_critical(out, n, sizeof out, bc_oid, 3);
	want_len = n + 3;
	assert_int_equal(got, (int)want_len);
	assert_int_equal(out[2], tbs_len + 3);
	assert_int_equal(out[3 + 2 + PAD + 1], a3_len + 3);
	assert_memory_equal(out + want_len - 13,
	                    ((const uint8_t[]){0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04,
	                                       0x03, 0x30, 0x01, 0x00}),
	                    13);

	/* Now with Extensions at 124 bytes of content and [3] at 126: the flag
	 * takes [3] to 129, which needs a length octet more (X.690 §10.1), and
	 * the TBS grows by both. */
	n = 0;
	exts_len = 124; /* the Extension of 12 bytes and a filler of 112 */
	a3_len = 2 + exts_len;
	tbs_len = 2 + a3_len;
	in[n++] = 0x30;
	in[n++] = 0x81;
	in[n++] = (uint8_t)tbs_len;
	in[n++] = 0xa3;
	in[n++] = (uint8_t)a3_len;
	in[n++] = 0x30;
	in[n++] = (uint8_t)exts_len;
	in[n++] = 0x30;
	in[n++] = 10;
	memcpy(in + n,
	       (const uint8_t[]){0x06, 0x03, 0x55, 0x1d, 0x13, 0x04, 0x03, 0x30, 0x01, 0x00}, 10);
	n += 10;
	memcpy(in + n, (const uint8_t[]){0x30, 110, 0x06, 0x03, 0x55, 0x1d, 0x0e, 0x04, 103}, 9);
	n += 9;
	memset(in + n, 0x22, 103);
	n += 103;
	assert_int_equal(n, 3 + tbs_len);
	memcpy(out, in, n);
	got = rs_cert__der_set_critical(out, n, sizeof out, bc_oid, 3);
	assert_int_equal(got, (int)n + 3 + 1);
	assert_memory_equal(out, ((const uint8_t[]){0x30, 0x81, 132, 0xa3, 0x81, 129, 0x30, 127}),
	                    8);
	assert_memory_equal(out + got - 112, in + n - 112, 112);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_san_uri_short),   cmocka_unit_test(test_san_uri_lengths),
	    cmocka_unit_test(test_san_uri_refused), cmocka_unit_test(test_time),
	    cmocka_unit_test(test_set_critical),    cmocka_unit_test(test_set_critical_long_form),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
