DESCRIPTION="PostgreSQL RDBMS"
ORDER=10
pg_version() { ls /etc/postgresql | sort -V | tail -n1; }
# stands for Debian's per-cluster unit: drop-ins of postgresql@.service.d and
# postgresql@<version>-main.service.d apply to it (systemctl.sh run_start_pre)
UNIT_NAMES="postgresql@$(pg_version 2> /dev/null)-main.service"
start() { pg_ctlcluster "$(pg_version)" main start; }
stop() { pg_ctlcluster -m fast "$(pg_version)" main stop; }
reload() { pg_ctlcluster "$(pg_version)" main reload; }
active() { pg_ctlcluster "$(pg_version)" main status > /dev/null 2>&1; }
