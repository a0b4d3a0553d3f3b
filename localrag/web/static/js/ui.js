// DOM helpers. Document text is untrusted: everything here builds nodes and text nodes, never HTML strings.

const BOOL_ATTRS = new Set(['hidden', 'disabled', 'checked', 'selected', 'required', 'readonly', 'multiple', 'open', 'autofocus']);

/**
 * h('button', {class: 'primary', onclick: fn, 'aria-label': 'Send'}, 'Send')
 * attrs: class, on* handlers, aria-*, data-*, value/checked as properties, others as attributes;
 * children: nodes, strings (text nodes), arrays, null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === 'value' || name === 'checked') el[name] = value;
    else if (name === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else if (BOOL_ATTRS.has(name)) el.setAttribute(name, '');
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** A short message in the corner; kind: 'info' | 'ok' | 'error'. */
export function toast(message, kind = 'info', ms = 4000) {
  const box = document.getElementById('toasts');
  if (!box) return;
  const item = h('div', {class: ['toast', kind], role: kind === 'error' ? 'alert' : null}, message);
  box.append(item);
  setTimeout(() => item.remove(), ms);
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

export function fmtNum(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return Number.isInteger(n) ? n.toLocaleString('en') : n.toFixed(2);
}

/** A modal dialog; resolves with what `build(close)` passes to close(), or null on Escape. */
export function modal(title, build) {
  return new Promise((resolve) => {
    const previous = document.activeElement;
    const dialog = h('dialog', {class: 'modal', 'aria-labelledby': 'modal-title'});
    const close = (value) => {
      dialog.close();
      dialog.remove();
      if (previous && previous.focus) previous.focus();
      resolve(value);
    };
    dialog.addEventListener('cancel', (e) => { e.preventDefault(); close(null); });
    dialog.append(h('h2', {id: 'modal-title'}, title), build(close));
    document.body.append(dialog);
    dialog.showModal();
  });
}
