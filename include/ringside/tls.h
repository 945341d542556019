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

/* --- files (file.c) --- */

/* Writes dir/name so that a reader sees the old file or the new, never part
 * of one: a temporary file in dir with mode (umask aside), fsync, rename over
 * name, fsync of dir. With RS_WRITE_NO_REPLACE an existing name is kept and
 * -EEXIST returned. 0 or a negative errno; nothing is left behind on error. */
int rs_tls_write_file(const char *dir, const char *name, const void *buf, size_t len, mode_t mode,
                      unsigned flags);
/* Reads a whole file of at most max bytes into a new buffer with a NUL after
 * the end (not counted in *len). 0, -EFBIG or a negative errno. */
int rs_tls_read_file(const char *path, size_t max, char **buf, size_t *len);
/* Zeroes len bytes of p and frees it: for buffers that held a private key. */
void rs_tls_free_secret(void *p, size_t len);

#endif
