#!/bin/bash
# /opt/puppet/sbin/puppetdb of the PE 3.x simulator: only `ssl-setup [-f]`.
[ "${1:-}" = ssl-setup ] || { echo "PE 3.x simulator: only 'puppetdb ssl-setup' is available" >&2; exit 1; }
shift
exec "$(dirname "$(readlink -f "$0")")/puppetdb-ssl-setup.sh" "$@"
