// Test harness: starts the real flowd binary on free ports with its own user
// directory, launches Debian's headless Chromium through playwright-core, and
// speaks just enough MQTT 3.1.1 to publish and subscribe.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { chromium } from 'playwright-core';
import { before, after } from 'node:test';

const START_TIMEOUT_MS = 30000;
export const CHROMIUM = process.env.FLOWD_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

/**
 * Starts flowd (`flows` and `options` as for `startFlowd`) and a browser
 * before the calling file's tests, and stops both after them. The returned
 * object's `flowd` and `browser` are set once started; a file's own `before`
 * hook awaits `env.ready` first (hooks need not run in the order written).
 */
export function withFlowdAndBrowser(flows = [], options = {}) {
  let started;
  const env = { flowd: undefined, browser: undefined, ready: new Promise((resolve, reject) => { started = { resolve, reject }; }) };
  env.ready.catch(() => {}); // a failed start is reported by the hook below
  before(async () => {
    try {
      env.flowd = await startFlowd(flows, options);
      env.browser = await launchBrowser();
      started.resolve();
    } catch (e) {
      started.reject(e);
      throw e;
    }
  });
  after(async () => {
    await env.browser?.close();
    await env.flowd?.stop();
  });
  return env;
}

/** A free TCP port on 127.0.0.1 (never 1880/1883). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

/** Starts flowd with `flows` (and a flowd.toml, if given) in a fresh user directory; resolves when its admin API answers. */
export async function startFlowd(flows = [], { settings } = {}) {
  const bin = process.env.FLOWD_BIN;
  if (!bin || !existsSync(bin)) throw new Error(`FLOWD_BIN must name the flowd binary (got ${bin}); run these tests through \`cargo test --test browser\``);
  const dir = mkdtempSync(join(tmpdir(), 'flowd-browser-'));
  writeFileSync(join(dir, 'flows.json'), JSON.stringify(flows));
  if (settings) writeFileSync(join(dir, 'flowd.toml'), settings);
  const http = await freePort();
  const mqtt = await freePort();
  const env = { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' };
  delete env.FLOWD_MQTT_PORT;
  const url = `http://127.0.0.1:${http}/`;
  let child = null;
  let log = '';

  async function launch() {
    child = spawn(bin, ['--user-dir', dir, '--http', `127.0.0.1:${http}`, '--mqtt', `127.0.0.1:${mqtt}`], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (d) => { log += d; });
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`flowd exited with ${child.exitCode}: ${log}`);
      try { if ((await fetch(`${url}auth/login`)).ok) return; } catch { /* not listening yet */ }
      if (Date.now() > deadline) { child.kill(); throw new Error(`flowd did not answer within ${START_TIMEOUT_MS} ms: ${log}`); }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function halt() {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }

  await launch();
  return {
    url, http, mqtt, dir,
    get log() { return log; },
    /** Stops flowd and starts it again on the same ports and user directory. */
    async restart(pauseMs = 0) {
      await halt();
      await new Promise((r) => setTimeout(r, pauseMs));
      await launch();
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Headless Chromium (fails clearly when it is not installed). */
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium) or set FLOWD_CHROMIUM`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

// ---- MQTT 3.1.1, the bare minimum ----------------------------------------------

function remainingLength(n) {
  const out = [];
  do { let b = n % 128; n = Math.floor(n / 128); if (n > 0) b |= 128; out.push(b); } while (n > 0);
  return Buffer.from(out);
}
const str = (s) => { const b = Buffer.from(s, 'utf8'); const l = Buffer.alloc(2); l.writeUInt16BE(b.length); return Buffer.concat([l, b]); };
const packet = (type, body) => Buffer.concat([Buffer.from([type]), remainingLength(body.length), body]);

/** Connects an MQTT 3.1.1 client (clean session); resolves after CONNACK. */
export function mqttConnect(port, clientId) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const messages = [];
    let connected = false;
    let nextId = 1;
    const acks = new Map();
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('MQTT connect timed out')); }, 10000);
    sock.on('error', reject);
    sock.on('connect', () => {
      const vh = Buffer.concat([str('MQTT'), Buffer.from([4, 0x02, 0, 60])]);
      sock.write(packet(0x10, Buffer.concat([vh, str(clientId)])));
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (buf.length < 2) return;
        let len = 0; let mul = 1; let i = 1; let b;
        do { if (i >= buf.length) return; b = buf[i++]; len += (b & 127) * mul; mul *= 128; } while (b & 128);
        if (buf.length < i + len) return;
        const header = buf[0];
        const type = header >> 4;
        const body = buf.subarray(i, i + len);
        buf = buf.subarray(i + len);
        if (type === 2 && !connected) {
          connected = true;
          clearTimeout(timer);
          if (body[1] !== 0) { reject(new Error(`CONNACK ${body[1]}`)); return; }
          resolve(client);
        } else if (type === 3) {
          const tl = body.readUInt16BE(0);
          const topic = body.subarray(2, 2 + tl).toString();
          const qos = (header >> 1) & 3;
          messages.push({ topic, payload: body.subarray(2 + tl + (qos ? 2 : 0)).toString() });
        } else if (type === 9) {
          const id = body.readUInt16BE(0);
          acks.get(id)?.();
        }
      }
    });
    const client = {
      messages,
      publish(topic, payload) { sock.write(packet(0x30, Buffer.concat([str(topic), Buffer.from(payload)]))); },
      subscribe(filter) {
        const id = nextId++;
        const idb = Buffer.alloc(2); idb.writeUInt16BE(id);
        return new Promise((res) => { acks.set(id, res); sock.write(packet(0x82, Buffer.concat([idb, str(filter), Buffer.from([0])]))); });
      },
      close() { sock.end(packet(0xe0, Buffer.alloc(0))); },
    };
  });
}
