#!/bin/bash
# --with-mcollective on the debian profile: activemq with a STOMP connector and
# an mcollective user on the broker host, mcollectived on every host, all with
# the same pre-shared key. Runs inside the host. The two secrets arrive on
# stdin (line 1: broker password, line 2: PSK), never in argv.
#   argv: broker|server FQDN BROKER_FQDN
set -euo pipefail
role=$1 fqdn=$2 broker=$3
read -r password
read -r psk
if [ "$role" = broker ]; then
  inst=/etc/activemq/instances-available/main
  cat > "$inst/activemq.xml" <<CONF
<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <!-- Written by tools/lab: the with-mcollective option -->
  <bean class="org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"/>
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" brokerName="$fqdn" dataDirectory="\${activemq.base}/data">
    <persistenceAdapter>
      <kahaDB directory="\${activemq.base}/data/kahadb"/>
    </persistenceAdapter>
    <plugins>
      <simpleAuthenticationPlugin>
        <users>
          <authenticationUser username="mcollective" password="$password" groups="mcollective,everyone"/>
        </users>
      </simpleAuthenticationPlugin>
    </plugins>
    <transportConnectors>
      <transportConnector name="openwire" uri="tcp://127.0.0.1:61616"/>
      <transportConnector name="stomp" uri="stomp://0.0.0.0:61613"/>
    </transportConnectors>
  </broker>
</beans>
CONF
  chmod 0640 "$inst/activemq.xml"; chgrp activemq "$inst/activemq.xml"
  ln -sfn ../instances-available/main /etc/activemq/instances-enabled/main
  mkdir -p /var/lib/activemq/data /var/lib/activemq/main
  chown -R activemq:activemq /var/lib/activemq
  systemctl enable activemq
  systemctl start activemq
  for _ in $(seq 1 120); do (exec 3<> /dev/tcp/127.0.0.1/61613) 2> /dev/null && break; sleep 1; done
  (exec 3<> /dev/tcp/127.0.0.1/61613) 2> /dev/null || { echo "activemq: no STOMP listener on 61613" >&2; exit 1; }
fi
umask 077
# rewritten in bash, so the secrets never sit in a process's argv
rewrite() {
  local f=$1 line out=()
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in
      "plugin.activemq.pool.1.host ="*) line="plugin.activemq.pool.1.host = $broker" ;;
      "plugin.activemq.pool.1.password ="*) line="plugin.activemq.pool.1.password = $password" ;;
      "plugin.psk ="*) line="plugin.psk = $psk" ;;
    esac
    out+=("$line")
  done < "$f"
  printf '%s\n' "${out[@]}" > "$f"
}
rewrite /etc/mcollective/server.cfg
rewrite /etc/mcollective/client.cfg
grep -q '^identity' /etc/mcollective/server.cfg || echo "identity = $fqdn" >> /etc/mcollective/server.cfg
systemctl enable mcollective
systemctl start mcollective
