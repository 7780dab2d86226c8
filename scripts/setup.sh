#!/usr/bin/env bash
# Installs what pe-stack's tests, demo and lab need on a Debian 12 machine
# (as root), then the npm dependencies. Used by .ci/run and the README.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "scripts/setup.sh must run as root: it installs Debian packages (try: sudo bash scripts/setup.sh)." >&2
  exit 2
fi

export DEBIAN_FRONTEND=noninteractive
# Nothing may start in the root namespace while packages install: the tests
# start what they need themselves (throwaway sshd/PostgreSQL, the lab).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
fi

packages=(
  # pe-host: a real OpenSSH server, sudo, coreutils timeout, tar
  openssh-server openssh-client sudo tar coreutils procps psmisc
  # pe-certs: the openssl CLI
  openssl
  # pe-db: real PostgreSQL 15 clusters
  postgresql postgresql-contrib
  # pe-cluster: a real BIND for the RFC 2136 (nsupdate) DNS provider
  bind9 bind9-dnsutils
  # tools/lab: namespaces, the load balancer, and the real Puppet stack
  iproute2 util-linux haproxy puppetserver puppetdb puppet-agent puppet-terminus-puppetdb activemq mcollective
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/tmp/pe-stack-apt.log 2>&1 || { tail -50 /tmp/pe-stack-apt.log; exit 1; }
fi

npm ci --no-audit --no-fund
