#!/bin/bash
# The PE 3.x simulator's certificate authority: a real OpenSSL CA in PE 3's
# layout (/etc/puppetlabs/puppet/ssl/ca: ca_crt.pem, ca_key.pem, ca_crl.pem,
# serial, requests/, signed/). openssl's own database (index.txt) lives in the
# same directory so a copy of ssl/ca moves the whole CA.
#   setup CA_NAME | sign NAME [--allow-dns-alt-names] | revoke NAME | list | gencrl | has-request NAME
set -euo pipefail
ca=/etc/puppetlabs/puppet/ssl/ca
# One CA operation at a time, as Puppet 3's CA locks its serial file: two
# `openssl ca` runs at once corrupt index.txt/serial (20 secondaries joining
# in parallel had signatures fail). The lock lives beside the CA, in /run.
if [ -z "${PE3_CA_LOCKED:-}" ] && command -v flock >/dev/null; then
  mkdir -p /run/pe3-sim
  PE3_CA_LOCKED=1 exec flock /run/pe3-sim/ca.lock "$0" "$@"
fi
cnf() {
  cat <<CNF
[ ca ]
default_ca = puppet
[ puppet ]
dir = $ca
database = $ca/index.txt
new_certs_dir = $ca/newcerts
certificate = $ca/ca_crt.pem
private_key = $ca/ca_key.pem
serial = $ca/serial
crlnumber = $ca/crlnumber
default_md = sha256
default_days = 1825
default_crl_days = 1825
policy = anything
copy_extensions = copy
unique_subject = no
x509_extensions = leaf
[ anything ]
commonName = supplied
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ req ]
distinguished_name = dn
[ dn ]
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
CNF
}
valid_name() { [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || { echo "Error: invalid certificate name '$1'" >&2; exit 1; }; }

case ${1:-} in
  setup)
    name=$2
    mkdir -p "$ca/requests" "$ca/signed" "$ca/newcerts" "$ca/private"
    : > "$ca/index.txt"
    echo 01 > "$ca/serial"; echo 01 > "$ca/crlnumber"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 1825 -keyout "$ca/ca_key.pem" -out "$ca/ca_crt.pem" \
      -subj "/CN=$name" -config <(cnf) -extensions v3_ca 2> /dev/null
    openssl pkey -in "$ca/ca_key.pem" -pubout -out "$ca/ca_pub.pem"
    openssl rand -hex 16 > "$ca/private/ca.pass"
    openssl ca -batch -config <(cnf) -gencrl -out "$ca/ca_crl.pem" 2> /dev/null
    : > "$ca/inventory.txt"
    chmod 0640 "$ca/ca_key.pem" ;;
  sign)
    name=$2; valid_name "$name"; allow=${3:-}
    req=$ca/requests/$name.pem
    [ -f "$req" ] || { echo "Error: Could not find certificate request for $name" >&2; exit 24; }
    alt=$(openssl req -in "$req" -noout -text | grep -A1 'Subject Alternative Name' | tail -n1 | sed 's/^ *//') || true
    if [ -n "$alt" ] && [ "$allow" != --allow-dns-alt-names ]; then
      echo "Error: CSR '$name' contains subject alternative names ($alt), which are disallowed. Use \`puppet cert --allow-dns-alt-names sign $name\` to sign this request." >&2
      exit 24
    fi
    openssl ca -batch -config <(cnf) -in "$req" -out "$ca/signed/$name.pem" -notext 2> /dev/null
    serial=$(openssl x509 -in "$ca/signed/$name.pem" -noout -serial | cut -d= -f2)
    echo "0x$serial $(date -u +%FT%TUTC) $(date -u -d '+5 years' +%FT%TUTC) /CN=$name" >> "$ca/inventory.txt"
    rm -f "$req"
    echo "Notice: Signed certificate request for $name" ;;
  revoke)
    name=$2; valid_name "$name"
    [ -f "$ca/signed/$name.pem" ] || { echo "Error: Could not find a serial number for $name" >&2; exit 24; }
    openssl ca -batch -config <(cnf) -revoke "$ca/signed/$name.pem" 2> /dev/null || true
    openssl ca -batch -config <(cnf) -gencrl -out "$ca/ca_crl.pem" 2> /dev/null
    echo "Notice: Revoked certificate with serial $(openssl x509 -in "$ca/signed/$name.pem" -noout -serial | cut -d= -f2)" ;;
  clean)
    name=$2; valid_name "$name"
    rm -f "$ca/signed/$name.pem" "$ca/requests/$name.pem"
    echo "Notice: Removed certificate $name" ;;
  gencrl)
    openssl ca -batch -config <(cnf) -gencrl -out "$ca/ca_crl.pem" 2> /dev/null ;;
  list)
    for f in "$ca"/requests/*.pem; do
      [ -e "$f" ] || continue
      fp=$(openssl req -in "$f" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1 | tr a-f A-F | sed 's/../&:/g; s/:$//')
      echo "  \"$(basename "$f" .pem)\" (SHA256) $fp"
    done
    if [ "${2:-}" = --all ]; then
      for f in "$ca"/signed/*.pem; do
        [ -e "$f" ] || continue
        n=$(basename "$f" .pem)
        fp=$(openssl x509 -in "$f" -noout -fingerprint -sha256 | cut -d= -f2)
        if grep -q "^R.*/CN=$n\$" "$ca/index.txt"; then echo "- \"$n\" (SHA256) $fp (certificate revoked)"; else echo "+ \"$n\" (SHA256) $fp"; fi
      done
    fi ;;
  *) echo "usage: ca.sh setup|sign|revoke|clean|gencrl|list" >&2; exit 2 ;;
esac
