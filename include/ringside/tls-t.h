/* Types of src/tls/: mesh identities (SPIFFE IDs), the certificates and keys
 * that carry them, and the files a workload's identity lives in. */
#ifndef RINGSIDE_TLS_T_H
#define RINGSIDE_TLS_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A workload's identity files, named as Istio's sidecar finds them in its
 * output-certs directory (pilot-agent's OUTPUT_CERTS, and the file-mounted
 * certificates of Istio's "plug in CA certificates" set-up). */
#define RS_TLS_CERT_CHAIN_FILE "cert-chain.pem" /* the leaf, then its issuers up to the root */
#define RS_TLS_KEY_FILE        "key.pem"        /* the leaf's private key, mode 0600 */
#define RS_TLS_ROOT_CERT_FILE  "root-cert.pem"  /* the trust bundle peers are verified with */
/* The mesh root's private key beside its RS_TLS_ROOT_CERT_FILE (`ringside ca
 * --dir`), mode 0600. */
#define RS_TLS_ROOT_KEY_FILE "root-key.pem"

/* SPIFFE-ID §2.1: a trust domain name is at most 255 bytes. */
#define RS_SPIFFE_TRUST_DOMAIN_MAX 255
/* SPIFFE-ID §2.3: a SPIFFE ID is at most 2048 bytes. */
#define RS_SPIFFE_ID_MAX 2048
/* Kubernetes: a namespace is a DNS-1123 label, a service account a DNS-1123
 * subdomain (apimachinery's IsDNS1123Label and IsDNS1123Subdomain). */
#define RS_K8S_LABEL_MAX     63
#define RS_K8S_SUBDOMAIN_MAX 253

/* A workload identity in Istio's form, spiffe://<td>/ns/<ns>/sa/<sa>. */
struct rs_spiffe_id {
	char td[RS_SPIFFE_TRUST_DOMAIN_MAX + 1]; /* trust domain */
	char ns[RS_K8S_LABEL_MAX + 1];           /* namespace */
	char sa[RS_K8S_SUBDOMAIN_MAX + 1];       /* service account */
};

/* A private key: ECDSA on P-256, the curve Istio's CA uses for ECC workload
 * keys. Opaque (wolfSSL's ecc_key). */
struct rs_cert_key;

/* Which kind of certificate rs_cert_make writes. */
enum rs_cert_kind {
	/* A mesh root: self-signed, CA:TRUE (critical), keyUsage keyCertSign and
	 * cRLSign (critical), subject key identifier (SPIFFE X509-SVID §4.1,
	 * §4.3). */
	RS_CERT_ROOT,
	/* A workload certificate (an X509-SVID leaf): CA:FALSE (critical),
	 * keyUsage digitalSignature (critical), extKeyUsage serverAuth and
	 * clientAuth, one URI SAN, subject and authority key identifiers. */
	RS_CERT_WORKLOAD,
};

/* What rs_cert_make puts in a certificate. Strings are borrowed. */
struct rs_cert_spec {
	enum rs_cert_kind kind;
	const char *org;     /* subject O, or NULL */
	const char *cn;      /* subject CN, or NULL */
	const char *san_uri; /* the URI SAN (RS_CERT_WORKLOAD: required) */
	int64_t not_before;  /* validity, Unix seconds */
	int64_t not_after;
};

/* What rs_cert_info reads from a certificate, for `ringside ca show` and log
 * lines. */
struct rs_cert_info {
	char subject[256];                  /* "O=cluster.local, CN=..."; "" when empty */
	char issuer[256];                   /* the same for the issuer */
	char org[64];                       /* the subject's O, "" when absent */
	char san_uri[RS_SPIFFE_ID_MAX + 1]; /* the first URI SAN, "" when none */
	unsigned n_san_uri;                 /* URI SANs in all (an X509-SVID has one) */
	char serial[2 * 20 + 20];           /* hex octets joined by ':' */
	int64_t not_before;                 /* Unix seconds */
	int64_t not_after;
	bool is_ca;
};

/* rs_tls_write_file's flags. */
enum {
	RS_WRITE_NO_REPLACE = 1 << 0, /* fail with -EEXIST rather than replace a file */
};

#endif
