#!/usr/bin/env bash
# HTTP benchmark: ferry serve (multi-reactor by default) side by side with
# Debian's nginx on the same files, in the same run, over loopback.
#
#   scripts/bench-http.sh                        # everything, 3 runs each
#   RUNS=5 scripts/bench-http.sh
#   ONLY="cpu pipelined" scripts/bench-http.sh   # a subset: cpu pipelined large huge memory
#   FERRY_ARGS="--model reactor" scripts/bench-http.sh
#   PEER_FERRY=../old/target/release/ferry scripts/bench-http.sh
#                      # another ferry build in nginx's place (the "nginx"
#                      # column): an A/B of two builds in one run
#   FERRY_ARGS="--model uring" FERRY2_ARGS="--model multi-reactor" scripts/bench-http.sh
#                      # a third server, this ferry with other arguments
#                      # (the "ferry2" column), in the same alternation
#
# Measures (each wrk run lasts DURATION, default 5 s):
#   cpu        server CPU time per request (utime+stime of every process of
#              the server, from /proc/PID/stat, which sums a process's
#              threads; nginx's master and workers), 13-byte file,
#              keep-alive, 64 and 256 connections
#   pipelined  req/s with 16 requests per write (scripts/bench-http/
#              pipeline.lua), 64 connections
#   large      1 MiB file, 64 connections: req/s and MB/s
#   huge       256 MiB file with one curl: MB/s
#   memory     RSS growth per idle keep-alive connection with 10,000 of
#              them open (each answered one request), once per run
# Prints every run, then the medians and the ferry/nginx ratios.
#
# Needs: nginx, wrk, curl, python3 (apt-get install nginx-light wrk curl
# python3; nginx-light or nginx). Files live in /dev/shm. Servers get 2
# threads/workers (or NPROC) and the fd limit is raised to 20000 (the hard
# limit here).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-5s}
ONLY=${ONLY:-"cpu pipelined large huge memory"}
WORKERS=${WORKERS:-$(nproc)}
IDLE_CONNS=${IDLE_CONNS:-10000}
FERRY_ARGS=${FERRY_ARGS:-}
FERRY2_ARGS=${FERRY2_ARGS:-}
PEER_FERRY=${PEER_FERRY:-}

for tool in nginx wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "bench-http: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

cargo build --release -q -p ferry --bin ferry
ferry=$PWD/target/release/ferry
here=$PWD/scripts/bench-http

work=$(mktemp -d /dev/shm/ferry-bench-http.XXXXXX)
cleanup() {
    local pid
    for pid in "${all_pids[@]}"; do stop "$pid"; done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/root" "$work/nginx"
# nginx workers run as an unprivileged user when started as root.
chmod 755 "$work"
printf 'Hello, world!' >"$work/root/hello.txt"
head -c 1M /dev/urandom >"$work/root/1m.bin"
head -c 256M /dev/urandom >"$work/root/256m.bin"

# --- servers ---------------------------------------------------------------
# start_ferry NAME / start_nginx NAME: start a server, set NAME_pid and
# NAME_addr. The memory measurement uses fresh servers each run: a server
# keeps freed heap resident, so a second 10,000-connection round on the
# same process would grow by nothing.
all_pids=()
start_ferry() { start_ferry_bin "$ferry" "$1"; }
start_ferry2() { start_ferry_bin "$ferry" "$1" "$FERRY2_ARGS"; }
start_ferry_bin() { # binary name [args, default FERRY_ARGS]
    local bin=$1 args=${3-$FERRY_ARGS}
    shift
    local out=$work/$1.out
    "$bin" serve "$work/root" --files off --http 127.0.0.1:0 --io-threads "$WORKERS" $args -q \
        >"$out" 2>"$work/$1.err" &
    local pid=$!
    all_pids+=("$pid")
    for _ in $(seq 100); do
        grep -q "listening on" "$out" 2>/dev/null && break
        sleep 0.05
    done
    local addr
    addr=$(sed -n 's/^ferry: http listening on //p' "$out")
    [ -n "$addr" ] || { echo "ferry did not start: $(cat "$work/$1.err")" >&2; exit 1; }
    printf -v "$1_pid" %s "$pid"
    printf -v "$1_addr" %s "$addr"
}
start_nginx() {
    if [ -n "$PEER_FERRY" ]; then
        start_ferry_bin "$PEER_FERRY" "$1"
        return
    fi
    local dir=$work/$1 port
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    sed -e "s|@PREFIX@|$dir|g" -e "s|@ROOT@|$work/root|g" -e "s|@PORT@|$port|g" \
        -e "s|@WORKERS@|$WORKERS|g" "$here/nginx.conf.template" >"$dir/nginx.conf"
    nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" 2>"$dir/stderr" &
    local pid=$!
    all_pids+=("$pid")
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/hello.txt" && break
        sleep 0.05
    done
    curl -sf -o /dev/null "http://127.0.0.1:$port/hello.txt" ||
        { echo "nginx did not start: $(cat "$dir/stderr")" >&2; exit 1; }
    printf -v "$1_pid" %s "$pid"
    printf -v "$1_addr" %s "127.0.0.1:$port"
}
stop() { kill "$1" 2>/dev/null && wait "$1" 2>/dev/null || true; }
start_ferry ferry
servers="ferry nginx"
if [ -n "$FERRY2_ARGS" ]; then
    start_ferry2 ferry2
    servers="ferry ferry2 nginx"
    echo "ferry2 $ferry2_addr (pid $ferry2_pid, $FERRY2_ARGS --io-threads $WORKERS)"
fi
start_nginx nginx
echo "ferry $ferry_addr (pid $ferry_pid, $FERRY_ARGS --io-threads $WORKERS), nginx $nginx_addr (pid $nginx_pid, $WORKERS workers)"

# --- measuring helpers -----------------------------------------------------
# The pids of a process and its children (nginx workers).
tree() { echo "$1"; pgrep -P "$1" || true; }
# Total utime+stime in clock ticks of a process tree.
cpu_ticks() {
    local t=0 pid
    for pid in $(tree "$1"); do
        [ -r "/proc/$pid/stat" ] || continue
        # Fields 14 and 15, counted after the ")" that ends the command name.
        t=$((t + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
    done
    echo "$t"
}
# Total resident set in KiB of a process tree.
rss_kib() {
    local t=0 pid
    for pid in $(tree "$1"); do
        t=$((t + $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
hz=$(getconf CLK_TCK)
# wrk's total request count and Transfer/sec (bytes/s) from its output.
wrk_requests() { sed -n 's/^ *\([0-9]*\) requests in.*/\1/p'; }
wrk_bytes_per_sec() {
    awk '/^Transfer\/sec:/ {v=$2; u=substr(v,length(v)-1); n=v+0;
         if (u=="GB") n*=1073741824; else if (u=="MB") n*=1048576; else if (u=="KB") n*=1024; print n}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A results
record() { results[$1]+="$2 "; echo "  $1 = $2"; }

# One keep-alive wrk run; records server CPU us/request and req/s.
cpu_run() { # name pid addr conns
    local before after out req
    before=$(cpu_ticks "$2")
    out=$(wrk -t1 -c"$4" -d"$DURATION" "http://$3/hello.txt")
    after=$(cpu_ticks "$2")
    req=$(wrk_requests <<<"$out")
    record "$1.cpu$4.us_per_req" "$(awk -v t=$((after - before)) -v r="$req" -v hz="$hz" 'BEGIN {printf "%.3f", t / hz * 1e6 / r}')"
    record "$1.cpu$4.req_per_s" "$(awk -v r="$req" -v d="${DURATION%s}" 'BEGIN {printf "%.0f", r / d}')"
}
pipelined_run() { # name addr
    local out
    out=$(wrk -t1 -c64 -d"$DURATION" -s "$here/pipeline.lua" "http://$2" -- /hello.txt)
    record "$1.pipelined.req_per_s" "$(awk -v r="$(wrk_requests <<<"$out")" -v d="${DURATION%s}" 'BEGIN {printf "%.0f", r / d}')"
}
large_run() { # name addr
    local out
    out=$(wrk -t1 -c64 -d"$DURATION" "http://$2/1m.bin")
    record "$1.large.req_per_s" "$(awk -v r="$(wrk_requests <<<"$out")" -v d="${DURATION%s}" 'BEGIN {printf "%.0f", r / d}')"
    record "$1.large.MB_per_s" "$(awk -v b="$(wrk_bytes_per_sec <<<"$out")" 'BEGIN {printf "%.0f", b / 1e6}')"
}
huge_run() { # name addr
    local speed
    speed=$(curl -s --max-time 60 -o /dev/null -w '%{speed_download}' "http://$2/256m.bin")
    record "$1.huge.MB_per_s" "$(awk -v s="$speed" 'BEGIN {printf "%.0f", s / 1e6}')"
}
memory_run() { # name: starts a fresh server of that kind
    local before after host port pid addr
    "start_$1" "mem$1"
    pid=$(eval echo "\$mem$1_pid") addr=$(eval echo "\$mem$1_addr")
    set -- "$1" "$pid" "$addr"
    host=${3%:*} port=${3##*:}
    before=$(rss_kib "$2")
    coproc HOLD { python3 "$here/idle_conns.py" "$host" "$port" "$IDLE_CONNS" /hello.txt; }
    local line
    read -r -t 120 line <&"${HOLD[0]}" || true
    [ "${line%% *}" = ready ] || { echo "idle connections failed for $1: $line" >&2; exit 1; }
    sleep 1
    after=$(rss_kib "$2")
    echo >&"${HOLD[1]}"
    wait "$HOLD_PID" 2>/dev/null || true
    record "$1.memory.KiB_per_conn" "$(awk -v a="$after" -v b="$before" -v n="$IDLE_CONNS" 'BEGIN {printf "%.3f", (a - b) / n}')"
    stop "$pid"
}

# --- runs: the two servers alternate so both see the same machine noise ----
wants() { [[ " $ONLY " == *" $1 "* ]]; }
# Warm up both (page cache, lazily allocated state).
wrk -t1 -c64 -d1s "http://$ferry_addr/hello.txt" >/dev/null
wrk -t1 -c64 -d1s "http://$nginx_addr/hello.txt" >/dev/null
if [ -n "$FERRY2_ARGS" ]; then wrk -t1 -c64 -d1s "http://$ferry2_addr/hello.txt" >/dev/null; fi
for run in $(seq "$RUNS"); do
    echo "run $run/$RUNS"
    for server in $servers; do
        pid_var=${server}_pid addr_var=${server}_addr
        pid=${!pid_var} addr=${!addr_var}
        if wants cpu; then cpu_run $server "$pid" "$addr" 64; cpu_run $server "$pid" "$addr" 256; fi
        if wants pipelined; then pipelined_run $server "$addr"; fi
        if wants large; then large_run $server "$addr"; fi
        if wants huge; then huge_run $server "$addr"; fi
        if wants memory; then memory_run $server; fi
    done
done

# --- summary ---------------------------------------------------------------
echo
ratio() { awk -v f="$1" -v n="$2" 'BEGIN {if (n > 0) printf "%.2f", f / n; else print "-"}'; }
if [ -n "$FERRY2_ARGS" ]; then
    printf '%-28s %12s %12s %12s %8s %8s\n' metric ferry ferry2 nginx f/f2 f/nginx
else
    printf '%-28s %12s %12s %8s\n' metric ferry nginx ratio
fi
for key in $(printf '%s\n' "${!results[@]}" | sed -n 's/^ferry\.//p' | sort); do
    f=$(tr ' ' '\n' <<<"${results[ferry.$key]}" | grep . | median)
    n=$(tr ' ' '\n' <<<"${results[nginx.$key]:-}" | grep . | median)
    if [ -n "$FERRY2_ARGS" ]; then
        f2=$(tr ' ' '\n' <<<"${results[ferry2.$key]:-}" | grep . | median)
        printf '%-28s %12s %12s %12s %8s %8s\n' "$key" "$f" "$f2" "$n" "$(ratio "$f" "$f2")" "$(ratio "$f" "$n")"
    else
        printf '%-28s %12s %12s %8s\n' "$key" "$f" "$n" "$(ratio "$f" "$n")"
    fi
done
echo "(medians of $RUNS runs; ratios = ferry / the other; for us_per_req and KiB_per_conn lower is better)"
