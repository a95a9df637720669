// The seed pipeline built in the browser: mqtt in -> json -> rbe -> template
// -> mqtt out + debug, by drag and drop and the edit forms alone; deployed;
// readings published to flowd's embedded broker come back as alerts in the
// debug sidebar (and on MQTT). Then a "modified nodes" deploy of a new
// template keeps the rbe's memory. Saves docs/editor.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withFlowdAndBrowser, mqttConnect } from './lib/harness.js';
import { Editor, until } from './lib/editor.js';

// tests/browser.rs names the file (docs/editor.png with FLOWD_UPDATE_SCREENSHOT=1).
const SCREENSHOT = process.env.FLOWD_SCREENSHOT || join(tmpdir(), 'flowd-editor.png');
const TEMPLATE = 'Temperature on {{{topic}}} changed to {{payload.temperature}} °C';

const env = withFlowdAndBrowser([]);
let page; let editor; let watcher;
const ids = {};

before(async () => {
  await env.ready;
  page = await env.browser.newPage({ viewport: { width: 1400, height: 760 } });
  page.on('pageerror', (e) => { throw e; });
  const opened = await Editor.open(page, env.flowd.url);
  editor = opened.editor;
  console.log(`first load: ${JSON.stringify(opened.metrics)}`);
});

after(async () => {
  watcher?.close();
});

async function reading(client, sensor, temperature) {
  client.publish(`sensors/${sensor}/reading`, JSON.stringify({ temperature }));
}

test('build the seed pipeline by drag and drop, configure it, deploy, see alerts', async () => {
  // Nodes from the palette, each dropped with nothing selected (no automatic wiring).
  const place = [['mqtt in', 100, 120], ['json', 270, 120], ['rbe', 420, 120], ['template', 570, 120], ['mqtt out', 750, 120], ['debug', 750, 220]];
  for (const [type, x, y] of place) {
    await editor.clickBackground();
    ids[type] = await editor.drop(type, x, y);
    assert.equal(await editor.node(ids[type]).getAttribute('data-node-type'), type);
  }
  assert.equal(await editor.wires().count(), 0, 'nothing selected when dropping: no wires yet');
  // Wires by dragging output ports to input ports.
  const chain = [['mqtt in', 'json'], ['json', 'rbe'], ['rbe', 'template'], ['template', 'mqtt out'], ['template', 'debug']];
  for (const [a, b] of chain) await editor.connect(ids[a], 0, ids[b]);
  for (const [a, b] of chain) assert.equal(await editor.wire(ids[a], 0, ids[b]).count(), 1, `${a} -> ${b} wired`);
  assert.equal(await editor.wires().count(), chain.length);

  // The forms.
  let form = await editor.edit(ids['mqtt in']);
  assert.equal(await form.selectedText('broker'), 'embedded broker', 'the embedded broker is preselected');
  await form.fill('topic', 'sensors/+/reading');
  await form.select('datatype', 'utf8');
  await form.done();
  form = await editor.edit(ids.rbe);
  await form.fill('property', 'payload.temperature');
  await form.done();
  form = await editor.edit(ids.template);
  await form.fill('template', TEMPLATE);
  await form.done();
  form = await editor.edit(ids['mqtt out']);
  assert.equal(await form.selectedText('broker'), 'embedded broker');
  await form.fill('topic', 'alerts/temperature');
  await form.done();
  form = await editor.edit(ids.debug);
  await form.fill('name', 'alerts');
  await form.done();
  assert.match(await editor.node(ids['mqtt in']).textContent(), /sensors\/\+\/reading/);
  assert.ok(await page.locator('#btn-deploy.dirty').count(), 'deploy is highlighted');

  watcher = await mqttConnect(env.flowd.mqtt, 'browser-test-watcher');
  await watcher.subscribe('alerts/temperature');
  await editor.deploy('full');
  await until(async () => /connected/.test(await editor.node(ids['mqtt in']).locator('.status-text').textContent().catch(() => '')), 'mqtt in connected');

  const sensor = await mqttConnect(env.flowd.mqtt, 'browser-test-sensor');
  // The subscription may lag the connected status: a warm-up sensor until an alert shows.
  await until(async () => {
    await reading(sensor, 'warmup', Math.random());
    return (await editor.debugMessages().count()) > 0;
  }, 'a first alert', 15000);
  // Let the warm-up alerts still in flight arrive before clearing.
  let seen = -1;
  await until(async () => {
    const n = await editor.debugMessages().count();
    const quiet = n === seen;
    seen = n;
    if (!quiet) await page.waitForTimeout(400);
    return quiet;
  }, 'the warm-up alerts to settle');
  await page.click('#debug-clear');
  assert.equal(await editor.debugMessages().count(), 0, 'cleared');

  await reading(sensor, 's1', 20);
  await reading(sensor, 's1', 20);
  await reading(sensor, 's1', 21);
  await until(async () => (await editor.debugTexts()).some((t) => t.includes('21 °C')), 'the 21 °C alert');
  const texts = await editor.debugTexts();
  assert.deepEqual(texts, [
    'Temperature on sensors/s1/reading changed to 20 °C',
    'Temperature on sensors/s1/reading changed to 21 °C',
  ], 'the repeated 20 was filtered by the rbe');
  const first = editor.debugMessages().first();
  assert.match(await first.locator('.debug-node').textContent(), /alerts/);
  assert.match(await first.locator('.debug-topic').textContent(), /sensors\/s1\/reading/);
  await until(() => watcher.messages.filter((m) => m.payload.includes('sensors/s1/')).length >= 2, 'alerts over MQTT');
  assert.deepEqual(watcher.messages.filter((m) => m.payload.includes('sensors/s1/')).map((m) => m.payload), texts);
  sensor.close();
});

test('wires show their live message rate; the editor is saved as docs/editor.png', async () => {
  const sensor = await mqttConnect(env.flowd.mqtt, 'browser-test-screenshot');
  for (const [s, t] of [['kitchen', 22.5], ['garage', 9]]) await reading(sensor, s, t);
  await until(async () => (await editor.debugTexts()).some((t) => t.includes('garage')), 'garage alert');
  await page.evaluate(() => window.flowd.model.select([]));
  await page.waitForSelector('#toast', { state: 'hidden' });
  // Readings at about 20/s from one sensor whose temperature never changes:
  // they flow through mqtt in and json, the rbe stops them.
  await reading(sensor, 'steady', 20);
  await until(async () => (await editor.debugTexts()).some((t) => t.includes('steady')), 'the steady sensor\'s first alert');
  const jsonRate = page.locator(`[data-wire-rate^="${ids.json}:0:"]`);
  const rbeRate = page.locator(`[data-wire-rate^="${ids.rbe}:0:"]`);
  const stop = Date.now() + 10000;
  let label = null;
  while (Date.now() < stop) {
    await reading(sensor, 'steady', 20);
    await page.waitForTimeout(50);
    label = (await jsonRate.count()) ? await jsonRate.textContent() : null;
    if (label && (await rbeRate.count()) === 0) break;
  }
  assert.match(label || '', /^\d+(\.\d)?\/s$/, 'json -> rbe shows messages per second');
  const rate = parseFloat(label);
  assert.ok(rate > 2 && rate < 60, `about 20 readings/s, shown ${label}`);
  assert.equal(await rbeRate.count(), 0, 'nothing passes the rbe: no rate on its wire');
  await page.screenshot({ path: SCREENSHOT });
  sensor.close();
});

test('a "modified nodes" deploy of a new template keeps the rbe state', async () => {
  const form = await editor.edit(ids.template);
  await form.fill('template', 'ALERT {{{topic}}}: {{payload.temperature}} °C');
  await form.done();
  assert.equal(await editor.node(ids.template).locator('.node-changed').count(), 1, 'the template is marked changed');
  assert.equal(await editor.node(ids.rbe).locator('.node-changed').count(), 0, 'the rbe is not');
  await editor.deploy('nodes');
  assert.equal(await page.locator('#btn-deploy').textContent(), 'Deploy nodes');
  await page.click('#debug-clear');
  const sensor = await mqttConnect(env.flowd.mqtt, 'browser-test-sensor-2');
  await reading(sensor, 's1', 21); // the rbe remembers 21: no alert
  await reading(sensor, 's1', 22);
  await until(async () => (await editor.debugTexts()).some((t) => t.includes('22 °C')), 'the 22 °C alert');
  assert.deepEqual(await editor.debugTexts(), ['ALERT sensors/s1/reading: 22 °C']);
  sensor.close();
});
