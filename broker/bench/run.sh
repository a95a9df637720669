#!/usr/bin/env bash
# Benchmarks flowd's broker next to Mosquitto on this machine, in one run:
# QoS 0/1 fan-in (100 -> 1) and fan-out (1 -> 100), first at full speed
# (messages/s, latency, broker CPU per 1,000 messages; RSS per idle
# connection with 10,000 of them), then paced at RATE deliveries/s
# (latency p50/p99 of a broker that is not saturated).
# usage: broker/bench/run.sh [MESSAGES] [RATE]
#   MESSAGES  deliveries per full-speed scenario (default 20000; 0 skips
#             the full-speed run and the idle connections)
#   RATE      deliveries/s of the paced run (default 10000; 0 skips it);
#             RATE_MESSAGES (env) deliveries per paced scenario (5 s worth)
#   MOSQUITTO (env) the mosquitto binary (default: on PATH, else /usr/sbin)
set -euo pipefail
cd "$(dirname "$0")/../.."
MESSAGES="${1:-20000}"
RATE="${2:-10000}"
RATE_MESSAGES="${RATE_MESSAGES:-$((RATE * 5))}"
MOSQUITTO="${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build -q --release -p flowd-broker --example broker --example bench
BIN="$CARGO_TARGET_DIR/release/examples"

# A free 127.0.0.1 port (the kernel's pick for port 0).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
FLOWD_PORT=$(free_port)
MOSQ_PORT=$(free_port)
while [ "$MOSQ_PORT" = "$FLOWD_PORT" ]; do MOSQ_PORT=$(free_port); done

conf=$(mktemp)
# Same limits for both: 20 in flight, 100,000 queued per client.
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_connections -1\nmax_inflight_messages 20\nmax_queued_messages 100000\npersistence false\n' "$MOSQ_PORT" > "$conf"
"$BIN/broker" --mqtt "127.0.0.1:$FLOWD_PORT" --max-queued 100000 > /dev/null 2>&1 & FLOWD_PID=$!
"$MOSQUITTO" -c "$conf" > /dev/null 2>&1 & MOSQ_PID=$!
trap 'kill $FLOWD_PID $MOSQ_PID 2>/dev/null; rm -f "$conf"' EXIT
sleep 1

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "mosquitto: $("$MOSQUITTO" -h 2>/dev/null | head -1)"
echo "flowd broker on 127.0.0.1:$FLOWD_PORT (pid $FLOWD_PID), mosquitto on 127.0.0.1:$MOSQ_PORT (pid $MOSQ_PID)"
if [ "$MESSAGES" -gt 0 ]; then
  echo "== full speed, $MESSAGES deliveries per scenario"
  "$BIN/bench" "127.0.0.1:$FLOWD_PORT" "$FLOWD_PID" flowd "$MESSAGES"
  "$BIN/bench" "127.0.0.1:$MOSQ_PORT" "$MOSQ_PID" mosquitto "$MESSAGES"
fi
if [ "$RATE" -gt 0 ]; then
  echo "== paced at $RATE deliveries/s, $RATE_MESSAGES deliveries per scenario"
  "$BIN/bench" "127.0.0.1:$FLOWD_PORT" "$FLOWD_PID" flowd "$RATE_MESSAGES" "$RATE"
  "$BIN/bench" "127.0.0.1:$MOSQ_PORT" "$MOSQ_PID" mosquitto "$RATE_MESSAGES" "$RATE"
fi
