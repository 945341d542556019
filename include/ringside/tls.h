/* src/tls/: mesh identities and their certificates (the `ringside ca`
 * commands now; the TLS data path later). */
#ifndef RINGSIDE_TLS_H
#define RINGSIDE_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ringside/tls-t.h"

/* --- SPIFFE identities (spiffe.c) ---
 * The checks return 0, or -EINVAL with a message in err that names what is
 * wrong ("must be lowercase", "'_' at position 3 ...") without the value. */

/* A trust domain as SPIFFE-ID §2.1 allows: 1 to 255 of [a-z0-9._-]. */
int rs_spiffe_check_trust_domain(const char *td, char *err, size_t errlen);
/* A Kubernetes namespace: a DNS-1123 label. */
int rs_spiffe_check_namespace(const char *ns, char *err, size_t errlen);
/* A Kubernetes service account: a DNS-1123 subdomain. */
int rs_spiffe_check_service_account(const char *sa, char *err, size_t errlen);
/* Writes spiffe://<td>/ns/<ns>/sa/<sa> into buf. Returns its length, -EINVAL
 * if a part fails its check, or -ENAMETOOLONG if it does not fit in size
 * bytes with the NUL. */
int rs_spiffe_format(const struct rs_spiffe_id *id, char *buf, size_t size);
/* Reads a SPIFFE ID of Istio's form. 0 or -EINVAL (another form, or a part
 * that fails its check). */
int rs_spiffe_parse(const char *uri, size_t len, struct rs_spiffe_id *id);

/* --- keys and certificates (cert.c), on wolfSSL's wolfCrypt ---
 * Functions that can fail for more than one reason take err/errlen and
 * write there what failed. */

/* A new P-256 key from wolfSSL's DRBG, or NULL (err says why). */
struct rs_cert_key *rs_cert_key_new(char *err, size_t errlen);
/* A key from PEM: SEC 1 ("EC PRIVATE KEY") or unencrypted PKCS #8
 * ("PRIVATE KEY"), P-256 only. NULL on failure (err says why). */
struct rs_cert_key *rs_cert_key_from_pem(const void *pem, size_t len, char *err, size_t errlen);
/* The key as SEC 1 PEM, as Istio writes EC keys, into a new buffer the caller
 * frees with rs_tls_free_secret. 0, -ENOMEM or -EPROTO. */
int rs_cert_key_pem(const struct rs_cert_key *key, char **pem, size_t *len);
void rs_cert_key_free(struct rs_cert_key *key);

/* Makes a certificate for key's public half as spec says, with a random
 * positive 128-bit serial, signed with ECDSA-SHA256 by issuer_key under the
 * issuer certificate issuer_der; issuer_der NULL makes it self-signed by key.
 * On success *der is a new buffer the caller frees. 0, -EINVAL (spec), -ENOMEM
 * or -EPROTO (wolfSSL refused; err has its error). */
int rs_cert_make(const struct rs_cert_spec *spec, const struct rs_cert_key *key,
                 const uint8_t *issuer_der, size_t issuer_len, const struct rs_cert_key *issuer_key,
                 uint8_t **der, size_t *der_len, char *err, size_t errlen);
/* Whether key is the private half of the certificate's public key: 0, or
 * -EINVAL (it is not, or der does not parse). */
int rs_cert_key_matches(const struct rs_cert_key *key, const uint8_t *der, size_t len);
/* Verifies leaf (DER) against the trust anchor root (DER) with wolfSSL's
 * certificate manager, as a peer would: signature, issuer and validity at the
 * present time. 0 or -EPROTO (err has wolfSSL's reason). */
int rs_cert_verify(const uint8_t *root, size_t root_len, const uint8_t *leaf, size_t leaf_len,
                   char *err, size_t errlen);
/* Reads what `ringside ca show` prints. 0 or -EINVAL (err says why). */
int rs_cert_info(const uint8_t *der, size_t len, struct rs_cert_info *info, char *err,
                 size_t errlen);

/* The next certificate of a PEM buffer from *off on: its DER in a new buffer.
 * Returns 1 and advances *off, 0 when there is none left, -EINVAL (a
 * certificate block that does not decode) or -ENOMEM. */
int rs_cert_pem_next(const void *pem, size_t len, size_t *off, uint8_t **der, size_t *der_len);
/* Appends der as a PEM "CERTIFICATE" block to *buf (grown with realloc, *len
 * updated). 0, -ENOMEM or -EPROTO. */
int rs_cert_pem_append(const uint8_t *der, size_t der_len, char **buf, size_t *len);

/* --- files (file.c) --- */

/* Writes dir/name so that a reader sees the old file or the new, never part
 * of one: a temporary file in dir with mode (whatever the umask), fsync,
 * rename over name, fsync of dir. With RS_WRITE_NO_REPLACE an existing name is kept and
 * -EEXIST returned. 0 or a negative errno; nothing is left behind on error. */
int rs_tls_write_file(const char *dir, const char *name, const void *buf, size_t len, mode_t mode,
                      unsigned flags);
/* Reads a whole file of at most max bytes into a new buffer with a NUL after
 * the end (not counted in *len). 0, -EFBIG or a negative errno. */
int rs_tls_read_file(const char *path, size_t max, char **buf, size_t *len);
/* Zeroes len bytes of p and frees it: for buffers that held a private key. */
void rs_tls_free_secret(void *p, size_t len);

#endif
