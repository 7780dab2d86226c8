DESCRIPTION="Puppet-integrated catalog and fact storage"
ORDER=20
# As the Debian unit (/lib/systemd/system/puppetdb.service); its init script is broken.
start() {
  local JAVA_ARGS=''
  . /etc/default/puppetdb
  install -d -o puppetdb -g puppetdb -m 0755 /run/puppetdb
  printf 0 > /run/puppetdb/restart && chown puppetdb: /run/puppetdb/restart
  # shellcheck disable=SC2086
  spawn_as puppetdb /run/puppetdb/lab.pid /var/log/puppetdb/lab-console.log \
    /usr/bin/java $JAVA_ARGS -Djava.security.egd=/dev/urandom '-XX:OnOutOfMemoryError=kill -9 %p' \
    -cp /usr/share/puppetdb/puppetdb.jar clojure.main -m puppetlabs.puppetdb.core services \
    --config /etc/puppetdb/conf.d --bootstrap-config /etc/puppetdb/bootstrap.cfg \
    --restart-file /run/puppetdb/restart
  tk_wait_ready /run/puppetdb/restart /run/puppetdb/lab.pid 300 /var/log/puppetdb/lab-console.log
}
stop() { stop_pidfile /run/puppetdb/lab.pid 60; }
reload() {
  printf 0 > /run/puppetdb/restart
  kill -HUP "$(cat /run/puppetdb/lab.pid)"
  tk_wait_ready /run/puppetdb/restart /run/puppetdb/lab.pid 60 /var/log/puppetdb/lab-console.log
}
active() { pid_alive /run/puppetdb/lab.pid; }
