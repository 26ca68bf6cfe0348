#!/usr/bin/env bash
# HTTPS benchmark: ferry serve --tls-* (multi-reactor by default) side by
# side with Debian's nginx, same certificate (ECDSA P-256, made by ferry's
# --tls-self-signed), TLS 1.3 with TLS_AES_128_GCM_SHA256 on both (the
# clients offer only that suite), over loopback, alternating runs.
#
#   scripts/bench-https.sh                 # 3 runs of each cell
#   RUNS=5 FERRY_ARGS="--model uring" scripts/bench-https.sh
#
# Cells:
#   cpu    server CPU time per request (utime+stime of every process of the
#          server from /proc/PID/stat), 13-byte file, keep-alive, wrk with
#          64 connections for DURATION (5 s); the handshakes are amortised
#   huge   one curl download of a 256 MiB file: MB/s and server CPU seconds
#   handshake
#          new TLS connections: HS_CONC (8) `openssl s_time -new` loops
#          in parallel for DURATION, each connection a full handshake (no
#          resumption), one GET of the 13-byte file over HTTP/1.0, closed
#          by the server: handshakes/s, server CPU per handshake and
#          handshakes per second of server CPU (per server core)
#   memory RSS growth (sum over the server's processes) of a fresh server
#          holding IDLE_CONNS (2000) idle TLS connections, each having
#          completed a handshake and one keep-alive request, per connection
#
#   ONLY="handshake memory" RUNS=5 scripts/bench-https.sh   # some cells
#
# Needs nginx, wrk, curl, openssl, python3. Files live in /dev/shm.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-5s}
WORKERS=${WORKERS:-$(nproc)}
FERRY_ARGS=${FERRY_ARGS:-}
ONLY=${ONLY:-cpu huge handshake memory}
HS_CONC=${HS_CONC:-8}
IDLE_CONNS=${IDLE_CONNS:-2000}
for tool in nginx wrk curl openssl python3; do
    command -v "$tool" >/dev/null || { echo "bench-https: $tool is missing" >&2; exit 1; }
done
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release -q -p ferry --bin ferry
ferry=$PWD/target/release/ferry
work=$(mktemp -d /dev/shm/ferry-bench-https.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
chmod 755 "$work"
mkdir -p "$work/root" "$work/state"
printf 'Hello, world!' >"$work/root/hello.txt"
head -c 256M /dev/urandom >"$work/root/256m.bin"
# Clients (wrk and curl link OpenSSL) offer only TLS 1.3 AES-128-GCM.
cat >"$work/openssl.cnf" <<'CNF'
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1.3
Ciphersuites = TLS_AES_128_GCM_SHA256
CNF
export OPENSSL_CONF=$work/openssl.cnf

# start_ferry NAME / start_nginx NAME: start a server, set NAME_pid and
# NAME_addr. Every ferry shares the state directory, so the certificate
# made by the first one is served by all of them and by nginx.
start_ferry() {
    local out=$work/$1.out
    "$ferry" serve "$work/root" --files off --http 127.0.0.1:0 --io-threads "$WORKERS" $FERRY_ARGS \
        --tls-self-signed --state-dir "$work/state" -q >"$out" 2>"$work/$1.err" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do grep -q "listening on" "$out" 2>/dev/null && break; sleep 0.05; done
    local addr
    addr=$(sed -n 's/^ferry: http listening on //p' "$out")
    [ -n "$addr" ] || { echo "ferry did not start: $(cat "$work/$1.err")" >&2; exit 1; }
    printf -v "$1_pid" %s "$pid"
    printf -v "$1_addr" %s "$addr"
}
start_nginx() {
    local dir=$work/$1 port
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes $WORKERS;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 20000; use epoll; }
http {
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 100000000;
    default_type application/octet-stream;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$port ssl reuseport backlog=4096;
        ssl_certificate $work/state/tls-cert.pem;
        ssl_certificate_key $work/state/tls-key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
        root $work/root;
        autoindex on;
    }
}
CONF
    nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" 2>"$dir/stderr" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do curl -sk -o /dev/null "https://127.0.0.1:$port/hello.txt" && break; sleep 0.05; done
    printf -v "$1_pid" %s "$pid"
    printf -v "$1_addr" %s "127.0.0.1:$port"
}
stop() { kill "$1" 2>/dev/null && wait "$1" 2>/dev/null || true; }
start_ferry ferry
start_nginx nginx
for addr in "$ferry_addr" "$nginx_addr"; do
    echo "https://$addr: $(echo | openssl s_client -connect "$addr" 2>/dev/null | grep -m1 -E '^New,')"
done

tree() { echo "$1"; pgrep -P "$1" || true; }
cpu_ticks() {
    local t=0 pid
    for pid in $(tree "$1"); do
        [ -r "/proc/$pid/stat" ] || continue
        t=$((t + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
    done
    echo "$t"
}
hz=$(getconf CLK_TCK)
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A results
record() { results[$1]+="$2 "; echo "  $1 = $2"; }
cpu_run() { # name pid addr
    local before after out req
    before=$(cpu_ticks "$2")
    out=$(wrk -t1 -c64 -d"$DURATION" "https://$3/hello.txt")
    after=$(cpu_ticks "$2")
    req=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out")
    record "$1.cpu64.us_per_req" "$(awk -v t=$((after - before)) -v r="$req" -v hz="$hz" 'BEGIN {printf "%.2f", t / hz * 1e6 / r}')"
    record "$1.cpu64.req_per_s" "$(awk -v r="$req" -v d="${DURATION%s}" 'BEGIN {printf "%.0f", r / d}')"
}
huge_run() { # name pid addr
    local before after speed
    before=$(cpu_ticks "$2")
    speed=$(curl -sk --max-time 120 -o /dev/null -w '%{speed_download}' "https://$3/256m.bin")
    after=$(cpu_ticks "$2")
    record "$1.huge.MB_per_s" "$(awk -v s="$speed" 'BEGIN {printf "%.0f", s / 1e6}')"
    record "$1.huge.cpu_s" "$(awk -v t=$((after - before)) -v hz="$hz" 'BEGIN {printf "%.2f", t / hz}')"
}
handshake_run() { # name pid addr
    local before after i n t0 t1 clients=()
    before=$(cpu_ticks "$2")
    t0=$(date +%s.%N)
    for i in $(seq "$HS_CONC"); do
        timeout 60 openssl s_time -connect "$3" -new -www /hello.txt -time "${DURATION%s}" \
            >"$work/s_time.$i" 2>&1 </dev/null &
        clients+=($!)
    done
    for i in "${clients[@]}"; do wait "$i" || { echo "s_time failed on $1: $(cat "$work"/s_time.*)" >&2; exit 1; }; done
    after=$(cpu_ticks "$2")
    t1=$(date +%s.%N)
    # "N connections in S real seconds, B bytes read per connection"
    n=$(cat "$work"/s_time.* | sed -n 's/^\([0-9]*\) connections in [0-9]* real seconds.*/\1/p' | awk '{n += $1} END {print n + 0}')
    [ "$n" -gt 0 ] || { echo "no handshakes counted on $1: $(cat "$work"/s_time.*)" >&2; exit 1; }
    record "$1.handshake.per_s" "$(awk -v n="$n" -v d="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" 'BEGIN {printf "%.0f", n / d}')"
    record "$1.handshake.us_cpu" "$(awk -v t=$((after - before)) -v n="$n" -v hz="$hz" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')"
    # handshakes per second of server CPU: per server core at full load
    record "$1.handshake.per_core_s" "$(awk -v t=$((after - before)) -v n="$n" -v hz="$hz" 'BEGIN {printf "%.0f", n / (t / hz)}')"
}
rss_kib() {
    local t=0 pid
    for pid in $(tree "$1"); do
        t=$((t + $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
memory_run() { # kind (ferry or nginx): starts a fresh server of that kind
    local pid addr before after line
    "start_$1" "mem$1"
    local pid_var=mem$1_pid addr_var=mem$1_addr
    pid=${!pid_var} addr=${!addr_var}
    before=$(rss_kib "$pid")
    coproc HOLD { timeout 180 python3 scripts/bench-http/idle_conns.py "${addr%:*}" "${addr##*:}" "$IDLE_CONNS" /hello.txt tls; }
    read -r -t 120 line <&"${HOLD[0]}" || true
    [ "${line%% *}" = ready ] || { echo "idle TLS connections failed for $1: $line" >&2; exit 1; }
    sleep 1
    after=$(rss_kib "$pid")
    echo >&"${HOLD[1]}"
    wait "$HOLD_PID" 2>/dev/null || true
    record "$1.memory.KiB_per_conn" "$(awk -v a="$after" -v b="$before" -v n="$IDLE_CONNS" 'BEGIN {printf "%.2f", (a - b) / n}')"
    stop "$pid"
}
wants() { [[ " $ONLY " == *" $1 "* ]]; }
wrk -t1 -c64 -d1s "https://$ferry_addr/hello.txt" >/dev/null
wrk -t1 -c64 -d1s "https://$nginx_addr/hello.txt" >/dev/null
for run in $(seq "$RUNS"); do
    echo "run $run/$RUNS"
    for server in ferry nginx; do
        pid_var=${server}_pid addr_var=${server}_addr
        if wants cpu; then cpu_run $server "${!pid_var}" "${!addr_var}"; fi
        if wants huge; then huge_run $server "${!pid_var}" "${!addr_var}"; fi
        if wants handshake; then handshake_run $server "${!pid_var}" "${!addr_var}"; fi
        if wants memory; then memory_run $server; fi
    done
done
echo "medians of $RUNS runs (ferry / nginx = ratio):"
for cell in cpu64.us_per_req cpu64.req_per_s huge.MB_per_s huge.cpu_s handshake.per_s handshake.us_cpu handshake.per_core_s memory.KiB_per_conn; do
    [ -n "${results[ferry.$cell]:-}" ] || continue
    f=$(tr ' ' '\n' <<<"${results[ferry.$cell]}" | grep . | median)
    n=$(tr ' ' '\n' <<<"${results[nginx.$cell]}" | grep . | median)
    printf '  %-18s ferry %10s  nginx %10s  ratio %s\n' "$cell" "$f" "$n" "$(awk -v a="$f" -v b="$n" 'BEGIN {printf "%.2f", a / b}')"
done
