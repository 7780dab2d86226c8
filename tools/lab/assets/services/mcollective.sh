DESCRIPTION="The Marionette Collective"
ORDER=40
start() { mcollectived --config=/etc/mcollective/server.cfg --pidfile=/run/mcollective.pid; }
stop() { stop_pidfile /run/mcollective.pid 20; }
active() { pid_alive /run/mcollective.pid; }
