#!/usr/bin/env bash
# Three ferry nodes behind HAProxy, each node in a network namespace of its
# own with its own address, HAProxy and the clients in a fourth; nothing
# listens outside these namespaces. While wrk and a set of downloads run,
# every node is upgraded in turn (SIGUSR2) and then one node is drained
# (SIGTERM). Passes when no request failed and every download is intact.
#
#   sudo scripts/scale-out.sh [--ferry PATH] [--model MODEL] [--seconds N] [--keep]
#
# Needs: root (network namespaces), haproxy, wrk, curl, sha256sum.
# Exit status: 0 pass, 1 fail, 77 cannot run here (the message says why).
set -euo pipefail

FERRY=${FERRY:-target/release/ferry}
MODEL=multi-reactor
SECONDS_LOAD=12
KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
        --ferry) FERRY=$2; shift 2 ;;
        --model) MODEL=$2; shift 2 ;;
        --seconds) SECONDS_LOAD=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "scale-out: unknown argument $1" >&2; exit 2 ;;
    esac
done

skip() { echo "scale-out: cannot run here: $*" >&2; exit 77; }
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
for tool in haproxy wrk curl sha256sum ip; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (Debian: apt-get install haproxy wrk curl iproute2)"
done
[ -x "$FERRY" ] || skip "no ferry binary at $FERRY (cargo build --release, or --ferry PATH)"
FERRY=$(realpath "$FERRY")

TAG=$$
LB=fylb$TAG
NODES=(1 2 3)
WORK=$(mktemp -d /tmp/ferry-scale-out.XXXXXX)
declare -a NODE_PIDS=()
LB_PID=

log() { printf 'scale-out: %s\n' "$*" >&2; }
fail() {
    log "FAIL: $*"
    for f in "$WORK"/n*.err "$WORK"/haproxy.log; do
        [ -s "$f" ] && { echo "--- $(basename "$f") (last lines)"; tail -n 15 "$f"; } >&2
    done
    exit 1
}

cleanup() {
    set +e
    [ "$KEEP" = 1 ] && log "keeping $WORK"
    exec 2>/dev/null # the shell's "Killed" notices of its own jobs
    [ -n "$LB_PID" ] && kill "$LB_PID" 2>/dev/null
    for i in "${NODES[@]}"; do
        [ -f "$WORK/n$i.pid" ] && kill -KILL "$(cat "$WORK/n$i.pid")" 2>/dev/null
        ip netns del "fyn$i$TAG" 2>/dev/null
    done
    jobs -p | xargs -r kill 2>/dev/null
    ip netns del "$LB" 2>/dev/null
    [ "$KEEP" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

in_lb() { ip netns exec "$LB" "$@"; }
node_ip() { echo "10.77.$1.2"; }

# --- the served tree: the same directory for every node (the shared storage)
mkdir -p "$WORK/root" "$WORK/out"
head -c 32M /dev/urandom >"$WORK/root/big.bin"
printf 'hello from the ferry cluster\n' >"$WORK/root/small.txt"
BIG_SUM=$(sha256sum <"$WORK/root/big.bin" | cut -d' ' -f1)

# --- namespaces: lb <-> node i over a veth pair, 10.77.i.1 <-> 10.77.i.2
ip netns add "$LB" 2>/dev/null || skip "cannot create a network namespace (ip netns add): no CAP_SYS_ADMIN here?"
in_lb ip link set lo up
for i in "${NODES[@]}"; do
    ns=fyn$i$TAG
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$LB" link add "l$i$TAG" type veth peer name "n$i$TAG" netns "$ns"
    ip -n "$LB" addr add "10.77.$i.1/24" dev "l$i$TAG"
    ip -n "$ns" addr add "$(node_ip "$i")/24" dev "n$i$TAG"
    ip -n "$LB" link set "l$i$TAG" up
    ip -n "$ns" link set "n$i$TAG" up
done

# --- nodes
start_node() {
    local i=$1 ip
    ip=$(node_ip "$i")
    ip netns exec "fyn$i$TAG" "$FERRY" serve "$WORK/root" --model "$MODEL" \
        --http "$ip:8080" --files "$ip:7070" --metrics "$ip:9090" \
        --pid-file "$WORK/n$i.pid" \
        >"$WORK/n$i.out" 2>"$WORK/n$i.err" &
}
alive() { # PID: running (a zombie child of this script is not)
    [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat"
}
wait_for() { # SECS DESCRIPTION COMMAND...
    local secs=$1 what=$2; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || fail "timed out waiting for $what"
        sleep 0.1
    done
}
for i in "${NODES[@]}"; do start_node "$i"; done
for i in "${NODES[@]}"; do
    wait_for 10 "node $i" ip netns exec "fyn$i$TAG" curl -fsS "http://$(node_ip "$i"):9090/healthz"
done
log "3 nodes up: $(for i in "${NODES[@]}"; do printf '%s ' "$(node_ip "$i")"; done)"

# --- HAProxy in the lb namespace
cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn 4096
defaults
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch
frontend http_in
    mode http
    bind 127.0.0.1:8080
    default_backend ferry_http
backend ferry_http
    mode http
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
    retry-on all-retryable-errors
    default-server check port 9090 inter 200ms fall 1 rise 2
$(for i in "${NODES[@]}"; do echo "    server n$i $(node_ip "$i"):8080"; done)
frontend files_in
    mode tcp
    bind 127.0.0.1:7070
    default_backend ferry_files
backend ferry_files
    mode tcp
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
    default-server check port 9090 inter 200ms fall 1 rise 2
$(for i in "${NODES[@]}"; do echo "    server n$i $(node_ip "$i"):7070"; done)
listen stats
    mode http
    bind 127.0.0.1:8404
    stats enable
    stats uri /stats
EOF
in_lb haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
LB_PID=$!
servers_up() { # N: at least N servers UP in both backends
    local csv
    csv=$(in_lb curl -fsS 'http://127.0.0.1:8404/stats;csv') || return 1
    [ "$(grep -c '^ferry_http,n[0-9],.*,UP,' <<<"$csv")" -ge "$1" ] &&
        [ "$(grep -c '^ferry_files,n[0-9],.*,UP,' <<<"$csv")" -ge "$1" ]
}
wait_for 10 "HAProxy to see 3 nodes up" servers_up 3
log "HAProxy up, 3 servers healthy in both backends"

# --- load: wrk on a small file, slow HTTP downloads, repeated file-protocol gets
in_lb wrk -t1 -c16 -d"${SECONDS_LOAD}s" http://127.0.0.1:8080/small.txt >"$WORK/wrk.out" 2>&1 &
WRK=$!
declare -a DL=()
for k in 1 2 3 4; do
    in_lb curl -fsS --limit-rate 4M -o "$WORK/out/http$k.bin" http://127.0.0.1:8080/big.bin &
    DL+=($!)
done
( n=0; end=$((SECONDS + SECONDS_LOAD - 2)); while [ $SECONDS -lt $end ]; do
      n=$((n + 1))
      in_lb "$FERRY" get 127.0.0.1:7070 big.bin "$WORK/out/files$n.bin" -s || exit 1
  done ) &
GETS=$!

new_process() { [ "$(cat "$WORK/n$1.pid")" != "$2" ] && ! alive "$2"; }
gone() { ! alive "$1"; }

# --- rolling upgrade: SIGUSR2 on each node in turn; the pid file names the new process
downloads_started() { for k in 1 2 3 4; do [ -s "$WORK/out/http$k.bin" ] || return 1; done; }
wait_for 10 "the downloads to start" downloads_started
for i in "${NODES[@]}"; do
    old=$(cat "$WORK/n$i.pid")
    kill -USR2 "$old"
    wait_for 15 "node $i's new process" new_process "$i" "$old"
    wait_for 10 "HAProxy to see node $i again" servers_up 3
    log "node $i upgraded: pid $old -> $(cat "$WORK/n$i.pid")"
done

# --- drain one node: SIGTERM; /healthz says 503 first, HAProxy stops sending, in-flight transfers finish
victim=${NODES[2]}
victim_pid=$(cat "$WORK/n$victim.pid")
kill -TERM "$victim_pid"
wait_for 40 "node $victim to drain and exit" gone "$victim_pid"
log "node $victim drained and exited"

# --- verdict
ok=1
wait "$WRK" || { ok=0; log "wrk failed"; }
for p in "${DL[@]}"; do wait "$p" || { ok=0; log "an HTTP download failed"; }; done
wait "$GETS" || { ok=0; log "a file-protocol get failed"; }
cat "$WORK/wrk.out" >&2
if grep -qE 'Non-2xx|Socket errors' "$WORK/wrk.out"; then ok=0; log "wrk saw failed requests"; fi
grep -q 'requests in' "$WORK/wrk.out" || { ok=0; log "wrk printed no result"; }
count=0
for f in "$WORK"/out/*.bin; do
    count=$((count + 1))
    [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$BIG_SUM" ] || { ok=0; log "download $(basename "$f") differs"; }
done
log "$count downloads checked ($(grep -o '[0-9]* requests in' "$WORK/wrk.out" || echo '?'))"
[ "$ok" = 1 ] || fail "see above"
log "PASS: rolling upgrade of 3 nodes and a drain under load, no failed request, every download intact"
