DESCRIPTION="ActiveMQ message broker"
ORDER=15
start() { chown -R activemq: /var/lib/activemq/data 2>/dev/null; /etc/init.d/activemq start; }
stop() { /etc/init.d/activemq stop; }
active() { pgrep -u activemq -f activemq.jar > /dev/null; }
