DESCRIPTION="OpenBSD Secure Shell server"
ORDER=05
start() { /usr/sbin/sshd -E /var/log/sshd.log; }
stop() { stop_pidfile /run/sshd.pid 10; }
reload() { kill -HUP "$(cat /run/sshd.pid)"; }
active() { pid_alive /run/sshd.pid; }
