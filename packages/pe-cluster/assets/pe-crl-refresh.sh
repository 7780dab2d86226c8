#!/bin/bash
# pe-crl-refresh: keeps this master's copy of the CA's CRL current. Installed
# by pe-cluster join (flows/crl-refresh.ts) on every secondary and run by the
# service manager (pe-crl-refresh.service) as a loop.
#
#   pe-crl-refresh --config FILE loop
#       refresh, then sleep INTERVAL seconds, forever (the config is re-read
#       before every refresh, so a new interval or primary needs no restart).
#   pe-crl-refresh --config FILE once
#       one refresh; exit 0 when the CRL in place is current (changed or not).
#   pe-crl-refresh --config FILE install CRL_FILE
#       the verification and swap of one refresh, for a CRL file at hand.
#   pe-crl-refresh --config FILE status
#       the last results (STATE_DIR/crl-refresh.status).
#
# One refresh: fetch the CRL from the current primary (SERVER: primary_cname,
# which follows the primary through a failover) over TLS, verified against the
# Puppet CA and authenticated with this host's own certificate; refuse it
# unless every CRL in it is signed by the CA and in its validity period
# (`openssl verify -crl_check_all`: its exit status is the truth, which is
# not so for `openssl crl -CAfile` in OpenSSL 3.0), and unless its CRL number
# is at least the number of the CRL in place; then swap it in atomically
# (a temporary file beside it, renamed; written as the directory's owner, so
# root never writes into a directory another user controls), mode kept.
# The web server is reloaded only when the content changed and it does not
# watch the file itself: puppetserver reloads ssl-crl-path on change when its
# bootstrap loads filesystem-watch-service (trapperkeeper-webserver-jetty9,
# TK-149; Debian's services.d/ca.cfg does), so then no reload is run.
#
# Config (written by pe-cluster; KEY=VALUE lines, nothing is evaluated):
#   SERVER PORT URL_PATH CA_CERT HOST_CERT HOST_KEY CRL INTERVAL STATE_DIR
#   SERVICES_D RELOAD_ARG (repeated: the reload command's argv)
#   CONNECT_TIMEOUT MAX_TIME
# Results: STATE_DIR/crl-refresh.status (KEY=VALUE: STARTED LAST_CHECK LAST_OK
# LAST_CHANGE CRL_NUMBER SERVER LAST_ERROR), log lines on stderr.
set -u
umask 077
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C

WATCHER=puppetlabs.trapperkeeper.services.watcher.filesystem-watch-service/filesystem-watch-service

usage() {
  echo 'usage: pe-crl-refresh --config FILE loop|once|status|install CRL_FILE' >&2
  exit 2
}
[ "${1:-}" = --config ] && [ $# -ge 3 ] || usage
conf=$2 mode=$3 arg=${4:-}

log() { printf 'pe-crl-refresh: %s\n' "$*" >&2; }
now() { date -u +%FT%TZ; }

read_config() {
  local line key val
  SERVER='' PORT=8140 URL_PATH=/puppet-ca/v1/certificate_revocation_list/ca CA_CERT='' HOST_CERT='' HOST_KEY=''
  CRL='' INTERVAL=300 STATE_DIR=/var/local/pe-cluster SERVICES_D='' CONNECT_TIMEOUT=5 MAX_TIME=30
  RELOAD=()
  [ -r "$conf" ] || { log "cannot read $conf"; return 1; }
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    case $line in '' | '#'*) continue ;; esac
    key=${line%%=*} val=${line#*=}
    [ "$key" != "$line" ] || continue
    case $key in
      SERVER | PORT | URL_PATH | CA_CERT | HOST_CERT | HOST_KEY | CRL | INTERVAL | STATE_DIR | SERVICES_D | CONNECT_TIMEOUT | MAX_TIME)
        printf -v "$key" '%s' "$val" ;;
      RELOAD_ARG) RELOAD+=("$val") ;;
      *) log "ignoring unknown setting $key in $conf" ;;
    esac
  done < "$conf"
  case $INTERVAL in '' | *[!0-9]* | 0) log "INTERVAL=$INTERVAL is not a number of seconds; using 300"; INTERVAL=300 ;; esac
  case $PORT in '' | *[!0-9]*) PORT=8140 ;; esac
  case $CONNECT_TIMEOUT in '' | *[!0-9]*) CONNECT_TIMEOUT=5 ;; esac
  case $MAX_TIME in '' | *[!0-9]*) MAX_TIME=30 ;; esac
  local k
  for k in SERVER CA_CERT HOST_CERT HOST_KEY CRL STATE_DIR; do
    [ -n "${!k}" ] || { log "$conf lacks $k"; return 1; }
  done
  return 0
}

# ---- the status file: KEY=VALUE lines, replaced whole ----

declare -A ST=()
load_status() {
  local line
  ST=()
  [ -r "$STATE_DIR/crl-refresh.status" ] || return 0
  while IFS= read -r line; do
    case $line in *=*) ST[${line%%=*}]=${line#*=} ;; esac
  done < "$STATE_DIR/crl-refresh.status"
}
save_status() {
  local k tmp
  mkdir -p -m 0755 "$STATE_DIR" || return 1
  tmp=$(mktemp "$STATE_DIR/.crl-refresh.status.XXXXXX") || return 1
  for k in STARTED LAST_CHECK LAST_OK LAST_CHANGE CRL_NUMBER SERVER LAST_ERROR; do
    printf '%s=%s\n' "$k" "${ST[$k]:-}"
  done > "$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$STATE_DIR/crl-refresh.status"
}

# ---- CRL numbers: hex without 0x or leading zeros, compared as numbers of any length ----

crl_number() { # file -> hex digits (upper case), empty when none
  openssl crl -in "$1" -noout -crlnumber 2> /dev/null | sed -n 's/^crlNumber=//p' | sed 's/^0x//; s/^0*//' | tr a-f A-F
}
crl_issuer() { openssl crl -in "$1" -noout -issuer 2> /dev/null; }
# 0 when hex a < hex b
hex_less() {
  local a=${1:-0} b=${2:-0}
  [ ${#a} -ne ${#b} ] && { [ ${#a} -lt ${#b} ]; return; }
  [[ $a < $b ]]
}

# ---- one refresh ----

fail() {
  ST[LAST_ERROR]="$*"
  log "$*"
  return 1
}

# the verified CRL file $1 swapped into $CRL (nothing happens when equal); sets CHANGED
install_crl() {
  local new=$1 out cur_num new_num
  CHANGED=0
  grep -q -- '-----BEGIN X509 CRL-----' "$new" || { fail "the CRL from $SERVER is not a PEM CRL"; return 1; }
  if ! out=$(openssl verify -crl_check_all -CAfile "$CA_CERT" -CRLfile "$new" "$HOST_CERT" 2>&1); then
    fail "the CRL from $SERVER does not verify against $CA_CERT: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-300)"
    return 1
  fi
  new_num=$(crl_number "$new")
  ST[CRL_NUMBER]=$new_num
  if [ -f "$CRL" ]; then
    cmp -s "$new" "$CRL" && return 0
    cur_num=$(crl_number "$CRL")
    if [ -n "$cur_num" ] && [ "$(crl_issuer "$CRL")" = "$(crl_issuer "$new")" ] && hex_less "$new_num" "$cur_num"; then
      ST[CRL_NUMBER]=$cur_num
      fail "the CRL from $SERVER (number $new_num) is older than the one in place (number $cur_num): kept"
      return 1
    fi
  fi
  swap_in "$new" || { fail "could not replace $CRL"; return 1; }
  CHANGED=1
  log "$CRL replaced by CRL number ${new_num:-?} from $SERVER (was ${cur_num:-none})"
}

# writes stdin to $CRL through a temporary file in its directory and a rename, as the user $1:$2 (or as we are)
write_as() {
  local uid=$1 gid=$2 filemode=$3 dir
  dir=$(dirname "$CRL")
  # shellcheck disable=SC2016
  local script='set -e; t=$(mktemp "$1/.crl.pem.XXXXXX"); trap '\''rm -f "$t"'\'' EXIT; cat > "$t"; chmod "$2" "$t"; mv -f "$t" "$3"; trap - EXIT'
  if [ "$uid" = "$(id -u)" ]; then
    sh -c "$script" sh "$dir" "$filemode" "$CRL"
  elif command -v setpriv > /dev/null 2>&1; then
    setpriv --reuid="$uid" --regid="$gid" --clear-groups -- sh -c "$script" sh "$dir" "$filemode" "$CRL"
  else
    log 'setpriv (util-linux) is needed to write as the owner of the CRL directory'
    return 1
  fi
}

swap_in() {
  local new=$1 dir filemode=0644 uid gid
  dir=$(dirname "$CRL")
  [ -d "$dir" ] || return 1
  [ -L "$CRL" ] && { log "$CRL is a symbolic link: not written through"; return 1; }
  uid=$(stat -c %u "$dir") gid=$(stat -c %g "$dir")
  if [ -f "$CRL" ]; then
    filemode=$(stat -c %a "$CRL")
    gid=$(stat -c %g "$CRL")
  fi
  if [ "$uid" = 0 ] && [ "$(id -u)" = 0 ]; then
    # a root-owned directory: root writes, then gives the file its old owner
    local owner=0 t
    [ -f "$CRL" ] && owner=$(stat -c %u "$CRL")
    t=$(mktemp "$dir/.crl.pem.XXXXXX") || return 1
    if cat "$new" > "$t" && chown "$owner:$gid" "$t" && chmod "$filemode" "$t" && mv -f "$t" "$CRL"; then return 0; fi
    rm -f "$t"
    return 1
  fi
  write_as "$uid" "$gid" "$filemode" < "$new"
}

server_watches_crl() {
  [ -n "$SERVICES_D" ] && [ -d "$SERVICES_D" ] || return 1
  grep -qsE "^[[:space:]]*${WATCHER//./\\.}[[:space:]]*(#.*)?\$" "$SERVICES_D"/*.cfg
}

reload_if_needed() {
  [ "$CHANGED" = 1 ] || return 0
  if server_watches_crl; then
    log 'puppetserver reloads the CRL itself (filesystem-watch-service): no reload'
    return 0
  fi
  [ ${#RELOAD[@]} -gt 0 ] || return 0
  local out
  if ! out=$("${RELOAD[@]}" 2>&1); then
    fail "the CRL changed but \`${RELOAD[*]}\` failed: $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ')"
    return 1
  fi
  log "reloaded: ${RELOAD[*]}"
}

refresh_once() {
  local work rc=0 err
  ST[LAST_CHECK]=$(now)
  ST[SERVER]=$SERVER
  ST[LAST_ERROR]=''
  work=$(mktemp -d "${TMPDIR:-/tmp}/pe-crl-refresh.XXXXXX") || { fail 'cannot make a temporary directory'; return 1; }
  if [ "$mode" = install ]; then
    cat -- "$arg" > "$work/crl.pem" || rc=1
    [ $rc = 0 ] || fail "cannot read $arg"
  elif ! err=$(curl -sS --fail --proto =https --connect-timeout "$CONNECT_TIMEOUT" --max-time "$MAX_TIME" \
    --cacert "$CA_CERT" --cert "$HOST_CERT" --key "$HOST_KEY" \
    -o "$work/crl.pem" "https://$SERVER:$PORT$URL_PATH" 2>&1); then
    fail "fetching the CRL from https://$SERVER:$PORT$URL_PATH failed: $(printf '%s' "$err" | tr '\n' ' ' | cut -c1-300)"
    rc=1
  fi
  if [ $rc = 0 ] && install_crl "$work/crl.pem" && reload_if_needed; then
    ST[LAST_OK]=${ST[LAST_CHECK]}
    [ "$CHANGED" = 1 ] && ST[LAST_CHANGE]=${ST[LAST_CHECK]}
  else
    rc=1
  fi
  rm -rf "$work"
  save_status || log "cannot write $STATE_DIR/crl-refresh.status"
  return $rc
}

case $mode in
  once | install)
    [ "$mode" != install ] || [ -n "$arg" ] || usage
    read_config || exit 1
    load_status
    refresh_once
    exit $? ;;
  status)
    read_config || exit 1
    cat "$STATE_DIR/crl-refresh.status" 2> /dev/null || { echo "no refresh has run yet ($STATE_DIR/crl-refresh.status)"; exit 3; }
    exit 0 ;;
  loop)
    sleeper=''
    trap '[ -z "$sleeper" ] || kill "$sleeper" 2> /dev/null; exit 0' TERM INT
    read_config || exit 1
    load_status
    ST[STARTED]=$(now)
    log "started: every $INTERVAL s from https://$SERVER:$PORT$URL_PATH into $CRL"
    while :; do
      if read_config; then
        refresh_once || :
      else
        ST[LAST_CHECK]=$(now) ST[LAST_ERROR]="cannot read $conf"
        save_status || :
      fi
      sleep "$INTERVAL" &
      sleeper=$!
      wait "$sleeper" || :
      sleeper=''
    done ;;
  *) usage ;;
esac
