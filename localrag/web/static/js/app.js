// The app shell: hash router, nav bar, namespace picker, key handling and the source panel.
import {api, getStream, postStream, upload} from './api.js';
import {forgetKey, storedKey} from './keyprompt.js';
import {clear, h, toast} from './ui.js';

const PAGES = ['chat', 'library', 'search', 'dashboard', 'settings'];
const NS_STORAGE = 'localrag.namespace';
const main = document.getElementById('main');
const panel = document.getElementById('source-panel');
const picker = document.getElementById('namespace');
const forget = document.getElementById('forget-key');
let cleanup = null;
let mounting = 0;

function namespace() {
  return picker.value || '';
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function openSource(citationOrHit) {
  const {showSource} = await import('./source.js');
  panel.hidden = false;
  document.body.classList.add('with-source');
  await showSource(panel, citationOrHit, {api, namespace, close: closeSource});
}

function closeSource() {
  if (panel.hidden) return;
  panel.hidden = true;
  clear(panel);
  document.body.classList.remove('with-source');
  document.dispatchEvent(new CustomEvent('localrag:source-closed'));
}

const ctx = {api, postStream, getStream, upload, navigate, namespace, openSource, closeSource};

function current() {
  const name = location.hash.replace(/^#\/?/, '').split(/[/?]/)[0];
  return PAGES.includes(name) ? name : null;
}

async function route() {
  const name = current();
  if (!name) { location.replace('#/chat'); return; }
  const ticket = ++mounting;
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } cleanup = null; }
  closeSource();
  for (const link of document.querySelectorAll('.nav a')) {
    if (link.dataset.page === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · localrag`;
  clear(main);
  const root = h('section', {class: ['page', `page-${name}`]});
  main.append(root);
  try {
    const page = await import(`./pages/${name}.js`);
    if (ticket !== mounting) return;
    const done = await page.mount(root, ctx);
    if (ticket !== mounting) { if (typeof done === 'function') done(); return; }
    cleanup = typeof done === 'function' ? done : null;
  } catch (e) {
    console.error(e);
    root.append(h('div', {class: 'notice error page-failed', role: 'alert'}, `This page failed to load: ${e.message}`));
  }
  if (!window.localragReady) {
    window.localragReady = performance.now();
    document.body.dataset.ready = '1';  // for tests: the CSP forbids the eval behind wait_for_function
    document.dispatchEvent(new CustomEvent('localrag:ready'));
  }
}

async function loadNamespaces() {
  const chosen = sessionStorage.getItem(NS_STORAGE) || '';
  let names = [];
  try {
    const data = await api('/v1/namespaces');
    names = (data.namespaces || []).map((n) => n.name);
  } catch (e) {
    if (e.status !== 404 && e.status !== 405) return;
    try {  // servers before GET /v1/namespaces: the stats list them
      const stats = await api('/v1/stats');
      names = Object.keys(stats.namespaces || {});
    } catch { return; }
  }
  if (chosen && !names.includes(chosen)) names.push(chosen);
  clear(picker);
  picker.append(h('option', {value: ''}, '(default)'));
  for (const name of names.filter(Boolean).sort()) picker.append(h('option', {value: name}, name));
  picker.value = chosen;
}

function showKeyState() {
  forget.hidden = !storedKey();
}

picker.addEventListener('change', () => {
  sessionStorage.setItem(NS_STORAGE, picker.value);
  document.dispatchEvent(new CustomEvent('localrag:namespace', {detail: picker.value}));
  route();
});
forget.addEventListener('click', () => {
  forgetKey();
  toast('The API key is forgotten for this tab.', 'info');
  route();
  loadNamespaces();  // with keys set, this asks for a key again at once
});
document.addEventListener('localrag:key', showKeyState);
document.addEventListener('localrag:namespaces-changed', loadNamespaces);
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !panel.hidden && !document.querySelector('dialog[open]')) closeSource();
});
window.addEventListener('hashchange', route);

const savedNamespace = sessionStorage.getItem(NS_STORAGE) || '';
if (savedNamespace) {
  picker.append(h('option', {value: savedNamespace}, savedNamespace));
  picker.value = savedNamespace;
}
showKeyState();
route();
loadNamespaces();
