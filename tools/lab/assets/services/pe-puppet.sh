DESCRIPTION="PE 3.x simulator: pe-puppet (an idle process: present, startable, stoppable; no function)"
ORDER=40
start() { mkdir -p /var/run/pe-sim; spawn_as root /var/run/pe-sim/pe-puppet.pid /dev/null bash -c 'exec -a pe-puppet sleep infinity'; }
stop() { stop_pidfile /var/run/pe-sim/pe-puppet.pid 5; }
reload() { :; }
active() { pid_alive /var/run/pe-sim/pe-puppet.pid; }
