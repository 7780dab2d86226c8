DESCRIPTION="PE 3.x simulator: PostgreSQL (real, in PE 3's data directory)"
ORDER=10
data=/opt/puppet/var/lib/pgsql/9.2/data
start() {
  install -d -o pe-postgres -g pe-postgres -m 2775 /var/run/pe-postgresql
  runuser -u pe-postgres -- /opt/puppet/bin/pg_ctl -D "$data" -l /var/log/pe-postgresql/pgstartup.log -w -t 60 start > /dev/null
}
stop() { runuser -u pe-postgres -- /opt/puppet/bin/pg_ctl -D "$data" -m fast -w stop > /dev/null; }
reload() { runuser -u pe-postgres -- /opt/puppet/bin/pg_ctl -D "$data" reload > /dev/null; }
active() { runuser -u pe-postgres -- /opt/puppet/bin/pg_ctl -D "$data" status > /dev/null 2>&1; }
