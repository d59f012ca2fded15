// Start-up: the router (the hash says what to show: #/, #/events, #/events/SEQ,
// #/ask, #/agents/NAME, #/nodes/ID), the header, the banner, the status poll that
// every page shares, and the event stream.

import {h, fill, badge} from './dom.js';
import {poll, onProblems, loadTypes, startStream, onStreamState, onStatus, pollStatus} from './api.js';
import {fleetView} from './fleet.js';
import {eventsView, eventView} from './events.js';
import {agentView, nodeView} from './entity.js';
import {askView} from './ask.js';
import {tokenButton} from './token.js';

function showHealth(health) {
  const el = document.getElementById('health');
  if (!el) return;
  const v = health ? health.replace('cluster_', '') : '';
  fill(el, v ? badge(v, 'Cluster health') : '');
}

// Routes: [pattern, view]; a view is mount(main, params, signal).
const routes = [
  [/^\/?$/, (m, p, sig) => fleetView(m, sig)],
  [/^\/events\/?$/, (m, p, sig, q) => eventsView(m, sig, q)],
  [/^\/events\/([^/]+)$/, (m, p, sig) => eventView(m, p[1], sig)],
  [/^\/ask\/?$/, (m, p, sig) => askView(m, sig)],
  [/^\/agents\/([^/]+)$/, (m, p, sig) => agentView(m, p[1], sig)],
  [/^\/nodes\/([^/]+)$/, (m, p, sig) => nodeView(m, p[1], sig)],
];

let current = null;

function route(focus) {
  const hash = location.hash;
  // Only "#/…" is a route: other fragments are left to the browser.
  if (hash && !hash.startsWith('#/')) {
    if (current) return;
  }
  const full = hash.startsWith('#/') ? hash.slice(1) : '/';
  const [path, qs] = full.split('?');
  const main = document.getElementById('main');
  if (current) current.abort();
  current = new AbortController();
  main.replaceChildren();
  const first = path.split('/')[1];
  const section = first === 'events' || first === 'ask' ? first : 'fleet';
  document.querySelectorAll('[data-nav]').forEach((a) => {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  for (const [re, view] of routes) {
    const m = path.match(re);
    if (!m) continue;
    let params;
    try {
      params = m.map((x) => decodeURIComponent(x || ''));
    } catch {
      break;
    }
    view(main, params, current.signal, new URLSearchParams(qs || ''));
    if (focus) main.focus({preventScroll: false});
    return;
  }
  document.title = 'Not found · Grid';
  fill(main, h('h1', null, 'Not found'), h('p', null, 'There is no page at ', h('code', null, hash), '. ', h('a', {href: '#/'}, 'Back to the fleet'), '.'));
}

function banner(problems) {
  const el = document.getElementById('banner');
  const msgs = [...new Set(problems.values())];
  if (!msgs.length) {
    el.hidden = true;
    el.replaceChildren();
    return;
  }
  fill(el, msgs.map((m) => h('div', null, m)));
  el.hidden = false;
}

function liveState(st) {
  const el = document.getElementById('live');
  el.className = 'live st-' + st;
  el.textContent = {live: '● live', reconnecting: '○ reconnecting…', paused: '○ paused'}[st] || '○ connecting…';
  el.title = st === 'live' ? 'Following the event stream' : 'The event stream is reconnecting; missed events follow when it is back';
}

async function start() {
  const header = document.querySelector('header.top');
  header.insertBefore(h('span', {id: 'health', class: 'health'}), document.getElementById('live'));
  header.appendChild(tokenButton());
  onProblems(banner);
  onStreamState(liveState);
  onStatus((st) => showHealth(st && st.cluster_health));
  document.querySelector('.skip').addEventListener('click', (e) => {
    e.preventDefault();
    document.getElementById('main').focus();
  });
  poll(new AbortController().signal, 1000, pollStatus);
  // Views need the event types (their severities) before they show events.
  fill(document.getElementById('main'), h('p', {class: 'muted'}, 'Connecting to the server…'));
  await loadTypes();
  startStream();
  window.addEventListener('hashchange', () => route(true));
  route(false);
}

start();
