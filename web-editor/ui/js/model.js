// The editor's model: every flows.json object (tabs, nodes, config nodes) by
// id and in order, node descriptors, the selection, what differs from the
// deployed flows (dirty state), deploy errors and node status.
// Every change goes through a transaction, which records a reversible action
// ({changes: [{id, before, after}], orderBefore, orderAfter}) for history.js.

import { clone, newId } from './util.js';

export const GRID = 20;
export const TAB = 'tab';
const SKIPPED_TYPES = new Set(['subflow', 'group']);

export class Model extends EventTarget {
  constructor() {
    super();
    this.nodes = new Map();
    this.order = [];
    this.descriptors = new Map();
    this.activeTab = null;
    this.selection = new Set();
    this.selectedWire = null;
    this.deployed = new Map();
    this.rev = null;
    this.errors = new Map();
    this.status = new Map();
    this.settings = {};
    this.tx = null;
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  setDescriptors(list) {
    this.descriptors = new Map(list.map((d) => [d.type, d]));
  }

  descriptor(type) { return this.descriptors.get(type); }

  isConfigType(type) { return this.descriptor(type)?.category === 'config'; }

  /** Nodes drawn on a tab (not config nodes, not tabs). */
  nodesOn(tab) {
    return this.order.map((id) => this.nodes.get(id))
      .filter((n) => n && n.z === tab && n.type !== TAB && !this.isConfigType(n.type) && !SKIPPED_TYPES.has(n.type));
  }

  tabs() { return this.order.map((id) => this.nodes.get(id)).filter((n) => n && n.type === TAB); }

  configNodes(type) { return this.order.map((id) => this.nodes.get(id)).filter((n) => n && n.type === type); }

  /** Replaces everything with `flows` as deployed at revision `rev`. */
  load(flows, rev) {
    this.nodes = new Map();
    this.order = [];
    for (const n of flows) { this.nodes.set(n.id, clone(n)); this.order.push(n.id); }
    this.rev = rev;
    this.markDeployed();
    this.selection.clear();
    this.selectedWire = null;
    this.errors.clear();
    if (!this.tabs().length) this.withoutHistory(() => this.addTab());
    if (!this.nodes.has(this.activeTab)) this.activeTab = this.tabs()[0].id;
    this.emit('change', { reset: true });
  }

  /** The flows as flows.json holds them (credentials kept for a deploy). */
  toFlows({ credentials = true } = {}) {
    return this.order.map((id) => {
      const n = clone(this.nodes.get(id));
      if (!credentials) delete n.credentials;
      return n;
    });
  }

  markDeployed() {
    for (const n of this.nodes.values()) delete n.credentials;
    this.deployed = new Map(this.order.map((id) => [id, JSON.stringify(this.nodes.get(id))]));
  }

  isChanged(id) { return this.deployed.get(id) !== JSON.stringify(this.nodes.get(id)); }

  get dirty() {
    if (this.deployed.size !== this.nodes.size) return true;
    for (const id of this.nodes.keys()) if (this.isChanged(id)) return true;
    return false;
  }

  // ---- transactions -------------------------------------------------------

  /** Runs `fn` as one undoable action labelled `label`. */
  change(label, fn) {
    const outer = this.tx;
    if (!outer) this.tx = { label, before: new Map(), orderBefore: this.order.slice() };
    let result;
    try { result = fn(); } finally {
      if (!outer) {
        const tx = this.tx;
        this.tx = null;
        const changes = [];
        for (const [id, before] of tx.before) {
          const after = this.nodes.has(id) ? clone(this.nodes.get(id)) : null;
          if (JSON.stringify(before) !== JSON.stringify(after)) changes.push({ id, before, after });
        }
        const orderChanged = tx.orderBefore.join() !== this.order.join();
        if (changes.length || orderChanged) {
          this.emit('action', { label, changes, orderBefore: tx.orderBefore, orderAfter: this.order.slice() });
          this.emit('change', { label });
        }
      }
    }
    return result;
  }

  withoutHistory(fn) {
    const saved = this.tx;
    this.tx = { label: '', before: new Map(), orderBefore: [] };
    try { return fn(); } finally { this.tx = saved; }
  }

  touch(id) {
    if (this.tx && !this.tx.before.has(id)) this.tx.before.set(id, this.nodes.has(id) ? clone(this.nodes.get(id)) : null);
  }

  /** Applies one side (`before` or `after`) of a recorded action. */
  applyAction(action, side) {
    for (const c of action.changes) {
      const v = c[side];
      if (v === null) this.nodes.delete(c.id); else this.nodes.set(c.id, clone(v));
    }
    this.order = (side === 'before' ? action.orderBefore : action.orderAfter).slice();
    for (const id of [...this.selection]) if (!this.nodes.has(id)) this.selection.delete(id);
    if (!this.nodes.has(this.activeTab)) this.activeTab = this.tabs()[0]?.id ?? null;
    this.selectedWire = null;
    this.emit('change', { label: side === 'before' ? 'undo' : 'redo' });
  }

  add(node) {
    this.touch(node.id);
    this.nodes.set(node.id, node);
    if (!this.order.includes(node.id)) this.order.push(node.id);
    return node;
  }

  patch(id, fn) {
    const n = this.nodes.get(id);
    if (!n) return;
    this.touch(id);
    fn(n);
  }

  remove(id) {
    const n = this.nodes.get(id);
    if (!n) return;
    this.touch(id);
    this.nodes.delete(id);
    this.order = this.order.filter((x) => x !== id);
    this.selection.delete(id);
    this.errors.delete(id);
    for (const other of this.nodes.values()) {
      if (Array.isArray(other.wires) && other.wires.some((p) => p.includes(id))) {
        this.patch(other.id, (o) => { o.wires = o.wires.map((p) => p.filter((t) => t !== id)); });
      }
    }
    if (n.type === TAB) for (const m of [...this.nodes.values()]) if (m.z === id) this.remove(m.id);
  }

  // ---- nodes and wires ----------------------------------------------------

  /** A new node of `type` at (x, y) on the active tab with its descriptor's defaults. */
  newNode(type, x, y) {
    const d = this.descriptor(type);
    const n = { id: newId(), type, z: this.activeTab, name: '' };
    for (const p of d?.properties || []) {
      n[p.name] = clone(p.default);
      if (p.kind === 'typed' && n[p.type_field] === undefined) n[p.type_field] = p.types[0];
    }
    n.x = snap(x);
    n.y = snap(y);
    n.wires = Array.from({ length: outputsOf(n, d) }, () => []);
    return n;
  }

  /** A new config node of `type` with defaults (not on a tab). */
  newConfig(type) {
    const d = this.descriptor(type);
    const n = { id: newId(), type };
    for (const p of d?.properties || []) {
      n[p.name] = clone(p.default);
      if (p.kind === 'typed' && n[p.type_field] === undefined) n[p.type_field] = p.types[0];
    }
    return n;
  }

  addWire(from, port, to) {
    const src = this.nodes.get(from);
    const dst = this.nodes.get(to);
    if (!src || !dst || from === to || inputsOf(dst, this.descriptor(dst.type)) === 0) return false;
    if (src.wires?.[port]?.includes(to)) return false;
    this.patch(from, (n) => {
      n.wires = n.wires || [];
      while (n.wires.length <= port) n.wires.push([]);
      n.wires[port].push(to);
    });
    return true;
  }

  removeWire(from, port, to) {
    this.patch(from, (n) => { n.wires[port] = n.wires[port].filter((t) => t !== to); });
  }

  addTab(label) {
    const n = { id: newId(), type: TAB, label: label || `Flow ${this.tabs().length + 1}`, disabled: false, info: '', env: [] };
    this.add(n);
    this.activeTab = n.id;
    return n;
  }

  select(ids, { add = false } = {}) {
    if (!add) this.selection.clear();
    for (const id of ids) this.selection.add(id);
    this.selectedWire = null;
    this.emit('selection');
  }

  setErrors(list) {
    this.errors.clear();
    for (const e of list || []) {
      if (!e.node) continue;
      if (!this.errors.has(e.node)) this.errors.set(e.node, []);
      this.errors.get(e.node).push(e.field ? `${e.field}: ${e.message}` : e.message);
    }
    this.emit('errors');
  }
}

export function snap(v) { return Math.round(v / GRID) * GRID; }

export function inputsOf(n, d) {
  if (n.type === 'mqtt in') return Number(n.inputs) > 0 ? 1 : 0;
  return d ? d.inputs : 1;
}

export function outputsOf(n, d) {
  if (n.type === 'switch' && Array.isArray(n.rules)) return n.rules.length;
  if (Array.isArray(n.wires) && !d) return n.wires.length;
  return d ? d.outputs : 0;
}

/** The label drawn on a node. */
export function labelOf(n, d) {
  if (n.name) return n.name;
  switch (n.type) {
    case 'mqtt in': case 'mqtt out': return n.topic || n.type;
    case 'inject': return n.topic || (n.props?.find?.((p) => p.p === 'payload') ? 'timestamp' : 'inject');
    case 'debug': return n.complete === 'true' || n.complete === true ? 'msg' : `msg.${n.complete || 'payload'}`;
    case 'mqtt-broker': return n.broker ? `${n.broker}:${n.port}` : 'mqtt-broker';
    default: return d?.palette_label || n.type;
  }
}
