#!/usr/bin/env bash
# Upload A/B: two `ferry serve` binaries (say, before and after a change to
# how a model receives uploads), measured alternately in the same run with
# the same client: one big `ferry put` per run, and a `ferry shell` session
# putting SMALL files of 1 MiB one after another over one connection. Prints
# each run (wall time as MB/s, the server's CPU time in ms) and the medians.
#
#   A=/tmp/ferry-before B=target/release/ferry scripts/bench-put.sh
#   MODEL=uring SIZE_MB=1024 SMALL=200 RUNS=5 A=... B=... scripts/bench-put.sh
#
# Files live in /dev/shm so the disk is not what gets measured. The client
# hashes what it sends and the server checks the digest after the upload in
# both variants, so ratios understate the difference the receive path makes;
# the server's CPU time shows it more directly.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-uring}
SIZE_MB=${SIZE_MB:-1024}
SMALL=${SMALL:-200}
RUNS=${RUNS:-5}
A=${A:?A=path of the first server binary}
B=${B:?B=path of the second server binary}

cargo build --release -q -p ferry --bin ferry
client=target/release/ferry

work=$(mktemp -d /dev/shm/ferry-bench-put.XXXXXX)
servers=()
cleanup() {
    for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/src" "$work/a" "$work/b"
head -c "${SIZE_MB}M" /dev/urandom >"$work/src/big.bin"
head -c 1M /dev/urandom >"$work/src/small.bin"

start() { # binary root: starts a server; its address is in root.addr
    "$1" serve "$2" --model "$MODEL" --files 127.0.0.1:0 --http off --allow-write -q >"$2.out" 2>/dev/null &
    servers+=($!)
    for _ in $(seq 100); do
        grep -q "listening on" "$2.out" 2>/dev/null && break
        sleep 0.05
    done
    sed -n 's/^ferry: files listening on //p' "$2.out" >"$2.addr"
}
start "$A" "$work/a"
start "$B" "$work/b"
pid_a=${servers[0]}
pid_b=${servers[1]}
addr_a=$(cat "$work/a.addr")
addr_b=$(cat "$work/b.addr")
[ -n "$addr_a" ] && [ -n "$addr_b" ] || { echo "a server did not start" >&2; exit 1; }

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick_ms=$((1000 / $(getconf CLK_TCK)))
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
rate() { awk -v b="$1" -v a="$2" -v z="$3" 'BEGIN {printf "%.0f", b / (z - a) / 1e6}'; }

# One measurement: variant (a|b), what (big|small) -> "MB/s cpu_ms"
measure() {
    local v=$1 what=$2 addr pid root t0 t1 c0 c1 bytes
    if [ "$v" = a ]; then addr=$addr_a pid=$pid_a; else addr=$addr_b pid=$pid_b; fi
    root=$work/$v
    rm -f "$root"/*.bin
    c0=$(ticks "$pid")
    t0=$(date +%s.%N)
    if [ "$what" = big ]; then
        "$client" -q put "$addr" "$work/src/big.bin" /big.bin >/dev/null
        bytes=$((SIZE_MB * 1024 * 1024))
    else
        for i in $(seq "$SMALL"); do echo "put $work/src/small.bin /s$i.bin"; done | "$client" -q shell "$addr" >/dev/null
        bytes=$((SMALL * 1024 * 1024))
    fi
    t1=$(date +%s.%N)
    c1=$(ticks "$pid")
    if [ "$what" = big ]; then
        cmp -s "$work/src/big.bin" "$root/big.bin" || { echo "uploaded file differs ($v)" >&2; exit 1; }
    else
        [ "$(ls "$root" | wc -l)" -eq "$SMALL" ] || { echo "small uploads missing ($v)" >&2; exit 1; }
    fi
    echo "$(rate "$bytes" "$t0" "$t1") $(((c1 - c0) * tick_ms))"
}

declare -A rates cpus
for run in $(seq "$RUNS"); do
    line="run $run:"
    # Alternate which variant goes first.
    if [ $((run % 2)) = 1 ]; then order="a b"; else order="b a"; fi
    for what in big small; do
        for v in $order; do
            read -r r c < <(measure "$v" "$what")
            rates[$v$what]+="$r "
            cpus[$v$what]+="$c "
            line+=" $v/$what $r MB/s ${c} ms cpu;"
        done
    done
    echo "$line"
done
med() { printf '%s\n' $1 | median; }
for what in big small; do
    ra=$(med "${rates[a$what]}"); rb=$(med "${rates[b$what]}")
    ca=$(med "${cpus[a$what]}"); cb=$(med "${cpus[b$what]}")
    label=$([ "$what" = big ] && echo "1 x ${SIZE_MB} MiB put" || echo "${SMALL} x 1 MiB puts (one shell)")
    echo "medians of $RUNS, $label: A $ra MB/s ${ca} ms server cpu; B $rb MB/s ${cb} ms server cpu;" \
        "B/A throughput $(awk -v a="$ra" -v b="$rb" 'BEGIN {printf "%.2f", b / a}')," \
        "B/A cpu $(awk -v a="$ca" -v b="$cb" 'BEGIN {printf "%.2f", (a > 0 ? b / a : 0)}')"
done
