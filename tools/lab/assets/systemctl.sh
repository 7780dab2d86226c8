#!/bin/bash
# systemctl stand-in for lab hosts (there is no systemd in the lab). Bind-mounted
# over /usr/bin/systemctl inside each host by init.sh, so the product calls
# `systemctl start|stop|restart|reload|status|is-active|is-enabled|enable|disable`
# exactly as on a real host. Each unit is a file in services/ that defines
# start, stop, active and optionally reload, and may name the real systemd
# units it stands for in UNIT_NAMES (postgresql: Debian's postgresql@15-main).
# Before a start (start, restart, try-restart, reload-or-restart, enable --now,
# and so the boot, which starts every enabled unit) the ExecStartPre= lines of
# the units' systemd drop-ins run as systemd runs them (see run_start_pre).
# Every call is recorded in /var/log/lab-systemctl.log.
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

load_unit() { # defines start/stop/active/reload/ORDER/DESCRIPTION/UNIT_NAMES for one unit
  unset -f start stop active reload
  ORDER=50 DESCRIPTION=$1 UNIT_NAMES=''

  reload() { stop && start; }
  if [ ! -f "$assets/services/$1.sh" ]; then
    echo "Unit $1.service not found." >&2
    return 5
  fi
  # shellcheck disable=SC1090
  . "$assets/services/$1.sh"
}

# systemd drop-ins, the part the lab uses: the ExecStartPre= lines of
# $dropin_dir/<name>.d/*.conf ([Service] section), for each real unit the
# stand-in stands for (UNIT_NAMES; an instance name@inst.service also reads the
# template's name@.service.d, after its own) and then its own <unit>.service.d.
# Files are merged by name in lexical order; of two with the same name the more
# specific directory's wins; an empty ExecStartPre= resets the list (as systemd
# does). Each line runs in order, arguments split with quotes honoured (no
# specifiers, no variables); a failure stops the start unless the command has
# the `-` prefix; the other prefixes (+ ! !! : @) have no effect here (all runs
# as root).
dropin_dir=/etc/systemd/system
run_start_pre() { # unit
  local u=$1 n d f base line cmd prefix ignore rc section names=() order=() pre=() argv=()
  local -A chosen=()
  for n in $UNIT_NAMES; do
    n=${n%.service}.service
    names+=("$n")
    case $n in *@?*.service) names+=("${n%%@*}@.service") ;; esac
  done
  names+=("$u.service")
  for n in "${names[@]}"; do
    d="$dropin_dir/$n.d"
    [ -d "$d" ] || continue
    for f in "$d"/*.conf; do
      [ -f "$f" ] || continue
      base=${f##*/}
      [ -n "${chosen[$base]:-}" ] || { chosen[$base]=$f; order+=("$base"); }
    done
  done
  [ ${#order[@]} -gt 0 ] || return 0
  while IFS= read -r base; do
    section=''
    while IFS= read -r line || [ -n "$line" ]; do
      line=${line%$'\r'}
      line=${line#"${line%%[![:space:]]*}"}
      case $line in
        '' | '#'* | ';'*) ;;
        '['*']') section=$line ;;
        ExecStartPre=*)
          [ "$section" = '[Service]' ] || continue
          cmd=${line#ExecStartPre=}
          if [ -z "${cmd//[[:space:]]/}" ]; then pre=(); else pre+=("$cmd"); fi ;;
      esac
    done < "${chosen[$base]}"
  done < <(printf '%s\n' "${order[@]}" | LC_ALL=C sort)
  for cmd in "${pre[@]}"; do
    prefix=${cmd%%[!@+!:-]*}
    cmd=${cmd#"$prefix"}
    ignore=0
    case $prefix in *-*) ignore=1 ;; esac
    argv=()
    if ! mapfile -d '' -t argv < <(printf '%s\n' "$cmd" | xargs printf '%s\0') || [ ${#argv[@]} -eq 0 ]; then
      echo "$u.service: cannot parse ExecStartPre=$cmd" >&2
      [ "$ignore" = 1 ] && continue
      return 1
    fi
    "${argv[@]}"
    rc=$?
    if [ "$rc" != 0 ]; then
      if [ "$ignore" = 1 ]; then echo "$u.service: ExecStartPre=$prefix$cmd exited $rc (ignored)" >&2; continue; fi
      echo "$u.service: ExecStartPre=$prefix$cmd exited $rc" >&2
      return 1
    fi
  done
  return 0
}

# a start as systemd makes it: the drop-ins' ExecStartPre lines, then the unit
start_unit() { run_start_pre "$1" && start; }

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
        start) active || start_unit "$u" || rc=1 ;;
        stop) ! active || stop || rc=1 ;;
        restart) { ! active || stop; } && start_unit "$u" || rc=1 ;;
        try-restart) ! active || { stop && start_unit "$u"; } || rc=1 ;;
        reload) if active; then reload || rc=1; else echo "$u.service is not active, cannot reload." >&2; rc=1; fi ;;
        reload-or-restart) if active; then reload || rc=1; else start_unit "$u" || rc=1; fi ;;
        status) do_status "$u" || rc=3 ;;
        is-active) if active; then say active; else say inactive; rc=3; fi ;;
        is-enabled) if [ -n "$(enabled_file "$u")" ]; then say enabled; else say disabled; rc=1; fi ;;
        enable)
          [ -n "$(enabled_file "$u")" ] || : > "$enabled_dir/$ORDER-$u"
          [ "$now" = 1 ] && { active || start_unit "$u" || rc=1; } ;;
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
