// HTTP to the admin API (bearer token when logged in), DOM helpers, modals.

const TOKEN_KEY = 'flowd-token';

export const auth = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(t) { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); },
};

export class HttpError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** fetch() against the admin API: JSON in and out, errors as HttpError. */
export async function request(method, path, body, headers = {}) {
  const h = { ...headers };
  if (auth.token) h.Authorization = `Bearer ${auth.token}`;
  if (body !== undefined && typeof body !== 'string') { h['Content-Type'] = 'application/json'; body = JSON.stringify(body); }
  const res = await fetch(path, { method, headers: h, body });
  const text = await res.text();
  let data = text;
  try { data = text ? JSON.parse(text) : null; } catch { /* plain text answer */ }
  if (!res.ok) throw new HttpError(res.status, data);
  return data;
}

export const get = (path, headers) => request('GET', path, undefined, headers);
export const post = (path, body, headers) => request('POST', path, body, headers);

/** Creates an element: h('div', {class: 'x', onclick: f}, child, 'text'). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style') el.style.cssText = v; // CSSOM: allowed by the CSP, a style attribute is not
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
/** Creates an SVG element with attributes. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/**
 * A modal panel: returns {el, body, close}. buttons: [{label, id, primary, danger, onclick}].
 * Escape cancels (calls onCancel), Enter in a single-line input presses the primary button.
 */
export function modal({ title, id, body, buttons = [], centered = false, onCancel }) {
  const layer = document.getElementById('dialog-layer');
  const footer = h('footer');
  const panel = h('div', { class: 'modal' + (centered ? ' centered' : ''), id, role: 'dialog', 'aria-label': title },
    h('header', {}, h('span', { class: 'title' }, title)), h('div', { class: 'modal-body' }, body), footer);
  const backdrop = h('div', { class: 'modal-backdrop' }, panel);
  const close = () => { backdrop.remove(); document.removeEventListener('keydown', onKey, true); };
  let primary = null;
  for (const b of buttons) {
    const btn = h('button', { type: 'button', id: b.id, class: b.primary ? 'btn-primary' : b.danger ? 'btn-danger' : '' }, b.label);
    btn.addEventListener('click', () => b.onclick(close));
    if (b.primary) primary = btn;
    footer.append(btn);
  }
  function onKey(e) {
    if (layer.lastElementChild !== backdrop) return;
    if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); close(); if (onCancel) onCancel(); }
    else if (e.key === 'Enter' && primary && e.target.tagName === 'INPUT' && e.target.type !== 'checkbox') { e.preventDefault(); primary.click(); }
    e.stopPropagation();
  }
  document.addEventListener('keydown', onKey, true);
  layer.append(backdrop);
  const first = panel.querySelector('input, select, textarea');
  if (first) first.focus();
  return { el: panel, body: panel.querySelector('.modal-body'), close };
}

let toastTimer = 0;
/** A short message at the top of the page. */
export function toast(text, isError = false) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.className = isError ? 'error' : '';
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, isError ? 6000 : 2500);
}

/** A new node id: 16 hex digits, as Node-RED makes them. */
export function newId() {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
