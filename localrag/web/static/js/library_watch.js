// The library's watched folders (GET /v1/watch) and the live activity log (GET /v1/events).
import { h, clear, fmtMs } from './ui.js';
import { fmtTime, plural } from './library_doc.js';

const LOG_MAX = 60;
const RETRY_MS = 3000;
const SYNC_COUNTS = ['added', 'updated', 'deleted', 'renamed', 'duplicates', 'unchanged', 'skipped', 'retry'];
const DOC_KINDS = new Set(['ingest', 'update', 'delete', 'rename']);

// "3 added · 1 skipped in 120 ms — 2026-12-02 20:46"; counts that are zero are left out.
export function describeSync(sync) {
  if (!sync) return 'not synced yet';
  const parts = SYNC_COUNTS.filter((k) => sync[k] > 0).map((k) => `${sync[k]} ${k}`);
  let text = parts.join(' · ') || 'no changes';
  if (typeof sync.seconds === 'number') text += ` in ${fmtMs(sync.seconds * 1000)}`;
  if (sync.time) text += ` — ${fmtTime(sync.time)}`; // GET /v1/watch has it; a sync event has its own
  return text;
}

// Paths inside a watched folder are shown relative to it (the full path stays in the tooltip).
function shortPath(path, roots) {
  const root = roots.find((r) => path.startsWith(r + '/'));
  return root ? path.slice(root.length + 1) : path;
}

// The skips worth showing: the newest per path, and a "will retry" one only while it is the latest
// news (a retry that later succeeded leaves no notice of its own, but a newer sync does).
export function currentSkips(folder) {
  const since = folder.last_sync?.time ?? 0;
  const seen = new Set();
  const out = [];
  for (const s of folder.skips || []) {
    if (seen.has(s.path)) continue;
    seen.add(s.path);
    if (!s.retry || s.time >= since) out.push(s);
  }
  return out;
}

// One line of the activity log for an event of the bus (see localrag/events.py).
export function describeEvent(kind, e, roots = []) {
  const what = shortPath(e.doc_id || e.path || '', roots);
  const path = shortPath(e.path || '', roots);
  const data = e.data || {};
  switch (kind) {
    case 'ingest': return `added ${what}` + (data.chunks !== undefined ? ` (${plural(data.chunks, 'chunk')})` : '');
    case 'update': return `updated ${what}` + (data.chunks !== undefined ? ` (${plural(data.chunks, 'chunk')})` : '');
    case 'delete': return `deleted ${what}`;
    case 'skip': return data.retry ? `waiting for ${path || what}: ${e.reason}; will retry`
      : `skipped ${path || what}: ${e.reason}`;
    case 'rename': return `moved ${shortPath(data.from || '?', roots)} → ${path}`;
    case 'duplicate': return `${path}: ${e.reason}`;
    case 'sync': return `sync: ${describeSync(data)}`;
    default: return `${kind} ${what}`;
  }
}

function issueList(title, items, cls, root) {
  const list = h('ul', {}, ...items.map((it) => h('li', {},
    it.path ? h('span', { class: 'path', title: it.path }, shortPath(it.path, [root])) : '',
    it.path ? ': ' : '', it.reason || '',
    it.time ? h('span', { class: 'when' }, ` (${fmtTime(it.time)}${it.retry ? ', will retry' : ''})`) : '')));
  return h('details', { class: cls, open: '' }, h('summary', {}, `${title} (${items.length})`), list);
}

function folderItem(folder) {
  const state = folder.state || 'unknown';
  const item = h('li', { class: 'watch-folder', 'data-path': folder.path },
    h('div', { class: 'watch-head' },
      h('code', { class: 'path' }, folder.path),
      h('span', { class: `state state-${state}` }, state)),
    h('p', { class: 'watch-sync' }, 'Last sync: ', describeSync(folder.last_sync)));
  const errors = folder.errors || [];
  const skips = currentSkips(folder);
  if (errors.length) item.append(issueList('Errors', errors, 'watch-errors', folder.path));
  if (skips.length) item.append(issueList('Skipped files', skips, 'watch-skips', folder.path));
  return item;
}

function renderFolders(box, folders) {
  clear(box);
  if (!folders.length) {
    box.append(h('p', {}, 'This server watches no folders. To keep a folder in sync, start the server with:'),
      h('pre', { class: 'cli' }, h('code', {}, 'localrag serve --watch FOLDER')));
    return;
  }
  box.append(h('ul', { class: 'watch-list' }, ...folders.map(folderItem)));
}

// Mounts the panel into `section`; `onDocsChanged(event)` is told of every event that changes documents.
// Returns the cleanup function (aborts the stream and the timers).
export function mountWatch(section, ctx, { onDocsChanged } = {}) {
  const abort = new AbortController();
  const timers = new Set();
  const later = (fn, ms) => {
    const t = setTimeout(() => { timers.delete(t); fn(); }, ms);
    timers.add(t);
  };
  // not a live region: it is redrawn at every sync, and the activity log already announces what happened
  const folders = h('div', { class: 'watch-folders', 'aria-busy': 'true' },
    h('p', {}, 'Loading…'));
  const progress = h('p', { class: 'lib-progress', role: 'status', hidden: '' });
  const status = h('span', { class: 'stream-state', role: 'status' }, 'connecting…');
  const log = h('ol', { class: 'activity-log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Activity' });
  section.append(
    h('h2', { id: 'lib-watch-title' }, 'Watched folders'), folders,
    h('h3', {}, 'Activity ', status), progress, log,
    h('p', { class: 'lib-note empty-log' }, 'Events (added, updated, deleted, skipped files, syncs) show here as they happen.'));

  let roots = [];
  let progressDone = 0;
  let refreshing = false;
  let again = false;
  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const data = await ctx.api('/v1/watch', { signal: abort.signal });
      const list = data.folders || [];
      roots = list.map((f) => f.path);
      renderFolders(folders, list);
      // The sync event comes just before the folder's state and counts are updated: look again shortly.
      if (list.some((f) => f.state === 'starting' || f.state === 'syncing')) later(refreshSoon, 700);
    } catch (e) {
      if (e.name === 'AbortError') return;
      clear(folders);
      folders.append(h('p', { class: 'lib-error' }, `Could not read the watched folders: ${e.message}`));
    } finally {
      folders.setAttribute('aria-busy', 'false');
      refreshing = false;
      if (again && !abort.signal.aborted) { again = false; refresh(); }
    }
  }
  let refreshQueued = false;
  const refreshSoon = () => {
    if (refreshQueued) return;
    refreshQueued = true;
    later(() => { refreshQueued = false; refresh(); }, 300);
  };

  function addLog(kind, event) {
    section.querySelector('.empty-log')?.remove();
    const time = event.time ? fmtTime(event.time).slice(11) : '';
    log.prepend(h('li', { class: `ev ev-${kind}`, 'data-kind': kind },
      h('time', {}, time), ' ', h('span', { class: 'kind' }, kind), ' ',
      h('span', { class: 'what', title: event.path || '' }, describeEvent(kind, event, roots)),
      event.namespace ? h('span', { class: 'ns' }, ` [${event.namespace}]`) : ''));
    while (log.children.length > LOG_MAX) log.lastElementChild.remove();
  }

  function onEvent(kind, event) {
    if (!event || typeof event !== 'object') return;
    if (kind === 'progress') {
      const d = event.data || {};
      const done = d.docs_total && d.docs_done >= d.docs_total;
      const of = d.docs_total && !done ? ` of ${d.docs_total}` : '';
      const eta = typeof d.eta_s === 'number' && !done ? `, about ${Math.ceil(d.eta_s)} s left` : '';
      progress.textContent = `${done ? 'Embedded' : 'Embedding'}: ${d.docs_done}${of} ` +
        `${d.docs_total === 1 ? 'document' : 'documents'}, ${plural(d.chunks, 'chunk')}` +
        ` (${(d.chunks_per_s || 0).toFixed(0)}/s)${eta}`;
      progress.hidden = done && !d.chunks; // nothing was embedded (an unchanged file): nothing to say
      clearTimeout(progressDone);
      // once every document is in, the line goes after a moment (a new batch brings it back)
      if (done) progressDone = setTimeout(() => { progress.hidden = true; }, 2000);
      return;
    }
    addLog(kind, event);
    if (kind === 'sync') progress.hidden = true;
    if (DOC_KINDS.has(kind) && onDocsChanged) onDocsChanged(event);
    if (kind === 'sync' || kind === 'skip' || kind === 'duplicate') refreshSoon();
  }

  function setStream(text, cls) {
    status.textContent = text;
    status.className = `stream-state ${cls}`;
  }

  // Resolves on the app's key event (a key was entered), or when the page goes.
  const keyEntered = () => new Promise((resolve) => {
    const done = () => { document.removeEventListener('localrag:key', done); resolve(); };
    document.addEventListener('localrag:key', done);
    abort.signal.addEventListener('abort', done);
  });

  async function listen() {
    let wait = RETRY_MS;
    while (!abort.signal.aborted) {
      let refused = false;
      setStream('connecting…', 'down');
      // getStream reports no "open", so the badge turns live on the first event or after a quiet second
      // without an error (the server subscribes before it answers, so nothing is lost either way).
      const opened = setTimeout(() => setStream('live', 'live'), 1000);
      timers.add(opened);
      try {
        await ctx.getStream('/v1/events', (kind, event) => {
          if (!status.classList.contains('live')) setStream('live', 'live');
          wait = RETRY_MS;
          onEvent(kind, event);
        }, abort.signal);
      } catch (e) {
        if (abort.signal.aborted || e.name === 'AbortError') return;
        refused = e.status === 401 || e.status === 403;
      } finally {
        clearTimeout(opened);
      }
      if (abort.signal.aborted) return;
      if (refused) { // the key prompt was dismissed: asking again every few seconds would nag
        setStream('needs an API key', 'down');
        await keyEntered();
        continue;
      }
      // The stream ended (server restart, network): say so, reconnect with backoff, re-read what was missed.
      setStream('reconnecting…', 'down');
      await new Promise((resolve) => later(resolve, wait));
      wait = Math.min(wait * 2, 30000);
      refreshSoon();
    }
  }

  refresh();
  listen();
  return () => {
    abort.abort();
    clearTimeout(progressDone);
    for (const t of timers) clearTimeout(t);
    timers.clear();
  };
}
