// Boot: log in when the admin API asks for it, load settings, node
// descriptors and flows, then wire the model to the canvas, palette, forms,
// sidebar, tabs, deploy, import/export, comms and shortcuts.
//
// Building a flow quickly: a node dropped from the palette while exactly one
// node is selected is wired after it (output 1 -> input) and becomes the
// selection, so a pipeline is built by dropping its nodes in order. New
// mqtt in/out nodes use the first mqtt-broker config node, and when there is
// none get a new one pointing at flowd's embedded broker.

import { get, post, h, modal, toast, auth, HttpError } from './util.js';
import { Model, TAB, inputsOf, outputsOf } from './model.js';
import { createHistory } from './history.js';
import { createCanvas } from './canvas.js';
import { createPalette } from './palette.js';
import { createForms, applyEmbeddedBroker } from './forms.js';
import { createSidebar } from './sidebar.js';
import { connectComms } from './comms.js';
import { installKeymap } from './keymap.js';
import { createDeploy } from './deploy.js';
import { createIo } from './io.js';

const MQTT_NODES = new Set(['mqtt in', 'mqtt out']);
const OTHER_DEPLOY_CHECK_MS = 1500;

async function login() {
  const prompts = await get('auth/login');
  return new Promise((resolve) => {
    const user = h('input', { id: 'login-username', type: 'text', autocomplete: 'username' });
    const pass = h('input', { id: 'login-password', type: 'password', autocomplete: 'current-password' });
    const err = h('div', { class: 'form-error', id: 'login-error' });
    modal({
      title: 'Log in to flowd', id: 'login-dialog', centered: true,
      body: h('div', {},
        h('div', { class: 'form-row' }, h('label', { for: 'login-username' }, prompts.prompts?.[0]?.label || 'Username'), h('div', { class: 'field' }, user)),
        h('div', { class: 'form-row' }, h('label', { for: 'login-password' }, prompts.prompts?.[1]?.label || 'Password'), h('div', { class: 'field' }, pass)),
        err),
      buttons: [{
        label: 'Log in', id: 'login-submit', primary: true, onclick: async (close) => {
          try {
            const t = await post('auth/token', { username: user.value, password: pass.value });
            auth.token = t.access_token;
            close();
            resolve();
          } catch (e) { err.textContent = e.message; pass.value = ''; }
        },
      }],
    });
  });
}

/** Settings, node descriptors and flows, in parallel; logs in first when the API answers 401. */
async function loadAll() {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await Promise.all([get('settings'), get('flowd/nodes'), get('flows', { 'Node-RED-API-Version': 'v2' })]);
    } catch (e) {
      if (!(e instanceof HttpError) || e.status !== 401) throw e;
      auth.token = null;
      await login();
    }
  }
  throw new Error('cannot log in');
}

/** `flowd/rates` ({interval_ms, nodes: {id: [messages per port]}}) as messages per second. */
function ratesOf(data) {
  const secs = (data?.interval_ms || 1000) / 1000;
  const out = {};
  for (const [id, counts] of Object.entries(data?.nodes || {})) out[id] = counts.map((c) => c / secs);
  return out;
}

async function boot() {
  const model = new Model();
  const [settings, descriptors, flows] = await loadAll();
  model.settings = settings;
  model.setDescriptors(descriptors);
  model.load(flows.flows, flows.rev);

  let frame = 0;
  const scheduleRender = () => { if (!frame) frame = requestAnimationFrame(() => { frame = 0; canvas.render(); }); };
  const history = createHistory(model, () => {
    document.getElementById('btn-undo').disabled = !history.canUndo;
    document.getElementById('btn-redo').disabled = !history.canRedo;
  });
  const forms = createForms(model);
  const canvas = createCanvas(model, {
    onEdit: (id) => forms.editNode(id),
    onInject: inject,
    onDebugToggle: toggleDebug,
  });
  const reveal = (id) => canvas.reveal(id);
  const sidebar = createSidebar(model, reveal);
  const deploy = createDeploy(model, reveal);
  const io = createIo(model);
  const palette = createPalette(model, canvas, dropNode);
  palette.build();

  model.addEventListener('change', () => {
    canvas.render();
    renderTabs();
    deploy.refresh();
    sidebar.refreshFilter();
    sidebar.showInfo();
  });
  model.addEventListener('selection', () => { canvas.updateSelection(); sidebar.showInfo(); });
  model.addEventListener('errors', scheduleRender);

  function dropNode(type, p) {
    const prev = model.selection.size === 1 ? model.nodes.get([...model.selection][0]) : null;
    model.change('add node', () => {
      const n = model.newNode(type, p.x, p.y);
      if (MQTT_NODES.has(type)) {
        let broker = model.configNodes('mqtt-broker')[0];
        if (!broker) {
          broker = model.newConfig('mqtt-broker');
          applyEmbeddedBroker(model, broker);
          model.add(broker);
        }
        n.broker = broker.id;
      }
      model.add(n);
      if (prev && prev.z === n.z && outputsOf(prev, model.descriptor(prev.type)) > 0 && inputsOf(n, model.descriptor(type))) {
        model.addWire(prev.id, 0, n.id);
      }
      model.select([n.id]);
    });
  }

  async function inject(id) {
    if (!model.deployed.has(id) || model.isChanged(id)) { toast('Deploy this node first', true); return; }
    try { await post(`inject/${encodeURIComponent(id)}`); toast('Injected'); } catch (e) { toast(`Inject failed: ${e.message}`, true); }
  }

  async function toggleDebug(id) {
    const n = model.nodes.get(id);
    const on = n.active === false;
    const wasDeployed = model.deployed.has(id) && !model.isChanged(id);
    n.active = on;
    if (wasDeployed) {
      model.deployed.set(id, JSON.stringify(n));
      try { await post(`debug/${encodeURIComponent(id)}/${on ? 'enable' : 'disable'}`); } catch (e) { toast(`Debug switch failed: ${e.message}`, true); }
    }
    model.emit('change', {});
  }

  // ---- tabs ---------------------------------------------------------------
  const tabList = document.getElementById('tab-list');
  function renderTabs() {
    tabList.replaceChildren(...model.tabs().map((t) => h('li', {
      class: (t.id === model.activeTab ? 'active' : '') + (t.disabled ? ' disabled' : ''), 'data-tab-id': t.id, title: t.disabled ? 'disabled' : '',
    }, h('span', { class: 'tab-label' }, t.label || t.id), h('button', { class: 'tab-close', type: 'button', title: 'Delete this flow', 'data-action': 'delete-tab' }, '\u00d7'))));
  }
  tabList.addEventListener('click', (e) => {
    const li = e.target.closest('li');
    if (!li) return;
    if (e.target.closest('[data-action="delete-tab"]')) { deleteTab(li.dataset.tabId); return; }
    if (model.activeTab !== li.dataset.tabId) { model.activeTab = li.dataset.tabId; model.selection.clear(); model.emit('change', {}); }
  });
  tabList.addEventListener('dblclick', (e) => { const li = e.target.closest('li'); if (li) editTab(li.dataset.tabId); });
  document.getElementById('tab-add').addEventListener('click', () => model.change('add flow', () => model.addTab()));

  function deleteTab(id) {
    if (model.tabs().length <= 1) { toast('A workspace keeps at least one flow', true); return; }
    model.change('delete flow', () => model.remove(id));
  }

  function editTab(id) {
    const t = model.nodes.get(id);
    const label = h('input', { id: 'tab-input-label', type: 'text', value: t.label || '' });
    const enabled = h('input', { id: 'tab-input-enabled', type: 'checkbox', checked: !t.disabled });
    const info = h('textarea', { id: 'tab-input-info', rows: 4 });
    info.value = t.info || '';
    modal({
      title: 'Edit flow', id: 'tab-dialog', centered: true,
      body: h('div', {},
        h('div', { class: 'form-row' }, h('label', { for: 'tab-input-label' }, 'Name'), h('div', { class: 'field' }, label)),
        h('div', { class: 'form-row' }, h('label', { for: 'tab-input-enabled' }, 'Enabled'), h('div', { class: 'field' }, enabled)),
        h('div', { class: 'form-row' }, h('label', { for: 'tab-input-info' }, 'Description'), h('div', { class: 'field' }, info))),
      buttons: [
        { label: 'Delete', id: 'tab-delete', danger: true, onclick: (close) => { close(); deleteTab(id); } },
        { label: 'Cancel', id: 'tab-cancel', onclick: (close) => close() },
        {
          label: 'Done', id: 'tab-done', primary: true, onclick: (close) => {
            close();
            model.change('edit flow', () => model.patch(id, (n) => { n.label = label.value; n.disabled = !enabled.checked; n.info = info.value; }));
          },
        },
      ],
    });
  }

  // ---- header buttons and shortcuts -------------------------------------------
  document.getElementById('btn-undo').addEventListener('click', () => history.undo());
  document.getElementById('btn-redo').addEventListener('click', () => history.redo());
  document.getElementById('btn-import').addEventListener('click', () => io.openImport());
  document.getElementById('btn-export').addEventListener('click', () => io.openExport());

  const deleteSelection = () => {
    const w = model.selectedWire;
    if (w) { model.change('delete wire', () => model.removeWire(w.from, w.port, w.to)); return; }
    const ids = [...model.selection];
    if (ids.length) model.change('delete', () => ids.forEach((id) => model.remove(id)));
  };
  installKeymap({
    undo: () => history.undo(),
    redo: () => history.redo(),
    copy: () => io.copy(false),
    cut: () => io.copy(true),
    paste: () => io.paste(),
    delete: deleteSelection,
    'select-all': () => model.select(model.nodesOn(model.activeTab).map((n) => n.id)),
    search: () => palette.focusSearch(),
    deploy: () => deploy.deploy(),
    export: () => io.openExport(),
    import: () => io.openImport(),
    deselect: () => model.select([]),
    edit: () => { const [id] = model.selection; if (id) forms.editNode(id); },
  });

  // ---- runtime events -------------------------------------------------------
  const connState = document.getElementById('conn-state');
  connectComms((topic, data) => {
    if (topic === 'debug') sidebar.addMessage(data);
    else if (topic.startsWith('status/')) {
      const id = topic.slice(7);
      if (data && Object.keys(data).length) model.status.set(id, data); else model.status.delete(id);
      scheduleRender();
    } else if (topic === 'flowd/dropped') sidebar.setDropped(data.dropped);
    else if (topic === 'flowd/rates') canvas.setRates(ratesOf(data));
    else if (topic === 'notification/runtime-deploy' && data.revision) {
      // Our own deploy's notice may come before its HTTP answer: look again a little later.
      setTimeout(() => {
        if (model.rev && data.revision !== model.rev) toast('Someone else deployed new flows; deploying yours will ask before replacing them');
      }, OTHER_DEPLOY_CHECK_MS);
    }
  }, (online) => {
    connState.textContent = online ? 'connected' : 'offline';
    connState.classList.toggle('online', online);
  });

  model.emit('change', {});
  window.flowd = { model, history, canvas };
  document.body.dataset.readyMs = String(Math.round(performance.now()));
  document.body.dataset.ready = 'true';
}

boot().catch((e) => {
  document.body.dataset.ready = 'error';
  toast(`The editor could not start: ${e.message}`, true);
});
