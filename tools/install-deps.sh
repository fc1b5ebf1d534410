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
swaks postfix python3 iproute2 procps"

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
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
