#!/usr/bin/env bash
# Benchmarks flowd's broker next to Mosquitto on this machine, in one run:
# QoS 0/1 fan-in (100 -> 1) and fan-out (1 -> 100): messages/s, p99
# latency, broker CPU per 1,000 messages; RSS per idle connection (10,000).
# usage: broker/bench/run.sh [MESSAGES]   (needs mosquitto on PATH)
set -euo pipefail
cd "$(dirname "$0")/../.."
MESSAGES="${1:-20000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build -q --release -p flowd-broker --example broker --example bench
BIN="$CARGO_TARGET_DIR/release/examples"
FLOWD_PORT=18883 MOSQ_PORT=18884
conf=$(mktemp)
# Same limits for both: 20 in flight, 100,000 queued per client.
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_connections -1\nmax_inflight_messages 20\nmax_queued_messages 100000\n' "$MOSQ_PORT" > "$conf"
"$BIN/broker" --mqtt "127.0.0.1:$FLOWD_PORT" --max-queued 100000 > /dev/null 2>&1 & FLOWD_PID=$!
mosquitto -c "$conf" > /dev/null 2>&1 & MOSQ_PID=$!
trap 'kill $FLOWD_PID $MOSQ_PID 2>/dev/null; rm -f "$conf"' EXIT
sleep 1
echo "mosquitto: $(mosquitto -h 2>/dev/null | head -1)"
"$BIN/bench" "127.0.0.1:$FLOWD_PORT" "$FLOWD_PID" flowd "$MESSAGES"
"$BIN/bench" "127.0.0.1:$MOSQ_PORT" "$MOSQ_PID" mosquitto "$MESSAGES"
