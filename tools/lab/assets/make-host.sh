#!/bin/bash
# Makes one host's disk from a profile template: private copies of the state
# directories, its own sshd host key, root's authorized_keys and the bind-mount
# table init.sh reads.
#   argv: TEMPLATE HOSTDIR FQDN AUTHORIZED_KEY_FILE PATH...
set -eu
template=$1 hostdir=$2 fqdn=$3 pubkey=$4
shift 4
rm -rf "$hostdir"
mkdir -p "$hostdir/fs"
cp -a "$template/." "$hostdir/fs/"
fs=$hostdir/fs

install -d -m 0700 "$fs/root/.ssh"
install -m 0600 "$pubkey" "$fs/root/.ssh/authorized_keys"
ssh-keygen -q -t ed25519 -N '' -C "root@$fqdn" -f "$fs/etc/ssh/ssh_host_ed25519_key"
mkdir -p "$fs/etc/ssh/sshd_config.d"
cat > "$fs/etc/ssh/sshd_config.d/00-lab.conf" <<CONF
# Written by tools/lab: key-only root login, one host key, no DNS lookups.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
MaxStartups 64:30:128
CONF
mkdir -p "$fs/var/local/lab/enabled"
: > "$fs/var/local/lab/enabled/05-ssh"

: > "$hostdir/mounts"
for p in "$@"; do
  printf '%s\t%s\n' "$fs$p" "$p" >> "$hostdir/mounts"
done
