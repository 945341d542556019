/* Tickets of the inbound port (src/tls/tickets.c): sealed and opened with
 * wolfSSL's ChaCha20-Poly1305, tied to the peer they were sealed for. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../../src/tls/internal.h"

#define NOW 1800000000 /* Unix seconds */
#define EPOCH RS_TLS_TICKET_LIFETIME
/* Uptime (seconds): the key epochs follow it. The key tables are the
 * process's, so each test starts later than the one before. */
#define UP(test) ((int64_t)(test) * 10 * EPOCH)

struct ticket {
	uint8_t name[RS_TLS_TICKET_NAME], iv[RS_TLS_TICKET_IV], mac[RS_TLS_TICKET_MAC];
	uint8_t state[200 + RS_TLS_TICKET_EXTRA]; /* stands for wolfSSL's session state, and room */
	size_t len;                               /* sealed */
};

#define STATE 200

static void bundle_of(uint8_t b[RS_TLS_BUNDLE_HASH], const char *pem)
{
	assert_int_equal(rs_tls__bundle_hash(b, pem, strlen(pem)), 0);
}

/* A peer whose certificate hash starts with tag, valid until NOW + 3 epochs. */
static struct rs_tls_peer peer_of(unsigned tag)
{
	struct rs_tls_peer p = {.not_after = NOW + 3 * EPOCH};

	memset(p.hash, 0xab, sizeof p.hash);
	memcpy(p.hash, &tag, sizeof tag);
	snprintf(p.id, sizeof p.id, "spiffe://cluster.local/ns/default/sa/sa%u", tag);
	return p;
}

static int64_t up; /* the test's uptime */

static void seal_at(const uint8_t *b, const struct rs_tls_peer *p, int64_t uptime, struct ticket *t)
{
	for (size_t i = 0; i < STATE; i++)
		t->state[i] = (uint8_t)i;
	assert_int_equal(rs_tls__ticket_seal(b, p, uptime, t->name, t->iv, t->mac, t->state, STATE, &t->len),
	                 0);
	assert_int_equal(t->len, STATE + RS_TLS_TICKET_EXTRA);
}

static void seal(const uint8_t *b, const struct rs_tls_peer *p, struct ticket *t)
{
	seal_at(b, p, up, t);
}

/* Opens a copy of t (so t can be opened again) at wall time now and
 * uptime: the state comes back whole, or, refused as altered, is left as
 * it came or wiped. */
static int open_up(const uint8_t *b, const struct ticket *t, int64_t now, int64_t uptime,
                   struct rs_tls_peer *out)
{
	static const uint8_t zeros[sizeof t->state];
	struct ticket c = *t;
	size_t n = 0;
	int ret = rs_tls__ticket_open(b, c.name, c.iv, c.mac, c.state, c.len, now, uptime, out, &n);

	if (ret == 0) {
		assert_int_equal(n, STATE);
		for (size_t i = 0; i < STATE; i++)
			assert_int_equal(c.state[i], (uint8_t)i);
	} else if (ret == -EBADMSG) {
		/* never left decrypted: as it came, or wiped */
		assert_true(memcmp(c.state, t->state, t->len) == 0 || memcmp(c.state, zeros, c.len) == 0);
	}
	return ret;
}

static int open_(const uint8_t *b, const struct ticket *t, int64_t now, struct rs_tls_peer *out)
{
	return open_up(b, t, now, up, out);
}

static void test_round_trip_gives_the_peer_and_the_state(void **state)
{
	uint8_t b[RS_TLS_BUNDLE_HASH];
	struct rs_tls_peer p = peer_of(1), got;
	struct ticket t;

	up = UP(1);
	bundle_of(b, "bundle A");
	seal(b, &p, &t);
	assert_int_not_equal(t.state[5], 5); /* sealed */
	assert_int_equal(open_(b, &t, NOW + 10, &got), 0);
	assert_memory_equal(got.hash, p.hash, sizeof p.hash);
	assert_string_equal(got.id, p.id);
	assert_int_equal(got.not_after, p.not_after);
}

static void test_nothing_in_the_clear_names_the_peer(void **state)
{
	uint8_t b[RS_TLS_BUNDLE_HASH];
	struct rs_tls_peer p = peer_of(2), q = peer_of(3);
	struct ticket a, a2, c;

	up = UP(2);
	bundle_of(b, "bundle A");
	seal(b, &p, &a);
	seal(b, &p, &a2);
	seal(b, &q, &c);
	/* key_name is the epoch alone: the same for every peer */
	assert_memory_equal(a.name, c.name, RS_TLS_TICKET_NAME);
	assert_memory_not_equal(a.iv, a2.iv, 12);
	assert_memory_not_equal(a.state, a2.state, a.len);
	assert_null(memmem(a.state, a.len, p.hash, 8));
}

static void test_altered_tickets_are_refused(void **state)
{
	uint8_t b[RS_TLS_BUNDLE_HASH];
	struct rs_tls_peer p = peer_of(4), got;
	struct ticket t, u;

	up = UP(3);
	bundle_of(b, "bundle A");
	seal(b, &p, &t);
	for (size_t i = 0; i < t.len; i += 7) {
		u = t;
		u.state[i] ^= 1;
		assert_int_equal(open_(b, &u, NOW, &got), -EBADMSG);
	}
	for (size_t i = 0; i < RS_TLS_TICKET_IV; i++) {
		u = t;
		u.iv[i] ^= 1;
		assert_int_equal(open_(b, &u, NOW, &got), -EBADMSG);
	}
	for (size_t i = 0; i < RS_TLS_TICKET_MAC; i++) { /* the unused half too */
		u = t;
		u.mac[i] ^= 1;
		assert_int_equal(open_(b, &u, NOW, &got), -EBADMSG);
	}
	u = t;
	u.name[15] ^= 1;
	assert_int_equal(open_(b, &u, NOW, &got), -EBADMSG);
	u = t;
	u.len -= 1;
	assert_int_equal(open_(b, &u, NOW, &got), -EBADMSG);
	assert_int_equal(open_(b, &t, NOW, &got), 0);
}

static void test_another_bundle_cannot_open(void **state)
{
	uint8_t a[RS_TLS_BUNDLE_HASH], a2[RS_TLS_BUNDLE_HASH], b[RS_TLS_BUNDLE_HASH];
	struct rs_tls_peer p = peer_of(5), got;
	struct ticket t;

	up = UP(4);
	bundle_of(a, "bundle A");
	bundle_of(a2, "bundle A"); /* a reload under the same roots */
	bundle_of(b, "bundle A plus a root");
	seal(a, &p, &t);
	assert_int_equal(open_(b, &t, NOW, &got), -EBADMSG);
	assert_int_equal(open_(a2, &t, NOW, &got), 0);
}

static void test_nothing_resumes_past_the_certificate(void **state)
{
	uint8_t b[RS_TLS_BUNDLE_HASH];
	struct rs_tls_peer p = peer_of(6), unknown = peer_of(7), got;
	struct ticket t;

	up = UP(5);
	bundle_of(b, "bundle A");
	p.not_after = NOW + 60;
	seal(b, &p, &t);
	assert_int_equal(open_(b, &t, NOW + 59, &got), 0);
	assert_int_equal(open_(b, &t, NOW + 60, &got), -ENOENT);
	unknown.not_after = 0; /* an expiry that did not read */
	seal(b, &unknown, &t);
	assert_int_equal(open_(b, &t, NOW, &got), -ENOENT);
}

static void test_keys_of_older_epochs_are_forgotten(void **state)
{
	uint8_t b[RS_TLS_BUNDLE_HASH];
	struct rs_tls_peer p = peer_of(8), got;
	struct ticket t;
	int64_t start = UP(6);

	bundle_of(b, "bundle A");
	p.not_after = NOW + 100 * EPOCH;
	seal_at(b, &p, start, &t);
	assert_int_equal(open_up(b, &t, NOW, start + EPOCH - 1, &got), 0);
	assert_int_equal(open_up(b, &t, NOW, start + EPOCH, &got), 0); /* the previous epoch's */
	assert_int_equal(open_up(b, &t, NOW, start + 2 * EPOCH, &got), -ENOENT);
	/* once forgotten, a key does not come back */
	assert_int_equal(open_up(b, &t, NOW, start + EPOCH, &got), -ENOENT);
	/* the wall clock moves no epoch: set back a year, or on a year */
	seal_at(b, &p, start + 3 * EPOCH, &t);
	assert_int_equal(open_up(b, &t, NOW - 365 * 86400, start + 3 * EPOCH, &got), 0);
	assert_int_equal(open_up(b, &t, NOW + 10 * EPOCH, start + 3 * EPOCH, &got), 0);
	/* and a ticket names its epoch: another one's does not open */
	t.name[0] ^= 1;
	assert_int_equal(open_up(b, &t, NOW, start + 3 * EPOCH, &got), -ENOENT);
}

static void test_the_least_recently_used_peer_goes_first(void **state)
{
	uint8_t b[RS_TLS_BUNDLE_HASH];
	int64_t now = NOW;
	struct rs_tls_peer first = peer_of(1000), kept = peer_of(1001), got;
	struct ticket t_first, t_kept, t;

	first.not_after = kept.not_after = now + EPOCH;
	up = UP(7);
	bundle_of(b, "bundle A");
	seal(b, &first, &t_first);
	seal(b, &kept, &t_kept);
	/* 8 peers more in first's and kept's slots (the hash's first word
	 * picks them), with kept in use all along */
	for (unsigned i = 1; i <= 8; i++) {
		struct rs_tls_peer p = peer_of(1000 + 1024 * i);

		p.not_after = now + EPOCH;
		seal(b, &p, &t);
		assert_int_equal(open_(b, &t_kept, now, &got), 0);
	}
	assert_int_equal(open_(b, &t_first, now, &got), -ENOENT);
	assert_int_equal(open_(b, &t_kept, now, &got), 0);
	assert_string_equal(got.id, kept.id);
	assert_int_equal(open_(b, &t, now, &got), 0); /* the newest */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_gives_the_peer_and_the_state),
	    cmocka_unit_test(test_nothing_in_the_clear_names_the_peer),
	    cmocka_unit_test(test_altered_tickets_are_refused),
	    cmocka_unit_test(test_another_bundle_cannot_open),
	    cmocka_unit_test(test_nothing_resumes_past_the_certificate),
	    cmocka_unit_test(test_keys_of_older_epochs_are_forgotten),
	    cmocka_unit_test(test_the_least_recently_used_peer_goes_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
