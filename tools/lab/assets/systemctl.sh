#!/bin/bash
# systemctl stand-in for lab hosts (there is no systemd in the lab). Bind-mounted
# over /usr/bin/systemctl inside each host by init.sh, so the product calls
# `systemctl start|stop|restart|reload|status|is-active|is-enabled|enable|disable`
# exactly as on a real host. Each unit is a file in services/ that defines
# start, stop, active and optionally reload. Every call is recorded in
# /var/log/lab-systemctl.log.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
assets=$(cat /var/local/lab/assets-dir)
enabled_dir=/var/local/lab/enabled
# shellcheck source=lib.sh
. "$assets/lib.sh"
echo "$(date -u +%FT%TZ) systemctl $*" >> /var/log/lab-systemctl.log

quiet=0 now=0 args=()
for a in "$@"; do
  case $a in
    -q|--quiet) quiet=1 ;;
    --now) now=1 ;;
    -*) ;;                         # --no-pager, --no-block, -l, --full ...: no effect here
    *) args+=("$a") ;;
  esac
done
verb=${args[0]:-list-units}
units=("${args[@]:1}")

unit_name() { # ssh.service -> ssh; sshd is an alias of ssh as on Debian
  local u=${1%.service}
  [ "$u" = sshd ] && u=ssh
  printf '%s' "$u"
}

load_unit() { # defines start/stop/active/reload/ORDER/DESCRIPTION for one unit
  unset -f start stop active reload
  ORDER=50 DESCRIPTION=$1
  reload() { stop && start; }
  if [ ! -f "$assets/services/$1.sh" ]; then
    echo "Unit $1.service not found." >&2
    return 5
  fi
  # shellcheck disable=SC1090
  . "$assets/services/$1.sh"
}

enabled_file() { ls "$enabled_dir" 2>/dev/null | grep -E "^[0-9]+-$1\$" | head -n1; }

say() { [ "$quiet" = 1 ] || echo "$@"; }

do_status() {
  local u=$1 state=inactive pidinfo=''
  if active; then state='active (running)'; fi
  local en=disabled
  [ -n "$(enabled_file "$u")" ] && en=enabled
  echo "● $u.service - $DESCRIPTION"
  echo "     Loaded: loaded (lab stand-in; $en)"
  echo "     Active: $state"
  [ "$state" = inactive ] && return 3
  return 0
}

all_units() { ls "$assets/services" | sed -n 's/\.sh$//p'; }

rc=0
case $verb in
  start|stop|restart|reload|try-restart|reload-or-restart|status|is-active|is-enabled|enable|disable)
    [ ${#units[@]} -gt 0 ] || { echo "Too few arguments." >&2; exit 1; }
    for raw in "${units[@]}"; do
      u=$(unit_name "$raw")
      load_unit "$u" || { rc=5; [ "$verb" = is-active ] && { say unknown; rc=4; }; continue; }
      case $verb in
        start) active || start || rc=1 ;;
        stop) ! active || stop || rc=1 ;;
        restart) { ! active || stop; } && start || rc=1 ;;
        try-restart) ! active || { stop && start; } || rc=1 ;;
        reload) if active; then reload || rc=1; else echo "$u.service is not active, cannot reload." >&2; rc=1; fi ;;
        reload-or-restart) if active; then reload || rc=1; else start || rc=1; fi ;;
        status) do_status "$u" || rc=3 ;;
        is-active) if active; then say active; else say inactive; rc=3; fi ;;
        is-enabled) if [ -n "$(enabled_file "$u")" ]; then say enabled; else say disabled; rc=1; fi ;;
        enable)
          [ -n "$(enabled_file "$u")" ] || : > "$enabled_dir/$ORDER-$u"
          [ "$now" = 1 ] && { active || start || rc=1; } ;;
        disable)
          f=$(enabled_file "$u"); [ -z "$f" ] || rm -f "$enabled_dir/$f"
          [ "$now" = 1 ] && { ! active || stop || rc=1; } ;;
      esac
    done ;;
  list-units)
    for u in $(all_units); do
      load_unit "$u" || continue
      if active; then s=active; else s=inactive; fi
      if [ -n "$(enabled_file "$u")" ]; then e=enabled; else e=disabled; fi
      if [ "$s" = active ] || [ "$e" = enabled ]; then echo "$u.service $s $e"; fi
    done ;;
  stop-all)
    for f in $(ls "$enabled_dir" 2>/dev/null | sort -r); do
      u=${f#*-}; load_unit "$u" || continue
      ! active || stop || rc=1
    done ;;
  daemon-reload|reset-failed) ;;
  *) echo "Unknown command verb $verb (lab stand-in)." >&2; exit 1 ;;
esac
exit $rc
