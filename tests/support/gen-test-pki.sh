#!/bin/sh
# gen-test-pki.sh -- make a throw-away PKI for the TLS tests (openssl CLI).
#
#   tests/support/gen-test-pki.sh DIR
#
# Writes into DIR (created if missing), each certificate with its own key
# (NAME.crt, NAME.key, PEM):
#
#   ca          the test CA (self-signed, CA:TRUE); trust anchor: --ca-file DIR/ca.crt
#   server      signed by ca: CN sink.e2e.test, SAN DNS:sink.e2e.test,
#               DNS:localhost, IP:127.0.0.1, IP:::1; valid from a day ago
#               for 10 years
#   expired     signed by ca, same names, valid 2020-01-01 .. 2020-01-02 only
#   selfsigned  same names, signed by its own key (no CA)
#   wrongname   signed by ca, CN and SAN wrong.e2e.test only
#
# Keys are EC P-256: generating them costs milliseconds (RSA-2048 costs a
# third of a second each), which matters because every unit test process
# makes its own PKI. Nothing here is ever committed: private keys are made at
# test time, in a temporary directory. Exit status 0, or 1 with openssl's
# complaint on stderr.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dir=$1
mkdir -p "$dir"
cd "$dir"

NAMES="DNS:sink.e2e.test,DNS:localhost,IP:127.0.0.1,IP:::1"

# Our own config, so the system openssl.cnf adds nothing. `openssl ca` is used
# for the leaves because only it takes explicit dates (-startdate/-enddate),
# which the expired certificate needs (x509 -days cannot go backwards in 3.0).
cat >openssl.cnf <<'EOF'
[req]
distinguished_name = req_dn
prompt = no
[req_dn]
CN = unused
[ca]
default_ca = test_ca
[test_ca]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any_name
unique_subject = no
copy_extensions = none
email_in_dn = no
[any_name]
commonName = supplied
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = ${ENV::SAN}
[v3_self]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = ${ENV::SAN}
EOF
: >index.txt
echo 01 >serial
export SAN="$NAMES" # read by openssl.cnf even where unused

key() { # NAME
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
}

# leaf NAME CN SAN START END: a certificate signed by the test CA
leaf() {
	key "$1"
	SAN=$3 openssl req -new -config openssl.cnf -key "$1.key" -subj "/CN=$2" -out "$1.csr"
	SAN=$3 openssl ca -batch -notext -config openssl.cnf -extensions v3_leaf \
		-cert ca.crt -keyfile ca.key -startdate "$4" -enddate "$5" \
		-in "$1.csr" -out "$1.crt" 2>ca.log || {
		cat ca.log >&2
		exit 1
	}
	rm -f "$1.csr"
}

key ca
openssl req -new -x509 -config openssl.cnf -extensions v3_ca -key ca.key \
	-subj "/CN=sluice test CA" -days 3650 -out ca.crt

start=$(date -u -d '1 day ago' +%Y%m%d%H%M%SZ)
end=$(date -u -d '10 years' +%Y%m%d%H%M%SZ)
leaf server sink.e2e.test "$NAMES" "$start" "$end"
leaf expired sink.e2e.test "$NAMES" 20200101000000Z 20200102000000Z
leaf wrongname wrong.e2e.test DNS:wrong.e2e.test "$start" "$end"

key selfsigned
openssl req -new -x509 -config openssl.cnf -extensions v3_self -key selfsigned.key \
	-subj /CN=sink.e2e.test -days 3650 -out selfsigned.crt

rm -f ca.log openssl.cnf ./*.pem index.txt* serial*
