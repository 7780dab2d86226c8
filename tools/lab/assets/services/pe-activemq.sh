DESCRIPTION="PE 3.x simulator: pe-activemq (an idle process: present, startable, stoppable; no function)"
ORDER=40
start() { mkdir -p /var/run/pe-sim; spawn_as root /var/run/pe-sim/pe-activemq.pid /dev/null bash -c 'exec -a pe-activemq sleep infinity'; }
stop() { stop_pidfile /var/run/pe-sim/pe-activemq.pid 5; }
reload() { :; }
active() { pid_alive /var/run/pe-sim/pe-activemq.pid; }
