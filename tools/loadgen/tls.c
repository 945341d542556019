/* TLS for the load generator: wolfSSL over the engine's own buffers. wolfSSL
 * never touches the socket: its receive callback reads the ciphertext the
 * ring delivered into the connection's buffer, and its send callback appends
 * to the connection's output, which the ring writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

struct lg_tls {
	WOLFSSL_CTX *ctx;
	const struct lg_opts *o;
};

static int tls_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct lg_conn *c = ctx;
	size_t n = c->rlen - c->roff;

	if (n == 0)
		return c->peer_closed ? WOLFSSL_CBIO_ERR_CONN_CLOSE : WOLFSSL_CBIO_ERR_WANT_READ;
	if (n > (size_t)sz)
		n = (size_t)sz;
	memcpy(buf, c->rbuf + c->roff, n);
	c->roff += n;
	return (int)n;
}

static int tls_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct lg_conn *c = ctx;

	return lg_buf_put(&c->pend, buf, (size_t)sz) == 0 ? sz : WOLFSSL_CBIO_ERR_GENERAL;
}

struct lg_tls *lg_tls_new(const struct lg_opts *o)
{
	struct lg_tls *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->o = o;
	wolfSSL_Init();
	/* TLS 1.2 or 1.3, whichever the server prefers of the two. */
	t->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	if (!t->ctx)
		goto fail;
	if (o->insecure) {
		wolfSSL_CTX_set_verify(t->ctx, WOLFSSL_VERIFY_NONE, NULL);
	} else {
		if (wolfSSL_CTX_load_verify_locations(t->ctx, o->cacert, NULL) != WOLFSSL_SUCCESS) {
			fprintf(stderr, "ringside-load: --cacert %s: not a readable PEM bundle\n", o->cacert);
			goto fail;
		}
		/* Said outright: with OpenSSL compatibility built in, wolfSSL's
		 * default is OpenSSL's, which is not to verify. */
		wolfSSL_CTX_set_verify(t->ctx, WOLFSSL_VERIFY_PEER, NULL);
	}
	if (o->cert && wolfSSL_CTX_use_certificate_chain_file(t->ctx, o->cert) != WOLFSSL_SUCCESS) {
		fprintf(stderr, "ringside-load: --cert %s: not a readable PEM certificate chain\n", o->cert);
		goto fail;
	}
	if (o->key && wolfSSL_CTX_use_PrivateKey_file(t->ctx, o->key, WOLFSSL_FILETYPE_PEM) !=
			      WOLFSSL_SUCCESS) {
		fprintf(stderr, "ringside-load: --key %s: not a readable PEM private key\n", o->key);
		goto fail;
	}
	wolfSSL_CTX_SetIORecv(t->ctx, tls_recv);
	wolfSSL_CTX_SetIOSend(t->ctx, tls_send);
	return t;
fail:
	lg_tls_free(t);
	return NULL;
}

void lg_tls_free(struct lg_tls *t)
{
	if (!t)
		return;
	if (t->ctx)
		wolfSSL_CTX_free(t->ctx);
	free(t);
	wolfSSL_Cleanup();
}

int lg_tls_attach(struct lg_tls *t, struct lg_conn *c)
{
	const struct lg_opts *o = t->o;
	const char *sni = o->sni ? o->sni : o->host;
	char alpn[] = "h2";
	char alpn1[] = "http/1.1";

	c->ssl = wolfSSL_new(t->ctx);
	if (!c->ssl)
		return -1;
	wolfSSL_SetIOReadCtx(c->ssl, c);
	wolfSSL_SetIOWriteCtx(c->ssl, c);
	if (wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, sni, (unsigned short)strlen(sni)) !=
		    WOLFSSL_SUCCESS ||
	    (o->sni && !o->insecure && wolfSSL_check_domain_name(c->ssl, o->sni) != WOLFSSL_SUCCESS))
		goto fail;
	/* RFC 7301: offer only the protocol this run speaks, so that a server
	 * that cannot speak it says so in the handshake. */
	if (o->proto == LG_H2 ? wolfSSL_UseALPN(c->ssl, alpn, sizeof(alpn) - 1,
						 WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS
			      : wolfSSL_UseALPN(c->ssl, alpn1, sizeof(alpn1) - 1,
						 WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS)
		goto fail;
	return 0;
fail:
	lg_tls_detach(c);
	return -1;
}

int lg_tls_handshake(struct lg_conn *c)
{
	int rc = wolfSSL_connect(c->ssl);

	if (rc == WOLFSSL_SUCCESS)
		return 1;
	rc = wolfSSL_get_error(c->ssl, rc);
	if (rc == WOLFSSL_ERROR_WANT_READ || rc == WOLFSSL_ERROR_WANT_WRITE)
		return 0;
	return -LG_E_TLS;
}

int lg_tls_input(struct lg_conn *c, const struct lg_codec *codec)
{
	uint8_t plain[16384];

	for (;;) {
		int n = wolfSSL_read(c->ssl, plain, sizeof(plain));
		int rc;

		if (n <= 0) {
			rc = wolfSSL_get_error(c->ssl, n);
			if (rc == WOLFSSL_ERROR_WANT_READ || rc == WOLFSSL_ERROR_WANT_WRITE)
				return 0;
			if (rc == WOLFSSL_ERROR_ZERO_RETURN) /* close_notify */
				return 1;
			return c->peer_closed ? -LG_E_CLOSED : -LG_E_TLS;
		}
		rc = codec->input(c, plain, (size_t)n);
		if (rc != 0)
			return rc;
	}
}

int lg_tls_write(struct lg_conn *c, const void *p, size_t n)
{
	int rc = wolfSSL_write(c->ssl, p, (int)n);

	return rc == (int)n ? 0 : -LG_E_TLS;
}

const char *lg_tls_alpn(struct lg_conn *c)
{
	char *name = NULL;
	unsigned short len = 0;

	if (wolfSSL_ALPN_GetProtocol(c->ssl, &name, &len) != WOLFSSL_SUCCESS || !name)
		return "none";
	if (len == 2 && memcmp(name, "h2", 2) == 0)
		return "h2";
	if (len == 8 && memcmp(name, "http/1.1", 8) == 0)
		return "http/1.1";
	return "other";
}

void lg_tls_detach(struct lg_conn *c)
{
	if (c->ssl)
		wolfSSL_free(c->ssl);
	c->ssl = NULL;
}
