// A browser that cannot keep up with debug messages is not sent them without
// bound: the server drops what the browser missed and the sidebar says how many.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withFlowdAndBrowser, mqttConnect } from './lib/harness.js';
import { Editor, until } from './lib/editor.js';

const FAN_OUT = 30;
const PER_ROUND = 3000;
const ROUNDS = 3;
const BLOCK_MS = 5000;
// Each MQTT message reaches 30 debug nodes: 90 000 debug events per round.
const FLOWS = [
  { id: 't1', type: 'tab', label: 'Flood' },
  { id: 'b1', type: 'mqtt-broker', name: 'local', broker: '127.0.0.1', port: '${FLOWD_MQTT_PORT}', protocolVersion: '4', keepalive: '60', cleansession: true, autoConnect: true },
  { id: 'm1', type: 'mqtt in', z: 't1', broker: 'b1', topic: 'flood', qos: '0', datatype: 'utf8', x: 120, y: 80, wires: [Array.from({ length: FAN_OUT }, (_, i) => `d${i}`)] },
  ...Array.from({ length: FAN_OUT }, (_, i) => ({ id: `d${i}`, type: 'debug', z: 't1', name: `out${i}`, x: 360, y: 40 + i * 40, wires: [] })),
];

const env = withFlowdAndBrowser(FLOWS);

test('a browser too busy to read is told how many debug messages it missed', async () => {
  const page = await env.browser.newPage();
  const { editor } = await Editor.open(page, env.flowd.url);
  await until(async () => /connected/.test(await editor.node('m1').locator('.status-text').textContent().catch(() => '')), 'mqtt in connected');
  assert.ok(await page.locator('#debug-dropped').isHidden(), 'nothing dropped yet');
  const flooder = await mqttConnect(env.flowd.mqtt, 'browser-test-flooder');
  const payload = 'x'.repeat(400);
  for (let round = 0; round < ROUNDS && (await page.locator('#debug-dropped').isHidden()); round++) {
    // The page's thread is busy: the websocket is not read while the flood comes.
    const busy = page.evaluate((ms) => { const end = Date.now() + ms; while (Date.now() < end); }, BLOCK_MS);
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < PER_ROUND; i++) flooder.publish('flood', `${round}-${i} ${payload}`);
    await busy;
    await page.waitForTimeout(3000);
  }
  flooder.close();
  const text = await page.locator('#debug-dropped').textContent();
  assert.match(text, /^\d+ dropped$/, 'the sidebar shows the dropped count');
  assert.ok(parseInt(text, 10) > 0);
  assert.ok((await editor.debugMessages().count()) <= 500, 'the sidebar keeps at most 500 messages');
  await page.close();
});
