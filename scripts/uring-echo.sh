#!/usr/bin/env bash
# `ferry serve --model uring` as a bare echo server, with the command line
# of ferry-reactor's examples/echo (ADDR [--threads N]), so the ping-pong
# matrix can run it in the "ferry" columns against tokio:
#   cargo build --release -p ferry
#   FERRY_ECHO=scripts/uring-echo.sh scripts/bench-pingpong.sh
# The echo service runs through the whole connection core (sessions,
# timeouts), not a bare read/write loop like examples/echo.
set -euo pipefail
addr=$1
shift
threads=1
while [ $# -gt 0 ]; do
    case $1 in
    --threads) threads=$2; shift 2 ;;
    *) shift ;;
    esac
done
here=$(cd "$(dirname "$0")" && pwd)
# The root is never served (files and HTTP are off).
exec "$here/../target/release/ferry" -q serve "$here" --files off --http off --echo "$addr" \
    --model uring --io-threads "$threads"
