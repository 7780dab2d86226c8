#!/bin/bash
# pe-cluster-guard: the boot-time fence of a Puppet master. Installed by
# pe-cluster (flows/guard.ts) on every master and run by the service manager
# before puppetserver and PostgreSQL start (systemd drop-ins,
# ExecStartPre=+... so it runs as root).
#
#   pe-cluster-guard [--config FILE] puppetserver|postgresql
#       before a start: a host fenced earlier stays fenced; a host that would
#       start as the CA first asks every other master whether one of them is
#       the active, signing CA now, and if so fences itself (CA disabled,
#       PostgreSQL marked and given standby.signal: it starts read-only, in
#       recovery, never as a primary). Nobody answers: starts unchanged.
#   pe-cluster-guard [--config FILE] check
#       the same decision, printed; changes nothing.
#   pe-cluster-guard [--config FILE] allow SECONDS
#       pe-cluster makes this host the CA on purpose (failover): starts within
#       SECONDS are not probed (the old CA may still answer until it is restarted).
#
# Never blocks a start for long (every probe is bounded, peers are asked in
# parallel) and never fails a start because a probe failed; it refuses a start
# only when it found another active CA and could not fence this host.
# Config (written by pe-cluster; KEY=VALUE lines, nothing is evaluated):
#   CERTNAME  PEER=<certname> [address] (repeated)  PORT  CA_PATH  CSR_PATH
#   VERIFY_CA  CA_SWITCH_KIND=services|ini  CA_SWITCH_FILE  CA_SWITCH_SECTION
#   CA_SWITCH_KEY  AUTH_CONF  GATE  PG_DATA  PG_USER  STATE_DIR
#   CONNECT_TIMEOUT  MAX_TIME
set -u
umask 077
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C

CA_SERVICE=puppetlabs.services.ca.certificate-authority-service/certificate-authority-service
CA_DISABLED_SERVICE=puppetlabs.services.ca.certificate-authority-disabled-service/certificate-authority-disabled-service
FENCE_MARKER=pe-db.fenced

conf=/etc/pe-cluster/guard.conf
if [ "${1:-}" = --config ]; then
  conf=${2:-}
  shift 2 2> /dev/null || shift $#
fi
mode=${1:-}

CERTNAME=$(hostname -f 2> /dev/null || hostname)
PORT=8140 CA_PATH=/puppet-ca/v1/certificate/ca CSR_PATH=/puppet-ca/v1/certificate_request/pe-cluster-guard-probe
VERIFY_CA='' CA_SWITCH_KIND='' CA_SWITCH_FILE='' CA_SWITCH_SECTION=master CA_SWITCH_KEY=ca
AUTH_CONF='' GATE='' PG_DATA='' PG_USER=postgres STATE_DIR=${PE_CLUSTER_GUARD_STATE_DIR:-/var/local/pe-cluster}
CONNECT_TIMEOUT=1 MAX_TIME=2
PEERS=()

log() {
  printf 'pe-cluster-guard: %s\n' "$*" >&2
  if command -v logger > /dev/null 2>&1; then timeout 2 logger -t pe-cluster-guard -- "$*" > /dev/null 2>&1 || :; fi
  { mkdir -p -m 0755 "$STATE_DIR" && printf '%s %s %s\n' "$(date -u +%FT%TZ)" "${mode:-?}" "$*" >> "$STATE_DIR/guard.log"; } 2> /dev/null || :
}

read_config() {
  local line key val
  [ -r "$conf" ] || return 1
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    case $line in '' | '#'*) continue ;; esac
    key=${line%%=*} val=${line#*=}
    [ "$key" != "$line" ] || continue
    case $key in
      CERTNAME | PORT | CA_PATH | CSR_PATH | VERIFY_CA | CA_SWITCH_KIND | CA_SWITCH_FILE | CA_SWITCH_SECTION | CA_SWITCH_KEY | AUTH_CONF | GATE | PG_DATA | PG_USER | STATE_DIR | CONNECT_TIMEOUT | MAX_TIME)
        printf -v "$key" '%s' "$val" ;;
      PEER) PEERS+=("$val") ;;
      *) log "ignoring unknown setting $key in $conf" ;;
    esac
  done < "$conf"
  case $CONNECT_TIMEOUT in '' | *[!0-9.]*) CONNECT_TIMEOUT=1 ;; esac
  case $MAX_TIME in '' | *[!0-9]*) MAX_TIME=2 ;; esac
  case $PORT in '' | *[!0-9]*) PORT=8140 ;; esac
  return 0
}

trim_awk='function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }'

# 0: the CA switch says this host runs the CA; 1: it does not (or there is no switch)
ca_switched_on() {
  [ -n "$CA_SWITCH_FILE" ] && [ -f "$CA_SWITCH_FILE" ] || return 1
  case $CA_SWITCH_KIND in
    services)
      awk -v on="$CA_SERVICE" "$trim_awk"' { if (trim($0) == on) f = 1 } END { exit !f }' "$CA_SWITCH_FILE" ;;
    ini)
      # Puppet's default: a master is its own CA unless `ca = false`
      awk -v sec="$CA_SWITCH_SECTION" -v key="$CA_SWITCH_KEY" "$trim_awk"'
        { t = trim($0) }
        t ~ /^\[.*\]$/ { cur = trim(substr(t, 2, length(t) - 2)); next }
        cur == sec && t !~ /^[#;]/ && index(t, "=") > 0 {
          k = trim(substr(t, 1, index(t, "=") - 1)); if (k == key) v = trim(substr(t, index(t, "=") + 1))
        }
        END { exit (v == "false") }' "$CA_SWITCH_FILE" ;;
    *) return 1 ;;
  esac
}

# 0: pe-cluster's gate (an auth.conf rule that denies every signing endpoint) is in place
ca_gated() {
  [ -n "$GATE" ] && [ -n "$AUTH_CONF" ] && [ -f "$AUTH_CONF" ] && grep -qF -- "$GATE" "$AUTH_CONF"
}

# Replaces FILE by the content of NEW (a file in the same directory) atomically,
# keeping owner and mode, with a backup named as pe-host names them; no-op if equal.
# FILE and NEW are names in the current directory (disable_ca enters it).
replace_file() {
  local f=$1 new=$2
  if cmp -s -- "$f" "$new"; then rm -f -- "$new"; return 0; fi
  chown --reference="$f" -- "$new" && chmod --reference="$f" -- "$new" &&
    cp -p -- "$f" "$f.pe-backup-$(date -u +%Y%m%dT%H%M%S%3NZ)" && sync -- "$new" 2> /dev/null
  mv -f -- "$new" "$f" || { rm -f -- "$new"; return 1; }
}

# The same edit pe-config-files makes (ServicesDocument.setCa(false), ini set ca=false).
# Every step names the file relative to its directory, entered once (cd -P): a user
# owning a directory above it (Debian's puppet owns /etc/puppet/puppetserver) can
# move that directory, but not change the entries of this one, which must be
# root's alone; the names below then stay in the directory that was checked.
disable_ca() {
  local f=$CA_SWITCH_FILE
  ca_switched_on || return 0
  (
    cd -P -- "$(dirname -- "$f")" || exit 1
    read -r uid mode < <(stat -c '%u %a' -- .) || exit 1
    [ "$uid" = 0 ] && (((8#$mode & 8#022) == 0)) || {
      log "not editing $f: its directory can be changed by a user other than root"
      exit 1
    }
    name=${f##*/}
    new=$(mktemp "./.$name.pe-tmp-guard-XXXXXX") || exit 1
    ca_disabled_text "$name" > "$new" && replace_file "$name" "$new"
  ) || return 1
  ! ca_switched_on
}

# FILE with the CA switched off, on stdout.
ca_disabled_text() { # file
  local f=$1
  case $CA_SWITCH_KIND in
    services)
      awk -v on="$CA_SERVICE" -v off="$CA_DISABLED_SERVICE" "$trim_awk"'
        { line[++n] = $0 }
        END {
          for (i = 1; i <= n; i++) {
            t = trim(line[i])
            if (t == on) { p = index(line[i], on); line[i] = substr(line[i], 1, p - 1) "#" substr(line[i], p) }
            else if (t == off) has = 1
          }
          if (!has) {
            for (i = 1; i <= n && !has; i++) if (line[i] ~ /^[ \t]*#+[ \t]*[^ \t]+[ \t\r]*$/) {
              name = line[i]; sub(/^[ \t]*#+[ \t]*/, "", name); name = trim(name)
              if (name == off) { ind = line[i]; sub(/#.*$/, "", ind); line[i] = ind off; has = 1 }
            }
            if (!has) line[++n] = off
          }
          for (i = 1; i <= n; i++) print line[i]
        }' "$f" ;;
    ini)
      awk -v sec="$CA_SWITCH_SECTION" -v key="$CA_SWITCH_KEY" "$trim_awk"'
        { line[++n] = $0 }
        END {
          for (i = 1; i <= n; i++) {
            t = trim(line[i])
            if (t ~ /^\[.*\]$/) { cur = trim(substr(t, 2, length(t) - 2)); if (cur == sec && !at) at = i; continue }
            if (cur == sec && t !~ /^[#;]/ && index(t, "=") > 0 && trim(substr(t, 1, index(t, "=") - 1)) == key) {
              match(line[i], /=[ \t]*/); line[i] = substr(line[i], 1, RSTART + RLENGTH - 1) "false"; done = 1
            }
          }
          for (i = 1; i <= n; i++) { print line[i]; if (i == at && !done) print "    " key " = false" }
          if (!at) { print "[" sec "]"; print "    " key " = false" }
        }' "$f" ;;
    *) return 1 ;;
  esac
}

json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

marker_path() {
  if [ -n "$PG_DATA" ] && [ -d "$PG_DATA" ]; then printf '%s/%s' "$PG_DATA" "$FENCE_MARKER"; else printf '%s/fenced' "$STATE_DIR"; fi
}

# Who may write a file for OWNER into the real directory DIR with no race,
# printed: `root` when no one else can add, rename or swap an entry of DIR or
# of a directory above it (each owned by root; DIR writable by root alone;
# above it, world-writable only if sticky as /tmp, group-writable only by root
# or by Debian's `staff`, the group of /usr/local where this script lives and
# so already root's equal); OWNER when DIR belongs to OWNER: the write then
# runs as OWNER, so a link OWNER plants leads only where OWNER may write
# anyway. Fails otherwise: root must not write into a directory a third user
# controls.
writer_for() { # real-dir owner
  local d=$1 dirs=() out uid gid mode user group first=1
  while [ "$d" != / ]; do dirs+=("$d") d=${d%/*} d=${d:-/}; done
  dirs+=(/)
  # one stat for DIR and every directory above it, DIR first
  out=$(stat -c '%u %g %a %U %G' -- "${dirs[@]}" 2> /dev/null) || return 1
  while read -r uid gid mode user group; do
    if [ -n "$first" ]; then
      first=''
      if [ "$uid" != 0 ] && [ "$user" = "$2" ]; then printf '%s' "$2"; return 0; fi
      [ "$uid" = 0 ] && (((8#$mode & 8#022) == 0)) || return 1
      continue
    fi
    [ "$uid" = 0 ] || return 1
    (((8#$mode & 8#002) == 0 || (8#$mode & 8#1000) != 0)) || return 1
    (((8#$mode & 8#020) == 0)) || [ "$gid" = 0 ] || [ "$group" = staff ] || return 1
  done <<< "$out"
  printf root
}

# Runs a command as USER (and USER's groups), with stdin passed on.
as_user() { # user command...
  local u=$1
  shift
  if command -v setpriv > /dev/null 2>&1; then
    setpriv --reuid="$u" --regid="$(id -g -- "$u")" --init-groups -- "$@"
  elif command -v runuser > /dev/null 2>&1; then
    runuser -u "$u" -- "$@"
  else
    su -s /bin/bash -c "$(printf '%q ' "$@")" "$u"
  fi
}

# stdin to DIR/NAME: a new temp file beside it (mktemp: a random name, created
# O_EXCL, 0600), given to OWNER when one is named (root only, in a directory no
# one else can change), synced, renamed over NAME (rename replaces a link at
# NAME, never writes through it; -T: never into a directory of that name).
# shellcheck disable=SC2016 # expanded by the shell that runs it
WRITE_HERE='umask 077; new=$(mktemp -- "$1/.$2.pe-tmp-guard-XXXXXX") || exit 1
if cat > "$new" && { [ -z "$3" ] || chown -- "$3:" "$new"; }; then
  sync -- "$new" 2> /dev/null; mv -fT -- "$new" "$1/$2" && exit 0
fi
rm -f -- "$new"; exit 1'

# A file written whole (owner OWNER, mode 0600): temp beside it, rename. Done as
# root only where no other user can change the directory, else as OWNER when
# the directory is OWNER's (PostgreSQL's data directory), else refused. Root
# never opens, chowns or chmods by path a name another user could swap for a
# link between two calls (that handed a root-owned file to the directory's
# owner: chown follows links, and so does `>`).
write_new() { # path owner content
  local dir name=${1##*/} who
  dir=$(readlink -f -- "${1%/*}/") && [ -d "$dir" ] || return 1
  if ! who=$(writer_for "$dir" "$2"); then
    log "not writing $1: $dir (or a directory above it) can be changed by a user other than root and $2"
    return 1
  fi
  if [ "$who" = root ]; then
    printf '%s' "$3" | bash -c "$WRITE_HERE" write_here "$dir" "$name" "$2"
  else
    printf '%s' "$3" | as_user "$who" bash -c "$WRITE_HERE" write_here "$dir" "$name" ''
  fi
}

# PostgreSQL starts in recovery (read-only), never as a primary
pg_recovery_file() {
  [ -n "$PG_DATA" ] && [ -d "$PG_DATA" ] || return 0
  local major
  major=$(cut -d. -f1 "$PG_DATA/PG_VERSION" 2> /dev/null)
  if [ -n "$major" ] && [ "$major" -lt 12 ] 2> /dev/null; then
    grep -qs "^[[:space:]]*standby_mode[[:space:]]*=[[:space:]]*'\?on" "$PG_DATA/recovery.conf" ||
      write_new "$PG_DATA/recovery.conf" "$PG_USER" "# pe-cluster-guard: fenced at boot; rebuild with pe-cluster rejoin
standby_mode = 'on'
"
  else
    [ -e "$PG_DATA/standby.signal" ] || write_new "$PG_DATA/standby.signal" "$PG_USER" ''
  fi
}

fence() { # peer
  local peer=$1 m owner=root rc=0 rec
  m=$(marker_path)
  if [ ! -e "$m" ]; then
    [ "$m" = "$PG_DATA/$FENCE_MARKER" ] && owner=$PG_USER
    mkdir -p -m 0755 "$(dirname -- "$m")" 2> /dev/null
    rec="{
  \"host\": $(json_str "$CERTNAME"),
  \"dataDir\": $(json_str "$PG_DATA"),
  \"at\": $(json_str "$(date -u +%FT%T.%3NZ)"),
  \"newPrimary\": $(json_str "$peer"),
  \"how\": \"stopped\",
  \"reason\": $(json_str "pe-cluster-guard: fenced at boot: $peer is the active CA")
}
"
    write_new "$m" "$owner" "$rec" || { log "could not write the fence marker $m"; rc=1; }
  fi
  disable_ca || { log "could not disable the CA in $CA_SWITCH_FILE"; rc=1; }
  pg_recovery_file || { log "could not give PostgreSQL in $PG_DATA a standby.signal"; rc=1; }
  return $rc
}

# prints the HTTP status of GET PATH on a peer (000: no answer)
http_code() { # name address path
  local name=$1 addr=$2 path=$3 res=() code
  if [ -n "$addr" ]; then
    case $addr in *:*) addr="[$addr]" ;; esac
    res=(--resolve "$name:$PORT:$addr")
  fi
  code=$(timeout -k 1 $((MAX_TIME + 1)) curl -q -s -o /dev/null -w '%{http_code}' --noproxy '*' \
    --connect-timeout "$CONNECT_TIMEOUT" --max-time "$MAX_TIME" --cacert "$VERIFY_CA" \
    "${res[@]}" "https://$name:$PORT$path" 2> /dev/null)
  case $code in [0-9][0-9][0-9]) printf '%s' "$code" ;; *) printf 000 ;; esac
}

# one line per peer: "name ca=NNN csr=NNN active|not"
probe_peer() {
  local name=$1 addr=${2:-} ca csr=-
  ca=$(http_code "$name" "$addr" "$CA_PATH")
  if [ "$ca" = 200 ]; then
    csr=$(http_code "$name" "$addr" "$CSR_PATH")
    # a gated warm standby denies every signing endpoint (403): it does not count
    [ "$csr" != 403 ] && { printf '%s ca=%s csr=%s active\n' "$name" "$ca" "$csr"; return; }
  fi
  printf '%s ca=%s csr=%s not\n' "$name" "$ca" "$csr"
}

probe_all() { # prints one line per peer, in config order
  local dir i=0 p name addr
  dir=$(mktemp -d) || return 1
  for p in "${PEERS[@]}"; do
    read -r name addr _ <<< "$p"
    if ! [[ $name =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] || [[ $addr =~ [^0-9A-Fa-f.:] ]]; then
      printf '%s ca=invalid csr=- not\n' "$name" > "$dir/$i"
    else
      probe_peer "$name" "$addr" > "$dir/$i" &
    fi
    i=$((i + 1))
  done
  wait
  for ((p = 0; p < i; p++)); do cat "$dir/$p" 2> /dev/null; done
  rm -rf -- "$dir"
}

allowed_until() { # prints the epoch until which starts are allowed, if in the future
  local until now
  [ -r "$STATE_DIR/allow-start" ] && read -r until < "$STATE_DIR/allow-start" || return 1
  now=$(date +%s)
  case $until in '' | *[!0-9]*) return 1 ;; esac
  [ "$until" -gt "$now" ] && printf '%s' "$until"
}

main() {
  local t0 results active='' until
  case $mode in
    puppetserver | postgresql | check) ;;
    allow)
      read_config || :
      case ${2:-} in '' | *[!0-9]*) log "allow needs SECONDS"; return 2 ;; esac
      mkdir -p -m 0755 "$STATE_DIR" && write_new "$STATE_DIR/allow-start" root "$(($(date +%s) + $2))
" || return 1
      log "pe-cluster makes this host the CA: starts until $(date -u -d "@$(($(date +%s) + $2))" +%FT%TZ) are not probed"
      return 0 ;;
    *) log "usage: pe-cluster-guard [--config FILE] puppetserver|postgresql|check|allow SECONDS"; return 0 ;;
  esac
  if ! read_config; then
    log "no readable config $conf: nothing to check"
    return 0
  fi
  local m
  m=$(marker_path)
  if [ -e "$m" ] || [ -e "$STATE_DIR/fenced" ]; then
    [ -e "$m" ] || m=$STATE_DIR/fenced
    if [ "$mode" = check ]; then echo "fenced: $m"; return 0; fi
    if ca_switched_on || { [ -n "$PG_DATA" ] && [ -d "$PG_DATA" ] && [ ! -e "$PG_DATA/standby.signal" ] && [ ! -e "$PG_DATA/recovery.conf" ]; }; then
      log "this host is fenced ($m): keeping the CA disabled and PostgreSQL in recovery; run \`pe-cluster rejoin $CERTNAME\`"
    fi
    disable_ca || { log "could not disable the CA in $CA_SWITCH_FILE"; [ "$mode" = puppetserver ] && return 75; }
    pg_recovery_file || { log "could not give PostgreSQL in $PG_DATA a standby.signal"; [ "$mode" = postgresql ] && return 75; }
    return 0
  fi
  if ! ca_switched_on; then [ "$mode" != check ] || echo "not a CA: unchanged"; return 0; fi
  if ca_gated; then [ "$mode" != check ] || echo "gated CA: unchanged"; return 0; fi
  if until=$(allowed_until); then
    [ "$mode" = check ] && { echo "allowed until $until: unchanged"; return 0; }
    log "pe-cluster made this host the CA (allowed until $(date -u -d "@$until" +%FT%TZ)): not probing"
    return 0
  fi
  if [ ${#PEERS[@]} -eq 0 ]; then [ "$mode" != check ] || echo "no peers: unchanged"; return 0; fi
  if [ -z "$VERIFY_CA" ] || [ ! -r "$VERIFY_CA" ]; then
    log "cannot verify peers without the CA certificate ${VERIFY_CA:-(unset)}: starting unchanged"
    return 0
  fi
  t0=$(date +%s%N)
  results=$(probe_all)
  active=$(awk '$NF == "active" { print $1; exit }' <<< "$results")
  local ms=$((($(date +%s%N) - t0) / 1000000))
  if [ "$mode" = check ]; then
    printf '%s\n' "$results"
    if [ -n "$active" ]; then echo "would fence: $active is the active CA"; else echo "unchanged"; fi
    return 0
  fi
  if [ -z "$active" ]; then
    log "no other active CA (${ms} ms: $(tr '\n' ';' <<< "$results" | sed 's/;$//')): starting unchanged"
    return 0
  fi
  if fence "$active"; then
    log "$active is the active CA; this host was fenced at boot; run \`pe-cluster rejoin $CERTNAME\`"
    return 0
  fi
  log "$active is the active CA, and fencing this host failed: refusing to start $mode"
  return 75
}

# sourced (tests): the functions only
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

# a bug (an unset variable, a failed command) must not fail the start: only a
# decided refusal (75) does; `allow` reports its own status
( main "$@" )
rc=$?
[ "$mode" = allow ] && exit $rc
[ "$rc" = 75 ] && exit 1
exit 0
