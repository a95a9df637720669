// With admin users in flowd.toml the editor's files load without a login,
// the editor asks for one in-page, then uses a bearer token for the API and
// authenticates the comms websocket in-band.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withFlowdAndBrowser } from './lib/harness.js';
import { Editor, until } from './lib/editor.js';

// bcrypt of "editor-test-pw" (cost 4): a test fixture, not a secret.
const HASH = '$2b$04$LWqU425.e4AE58RnMYODoex9UO3uD1YEKaolQaIQ9ZFfv1o51SuaC';
const FLOWS = [
  { id: 't1', type: 'tab', label: 'Secured' },
  { id: 'i1', type: 'inject', z: 't1', name: 'go', props: [{ p: 'payload', v: 'authenticated', vt: 'str' }], x: 120, y: 80, wires: [['d1']] },
  { id: 'd1', type: 'debug', z: 't1', name: 'out', x: 320, y: 80, wires: [] },
];

const env = withFlowdAndBrowser(FLOWS, { settings: `[admin]\nusers = [{ username = "admin", password = "${HASH}", permissions = "*" }]\n` });

test('log in in-page, then the API and comms work with the token', async () => {
  assert.equal((await fetch(`${env.flowd.url}flows`)).status, 401, 'the API needs a login');
  assert.equal((await fetch(env.flowd.url)).status, 200, 'the editor shell is public');
  const page = await env.browser.newPage({ viewport: { width: 1200, height: 700 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(env.flowd.url);
  await page.waitForSelector('#login-dialog');
  await page.fill('#login-username', 'admin');
  await page.fill('#login-password', 'wrong');
  await page.click('#login-submit');
  await until(async () => (await page.locator('#login-error').textContent()).length > 0, 'a login error');
  assert.equal(await page.locator('#login-password').inputValue(), '', 'the wrong password is cleared');
  await page.fill('#login-password', 'editor-test-pw');
  await page.press('#login-password', 'Enter');
  await page.waitForFunction(() => document.body.dataset.ready === 'true');
  const editor = new Editor(page);
  assert.equal(await editor.node('i1').getAttribute('data-node-type'), 'inject');
  await page.waitForSelector('#conn-state.online');
  await editor.node('i1').locator('[data-action="inject"]').click();
  await until(async () => (await editor.debugTexts()).includes('authenticated'), 'the debug message over authenticated comms');
  // Ctrl-D deploys (with the token).
  await editor.move('d1', 0, 60);
  assert.equal(await page.locator('#btn-deploy.dirty').count(), 1);
  await page.locator('#canvas').focus();
  await editor.key('Control+d');
  await page.waitForSelector('#btn-deploy:not(.dirty)');
  const stored = await page.evaluate(() => sessionStorage.getItem('flowd-token'));
  const flows = await (await fetch(`${env.flowd.url}flows`, { headers: { Authorization: `Bearer ${stored}` } })).json();
  assert.equal(flows.find((n) => n.id === 'd1').y, 140, 'the moved node was deployed');
  assert.deepEqual(errors, []);
  await page.close();
});
