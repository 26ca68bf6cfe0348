#!/usr/bin/env bash
# HTTP upload against the file protocol's: one `ferry serve` with both
# services (--allow-write), the same 1 GiB file uploaded alternately with
# `curl -T` (HTTP PUT), `curl -T` with `Repr-Digest` (the server checks the
# SHA-256 before the rename, as `ferry put` has it do), `ferry put` (the
# client hashes, the server checks) and `curl -T` to Debian's nginx with
# `dav_methods PUT` (one worker). Prints each run (wall time as MB/s, the
# server's CPU time in ms from /proc/PID/stat, nginx's master and worker
# together) and the medians.
#
#   scripts/bench-http-put.sh
#   MODEL=reactor SIZE_MB=1024 RUNS=5 scripts/bench-http-put.sh
#
# Files live in /dev/shm so the disk is not what gets measured.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-uring}
SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-5}

cargo build --release -q -p ferry --bin ferry
ferry=target/release/ferry

work=$(mktemp -d /dev/shm/ferry-bench-http-put.XXXXXX)
server=
nginx_pid=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/root"
head -c "${SIZE_MB}M" /dev/urandom >"$work/big.bin"
digest=$(openssl dgst -sha256 -binary "$work/big.bin" | base64)

"$ferry" serve "$work/root" --model "$MODEL" --files 127.0.0.1:0 --http 127.0.0.1:0 --allow-write >"$work/out" 2>/dev/null &
server=$!
for _ in $(seq 100); do
    [ "$(grep -c "listening on" "$work/out" 2>/dev/null)" -ge 2 ] && break
    sleep 0.05
done
files=$(sed -n 's/^ferry: files listening on //p' "$work/out")
http=$(sed -n 's/^ferry: http listening on //p' "$work/out")
[ -n "$files" ] && [ -n "$http" ] || { echo "the server did not start" >&2; exit 1; }

# nginx, its workers running as an unprivileged user when started as root.
mkdir -p "$work/nginx" "$work/nginx-root"
chmod 755 "$work"
chmod 777 "$work/nginx-root"
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s|@PREFIX@|$work/nginx|g" -e "s|@ROOT@|$work/nginx-root|g" -e "s|@PORT@|$nginx_port|g" \
    scripts/bench-http/nginx-put.conf.template >"$work/nginx/nginx.conf"
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -e "$work/nginx/error.log" 2>"$work/nginx/stderr" &
nginx_pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$nginx_port/" && break
    sleep 0.05
done

# CPU ticks of a process and its children.
tree_ticks() {
    local t=0 pid
    for pid in $1 $(pgrep -P "$1" || true); do
        [ -r "/proc/$pid/stat" ] && t=$((t + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
    done
    echo "$t"
}
tick_ms=$((1000 / $(getconf CLK_TCK)))
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
rate() { awk -v b="$1" -v a="$2" -v z="$3" 'BEGIN {printf "%.0f", b / (z - a) / 1e6}'; }

# One measurement: curl|curl-digest|put -> "MB/s cpu_ms"
measure() {
    local how=$1 t0 t1 c0 c1
    rm -f "$work/root/big.bin" "$work/nginx-root/big.bin"
    local pid=$server dest=$work/root/big.bin
    [ "$how" = nginx ] && pid=$nginx_pid dest=$work/nginx-root/big.bin
    c0=$(tree_ticks "$pid")
    t0=$(date +%s.%N)
    case $how in
        curl) curl -sS -o /dev/null -T "$work/big.bin" "http://$http/big.bin" ;;
        curl-digest) curl -sS -o /dev/null -H "Repr-Digest: sha-256=:$digest:" -T "$work/big.bin" "http://$http/big.bin" ;;
        put) "$ferry" -q put "$files" "$work/big.bin" /big.bin >/dev/null ;;
        nginx) curl -sS -o /dev/null -T "$work/big.bin" "http://127.0.0.1:$nginx_port/big.bin" ;;
    esac
    t1=$(date +%s.%N)
    c1=$(tree_ticks "$pid")
    cmp -s "$work/big.bin" "$dest" || { echo "uploaded file differs ($how)" >&2; exit 1; }
    echo "$(rate $((SIZE_MB * 1024 * 1024)) "$t0" "$t1") $(((c1 - c0) * tick_ms))"
}

echo "model $MODEL, $SIZE_MB MiB, $RUNS runs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%4s %12s %12s %12s %12s %12s %12s %12s %12s\n' run curl_MB/s curl_cpu_ms dig_MB/s dig_cpu_ms put_MB/s put_cpu_ms nginx_MB/s nginx_cpu_ms
: >"$work/results"
for run in $(seq "$RUNS"); do
    line="$run"
    for how in curl curl-digest put nginx; do
        line="$line $(measure "$how")"
    done
    echo "$line" >>"$work/results"
    echo "$line" | awk '{printf "%4s %12s %12s %12s %12s %12s %12s %12s %12s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}'
done
printf '%4s' med
for col in 2 3 4 5 6 7 8 9; do printf ' %12s' "$(awk -v c=$col '{print $c}' "$work/results" | median)"; done
echo
