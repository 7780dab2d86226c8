#!/bin/bash
# Builds a profile's template: the state directories a fresh host starts from,
# copied from this machine's pristine package install (nothing here runs a
# service). PostgreSQL gets a fresh cluster made in a private mount namespace,
# so a cluster someone runs on this machine is never copied mid-write.
#   argv: DEST PATH...      (PATHs are the profile's private directories)
# Run under `unshare --mount --propagation private`.
set -eu
dest=$1; shift
rm -rf "$dest"
mkdir -p "$dest"
for p in "$@"; do
  mkdir -p "$dest$(dirname "$p")"
  case $p in
    /var/log)
      # directories and their owners only; no machine logs
      cp -a --attributes-only -r /var/log "$dest/var/log"
      find "$dest/var/log" -type f -delete ;;
    /root|/tmp|/var/local|/opt|/var/opt|/etc/puppetlabs)
      mkdir -p "$dest$p" ;;
    /etc/postgresql|/var/lib/postgresql)
      mkdir -p "$dest$p"; chown postgres:postgres "$dest$p"; chmod 0755 "$dest$p" ;;
    /etc/ssh)
      cp -a /etc/ssh "$dest/etc/ssh"
      rm -f "$dest"/etc/ssh/ssh_host_*_key "$dest"/etc/ssh/ssh_host_*_key.pub ;;
    *)
      if [ -e "$p" ]; then cp -a "$p" "$dest$p"; else mkdir -p "$dest$p"; fi ;;
  esac
done
chmod 0700 "$dest/root"
chmod 1777 "$dest/tmp"
cp -a /etc/skel/. "$dest/root/" 2>/dev/null || true

if [ -d "$dest/var/lib/postgresql" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
  mount --bind "$dest/etc/postgresql" /etc/postgresql
  mount --bind "$dest/var/lib/postgresql" /var/lib/postgresql
  mount --bind "$dest/var/log" /var/log
  mount -t tmpfs tmpfs /run
  pg_createcluster "$version" main > /dev/null
fi

if [ -f "$dest/etc/default/puppetserver" ]; then
  # JVM settings from lab-notes.md: 18 s to ready, ~500 MB RSS.
  sed -i 's/^JAVA_ARGS=.*/JAVA_ARGS="-Xms256m -Xmx512m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger"/' \
    "$dest/etc/default/puppetserver"
fi
if [ -f "$dest/etc/default/puppetdb" ]; then
  sed -i 's/^JAVA_ARGS=.*/JAVA_ARGS="-Xmx192m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"/' "$dest/etc/default/puppetdb"
fi
