// The comms websocket comes back by itself after flowd restarts: the header
// says offline meanwhile, and node status and debug messages flow again after.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withFlowdAndBrowser } from './lib/harness.js';
import { Editor, until } from './lib/editor.js';

const FLOWS = [
  { id: 't1', type: 'tab', label: 'Restart' },
  { id: 'i1', type: 'inject', z: 't1', name: 'go', props: [{ p: 'payload', v: 'after restart', vt: 'str' }], x: 120, y: 80, wires: [['d1']] },
  { id: 'd1', type: 'debug', z: 't1', name: 'out', tostatus: true, x: 320, y: 80, wires: [] },
];

const env = withFlowdAndBrowser(FLOWS);

test('the editor reconnects to a restarted flowd', async () => {
  const page = await env.browser.newPage();
  const { editor } = await Editor.open(page, env.flowd.url);
  assert.equal(await page.locator('#conn-state').textContent(), 'connected');
  await page.evaluate(() => {
    const el = document.getElementById('conn-state');
    window.connStates = [];
    new MutationObserver(() => window.connStates.push(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
  });
  await env.flowd.restart(1500);
  await until(async () => (await page.evaluate(() => window.connStates)).at(-1) === 'connected', 'reconnected', 20000);
  assert.ok((await page.evaluate(() => window.connStates)).includes('offline'), 'offline was shown while flowd was down');
  await editor.node('i1').locator('[data-action="inject"]').click();
  await until(async () => (await editor.debugTexts()).includes('after restart'), 'a debug message after the restart');
  await until(async () => /after restart/.test(await editor.node('d1').locator('.status-text').textContent().catch(() => '')), 'the debug node status');
  await page.close();
});
