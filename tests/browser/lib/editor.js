// Page objects for the editor: palette, canvas, edit form, deploy, debug sidebar.
// Every interaction goes through the mouse and keyboard as a user's would;
// `actions` counts them (drags, clicks, typed fields, key presses).

export class Editor {
  constructor(page) {
    this.page = page;
    this.actions = 0;
  }

  /** Opens the editor at `url`; resolves with load figures (bytes, requests, ms to usable). */
  static async open(page, url) {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    let bytes = 0;
    let requests = 0;
    cdp.on('Network.requestWillBeSent', () => { requests += 1; });
    cdp.on('Network.loadingFinished', (e) => { bytes += e.encodedDataLength; });
    cdp.on('Network.webSocketCreated', () => { requests += 1; });
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 15000 });
    const state = await page.evaluate(() => document.body.dataset.ready);
    if (state !== 'true') throw new Error(`the editor did not start: ${await page.locator('#toast').textContent()}`);
    // Set by the editor when it has drawn the flows and takes input (ms since navigation start).
    const usableMs = Number(await page.evaluate(() => document.body.dataset.readyMs));
    await page.waitForSelector('#conn-state.online', { timeout: 10000 });
    await page.waitForLoadState('networkidle');
    await cdp.detach();
    return { editor: new Editor(page), metrics: { bytes, requests, usableMs: Math.round(usableMs) } };
  }

  async canvasBox() { return this.page.locator('#canvas').boundingBox(); }

  node(id) { return this.page.locator(`#node-layer [data-node-id="${id}"]`); }

  nodes() { return this.page.locator('#node-layer .node'); }

  wires() { return this.page.locator('#wire-layer path.wire'); }

  wire(from, port, to) { return this.page.locator(`#wire-layer path[data-wire-from="${from}"][data-wire-port="${port}"][data-wire-to="${to}"]`); }

  async selectedIds() {
    return this.page.locator('#node-layer .node.selected').evaluateAll((els) => els.map((e) => e.dataset.nodeId));
  }

  /** Drags `type` from the palette to canvas point (x, y); returns the new node's id. */
  async drop(type, x, y) {
    const before = new Set(await this.nodes().evaluateAll((els) => els.map((e) => e.dataset.nodeId)));
    const item = this.page.locator(`.palette-node[data-palette-type="${type}"]`);
    const b = await item.boundingBox();
    const c = await this.canvasBox();
    await this.page.mouse.move(b.x + b.width / 2, b.y + b.height / 2);
    await this.page.mouse.down();
    await this.page.mouse.move(c.x + x, c.y + y, { steps: 8 });
    await this.page.mouse.up();
    this.actions += 1;
    const after = await this.nodes().evaluateAll((els) => els.map((e) => e.dataset.nodeId));
    const added = after.filter((id) => !before.has(id));
    if (added.length !== 1) throw new Error(`dropping ${type} added ${added.length} nodes`);
    return added[0];
  }

  /** Clicks an empty part of the canvas (clears the selection). */
  async clickBackground() {
    const c = await this.canvasBox();
    await this.page.mouse.click(c.x + 30, c.y + c.height - 40);
    this.actions += 1;
  }

  async center(locator) {
    const b = await locator.boundingBox();
    return { x: b.x + b.width / 2, y: b.y + b.height / 2 };
  }

  /** Drags from `from`'s output `port` to `to`'s input port. */
  async connect(from, port, to) {
    const a = await this.center(this.node(from).locator(`[data-port="out-${port}"]`));
    const b = await this.center(this.node(to).locator('[data-port="in"]'));
    await this.page.mouse.move(a.x, a.y);
    await this.page.mouse.down();
    await this.page.mouse.move(b.x, b.y, { steps: 10 });
    await this.page.mouse.up();
    this.actions += 1;
  }

  /** Drags node `id` by (dx, dy) screen pixels. */
  async move(id, dx, dy) {
    const p = await this.center(this.node(id).locator('.node-body'));
    await this.page.mouse.move(p.x, p.y);
    await this.page.mouse.down();
    await this.page.mouse.move(p.x + dx, p.y + dy, { steps: 6 });
    await this.page.mouse.up();
    this.actions += 1;
  }

  async position(id) {
    return this.node(id).evaluate((el) => el.getAttribute('transform'));
  }

  /** Opens node `id`'s edit form. */
  async edit(id) {
    return this.opensForm(() => this.node(id).locator('.node-body').dblclick());
  }

  /** Runs `act` (one user action) and waits for the form it opens. */
  async opensForm(act) {
    const open = await this.page.locator('#dialog-layer > .modal-backdrop').count();
    await act();
    this.actions += 1;
    await this.page.waitForFunction((n) => document.querySelectorAll('#dialog-layer > .modal-backdrop').length > n, open);
    return this.form();
  }

  form() { return new Form(this); }

  async key(combo) {
    await this.page.keyboard.press(combo);
    this.actions += 1;
  }

  /** Chooses the deploy type in the menu (if different) and deploys; resolves when it succeeded. */
  async deploy(type = 'full', { expectError = false } = {}) {
    const current = await this.page.locator('#btn-deploy').getAttribute('data-deploy-type');
    if (current !== type) {
      await this.page.click('#btn-deploy-menu');
      await this.page.click(`#deploy-menu [data-deploy-type="${type}"]`);
      this.actions += 2;
    }
    await this.page.click('#btn-deploy');
    this.actions += 1;
    if (expectError) {
      await this.page.waitForSelector('#deploy-errors:not([hidden])');
    } else {
      await this.page.waitForSelector('#btn-deploy:not(.dirty)', { timeout: 10000 });
    }
  }

  debugMessages() { return this.page.locator('#debug-messages .debug-msg'); }

  async debugTexts() {
    return this.page.locator('#debug-messages .debug-msg .debug-payload').allTextContents();
  }
}

/** The topmost open edit form. */
export class Form {
  constructor(editor) {
    this.editor = editor;
    this.page = editor.page;
    this.root = this.page.locator('#dialog-layer > .modal-backdrop').last();
  }

  field(prop) { return this.root.locator(`[id$="-input-${prop}"]`).first(); }

  async fill(prop, value) { await this.field(prop).fill(value); this.editor.actions += 1; }

  async select(prop, value) { await this.field(prop).selectOption(value); this.editor.actions += 1; }

  async typed(prop, type, value) {
    await this.root.locator(`[id$="-input-${prop}-type"]`).selectOption(type);
    await this.field(prop).fill(value);
    this.editor.actions += 2;
  }

  async value(prop) { return this.field(prop).inputValue(); }

  async selectedText(prop) { return this.field(prop).evaluate((el) => el.selectedOptions[0]?.textContent); }

  async done() {
    const count = await this.page.locator('#dialog-layer > .modal-backdrop').count();
    await this.root.locator('#edit-done').click();
    this.editor.actions += 1;
    await this.page.waitForFunction((n) => document.querySelectorAll('#dialog-layer > .modal-backdrop').length < n, count);
  }
}

/** Waits until `fn()` is truthy (polling, bounded). */
export async function until(fn, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
