// The SVG canvas: draws the active tab's nodes and wires; pan (wheel, middle
// or Alt drag), zoom (Ctrl-wheel, buttons), drag nodes (snapped to the grid),
// wire an output port to an input port by dragging, click/Shift-click
// selection, lasso selection on the background, node buttons (inject, debug).

import { s } from './util.js';
import { GRID, snap, inputsOf, outputsOf, labelOf } from './model.js';

const NODE_H = 30;
const PORT = 10;
const PORT_GAP = 18;
const CHAR_W = 7;
const MIN_W = 100;
const ZOOM_MIN = 0.3;
const ZOOM_MAX = 2;
const DRAG_THRESHOLD = 3;

/** Width and height of a node as drawn. */
export function nodeSize(n, d) {
  const label = labelOf(n, d);
  const w = Math.max(MIN_W, Math.ceil((label.length * CHAR_W + 40) / GRID) * GRID);
  const outs = outputsOf(n, d);
  return { w, h: Math.max(NODE_H, outs * PORT_GAP + 6) };
}

function portY(i, count, h) { return h / 2 + (i - (count - 1) / 2) * PORT_GAP; }

export function createCanvas(model, hooks) {
  const svg = document.getElementById('canvas');
  const viewport = document.getElementById('viewport');
  const wireLayer = document.getElementById('wire-layer');
  const nodeLayer = document.getElementById('node-layer');
  const dragWire = document.getElementById('drag-wire');
  const lasso = document.getElementById('lasso');
  const view = { x: 0, y: 0, k: 1 };
  let drag = null;
  let rates = {};

  function applyView() { viewport.setAttribute('transform', `translate(${view.x},${view.y}) scale(${view.k})`); }

  function toCanvas(clientX, clientY) {
    const r = svg.getBoundingClientRect();
    return { x: (clientX - r.left - view.x) / view.k, y: (clientY - r.top - view.y) / view.k };
  }

  function isOver(clientX, clientY) {
    const r = svg.getBoundingClientRect();
    return clientX >= r.left && clientX <= r.right && clientY >= r.top && clientY <= r.bottom;
  }

  function zoom(factor, cx, cy) {
    const r = svg.getBoundingClientRect();
    const px = cx === undefined ? r.width / 2 : cx - r.left;
    const py = cy === undefined ? r.height / 2 : cy - r.top;
    const k = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, factor === 0 ? 1 : view.k * factor));
    view.x = px - ((px - view.x) * k) / view.k;
    view.y = py - ((py - view.y) * k) / view.k;
    view.k = k;
    applyView();
  }

  /** Position of a node, with the offset of a move in progress. */
  function pos(n) {
    if (drag?.kind === 'move' && drag.moved && model.selection.has(n.id)) {
      return { x: snap(n.x + drag.dx), y: snap(n.y + drag.dy) };
    }
    return { x: n.x, y: n.y };
  }

  function geometry(n) {
    const d = model.descriptor(n.type);
    const { w, h } = nodeSize(n, d);
    const p = pos(n);
    return { d, w, h, left: p.x - w / 2, top: p.y - h / 2, outs: outputsOf(n, d), ins: inputsOf(n, d) };
  }

  function wirePath(x1, y1, x2, y2) {
    const dx = Math.max(40, Math.abs(x2 - x1) / 2);
    return `M${x1} ${y1} C${x1 + dx} ${y1} ${x2 - dx} ${y2} ${x2} ${y2}`;
  }

  function render() {
    const tab = model.nodes.get(model.activeTab);
    svg.classList.toggle('disabled-tab', !!tab?.disabled);
    const nodes = model.nodesOn(model.activeTab);
    const geo = new Map(nodes.map((n) => [n.id, geometry(n)]));
    nodeLayer.replaceChildren();
    wireLayer.replaceChildren();
    for (const n of nodes) {
      const g = geo.get(n.id);
      const sw = n.wires || [];
      for (let port = 0; port < sw.length; port++) {
        for (const to of sw[port] || []) {
          const t = geo.get(to);
          if (!t) continue;
          const x1 = g.left + g.w;
          const y1 = g.top + portY(port, g.outs, g.h);
          const x2 = t.left;
          const y2 = t.top + t.h / 2;
          const sel = model.selectedWire;
          const selected = sel && sel.from === n.id && sel.port === port && sel.to === to;
          wireLayer.append(s('path', {
            class: 'wire' + (selected ? ' selected' : ''), d: wirePath(x1, y1, x2, y2),
            'data-wire-from': n.id, 'data-wire-port': port, 'data-wire-to': to,
          }));
          const rate = rates[n.id]?.[port];
          if (rate > 0) {
            wireLayer.append(s('text', {
              class: 'wire-rate', x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 6, 'text-anchor': 'middle',
              'data-wire-rate': `${n.id}:${port}:${to}`,
            }, formatRate(rate)));
          }
        }
      }
      nodeLayer.append(drawNode(n, g));
    }
  }

  function drawNode(n, g) {
    const classes = ['node'];
    if (model.selection.has(n.id)) classes.push('selected');
    if (model.errors.has(n.id)) classes.push('invalid');
    if (n.d) classes.push('node-disabled');
    const el = s('g', { class: classes.join(' '), transform: `translate(${g.left},${g.top})`, 'data-node-id': n.id, 'data-node-type': n.type });
    el.append(s('rect', { class: 'node-body', width: g.w, height: g.h, fill: g.d?.color || '#ddd' }));
    el.append(s('text', { class: 'node-label', x: 12, y: g.h / 2 }, labelOf(n, g.d)));
    if (g.ins) el.append(s('rect', { class: 'port', 'data-port': 'in', x: -PORT / 2, y: g.h / 2 - PORT / 2, width: PORT, height: PORT }));
    for (let i = 0; i < g.outs; i++) {
      el.append(s('rect', { class: 'port', 'data-port': `out-${i}`, x: g.w - PORT / 2, y: portY(i, g.outs, g.h) - PORT / 2, width: PORT, height: PORT }));
    }
    if (n.type === 'inject') {
      el.append(s('rect', { class: 'node-button', 'data-action': 'inject', x: -26, y: g.h / 2 - 9, width: 18, height: 18 }, s('title', {}, 'inject now')));
      el.append(s('rect', { class: 'node-button-inner', x: -22, y: g.h / 2 - 5, width: 10, height: 10 }));
    }
    if (n.type === 'debug') {
      const off = n.active === false;
      el.append(s('rect', { class: 'node-button' + (off ? ' off' : ''), 'data-action': 'debug-toggle', x: g.w + 8, y: g.h / 2 - 9, width: 18, height: 18 }, s('title', {}, off ? 'enable debug output' : 'disable debug output')));
      el.append(s('rect', { class: 'node-button-inner', x: g.w + 12, y: g.h / 2 - 5, width: 10, height: 10 }));
    }
    if (model.isChanged(n.id)) el.append(s('circle', { class: 'node-changed', cx: g.w - 6, cy: 0, r: 4 }));
    let below = g.h + 14;
    const st = model.status.get(n.id);
    if (st && (st.text || st.fill)) {
      const fill = { red: '#c00', green: '#5a8', yellow: '#F9DF31', blue: '#53A3F3', grey: '#d3d3d3', gray: '#d3d3d3' }[st.fill] || '#d3d3d3';
      const shape = st.shape === 'ring'
        ? s('circle', { cx: 5, cy: below - 4, r: 4, fill: '#fff', stroke: fill, 'stroke-width': 2 })
        : s('rect', { x: 1, y: below - 8, width: 8, height: 8, fill, rx: 2 });
      el.append(s('g', { class: 'node-status', 'data-status-fill': st.fill || '', 'data-status-shape': st.shape || '' }, shape,
        s('text', { class: 'status-text', x: 14, y: below }, statusText(st.text))));
      below += 14;
    }
    for (const msg of model.errors.get(n.id) || []) {
      el.append(s('text', { class: 'node-error-text', x: 0, y: below }, msg));
      below += 13;
    }
    return el;
  }

  // ---- pointer interaction ------------------------------------------------

  svg.addEventListener('pointerdown', (e) => {
    if (e.button === 2) return;
    svg.focus({ preventScroll: true });
    const p = toCanvas(e.clientX, e.clientY);
    const t = e.target;
    if (e.button === 1 || e.altKey) {
      drag = { kind: 'pan', sx: e.clientX, sy: e.clientY, vx: view.x, vy: view.y };
    } else if (t.closest('.node-button')) {
      return;
    } else if (t.dataset?.port?.startsWith('out-')) {
      const nodeEl = t.closest('.node');
      const from = nodeEl.dataset.nodeId;
      const port = Number(t.dataset.port.slice(4));
      const n = model.nodes.get(from);
      const g = geometry(n);
      drag = { kind: 'wire', from, port, x1: g.left + g.w, y1: g.top + portY(port, g.outs, g.h) };
    } else if (t.dataset?.port === 'in') {
      // Wiring backwards: from an input port to an output port (or a node's first output).
      const to = t.closest('.node').dataset.nodeId;
      const g = geometry(model.nodes.get(to));
      drag = { kind: 'wire-in', to, x1: g.left, y1: g.top + g.h / 2 };
    } else if (t.closest('.node')) {
      const id = t.closest('.node').dataset.nodeId;
      if (e.shiftKey || e.ctrlKey || e.metaKey) {
        if (model.selection.has(id)) model.selection.delete(id); else model.selection.add(id);
        model.selectedWire = null;
        model.emit('selection');
      } else if (!model.selection.has(id)) {
        model.select([id]);
      }
      drag = { kind: 'move', sx: p.x, sy: p.y, dx: 0, dy: 0, moved: false, clicked: id, additive: e.shiftKey || e.ctrlKey || e.metaKey };
    } else if (t.classList.contains('wire')) {
      model.selection.clear();
      model.selectedWire = { from: t.dataset.wireFrom, port: Number(t.dataset.wirePort), to: t.dataset.wireTo };
      model.emit('selection');
      return;
    } else {
      if (!e.shiftKey) { model.selection.clear(); model.selectedWire = null; model.emit('selection'); }
      drag = { kind: 'lasso', sx: p.x, sy: p.y, x: p.x, y: p.y };
    }
    svg.setPointerCapture(e.pointerId);
  });

  svg.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const p = toCanvas(e.clientX, e.clientY);
    if (drag.kind === 'pan') {
      view.x = drag.vx + e.clientX - drag.sx;
      view.y = drag.vy + e.clientY - drag.sy;
      applyView();
    } else if (drag.kind === 'wire') {
      dragWire.setAttribute('d', wirePath(drag.x1, drag.y1, p.x, p.y));
      for (const el of svg.querySelectorAll('.port.hot')) el.classList.remove('hot');
      const target = portUnder(e.clientX, e.clientY);
      if (target) target.classList.add('hot');
    } else if (drag.kind === 'wire-in') {
      dragWire.setAttribute('d', wirePath(p.x, p.y, drag.x1, drag.y1));
      for (const el of svg.querySelectorAll('.port.hot')) el.classList.remove('hot');
      const target = outPortUnder(e.clientX, e.clientY);
      if (target) target.classList.add('hot');
    } else if (drag.kind === 'move') {
      drag.dx = p.x - drag.sx;
      drag.dy = p.y - drag.sy;
      if (!drag.moved && Math.hypot(drag.dx, drag.dy) * view.k < DRAG_THRESHOLD) return;
      drag.moved = true;
      render();
    } else if (drag.kind === 'lasso') {
      drag.x = p.x;
      drag.y = p.y;
      lasso.hidden = false;
      lasso.setAttribute('x', Math.min(drag.sx, p.x));
      lasso.setAttribute('y', Math.min(drag.sy, p.y));
      lasso.setAttribute('width', Math.abs(p.x - drag.sx));
      lasso.setAttribute('height', Math.abs(p.y - drag.sy));
    }
  });

  /** The input port (or the node with one) under a client point. */
  function portUnder(cx, cy) {
    const el = document.elementFromPoint(cx, cy);
    const nodeEl = el?.closest?.('.node');
    return nodeEl?.querySelector('[data-port="in"]') || null;
  }

  /** The output port (or a node's first one) under a client point. */
  function outPortUnder(cx, cy) {
    const el = document.elementFromPoint(cx, cy);
    if (el?.dataset?.port?.startsWith('out-')) return el;
    return el?.closest?.('.node')?.querySelector('[data-port="out-0"]') || null;
  }

  function endDrag(e) {
    if (!drag) return;
    const d = drag;
    drag = null;
    if (d.kind === 'wire') {
      dragWire.setAttribute('d', '');
      for (const el of svg.querySelectorAll('.port.hot')) el.classList.remove('hot');
      const target = e && portUnder(e.clientX, e.clientY);
      if (target) {
        const to = target.closest('.node').dataset.nodeId;
        model.change('wire', () => model.addWire(d.from, d.port, to));
      }
    } else if (d.kind === 'wire-in') {
      dragWire.setAttribute('d', '');
      for (const el of svg.querySelectorAll('.port.hot')) el.classList.remove('hot');
      const source = e && outPortUnder(e.clientX, e.clientY);
      if (source) {
        const from = source.closest('.node').dataset.nodeId;
        model.change('wire', () => model.addWire(from, Number(source.dataset.port.slice(4)), d.to));
      }
    } else if (d.kind === 'move') {
      if (d.moved) {
        model.change('move', () => {
          for (const id of model.selection) {
            model.patch(id, (n) => { n.x = snap(n.x + d.dx); n.y = snap(n.y + d.dy); });
          }
        });
        render();
      } else if (!d.additive && d.clicked && model.selection.size > 1) {
        model.select([d.clicked]);
      }
    } else if (d.kind === 'lasso') {
      lasso.hidden = true;
      const x1 = Math.min(d.sx, d.x); const x2 = Math.max(d.sx, d.x);
      const y1 = Math.min(d.sy, d.y); const y2 = Math.max(d.sy, d.y);
      if (x2 - x1 > 2 || y2 - y1 > 2) {
        const ids = model.nodesOn(model.activeTab).filter((n) => n.x >= x1 && n.x <= x2 && n.y >= y1 && n.y <= y2).map((n) => n.id);
        model.select(ids, { add: true });
      }
    }
  }
  svg.addEventListener('pointerup', endDrag);
  svg.addEventListener('pointercancel', () => endDrag(null));

  svg.addEventListener('click', (e) => {
    const b = e.target.closest('.node-button');
    if (!b) return;
    const id = b.closest('.node').dataset.nodeId;
    if (b.dataset.action === 'inject') hooks.onInject(id);
    else hooks.onDebugToggle(id);
  });

  svg.addEventListener('dblclick', (e) => {
    // The first click may have redrawn the node: look at what is under the pointer.
    const under = document.elementFromPoint(e.clientX, e.clientY);
    const nodeEl = under?.closest?.('.node');
    if (nodeEl && !under.closest('.node-button')) hooks.onEdit(nodeEl.dataset.nodeId);
  });

  svg.addEventListener('wheel', (e) => {
    e.preventDefault();
    if (e.ctrlKey || e.metaKey) zoom(e.deltaY < 0 ? 1.1 : 1 / 1.1, e.clientX, e.clientY);
    else { view.x -= e.deltaX; view.y -= e.deltaY; applyView(); }
  }, { passive: false });

  document.getElementById('zoom-in').addEventListener('click', () => zoom(1.2));
  document.getElementById('zoom-out').addEventListener('click', () => zoom(1 / 1.2));
  document.getElementById('zoom-reset').addEventListener('click', () => zoom(0));

  applyView();
  /** Marks the selection without redrawing (elements under the pointer stay). */
  function updateSelection() {
    for (const el of nodeLayer.children) el.classList.toggle('selected', model.selection.has(el.dataset.nodeId));
    const w = model.selectedWire;
    for (const el of wireLayer.querySelectorAll('.wire')) {
      el.classList.toggle('selected', !!w && el.dataset.wireFrom === w.from && Number(el.dataset.wirePort) === w.port && el.dataset.wireTo === w.to);
    }
  }

  return {
    render,
    updateSelection,
    toCanvas,
    isOver,
    /** Canvas point at the centre of the visible area. */
    center() { const r = svg.getBoundingClientRect(); return toCanvas(r.left + r.width / 2, r.top + r.height / 2); },
    /** New wire rates; redraws only when a shown label changes. */
    setRates(r) {
      const shown = (m) => JSON.stringify(Object.entries(m).filter(([, v]) => v.some((x) => x > 0)).map(([k, v]) => [k, v.map(formatRate)]).sort());
      const changed = shown(r) !== shown(rates);
      rates = r;
      if (changed) render();
    },
    reveal(id) {
      const n = model.nodes.get(id);
      if (!n) return;
      if (n.z && n.z !== model.activeTab) { model.activeTab = n.z; model.emit('change', {}); }
      const r = svg.getBoundingClientRect();
      view.x = r.width / 2 - n.x * view.k;
      view.y = r.height / 2 - n.y * view.k;
      applyView();
      model.select([id]);
    },
  };
}

/** Node-RED's message keys (`node-red:common.status.connected`) read as their last word. */
function statusText(t) {
  if (typeof t !== 'string') return t === undefined || t === null ? '' : String(t);
  const m = /^node-red:[\w.-]*\.([\w-]+)$/.exec(t);
  return m ? m[1] : t;
}

function formatRate(r) {
  if (r >= 100) return `${Math.round(r)}/s`;
  if (r >= 10) return `${r.toFixed(0)}/s`;
  return `${r.toFixed(1)}/s`;
}
