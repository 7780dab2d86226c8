DESCRIPTION="Puppet Server"
ORDER=30
# As the Debian unit (/lib/systemd/system/puppetserver.service): ready when the
# restart file holds 1; reload is a HUP.
start() {
  local JAVA_ARGS='' TK_ARGS=''
  . /etc/default/puppetserver
  install -d -o puppet -g puppet -m 0755 /run/puppetserver
  printf 0 > /run/puppetserver/restart && chown puppet: /run/puppetserver/restart
  # shellcheck disable=SC2086
  spawn_as puppet /run/puppetserver/lab.pid /var/log/puppetserver/lab-console.log \
    /usr/bin/java $JAVA_ARGS -Djruby.lib=/usr/share/jruby/lib -XX:+CrashOnOutOfMemoryError \
    -XX:ErrorFile=/var/log/puppetserver/puppetserver_err_pid%p.log \
    -jar /usr/share/puppetserver/puppetserver.jar \
    --config /etc/puppet/puppetserver/conf.d --bootstrap-config /etc/puppet/puppetserver/services.d \
    --restart-file /run/puppetserver/restart $TK_ARGS
  tk_wait_ready /run/puppetserver/restart /run/puppetserver/lab.pid 300 /var/log/puppetserver/lab-console.log
}
stop() { stop_pidfile /run/puppetserver/lab.pid 60; }
reload() {
  printf 0 > /run/puppetserver/restart
  kill -HUP "$(cat /run/puppetserver/lab.pid)"
  tk_wait_ready /run/puppetserver/restart /run/puppetserver/lab.pid 120 /var/log/puppetserver/lab-console.log
}
active() { pid_alive /run/puppetserver/lab.pid; }
