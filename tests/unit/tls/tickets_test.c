/* Tickets of the inbound port (src/tls/tickets.c): sealed and opened with
 * wolfSSL's ChaCha20-Poly1305, tied to the peer they were sealed for. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../../src/tls/internal.h"

#define NOW 1800000000 /* Unix seconds */

struct ticket {
	uint8_t name[RS_TLS_TICKET_NAME], iv[RS_TLS_TICKET_IV], mac[RS_TLS_TICKET_MAC];
	uint8_t state[200]; /* stands for wolfSSL's session state */
};

static void key_of(uint8_t key[RS_TLS_TICKET_KEY], const char *bundle)
{
	assert_int_equal(rs_tls__ticket_key(key, bundle, strlen(bundle)), 0);
}

/* A peer whose certificate hash starts with tag, valid until NOW + 3600. */
static struct rs_tls_peer peer_of(unsigned tag)
{
	struct rs_tls_peer p = {.not_after = NOW + 3600};

	memset(p.hash, 0xab, sizeof p.hash);
	memcpy(p.hash, &tag, sizeof tag);
	snprintf(p.id, sizeof p.id, "spiffe://cluster.local/ns/default/sa/sa%u", tag);
	return p;
}

static void seal(const uint8_t *key, const struct rs_tls_peer *p, struct ticket *t)
{
	for (size_t i = 0; i < sizeof t->state; i++)
		t->state[i] = (uint8_t)i;
	assert_int_equal(rs_tls__ticket_seal(key, p, t->name, t->iv, t->mac, t->state, sizeof t->state), 0);
}

static int open_(const uint8_t *key, struct ticket *t, int64_t now, struct rs_tls_peer *out)
{
	return rs_tls__ticket_open(key, t->name, t->iv, t->mac, t->state, sizeof t->state, now, out);
}

static void test_round_trip_gives_the_peer_and_the_state(void **state)
{
	uint8_t key[RS_TLS_TICKET_KEY];
	struct rs_tls_peer p = peer_of(1), got;
	struct ticket t;

	key_of(key, "bundle A");
	seal(key, &p, &t);
	assert_memory_equal(t.name, p.hash, RS_TLS_TICKET_NAME);
	assert_int_not_equal(t.state[5], 5); /* sealed */
	assert_int_equal(open_(key, &t, NOW, &got), 0);
	for (size_t i = 0; i < sizeof t.state; i++)
		assert_int_equal(t.state[i], (uint8_t)i);
	assert_memory_equal(got.hash, p.hash, sizeof p.hash);
	assert_string_equal(got.id, p.id);
	assert_int_equal(got.not_after, p.not_after);
}

static void test_two_tickets_of_one_peer_have_different_nonces(void **state)
{
	uint8_t key[RS_TLS_TICKET_KEY];
	struct rs_tls_peer p = peer_of(2);
	struct ticket a, b;

	key_of(key, "bundle A");
	seal(key, &p, &a);
	seal(key, &p, &b);
	assert_memory_not_equal(a.iv, b.iv, 12);
	assert_memory_not_equal(a.state, b.state, sizeof a.state);
}

static void test_altered_tickets_are_refused(void **state)
{
	uint8_t key[RS_TLS_TICKET_KEY];
	struct rs_tls_peer p = peer_of(3), q = peer_of(4), got;
	struct ticket t, u;

	key_of(key, "bundle A");
	seal(key, &q, &u); /* q is known too */
	seal(key, &p, &t);
	u = t;
	u.state[17] ^= 1;
	assert_int_equal(open_(key, &u, NOW, &got), -EBADMSG);
	u = t;
	u.iv[0] ^= 1;
	assert_int_equal(open_(key, &u, NOW, &got), -EBADMSG);
	u = t;
	u.mac[3] ^= 1;
	assert_int_equal(open_(key, &u, NOW, &got), -EBADMSG);
	/* Pointing p's ticket at another known peer does not make it q's. */
	u = t;
	memcpy(u.name, q.hash, RS_TLS_TICKET_NAME);
	assert_int_equal(open_(key, &u, NOW, &got), -EBADMSG);
	/* Nor at a peer never seen. */
	u = t;
	u.name[15] ^= 0xff;
	assert_int_equal(open_(key, &u, NOW, &got), -ENOENT);
	assert_int_equal(open_(key, &t, NOW, &got), 0);
}

static void test_another_bundle_cannot_open(void **state)
{
	uint8_t a[RS_TLS_TICKET_KEY], a2[RS_TLS_TICKET_KEY], b[RS_TLS_TICKET_KEY];
	struct rs_tls_peer p = peer_of(5), got;
	struct ticket t, u;

	key_of(a, "bundle A");
	key_of(a2, "bundle A");
	key_of(b, "bundle B");
	assert_memory_equal(a, a2, sizeof a); /* a reload under the same roots */
	assert_memory_not_equal(a, b, sizeof a);
	seal(a, &p, &t);
	u = t;
	assert_int_equal(open_(b, &u, NOW, &got), -EBADMSG);
	assert_int_equal(open_(a2, &t, NOW, &got), 0);
}

static void test_nothing_resumes_past_the_certificate(void **state)
{
	uint8_t key[RS_TLS_TICKET_KEY];
	struct rs_tls_peer p = peer_of(6), got;
	struct ticket t, u;

	key_of(key, "bundle A");
	seal(key, &p, &t);
	u = t;
	assert_int_equal(open_(key, &u, p.not_after - 1, &got), 0);
	assert_int_equal(open_(key, &t, p.not_after, &got), -ENOENT);
}

static void test_the_least_recently_used_peer_goes_first(void **state)
{
	uint8_t key[RS_TLS_TICKET_KEY];
	struct rs_tls_peer first = peer_of(1000), kept = peer_of(1001), got;
	struct ticket t_first, t_kept, t;

	key_of(key, "bundle A");
	seal(key, &first, &t_first);
	seal(key, &kept, &t_kept);
	for (unsigned i = 0; i < 1100; i++) {
		struct rs_tls_peer p = peer_of(2000 + i);
		struct ticket copy = t_kept;

		seal(key, &p, &t);
		/* kept is in use all along */
		assert_int_equal(open_(key, &copy, NOW, &got), 0);
	}
	assert_int_equal(open_(key, &t_first, NOW, &got), -ENOENT);
	assert_int_equal(open_(key, &t_kept, NOW, &got), 0);
	assert_string_equal(got.id, kept.id);
	assert_int_equal(open_(key, &t, NOW, &got), 0); /* the newest */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_gives_the_peer_and_the_state),
	    cmocka_unit_test(test_two_tickets_of_one_peer_have_different_nonces),
	    cmocka_unit_test(test_altered_tickets_are_refused),
	    cmocka_unit_test(test_another_bundle_cannot_open),
	    cmocka_unit_test(test_nothing_resumes_past_the_certificate),
	    cmocka_unit_test(test_the_least_recently_used_peer_goes_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
