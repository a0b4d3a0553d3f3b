// Small hand-written SVG line charts for the dashboard: axes with a few ticks, one line per series
// (a null value breaks the line), a legend with each series' last value, and an accessible name.
// The figure's data-points attribute holds {series: [[t, value], ...]} so tests can read what is drawn.
import {h} from './ui.js';

const NS = 'http://www.w3.org/2000/svg';
const HEIGHT = 170;
const PAD = {left: 52, right: 12, top: 10, bottom: 24};
const SERIES_CLASSES = 8;  // .s0 .. .s7 in app.css

/** An SVG element (h() makes HTML ones): attributes, then children (nodes or text). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) el.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A round step (1, 2 or 5 times a power of ten) that splits [0, max] into about `ticks` parts. */
function niceStep(max, ticks) {
  const raw = max / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

function ago(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  return `${Math.round(seconds / 60)} min ago`;
}

/**
 * lineChart({id, title, format}) → {el, update(series)}. `series` is [{name, points: [[t, v|null], ...]}];
 * `format(value)` renders axis ticks and last values (with their unit).
 */
export function lineChart({id, title, format = (v) => String(v), minMax = 0}) {
  const legend = h('ul', {class: 'chart-legend'});
  const box = h('div', {class: 'chart-box'});
  const titleId = `chart-${id}-title`;
  const el = h('figure', {class: 'chart card', 'data-chart': id, 'data-points': '{}'},
    h('figcaption', {id: titleId, class: 'chart-title'}, title), box, legend);
  let last = [];

  function draw() {
    const series = last;
    const width = Math.max(box.clientWidth || 0, 240);
    const plotW = width - PAD.left - PAD.right;
    const plotH = HEIGHT - PAD.top - PAD.bottom;
    const times = series.flatMap((s) => s.points.map((p) => p[0]));
    const values = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v !== null && Number.isFinite(v));
    const t1 = times.length ? Math.max(...times) : 0;
    const t0 = times.length ? Math.min(...times) : 0;
    const span = Math.max(t1 - t0, 1e-9);
    const peak = Math.max(...values, minMax, 0) || 1;  // nothing yet, or all zero: a 0..1 scale
    const step = niceStep(peak, 3);
    const top = Math.max(step * Math.ceil(peak / step), step);
    const x = (t) => PAD.left + (times.length > 1 ? ((t - t0) / span) * plotW : plotW);
    const y = (v) => PAD.top + plotH - (v / top) * plotH;

    const summary = series.map((s) => `${s.name} ${lastValue(s, format)}`).join(', ');
    const label = series.length ? `${title}: ${summary}` : `${title}: no data yet`;
    const chart = svg('svg', {width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: 'img',
      'aria-label': label, focusable: 'false'}, svg('title', {}, label));
    for (let v = 0; v <= top + step / 2; v += step) {
      chart.append(svg('line', {class: 'grid', x1: PAD.left, x2: PAD.left + plotW, y1: y(v), y2: y(v)}),
        svg('text', {class: 'tick', x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end'}, v ? format(v) : '0'));
    }
    chart.append(svg('line', {class: 'axis', x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: PAD.top + plotH}),
      svg('line', {class: 'axis', x1: PAD.left, x2: PAD.left + plotW, y1: PAD.top + plotH, y2: PAD.top + plotH}));
    if (times.length > 1) {
      chart.append(svg('text', {class: 'tick', x: PAD.left, y: HEIGHT - 6}, ago(t1 - t0)),
        svg('text', {class: 'tick', x: PAD.left + plotW, y: HEIGHT - 6, 'text-anchor': 'end'}, 'now'));
    }
    series.forEach((s, i) => {
      let d = '';
      let run = [];  // the current unbroken stretch; one alone would draw nothing, so it gets a dot
      const lone = [];
      const endRun = () => { if (run.length === 1) lone.push(run[0]); run = []; };
      for (const [t, v] of s.points) {
        if (v === null || !Number.isFinite(v)) { endRun(); continue; }
        d += `${run.length ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
        run.push([t, v]);
      }
      endRun();
      const cls = `line s${i % SERIES_CLASSES}`;
      if (d) chart.append(svg('path', {class: cls, d}));
      for (const [t, v] of lone) chart.append(svg('circle', {class: `dot s${i % SERIES_CLASSES}`, cx: x(t), cy: y(v), r: 2}));
      const end = s.points.findLast((p) => p[1] !== null && Number.isFinite(p[1]));
      if (end) chart.append(svg('circle', {class: `dot s${i % SERIES_CLASSES}`, cx: x(end[0]), cy: y(end[1]), r: 3}));
    });
    box.replaceChildren(chart);
    legend.replaceChildren(...series.map((s, i) => h('li', {},
      h('span', {class: `swatch s${i % SERIES_CLASSES}`, 'aria-hidden': 'true'}),
      h('span', {class: 'legend-name'}, s.name), ' ',
      h('strong', {class: 'legend-value'}, lastValue(s, format)))));
    if (!series.length) legend.append(h('li', {class: 'muted'}, 'no data yet'));
  }

  const observer = new ResizeObserver(() => draw());
  observer.observe(box);

  return {
    el,
    update(series) {
      last = series;
      el.dataset.points = JSON.stringify(Object.fromEntries(series.map((s) => [s.name, s.points])));
      draw();
    },
    destroy() { observer.disconnect(); },
  };
}

function lastValue(s, format) {
  const end = s.points.findLast((p) => p[1] !== null && Number.isFinite(p[1]));
  return end ? format(end[1]) : '–';
}
