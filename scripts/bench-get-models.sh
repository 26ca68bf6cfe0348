#!/usr/bin/env bash
# `ferry get` of one big file from servers of different models, side by
# side: every model serves the same file from /dev/shm, and each run
# downloads it from each server in turn (order alternating run by run), so
# the shared machine's drift hits all of them. Prints every download and
# the medians in MB/s.
#
#   scripts/bench-get-models.sh                          # uring vs multi-reactor, 1 GiB, 5 runs
#   MODELS="uring multi-reactor reactor" SIZE_MB=256 RUNS=3 scripts/bench-get-models.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-5}
MODELS=${MODELS:-"uring multi-reactor"}
WORKERS=${WORKERS:-$(nproc)}

cargo build --release -q -p ferry --bin ferry
ferry=$PWD/target/release/ferry
work=$(mktemp -d /dev/shm/ferry-bench-get.XXXXXX)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/root" "$work/dl"
head -c "${SIZE_MB}M" /dev/urandom >"$work/root/big.bin"
bytes=$((SIZE_MB * 1024 * 1024))

declare -A addr
for model in $MODELS; do
    "$ferry" -q serve "$work/root" --files 127.0.0.1:0 --http off --model "$model" --io-threads "$WORKERS" \
        >"$work/$model.out" &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q "listening on" "$work/$model.out" 2>/dev/null && break
        sleep 0.05
    done
    addr[$model]=$(sed -n 's/^ferry: files listening on //p' "$work/$model.out")
    [ -n "${addr[$model]}" ] || { echo "$model did not start" >&2; exit 1; }
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A speeds
read -ra models <<<"$MODELS"
for run in $(seq "$RUNS"); do
    order=("${models[@]}")
    if ((run % 2 == 0)); then
        mapfile -t order < <(printf '%s\n' "${models[@]}" | tac)
    fi
    for model in "${order[@]}"; do
        rm -f "$work/dl/big.bin" "$work/dl/big.bin.part"
        start=$(date +%s.%N)
        "$ferry" -q get "${addr[$model]}" /big.bin "$work/dl/big.bin"
        end=$(date +%s.%N)
        cmp -s "$work/root/big.bin" "$work/dl/big.bin" || { echo "$model: file differs" >&2; exit 1; }
        mbs=$(awk -v b="$bytes" -v s="$start" -v e="$end" 'BEGIN {printf "%.0f", b / (e - s) / 1e6}')
        speeds[$model]+="$mbs "
        echo "run $run: $model $mbs MB/s"
    done
done
for model in $MODELS; do
    echo "median $model: $(tr ' ' '\n' <<<"${speeds[$model]}" | grep . | median) MB/s"
done
