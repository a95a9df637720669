// Import (paste JSON or pick a file) and export (selected nodes, the current
// flow or everything; copy or download), and the copy/paste clipboard.
// Imported ids are kept unless they clash with existing ones; pasted nodes
// always get new ids.

import { h, modal, toast, newId, clone } from './util.js';
import { TAB } from './model.js';

const PASTE_OFFSET = 40;

export function createIo(model) {
  let clipboard = null;

  /** Parses import text: a flow array or {flows: [...]}. Throws with a readable message. */
  function parse(text) {
    let v;
    try { v = JSON.parse(text); } catch (e) { throw new Error(`not JSON: ${e.message}`); }
    if (v && !Array.isArray(v) && Array.isArray(v.flows)) v = v.flows;
    if (v && !Array.isArray(v) && typeof v === 'object') v = [v];
    if (!Array.isArray(v) || !v.every((n) => n && typeof n.id === 'string' && typeof n.type === 'string')) {
      throw new Error('expected an array of nodes, each with an id and a type');
    }
    return v;
  }

  /** Adds `list` to the model in one undoable action; returns the new ids. */
  function importNodes(list, { freshIds = false, offset = 0 } = {}) {
    const nodes = clone(list);
    const clash = nodes.some((n) => model.nodes.has(n.id));
    const remap = new Map();
    if (freshIds || clash) for (const n of nodes) remap.set(n.id, newId());
    const mapped = (id) => remap.get(id) || id;
    const known = new Set([...nodes.map((n) => mapped(n.id)), ...model.nodes.keys()]);
    const tabs = nodes.filter((n) => n.type === TAB);
    const added = [];
    model.change('import', () => {
      for (const n of nodes) {
        const oldId = n.id;
        for (const [k, v] of Object.entries(n)) {
          if (k === 'id' || k === 'wires') continue;
          if (typeof v === 'string' && remap.has(v)) n[k] = remap.get(v);
          else if (Array.isArray(v)) n[k] = v.map((x) => (typeof x === 'string' && remap.has(x) ? remap.get(x) : x));
        }
        n.id = mapped(oldId);
        if (n.type !== TAB && !model.isConfigType(n.type) && n.x !== undefined) {
          if (freshIds || !n.z || !(model.nodes.has(n.z) || tabs.some((t) => mapped(t.id) === n.z))) n.z = model.activeTab;
          n.x += offset;
          n.y += offset;
        }
        if (Array.isArray(n.wires)) n.wires = n.wires.map((p) => (p || []).map(mapped).filter((t) => known.has(t)));
        model.add(n);
        added.push(n.id);
      }
      if (tabs.length) model.activeTab = mapped(tabs[0].id);
    });
    model.select(added.filter((id) => model.nodes.get(id)?.z === model.activeTab));
    return added;
  }

  function openImport() {
    const text = h('textarea', { id: 'import-json', rows: 16, spellcheck: 'false', placeholder: 'Paste flow JSON here' });
    const file = h('input', { type: 'file', id: 'import-file', accept: '.json,application/json' });
    const err = h('div', { class: 'form-error', id: 'import-error' });
    file.addEventListener('change', async () => { if (file.files[0]) text.value = await file.files[0].text(); });
    modal({
      title: 'Import nodes', id: 'import-dialog', centered: true,
      body: h('div', {}, h('div', { class: 'form-row' }, h('label', { for: 'import-file' }, 'From a file'), h('div', { class: 'field' }, file)), text, err),
      buttons: [
        { label: 'Cancel', id: 'import-cancel', onclick: (close) => close() },
        {
          label: 'Import', id: 'import-confirm', primary: true, onclick: (close) => {
            try {
              const added = importNodes(parse(text.value));
              close();
              toast(`Imported ${added.length} node(s)`);
            } catch (e) { err.textContent = e.message; }
          },
        },
      ],
    });
  }

  function exportList(scope) {
    const all = model.toFlows({ credentials: false });
    if (scope === 'all') return all;
    const ids = scope === 'selected' ? new Set(model.selection) : new Set(model.nodesOn(model.activeTab).map((n) => n.id).concat([model.activeTab]));
    const picked = all.filter((n) => ids.has(n.id));
    // Config nodes the picked nodes use.
    const used = new Set(picked.flatMap((n) => Object.values(n).filter((v) => typeof v === 'string')));
    return picked.concat(all.filter((n) => model.isConfigType(n.type) && used.has(n.id)));
  }

  function openExport() {
    const scopes = [['selected', 'selected nodes'], ['flow', 'current flow'], ['all', 'all flows']];
    let scope = model.selection.size ? 'selected' : 'flow';
    const text = h('textarea', { id: 'export-json', rows: 16, readonly: true, spellcheck: 'false' });
    const update = () => { text.value = JSON.stringify(exportList(scope), null, 2); };
    const radios = scopes.map(([v, l]) => {
      const r = h('input', { type: 'radio', name: 'export-scope', id: `export-scope-${v}`, value: v, checked: v === scope });
      r.addEventListener('change', () => { scope = v; update(); });
      return h('label', {}, r, ` ${l} `);
    });
    update();
    modal({
      title: 'Export nodes', id: 'export-dialog', centered: true,
      body: h('div', {}, h('div', { class: 'form-row' }, radios), text),
      buttons: [
        { label: 'Close', id: 'export-close', onclick: (close) => close() },
        {
          label: 'Download', id: 'export-download', onclick: () => {
            const url = URL.createObjectURL(new Blob([text.value], { type: 'application/json' }));
            const a = h('a', { href: url, download: 'flows.json' });
            document.body.append(a);
            a.click();
            a.remove();
            setTimeout(() => URL.revokeObjectURL(url), 1000);
          },
        },
        { label: 'Copy to clipboard', id: 'export-copy', primary: true, onclick: (close) => copyText(text.value, text).then(() => { close(); toast('Copied to the clipboard'); }) },
      ],
    });
  }

  return {
    openImport,
    openExport,
    importNodes,
    parse,
    copy(cut = false) {
      const ids = [...model.selection];
      if (!ids.length) return;
      clipboard = ids.map((id) => { const n = clone(model.nodes.get(id)); delete n.credentials; return n; });
      copyText(JSON.stringify(clipboard), null).catch(() => {});
      if (cut) model.change('cut', () => ids.forEach((id) => model.remove(id)));
      toast(`${cut ? 'Cut' : 'Copied'} ${ids.length} node(s)`);
    },
    paste() {
      if (!clipboard) return;
      importNodes(clipboard, { freshIds: true, offset: PASTE_OFFSET });
    },
  };
}

async function copyText(text, textarea) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    if (!textarea) throw new Error('no clipboard');
    textarea.select();
    document.execCommand('copy');
  }
}
