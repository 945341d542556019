/* P-256 keys and X.509 certificates for mesh identities, made with wolfSSL's
 * certificate generation API (wolfcrypt/asn_public.h): a self-signed mesh
 * root and workload certificates that are X509-SVIDs (SPIFFE X509-SVID §4,
 * https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* options.h first: it carries the feature macros the library was built with,
 * and the struct layouts below depend on them. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>

#include "internal.h"
#include "ringside/tls.h"

/* Debian's libwolfssl has all of these; a wolfSSL built for ringside needs
 * them too (configure flags in the messages). */
#ifndef WOLFSSL_CERT_GEN
#error "wolfSSL lacks certificate generation: build it with --enable-certgen"
#endif
#ifndef WOLFSSL_CERT_EXT
#error "wolfSSL lacks certificate extensions (key usage, key ids): build it with --enable-certext"
#endif
#ifndef WOLFSSL_KEY_GEN
#error "wolfSSL lacks key generation: build it with --enable-keygen"
#endif
#ifndef HAVE_ECC
#error "wolfSSL lacks ECC: build it with --enable-ecc"
#endif
#ifndef WOLFSSL_ALT_NAMES
#error "wolfSSL lacks Cert.altNames and raw dates: build it with CPPFLAGS=-DWOLFSSL_ALT_NAMES"
#endif

#define P256_BYTES  32
#define SERIAL_SIZE 16 /* 128 random bits (CA/Browser Forum asks for 64 or more) */
#define CERT_MAX    (4096 + RS_SPIFFE_ID_MAX)

/* id-ce-basicConstraints, 2.5.29.19 (RFC 5280 §4.2.1.9) */
static const uint8_t basic_constraints_oid[] = {0x55, 0x1d, 0x13};

struct rs_cert_key {
	ecc_key k;
};

static int say(char *err, size_t errlen, int ret, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int say(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

/* A wolfSSL failure: -EPROTO with what was being done and wolfSSL's words. */
static int wolf_fail(char *err, size_t errlen, const char *what, int code)
{
	return say(err, errlen, -EPROTO, "%s: %s (wolfSSL error %d)", what, wc_GetErrorString(code),
	           code);
}

struct rs_cert_key *rs_cert_key_new(char *err, size_t errlen)
{
	struct rs_cert_key *key = calloc(1, sizeof *key);
	WC_RNG rng;
	int ret;

	if (!key) {
		say(err, errlen, -ENOMEM, "out of memory");
		return NULL;
	}
	ret = wc_InitRng(&rng);
	if (ret != 0) {
		wolf_fail(err, errlen, "random number generator", ret);
		free(key);
		return NULL;
	}
	ret = wc_ecc_init(&key->k);
	if (ret == 0) {
		ret = wc_ecc_make_key_ex(&rng, P256_BYTES, &key->k, ECC_SECP256R1);
		if (ret != 0)
			wc_ecc_free(&key->k);
	}
	wc_FreeRng(&rng);
	if (ret != 0) {
		wolf_fail(err, errlen, "P-256 key generation", ret);
		rs_tls_free_secret(key, sizeof *key);
		return NULL;
	}
	return key;
}

void rs_cert_key_free(struct rs_cert_key *key)
{
	if (!key)
		return;
	wc_ecc_free(&key->k);
	rs_tls_free_secret(key, sizeof *key);
}

struct rs_cert_key *rs_cert_key_from_pem(const void *pem, size_t len, char *err, size_t errlen)
{
	struct rs_cert_key *key = NULL;
	DerBuffer *der = NULL;
	word32 idx = 0;
	int ret, format = 0;

	/* PRIVATEKEY_TYPE takes SEC 1 and PKCS #8 blocks alike and hands back
	 * the SEC 1 structure. */
	ret = wc_PemToDer(pem, (long)len, PRIVATEKEY_TYPE, &der, NULL, NULL, &format);
	if (ret != 0) {
		wolf_fail(err, errlen, "no unencrypted private key in PEM", ret);
		goto out;
	}
	if (format != ECDSAk) {
		say(err, errlen, -EINVAL,
		    "the private key is not an EC key (ringside's CA uses P-256)");
		goto out;
	}
	key = calloc(1, sizeof *key);
	if (!key) {
		say(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	ret = wc_ecc_init(&key->k);
	if (ret == 0) {
		ret = wc_EccPrivateKeyDecode(der->buffer, &idx, &key->k, der->length);
		if (ret != 0)
			wc_ecc_free(&key->k);
	}
	if (ret != 0) {
		wolf_fail(err, errlen, "cannot decode the EC private key", ret);
		rs_tls_free_secret(key, sizeof *key);
		key = NULL;
		goto out;
	}
	if (wc_ecc_get_curve_id(key->k.idx) != ECC_SECP256R1) {
		say(err, errlen, -EINVAL, "the EC key is not on P-256 (prime256v1)");
		goto bad;
	}
	/* A SEC 1 key may leave out its public point. */
	if (key->k.type == ECC_PRIVATEKEY_ONLY) {
		ret = wc_ecc_make_pub(&key->k, NULL);
		if (ret != 0) {
			wolf_fail(err, errlen, "cannot derive the public key", ret);
			goto bad;
		}
		key->k.type = ECC_PRIVATEKEY;
	}
	ret = wc_ecc_check_key(&key->k);
	if (ret != 0) {
		wolf_fail(err, errlen, "the EC key does not check out", ret);
		goto bad;
	}
	goto out;
bad:
	rs_cert_key_free(key);
	key = NULL;
out:
	wc_FreeDer(&der); /* zeroes the key bytes */
	return key;
}

int rs_cert_key_pem(const struct rs_cert_key *key, char **pem, size_t *len)
{
	uint8_t der[256];
	char *out;
	size_t cap = 512;
	int n, ret;

	n = wc_EccKeyToDer((ecc_key *)&key->k, der, sizeof der);
	if (n <= 0)
		return -EPROTO;
	out = malloc(cap);
	if (!out) {
		ret = -ENOMEM;
		goto out;
	}
	ret = wc_DerToPem(der, (word32)n, (byte *)out, (word32)cap - 1, ECC_PRIVATEKEY_TYPE);
	if (ret <= 0) {
		rs_tls_free_secret(out, cap);
		ret = -EPROTO;
		goto out;
	}
	out[ret] = '\0';
	*pem = out;
	*len = (size_t)ret;
	ret = 0;
out:
	explicit_bzero(der, sizeof der);
	return ret;
}

/* A random positive serial (RFC 5280 §4.1.2.2: unique per issuer, at most 20
 * octets). wolfSSL adds the leading zero octet a high bit needs. */
static int set_serial(Cert *c, WC_RNG *rng)
{
	static const uint8_t zero[SERIAL_SIZE];
	int ret;

	do {
		ret = wc_RNG_GenerateBlock(rng, c->serial, SERIAL_SIZE);
		if (ret != 0)
			return ret;
	} while (memcmp(c->serial, zero, SERIAL_SIZE) == 0);
	c->serialSz = SERIAL_SIZE;
	return 0;
}

/* A subject attribute: ub-organization-name and ub-common-name are 64
 * (RFC 5280 Appendix A), as is wolfSSL's CTC_NAME_SIZE with its NUL. */
static int set_name_part(char *dst, const char *src, const char *what, char *err, size_t errlen)
{
	size_t len;

	if (!src)
		return 0;
	len = strlen(src);
	if (len >= CTC_NAME_SIZE)
		return say(err, errlen, -EINVAL, "subject %s is %zu characters; at most %d fit",
		           what, len, CTC_NAME_SIZE - 1);
	memcpy(dst, src, len + 1);
	return 0;
}

/* Fills c from spec: names, validity, extensions. */
static int describe(Cert *c, const struct rs_cert_spec *spec, char *err, size_t errlen)
{
	int n, ret;

	ret = set_name_part(c->subject.org, spec->org, "O", err, errlen);
	if (ret == 0)
		ret = set_name_part(c->subject.commonName, spec->cn, "CN", err, errlen);
	if (ret < 0)
		return ret;
	if (spec->not_after <= spec->not_before)
		return say(err, errlen, -EINVAL, "the validity ends before it starts");
	/* wolfSSL counts validity in whole days (Cert.daysValid) and starts it a
	 * day back; a workload certificate lives hours, so the dates go in as
	 * DER, which wolfSSL then copies as they are. */
	n = rs_cert__der_time(c->beforeDate, sizeof c->beforeDate, spec->not_before);
	if (n < 0)
		return say(err, errlen, -EINVAL, "the start of validity is out of range");
	c->beforeDateSz = n;
	n = rs_cert__der_time(c->afterDate, sizeof c->afterDate, spec->not_after);
	if (n < 0)
		return say(err, errlen, -EINVAL, "the end of validity is out of range");
	c->afterDateSz = n;

	if (spec->san_uri) {
		n = rs_cert__der_san_uri(c->altNames, sizeof c->altNames, spec->san_uri,
		                         strlen(spec->san_uri));
		if (n < 0)
			return say(err, errlen, -EINVAL, "the URI SAN is not ASCII or too long");
		c->altNamesSz = n;
		/* RFC 5280 §4.2.1.6: with an empty subject, the SAN is critical
		 * (Istio's workload certificates are so). */
		c->altNamesCrit = !spec->org && !spec->cn;
	} else if (spec->kind == RS_CERT_WORKLOAD) {
		return say(err, errlen, -EINVAL, "a workload certificate needs its SPIFFE ID");
	}

	if (spec->kind == RS_CERT_ROOT) {
		c->isCA = 1;
		ret = wc_SetKeyUsage(c, "keyCertSign,cRLSign");
		if (ret != 0)
			return wolf_fail(err, errlen, "key usage", ret);
		return 0;
	}
	/* X509-SVID §4.1, §4.3: a leaf says CA:FALSE and digitalSignature. Istio
	 * adds keyEncipherment, which is for RSA keys: RFC 5480 §3 lists only
	 * digitalSignature, nonRepudiation and keyAgreement for an EC key. */
	c->isCA = 0;
	c->basicConstSet = 1;
	ret = wc_SetKeyUsage(c, "digitalSignature");
	if (ret == 0)
		ret = wc_SetExtKeyUsage(c, "serverAuth,clientAuth");
	if (ret != 0)
		return wolf_fail(err, errlen, "key usage", ret);
	return 0;
}

int rs_cert_make(const struct rs_cert_spec *spec, const struct rs_cert_key *key,
                 const uint8_t *issuer_der, size_t issuer_len, const struct rs_cert_key *issuer_key,
                 uint8_t **der, size_t *der_len, char *err, size_t errlen)
{
	ecc_key *subject_k = (ecc_key *)&key->k;
	ecc_key *signer_k = issuer_der ? (ecc_key *)&issuer_key->k : subject_k;
	uint8_t *buf = NULL;
	Cert *c = NULL;
	WC_RNG rng;
	int ret;

	ret = wc_InitRng(&rng);
	if (ret != 0)
		return wolf_fail(err, errlen, "random number generator", ret);
	c = wc_CertNew(NULL);
	buf = malloc(CERT_MAX);
	if (!c || !buf) {
		ret = say(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	c->sigType = CTC_SHA256wECDSA;
	ret = set_serial(c, &rng);
	if (ret != 0) {
		ret = wolf_fail(err, errlen, "serial number", ret);
		goto out;
	}
	ret = describe(c, spec, err, errlen);
	if (ret < 0)
		goto out;
	ret = wc_SetSubjectKeyIdFromPublicKey_ex(c, ECC_TYPE, subject_k);
	if (ret != 0) {
		ret = wolf_fail(err, errlen, "subject key identifier", ret);
		goto out;
	}
	if (issuer_der) {
		/* The issuer's subject, byte for byte (Cert.issRaw), so that the
		 * chain links by name; its key id, so that it links by key. */
		c->selfSigned = 0;
		ret = wc_SetIssuerBuffer(c, issuer_der, (int)issuer_len);
		if (ret != 0) {
			ret = wolf_fail(err, errlen, "the issuer certificate", ret);
			goto out;
		}
		ret = wc_SetAuthKeyIdFromCert(c, issuer_der, (int)issuer_len);
		if (ret != 0) {
			ret = wolf_fail(err, errlen, "authority key identifier", ret);
			goto out;
		}
	} else {
		c->selfSigned = 1;
	}
	ret = wc_MakeCert_ex(c, buf, CERT_MAX, ECC_TYPE, subject_k, &rng);
	if (ret < 0) {
		ret = wolf_fail(err, errlen, "making the certificate", ret);
		goto out;
	}
	/* wolfSSL 5.5.4 has no flag for a critical basicConstraints (RFC 5280
	 * §4.2.1.9 requires it of a CA; Istio's leaves have it too). */
	ret = rs_cert__der_set_critical(buf, (size_t)c->bodySz, CERT_MAX, basic_constraints_oid,
	                                sizeof basic_constraints_oid);
	if (ret < 0) {
		ret = say(err, errlen, -EPROTO, "cannot mark basicConstraints critical: %s",
		          strerror(-ret));
		goto out;
	}
	c->bodySz = ret;
	ret = wc_SignCert_ex(c->bodySz, c->sigType, buf, CERT_MAX, ECC_TYPE, signer_k, &rng);
	if (ret < 0) {
		ret = wolf_fail(err, errlen, "signing the certificate", ret);
		goto out;
	}
	*der = buf;
	*der_len = (size_t)ret;
	buf = NULL;
	ret = 0;
out:
	free(buf);
	wc_CertFree(c);
	wc_FreeRng(&rng);
	return ret;
}

int rs_cert_key_matches(const struct rs_cert_key *key, const uint8_t *der, size_t len)
{
	uint8_t mine[128], theirs[128];
	word32 theirs_len = sizeof theirs;
	DecodedCert dc;
	int n, ret = -EINVAL;

	/* Both sides as a SubjectPublicKeyInfo with the named curve. */
	n = wc_EccPublicKeyToDer((ecc_key *)&key->k, mine, sizeof mine, 1);
	if (n <= 0)
		return -EINVAL;
	wc_InitDecodedCert(&dc, der, (word32)len, NULL);
	if (wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) == 0 &&
	    wc_GetPubKeyDerFromCert(&dc, theirs, &theirs_len) == 0 && theirs_len == (word32)n &&
	    memcmp(mine, theirs, (size_t)n) == 0)
		ret = 0;
	wc_FreeDecodedCert(&dc);
	return ret;
}

int rs_cert_verify(const uint8_t *root, size_t root_len, const uint8_t *leaf, size_t leaf_len,
                   char *err, size_t errlen)
{
	WOLFSSL_CERT_MANAGER *cm;
	int ret;

	if (wolfSSL_Init() != WOLFSSL_SUCCESS)
		return say(err, errlen, -EPROTO, "wolfSSL_Init failed");
	cm = wolfSSL_CertManagerNew();
	if (!cm) {
		ret = say(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	ret = wolfSSL_CertManagerLoadCABuffer(cm, root, (long)root_len, WOLFSSL_FILETYPE_ASN1);
	if (ret != WOLFSSL_SUCCESS) {
		ret = wolf_fail(err, errlen, "the root certificate", ret);
		goto out;
	}
	ret = wolfSSL_CertManagerVerifyBuffer(cm, leaf, (long)leaf_len, WOLFSSL_FILETYPE_ASN1);
	ret = ret == WOLFSSL_SUCCESS ? 0 : wolf_fail(err, errlen, "verification", ret);
out:
	wolfSSL_CertManagerFree(cm);
	wolfSSL_Cleanup();
	return ret;
}

/* "/O=a/CN=b", as wolfSSL keeps a name, into "O=a, CN=b". */
static void name_text(char *out, size_t size, const char *in)
{
	size_t o = 0;

	if (*in == '/')
		in++;
	for (; *in && o + 3 < size; in++) {
		/* A '/' opens the next attribute when "X=" or "XY=" follows. */
		if (*in == '/' && in[1] && (in[2] == '=' || (in[2] && in[3] == '='))) {
			out[o++] = ',';
			out[o++] = ' ';
			continue;
		}
		out[o++] = *in;
	}
	out[o] = '\0';
}

int rs_cert__date_seconds(const uint8_t *tlv, int len, int64_t *out)
{
	const byte *date;
	byte format;
	int dlen;
	struct tm tm;

	if (wc_GetDateInfo(tlv, len, &date, &format, &dlen) != 0 ||
	    wc_GetDateAsCalendarTime(date, dlen, format, &tm) != 0)
		return -EINVAL;
	*out = (int64_t)timegm(&tm);
	return 0;
}

int rs_cert_info(const uint8_t *der, size_t len, struct rs_cert_info *info, char *err,
                 size_t errlen)
{
	DecodedCert dc;
	size_t o = 0;
	int ret;

	memset(info, 0, sizeof *info);
	wc_InitDecodedCert(&dc, der, (word32)len, NULL);
	ret = wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL);
	if (ret != 0) {
		ret = wolf_fail(err, errlen, "not a certificate wolfSSL can read", ret);
		goto out;
	}
	name_text(info->subject, sizeof info->subject, dc.subject);
	name_text(info->issuer, sizeof info->issuer, dc.issuer);
	if (dc.subjectO && dc.subjectOLen > 0 && (size_t)dc.subjectOLen < sizeof info->org)
		memcpy(info->org, dc.subjectO, (size_t)dc.subjectOLen);
	for (const DNS_entry *e = dc.altNames; e; e = e->next) {
		if (e->type != ASN_URI_TYPE)
			continue;
		if (info->n_san_uri++ == 0 && e->len > 0 && (size_t)e->len < sizeof info->san_uri)
			memcpy(info->san_uri, e->name, (size_t)e->len);
	}
	for (int i = 0; i < dc.serialSz && o + 4 < sizeof info->serial; i++)
		o += (size_t)snprintf(info->serial + o, sizeof info->serial - o, "%s%02x",
		                      i ? ":" : "", dc.serial[i]);
	if (rs_cert__date_seconds(dc.beforeDate, dc.beforeDateLen, &info->not_before) < 0 ||
	    rs_cert__date_seconds(dc.afterDate, dc.afterDateLen, &info->not_after) < 0) {
		ret = say(err, errlen, -EINVAL, "the validity dates do not read");
		goto out;
	}
	info->is_ca = dc.isCA;
	ret = 0;
out:
	wc_FreeDecodedCert(&dc);
	return ret;
}

int rs_cert_pem_next(const void *pem, size_t len, size_t *off, uint8_t **der, size_t *der_len)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end[] = "-----END CERTIFICATE-----";
	const char *s = pem, *b, *e;
	uint8_t *out;
	int n;

	if (*off >= len)
		return 0;
	b = memmem(s + *off, len - *off, begin, sizeof begin - 1);
	if (!b)
		return 0;
	e = memmem(b, len - (size_t)(b - s), end, sizeof end - 1);
	if (!e)
		return -EINVAL;
	e += sizeof end - 1;
	out = malloc((size_t)(e - b));
	if (!out)
		return -ENOMEM;
	n = wc_CertPemToDer((const unsigned char *)b, (int)(e - b), out, (int)(e - b), CERT_TYPE);
	if (n <= 0) {
		free(out);
		return -EINVAL;
	}
	*off = (size_t)(e - s);
	*der = out;
	*der_len = (size_t)n;
	return 1;
}

int rs_cert_pem_append(const uint8_t *der, size_t der_len, char **buf, size_t *len)
{
	/* Base64 grows by 4/3, plus a newline per 64 characters and the
	 * BEGIN/END lines. */
	size_t cap = der_len * 4 / 3 + der_len / 48 + 128;
	char *nb = realloc(*buf, *len + cap + 1);
	int n;

	if (!nb)
		return -ENOMEM;
	*buf = nb;
	n = wc_DerToPem(der, (word32)der_len, (byte *)nb + *len, (word32)cap, CERT_TYPE);
	if (n <= 0)
		return -EPROTO;
	*len += (size_t)n;
	nb[*len] = '\0';
	return 0;
}
