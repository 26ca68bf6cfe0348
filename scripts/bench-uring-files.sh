#!/usr/bin/env bash
# PROTOTYPE A/B/C (issue 13 step 3): how the uring model sends file ranges,
# picked by FERRY_URING_FILE in the prototype build: splice (file -> pipe ->
# socket), zc (read into a buffer, IORING_OP_SEND_ZC), copy (read, send).
# One server per variant, alternating within each run: wrk -c64 on 64 KiB
# and 1 MiB files (MB/s, server CPU µs per request), one curl of 256 MiB.
#   RUNS=5 VARIANTS="splice zc copy" scripts/bench-uring-files.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
DURATION=${DURATION:-5s}
VARIANTS=${VARIANTS:-"splice zc copy"}
ferry=${FERRY:-target/release/ferry}
ulimit -n 20000 2>/dev/null || true
work=$(mktemp -d /dev/shm/ferry-bench-zc.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/root"
head -c 64K /dev/urandom >"$work/root/64k.bin"
head -c 1M /dev/urandom >"$work/root/1m.bin"
head -c 256M /dev/urandom >"$work/root/256m.bin"
declare -A addr pid
for v in $VARIANTS; do
    FERRY_URING_FILE=$v "$ferry" serve "$work/root" --model uring --io-threads 2 --files off --http 127.0.0.1:0 -q >"$work/$v.out" 2>/dev/null &
    pids+=($!); pid[$v]=$!
    for _ in $(seq 100); do grep -q "listening on" "$work/$v.out" 2>/dev/null && break; sleep 0.05; done
    addr[$v]=$(sed -n 's/^ferry: http listening on //p' "$work/$v.out")
done
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
hz=$(getconf CLK_TCK)
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A res
for run in $(seq "$RUNS"); do
    order=$VARIANTS
    [ $((run % 2)) = 0 ] && order=$(echo $VARIANTS | tr ' ' '\n' | tac | tr '\n' ' ')
    line="run $run:"
    for f in 64k 1m; do
        for v in $order; do
            c0=$(ticks "${pid[$v]}")
            out=$(wrk -t1 -c64 -d"$DURATION" "http://${addr[$v]}/$f.bin")
            c1=$(ticks "${pid[$v]}")
            req=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out")
            sz=$([ $f = 64k ] && echo 65536 || echo 1048576)
            mbs=$(awk -v r="$req" -v s="$sz" -v d="${DURATION%s}" 'BEGIN {printf "%.0f", r * s / d / 1e6}')
            us=$(awk -v t=$((c1 - c0)) -v r="$req" -v hz="$hz" 'BEGIN {printf "%.2f", t / hz * 1e6 / r}')
            res[$v.$f.mbs]+="$mbs "; res[$v.$f.us]+="$us "
            line+=" $v/$f $mbs MB/s $us us/req;"
        done
    done
    for v in $order; do
        s=$(curl -s --max-time 60 -o /dev/null -w '%{speed_download}' "http://${addr[$v]}/256m.bin")
        mbs=$(awk -v s="$s" 'BEGIN {printf "%.0f", s / 1e6}')
        res[$v.256m.mbs]+="$mbs "
        line+=" $v/256m $mbs MB/s;"
    done
    echo "$line"
done
for v in $VARIANTS; do
    m() { printf '%s\n' ${res[$1]} | median; }
    echo "medians of $RUNS, $v: 64 KiB $(m $v.64k.mbs) MB/s $(m $v.64k.us) us/req; 1 MiB $(m $v.1m.mbs) MB/s $(m $v.1m.us) us/req; 256 MiB $(m $v.256m.mbs) MB/s"
done
