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

/* --- cert.c --- */

/* A certificate's Time as it is encoded (tag, length, UTCTime or
 * GeneralizedTime octets; len bytes in all), in Unix seconds: 0, or
 * -EINVAL when it does not read. */
int rs_cert__date_seconds(const uint8_t *tlv, int len, int64_t *out);

/* Marks the extension whose OID (the content octets) is oid critical in a
 * TBSCertificate of len bytes in a buffer of cap, inserting critical
 * BOOLEAN TRUE after its OID and growing the lengths around it (RFC 5280
 * §4.1). Returns the new length (len when it already was critical), -ENOENT
 * when the extension is absent, -EINVAL for DER it does not follow,
 * -ENOSPC or -ENOMEM. */
int rs_cert__der_set_critical(uint8_t *tbs, size_t len, size_t cap, const uint8_t *oid,
                              size_t oid_len);

/* --- tickets.c: session tickets of the inbound port that keep the peer's
 * identity (the file's comment says how) --- */

#define RS_TLS_TICKET_LIFETIME 7200 /* seconds: BoringSSL's session default, so Envoy's */
#define RS_TLS_TICKET_KEY 32        /* ChaCha20-Poly1305 */
#define RS_TLS_BUNDLE_HASH 32       /* SHA-256 */
#define RS_TLS_TICKET_NAME 16       /* wolfSSL's key_name, IV and MAC sizes */
#define RS_TLS_TICKET_IV 16
#define RS_TLS_TICKET_MAC 32
#define RS_TLS_TICKET_EXTRA 32 /* what sealing adds to the state: the certificate's hash */

/* Who a session's client is: its certificate's SHA-256 and expiry, and the
 * SPIFFE ID it names ("" when none). */
struct rs_tls_peer {
	uint8_t hash[32];
	int64_t not_after; /* Unix seconds; 0: unknown, so its tickets never resume */
	char id[256];
};

/* The SHA-256 of a trust bundle's len bytes. 0 or -EIO. */
int rs_tls__bundle_hash(uint8_t out[RS_TLS_BUNDLE_HASH], const void *bundle, size_t len);
/* Seals len bytes of wolfSSL's session state at state in place, with
 * peer's certificate hash after them (state must have room for
 * RS_TLS_TICKET_EXTRA more), under the key of uptime's epoch (seconds of
 * CLOCK_BOOTTIME) and bundle; fills the ticket's key_name, IV and MAC,
 * sets *out_len and keeps peer's identity. 0 or -EIO. */
int rs_tls__ticket_seal(const uint8_t bundle[RS_TLS_BUNDLE_HASH], const struct rs_tls_peer *peer,
                        int64_t uptime, uint8_t name[RS_TLS_TICKET_NAME], uint8_t iv[RS_TLS_TICKET_IV],
                        uint8_t mac[RS_TLS_TICKET_MAC], uint8_t *state, size_t len, size_t *out_len);
/* Opens, in place, a ticket of len bytes sealed by rs_tls__ticket_seal:
 * 0 with the peer it was sealed for and the state's length in *out_len;
 * -EBADMSG when it was altered or sealed under another bundle (state is
 * then wiped); -ENOENT when its epoch's key is gone (it is older than the
 * previous epoch of uptime), or its peer is no longer kept or its
 * certificate expired by now (Unix seconds). */
int rs_tls__ticket_open(const uint8_t bundle[RS_TLS_BUNDLE_HASH], const uint8_t name[RS_TLS_TICKET_NAME],
                        const uint8_t iv[RS_TLS_TICKET_IV], const uint8_t mac[RS_TLS_TICKET_MAC],
                        uint8_t *state, size_t len, int64_t now, int64_t uptime,
                        struct rs_tls_peer *peer, size_t *out_len);

#endif
