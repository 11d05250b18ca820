#!/bin/sh
# gencerts.sh DIR: the certificates tests/test_security needs, made with the
# openssl CLI: a CA, a server certificate for localhost/127.0.0.1, a client
# certificate (CN alice), an expired client certificate, a second CA with
# a server and a client certificate of its own (the "wrong CA"), and a
# server certificate of the first CA for another name (elsewhere.invalid).
# SPDX-License-Identifier: BSD-2-Clause
set -eu
d=$1
cd "$d"
q() { "$@" >/dev/null 2>&1; }

ca() {	# NAME
	q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	    -subj "/CN=$1" -keyout "$1.key" -out "$1.pem"
}
# leaf NAME CN CA [EXT]
leaf() {
	q openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -subj "/CN=$2" -keyout "$1.key" -out "$1.csr"
	printf '%s\n' "${4:-basicConstraints=CA:FALSE}" > "$1.ext"
	q openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial \
	    -days 2 -extfile "$1.ext" -out "$1.pem"
}
ca ca
ca otherca
leaf server localhost ca "subjectAltName=DNS:localhost,IP:127.0.0.1"
leaf client alice ca
leaf otherserver localhost otherca "subjectAltName=DNS:localhost,IP:127.0.0.1"
leaf otherclient alice otherca
# the right CA, for a name no test dials
leaf elsewhere elsewhere ca "subjectAltName=DNS:elsewhere.invalid"

# expired: openssl ca can set both dates in the past
mkdir -p expdb
: > expdb/index.txt
echo 01 > expdb/serial
cat > expdb/ca.cnf <<CNF
[ca]
default_ca = x
[x]
database = expdb/index.txt
serial = expdb/serial
new_certs_dir = expdb
default_md = sha256
policy = p
[p]
commonName = supplied
CNF
q openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=alice" \
    -keyout expired.key -out expired.csr
q openssl ca -batch -config expdb/ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr \
    -startdate 20200101000000Z -enddate 20200102000000Z -out expired.pem
test -s expired.pem
