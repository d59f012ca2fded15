// Building elements. Data only ever becomes text (textContent, attribute values):
// never HTML, so a name with <script> in it is shown, not run.

const SVGNS = 'http://www.w3.org/2000/svg';

// add appends children: nodes, strings (as text), numbers; null, undefined and false
// are skipped, arrays flattened.
function add(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) add(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

function setAttrs(el, attrs) {
  if (!attrs) return el;
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'data') for (const [d, dv] of Object.entries(v)) { if (dv != null) el.dataset[d] = String(dv); }
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'testid') el.setAttribute('data-testid', v);
    else if (k.startsWith('on')) throw new Error('use on: {...} for ' + k);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  return el;
}

// h makes an HTML element: h('a', {href: '#/', class: 'x'}, 'text', child, …).
export function h(tag, attrs, ...children) {
  return add(setAttrs(document.createElement(tag), attrs), children);
}

// s makes an SVG element.
export function s(tag, attrs, ...children) {
  return add(setAttrs(document.createElementNS(SVGNS, tag), attrs), children);
}

// clear empties el and appends children.
export function fill(el, ...children) {
  el.replaceChildren();
  return add(el, children);
}

// setText changes el's text only when it differs, so that updates every second leave
// unchanged cells (and the selection in them) alone.
export function setText(el, text) {
  text = text == null ? '' : String(text);
  if (el.textContent !== text) el.textContent = text;
}

export function setData(el, key, value) {
  value = value == null ? '' : String(value);
  if (el.dataset[key] !== value) el.dataset[key] = value;
}

// syncRows makes parent's children match items, in order, keyed by key(item): a row
// made once by make(item) (an object with el and update(item)) is kept and updated,
// so that an element a user (or a test) holds stays the same while data changes.
export function syncRows(parent, items, key, make) {
  const old = parent._rows || new Map();
  const next = new Map();
  let prev = null;
  for (const it of items) {
    const k = key(it);
    let r = old.get(k) || next.get(k);
    if (!r) r = make(it);
    r.update(it);
    next.set(k, r);
    const want = prev ? prev.el.nextSibling : parent.firstChild;
    if (want !== r.el) parent.insertBefore(r.el, want);
    prev = r;
  }
  for (const [k, r] of old) if (!next.has(k)) r.el.remove();
  parent._rows = next;
}

// Routes.
export const enc = encodeURIComponent;
export const agentHref = (name) => '#/agents/' + enc(name);
export const nodeHref = (id) => '#/nodes/' + enc(id);
export const eventHref = (seq) => '#/events/' + enc(seq);

export function agentLink(name) {
  if (!name) return '';
  return h('a', {href: agentHref(name), class: 'ent'}, name);
}

// nodeLink links to a node by ID, labelled with its name when it has one.
export function nodeLink(id, name) {
  if (!id) return '';
  return h('a', {href: nodeHref(id), class: 'ent', title: id}, name || id);
}

export function eventLink(seq, label) {
  return h('a', {href: eventHref(seq), class: 'seq'}, label || '#' + seq);
}

// badge shows a status or severity with its colour (style.css: .b-NAME).
export function badge(value, title) {
  return h('span', {class: ['badge', 'b-' + String(value || 'none').replace(/[^a-z_]/g, '')], title}, value || '—');
}

const pad = (n) => String(n).padStart(2, '0');

// fmtTime shows a time in the browser's time zone, to the second.
export function fmtTime(t) {
  if (!t) return '';
  const d = t instanceof Date ? t : new Date(t);
  if (isNaN(d) || d.getTime() <= 0) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// isoTitle is a time's exact value, for a tooltip.
export function isoTitle(t) {
  const d = new Date(t);
  return isNaN(d) ? '' : d.toISOString();
}

// dur renders seconds as "3s", "5m", "2h 10m", "3d 4h".
export function dur(sec) {
  sec = Math.max(0, Math.round(sec));
  if (sec < 60) return sec + 's';
  const m = Math.floor(sec / 60);
  if (m < 60) return m + 'm';
  const hr = Math.floor(m / 60);
  if (hr < 24) return hr + 'h' + (m % 60 ? ' ' + (m % 60) + 'm' : '');
  const d = Math.floor(hr / 24);
  return d + 'd' + (hr % 24 ? ' ' + (hr % 24) + 'h' : '');
}

// ago renders how long before now a time was: "3s ago"; "never" for the zero time.
export function ago(t, now) {
  const d = new Date(t);
  if (!t || isNaN(d) || d.getTime() <= 0) return 'never';
  const sec = (now - d.getTime()) / 1000;
  if (sec < -1) return 'in ' + dur(-sec);
  return dur(sec) + ' ago';
}

// table makes a table with a header row; body rows go into the returned tbody.
export function table(testid, headers, caption) {
  const tbody = h('tbody');
  const t = h('table', {testid, class: 'tight'},
    caption ? h('caption', {class: 'sr'}, caption) : null,
    h('thead', null, h('tr', null, headers.map((x) => h('th', {scope: 'col'}, x)))),
    tbody);
  return {el: h('div', {class: 'scroll'}, t), table: t, tbody};
}

// row makes a row of n cells that update in place: update(item) calls
// set(cells, item, tr).
export function row(attrs, n, set) {
  const tds = Array.from({length: n}, () => h('td'));
  const el = h('tr', attrs, tds);
  return {el, tds, update(it) { set(tds, it, el); }};
}

// put replaces a cell's content with node(s) when key (what it shows) changed.
export function put(td, key, make) {
  key = String(key);
  if (td._key === key) return;
  td._key = key;
  fill(td, make());
}

// plural: "1 event", "2 events".
export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many || one + 's'}`;
}

// section makes a titled section.
export function section(title, ...children) {
  return h('section', {class: 'card'}, h('h2', null, title), children);
}

// dl makes a definition list from [term, value] pairs, skipping empty values.
export function dl(pairs) {
  return h('dl', {class: 'kv'}, pairs.filter(([, v]) => v !== '' && v != null && v !== false)
    .map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

export function message(kind, ...children) {
  return h('p', {class: ['msg', kind]}, children);
}
