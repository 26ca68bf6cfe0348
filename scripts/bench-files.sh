#!/usr/bin/env bash
# Download throughput of `ferry get` over loopback next to two loopback
# ceilings measured alternately in the same run: sendfile into a socket
# whose reader discards, and whose reader splices into a file (what any
# downloader that keeps the bytes must do). Prints each run and the medians.
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

discard=()
into_file=()
got=()
for run in $(seq "$RUNS"); do
    d=$("$limit" "$work/root/big.bin" | sed -n 's/.*= \([0-9]*\) MB\/s/\1/p')
    f=$("$limit" "$work/root/big.bin" --to "$work/dl/ceiling.bin" | sed -n 's/.*= \([0-9]*\) MB\/s/\1/p')
    rm -f "$work/dl/ceiling.bin" "$work/dl/big.bin" "$work/dl/big.bin.part"
    t0=$(date +%s.%N)
    "$ferry" -q get "$addr" /big.bin "$work/dl/big.bin" >/dev/null
    t1=$(date +%s.%N)
    cmp -s "$work/root/big.bin" "$work/dl/big.bin" || { echo "downloaded file differs" >&2; exit 1; }
    rm -f "$work/dl/big.bin"
    g=$(awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN {printf "%.0f", b / (z - a) / 1e6}')
    echo "run $run: ceiling (reader discards) $d MB/s, ceiling (reader splices into a file) $f MB/s, ferry get $g MB/s"
    discard+=("$d")
    into_file+=("$f")
    got+=("$g")
done
md=$(printf '%s\n' "${discard[@]}" | median)
mf=$(printf '%s\n' "${into_file[@]}" | median)
mg=$(printf '%s\n' "${got[@]}" | median)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo "medians of $RUNS (${SIZE_MB} MiB): discard ceiling $md MB/s, into-file ceiling $mf MB/s, ferry get $mg MB/s"
echo "ferry get / discard ceiling = $(ratio "$mg" "$md"); ferry get / into-file ceiling = $(ratio "$mg" "$mf")"
