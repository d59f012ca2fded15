// Bar charts as inline SVG, coloured by CSS classes (style.css), so they follow the
// colour scheme.

import {h, s} from './dom.js';

// barChart draws stacked vertical bars: one per label, one layer per series
// ({name, cls, values}). tick(i) returns the label to print under bar i, or "".
export function barChart({labels, series, tick, title, testid}) {
  // Drawn at the page's width, so that the text keeps its size on a phone.
  const main = document.getElementById('main');
  const W = Math.max(300, Math.min(1200, (main ? main.clientWidth : 760) - 64));
  const H = Math.round(Math.max(140, Math.min(220, W * 0.2))), left = 36, bottom = 22, top = 8;
  const n = labels.length;
  const totals = labels.map((_, i) => series.reduce((sum, se) => sum + (se.values[i] || 0), 0));
  const max = Math.max(1, ...totals);
  const plotH = H - bottom - top;
  const step = (W - left) / Math.max(1, n);
  const bw = Math.max(1, step * 0.8);
  const y = (v) => top + plotH - (v / max) * plotH;
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title || 'chart'},
    s('line', {x1: left, y1: y(0), x2: W, y2: y(0), class: 'axis'}),
    s('line', {x1: left, y1: y(max), x2: W, y2: y(max), class: 'grid'}),
    s('text', {x: left - 4, y: y(max) + 4, class: 'tick', 'text-anchor': 'end'}, String(max)),
    s('text', {x: left - 4, y: y(0), class: 'tick', 'text-anchor': 'end'}, '0'));
  for (let i = 0; i < n; i++) {
    const x = left + i * step + (step - bw) / 2;
    let base = 0;
    const g = s('g', null, s('title', null, `${labels[i]}: ${totals[i]}` +
      series.filter((se) => se.values[i]).map((se) => `\n${se.name}: ${se.values[i]}`).join('')));
    // A transparent column under the bars keeps the tooltip on empty buckets too.
    g.appendChild(s('rect', {x, y: top, width: bw, height: plotH, class: 'hit'}));
    for (const se of series) {
      const v = se.values[i] || 0;
      if (!v) continue;
      const y0 = y(base), y1 = y(base + v);
      g.appendChild(s('rect', {x, y: y1, width: bw, height: Math.max(1, y0 - y1), class: 'bar ' + (se.cls || '')}));
      base += v;
    }
    svg.appendChild(g);
    const t = tick ? tick(i) : '';
    if (t) svg.appendChild(s('text', {x: x + bw / 2, y: H - 6, class: 'tick', 'text-anchor': 'middle'}, t));
  }
  const legend = series.length > 1 || (series[0] && series[0].name)
    ? h('ul', {class: 'legend'}, series.map((se) => h('li', null, s('svg', {viewBox: '0 0 10 10', class: 'swatch'},
      s('rect', {width: 10, height: 10, class: 'bar ' + (se.cls || '')})), ' ', se.name,
    ' ', h('span', {class: 'muted'}, String(se.values.reduce((a, b) => a + (b || 0), 0))))))
    : null;
  return h('figure', {class: 'chartbox', testid}, svg, legend);
}

// hbar is a horizontal bar of value out of max, for a table cell.
export function hbar(value, max, cls) {
  const w = max > 0 ? Math.max(value > 0 ? 1 : 0, (value / max) * 100) : 0;
  return s('svg', {viewBox: '0 0 100 8', class: 'hbar', 'aria-hidden': 'true', preserveAspectRatio: 'none'},
    s('rect', {width: 100, height: 8, class: 'track'}),
    s('rect', {width: w, height: 8, class: 'bar ' + (cls || '')}));
}

// severityClass is the CSS class of a severity's bars.
export const sevClass = (sev) => 'sev-fill-' + sev;
