/* Private to src/tls/. */
#ifndef RINGSIDE_TLS_INTERNAL_H
#define RINGSIDE_TLS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* --- der.c: the DER that wolfSSL's certificate generation takes raw ---
 * Each writes into out (cap bytes) and returns the bytes written, -ENOSPC, or
 * -EINVAL for a value DER cannot carry. */

/* The value of a subjectAltName extension holding one URI (RFC 5280
 * §4.2.1.6): GeneralNames ::= SEQUENCE { [6] IMPLICIT IA5String }. */
int rs_cert__der_san_uri(uint8_t *out, size_t cap, const char *uri, size_t len);
/* A Time (RFC 5280 §4.1.2.5): UTCTime for the years 1950 to 2049,
 * GeneralizedTime after (0 to 9999), both in UTC with seconds. */
int rs_cert__der_time(uint8_t *out, size_t cap, int64_t t);

/* Marks the extension whose OID (the content octets) is oid critical in a
 * TBSCertificate of len bytes in a buffer of cap, inserting critical
 * BOOLEAN TRUE after its OID and growing the lengths around it (RFC 5280
 * §4.1). Returns the new length (len when it already was critical), -ENOENT
 * when the extension is absent, -EINVAL for DER it does not follow,
 * -ENOSPC or -ENOMEM. */
int rs_cert__der_set_critical(uint8_t *tbs, size_t len, size_t cap, const uint8_t *oid,
                              size_t oid_len);

#endif
