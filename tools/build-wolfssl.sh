#!/bin/sh
# build-wolfssl.sh -- rebuild Debian's wolfSSL with its x86-64 assembly, for sluice.
#
#   tools/build-wolfssl.sh [--force] [PREFIX]      PREFIX: /opt/sluice/wolfssl
#   SLUICE_WOLFSSL_KEEP=1 tools/build-wolfssl.sh   keep the build tree
#
# Why: Debian 12 builds libwolfssl (5.5.4) without assembly, so AES-GCM runs
# in portable C (~140 MB/s a core) and ChaCha20 without AVX2 (~345 MB/s):
# STARTTLS to the upstream then caps a 25 MiB relay at a few percent of the
# plaintext one. wolfSSL's --enable-intelasm (AES-NI + PCLMULQDQ for AES-GCM,
# AVX/AVX2 for ChaCha20-Poly1305 and SHA-2, picked at run time by CPUID, with
# the C code as fallback) closes most of that gap.
#
# And LARGE_STATIC_BUFFERS: without it a connection's I/O buffers hold a few
# bytes, so every full 16 KiB record gets a buffer malloc'd, then wiped
# (ForceZero) and freed once read: 6 % of a TLS sink's CPU on a 25 MiB
# stream. With it each connection keeps record-sized buffers (about 33 KiB
# more per TLS connection; sluice's are only toward upstreams, pooled).
# Measured: STARTTLS 25 MiB relay 708 -> 822 MB/s beside 1,515 MB/s plain.
#
# What: the Debian source package of the libwolfssl-dev that install-deps.sh
# installed (same version, Debian's patches and security fixes included),
# configured exactly as debian/rules does (--enable-distro --enable-pkcs11
# --disable-examples, dpkg-buildflags with hardening=+all) plus
# --enable-intelasm and LARGE_STATIC_BUFFERS, installed as a static library into PREFIX. The Makefile
# links it statically when PREFIX/lib/pkgconfig/wolfssl.pc exists, else
# Debian's shared library, so binaries never need LD_LIBRARY_PATH or an
# rpath. Static also means the rebuilt headers (whose options.h differs:
# WOLFSSL_AESNI changes struct Aes) are never mixed with Debian's libwolfssl.so.
#
# Why /opt and not build/: `make clean` removes build/, and a silent fall
# back to the slow library after a clean would make TLS figures meaningless.
# In /opt the build survives cleans and is shared by every checkout on the
# machine (one build per machine, per Debian version).
#
# Idempotent: PREFIX/.sluice-build records the source version and the
# configure options; when both match, nothing is fetched or built. A new
# Debian version (a security update of libwolfssl-dev) or a change of the
# options below rebuilds. Needs root (or sudo) for apt: it adds a deb-src
# entry for bookworm when apt knows no wolfssl source, and installs the
# build dependencies (apt-get build-dep wolfssl).
set -eu

force=0
if [ "${1:-}" = "--force" ]; then
	force=1
	shift
fi
PREFIX=${1:-/opt/sluice/wolfssl}
STAMP="$PREFIX/.sluice-build"
# debian/rules' options, then ours (keep in step with debian/rules on updates)
DEB_OPTS="--enable-distro --enable-pkcs11 --disable-examples --disable-silent-rules"
OUR_OPTS="--enable-intelasm C_EXTRA_FLAGS=-DLARGE_STATIC_BUFFERS"

say() { echo "build-wolfssl: $*"; }
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

# The version to build: the libwolfssl-dev installed, else apt's candidate.
ver=$(dpkg-query -W -f='${source:Version}' libwolfssl-dev 2>/dev/null || true)
if [ -z "$ver" ]; then
	ver=$(apt-cache policy libwolfssl-dev | sed -n 's/^ *Candidate: *//p')
	if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
		say "apt knows no libwolfssl-dev (run tools/install-deps.sh first)" >&2
		exit 1
	fi
fi
want="wolfssl $ver $DEB_OPTS $OUR_OPTS"

if [ "$force" -eq 0 ] && [ -f "$PREFIX/lib/libwolfssl.a" ] && [ -f "$STAMP" ] &&
	[ "$(cat "$STAMP")" = "$want" ]; then
	say "up to date: $PREFIX ($want)"
	exit 0
fi
say "building wolfssl $ver with $OUR_OPTS into $PREFIX"
start=$(date +%s)

# deb-src for the source package (fresh Debian images only have deb lines)
if ! apt-cache showsrc wolfssl 2>/dev/null | grep -qFx "Version: $ver"; then
	say "adding deb-src for bookworm: /etc/apt/sources.list.d/sluice-deb-src.sources"
	$SUDO tee /etc/apt/sources.list.d/sluice-deb-src.sources >/dev/null <<-EOF
		# added by sluice tools/build-wolfssl.sh: source packages for apt-get source
		Types: deb-src
		URIs: http://deb.debian.org/debian
		Suites: bookworm bookworm-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb-src
		URIs: http://deb.debian.org/debian-security
		Suites: bookworm-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	$SUDO apt-get update -qq
fi
say "installing build dependencies (apt-get build-dep wolfssl)"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get build-dep -y -qq wolfssl >/dev/null

work=$(mktemp -d "${TMPDIR:-/var/tmp}/sluice-wolfssl.XXXXXX")
# SLUICE_WOLFSSL_KEEP=1 keeps the build tree (for wolfcrypt/benchmark/benchmark)
if [ -n "${SLUICE_WOLFSSL_KEEP:-}" ]; then
	say "keeping the build tree $work"
else
	trap 'rm -rf "$work"' EXIT
fi
cd "$work"
say "fetching source wolfssl=$ver into $work"
# as root, apt downloads as _apt, which cannot write here: stay root instead
sandbox=""
[ "$(id -u)" -eq 0 ] && sandbox="-oAPT::Sandbox::User=root"
apt-get source -qq $sandbox "wolfssl=$ver" >/dev/null
cd wolfssl-*/

# As Debian's build does: dh_autoreconf, then dh_auto_configure with
# dpkg-buildflags (hardening=+all from debian/rules).
say "autoreconf + configure: $DEB_OPTS $OUR_OPTS"
autoreconf -fi >autoreconf.log 2>&1 || {
	tail -20 autoreconf.log >&2
	exit 1
}
eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
# shellcheck disable=SC2086 # the option lists are word lists
./configure --prefix="$PREFIX" --disable-dependency-tracking $DEB_OPTS $OUR_OPTS \
	>configure.log 2>&1 || {
	tail -20 configure.log >&2
	exit 1
}
grep -q '^ *\* AES-NI: *yes' configure.log || {
	say "configure did not enable AES-NI" >&2
	exit 1
}

say "compiling ($(nproc) jobs)"
make -j"$(nproc)" >make.log 2>&1 || {
	tail -30 make.log >&2
	exit 1
}
# wolfCrypt's known-answer tests, through the new assembly, before installing it
say "running wolfcrypt/test/testwolfcrypt"
./wolfcrypt/test/testwolfcrypt >test.log 2>&1 || {
	tail -30 test.log >&2
	exit 1
}

# Install beside, then swap, so a failed build never leaves half a prefix.
$SUDO rm -rf "$PREFIX.new"
make install DESTDIR="$work/stage" >install.log 2>&1
# --enable-distro does not install options.h; debian/libwolfssl-dev.install does
install -m 644 wolfssl/options.h "$work/stage$PREFIX/include/wolfssl/"
install -m 644 cyassl/options.h "$work/stage$PREFIX/include/cyassl/"
# Nothing Debian's build defines may be missing from ours (only additions).
if [ -f /usr/include/wolfssl/options.h ]; then
	grep '^#define' /usr/include/wolfssl/options.h | sort -u >deb.defs
	grep '^#define' wolfssl/options.h | sort -u >our.defs
	if [ -n "$(comm -23 deb.defs our.defs)" ]; then
		say "options.h lacks defines of Debian's build:" >&2
		comm -23 deb.defs our.defs >&2
		exit 1
	fi
	say "options.h beyond Debian's: $(comm -13 deb.defs our.defs | cut -d' ' -f2 | tr '\n' ' ')"
fi
# static only: -lwolfssl must find the archive, never a shared library here.
# wolfssl.pc names no Libs.private; take them from libtool's record so that
# `pkg-config --static` gives what the archive needs (-lm -lpthread -ldl).
deplibs=$(sed -n "s/^dependency_libs='\(.*\)'$/\1/p" "$work/stage$PREFIX/lib/libwolfssl.la")
echo "Libs.private: $deplibs" >>"$work/stage$PREFIX/lib/pkgconfig/wolfssl.pc"
rm -f "$work/stage$PREFIX"/lib/libwolfssl.so* "$work/stage$PREFIX"/lib/libwolfssl.la
echo "$want" >"$work/stage$PREFIX/.sluice-build"
$SUDO mkdir -p "$(dirname "$PREFIX")"
$SUDO cp -a "$work/stage$PREFIX" "$PREFIX.new"
$SUDO rm -rf "$PREFIX"
$SUDO mv "$PREFIX.new" "$PREFIX"
say "done in $(($(date +%s) - start)) s: $PREFIX/lib/libwolfssl.a ($want)"
