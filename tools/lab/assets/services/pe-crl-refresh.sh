DESCRIPTION="pe-cluster CRL refresh"
ORDER=35
# The unit pe-cluster join installs (packages/pe-cluster/src/flows/crl-refresh.ts).
# Strict, as systemd is: the stand-in runs what the installed unit says, the
# ExecStart= line of /etc/systemd/system/pe-crl-refresh.service (per host in the
# lab), as root in its own session; no unit file, no start. Restart=always is
# not emulated: a loop that dies stays down (status shows its refresh stale).
PE_CRL_REFRESH_UNIT=/etc/systemd/system/pe-crl-refresh.service
start() {
  local cmd argv=()
  if [ ! -f "$PE_CRL_REFRESH_UNIT" ]; then
    echo "Unit pe-crl-refresh.service not found ($PE_CRL_REFRESH_UNIT is not installed)." >&2
    return 5
  fi
  cmd=$(sed -n 's/^ExecStart=//p' "$PE_CRL_REFRESH_UNIT" | tail -n 1)
  [ -n "$cmd" ] || { echo "pe-crl-refresh.service: no ExecStart= in $PE_CRL_REFRESH_UNIT" >&2; return 1; }
  case $cmd in [-@+!:]*) echo "pe-crl-refresh.service: the stand-in runs no ExecStart= prefixes: $cmd" >&2; return 1 ;; esac
  mapfile -d '' -t argv < <(printf '%s\n' "$cmd" | xargs printf '%s\0')
  [ ${#argv[@]} -gt 0 ] && [ -x "${argv[0]}" ] || { echo "pe-crl-refresh.service: ${argv[0]:-?} is not executable" >&2; return 1; }
  spawn_as root /run/pe-crl-refresh.pid /var/log/pe-crl-refresh.log "${argv[@]}"
  sleep 0.3
  pid_alive /run/pe-crl-refresh.pid || { tail -n 5 /var/log/pe-crl-refresh.log >&2; return 1; }
}
stop() { stop_pidfile /run/pe-crl-refresh.pid 10; }
active() { pid_alive /run/pe-crl-refresh.pid; }
