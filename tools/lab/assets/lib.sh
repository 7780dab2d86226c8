# Helpers for the lab's service definitions (sourced by systemctl.sh).

pid_alive() { # pidfile
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

stop_pidfile() { # pidfile timeout-seconds: TERM, wait, then KILL
  local pid i
  pid_alive "$1" || { rm -f "$1"; return 0; }
  pid=$(cat "$1")
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$1"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  rm -f "$1"
}

spawn_as() { # user pidfile logfile argv...: start a daemon in its own session
  local user=$1 pidfile=$2 logfile=$3
  shift 3
  (
    umask 027
    setsid setpriv --reuid "$user" --regid "$user" --init-groups -- "$@" < /dev/null >> "$logfile" 2>&1 &
    echo $! > "$pidfile"
  )
}

tk_wait_ready() { # restart-file pidfile timeout-seconds logfile: trapperkeeper's readiness
  local i
  for ((i = 0; i < $3; i++)); do
    if head -c1 "$1" 2>/dev/null | grep -q '^1'; then return 0; fi
    if ! pid_alive "$2"; then
      echo "the service died while starting; last lines of $4:" >&2
      tail -n 20 "$4" >&2
      return 1
    fi
    sleep 1
  done
  echo "the service did not become ready within $3 s (see $4)" >&2
  return 1
}
