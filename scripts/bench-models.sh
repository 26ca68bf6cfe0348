#!/usr/bin/env bash
# Every concurrency model of `ferry serve` under the same HTTP load: wrk on
# a small file with 1, 64 and 512 keep-alive connections, and 64
# connections sending `Connection: close` (a new connection per request).
# Per cell: requests/s, p99 latency, socket errors, the server's CPU time
# per request (user + system time of all its processes and threads over the
# run, from /proc, divided by the requests wrk completed), and how long a
# newcomer (one curl, half-way through the run) waits for an answer:
# wrk only counts connections that were served, so a model that leaves
# most connections waiting shows up there, not in req/s. Rounds are
# interleaved (every model once, then again) and the table has medians.
#
#   scripts/bench-models.sh                      # every model, 3 rounds of 5 s runs
#   MODELS="fork prefork" DURATION=3 RUNS=1 scripts/bench-models.sh
#   OUT=docs/bench-models scripts/bench-models.sh  # also write OUT.md, OUT.svg
#
# Needs wrk and curl (apt-get install wrk curl) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${MODELS:-"iterative fork thread prefork threadpool reactor multi-reactor"}
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
SIZE=${SIZE:-4096}
OUT=${OUT:-}
for tool in wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install wrk curl python3)" >&2; exit 1; }
done

cargo build --release -q -p ferry --bin ferry
ferry=target/release/ferry
clk_tck=$(getconf CLK_TCK)

work=$(mktemp -d /dev/shm/ferry-bench-models.XXXXXX)
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/root"
head -c "$SIZE" /dev/urandom >"$work/root/small.bin"

# CPU ticks of a process and its descendants: its own utime+stime (all
# threads), the cutime+cstime of children it already reaped, and the same
# for each live descendant.
cpu_ticks() {
    local pid=$1 total=0 stat rest child
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || { echo 0; return; }
    rest=${stat##*) }
    # fields after "comm) ": state=1 ... utime=12 stime=13 cutime=14 cstime=15
    total=$(awk '{print $12 + $13 + $14 + $15}' <<<"$rest")
    for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        total=$((total + $(cpu_ticks "$child")))
    done
    echo "$total"
}

# The pids of a process's descendants, sorted, one line.
descendants() {
    local child
    for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        echo "$child"
        descendants "$child"
    done | sort -n | tr '\n' ' '
}

# Waits (up to 5 s) until the server is back to the processes it had
# before a run: the children of finished connections have exited and been
# reaped, so their CPU time is in the parent's cutime/cstime.
settle() {
    local baseline=$1
    for _ in $(seq 100); do
        [ "$(descendants "$server")" = "$baseline" ] && return
        sleep 0.05
    done
    echo "warning: $(descendants "$server") still running after the run" >&2
}

start_server() {
    local model=$1
    "$ferry" serve "$work/root" --model "$model" --files off --http 127.0.0.1:0 -q >"$work/serve.out" &
    server=$!
    for _ in $(seq 200); do
        grep -q "listening on" "$work/serve.out" 2>/dev/null && break
        sleep 0.05
    done
    addr=$(sed -n 's/^ferry: http listening on //p' "$work/serve.out")
    [ -n "$addr" ] || { echo "$model: server did not start" >&2; exit 1; }
}

stop_server() {
    kill -TERM "$server"
    wait "$server" || { echo "server exited with $?" >&2; exit 1; }
    server=""
}

# run MODEL LABEL CONNS [wrk args...]: one wrk run, one raw result line.
# Half-way through, a separate client asks for the file once: how long a
# newcomer waits while the server is busy (starved if it gets no answer).
run() {
    local model=$1 label=$2 conns=$3
    shift 3
    local threads=$((conns < 2 ? conns : 2))
    local baseline before after out reqs rps p99 errors probe wrk_pid
    baseline=$(descendants "$server")
    before=$(cpu_ticks "$server")
    wrk -t"$threads" -c"$conns" -d"${DURATION}s" --timeout 2s --latency "$@" "http://$addr/small.bin" \
        >"$work/wrk.out" 2>&1 &
    wrk_pid=$!
    sleep "$(awk -v d="$DURATION" 'BEGIN {print d / 2}')"
    probe=$(curl -s -o /dev/null -m 2 -w '%{time_total}' "http://$addr/small.bin") || probe=starved
    wait "$wrk_pid" || true
    settle "$baseline"
    after=$(cpu_ticks "$server")
    out=$(cat "$work/wrk.out")
    reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out")
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
    p99=$(sed -n 's/^ *99% *\([0-9.]*[a-z]*\).*/\1/p' <<<"$out")
    errors=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1+\2+\3+\4/p' <<<"$out")
    errors=$((${errors:-0}))
    echo "$model|$label|${reqs:-0}|${rps:-0}|${p99:--}|$errors|$((after - before))|$probe" | tee -a "$work/raw.txt"
}

: >"$work/raw.txt"
for round in $(seq "$RUNS"); do
    echo "round $round of $RUNS" >&2
    for model in $MODELS; do
        start_server "$model"
        run "$model" "keep-alive, 1 conn" 1
        run "$model" "keep-alive, 64 conns" 64
        run "$model" "keep-alive, 512 conns" 512
        run "$model" "close, 64 conns" 64 -H "Connection: close"
        stop_server
    done
done

# Medians over the rounds, as a Markdown table (and an SVG chart if OUT).
python3 - "$work/raw.txt" "$clk_tck" "${OUT:+$OUT.svg}" <<'PY' | tee "$work/table.md"
import sys, html, statistics as st
raw, hz, svg = sys.argv[1], float(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else ""
def us(t):
    for unit, f in (("us", 1), ("ms", 1e3), ("s", 1e6)):
        if t.endswith(unit) and t[: -len(unit)].replace(".", "").isdigit():
            return float(t[: -len(unit)]) * f
    return None
cells = {}
for line in open(raw):
    model, load, reqs, rps, p99, errors, ticks, probe = line.rstrip("\n").split("|")
    cells.setdefault((model, load), []).append((int(reqs), float(rps), us(p99), int(errors), int(ticks), probe))
def fmt_us(v):
    return "-" if v is None else (f"{v / 1000:.1f} ms" if v >= 1000 else f"{v:.0f} µs")
print("| model | load | req/s | p99 | socket errors | server CPU µs/req | newcomer waits |")
print("|---|---|---:|---:|---:|---:|---:|")
rps_of = {}
for (model, load), runs in cells.items():
    rps = st.median(r[1] for r in runs)
    rps_of[(model, load)] = rps
    p99s = [r[2] for r in runs if r[2] is not None]
    p99 = st.median(p99s) if p99s else None
    cpu = [r[4] / hz * 1e6 / r[0] for r in runs if r[0] > 0]
    errors = max(r[3] for r in runs)
    probes = [r[5] for r in runs]
    starved = sum(p == "starved" for p in probes)
    times = [float(p) * 1e6 for p in probes if p != "starved"]
    waits = f"starved {starved}/{len(probes)}" if starved else fmt_us(st.median(times))
    print(f"| {model} | {load} | {rps:,.0f} | {fmt_us(p99)} | {errors} | {st.median(cpu) if cpu else 0:.0f} | {waits} |")
if svg:
    loads = list(dict.fromkeys(l for _, l in rps_of))
    models = list(dict.fromkeys(m for m, _ in rps_of))
    colors = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f"]
    W, H, left, top, bottom = 900, 420, 70, 40, 90
    group_w = (W - left - 20) / len(loads)
    bar_w = group_w * 0.8 / len(models)
    peak = max(rps_of.values()) or 1
    scale = (H - top - bottom) / peak
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W/2}" y="20" text-anchor="middle" font-size="14">ferry serve: HTTP req/s per model (wrk, {len(next(iter(cells.values())))}-run median)</text>']
    for i in range(5):
        v = peak * i / 4
        y = H - bottom - v * scale
        out.append(f'<line x1="{left}" x2="{W-20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left-5}" y="{y+4:.1f}" text-anchor="end">{v:,.0f}</text>')
    for g, load in enumerate(loads):
        x0 = left + g * group_w + group_w * 0.1
        for m, model in enumerate(models):
            v = rps_of.get((model, load), 0)
            h = v * scale
            x = x0 + m * bar_w
            out.append(f'<rect x="{x:.1f}" y="{H-bottom-h:.1f}" width="{bar_w-1:.1f}" height="{h:.1f}" fill="{colors[m % len(colors)]}"><title>{html.escape(model)}, {html.escape(load)}: {v:,.0f} req/s</title></rect>')
        out.append(f'<text x="{x0 + group_w*0.4:.1f}" y="{H-bottom+15}" text-anchor="middle">{html.escape(load)}</text>')
    for m, model in enumerate(models):
        x = left + m * 115
        out.append(f'<rect x="{x}" y="{H-45}" width="12" height="12" fill="{colors[m % len(colors)]}"/>')
        out.append(f'<text x="{x+16}" y="{H-35}">{html.escape(model)}</text>')
    out.append('</svg>')
    open(svg, "w").write("\n".join(out) + "\n")
PY
if [ -n "$OUT" ]; then
    cp "$work/table.md" "$OUT.md"
    echo "wrote $OUT.md and $OUT.svg" >&2
fi
