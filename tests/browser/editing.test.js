// Editing in the browser: importing a Node-RED export and running it (inject
// button, debug toggle), undo and redo, a refused deploy shown on the node at
// fault, the quick way to build the seed pipeline (automatic wiring), and
// the first-load figures.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { withFlowdAndBrowser, mqttConnect } from './lib/harness.js';
import { Editor, until } from './lib/editor.js';

const EXPORT = readFileSync(new URL('./fixtures/node-red-export.json', import.meta.url), 'utf8');

const env = withFlowdAndBrowser([]);

async function open() {
  const page = await env.browser.newPage({ viewport: { width: 1400, height: 760 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  const { editor, metrics } = await Editor.open(page, env.flowd.url);
  return { page, editor, metrics, errors };
}

test('first load: bytes, requests and time to usable', async () => {
  const { page, metrics, errors } = await open();
  console.log(`first load (cache disabled): ${metrics.bytes} bytes, ${metrics.requests} requests, usable after ${metrics.usableMs} ms`);
  assert.ok(metrics.requests > 3 && metrics.bytes > 10000, `figures measured: ${JSON.stringify(metrics)}`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('import a Node-RED export, deploy it, press its inject button, toggle its debug node', async () => {
  const { page, editor, errors } = await open();
  await page.click('#btn-import');
  await page.fill('#import-json', EXPORT);
  await page.click('#import-confirm');
  for (const [id, type] of [['a41f2c9d8e7b6a50', 'inject'], ['b52e3dae9f8c7b61', 'change'], ['c63f4ebfa09d8c72', 'debug']]) {
    assert.equal(await editor.node(id).getAttribute('data-node-type'), type, `${type} imported with its id`);
  }
  assert.equal(await editor.wire('a41f2c9d8e7b6a50', 0, 'b52e3dae9f8c7b61').count(), 1);
  assert.equal(await page.locator('#tab-list li.active .tab-label').textContent(), 'Imported from Node-RED');
  assert.match(await editor.node('a41f2c9d8e7b6a50').textContent(), /press me/);
  await editor.deploy('full');

  await editor.node('a41f2c9d8e7b6a50').locator('[data-action="inject"]').click();
  await until(async () => (await editor.debugMessages().count()) === 1, 'the injected message');
  const msg = editor.debugMessages().first();
  assert.match(await msg.locator('.debug-node').textContent(), /imported debug/);
  assert.match(await msg.locator('.debug-topic').textContent(), /greeting/);
  assert.match(await msg.locator('.debug-payload').textContent(), /hello: "from Node-RED"/, 'the object is shown as a tree');
  assert.equal(await msg.locator('details').count(), 2, 'object and its array are expandable');

  // The debug node's button switches it off in the runtime: no more messages.
  await editor.node('c63f4ebfa09d8c72').locator('[data-action="debug-toggle"]').click();
  await until(async () => (await editor.node('c63f4ebfa09d8c72').locator('.node-button.off').count()) === 1, 'the debug button off');
  assert.equal(await page.locator('#btn-deploy.dirty').count(), 0, 'toggling debug output is not a flow change');
  await editor.node('a41f2c9d8e7b6a50').locator('[data-action="inject"]').click();
  await page.waitForTimeout(500);
  assert.equal(await editor.debugMessages().count(), 1, 'a disabled debug node shows nothing');
  await editor.node('c63f4ebfa09d8c72').locator('[data-action="debug-toggle"]').click();
  await until(async () => (await editor.node('c63f4ebfa09d8c72').locator('.node-button.off').count()) === 0, 'the debug button on');
  await editor.node('a41f2c9d8e7b6a50').locator('[data-action="inject"]').click();
  await until(async () => (await editor.debugMessages().count()) === 2, 'a message again');

  // Export gives the same nodes back.
  await page.click('#btn-export');
  await page.click('#export-scope-flow');
  const exported = JSON.parse(await page.inputValue('#export-json'));
  assert.deepEqual(exported.map((n) => n.id).sort(), JSON.parse(EXPORT).map((n) => n.id).sort());
  await page.click('#export-close');
  assert.deepEqual(errors, []);
  await page.close();
});

test('undo and redo: add, wire, move, delete', async () => {
  const { page, editor, errors } = await open();
  await page.click('#tab-add');
  const inject = await editor.drop('inject', 150, 300);
  const debug = await editor.drop('debug', 400, 300); // dropped with the inject selected: wired after it
  assert.equal(await editor.wire(inject, 0, debug).count(), 1, 'automatic wire');
  const before = await editor.position(debug);
  await editor.move(debug, 0, 80);
  const moved = await editor.position(debug);
  assert.notEqual(moved, before);
  // Wiring backwards (input port to output port) adds nothing twice.
  const inPort = await editor.center(editor.node(debug).locator('[data-port="in"]'));
  const outPort = await editor.center(editor.node(inject).locator('[data-port="out-0"]'));
  await page.mouse.move(inPort.x, inPort.y);
  await page.mouse.down();
  await page.mouse.move(outPort.x, outPort.y, { steps: 8 });
  await page.mouse.up();
  assert.equal(await editor.wires().count(), 1, 'the same wire is not added twice');
  await editor.clickBackground();
  await editor.node(inject).locator('.node-body').click();
  await editor.key('Delete');
  assert.equal(await editor.node(inject).count(), 0, 'deleted');
  assert.equal(await editor.wires().count(), 0, 'with its wire');

  await editor.key('Control+z');
  assert.equal(await editor.node(inject).count(), 1, 'undo delete');
  assert.equal(await editor.wire(inject, 0, debug).count(), 1, 'and its wire');
  await editor.key('Control+z');
  assert.equal(await editor.position(debug), before, 'undo move');
  await editor.key('Control+z');
  assert.equal(await editor.node(debug).count(), 0, 'undo add debug (and its wire)');
  assert.equal(await editor.wires().count(), 0);
  await editor.key('Control+z');
  assert.equal(await editor.node(inject).count(), 0, 'undo add inject');

  await editor.key('Control+y');
  await editor.key('Control+y');
  assert.equal(await editor.wire(inject, 0, debug).count(), 1, 'redo add + wire');
  await editor.key('Control+y');
  assert.equal(await editor.position(debug), moved, 'redo move');
  await page.click('#btn-redo');
  assert.equal(await editor.node(inject).count(), 0, 'redo delete');
  assert.ok(await page.locator('#btn-redo').isDisabled());

  // Copy and paste: new ids, same wiring.
  await editor.key('Control+z');
  await editor.key('Control+a');
  await editor.key('Control+c');
  await editor.key('Control+v');
  assert.equal(await editor.nodes().count(), 4);
  assert.equal(await editor.wires().count(), 2);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a refused deploy shows its errors on the node at fault', async () => {
  const { page, editor, errors } = await open();
  await page.click('#tab-add');
  const sw = await editor.drop('switch', 300, 200);
  const form = await editor.edit(sw);
  await form.fill('rules', '[{"t":"regex","v":"([a-z","vt":"str","case":false},{"t":"else"}]');
  await form.done();
  assert.equal(await editor.node(sw).locator('[data-port^="out-"]').count(), 2, 'two rules, two outputs');
  await editor.deploy('full', { expectError: true });
  await until(async () => (await editor.node(sw).getAttribute('class')).includes('invalid'), 'the switch marked');
  const text = await editor.node(sw).locator('.node-error-text').allTextContents();
  assert.ok(text.some((t) => /rules/.test(t)), `error under the node: ${text}`);
  assert.match(await page.locator('#deploy-errors').textContent(), /switch/);
  assert.equal(await page.locator('#btn-deploy.dirty').count(), 1, 'still not deployed');
  const flows = await (await fetch(`${env.flowd.url}flows`)).json();
  assert.ok(!flows.some((n) => n.id === sw), 'nothing deployed');

  const fix = await editor.edit(sw);
  await fix.fill('rules', '[{"t":"regex","v":"[a-z]+","vt":"str","case":false},{"t":"else"}]');
  await fix.done();
  await editor.deploy('full');
  assert.ok(!(await editor.node(sw).getAttribute('class')).includes('invalid'), 'errors cleared');
  assert.ok(await page.locator('#deploy-errors').isHidden());
  assert.deepEqual(errors, []);
  await page.close();
});

test('the seed pipeline the quick way: drop nodes in order, they wire themselves', async () => {
  const { page, editor, errors } = await open();
  await page.click('#tab-add');
  editor.actions = 0;
  const types = ['mqtt in', 'json', 'rbe', 'template', 'debug'];
  const ids = [];
  for (const [i, t] of types.entries()) ids.push(await editor.drop(t, 100 + i * 160, 450));
  for (let i = 1; i < ids.length; i++) assert.equal(await editor.wire(ids[i - 1], 0, ids[i]).count(), 1, `${types[i - 1]} -> ${types[i]}`);
  let form = await editor.edit(ids[0]);
  await form.fill('topic', 'quick/+/reading');
  await form.select('datatype', 'utf8');
  await form.done();
  form = await editor.edit(ids[2]);
  await form.fill('property', 'payload.temperature');
  await form.done();
  form = await editor.edit(ids[3]);
  await form.fill('template', 'quick {{payload.temperature}}');
  await form.done();
  await editor.deploy('full');
  console.log(`seed pipeline (mqtt in -> json -> rbe -> template -> debug), configured and deployed: ${editor.actions} user actions`);
  const sensor = await mqttConnect(env.flowd.mqtt, 'browser-test-quick');
  await until(async () => {
    sensor.publish('quick/a/reading', JSON.stringify({ temperature: Math.random() }));
    return (await editor.debugTexts()).some((t) => t.startsWith('quick 0.'));
  }, 'a quick alert', 15000);
  sensor.close();
  assert.deepEqual(errors, []);
  await page.close();
});

test('tabs: add, rename, disable, delete and undo; palette search with Ctrl-F', async () => {
  const { page, editor, errors } = await open();
  const tabs = page.locator('#tab-list li');
  const count = await tabs.count();
  await page.click('#tab-add');
  assert.equal(await tabs.count(), count + 1);
  const tab = tabs.last();
  await tab.locator('.tab-label').dblclick();
  await page.fill('#tab-input-label', 'Renamed flow');
  await page.uncheck('#tab-input-enabled');
  await page.click('#tab-done');
  assert.equal(await tab.locator('.tab-label').textContent(), 'Renamed flow');
  assert.match(await tab.getAttribute('class'), /disabled/);
  await tab.locator('[data-action="delete-tab"]').click();
  assert.equal(await tabs.count(), count);
  await page.locator('#canvas').focus();
  await editor.key('Control+z');
  assert.equal(await tabs.count(), count + 1, 'undo brings the flow back');
  assert.equal(await tabs.last().locator('.tab-label').textContent(), 'Renamed flow');

  await page.locator('#canvas').focus();
  await editor.key('Control+f');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'palette-search');
  await page.keyboard.type('mqt');
  const visible = await page.locator('.palette-node:not(.hidden)').evaluateAll((els) => els.map((e) => e.dataset.paletteType));
  assert.deepEqual(visible.sort(), ['mqtt in', 'mqtt out']);
  await page.keyboard.press('Enter'); // adds the first match at the centre
  const added = await page.locator('#node-layer .node.selected').getAttribute('data-node-id');
  assert.equal(await editor.node(added).getAttribute('data-node-type'), 'mqtt in');
  assert.deepEqual(errors, []);
  await page.close();
});

test('config nodes: the embedded broker is created once, shown and editable in a nested form', async () => {
  const { page, editor, errors } = await open();
  await page.click('#tab-add');
  const a = await editor.drop('mqtt in', 150, 150);
  await editor.clickBackground();
  const b = await editor.drop('mqtt out', 400, 150);
  const brokers = await page.evaluate(() => [...window.flowd.model.nodes.values()].filter((n) => n.type === 'mqtt-broker').map((n) => n.id));
  const [ba, bb] = await page.evaluate(([x, y]) => [window.flowd.model.nodes.get(x).broker, window.flowd.model.nodes.get(y).broker], [a, b]);
  assert.equal(ba, bb, 'both use the same broker');
  assert.ok(brokers.includes(ba));
  const form = await editor.edit(a);
  const nested = await editor.opensForm(() => page.click('#node-input-broker-edit'));
  assert.equal(await nested.value('broker'), '127.0.0.1');
  assert.equal(await nested.value('port'), '${FLOWD_MQTT_PORT}', 'the embedded broker\'s port, as an env reference');
  assert.equal(await nested.field('password').getAttribute('type'), 'password');
  await nested.fill('name', 'local');
  await nested.done();
  assert.equal(await form.selectedText('broker'), 'local', 'the picker shows the renamed broker');
  await form.done();
  assert.deepEqual(errors, []);
  await page.close();
});

test('import from a file, export as a download, filter the debug sidebar by node', async () => {
  const { page, editor, errors } = await open();
  const clash = await page.evaluate(() => window.flowd.model.nodes.has('a41f2c9d8e7b6a50'));
  await page.click('#btn-import');
  await page.setInputFiles('#import-file', { name: 'flow.json', mimeType: 'application/json', buffer: Buffer.from(EXPORT) });
  await until(async () => (await page.inputValue('#import-json')).includes('press me'), 'the file read into the text box');
  await page.click('#import-confirm');
  assert.equal(await page.locator('#tab-list li.active .tab-label').textContent(), 'Imported from Node-RED');
  // Ids that exist already (imported by an earlier test) are replaced by new ones.
  const injects = await page.locator('#node-layer .node[data-node-type="inject"]').evaluateAll((els) => els.map((e) => e.dataset.nodeId));
  assert.equal(injects.length, 1);
  assert.equal(injects[0] === 'a41f2c9d8e7b6a50', !clash, `clash ${clash}, id ${injects[0]}`);
  await editor.deploy('full');
  await editor.node(injects[0]).locator('[data-action="inject"]').click();
  await until(async () => (await editor.debugMessages().count()) >= 1, 'a message');
  const debugIds = await page.locator('#debug-filter option').evaluateAll((els) => els.map((e) => e.value).filter(Boolean));
  assert.ok(debugIds.length >= (clash ? 2 : 1), 'every debug node can be picked');
  const copyDebug = await page.evaluate((id) => window.flowd.model.nodes.get(id).wires[0][0], await page.evaluate((i) => window.flowd.model.nodes.get(i).wires[0][0], injects[0]));
  await page.selectOption('#debug-filter', copyDebug);
  const shown = await page.locator('#debug-messages .debug-msg:not([hidden])').evaluateAll((els) => els.map((e) => e.dataset.nodeId));
  assert.ok(shown.length >= 1 && shown.every((id) => id === copyDebug), `only ${copyDebug}: ${shown}`);

  await page.click('#btn-export');
  await page.click('#export-scope-all');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-download')]);
  assert.equal(download.suggestedFilename(), 'flows.json');
  const saved = JSON.parse(await (await download.createReadStream()).toArray().then((c) => Buffer.concat(c).toString()));
  assert.ok(saved.some((n) => n.id === injects[0]), 'the download holds the flows');
  assert.ok(saved.every((n) => n.credentials === undefined), 'never credentials');
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.flowd.url });
  const text = await page.inputValue('#export-json');
  await page.click('#export-copy');
  await page.waitForSelector('#export-dialog', { state: 'detached' });
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), text, 'copied to the clipboard');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a wire is selected by a click and deleted; a deploy over someone else\'s asks first', async () => {
  const a = await open();
  const b = await open();
  await a.page.click('#tab-add');
  const inject = await a.editor.drop('inject', 150, 400);
  const debug = await a.editor.drop('debug', 400, 400);
  await a.editor.clickBackground();
  const debug2 = await a.editor.drop('debug', 400, 500);
  // Wired backwards: from debug2's input to the inject's output.
  const inPort = await a.editor.center(a.editor.node(debug2).locator('[data-port="in"]'));
  const outPort = await a.editor.center(a.editor.node(inject).locator('[data-port="out-0"]'));
  await a.page.mouse.move(inPort.x, inPort.y);
  await a.page.mouse.down();
  await a.page.mouse.move(outPort.x, outPort.y, { steps: 8 });
  await a.page.mouse.up();
  assert.equal(await a.editor.wire(inject, 0, debug2).count(), 1, 'wired from the input port');
  const wire = a.editor.wire(inject, 0, debug);
  const box = await wire.boundingBox();
  await a.page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  assert.match(await wire.getAttribute('class'), /selected/);
  await a.editor.key('Delete');
  assert.equal(await a.editor.wire(inject, 0, debug).count(), 0, 'wire deleted');
  assert.equal(await a.editor.node(debug).count(), 1, 'nodes kept');
  await a.editor.deploy('full');

  // b loaded the flows before a's deploy: its deploy is a conflict.
  await b.page.click('#tab-add');
  await b.editor.drop('inject', 200, 200);
  await b.page.click('#btn-deploy');
  await b.page.waitForSelector('#deploy-conflict');
  let flows = await (await fetch(`${env.flowd.url}flows`)).json();
  assert.ok(flows.some((n) => n.id === inject), 'nothing replaced yet');
  await b.page.click('#deploy-overwrite');
  await b.page.waitForSelector('#btn-deploy:not(.dirty)');
  flows = await (await fetch(`${env.flowd.url}flows`)).json();
  assert.ok(!flows.some((n) => n.id === inject), 'b\'s flows replaced a\'s after confirmation');
  assert.deepEqual([...a.errors, ...b.errors], []);
  await a.page.close();
  await b.page.close();
});
