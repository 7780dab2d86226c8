DESCRIPTION="PE 3.x simulator: pe-puppetdb (8081, real PostgreSQL behind)"
ORDER=20
start() {
  mkdir -p /var/run/pe-puppetdb
  spawn_as root /var/run/pe-puppetdb/puppetdb.pid /var/log/pe-puppetdb/puppetdb.log /usr/bin/node "$assets/pe3/puppetdb.mjs"
  local i
  for ((i = 0; i < 100; i++)); do
    pid_alive /var/run/pe-puppetdb/puppetdb.pid || { tail -n 5 /var/log/pe-puppetdb/puppetdb.log >&2; return 1; }
    (exec 3<> /dev/tcp/127.0.0.1/8081) 2> /dev/null && return 0
    sleep 0.1
  done
  return 1
}
stop() { stop_pidfile /var/run/pe-puppetdb/puppetdb.pid 10; }
reload() { stop && start; }
active() { pid_alive /var/run/pe-puppetdb/puppetdb.pid; }
