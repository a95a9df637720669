// Edit forms generated from node descriptors: text, multi-line, number,
// checkbox, select, typed inputs (value + type), config-node pickers (add and
// edit a config node, e.g. an mqtt-broker, in a nested form), structured
// values as JSON, and credential fields (passwords are never shown: a stored
// one reads as "unchanged" and is only sent when retyped).

import { h, get, modal, clone } from './util.js';
import { outputsOf } from './model.js';

const TYPE_LABELS = {
  str: 'string', num: 'number', bool: 'boolean', json: 'JSON', msg: 'msg.', flow: 'flow.', global: 'global.',
  env: 'env var', date: 'timestamp', bin: 'buffer', re: 'regex', jsonata: 'expression',
};
const VALUELESS_TYPES = new Set(['date']);

export function createForms(model) {
  /** Opens the edit form of node `id`. */
  async function editNode(id) {
    const node = model.nodes.get(id);
    if (!node) return;
    const d = model.descriptor(node.type);
    const isConfig = model.isConfigType(node.type);
    await openForm(node, d, {
      prefix: isConfig ? 'node-config-input-' : 'node-input-',
      title: `Edit ${node.type} node`,
      onDone: (values, creds) => model.change('edit', () => model.patch(id, (n) => applyValues(n, d, values, creds))),
      onDelete: () => model.change('delete', () => model.remove(id)),
    });
  }

  /** Opens the form of a new config node of `type`; resolves to its id or null. */
  function addConfig(type) {
    const node = model.newConfig(type);
    const d = model.descriptor(type);
    if (type === 'mqtt-broker') applyEmbeddedBroker(model, node);
    return new Promise((resolve) => {
      openForm(node, d, {
        prefix: 'node-config-input-',
        title: `Add new ${type} config node`,
        onDone: (values, creds) => {
          applyValues(node, d, values, creds);
          model.change('add config node', () => model.add(node));
          resolve(node.id);
        },
        onCancel: () => resolve(null),
      });
    });
  }

  async function openForm(node, d, { prefix, title, onDone, onDelete, onCancel }) {
    const fields = [];
    const body = h('form', { class: 'node-form', 'data-form-type': node.type, autocomplete: 'off' });
    body.addEventListener('submit', (e) => e.preventDefault());
    for (const p of d?.properties || []) {
      const f = field(p, node[p.name], node, prefix);
      fields.push(f);
      body.append(f.row);
    }
    let stored = {};
    if ((d?.credentials || []).length) {
      if (model.deployed.has(node.id)) {
        try { stored = await get(`credentials/${encodeURIComponent(node.type)}/${encodeURIComponent(node.id)}`); } catch { stored = {}; }
      }
      for (const c of d.credentials) {
        const f = credentialField(c, stored, node.credentials, prefix);
        fields.push(f);
        body.append(f.row);
      }
    }
    if (!model.isConfigType(node.type) && node.type !== 'tab') {
      const enabled = h('input', { type: 'checkbox', id: `${prefix}enabled`, checked: !node.d });
      body.append(h('div', { class: 'form-row' }, h('label', { for: enabled.id }, 'Enabled'), h('div', { class: 'field' }, enabled)));
      fields.push({ name: 'd', read: () => (enabled.checked ? undefined : true), validate: () => null });
    }
    if (!d) body.append(h('p', { class: 'form-error' }, `flowd has no node type "${node.type}": this node cannot run.`));
    if (d?.help) body.append(h('div', { class: 'help' }, d.help));
    const buttons = [];
    if (onDelete) buttons.push({ label: 'Delete', id: 'edit-delete', danger: true, onclick: (close) => { close(); onDelete(); } });
    buttons.push({ label: 'Cancel', id: 'edit-cancel', onclick: (close) => { close(); if (onCancel) onCancel(); } });
    buttons.push({
      label: 'Done', id: 'edit-done', primary: true, onclick: (close) => {
        let ok = true;
        const values = {};
        const creds = {};
        for (const f of fields) {
          const err = f.validate();
          f.row?.classList.toggle('invalid', !!err);
          f.row?.querySelector('.form-error')?.remove();
          if (err) { ok = false; f.row.append(h('div', { class: 'form-error' }, err)); continue; }
          if (f.credential) { const v = f.read(); if (v !== undefined) creds[f.name] = v; } else Object.assign(values, f.readAll ? f.readAll() : { [f.name]: f.read() });
        }
        if (!ok) return;
        close();
        onDone(values, creds);
      },
    });
    modal({ title, id: 'edit-dialog', body, buttons, onCancel });
  }

  function field(p, value, node, prefix) {
    const id = prefix + p.name;
    const label = h('label', { for: id }, p.label || p.name);
    const wrap = h('div', { class: 'field' });
    const row = h('div', { class: 'form-row', 'data-property': p.name }, label, wrap);
    const required = (v) => (p.required && (v === '' || v === undefined || v === null) ? `${p.label || p.name} is required` : null);
    switch (p.kind) {
      case 'multiline': {
        const el = h('textarea', { id, rows: 6, spellcheck: 'false' });
        el.value = value ?? '';
        wrap.append(el);
        return { name: p.name, row, read: () => el.value, validate: () => required(el.value) };
      }
      case 'number': {
        const el = h('input', { id, type: 'text', inputmode: 'decimal', value: value ?? '' });
        wrap.append(el);
        const asNumber = typeof p.default === 'number';
        return {
          name: p.name, row,
          read: () => (asNumber && el.value.trim() !== '' && !Number.isNaN(Number(el.value)) ? Number(el.value) : el.value),
          validate: () => required(el.value) || (el.value.trim() !== '' && Number.isNaN(Number(el.value)) && !/^\$\{.+\}$/.test(el.value.trim()) ? 'not a number' : null),
        };
      }
      case 'bool': {
        const el = h('input', { id, type: 'checkbox', checked: value === true || value === 'true' });
        wrap.append(el);
        const asString = typeof p.default === 'string';
        return { name: p.name, row, read: () => (asString ? String(el.checked) : el.checked), validate: () => null };
      }
      case 'select': {
        const el = h('select', { id }, p.options.map(([v, l]) => h('option', { value: v }, l)));
        el.value = value === undefined || value === null ? '' : String(value);
        if (el.selectedIndex < 0 && p.options.length) el.value = String(p.default ?? p.options[0][0]);
        wrap.append(el);
        return { name: p.name, row, read: () => el.value, validate: () => required(el.value) };
      }
      case 'typed': {
        const typeSel = h('select', { id: `${id}-type`, class: 'typed-type' }, p.types.map((t) => h('option', { value: t }, TYPE_LABELS[t] || t)));
        typeSel.value = node[p.type_field] || p.types[0];
        const el = h('input', { id, type: 'text', value: typeof value === 'string' ? value : JSON.stringify(value ?? '') });
        const sync = () => { el.hidden = VALUELESS_TYPES.has(typeSel.value); };
        typeSel.addEventListener('change', sync);
        sync();
        wrap.append(typeSel, el);
        return {
          name: p.name, row,
          readAll: () => ({ [p.name]: VALUELESS_TYPES.has(typeSel.value) ? '' : el.value, [p.type_field]: typeSel.value }),
          validate: () => {
            if (typeSel.value === 'json' && el.value.trim()) { try { JSON.parse(el.value); } catch (e) { return `invalid JSON: ${e.message}`; } }
            if (typeSel.value === 'num' && el.value.trim() && Number.isNaN(Number(el.value))) return 'not a number';
            if (typeSel.value === 'bool' && !['true', 'false'].includes(el.value)) return 'true or false';
            return required(el.value);
          },
        };
      }
      case 'config': {
        const el = h('select', { id });
        const fill = (selected) => {
          const list = model.configNodes(p.node_type);
          el.replaceChildren(
            ...(p.required ? [] : [h('option', { value: '' }, 'none')]),
            ...list.map((c) => h('option', { value: c.id }, c.name || configLabel(c))),
            h('option', { value: '_ADD_' }, `Add new ${p.node_type}...`));
          const fallback = p.required ? list[0]?.id || '_ADD_' : '';
          el.value = selected && list.some((c) => c.id === selected) ? selected : fallback;
        };
        fill(value);
        const edit = h('button', { type: 'button', id: `${id}-edit`, title: `Add or edit the ${p.node_type}` }, 'edit');
        edit.addEventListener('click', async () => {
          if (el.value === '_ADD_') { const nid = await addConfig(p.node_type); if (nid) fill(nid); } else {
            const cid = el.value;
            const unsub = () => { model.removeEventListener('change', refresh); };
            const refresh = () => { fill(model.nodes.has(cid) ? cid : undefined); unsub(); };
            model.addEventListener('change', refresh);
            editNode(cid);
          }
        });
        el.addEventListener('change', () => { if (el.value === '_ADD_') edit.click(); });
        wrap.append(el, edit);
        return { name: p.name, row, read: () => (el.value === '_ADD_' ? '' : el.value), validate: () => required(el.value === '_ADD_' ? '' : el.value) };
      }
      case 'structured': {
        const el = h('textarea', { id, rows: 5, spellcheck: 'false', 'data-widget': p.widget });
        el.value = JSON.stringify(value ?? p.default ?? null, null, 1);
        wrap.append(el);
        return {
          name: p.name, row, read: () => JSON.parse(el.value || 'null'),
          validate: () => { try { JSON.parse(el.value || 'null'); return null; } catch (e) { return `invalid JSON: ${e.message}`; } },
        };
      }
      default: {
        const el = h('input', { id, type: 'text', value: value === undefined || value === null ? '' : String(value) });
        wrap.append(el);
        return { name: p.name, row, read: () => el.value, validate: () => required(el.value) };
      }
    }
  }

  function credentialField(c, stored, pending, prefix) {
    const id = prefix + c.name;
    const isPassword = c.kind === 'password';
    const el = h('input', { id, type: isPassword ? 'password' : 'text', autocomplete: 'off' });
    if (isPassword) {
      if (stored[`has_${c.name}`] || pending?.[c.name] !== undefined) el.placeholder = '(unchanged)';
    } else el.value = pending?.[c.name] ?? stored[c.name] ?? '';
    const initial = el.value;
    const row = h('div', { class: 'form-row', 'data-property': c.name }, h('label', { for: id }, c.label || c.name), h('div', { class: 'field' }, el));
    return {
      name: c.name, row, credential: true,
      read: () => (isPassword ? (el.value === '' ? undefined : el.value) : (el.value === initial ? undefined : el.value)),
      validate: () => null,
    };
  }

  return { editNode, addConfig };
}

/** Writes form values (and credentials) into node `n`, keeping switch outputs and wires in step. */
function applyValues(n, d, values, creds) {
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined) delete n[k]; else n[k] = clone(v);
  }
  if (Object.keys(creds).length) n.credentials = { ...(n.credentials || {}), ...creds };
  if (Array.isArray(n.wires) || (d && d.outputs)) {
    const outs = outputsOf(n, d);
    n.wires = n.wires || [];
    while (n.wires.length < outs) n.wires.push([]);
    n.wires.length = outs;
    if (n.type === 'switch') n.outputs = outs;
  }
}

function configLabel(c) {
  if (c.type === 'mqtt-broker') return `${c.broker || '?'}:${c.port || ''}`;
  return c.type;
}

/** Points a new mqtt-broker config node at flowd's embedded broker. */
export function applyEmbeddedBroker(model, node) {
  const b = model.settings?.flowd?.broker;
  if (!b) return;
  node.name = 'embedded broker';
  node.broker = b.host;
  node.port = b.portRef || String(b.port);
}
