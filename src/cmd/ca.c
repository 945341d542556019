/* `ringside ca init|issue|show`: the mesh certificate authority. A root key
 * and certificate in one directory; workload certificates whose URI SAN is
 * the workload's SPIFFE ID, written where a sidecar reads them, under the
 * file names Istio's sidecar uses. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "ringside/core.h"
#include "ringside/tls.h"

enum {
	EXIT_FAIL = 1,  /* the work failed: I/O, an existing root, a broken root */
	EXIT_USAGE = 2, /* the command line is wrong */
};

/* Certificates start a minute back, so that a peer whose clock is a little
 * behind accepts a certificate issued just now. */
#define BACKDATE_S        60
#define DEFAULT_TRUST     "cluster.local"
#define DEFAULT_ROOT_DAYS 3650
#define DEFAULT_TTL       "24h" /* Istio's DEFAULT_WORKLOAD_CERT_TTL */
#define ROOT_CN           "ringside mesh root"
#define PEM_FILE_MAX      (1 << 20)
#define ERRLEN            512

static const char *prog = "ringside ca";

static int complain(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "ringside ca <cmd>: ..." to stderr and returns code. */
static int complain(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static void ca_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ringside ca COMMAND [flags]\n"
	    "\n"
	    "The mesh certificate authority: a root (ECDSA P-256), and workload certificates\n"
	    "whose URI SAN is the workload's SPIFFE ID,\n"
	    "spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.\n"
	    "\n"
	    "commands:\n"
	    "  init    create the mesh root in --dir\n"
	    "  issue   issue a workload certificate signed by the root in --dir\n"
	    "  show    print the subject, SPIFFE ID, serial and validity of certificates\n"
	    "\n"
	    "  ringside ca init --dir DIR [--trust-domain " DEFAULT_TRUST
	    "] [--days %d] [--force]\n"
	    "  ringside ca issue --dir DIR --namespace NS --service-account SA\n"
	    "                    [--trust-domain TD] [--ttl " DEFAULT_TTL "] [--out OUTDIR]\n"
	    "  ringside ca show FILE...\n"
	    "\n"
	    "`ringside ca COMMAND --help` says more. Exit status: 0 done, 1 failed, 2 bad usage.\n",
	    DEFAULT_ROOT_DAYS);
}

static void init_usage(FILE *f)
{
	fprintf(f,
	        "usage: ringside ca init --dir DIR [--trust-domain TD] [--days N] [--force]\n"
	        "\n"
	        "Creates the mesh root: an ECDSA P-256 key, DIR/" RS_TLS_ROOT_KEY_FILE
	        " (mode 0600), and a\n"
	        "self-signed certificate, DIR/" RS_TLS_ROOT_CERT_FILE
	        " (0644): CA:TRUE, keyCertSign and cRLSign,\n"
	        "subject O=<trust domain>, CN=" ROOT_CN ", URI SAN spiffe://<trust domain>.\n"
	        "DIR is made (0700) if missing. An existing root is kept unless --force.\n"
	        "\n"
	        "  --dir DIR            where the root's key and certificate go (required)\n"
	        "  --trust-domain TD    the mesh's SPIFFE trust domain [" DEFAULT_TRUST "]\n"
	        "  --days N             the root's lifetime in days [%d]\n"
	        "  --force              replace an existing root: certificates it issued stop\n"
	        "                       verifying against the new one\n",
	        DEFAULT_ROOT_DAYS);
}

static void issue_usage(FILE *f)
{
	fprintf(f,
	        "usage: ringside ca issue --dir DIR --namespace NS --service-account SA\n"
	        "                         [--trust-domain TD] [--ttl DURATION] [--out OUTDIR]\n"
	        "\n"
	        "Issues a workload certificate signed by the root in DIR: a new P-256 key,\n"
	        "URI SAN spiffe://TD/ns/NS/sa/SA (critical; the subject is empty, as in Istio),\n"
	        "CA:FALSE, keyUsage digitalSignature, extKeyUsage serverAuth and clientAuth,\n"
	        "valid from a minute ago for DURATION, a random 128-bit serial. Writes, each\n"
	        "atomically (a temporary file in OUTDIR, fsync, rename), in this order:\n"
	        "  OUTDIR/" RS_TLS_ROOT_CERT_FILE "    DIR's " RS_TLS_ROOT_CERT_FILE
	        " as it is (the trust bundle), 0644\n"
	        "  OUTDIR/" RS_TLS_KEY_FILE "          the new private key, 0600\n"
	        "  OUTDIR/" RS_TLS_CERT_CHAIN_FILE "   the certificate, then the root, 0644\n"
	        "\n"
	        "  --dir DIR               the root made by `ringside ca init` (required)\n"
	        "  --namespace NS          the workload's namespace, a DNS-1123 label (required)\n"
	        "  --service-account SA    its service account, a DNS-1123 subdomain (required)\n"
	        "  --trust-domain TD       [the root's: its URI SAN, else its O]\n"
	        "  --ttl DURATION          lifetime: 90m, 24h, 720h, ... [" DEFAULT_TTL
	        ", as Istio]\n"
	        "  --out OUTDIR            where the files go, made (0755) if missing [.]\n");
}

static void show_usage(FILE *f)
{
	fprintf(f, "usage: ringside ca show FILE...\n"
	           "\n"
	           "Prints each certificate in each FILE (PEM, any number, or one DER): subject,\n"
	           "issuer, URI SAN (the SPIFFE ID), serial, validity and whether it is a CA.\n");
}

/* Whether argv holds --help or -h before any "--". */
static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

/* A flag's value that is the next flag: "--namespace --out x" left out the
 * namespace rather than naming one "--out". */
static bool took_a_flag(void)
{
	return optarg && strncmp(optarg, "--", 2) == 0;
}

/* The flag whose value getopt_long just returned, as typed. */
static const char *flag_text(char **argv)
{
	return optarg == argv[optind - 1] ? argv[optind - 2] : argv[optind - 1];
}

/* Reports getopt_long's '?' and ':' for argv. */
static int bad_option(int opt, char **argv)
{
	const char *arg = argv[optind - 1];

	if (opt == ':')
		return complain(EXIT_USAGE, "%s needs a value", arg);
	return complain(EXIT_USAGE, "unknown flag %s (see --help)", arg);
}

/* The next flag of argv (getopt_long, long flags only): its value in
 * longopts, 0 after the last, or -1 once what is wrong has been said. */
static int next_flag(int argc, char **argv, const struct option *longopts)
{
	int opt = getopt_long(argc, argv, ":", longopts, NULL);

	if (opt == -1)
		return 0;
	if (opt == '?' || opt == ':') {
		bad_option(opt, argv);
		return -1;
	}
	if (took_a_flag()) {
		complain(EXIT_USAGE, "%s needs a value", flag_text(argv));
		return -1;
	}
	return opt;
}

/* After the flags: no argument is left, and --dir was given. 0 or the exit
 * status. */
static int flags_end(int argc, char **argv, const char *dir)
{
	if (optind < argc)
		return complain(EXIT_USAGE, "unexpected argument \"%s\" (see --help)",
		                argv[optind]);
	if (!dir || !*dir)
		return complain(EXIT_USAGE, "--dir DIR is required (see --help)");
	return 0;
}

static void fmt_time(char *buf, size_t size, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm))
		strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		snprintf(buf, size, "%lld", (long long)t);
}

/* "23h59m", "364d", "59s": how far t is from now, roughly. */
static void fmt_span(char *buf, size_t size, int64_t s)
{
	if (s >= 2 * 86400)
		snprintf(buf, size, "%lldd", (long long)(s / 86400));
	else if (s >= 3600)
		snprintf(buf, size, "%lldh%02lldm", (long long)(s / 3600),
		         (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, size, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else
		snprintf(buf, size, "%llds", (long long)s);
}

/* mkdir -p, the last component with mode. 0 or -errno. */
static int make_dir(const char *path, mode_t mode)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Writes dir/name, or says what went wrong. */
static int put_file(const char *dir, const char *name, const void *buf, size_t len, mode_t mode,
                    unsigned flags)
{
	int ret = rs_tls_write_file(dir, name, buf, len, mode, flags);

	if (ret == -EEXIST)
		return complain(EXIT_FAIL,
		                "%s/%s appeared while the root was being made; nothing replaced",
		                dir, name);
	if (ret < 0)
		return complain(EXIT_FAIL, "cannot write %s/%s: %s", dir, name, strerror(-ret));
	return 0;
}

/* The key and certificate of a new root, as PEM. */
struct pem_pair {
	char *key; /* owns; a secret */
	size_t key_len;
	char *cert; /* owns */
	size_t cert_len;
};

static void pem_pair_free(struct pem_pair *p)
{
	rs_tls_free_secret(p->key, p->key_len);
	free(p->cert);
}

/* Makes a certificate as spec says for a new key, signed by issuer (NULL:
 * self-signed); fills out with both as PEM and returns the certificate's DER,
 * or NULL after complaining. */
static uint8_t *make_pair(const struct rs_cert_spec *spec, const uint8_t *issuer_der,
                          size_t issuer_len, const struct rs_cert_key *issuer_key,
                          struct pem_pair *out, size_t *der_len)
{
	char err[ERRLEN];
	struct rs_cert_key *key;
	uint8_t *der = NULL;
	int ret;

	memset(out, 0, sizeof *out);
	key = rs_cert_key_new(err, sizeof err);
	if (!key) {
		complain(EXIT_FAIL, "%s", err);
		return NULL;
	}
	ret = rs_cert_make(spec, key, issuer_der, issuer_len, issuer_key, &der, der_len, err,
	                   sizeof err);
	if (ret < 0) {
		complain(EXIT_FAIL, "cannot make the certificate: %s", err);
		goto fail;
	}
	if (rs_cert_key_pem(key, &out->key, &out->key_len) < 0 ||
	    rs_cert_pem_append(der, *der_len, &out->cert, &out->cert_len) < 0) {
		complain(EXIT_FAIL, "cannot encode the key or certificate as PEM");
		goto fail;
	}
	rs_cert_key_free(key);
	return der;
fail:
	rs_cert_key_free(key);
	free(der);
	pem_pair_free(out);
	return NULL;
}

static int ca_init(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"trust-domain", required_argument, NULL, 't'},
	    {"days", required_argument, NULL, 'n'},
	    {"force", no_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *td = DEFAULT_TRUST;
	long days = DEFAULT_ROOT_DAYS;
	bool force = false;
	char err[ERRLEN], uri[RS_SPIFFE_ID_MAX + 1], until[32];
	struct pem_pair pem;
	struct rs_cert_spec spec;
	uint8_t *der;
	size_t der_len;
	int64_t now;
	int opt, ret;

	if (wants_help(argc, argv)) {
		init_usage(stdout);
		return 0;
	}
	optind = 0;
	while ((opt = next_flag(argc, argv, longopts)) > 0) {
		char *end;

		switch (opt) {
		case 'd':
			dir = optarg;
			break;
		case 't':
			td = optarg;
			break;
		case 'n':
			errno = 0;
			days = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || days < 1 || days > 36500)
				return complain(EXIT_USAGE,
				                "--days \"%s\": give a whole number of days from 1 "
				                "to 36500",
				                optarg);
			break;
		case 'f':
			force = true;
			break;
		}
	}
	if (opt < 0)
		return EXIT_USAGE;
	ret = flags_end(argc, argv, dir);
	if (ret)
		return ret;
	if (rs_spiffe_check_trust_domain(td, err, sizeof err) < 0)
		return complain(EXIT_USAGE, "--trust-domain \"%s\" %s", td, err);

	ret = make_dir(dir, 0700);
	if (ret < 0)
		return complain(EXIT_FAIL, "cannot create %s: %s", dir, strerror(-ret));
	if (!force) {
		static const char *const names[] = {RS_TLS_ROOT_KEY_FILE, RS_TLS_ROOT_CERT_FILE};
		char path[4096];

		for (size_t i = 0; i < 2; i++) {
			snprintf(path, sizeof path, "%s/%s", dir, names[i]);
			if (access(path, F_OK) == 0)
				return complain(EXIT_FAIL,
				                "%s exists; an existing root is kept. --force "
				                "replaces it (certificates it issued stop "
				                "verifying)",
				                path);
		}
	}

	now = (int64_t)time(NULL);
	snprintf(uri, sizeof uri, "spiffe://%s", td);
	spec = (struct rs_cert_spec){
	    .kind = RS_CERT_ROOT,
	    /* O holds at most 64 characters; the URI SAN always names the
	     * trust domain. */
	    .org = strlen(td) < 64 ? td : NULL,
	    .cn = ROOT_CN,
	    .san_uri = uri,
	    .not_before = now - BACKDATE_S,
	    .not_after = now + (int64_t)days * 86400,
	};
	der = make_pair(&spec, NULL, 0, NULL, &pem, &der_len);
	if (!der)
		return EXIT_FAIL;
	free(der);
	/* The key first: a root certificate without its key is of no use, and a
	 * key alone is refused by the next `init` as an existing root. */
	ret = put_file(dir, RS_TLS_ROOT_KEY_FILE, pem.key, pem.key_len, 0600,
	               force ? 0 : RS_WRITE_NO_REPLACE);
	if (ret == 0)
		ret = put_file(dir, RS_TLS_ROOT_CERT_FILE, pem.cert, pem.cert_len, 0644,
		               force ? 0 : RS_WRITE_NO_REPLACE);
	pem_pair_free(&pem);
	if (ret)
		return ret;
	fmt_time(until, sizeof until, spec.not_after);
	printf("created the mesh root of trust domain %s, valid until %s:\n"
	       "  %s/%s\n"
	       "  %s/%s (mode 0600: keep it secret)\n",
	       td, until, dir, RS_TLS_ROOT_CERT_FILE, dir, RS_TLS_ROOT_KEY_FILE);
	return 0;
}

/* The root of --dir, read and checked. */
struct root {
	char *pem; /* owns: root-cert.pem as it is */
	size_t pem_len;
	uint8_t *der; /* owns: its first certificate, the issuer */
	size_t der_len;
	struct rs_cert_key *key; /* owns */
	struct rs_cert_info info;
};

static void root_free(struct root *r)
{
	free(r->pem);
	free(r->der);
	rs_cert_key_free(r->key);
}

static int root_load(const char *dir, struct root *r)
{
	char path[4096], err[ERRLEN], *key_pem = NULL;
	size_t key_len = 0, off = 0;
	struct stat st;
	int ret;

	memset(r, 0, sizeof *r);
	snprintf(path, sizeof path, "%s/%s", dir, RS_TLS_ROOT_CERT_FILE);
	ret = rs_tls_read_file(path, PEM_FILE_MAX, &r->pem, &r->pem_len);
	if (ret < 0)
		return complain(EXIT_FAIL, "cannot read %s: %s%s", path, strerror(-ret),
		                ret == -ENOENT ? " (make a root with `ringside ca init`)" : "");
	ret = rs_cert_pem_next(r->pem, r->pem_len, &off, &r->der, &r->der_len);
	if (ret <= 0)
		return complain(EXIT_FAIL, "%s: no PEM certificate in it", path);
	if (rs_cert_info(r->der, r->der_len, &r->info, err, sizeof err) < 0)
		return complain(EXIT_FAIL, "%s: %s", path, err);
	if (!r->info.is_ca)
		return complain(EXIT_FAIL, "%s is not a CA certificate (no CA:TRUE)", path);
	if (r->info.not_after <= (int64_t)time(NULL)) {
		char when[32];

		fmt_time(when, sizeof when, r->info.not_after);
		return complain(EXIT_FAIL, "the root in %s expired at %s", path, when);
	}

	snprintf(path, sizeof path, "%s/%s", dir, RS_TLS_ROOT_KEY_FILE);
	ret = rs_tls_read_file(path, PEM_FILE_MAX, &key_pem, &key_len);
	if (ret < 0)
		return complain(EXIT_FAIL, "cannot read %s: %s", path, strerror(-ret));
	if (stat(path, &st) == 0 && (st.st_mode & 077))
		fprintf(stderr, "%s: warning: %s can be read by others (mode %04o); chmod 600 it\n",
		        prog, path, (unsigned)(st.st_mode & 07777));
	r->key = rs_cert_key_from_pem(key_pem, key_len, err, sizeof err);
	rs_tls_free_secret(key_pem, key_len);
	if (!r->key)
		return complain(EXIT_FAIL, "%s: %s", path, err);
	if (rs_cert_key_matches(r->key, r->der, r->der_len) < 0)
		return complain(EXIT_FAIL, "%s is not the key of %s/%s", path, dir,
		                RS_TLS_ROOT_CERT_FILE);
	return 0;
}

/* The trust domain the root names: its URI SAN spiffe://<td>, else its O. */
static const char *root_trust_domain(const struct rs_cert_info *info)
{
	static const char scheme[] = "spiffe://";
	const char *td = info->san_uri + sizeof scheme - 1;

	if (strncmp(info->san_uri, scheme, sizeof scheme - 1) == 0 &&
	    rs_spiffe_check_trust_domain(td, NULL, 0) == 0)
		return td;
	if (rs_spiffe_check_trust_domain(info->org, NULL, 0) == 0)
		return info->org;
	return NULL;
}

struct issue_opts {
	const char *dir, *out, *td, *ttl;
	struct rs_spiffe_id id;
	int64_t ttl_s;
};

/* Reads and checks issue's flags into o. 0, or the exit status. */
static int issue_parse(int argc, char **argv, struct issue_opts *o)
{
	static const struct option longopts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"namespace", required_argument, NULL, 'n'},
	    {"service-account", required_argument, NULL, 's'},
	    {"trust-domain", required_argument, NULL, 't'},
	    {"ttl", required_argument, NULL, 'l'},
	    {"out", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	const char *ns = NULL, *sa = NULL;
	char err[ERRLEN];
	uint64_t ns_ttl;
	int opt;

	*o = (struct issue_opts){.out = ".", .ttl = DEFAULT_TTL};
	optind = 0;
	while ((opt = next_flag(argc, argv, longopts)) > 0) {
		switch (opt) {
		case 'd':
			o->dir = optarg;
			break;
		case 'n':
			ns = optarg;
			break;
		case 's':
			sa = optarg;
			break;
		case 't':
			o->td = optarg;
			break;
		case 'l':
			o->ttl = optarg;
			break;
		case 'o':
			o->out = optarg;
			break;
		}
	}
	if (opt < 0)
		return EXIT_USAGE;
	opt = flags_end(argc, argv, o->dir);
	if (opt)
		return opt;
	if (!ns)
		return complain(EXIT_USAGE, "--namespace NS is required (see --help)");
	if (!sa)
		return complain(EXIT_USAGE, "--service-account SA is required (see --help)");
	if (!*o->out)
		return complain(EXIT_USAGE, "--out is empty");
	if (rs_spiffe_check_namespace(ns, err, sizeof err) < 0)
		return complain(EXIT_USAGE, "--namespace \"%s\" %s", ns, err);
	if (rs_spiffe_check_service_account(sa, err, sizeof err) < 0)
		return complain(EXIT_USAGE, "--service-account \"%s\" %s", sa, err);
	if (o->td && rs_spiffe_check_trust_domain(o->td, err, sizeof err) < 0)
		return complain(EXIT_USAGE, "--trust-domain \"%s\" %s", o->td, err);
	if (rs_duration_parse(o->ttl, &ns_ttl) < 0)
		return complain(EXIT_USAGE,
		                "--ttl \"%s\": give a duration such as 90m, 24h or 720h", o->ttl);
	/* X.509 validity counts whole seconds. */
	o->ttl_s = (int64_t)(ns_ttl / 1000000000ull);
	if (o->ttl_s < 1)
		return complain(EXIT_USAGE, "--ttl \"%s\": a certificate lives at least 1s",
		                o->ttl);
	strcpy(o->id.ns, ns);
	strcpy(o->id.sa, sa);
	return 0;
}

static int ca_issue(int argc, char **argv)
{
	char err[ERRLEN], uri[RS_SPIFFE_ID_MAX + 1], from[32], until[32], span[32];
	struct issue_opts o;
	struct root root = {0};
	struct pem_pair pem = {0};
	struct rs_cert_spec spec;
	struct rs_cert_info info;
	uint8_t *der = NULL;
	size_t der_len;
	const char *td;
	int64_t now;
	int ret;

	if (wants_help(argc, argv)) {
		issue_usage(stdout);
		return 0;
	}
	ret = issue_parse(argc, argv, &o);
	if (ret)
		return ret;
	ret = root_load(o.dir, &root);
	if (ret)
		goto out;
	td = o.td ? o.td : root_trust_domain(&root.info);
	if (!td) {
		ret = complain(EXIT_USAGE,
		               "the root in %s names no trust domain; give --trust-domain", o.dir);
		goto out;
	}
	if (strlen(td) >= sizeof o.id.td) {
		ret = complain(EXIT_FAIL, "trust domain too long");
		goto out;
	}
	strcpy(o.id.td, td);
	if (rs_spiffe_format(&o.id, uri, sizeof uri) < 0) {
		ret = complain(EXIT_USAGE, "spiffe://%s/ns/%s/sa/%s is longer than %d bytes", td,
		               o.id.ns, o.id.sa, RS_SPIFFE_ID_MAX);
		goto out;
	}
	now = (int64_t)time(NULL);
	if (now + o.ttl_s > root.info.not_after) {
		fmt_time(until, sizeof until, root.info.not_after);
		ret = complain(EXIT_USAGE,
		               "--ttl %s would outlive the root, which expires at %s; give a "
		               "shorter --ttl",
		               o.ttl, until);
		goto out;
	}
	/* Istio's workload certificates: an empty subject and a critical URI SAN. */
	spec = (struct rs_cert_spec){
	    .kind = RS_CERT_WORKLOAD,
	    .san_uri = uri,
	    .not_before = now - BACKDATE_S,
	    .not_after = now + o.ttl_s,
	};
	der = make_pair(&spec, root.der, root.der_len, root.key, &pem, &der_len);
	if (!der) {
		ret = EXIT_FAIL;
		goto out;
	}
	/* What a peer will do with it, done once here with wolfSSL. */
	if (rs_cert_verify(root.der, root.der_len, der, der_len, err, sizeof err) < 0) {
		ret = complain(EXIT_FAIL, "the new certificate does not verify against %s/%s: %s",
		               o.dir, RS_TLS_ROOT_CERT_FILE, err);
		goto out;
	}
	if (rs_cert_pem_append(root.der, root.der_len, &pem.cert, &pem.cert_len) < 0) {
		ret = complain(EXIT_FAIL, "cannot encode the chain");
		goto out;
	}
	ret = make_dir(o.out, 0755);
	if (ret < 0) {
		ret = complain(EXIT_FAIL, "cannot create %s: %s", o.out, strerror(-ret));
		goto out;
	}
	/* cert-chain.pem last: a watcher that reloads when it changes finds
	 * the matching key and bundle already in place. */
	ret = put_file(o.out, RS_TLS_ROOT_CERT_FILE, root.pem, root.pem_len, 0644, 0);
	if (ret == 0)
		ret = put_file(o.out, RS_TLS_KEY_FILE, pem.key, pem.key_len, 0600, 0);
	if (ret == 0)
		ret = put_file(o.out, RS_TLS_CERT_CHAIN_FILE, pem.cert, pem.cert_len, 0644, 0);
	if (ret)
		goto out;
	if (rs_cert_info(der, der_len, &info, err, sizeof err) < 0) {
		ret = complain(EXIT_FAIL, "%s", err);
		goto out;
	}
	fmt_time(from, sizeof from, info.not_before);
	fmt_time(until, sizeof until, info.not_after);
	fmt_span(span, sizeof span, o.ttl_s);
	printf("issued %s\n"
	       "  valid %s to %s (%s), serial %s\n"
	       "  %s/%s\n"
	       "  %s/%s (mode 0600)\n"
	       "  %s/%s\n",
	       uri, from, until, span, info.serial, o.out, RS_TLS_CERT_CHAIN_FILE, o.out,
	       RS_TLS_KEY_FILE, o.out, RS_TLS_ROOT_CERT_FILE);
out:
	free(der);
	pem_pair_free(&pem);
	root_free(&root);
	return ret;
}

static void show_one(const char *file, unsigned n, const uint8_t *der, size_t len, int64_t now,
                     int *status)
{
	struct rs_cert_info info;
	char err[ERRLEN], from[32], until[32], left[40];

	if (rs_cert_info(der, len, &info, err, sizeof err) < 0) {
		*status = complain(EXIT_FAIL, "%s: certificate %u: %s", file, n, err);
		return;
	}
	fmt_time(from, sizeof from, info.not_before);
	fmt_time(until, sizeof until, info.not_after);
	if (info.not_after <= now)
		snprintf(left, sizeof left, "expired");
	else if (info.not_before > now)
		snprintf(left, sizeof left, "not valid yet");
	else {
		strcpy(left, "in ");
		fmt_span(left + 3, sizeof left - 3, info.not_after - now);
	}
	printf("%s: certificate %u\n", file, n);
	printf("  subject:     %s\n", *info.subject ? info.subject : "(empty)");
	printf("  issuer:      %s\n", *info.issuer ? info.issuer : "(empty)");
	printf("  uri san:     %s%s\n", *info.san_uri ? info.san_uri : "(none)",
	       info.n_san_uri > 1 ? " (and more)" : "");
	printf("  serial:      %s\n", info.serial);
	printf("  not before:  %s\n", from);
	printf("  not after:   %s (%s)\n", until, left);
	printf("  ca:          %s\n", info.is_ca ? "yes" : "no");
}

static int ca_show(int argc, char **argv)
{
	int64_t now = (int64_t)time(NULL);
	int status = 0;

	if (wants_help(argc, argv)) {
		show_usage(stdout);
		return 0;
	}
	if (argc < 2) {
		show_usage(stderr);
		return EXIT_USAGE;
	}
	for (int i = 1; i < argc; i++) {
		size_t len, off = 0;
		unsigned n = 0;
		uint8_t *der;
		size_t der_len;
		char *buf;
		int ret;

		ret = rs_tls_read_file(argv[i], PEM_FILE_MAX, &buf, &len);
		if (ret < 0) {
			status = complain(EXIT_FAIL, "cannot read %s: %s", argv[i], strerror(-ret));
			continue;
		}
		while ((ret = rs_cert_pem_next(buf, len, &off, &der, &der_len)) > 0) {
			show_one(argv[i], ++n, der, der_len, now, &status);
			free(der);
		}
		if (ret < 0)
			status = complain(EXIT_FAIL, "%s: a PEM certificate that does not decode",
			                  argv[i]);
		else if (n == 0 && rs_cert_info((const uint8_t *)buf, len,
		                                &(struct rs_cert_info){0}, NULL, 0) < 0)
			status =
			    complain(EXIT_FAIL, "%s: no certificate in it (PEM or DER)", argv[i]);
		else if (n == 0)
			show_one(argv[i], 1, (const uint8_t *)buf, len, now, &status);
		free(buf);
	}
	return status;
}

int rs_cmd_ca(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
		const char *prog;
	} cmds[] = {
	    {"init", ca_init, "ringside ca init"},
	    {"issue", ca_issue, "ringside ca issue"},
	    {"show", ca_show, "ringside ca show"},
	};

	if (argc < 2) {
		ca_usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		ca_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		if (strcmp(argv[1], cmds[i].name) == 0) {
			prog = cmds[i].prog;
			return cmds[i].run(argc - 1, argv + 1);
		}
	}
	complain(EXIT_USAGE, "unknown command \"%s\"", argv[1]);
	ca_usage(stderr);
	return EXIT_USAGE;
}
