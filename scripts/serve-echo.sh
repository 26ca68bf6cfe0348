#!/usr/bin/env bash
# `ferry serve` as a bare echo server (files and HTTP off), with the
# command line of ferry-reactor's examples/echo (ADDR [--threads N]) plus
# [--model M] (default: uring), so the ping-pong matrix can run a ferry
# model through the whole connection core:
#   cargo build --release -p ferry
#   FERRY_ECHO=scripts/serve-echo.sh scripts/bench-pingpong.sh            # uring vs tokio
#   FERRY_ECHO=scripts/serve-echo.sh PEER_ECHO=scripts/serve-echo.sh \
#       PEER_ARGS="--model multi-reactor" scripts/bench-pingpong.sh       # uring vs multi-reactor
# Unlike examples/echo (a bare read/write loop), every message goes
# through the echo session and the connection core (timeouts, output
# queue), as HTTP requests do.
set -euo pipefail
addr=$1
shift
threads=1 model=uring
while [ $# -gt 0 ]; do
    case $1 in
    --threads) threads=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    *) shift ;;
    esac
done
here=$(cd "$(dirname "$0")" && pwd)
# The root is never served (files and HTTP are off).
exec "$here/../target/release/ferry" -q serve "$here" --files off --http off --echo "$addr" \
    --model "$model" --io-threads "$threads"
