#!/bin/bash
# Installs a Debian 12 host as a standalone Puppet master, as an operator
# would right after `apt-get install puppetserver puppetdb postgresql`:
# its own CA, its own PostgreSQL with a puppetdb role and database, PuppetDB
# with TLS from the host's certificate, the PuppetDB terminus, a site.pp.
# Runs inside the host (tools/lab execs it there).
#   argv: FQDN DNS_ALT_NAMES(comma list)
set -euo pipefail
fqdn=$1 alt=$2
pg_version=$(ls /etc/postgresql | sort -V | tail -n1)
log() { echo "[$(date +%T)] $fqdn: $*"; }

log "puppet.conf"
cat >> /etc/puppet/puppet.conf <<CONF

# Written by tools/lab: a standalone master.
[main]
certname = $fqdn
server = $fqdn
ca_server = $fqdn
dns_alt_names = $alt

[server]
storeconfigs = true
storeconfigs_backend = puppetdb
reports = store,puppetdb
CONF

cat > /etc/puppet/puppetserver/conf.d/ca.conf <<'CONF'
# Written by tools/lab: masters' CSRs carry DNS alt names.
certificate-authority: {
    allow-subject-alt-names: true
}
CONF

log "CA setup"
puppetserver ca setup > /var/log/lab-ca-setup.log 2>&1
chown -R puppet:puppet /var/lib/puppet/ssl /etc/puppet/puppetserver/ca

log "PostgreSQL"
echo "listen_addresses = '*'" > "/etc/postgresql/$pg_version/main/conf.d/lab.conf"
systemctl enable postgresql
systemctl start postgresql
pw=$(openssl rand -hex 16)
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 <<SQL
CREATE ROLE puppetdb LOGIN PASSWORD '$pw';
CREATE DATABASE puppetdb OWNER puppetdb;
\c puppetdb
CREATE EXTENSION pg_trgm;
SQL

log "PuppetDB"
umask 027
cat > /etc/puppetdb/conf.d/database.ini <<CONF
[database]
subname = //localhost:5432/puppetdb
username = puppetdb
password = $pw
maximum-pool-size = 10
CONF
chown root:puppetdb /etc/puppetdb/conf.d/database.ini
install -d -o puppetdb -g puppetdb -m 0750 /etc/puppetdb/ssl
install -o puppetdb -g puppetdb -m 0640 /var/lib/puppet/ssl/certs/ca.pem /etc/puppetdb/ssl/ca.pem
install -o puppetdb -g puppetdb -m 0640 "/var/lib/puppet/ssl/certs/$fqdn.pem" /etc/puppetdb/ssl/public.pem
install -o puppetdb -g puppetdb -m 0600 "/var/lib/puppet/ssl/private_keys/$fqdn.pem" /etc/puppetdb/ssl/private.pem
cat >> /etc/puppetdb/conf.d/jetty.ini <<CONF

# Written by tools/lab (what \`puppetdb ssl-setup\` does, without changing /etc/group).
ssl-host = 0.0.0.0
ssl-port = 8081
ssl-key = /etc/puppetdb/ssl/private.pem
ssl-cert = /etc/puppetdb/ssl/public.pem
ssl-ca-cert = /etc/puppetdb/ssl/ca.pem
CONF
umask 022

cat > /etc/puppet/puppetdb.conf <<CONF
[main]
server_urls = https://$fqdn:8081
CONF
cat > /etc/puppet/routes.yaml <<'CONF'
---
server:
  facts:
    terminus: puppetdb
    cache: yaml
CONF

mkdir -p /etc/puppet/code/environments/production/manifests
cat > /etc/puppet/code/environments/production/manifests/site.pp <<'CONF'
# Written by tools/lab.
node default {
  file { '/tmp/lab-catalog':
    ensure  => file,
    content => "catalog compiled by ${server_facts['servername']} for ${trusted['certname']}\n",
  }
}
CONF

log "starting puppetdb and puppetserver"
systemctl enable puppetdb puppetserver
systemctl start puppetdb &
db=$!
systemctl start puppetserver
wait $db
log "ready"
