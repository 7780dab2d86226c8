#!/bin/bash
# PID 1 of one lab host (started by tools/lab inside fresh mount, UTS and PID
# namespaces, within the host's network namespace).
#   argv: FQDN HOSTDIR ASSETS
# HOSTDIR/mounts lists "SOURCE<TAB>TARGET" bind mounts (the host's private
# copies of state directories); HOSTDIR/ready is written once sshd listens.
set -eu
fqdn=$1 hostdir=$2 assets=$3
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

hostname "$fqdn"
# Hold the host directory as our cwd: mounts below may hide its path.
cd "$hostdir"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
# /tmp last: the sources may live under the machine's /tmp (a test's state dir)
while IFS=$'\t' read -r src dst; do
  [ -n "$src" ] && [ "$dst" != /tmp ] || continue
  mount --bind "$src" "$dst"
done < "$hostdir/mounts"
mount --bind "$assets/systemctl.sh" /usr/bin/systemctl
[ ! -e /usr/sbin/service ] || mount --bind "$assets/service.sh" /usr/sbin/service
tmp_src=$(awk -F'\t' '$2 == "/tmp" { print $1 }' "$hostdir/mounts")
[ -z "$tmp_src" ] || mount --bind "$tmp_src" /tmp
mkdir -p /var/local/lab/enabled
printf '%s\n' "$assets" > /var/local/lab/assets-dir
mkdir -p -m 0755 /run/sshd /run/lock

# The host is "booted": sshd first, then every enabled service in order.
systemctl start ssh
echo "$(date +%s)" > ready
cd /
(
  for unit in $(ls /var/local/lab/enabled 2>/dev/null | sort); do
    systemctl start "${unit#*-}" || echo "boot: $unit failed to start" >&2
  done
) >> /var/log/lab-boot.log 2>&1 &

# Reap whatever gets reparented to us; a TERM is a clean shutdown.
trap 'systemctl stop-all >> /var/log/lab-boot.log 2>&1; exit 0' TERM INT
while :; do
  sleep 3600 &
  wait $! || true
done
