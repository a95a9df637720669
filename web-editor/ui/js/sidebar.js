// The sidebar: the debug panel (time, node, topic, payload pretty-printed and
// expandable; clear; filter by node; how many messages the server dropped
// for this browser) and the info panel (the selected node's help).

import { h } from './util.js';
import { labelOf } from './model.js';

const MAX_MESSAGES = 500;
const COLLAPSE_ABOVE = 8;

export function createSidebar(model, reveal) {
  const list = document.getElementById('debug-messages');
  const filterSel = document.getElementById('debug-filter');
  const dropped = document.getElementById('debug-dropped');
  const info = document.getElementById('info-panel');

  for (const b of document.querySelectorAll('#sidebar-tabs button')) {
    b.addEventListener('click', () => {
      for (const o of document.querySelectorAll('#sidebar-tabs button')) {
        o.classList.toggle('active', o === b);
        document.getElementById(o.dataset.panel).hidden = o !== b;
      }
    });
  }
  document.getElementById('debug-clear').addEventListener('click', () => list.replaceChildren());
  filterSel.addEventListener('change', applyFilter);
  list.addEventListener('click', (e) => {
    const n = e.target.closest('.debug-node');
    if (n) reveal(n.dataset.nodeId);
  });

  function applyFilter() {
    const want = filterSel.value;
    for (const li of list.children) li.hidden = !!want && li.dataset.nodeId !== want;
  }

  /** Lists every debug node (and nodes that have logged) in the filter. */
  function refreshFilter() {
    const current = filterSel.value;
    const debugNodes = [...model.nodes.values()].filter((n) => n.type === 'debug');
    filterSel.replaceChildren(h('option', { value: '' }, 'all nodes'),
      ...debugNodes.map((n) => h('option', { value: n.id }, labelOf(n, model.descriptor(n.type)))));
    filterSel.value = debugNodes.some((n) => n.id === current) ? current : '';
    applyFilter();
  }

  function addMessage(m) {
    const node = model.nodes.get(m.id);
    const name = m.name || (node ? labelOf(node, model.descriptor(node.type)) : m.id);
    const now = new Date();
    const time = `${now.toLocaleTimeString()}.${String(now.getMilliseconds()).padStart(3, '0')}`;
    const level = m.level === 20 ? 'error' : m.level === 30 ? 'warn' : '';
    const meta = h('div', { class: 'debug-meta' },
      h('span', { class: 'debug-time' }, time),
      h('span', { class: 'debug-node', 'data-node-id': m.id, title: 'show the node' }, name),
      m.topic !== undefined ? h('span', { class: 'debug-topic' }, `topic: ${m.topic}`) : null,
      h('span', { class: 'debug-format' }, m.property ? `msg.${m.property} : ${m.format}` : m.format || ''));
    const li = h('li', { class: 'debug-msg' + (level ? ` level-${level}` : ''), 'data-node-id': m.id }, meta, h('div', { class: 'debug-payload' }, render(m)));
    if (filterSel.value && filterSel.value !== m.id) li.hidden = true;
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 20;
    list.append(li);
    while (list.children.length > MAX_MESSAGES) list.firstElementChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function setDropped(n) {
    dropped.hidden = !n;
    dropped.textContent = `${n} dropped`;
    dropped.title = `${n} debug messages came faster than this browser read them and were not shown`;
  }

  function showInfo() {
    const [id] = model.selection;
    const n = model.nodes.get(id) || model.nodes.get(model.activeTab);
    if (!n) { info.replaceChildren(); return; }
    const d = model.descriptor(n.type);
    info.replaceChildren(
      h('h3', {}, n.type === 'tab' ? `Flow "${n.label}"` : `${labelOf(n, d)} (${n.type})`),
      h('div', { class: 'debug-meta' }, `id ${n.id}`),
      n.info ? h('pre', {}, n.info) : null,
      d?.help ? h('pre', {}, d.help) : null);
  }

  return { addMessage, setDropped, refreshFilter, showInfo };
}

/** A debug message's value: objects and arrays as an expandable tree. */
function render(m) {
  const f = m.format || '';
  if (/^(Object|array)/.test(f)) {
    try { return tree(JSON.parse(m.msg), true); } catch { /* shown as text */ }
  }
  if (f.startsWith('string')) return h('span', { class: 'json-str' }, m.msg);
  if (f === 'number' || f === 'boolean' || f === 'null' || f === 'undefined') return h('span', { class: 'json-num' }, String(m.msg));
  return h('span', {}, typeof m.msg === 'string' ? m.msg : JSON.stringify(m.msg));
}

function tree(v, open) {
  if (v === null || typeof v !== 'object') {
    const cls = typeof v === 'string' ? 'json-str' : typeof v === 'number' ? 'json-num' : 'json-lit';
    return h('span', { class: cls }, typeof v === 'string' ? JSON.stringify(v) : String(v));
  }
  const entries = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
  const summary = Array.isArray(v) ? `array[${v.length}]` : `{ ${entries.slice(0, 3).map(([k]) => k).join(', ')}${entries.length > 3 ? ', ...' : ''} }`;
  return h('details', { open: open && entries.length <= COLLAPSE_ABOVE ? true : undefined },
    h('summary', {}, summary),
    entries.map(([k, x]) => h('div', {}, h('span', { class: 'json-key' }, `${k}: `), tree(x, false))));
}
