// The palette: node types by category (from the descriptors), a search box,
// and dragging a type onto the canvas (pointer events, so touch and test
// drivers work the same). Enter on a focused entry adds it at the centre.

import { h } from './util.js';

const CATEGORY_ORDER = ['common', 'function', 'network', 'sequence', 'parser', 'storage'];

export function createPalette(model, canvas, onDrop) {
  const list = document.getElementById('palette-list');
  const search = document.getElementById('palette-search');

  function build() {
    const byCat = new Map();
    for (const d of model.descriptors.values()) {
      if (d.category === 'config') continue;
      if (!byCat.has(d.category)) byCat.set(d.category, []);
      byCat.get(d.category).push(d);
    }
    const cats = [...byCat.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    list.replaceChildren(...cats.map((c) => h('section', { class: 'palette-category', 'data-category': c },
      h('h3', {}, c),
      byCat.get(c).map((d) => h('div', {
        class: 'palette-node', tabindex: 0, 'data-palette-type': d.type, title: firstLine(d.help),
        style: `background:${d.color}`,
      }, d.palette_label)))));
  }

  function filter() {
    const q = search.value.trim().toLowerCase();
    for (const el of list.querySelectorAll('.palette-node')) {
      el.classList.toggle('hidden', !!q && !el.dataset.paletteType.toLowerCase().includes(q) && !el.textContent.toLowerCase().includes(q));
    }
    for (const sec of list.querySelectorAll('.palette-category')) {
      sec.hidden = !sec.querySelector('.palette-node:not(.hidden)');
    }
  }
  search.addEventListener('input', filter);
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      const first = list.querySelector('.palette-node:not(.hidden)');
      if (first) { onDrop(first.dataset.paletteType, canvas.center()); search.value = ''; filter(); }
    } else if (e.key === 'Escape') { search.value = ''; filter(); search.blur(); }
  });

  let ghost = null;
  list.addEventListener('pointerdown', (e) => {
    const item = e.target.closest('.palette-node');
    if (!item || e.button !== 0) return;
    e.preventDefault();
    const type = item.dataset.paletteType;
    ghost = item.cloneNode(true);
    ghost.classList.add('palette-ghost');
    ghost.removeAttribute('data-palette-type');
    document.body.append(ghost);
    const move = (ev) => { ghost.style.left = `${ev.clientX - 20}px`; ghost.style.top = `${ev.clientY - 13}px`; };
    move(e);
    const up = (ev) => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
      ghost.remove();
      ghost = null;
      if (canvas.isOver(ev.clientX, ev.clientY)) onDrop(type, canvas.toCanvas(ev.clientX, ev.clientY));
    };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
  });
  list.addEventListener('keydown', (e) => {
    const item = e.target.closest('.palette-node');
    if (item && e.key === 'Enter') onDrop(item.dataset.paletteType, canvas.center());
  });

  return { build, focusSearch() { search.focus(); search.select(); } };
}

function rank(c) { const i = CATEGORY_ORDER.indexOf(c); return i < 0 ? 99 : i; }
function firstLine(t) { return (t || '').split('\n')[0]; }
