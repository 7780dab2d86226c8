#!/bin/bash
# Adds what PE 3.x packages would have put on every host to a pe3 template:
# the pe-* users and groups (in the host's private /etc/passwd and /etc/group),
# and the /opt/puppet tree: bin/ with the simulator's puppet and rake, the
# PostgreSQL client and server programs, sbin/ with puppetdb-ssl-setup.
#   argv: DEST
set -euo pipefail
dest=$1
here=$(cd "$(dirname "$0")" && pwd)
uid=2101
for u in pe-puppet pe-puppetdb pe-postgres pe-activemq puppet-dashboard peadmin pe-memcached; do
  home=/var/opt/lib/$u
  [ "$u" = pe-postgres ] && home=/opt/puppet/var/lib/pgsql
  [ "$u" = peadmin ] && home=/var/opt/lib/peadmin
  echo "$u:x:$uid:$uid:$u (PE 3.x simulator):$home:/usr/sbin/nologin" >> "$dest/etc/passwd"
  echo "$u:x:$uid:" >> "$dest/etc/group"
  uid=$((uid + 1))
done
pg=$(ls -d /usr/lib/postgresql/* | sort -V | tail -n1)/bin
mkdir -p "$dest/opt/puppet/bin" "$dest/opt/puppet/sbin" "$dest/opt/puppet/share/puppet-dashboard/certs" \
  "$dest/opt/puppet/share/event-inspector/config" "$dest/opt/puppet/var/lib/pgsql/9.2" "$dest/var/opt/lib/pe-puppet" \
  "$dest/var/opt/lib/pe-puppetmaster/public" "$dest/var/opt/lib/peadmin"
ln -s "$here/puppet.mjs" "$dest/opt/puppet/bin/puppet"
ln -s "$here/rake.mjs" "$dest/opt/puppet/bin/rake"
ln -s "$here/puppetdb-ssl-setup.sh" "$dest/opt/puppet/sbin/puppetdb-ssl-setup"
ln -s "$here/puppetdb-cli.sh" "$dest/opt/puppet/sbin/puppetdb"
for b in psql pg_ctl pg_basebackup pg_dump pg_dumpall pg_restore initdb createdb createuser postgres pg_isready pg_controldata; do
  ln -s "$pg/$b" "$dest/opt/puppet/bin/$b"
done
echo "# Simulated by tools/lab: the tasks this Rakefile offers are those of /opt/puppet/bin/rake." > "$dest/opt/puppet/share/puppet-dashboard/Rakefile"
chown 2101:2101 "$dest/var/opt/lib/pe-puppet"
chown 2103:2103 "$dest/opt/puppet/var/lib/pgsql" "$dest/opt/puppet/var/lib/pgsql/9.2"
chown -R 2105:2105 "$dest/opt/puppet/share/puppet-dashboard/certs"
mkdir -p "$dest/var/log/pe-puppet" "$dest/var/log/pe-httpd" "$dest/var/log/pe-puppetdb" "$dest/var/log/pe-postgresql" "$dest/var/log/pe3-sim"
chown 2103:2103 "$dest/var/log/pe-postgresql"
