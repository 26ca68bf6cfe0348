#!/usr/bin/env bash
# Download throughput of `ferry get` over loopback next to the loopback
# bulk-transfer ceiling (sendfile into a socket whose reader discards),
# measured alternately in the same run; prints each run and the medians.
#
#   scripts/bench-files.sh            # 1 GiB file, 3 runs of each
#   SIZE_MB=256 RUNS=5 scripts/bench-files.sh
#
# Files live in /dev/shm so the disk is not what gets measured.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-3}

cargo build --release -q -p ferry --bin ferry --example loopback_limit
ferry=target/release/ferry
limit=target/release/examples/loopback_limit

work=$(mktemp -d /dev/shm/ferry-bench.XXXXXX)
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/root" "$work/dl"
head -c "${SIZE_MB}M" /dev/urandom >"$work/root/big.bin"
bytes=$((SIZE_MB * 1024 * 1024))

"$ferry" serve "$work/root" --files 127.0.0.1:0 -q >"$work/serve.out" &
server=$!
for _ in $(seq 100); do
    grep -q "listening on" "$work/serve.out" 2>/dev/null && break
    sleep 0.05
done
addr=$(sed -n 's/^ferry: files listening on //p' "$work/serve.out")
[ -n "$addr" ] || { echo "server did not start" >&2; exit 1; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

ceiling=()
got=()
for run in $(seq "$RUNS"); do
    c=$("$limit" "$work/root/big.bin" | sed -n 's/.*= \([0-9]*\) MB\/s/\1/p')
    rm -f "$work/dl/big.bin" "$work/dl/big.bin.part"
    t0=$(date +%s.%N)
    "$ferry" -q get "$addr" /big.bin "$work/dl/big.bin" >/dev/null
    t1=$(date +%s.%N)
    cmp -s "$work/root/big.bin" "$work/dl/big.bin" || { echo "downloaded file differs" >&2; exit 1; }
    g=$(awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN {printf "%.0f", b / (z - a) / 1e6}')
    echo "run $run: loopback ceiling $c MB/s, ferry get $g MB/s"
    ceiling+=("$c")
    got+=("$g")
done
mc=$(printf '%s\n' "${ceiling[@]}" | median)
mg=$(printf '%s\n' "${got[@]}" | median)
echo "median of $RUNS (${SIZE_MB} MiB): ceiling $mc MB/s, ferry get $mg MB/s, ratio $(awk -v g="$mg" -v c="$mc" 'BEGIN {printf "%.2f", g / c}')"
