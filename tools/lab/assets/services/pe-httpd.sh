DESCRIPTION="PE 3.x simulator: pe-httpd (puppet master on 8140)"
ORDER=30
start() {
  mkdir -p /var/run/pe-httpd
  spawn_as root /var/run/pe-httpd/httpd.pid /var/log/pe-httpd/error.log /usr/bin/node "$assets/pe3/httpd.mjs"
  local i
  for ((i = 0; i < 100; i++)); do
    pid_alive /var/run/pe-httpd/httpd.pid || { tail -n 5 /var/log/pe-httpd/error.log >&2; return 1; }
    (exec 3<> /dev/tcp/127.0.0.1/8140) 2> /dev/null && return 0
    sleep 0.1
  done
  return 1
}
stop() { stop_pidfile /var/run/pe-httpd/httpd.pid 10; }
reload() { kill -HUP "$(cat /var/run/pe-httpd/httpd.pid)"; }
active() { pid_alive /var/run/pe-httpd/httpd.pid; }
