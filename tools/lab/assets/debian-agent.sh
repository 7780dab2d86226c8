#!/bin/bash
# Installs a Debian 12 host as a Puppet agent (puppet-agent only): it reaches
# masters through the load balancer name and its CA through the primary's
# name. Runs inside the host. Step "request" submits the CSR; step "fetch"
# downloads the signed certificate.
#   argv: request|fetch FQDN SERVER CA_SERVER
set -euo pipefail
step=$1 fqdn=$2 server=$3 ca_server=$4
case $step in
  request)
    cat >> /etc/puppet/puppet.conf <<CONF

# Written by tools/lab: an agent.
[main]
certname = $fqdn
server = $server
ca_server = $ca_server
CONF
    # --http_keepalive_timeout 0: the first CSR otherwise stalls 30 s on a reused connection
    puppet ssl bootstrap --waitforcert 0 --http_keepalive_timeout 0 || true ;;
  fetch)
    puppet ssl bootstrap --waitforcert 0 --http_keepalive_timeout 0 ;;
esac
