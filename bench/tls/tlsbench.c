/* tlsbench: what wolfSSL's cryptography costs on this machine. It seals
 * 16 KiB records with AES-128-GCM and ChaCha20-Poly1305 (wolfCrypt directly),
 * runs full TLS 1.3 handshakes with an ECDSA P-256 certificate chain made at
 * start, and pushes 16 KiB application records through an established
 * connection. Client and server run in one thread and talk through memory
 * (wolfSSL's I/O callbacks), so no socket or scheduler is measured.
 *
 * bench/tls/meson.build builds it once per library: tlsbench-built against
 * the wolfSSL built from Debian's source with AES-NI (tools/wolfssl.sh) and
 * tlsbench-system against Debian's libwolfssl, so two runs compare them
 * (README.md, "Which wolfSSL"). Pin it: taskset -c 1 build/bench/tls/tlsbench-built
 *
 *   tlsbench [--seconds S]     each measurement runs S seconds (default 1)
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef TLSBENCH_LIB
#define TLSBENCH_LIB "?"
#endif

enum {
	REC = 16384,            /* a full TLS record of plaintext */
	PIPE_CAP = 4 * REC,     /* one direction of the in-memory connection */
	DER_CAP = 2048,         /* one P-256 certificate or key, DER */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "tlsbench: %s failed: %d\n", what, rc);
	exit(1);
}

static unsigned char plain[REC], sealed[REC];

/* Seals 16 KiB records for `secs` seconds; returns MB/s (10^6 bytes). */
static double aes_gcm_rate(double secs)
{
	static const unsigned char key[16] = "ringside-bench!";
	unsigned char iv[12] = {0}, tag[16], aad[13] = {0};
	Aes aes;
	long n = 0;
	double t0, t;
	int rc;

	if ((rc = wc_AesInit(&aes, NULL, INVALID_DEVID)) != 0)
		die("wc_AesInit", rc);
	if ((rc = wc_AesGcmSetKey(&aes, key, sizeof(key))) != 0)
		die("wc_AesGcmSetKey", rc);
	t0 = now();
	do {
		for (int i = 0; i < 16; i++, n++) {
			memcpy(iv, &n, sizeof(n));
			rc = wc_AesGcmEncrypt(&aes, sealed, plain, REC, iv, sizeof(iv), tag, sizeof(tag), aad,
					      sizeof(aad));
			if (rc != 0)
				die("wc_AesGcmEncrypt", rc);
		}
		t = now() - t0;
	} while (t < secs);
	wc_AesFree(&aes);
	return (double)n * REC / t / 1e6;
}

static double chacha_rate(double secs)
{
	static const unsigned char key[32] = "ringside-bench-chacha20-poly1305";
	unsigned char iv[12] = {0}, tag[16], aad[13] = {0};
	long n = 0;
	double t0, t;
	int rc;

	t0 = now();
	do {
		for (int i = 0; i < 16; i++, n++) {
			memcpy(iv, &n, sizeof(n));
			rc = wc_ChaCha20Poly1305_Encrypt(key, iv, aad, sizeof(aad), plain, REC, sealed, tag);
			if (rc != 0)
				die("wc_ChaCha20Poly1305_Encrypt", rc);
		}
		t = now() - t0;
	} while (t < secs);
	return (double)n * REC / t / 1e6;
}

/* A mesh in miniature: a root, and server and client certificates it signs,
 * each with a SPIFFE URI SAN as `ringside ca` will issue them. */
struct pki {
	unsigned char root[DER_CAP], server[DER_CAP], server_key[DER_CAP], client[DER_CAP], client_key[DER_CAP];
	int root_len, server_len, server_key_len, client_len, client_key_len;
};

static int make_cert(WC_RNG *rng, const char *cn, const char *uri, ecc_key *key, ecc_key *issuer_key,
		     const unsigned char *issuer, int issuer_len, unsigned char *out)
{
	Cert *cert = calloc(1, sizeof(*cert)); /* 16 KiB of SAN space: not on the stack */
	size_t ulen = uri ? strlen(uri) : 0;
	int rc;

	if (cert == NULL || wc_InitCert(cert) != 0)
		die("wc_InitCert", -1);
	snprintf(cert->subject.commonName, CTC_NAME_SIZE, "%s", cn);
	snprintf(cert->subject.org, CTC_NAME_SIZE, "ringside tlsbench");
	cert->sigType = CTC_SHA256wECDSA;
	cert->daysValid = 2;
	cert->isCA = issuer == NULL;
	if (uri != NULL) {
		/* GeneralNames ::= SEQUENCE { [6] IA5String }, short lengths */
		cert->altNames[0] = 0x30;
		cert->altNames[1] = (unsigned char)(ulen + 2);
		cert->altNames[2] = 0x86;
		cert->altNames[3] = (unsigned char)ulen;
		memcpy(cert->altNames + 4, uri, ulen);
		cert->altNamesSz = (int)ulen + 4;
	}
	if (issuer != NULL && (rc = wc_SetIssuerBuffer(cert, issuer, issuer_len)) != 0)
		die("wc_SetIssuerBuffer", rc);
	if ((rc = wc_MakeCert(cert, out, DER_CAP, NULL, key, rng)) < 0)
		die("wc_MakeCert", rc);
	if ((rc = wc_SignCert(cert->bodySz, cert->sigType, out, DER_CAP, NULL, issuer_key, rng)) < 0)
		die("wc_SignCert", rc);
	free(cert);
	return rc;
}

static void make_key(WC_RNG *rng, ecc_key *key)
{
	int rc;

	if ((rc = wc_ecc_init(key)) != 0)
		die("wc_ecc_init", rc);
	if ((rc = wc_ecc_make_key_ex(rng, 32, key, ECC_SECP256R1)) != 0)
		die("wc_ecc_make_key_ex", rc);
}

static void make_pki(struct pki *p)
{
	WC_RNG rng;
	ecc_key root, server, client;
	int rc;

	if ((rc = wc_InitRng(&rng)) != 0)
		die("wc_InitRng", rc);
	make_key(&rng, &root);
	make_key(&rng, &server);
	make_key(&rng, &client);
	p->root_len = make_cert(&rng, "ringside tlsbench root", NULL, &root, &root, NULL, 0, p->root);
	p->server_len = make_cert(&rng, "server", "spiffe://cluster.local/ns/bench/sa/server", &server, &root,
				  p->root, p->root_len, p->server);
	p->client_len = make_cert(&rng, "client", "spiffe://cluster.local/ns/bench/sa/client", &client, &root,
				  p->root, p->root_len, p->client);
	if ((p->server_key_len = wc_EccKeyToDer(&server, p->server_key, DER_CAP)) < 0)
		die("wc_EccKeyToDer", p->server_key_len);
	if ((p->client_key_len = wc_EccKeyToDer(&client, p->client_key, DER_CAP)) < 0)
		die("wc_EccKeyToDer", p->client_key_len);
	wc_ecc_free(&root);
	wc_ecc_free(&server);
	wc_ecc_free(&client);
	wc_FreeRng(&rng);
}

/* One direction of the in-memory connection. */
struct pipe {
	unsigned char buf[PIPE_CAP];
	size_t off, len;
};

/* What an end's I/O callbacks see: where it reads and where it writes. */
struct end {
	struct pipe *in, *out;
};

static int pipe_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct end *e = ctx;
	size_t n = e->in->len - e->in->off;

	if (n == 0)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	if (n > (size_t)sz)
		n = (size_t)sz;
	memcpy(buf, e->in->buf + e->in->off, n);
	e->in->off += n;
	if (e->in->off == e->in->len)
		e->in->off = e->in->len = 0;
	return (int)n;
}

static int pipe_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct end *e = ctx;
	struct pipe *p = e->out;

	if (p->off > 0) {
		memmove(p->buf, p->buf + p->off, p->len - p->off);
		p->len -= p->off;
		p->off = 0;
	}
	if (p->len + (size_t)sz > PIPE_CAP)
		return WOLFSSL_CBIO_ERR_WANT_WRITE;
	memcpy(p->buf + p->len, buf, (size_t)sz);
	p->len += (size_t)sz;
	return sz;
}

struct conn {
	WOLFSSL_CTX *cctx, *sctx;
	WOLFSSL *c, *s;
	struct pipe c2s, s2c;
	struct end cend, send;
	int group;
};

static WOLFSSL_CTX *make_ctx(WOLFSSL_METHOD *method, const struct pki *p, int server, int mutual, int group)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(method);
	int groups[1] = {group};

	if (ctx == NULL)
		die("wolfSSL_CTX_new", 0);
	wolfSSL_CTX_SetIORecv(ctx, pipe_recv);
	wolfSSL_CTX_SetIOSend(ctx, pipe_send);
	if (wolfSSL_CTX_set_groups(ctx, groups, 1) != WOLFSSL_SUCCESS)
		die("wolfSSL_CTX_set_groups", group);
	if (server || mutual) {
		const unsigned char *cert = server ? p->server : p->client;
		const unsigned char *key = server ? p->server_key : p->client_key;
		int cert_len = server ? p->server_len : p->client_len;
		int key_len = server ? p->server_key_len : p->client_key_len;

		if (wolfSSL_CTX_use_certificate_buffer(ctx, cert, cert_len, WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS)
			die("wolfSSL_CTX_use_certificate_buffer", 0);
		if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, key, key_len, WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS)
			die("wolfSSL_CTX_use_PrivateKey_buffer", 0);
	}
	if (!server || mutual) {
		if (wolfSSL_CTX_load_verify_buffer(ctx, p->root, p->root_len, WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS)
			die("wolfSSL_CTX_load_verify_buffer", 0);
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	} else {
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
	}
	return ctx;
}

static void conn_open(struct conn *k)
{
	k->c2s.off = k->c2s.len = k->s2c.off = k->s2c.len = 0;
	k->cend = (struct end){.in = &k->s2c, .out = &k->c2s};
	k->send = (struct end){.in = &k->c2s, .out = &k->s2c};
	k->c = wolfSSL_new(k->cctx);
	k->s = wolfSSL_new(k->sctx);
	if (k->c == NULL || k->s == NULL)
		die("wolfSSL_new", 0);
	wolfSSL_SetIOReadCtx(k->c, &k->cend);
	wolfSSL_SetIOWriteCtx(k->c, &k->cend);
	wolfSSL_SetIOReadCtx(k->s, &k->send);
	wolfSSL_SetIOWriteCtx(k->s, &k->send);
	if (wolfSSL_UseKeyShare(k->c, (word16)k->group) != WOLFSSL_SUCCESS)
		die("wolfSSL_UseKeyShare", k->group);
}

static void conn_close(struct conn *k)
{
	wolfSSL_free(k->c);
	wolfSSL_free(k->s);
}

static int progressed(WOLFSSL *ssl, int rc, const char *what)
{
	int err;

	if (rc == WOLFSSL_SUCCESS)
		return 1;
	err = wolfSSL_get_error(ssl, rc);
	if (err != WOLFSSL_ERROR_WANT_READ && err != WOLFSSL_ERROR_WANT_WRITE)
		die(what, err);
	return 0;
}

/* Runs both ends until both have finished; adds the server's share of the
 * time to *server_secs. */
static void handshake(struct conn *k, double *server_secs)
{
	int cdone = 0, sdone = 0;

	for (int turn = 0; turn < 16 && !(cdone && sdone); turn++) {
		if (!cdone)
			cdone = progressed(k->c, wolfSSL_connect(k->c), "wolfSSL_connect");
		if (!sdone) {
			double t = now();

			sdone = progressed(k->s, wolfSSL_accept(k->s), "wolfSSL_accept");
			*server_secs += now() - t;
		}
	}
	if (!(cdone && sdone))
		die("handshake (no progress)", 0);
}

struct hs_rate {
	double pairs, server; /* handshakes a second: both ends together; the server's part alone */
};

static struct hs_rate handshake_rate(const struct pki *p, int mutual, int group, double secs)
{
	struct conn *k = calloc(1, sizeof(*k));
	double t0, t, server_secs = 0;
	long n = 0;

	if (k == NULL)
		die("calloc", 0);
	k->group = group;
	k->cctx = make_ctx(wolfTLSv1_3_client_method(), p, 0, mutual, group);
	k->sctx = make_ctx(wolfTLSv1_3_server_method(), p, 1, mutual, group);
	t0 = now();
	do {
		conn_open(k);
		handshake(k, &server_secs);
		conn_close(k);
		n++;
		t = now() - t0;
	} while (t < secs);
	wolfSSL_CTX_free(k->cctx);
	wolfSSL_CTX_free(k->sctx);
	free(k);
	return (struct hs_rate){.pairs = n / t, .server = n / server_secs};
}

/* Application data through an established connection: the client writes
 * 16 KiB records, the server reads them (seal, copy, open). MB/s. */
static double record_rate(const struct pki *p, double secs)
{
	struct conn *k = calloc(1, sizeof(*k));
	static unsigned char got[REC];
	double t0, t, ignored = 0;
	long n = 0;

	if (k == NULL)
		die("calloc", 0);
	k->group = WOLFSSL_ECC_SECP256R1;
	k->cctx = make_ctx(wolfTLSv1_3_client_method(), p, 0, 0, k->group);
	k->sctx = make_ctx(wolfTLSv1_3_server_method(), p, 1, 0, k->group);
	if (wolfSSL_CTX_set_cipher_list(k->cctx, "TLS13-AES128-GCM-SHA256") != WOLFSSL_SUCCESS)
		die("wolfSSL_CTX_set_cipher_list", 0);
	conn_open(k);
	handshake(k, &ignored);
	t0 = now();
	do {
		for (int i = 0; i < 16; i++, n++) {
			int rc = wolfSSL_write(k->c, plain, REC);

			if (rc != REC)
				die("wolfSSL_write", wolfSSL_get_error(k->c, rc));
			for (int left = REC; left > 0; left -= rc) {
				rc = wolfSSL_read(k->s, got, left);
				if (rc <= 0)
					die("wolfSSL_read", wolfSSL_get_error(k->s, rc));
			}
		}
		t = now() - t0;
	} while (t < secs);
	conn_close(k);
	wolfSSL_CTX_free(k->cctx);
	wolfSSL_CTX_free(k->sctx);
	free(k);
	return (double)n * REC / t / 1e6;
}

static const char *build_flags(void)
{
	return ""
#ifdef WOLFSSL_AESNI
	       " AES-NI"
#endif
#ifdef USE_INTEL_SPEEDUP
	       " intel-asm"
#endif
#ifdef WOLFSSL_SP_X86_64_ASM
	       " sp-asm"
#endif
#if !defined(WOLFSSL_AESNI)
	       " AES in C"
#endif
		;
}

int main(int argc, char **argv)
{
	double secs = 1;
	struct pki p;
	struct hs_rate r;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			secs = atof(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--seconds S]\n", argv[0]);
			return 2;
		}
	}
	if ((rc = wolfSSL_Init()) != WOLFSSL_SUCCESS)
		die("wolfSSL_Init", rc);
	memset(plain, 'x', sizeof(plain));
	make_pki(&p);

	printf("wolfSSL %s, %s:%s\n", wolfSSL_lib_version(), TLSBENCH_LIB, build_flags());
	printf("  AES-128-GCM seal, 16 KiB records        %9.1f MB/s\n", aes_gcm_rate(secs));
	printf("  ChaCha20-Poly1305 seal, 16 KiB records  %9.1f MB/s\n", chacha_rate(secs));
	printf("  TLS 1.3 records, AES-128-GCM, 16 KiB    %9.1f MB/s  (write and read)\n", record_rate(&p, secs));
	r = handshake_rate(&p, 0, WOLFSSL_ECC_SECP256R1, secs);
	printf("  TLS 1.3 full handshakes, P-256          %9.1f /s    (server's part alone %.1f /s)\n", r.pairs,
	       r.server);
	r = handshake_rate(&p, 1, WOLFSSL_ECC_SECP256R1, secs);
	printf("  TLS 1.3 full handshakes, P-256, mutual  %9.1f /s    (server's part alone %.1f /s)\n", r.pairs,
	       r.server);
#ifdef HAVE_CURVE25519
	r = handshake_rate(&p, 1, WOLFSSL_ECC_X25519, secs);
	printf("  TLS 1.3 full handshakes, X25519, mutual %9.1f /s    (server's part alone %.1f /s)\n", r.pairs,
	       r.server);
#endif
	wolfSSL_Cleanup();
	return 0;
}
