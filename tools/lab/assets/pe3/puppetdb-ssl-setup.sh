#!/bin/bash
# /opt/puppet/sbin/puppetdb-ssl-setup of the PE 3.x simulator: copies the
# master's certificate, key and CA certificate into /etc/puppetlabs/puppetdb/ssl
# and points jetty.ini at them (what PE 3's script does). Recorded.
set -euo pipefail
echo "{\"time\":\"$(date -u +%FT%TZ)\",\"tool\":\"puppetdb-ssl-setup\",\"argv\":[$(printf '"%s",' "$@" | sed 's/,$//')]}" >> /var/log/pe3-sim/calls.log
ssl=/etc/puppetlabs/puppet/ssl
certname=$(/opt/puppet/bin/puppet config print certname --section master)
[ -f "$ssl/certs/$certname.pem" ] || { echo "Error: $ssl/certs/$certname.pem not found: run puppet agent first" >&2; exit 1; }
dir=/etc/puppetlabs/puppetdb/ssl
mkdir -p "$dir"
install -o pe-puppetdb -g pe-puppetdb -m 0600 "$ssl/private_keys/$certname.pem" "$dir/private.pem"
install -o pe-puppetdb -g pe-puppetdb -m 0600 "$ssl/certs/$certname.pem" "$dir/public.pem"
install -o pe-puppetdb -g pe-puppetdb -m 0600 "$ssl/certs/ca.pem" "$dir/ca.pem"
jetty=/etc/puppetlabs/puppetdb/conf.d/jetty.ini
for kv in "ssl-key=$dir/private.pem" "ssl-cert=$dir/public.pem" "ssl-ca-cert=$dir/ca.pem"; do
  k=${kv%%=*} v=${kv#*=}
  if grep -q "^$k *=" "$jetty"; then sed -i "s|^$k *=.*|$k = $v|" "$jetty"; else echo "$k = $v" >> "$jetty"; fi
done
echo "Certificate generation complete. Please restart pe-puppetdb."
