DESCRIPTION="PostgreSQL RDBMS"
ORDER=10
pg_version() { ls /etc/postgresql | sort -V | tail -n1; }
start() { pg_ctlcluster "$(pg_version)" main start; }
stop() { pg_ctlcluster -m fast "$(pg_version)" main stop; }
reload() { pg_ctlcluster "$(pg_version)" main reload; }
active() { pg_ctlcluster "$(pg_version)" main status > /dev/null 2>&1; }
