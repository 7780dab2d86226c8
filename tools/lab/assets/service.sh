#!/bin/bash
# `service NAME ACTION` stand-in for lab hosts (PE 3.x runbooks call it):
# hands over to the systemctl stand-in. Bind-mounted over /usr/sbin/service.
set -u
[ $# -ge 2 ] || { echo "Usage: service < option > | --status-all | [ service_name [ command | --full-restart ] ]" >&2; exit 1; }
name=$1 action=$2
echo "$(date -u +%FT%TZ) service $*" >> /var/log/lab-systemctl.log
case $action in
  --full-restart) exec systemctl restart "$name" ;;
  condrestart) exec systemctl try-restart "$name" ;;
  *) exec systemctl "$action" "$name" ;;
esac
