/* Keys and certificates made with wolfSSL, read back with wolfSSL: what a
 * peer of the mesh will see in them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../../src/tls/internal.h"
#include "ringside/tls.h"

#define URI "spiffe://cluster.local/ns/default/sa/bookinfo"

struct ca {
	struct rs_cert_key *key;
	uint8_t *der;
	size_t len;
};

static char err[512];
static int64_t now;

static void make_root(struct ca *ca, const char *td)
{
	char uri[300];
	struct rs_cert_spec spec = {
	    .kind = RS_CERT_ROOT,
	    .org = td,
	    .cn = "ringside mesh root",
	    .san_uri = uri,
	    .not_before = now - 60,
	    .not_after = now + 86400,
	};

	snprintf(uri, sizeof uri, "spiffe://%s", td);
	ca->key = rs_cert_key_new(err, sizeof err);
	assert_non_null(ca->key);
	if (rs_cert_make(&spec, ca->key, NULL, 0, NULL, &ca->der, &ca->len, err, sizeof err) != 0)
		fail_msg("root: %s", err);
}

static void free_ca(struct ca *ca)
{
	rs_cert_key_free(ca->key);
	free(ca->der);
}

/* A workload certificate for a new key, signed by ca. */
static int make_leaf(const struct ca *ca, const struct rs_cert_spec *spec, struct ca *leaf)
{
	leaf->key = rs_cert_key_new(err, sizeof err);
	assert_non_null(leaf->key);
	return rs_cert_make(spec, leaf->key, ca->der, ca->len, ca->key, &leaf->der, &leaf->len, err,
	                    sizeof err);
}

static const struct rs_cert_spec *leaf_spec(void)
{
	static struct rs_cert_spec spec;

	spec = (struct rs_cert_spec){
	    .kind = RS_CERT_WORKLOAD,
	    .san_uri = URI,
	    .not_before = now - 60,
	    .not_after = now + 3600,
	};
	return &spec;
}

static int setup(void **state)
{
	(void)state;
	now = (int64_t)time(NULL);
	return 0;
}

static void test_root(void **state)
{
	struct rs_cert_info info;
	struct ca root;

	(void)state;
	make_root(&root, "cluster.local");
	assert_int_equal(rs_cert_info(root.der, root.len, &info, err, sizeof err), 0);
	assert_string_equal(info.subject, "O=cluster.local, CN=ringside mesh root");
	assert_string_equal(info.issuer, info.subject);
	assert_string_equal(info.org, "cluster.local");
	assert_string_equal(info.san_uri, "spiffe://cluster.local");
	assert_int_equal(info.n_san_uri, 1);
	assert_true(info.is_ca);
	assert_int_equal(info.not_before, now - 60);
	assert_int_equal(info.not_after, now + 86400);
	/* Self-signed: it verifies as its own anchor. */
	assert_int_equal(rs_cert_verify(root.der, root.len, root.der, root.len, err, sizeof err),
	                 0);
	assert_int_equal(rs_cert_key_matches(root.key, root.der, root.len), 0);
	free_ca(&root);
}

/* The TBSCertificate inside a certificate's DER. */
static void tbs_of(const uint8_t *der, size_t *off, size_t *len)
{
	size_t o = 1, n;

	assert_int_equal(der[0], 0x30);
	o += (der[o] & 0x80) ? 1 + (der[o] & 0x7f) : 1;
	assert_int_equal(der[o], 0x30);
	assert_int_equal(der[o + 1], 0x82); /* a few hundred bytes */
	n = 4 + ((size_t)der[o + 2] << 8 | der[o + 3]);
	*off = o;
	*len = n;
}

static void test_workload(void **state)
{
	struct rs_cert_info info, again;
	struct ca root, leaf, leaf2;
	uint8_t tbs[4096];
	size_t off, len;

	(void)state;
	make_root(&root, "cluster.local");
	assert_int_equal(make_leaf(&root, leaf_spec(), &leaf), 0);
	assert_int_equal(rs_cert_info(leaf.der, leaf.len, &info, err, sizeof err), 0);
	assert_string_equal(info.subject, "");
	assert_string_equal(info.issuer, "O=cluster.local, CN=ringside mesh root");
	assert_string_equal(info.san_uri, URI);
	assert_int_equal(info.n_san_uri, 1);
	assert_false(info.is_ca);
	assert_int_equal(info.not_before, now - 60);
	assert_int_equal(info.not_after, now + 3600);
	/* 16 random octets, and one more when the first has its high bit. */
	assert_true(strlen(info.serial) == 47 || strlen(info.serial) == 50);

	assert_int_equal(rs_cert_verify(root.der, root.len, leaf.der, leaf.len, err, sizeof err),
	                 0);
	assert_int_equal(rs_cert_key_matches(leaf.key, leaf.der, leaf.len), 0);
	assert_int_equal(rs_cert_key_matches(root.key, leaf.der, leaf.len), -EINVAL);

	/* basicConstraints went out critical: marking it again changes nothing. */
	tbs_of(leaf.der, &off, &len);
	memcpy(tbs, leaf.der + off, len);
	assert_int_equal(
	    rs_cert__der_set_critical(tbs, len, sizeof tbs, (const uint8_t[]){0x55, 0x1d, 0x13}, 3),
	    (int)len);

	/* Each certificate gets its own serial. */
	assert_int_equal(make_leaf(&root, leaf_spec(), &leaf2), 0);
	assert_int_equal(rs_cert_info(leaf2.der, leaf2.len, &again, err, sizeof err), 0);
	assert_string_not_equal(info.serial, again.serial);

	free_ca(&leaf2);
	free_ca(&leaf);
	free_ca(&root);
}

static void test_verify_refuses(void **state)
{
	struct rs_cert_spec spec = *leaf_spec();
	struct ca root, other, leaf, old;

	(void)state;
	make_root(&root, "cluster.local");
	make_root(&other, "cluster.local");
	assert_int_equal(make_leaf(&root, &spec, &leaf), 0);
	/* Another root with the same name: the signature does not check. */
	err[0] = '\0';
	assert_int_equal(rs_cert_verify(other.der, other.len, leaf.der, leaf.len, err, sizeof err),
	                 -EPROTO);
	assert_true(strstr(err, "wolfSSL error") != NULL);
	/* Expired. */
	spec.not_before = now - 7200;
	spec.not_after = now - 3600;
	assert_int_equal(make_leaf(&root, &spec, &old), 0);
	assert_int_equal(rs_cert_verify(root.der, root.len, old.der, old.len, err, sizeof err),
	                 -EPROTO);
	free_ca(&old);
	free_ca(&leaf);
	free_ca(&other);
	free_ca(&root);
}

static void test_spec_refused(void **state)
{
	struct rs_cert_spec spec = *leaf_spec();
	struct ca root, leaf;
	char long_cn[70];

	(void)state;
	make_root(&root, "cluster.local");
	spec.san_uri = NULL;
	assert_int_equal(make_leaf(&root, &spec, &leaf), -EINVAL);
	assert_string_equal(err, "a workload certificate needs its SPIFFE ID");
	rs_cert_key_free(leaf.key);

	spec = *leaf_spec();
	spec.not_after = spec.not_before;
	assert_int_equal(make_leaf(&root, &spec, &leaf), -EINVAL);
	rs_cert_key_free(leaf.key);

	spec = *leaf_spec();
	memset(long_cn, 'x', 64);
	long_cn[64] = '\0';
	spec.cn = long_cn;
	assert_int_equal(make_leaf(&root, &spec, &leaf), -EINVAL);
	assert_string_equal(err, "subject CN is 64 characters; at most 63 fit");
	rs_cert_key_free(leaf.key);

	spec = *leaf_spec();
	spec.san_uri = "spiffe://caf\xc3\xa9/ns/a/sa/b";
	assert_int_equal(make_leaf(&root, &spec, &leaf), -EINVAL);
	rs_cert_key_free(leaf.key);
	free_ca(&root);
}

static void test_key_pem(void **state)
{
	static const char garbage[] = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE "
	                              "KEY-----\n";
	struct rs_cert_key *key, *back;
	struct ca root;
	char *pem;
	size_t len;

	(void)state;
	make_root(&root, "cluster.local");
	key = root.key;
	assert_int_equal(rs_cert_key_pem(key, &pem, &len), 0);
	assert_int_equal(strncmp(pem, "-----BEGIN EC PRIVATE KEY-----\n", 31), 0);
	assert_int_equal(strlen(pem), len);
	back = rs_cert_key_from_pem(pem, len, err, sizeof err);
	assert_non_null(back);
	assert_int_equal(rs_cert_key_matches(back, root.der, root.len), 0);
	rs_cert_key_free(back);
	rs_tls_free_secret(pem, len);

	assert_null(rs_cert_key_from_pem("not a key", 9, err, sizeof err));
	assert_true(strstr(err, "no unencrypted private key") != NULL);
	assert_null(rs_cert_key_from_pem(garbage, sizeof garbage - 1, err, sizeof err));
	free_ca(&root);
}

static void test_pem_chain(void **state)
{
	static const char bad_block[] = "-----BEGIN CERTIFICATE-----\n!!!!\n"
	                                "-----END CERTIFICATE-----\n";
	struct ca root, leaf;
	char *chain = NULL;
	size_t len = 0, off = 0, der_len;
	uint8_t *der;

	(void)state;
	make_root(&root, "example.org");
	assert_int_equal(make_leaf(&root, leaf_spec(), &leaf), 0);
	assert_int_equal(rs_cert_pem_append(leaf.der, leaf.len, &chain, &len), 0);
	assert_int_equal(rs_cert_pem_append(root.der, root.len, &chain, &len), 0);
	assert_int_equal(strlen(chain), len);

	assert_int_equal(rs_cert_pem_next(chain, len, &off, &der, &der_len), 1);
	assert_int_equal(der_len, leaf.len);
	assert_memory_equal(der, leaf.der, der_len);
	free(der);
	assert_int_equal(rs_cert_pem_next(chain, len, &off, &der, &der_len), 1);
	assert_memory_equal(der, root.der, root.len);
	free(der);
	assert_int_equal(rs_cert_pem_next(chain, len, &off, &der, &der_len), 0);

	/* A block that does not decode. */
	off = 0;
	assert_int_equal(rs_cert_pem_next(bad_block, sizeof bad_block - 1, &off, &der, &der_len),
	                 -EINVAL);
	free(chain);
	free_ca(&leaf);
	free_ca(&root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_root),           cmocka_unit_test(test_workload),
	    cmocka_unit_test(test_verify_refuses), cmocka_unit_test(test_spec_refused),
	    cmocka_unit_test(test_key_pem),        cmocka_unit_test(test_pem_chain),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
