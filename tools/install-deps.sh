#!/bin/sh
# install-deps.sh -- install the Debian 12 packages sluice needs, only if missing.
#
#   tools/install-deps.sh          build + test dependencies
#
# Called by `make run` and `make test` before building. It asks dpkg which
# packages are absent and runs apt-get only for those, so on a machine that
# has everything it costs one dpkg-query and never touches the network.
set -eu

PKGS="build-essential pkg-config liburing-dev libwolfssl-dev libc-ares-dev \
libjemalloc-dev libxxhash-dev libck-dev libidn2-dev libcriterion-dev \
swaks postfix python3 iproute2 procps libmail-srs-perl postsrsd nsd \
openssl libnet-ssleay-perl"
# openssl makes the TLS tests' throw-away PKI (tests/support/gen-test-pki.sh);
# swaks speaks TLS (--tls) only with Net::SSLeay (libnet-ssleay-perl).

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
# postfix asks how to configure itself; we only use its smtp-source and
# smtp-sink binaries and our own config directories, so "No configuration".
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
export DEBIAN_FRONTEND=noninteractive

# postsrsd's postinst starts its daemon (invoke-rc.d, deb-systemd-invoke) on ports
# 10001/10002 and enables it at boot; the SRS interop test starts its own on free ports
# and stops it. Both helpers ask /usr/sbin/policy-rc.d first, and exit status 101 means
# "do not start": install one for the duration when there is none (Docker images ship
# one that says the same), and disable the boot start afterwards. nsd (the
# authoritative DNS server of tests/unit/core/test_dns.c) is treated the same: its
# postinst would start it on port 53, where it must not sit; the tests start their
# own on a free loopback port and stop it.
case " $missing " in
*" postsrsd "* | *" nsd "*)
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
		$SUDO chmod 755 /usr/sbin/policy-rc.d
		trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	;;
esac
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
for svc in postsrsd nsd; do
	case " $missing " in
	*" $svc "*)
		$SUDO update-rc.d "$svc" disable >/dev/null 2>&1 || true
		if command -v systemctl >/dev/null 2>&1; then
			$SUDO systemctl disable --now "$svc.service" >/dev/null 2>&1 || true
		fi
		;;
	esac
done
