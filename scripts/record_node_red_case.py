#!/usr/bin/env python3
"""Records what a real Node-RED publishes for a conformance case, and compares flowd with it.

A case folder holds flows.json (mqtt in -> nodes under test -> mqtt out under out/, the
mqtt-broker port written as "__BROKER_PORT__"), input.jsonl and case.json, as described in
nodes/tests/conformance/README.md. For each engine this starts a private Mosquitto on a free
127.0.0.1 port, subscribes to out/# (MQTT 5, retain-as-published), publishes the "pre" inputs,
starts the engine on the flows, publishes the other inputs about 30 ms apart and prints what
came out, per topic in order.

usage: record_node_red_case.py CASE_DIR [nr|flowd|both] [--write]
  nr      run Node-RED only (NODE_RED: its launcher, default `node-red` on PATH)
  flowd   run flowd only (FLOWD: the binary, default target/release/flowd)
  both    (default) run both and compare each with expected.jsonl
  --write save Node-RED's output as CASE_DIR/expected.jsonl first
SHOWLOG=1 prints each engine's log. Needs mosquitto and `pip install paho-mqtt`.
Not used by the test suite, which replays the recorded files only."""
import base64, json, os, shutil, socket, subprocess, sys, tempfile, time, threading
import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

NR = os.environ.get("NODE_RED", "node-red")
FLOWD = os.environ.get("FLOWD", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "flowd"))

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def read_jsonl(p):
    if not os.path.exists(p): return []
    return [json.loads(l) for l in open(p) if l.strip()]

def payload_of(line):
    if "payload_b64" in line: return base64.b64decode(line["payload_b64"])
    return line.get("payload", "").encode()

def line_of(topic, payload, qos, retain):
    try:
        return {"topic": topic, "payload": payload.decode("utf-8"), "qos": qos, "retain": retain}
    except UnicodeDecodeError:
        return {"topic": topic, "payload_b64": base64.b64encode(payload).decode(), "qos": qos, "retain": retain}

def client(port, cid):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", port); c.loop_start(); return c

def run(case, engine):
    case_cfg = json.load(open(os.path.join(case, "case.json"))) if os.path.exists(os.path.join(case, "case.json")) else {}
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="oracle-")
    conf = os.path.join(tmp, "m.conf")
    open(conf, "w").write(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    mosq = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    seen = []; lock = threading.Lock()
    def on_msg(c, u, m):
        with lock: seen.append(line_of(m.topic, m.payload, m.qos, bool(m.retain)))
    inputs = read_jsonl(os.path.join(case, "input.jsonl"))
    pub = client(port, "oracle-pub")
    for l in [l for l in inputs if l.get("phase") == "pre"]:
        pub.publish(l["topic"], payload_of(l), l.get("qos", 0), l.get("retain", False)).wait_for_publish(5)
    obs = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="oracle-obs", protocol=mqtt.MQTTv5)
    obs.on_message = on_msg
    obs.connect("127.0.0.1", port); obs.loop_start()
    obs.subscribe("out/#", options=SubscribeOptions(qos=2, retainAsPublished=True))
    time.sleep(0.2)
    flows = open(os.path.join(case, "flows.json")).read().replace('"__BROKER_PORT__"', f'"{port}"')
    open(os.path.join(tmp, "flows.json"), "w").write(flows)
    env = dict(os.environ, ORACLE_ENV_GREETING="hello world")
    log = open(os.path.join(tmp, "engine.log"), "w")
    if engine == "nr":
        open(os.path.join(tmp, "settings.js"), "w").write(
            "module.exports={flowFile:'flows.json',uiHost:'127.0.0.1',uiPort:%d,credentialSecret:false,logging:{console:{level:'info'}}}" % free_port())
        proc = subprocess.Popen([NR, "--userDir", tmp, "--settings", os.path.join(tmp, "settings.js")], stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 30
        while time.time() < deadline and "Connected to broker" not in open(os.path.join(tmp, "engine.log")).read():
            time.sleep(0.1)
        time.sleep(case_cfg.get("settle_ms", 1000) / 1000)
    else:
        proc = subprocess.Popen([FLOWD, "run", os.path.join(tmp, "flows.json")], stdout=log, stderr=subprocess.STDOUT, env=env)
        time.sleep(case_cfg.get("settle_ms", 1000) / 1000 + 0.3)
    for l in [l for l in inputs if l.get("phase") != "pre"]:
        if l.get("delay_ms"): time.sleep(l["delay_ms"] / 1000)
        pub.publish(l["topic"], payload_of(l), l.get("qos", 0), l.get("retain", False)).wait_for_publish(5)
        time.sleep(0.03)
    time.sleep(case_cfg.get("quiet_ms", 1500) / 1000)
    proc.terminate()
    try: proc.wait(10)
    except subprocess.TimeoutExpired: proc.kill()
    time.sleep(0.3)
    obs.loop_stop(); pub.loop_stop(); mosq.terminate(); mosq.wait()
    with lock: out = list(seen)
    log_text = open(os.path.join(tmp, "engine.log")).read()
    shutil.rmtree(tmp, ignore_errors=True)
    return out, log_text

def by_topic(lines):
    d = {}
    for l in lines: d.setdefault(l["topic"], []).append(l)
    return d

if __name__ == "__main__":
    case = sys.argv[1]; mode = sys.argv[2] if len(sys.argv) > 2 and not sys.argv[2].startswith("--") else "both"
    write = "--write" in sys.argv
    res = {}
    for e in (["nr", "flowd"] if mode == "both" else [mode]):
        res[e], logtext = run(case, e)
        if os.environ.get("SHOWLOG"): print(f"--- {e} log\n{logtext}")
    if "nr" in res and write:
        with open(os.path.join(case, "expected.jsonl"), "w") as f:
            for l in res["nr"]: f.write(json.dumps(l, ensure_ascii=False) + "\n")
    exp = read_jsonl(os.path.join(case, "expected.jsonl"))
    ok = True
    for e, out in res.items():
        same = by_topic(out) == by_topic(exp)
        ok &= same
        print(f"{os.path.basename(case.rstrip('/'))}: {e} {'SAME' if same else 'DIFF'} ({len(out)} msgs, expected {len(exp)})")
        if not same:
            for l in out: print("   got ", json.dumps(l, ensure_ascii=False)[:300])
            for l in exp: print("   want", json.dumps(l, ensure_ascii=False)[:300])
    sys.exit(0 if ok else 1)
