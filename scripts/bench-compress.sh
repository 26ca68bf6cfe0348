#!/usr/bin/env bash
# Compression benchmark: server CPU per request for a 100 KiB JavaScript
# file at 64 keep-alive connections (wrk -H 'Accept-Encoding: CODING'),
# ferry next to nginx in the same run, servers alternating, medians.
#
#   scripts/bench-compress.sh            # 3 runs of 5 s per configuration
#   RUNS=5 DURATION=10s scripts/bench-compress.sh
#
# Configurations (each a server of its own, started once):
#   ferry-fly      on the fly at the default level (gzip 6, br 4, zstd 3),
#                  --compress-cache 0: every request compresses
#   ferry-fast     --compress fast (gzip 1, as nginx's default), no cache
#   ferry-cached   the default: compressed once, then from the cache
#   ferry-static   precompressed siblings (.gz -9, .br -q 11, .zst -19)
#   nginx-gzip     nginx `gzip on` (level 1, its default), and at level 6
#   nginx-static   nginx `gzip_static on` with the same .gz sibling
#   identity       no Accept-Encoding, ferry and nginx (sendfile)
# Server CPU is utime+stime from /proc/PID/stat of every process of the
# server (ferry's job threads included; nginx's master and workers), per
# request. The machine is shared: read ratios within a run, not absolutes.
#
# Needs: nginx, wrk, curl, gzip, brotli, zstd.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-5s}
WORKERS=${WORKERS:-$(nproc)}
for tool in nginx wrk curl gzip brotli zstd; do
    command -v "$tool" >/dev/null || { echo "bench-compress: $tool is missing" >&2; exit 1; }
done
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release -q -p ferry --bin ferry
ferry=$PWD/target/release/ferry
here=$PWD/scripts/bench-http

work=$(mktemp -d /dev/shm/ferry-bench-compress.XXXXXX)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
mkdir -p "$work/plain" "$work/static"
# Real text: the first 100 KiB of jQuery when Debian's libjs-jquery is
# there, else generated JavaScript-like text.
if [ -r /usr/share/javascript/jquery/jquery.js ]; then
    head -c 102400 /usr/share/javascript/jquery/jquery.js >"$work/plain/app.js"
else
    python3 -c 'import random; r=random.Random(1); w=["function","return","var","this","length","for","if","else","null","data","elem","value"]; print("\n".join(" ".join(r.choice(w) for _ in range(10))+";" for _ in range(2000)))' | head -c 102400 >"$work/plain/app.js"
fi
cp "$work/plain/app.js" "$work/static/app.js"
gzip -9 -k "$work/static/app.js"
brotli -q 11 -k "$work/static/app.js"
zstd -q -19 -k "$work/static/app.js"
ls -l "$work/static" | awk 'NR > 1 {print "  " $5 "\t" $9}'

start_ferry() { # name root args...
    local name=$1 root=$2 out=$work/$1.out
    shift 2
    "$ferry" serve "$root" --files off --http 127.0.0.1:0 --io-threads "$WORKERS" -q "$@" >"$out" 2>"$work/$name.err" &
    pids+=($!)
    printf -v "${name}_pid" %s "$!"
    for _ in $(seq 100); do grep -q "listening on" "$out" 2>/dev/null && break; sleep 0.05; done
    printf -v "${name}_addr" %s "$(sed -n 's/^ferry: http listening on //p' "$out")"
}
start_nginx() { # name root gzip-directive level
    local name=$1 dir=$work/$1 port
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    sed -e "s|@PREFIX@|$dir|g" -e "s|@ROOT@|$2|g" -e "s|@PORT@|$port|g" -e "s|@WORKERS@|$WORKERS|g" \
        -e "s|@GZIP@|$3|g" -e "s|@LEVEL@|$4|g" "$here/nginx-gzip.conf.template" >"$dir/nginx.conf"
    nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" 2>"$dir/stderr" &
    pids+=($!)
    printf -v "${name}_pid" %s "$!"
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/app.js" && break; sleep 0.05; done
    printf -v "${name}_addr" %s "127.0.0.1:$port"
}
start_ferry fly "$work/plain" --compress on --compress-cache 0 --precompressed off
start_ferry fast "$work/plain" --compress fast --compress-cache 0 --precompressed off
start_ferry cached "$work/plain" --precompressed off
start_ferry static "$work/static" --compress off
start_nginx ngzip1 "$work/plain" "gzip on" 1
start_nginx ngzip6 "$work/plain" "gzip on" 6
start_nginx nstatic "$work/static" "gzip_static on" 1

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
declare -A us rps bytes
order=()
measure() { # label server coding ("" for identity)
    local label=$1 pid addr before after out req header=()
    pid=$(eval echo "\$${2}_pid") addr=$(eval echo "\$${2}_addr")
    [ -n "$3" ] && header=(-H "Accept-Encoding: $3")
    # The coding the server chose and the body's size, for the table.
    bytes[$label]=$(curl -s "${header[@]}" -o /dev/null -w '%{size_download}' "http://$addr/app.js")
    before=$(cpu_ticks "$pid")
    out=$(wrk -t1 -c64 -d"$DURATION" "${header[@]}" "http://$addr/app.js")
    after=$(cpu_ticks "$pid")
    req=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out")
    us[$label]+="$(awk -v t=$((after - before)) -v r="$req" -v hz="$hz" 'BEGIN {printf "%.1f", t / hz * 1e6 / r}') "
    rps[$label]+="$(awk -v r="$req" -v d="${DURATION%s}" 'BEGIN {printf "%.0f", r / d}') "
    [[ " ${order[*]} " == *" $label "* ]] || order+=("$label")
}
for run in $(seq "$RUNS"); do
    echo "run $run/$RUNS"
    for coding in gzip br zstd; do measure "ferry on the fly, $coding" fly "$coding"; done
    measure "ferry --compress fast, gzip" fast gzip
    measure "ferry cached, gzip" cached gzip
    for coding in gzip br zstd; do measure "ferry precompressed, $coding" static "$coding"; done
    measure "nginx gzip on (level 1), gzip" ngzip1 gzip
    measure "nginx gzip on, level 6, gzip" ngzip6 gzip
    measure "nginx gzip_static, gzip" nstatic gzip
    measure "ferry identity" fly ""
    measure "nginx identity" ngzip1 ""
done
echo
echo "| configuration | body bytes | server CPU us/request | requests/s |"
echo "|---|---|---|---|"
for label in "${order[@]}"; do
    printf '| %s | %s | %s | %s |\n' "$label" "${bytes[$label]}" \
        "$(tr ' ' '\n' <<<"${us[$label]}" | grep . | median)" "$(tr ' ' '\n' <<<"${rps[$label]}" | grep . | median)"
done
