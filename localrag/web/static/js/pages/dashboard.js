// The live dashboard: polls GET /v1/dashboard (only the points after the last one it has) every
// sampling interval and draws requests/s, error rate, latency p50/p95 per stage, cache hit rates,
// tokens in/out, ingest chunks/s and documents/chunks per namespace; the server's band alerts show
// as a warning banner. Figures and alert rules are computed server-side (localrag/server/dashboard.py).
import {lineChart} from '../chart.js';
import {clear, fmtMs, fmtNum, h} from '../ui.js';

const MAX_POINTS = 300;
const MIN_POLL_MS = 250;
const RETRY_MS = 5000;

const perSecond = (v) => `${fmtNum(v)}/s`;
const percent = (v) => `${(100 * v).toFixed(v && v < 0.1 ? 1 : 0)}%`;

/** The stages of one group ("search." or "answer.") seen in any point, in a stable order. */
function stagesOf(points, prefix) {
  const seen = new Set();
  for (const p of points) for (const stage of Object.keys(p.latency_ms)) if (stage.startsWith(prefix)) seen.add(stage);
  return [...seen].sort();
}

function series(points, name, pick) {
  return {name, points: points.map((p) => [p.t, pick(p) ?? null])};
}

export async function mount(root, ctx) {
  const abort = new AbortController();
  let timer = null;
  let points = [];
  let interval = 2;
  let quantile = 'p95';  // which latency the stage charts draw; the request chart draws both

  const charts = {
    rps: lineChart({id: 'rps', title: 'Requests per second', format: perSecond}),
    errors: lineChart({id: 'errors', title: 'Error rate', format: percent, minMax: 0.01}),
    http: lineChart({id: 'http', title: 'Request latency (all API routes)', format: fmtMs}),
    search: lineChart({id: 'search', title: 'Search stages, p95', format: fmtMs}),
    answer: lineChart({id: 'answer', title: 'Answer stages, p95', format: fmtMs}),
    cache: lineChart({id: 'cache', title: 'Cache hit rate', format: percent, minMax: 1}),
    tokens: lineChart({id: 'tokens', title: 'LLM tokens per second', format: perSecond}),
    ingest: lineChart({id: 'ingest', title: 'Ingest, chunks per second', format: perSecond}),
  };
  const pick = h('select', {id: 'dash-quantile', onchange: () => {
    quantile = pick.value;
    for (const c of [charts.search, charts.answer]) {
      const caption = c.el.querySelector('figcaption');
      caption.textContent = caption.textContent.replace(/p\d\d$/, quantile);
    }
    render(lastData);
  }}, h('option', {value: 'p95'}, 'p95'), h('option', {value: 'p50'}, 'p50 (median)'));
  let lastData = {};
  const banner = h('div', {class: 'notice warn dash-alerts', role: 'alert', hidden: true});
  const status = h('p', {class: 'muted small dash-status', 'aria-live': 'off'}, 'Waiting for the first figures…');
  const nsBody = h('tbody', {});
  const nsTable = h('section', {class: 'card dash-namespaces', 'aria-labelledby': 'dash-ns-title'},
    h('h2', {id: 'dash-ns-title'}, 'Documents and chunks per namespace'),
    h('table', {},
      h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Namespace'), h('th', {scope: 'col', class: 'num'}, 'Documents'),
        h('th', {scope: 'col', class: 'num'}, 'Chunks'), h('th', {scope: 'col', class: 'dash-bar-col'}, h('span', {class: 'visually-hidden'}, 'Share of chunks')))),
      nsBody));
  const error = h('div', {class: 'notice error', role: 'alert', hidden: true});

  clear(root);
  root.append(h('header', {class: 'dash-head'}, h('h1', {}, 'Dashboard'),
    h('label', {class: 'dash-quantile'}, 'Stage latency ', pick), status), banner, error,
    h('div', {class: 'dash-grid'}, ...Object.values(charts).map((c) => c.el)), nsTable);

  function render(data) {
    lastData = data;
    const cut = points.length - MAX_POINTS;
    if (cut > 0) points = points.slice(cut);
    charts.rps.update([series(points, 'requests/s', (p) => p.rps)]);
    charts.errors.update([series(points, 'errors', (p) => (p.requests ? p.error_rate : null))]);
    charts.http.update([series(points, 'p50', (p) => p.latency_ms.http?.p50),
      series(points, 'p95', (p) => p.latency_ms.http?.p95)]);
    charts.search.update(stagesOf(points, 'search.').map((s) => series(points, s.slice(7), (p) => p.latency_ms[s]?.[quantile])));
    charts.answer.update(stagesOf(points, 'answer.').map((s) => series(points, s.slice(7), (p) => p.latency_ms[s]?.[quantile])));
    const caches = [...new Set(points.flatMap((p) => Object.keys(p.cache_hit_rate)))].sort();
    charts.cache.update(caches.map((c) => series(points, c, (p) => p.cache_hit_rate[c])));
    charts.tokens.update([series(points, 'in (prompt)', (p) => p.tokens_in), series(points, 'out (completion)', (p) => p.tokens_out)]);
    charts.ingest.update([series(points, 'chunks/s', (p) => p.ingest_chunks_per_s)]);
    renderNamespaces(data.namespaces || {});
    renderAlerts(data.alerts || []);
    const at = points.length ? new Date(points[points.length - 1].t * 1000).toLocaleTimeString() : null;
    status.textContent = at ? `Updated ${at} · a point every ${interval} s · ${points.length} points`
      : `No figures yet: the server adds one every ${interval} s.`;
  }

  function renderNamespaces(namespaces) {
    const names = Object.keys(namespaces).sort();
    const most = Math.max(1, ...names.map((n) => namespaces[n].chunks));
    nsBody.replaceChildren(...names.map((name) => {
      const {documents, chunks} = namespaces[name];
      const share = Math.round((100 * chunks) / most);
      return h('tr', {'data-namespace': name},
        h('td', {}, name || h('span', {class: 'muted'}, '(default)')),
        h('td', {class: 'num'}, fmtNum(documents)), h('td', {class: 'num'}, fmtNum(chunks)),
        h('td', {class: 'dash-bar-col'}, h('span', {class: 'dash-bar', style: {width: `${share}%`}})));
    }));
    if (!names.length) nsBody.append(h('tr', {}, h('td', {colspan: '4', class: 'muted'}, 'No documents yet.')));
  }

  function renderAlerts(alerts) {
    banner.hidden = !alerts.length;
    banner.replaceChildren(...(alerts.length ? [
      h('strong', {}, alerts.length === 1 ? 'A figure left its band' : `${alerts.length} figures left their band`),
      h('ul', {}, ...alerts.map((a) => h('li', {'data-figure': a.figure}, a.message)))] : []));
  }

  async function poll() {
    timer = null;
    let wait = interval * 1000;
    if (!document.hidden) {
      try {
        const since = points.length ? points[points.length - 1].t : undefined;
        const data = await ctx.api('/v1/dashboard', {query: {since}, signal: abort.signal});
        interval = data.interval_s || interval;
        points = points.concat(data.points);
        error.hidden = true;
        render(data);
        wait = data.interval_s > 0 ? interval * 1000 : RETRY_MS;
        if (!(data.interval_s > 0)) status.textContent = 'The server samples no figures (server.dashboard_interval_s = 0).';
      } catch (e) {
        if (abort.signal.aborted) return;
        error.hidden = false;
        if (e.status === 401) {  // the key prompt was dismissed: asking again every few seconds would nag
          error.replaceChildren(`The dashboard needs an API key: ${e.message} `,
            h('button', {type: 'button', class: 'small', onclick: () => { error.hidden = true; poll(); }}, 'Retry'));
          return;
        }
        error.textContent = `Could not read the dashboard: ${e.message}`;
        wait = RETRY_MS;
      }
    }
    if (!abort.signal.aborted) timer = setTimeout(poll, Math.max(wait, MIN_POLL_MS));
  }

  render({});
  await poll();
  return () => {
    abort.abort();
    if (timer) clearTimeout(timer);
    for (const chart of Object.values(charts)) chart.destroy();
  };
}
