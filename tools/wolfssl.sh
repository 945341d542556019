#!/usr/bin/env bash
# Builds wolfSSL from Debian's own source package with the CPU's AES
# instructions, the Intel assembly and SP math, once per cache and set of
# options, and prints the install prefix. tools/build.sh runs it and links the
# result; Debian's binary libwolfssl (meson -Dwolfssl=system) stays the
# fallback. Debian builds wolfSSL without AES-NI: AES-128-GCM runs over 30
# times slower there (README.md, "Which wolfSSL").
#
#   tools/wolfssl.sh                  fetch, configure, build and install if stale; print the prefix
#   tools/wolfssl.sh --print-prefix   print the prefix of an existing build, or exit 1 (never builds)
#   tools/wolfssl.sh --update         refresh the source lists first (a new Debian upload rebuilds)
#
# The cache is ${RINGSIDE_DEPS:-<repo>/.deps}/wolfssl (git-ignored):
#   apt/                 a private apt state: deb-src entries derived from the
#                        system's own sources, their lists; /etc/apt is never written
#   pool/                the source package as downloaded (.dsc, .orig.tar.gz, .debian.tar.xz)
#   <version>-<key>/     the install prefix (include/, lib/libwolfssl.a, lib/pkgconfig/);
#                        <key> hashes the version, this script's options and flags,
#                        so a run with the same ones is instant
#   build/               the source tree while it builds; removed once installed
#   log/                 the output of the last fetch, configure, make and install
# Point RINGSIDE_DEPS at one directory to share a build between clones.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${RINGSIDE_DEPS:-$repo/.deps}/wolfssl"

mode=build
case "${1:-}" in
"") ;;
--print-prefix) mode=print ;;
--update) mode=update ;;
*) echo "usage: $0 [--print-prefix|--update]" >&2; exit 2 ;;
esac

# What ringside needs, on top of wolfSSL's defaults (TLS 1.2 and 1.3, ECC,
# RSA, AES-GCM, ChaCha20-Poly1305, SHA-2, HKDF, extended master secret,
# renegotiation info). Debian's package is --enable-distro (= --enable-all):
# a superset of these, so code that builds against this one builds against
# the fallback too. Changing a line here makes a new build.
options=(
	--enable-static --disable-shared --with-pic # linked into ringside: no run-time path to set
	--enable-aesni --enable-intelasm            # AES-NI, and AVX/AVX2 for GCM, ChaCha20, Poly1305, SHA-2 (chosen at run time by CPUID)
	--enable-sp --enable-sp-asm                 # SP math with x86_64 assembly: P-256, RSA and DH
	--enable-tls13 --disable-oldtls             # TLS 1.3 by default, 1.2 when configured; never 1.0/1.1
	--enable-alpn --enable-sni                  # h2 / http/1.1 and Istio's ALPN; server names
	--enable-session-ticket                     # sidecar-to-sidecar reconnects resume
	--enable-curve25519                         # X25519 key share: curl, OpenSSL and Envoy offer it first, without it every handshake takes a HelloRetryRequest
	--enable-certgen --enable-certreq --enable-certext --enable-keygen # `ringside ca`: keys, certificates, CSRs, key usage and key ids
	--enable-fallback-scsv                      # refuse downgrades (testssl checks it), as Debian's build does
	--disable-examples --disable-crypttests     # nothing but the library
	--disable-benchmark
)
# WOLFSSL_ALT_NAMES (no configure switch of its own in 5.5.4) lets certificate
# generation write subjectAltNames: the SPIFFE URI. KEEP_PEER_CERT keeps the
# peer's certificate after the handshake, where src/tls reads its SPIFFE ID
# (wolfSSL_get_peer_certificate, wolfSSL_X509_get_next_altname). -D flags
# reach wolfssl/options.h, so ringside sees the same struct layout as the
# library.
cppflags="-DWOLFSSL_ALT_NAMES -DKEEP_PEER_CERT"
# Frame pointers and debug information, as in ringside's own builds, so that
# perf unwinds through TLS (perf/); wolfSSL adds -O2 for SP math itself.
cflags="-g -fno-omit-frame-pointer -fstack-protector-strong"
recipe="${options[*]} CPPFLAGS=$cppflags CFLAGS=$cflags"

die() { echo "tools/wolfssl.sh: $*" >&2; exit 1; }
log() { echo "tools/wolfssl.sh: $*" >&2; }

if [ "$mode" != print ]; then
	mkdir -p "$cache/log" "$cache/pool" "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial" "$cache/apt/sources"
	# One build at a time per cache (release and ASan builds, or clones sharing it).
	exec 9>"$cache/.lock"
	flock -w 1800 9 || die "another tools/wolfssl.sh has held $cache/.lock for 30 minutes"
fi

aptdir="$cache/apt"
apt_opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$aptdir/sources"
	-o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
	-o "Debug::NoLocking=1" -o "APT::Sandbox::User=$(id -un)")

# The deb-src entries: every entry of the system's apt sources whose archive
# says Origin: Debian (apt's own index targets name the entry: file:line for
# one-line sources, file:stanza for deb822), copied with deb-src for deb, so
# the mirror, suites, components and Signed-By are the system's own.
derive_sources() {
	local out="$aptdir/sources/debian-src.sources" entries entry file n
	entries="$(apt-get indextargets --format '$(ORIGIN)|$(SOURCESENTRY)' 'Identifier: Packages' |
		awk -F'|' '$1 == "Debian" { print $2 }' | sort -u)"
	[ -n "$entries" ] || die "no apt source with Origin: Debian is configured (apt-get indextargets); add Debian's archive to /etc/apt/sources.list.d/ and run apt-get update"
	: >"$out.tmp"
	rm -f "$aptdir/sources/debian-src.list"
	for entry in $entries; do
		file="${entry%:*}" n="${entry##*:}"
		case "$file" in
		*.sources)
			# Paragraph n, counting only paragraphs that hold a field, less comments.
			awk -v n="$n" 'BEGIN { RS = ""; FS = "\n" }
				{ s = ""; for (i = 1; i <= NF; i++) if ($i !~ /^#/) s = s $i "\n"
				  if (s == "" || ++k != n) next
				  sub(/^Types:[^\n]*/, "Types: deb-src", s); sub(/\nTypes:[^\n]*/, "\nTypes: deb-src", s)
				  printf "%s\n", s }' "$file" >>"$out.tmp"
			;;
		*)
			sed -n "${n}s/^[[:space:]]*deb[[:space:]]/deb-src /p" "$file" >>"$aptdir/sources/debian-src.list"
			;;
		esac
	done
	mv "$out.tmp" "$out"
	[ -s "$out" ] || rm -f "$out"
}

update_lists() {
	derive_sources
	log "fetching Debian's source lists (private apt state in $aptdir)"
	if ! apt-get "${apt_opts[@]}" update >"$cache/log/apt-update.log" 2>&1; then
		log "apt-get update of the deb-src entries failed (derived from the system's sources into $aptdir/sources/); see $cache/log/apt-update.log"
		return 1
	fi
	touch "$aptdir/updated"
}

# The version apt would fetch: the newest wolfssl source in the lists.
source_version() {
	apt-get "${apt_opts[@]}" source --print-uris wolfssl 2>/dev/null |
		sed -n "s/^'[^']*' wolfssl_\([^ ]*\)\.dsc .*/\1/p" | head -1
}

# The lists are fetched again after a week, so that a new Debian upload (a
# security fix) rebuilds; offline, the old lists and the build made from them
# stay in use.
if [ "$mode" = update ]; then
	update_lists || exit 1
elif [ "$mode" = build ] && [ -z "$(find "$aptdir/updated" -mtime -7 2>/dev/null)" ]; then
	update_lists || log "keeping the source lists fetched before"
fi
version="$(source_version)"
if [ -z "$version" ]; then
	[ "$mode" = print ] && exit 1
	die "apt has no source package for wolfssl (deb-src entries in $aptdir/sources/; run $0 --update)"
fi
key="$(printf '%s\n%s\n' "$version" "$recipe" | sha256sum | cut -c1-12)"
prefix="$cache/$version-$key"

if [ -f "$prefix/.built" ]; then
	echo "$prefix"
	exit 0
fi
[ "$mode" = print ] && exit 1

need=()
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
command -v autoreconf >/dev/null || need+=(autoconf)
command -v aclocal >/dev/null || need+=(automake)
command -v libtoolize >/dev/null || need+=(libtool)
command -v make >/dev/null || need+=(make)
[ ${#need[@]} -eq 0 ] || die "building wolfSSL needs ${need[*]}: run tools/deps.sh build (or apt-get install ${need[*]})"

start=$SECONDS
log "building wolfSSL $version with AES-NI into $prefix (once; make -j$(nproc), about a minute)"
# The source package: .dsc, upstream tarball, Debian's patches (security fixes).
if [ ! -f "$cache/pool/wolfssl_$version.dsc" ]; then
	(cd "$cache/pool" && apt-get "${apt_opts[@]}" source --download-only "wolfssl=$version") \
		>"$cache/log/fetch.log" 2>&1 ||
		die "apt-get source wolfssl=$version failed; see $cache/log/fetch.log (try $0 --update)"
fi
# dpkg-source links the upstream tarball beside the tree it unpacks: keep
# both under build/, which goes once the library is installed.
work="$cache/build/$version-$key"
rm -rf "$cache/build" "$prefix"
mkdir -p "$cache/build"
dpkg-source -x "$cache/pool/wolfssl_$version.dsc" "$work" >"$cache/log/unpack.log" 2>&1 ||
	die "dpkg-source could not unpack wolfssl_$version.dsc; see $cache/log/unpack.log"

step() {
	local name="$1" t=$SECONDS
	shift
	if ! (cd "$work" && "$@") >"$cache/log/$name.log" 2>&1; then
		tail -n 30 "$cache/log/$name.log" >&2
		die "$name failed (log: $cache/log/$name.log; tree kept: $work)"
	fi
	times+="$name $((SECONDS - t)) s; "
}
times=""
# Debian's tarball is the upstream git tag: no configure script yet.
step autoreconf autoreconf -fi
step configure ./configure --prefix="$prefix" "${options[@]}" CPPFLAGS="$cppflags" CFLAGS="$cflags"
step make make -j"$(nproc)"
step install make install
grep -q '^#define WOLFSSL_AESNI' "$prefix/include/wolfssl/options.h" ||
	die "the build has no WOLFSSL_AESNI in options.h: configure ignored --enable-aesni (log: $cache/log/configure.log)"
echo "$version" >"$prefix/debian-version"
printf 'version %s\nkey %s\nrecipe %s\nseconds %d (%s)\n' "$version" "$key" "$recipe" $((SECONDS - start)) "${times%; }" >"$prefix/.built"
rm -rf "$cache/build"
log "wolfSSL $version built in $((SECONDS - start)) s (${times%; })"
echo "$prefix"
