// The events page: a chart of the last 24 hours (GET /v1/events/aggregate), filters,
// and the list: a page from GET /v1/events, then the stream's events as they come.
// And an event's page (GET /v1/event/SEQ) with its causes and effects.

import {h, fill, section, dl, message, badge, agentLink, nodeLink, eventLink, fmtTime, isoTitle, plural, enc} from './dom.js';
import {call, get, query, onStream, eventTypes, severityOf, SEVERITIES, sleep} from './api.js';
import {EventList, chain} from './eventlist.js';
import {barChart, sevClass} from './chart.js';

const FILTERS = ['type', 'severity', 'agent', 'node'];

export function eventsView(main, signal, params) {
  document.title = 'Events · Grid';
  const f = Object.fromEntries(FILTERS.map((k) => [k, (params && params.get(k)) || '']));

  const chartBox = h('div', {class: 'chart-wrap'}, h('p', {class: 'muted'}, 'Counting…'));
  const list = new EventList({caption: 'Events, newest first', empty: 'No events match.'});
  const note = h('div');
  const more = h('button', {type: 'button', hidden: true}, 'Load older events');
  const info = h('p', {class: 'muted', role: 'status'});

  // Filters: choices from the event types, and the agents and nodes the grid knows.
  const sel = (name, label, options) => {
    const el = h('select', {name, id: 'f-' + name}, h('option', {value: ''}, 'all'),
      options.map(([v, t]) => h('option', {value: v}, t)));
    if (f[name] && !options.some(([v]) => v === f[name])) el.appendChild(h('option', {value: f[name]}, f[name]));
    el.value = f[name];
    return h('label', {class: 'field', for: el.id}, h('span', null, label), el);
  };
  const text = (name, label, listId) => {
    const el = h('input', {name, id: 'f-' + name, type: 'search', list: listId, value: f[name], autocomplete: 'off', spellcheck: 'false', placeholder: 'all'});
    return h('label', {class: 'field', for: el.id}, h('span', null, label), el);
  };
  const agentsList = h('datalist', {id: 'agent-names'});
  const nodesList = h('datalist', {id: 'node-names'});
  const form = h('form', {class: 'filters', testid: 'event-filters', role: 'search'},
    sel('type', 'Type', eventTypes().map((t) => [t.type, t.type])),
    sel('severity', 'Severity', SEVERITIES.slice(1).map((x) => [x, x === 'critical' ? x : x + ' or worse'])),
    text('agent', 'Agent', 'agent-names'),
    text('node', 'Node', 'node-names'),
    agentsList, nodesList,
    h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Apply'), h('button', {type: 'reset'}, 'Clear')));

  fill(main,
    h('h1', null, 'Events'),
    section('Events per hour, last 24 hours', chartBox),
    h('section', {class: 'card'}, h('h2', null, 'Events'), form, info, note, list.el, h('div', {class: 'actions'}, more)));

  // Names for the filters' suggestions.
  Promise.allSettled([get('/v1/agents', {signal}), get('/v1/nodes', {signal})]).then(([a, n]) => {
    if (a.status === 'fulfilled') fill(agentsList, a.value.map((x) => h('option', {value: x.name})));
    if (n.status === 'fulfilled') fill(nodesList, n.value.map((x) => h('option', {value: x.name}, x.id)));
  });

  // Severities filter as the CLI's -severity does: that severity or worse, by type.
  const atLeast = (type) => !f.severity || SEVERITIES.indexOf(severityOf(type)) >= SEVERITIES.indexOf(f.severity);
  const typesAsked = () => (f.type ? [f.type] : eventTypes().map((t) => t.type)).filter(atLeast);
  const matches = (e) => (!f.type || e.type === f.type) && atLeast(e.type) &&
    (!f.agent || e.agent_id === f.agent) &&
    (!f.node || e.node_id === f.node || e.node_name === f.node);

  let token = '';
  let generation = 0;
  const load = async (more_) => {
    const gen = more_ ? generation : ++generation;
    if (!more_) {
      list.clear();
      token = '';
      note.replaceChildren();
    }
    more.disabled = true;
    const types = typesAsked();
    try {
      if (!types.length) throw new Error(`No event of type ${f.type} is of severity ${f.severity} or worse.`);
      const type = f.type || f.severity ? types.join(',') : '';
      const {data, res} = await call('GET', query('/v1/events', {type, agent: f.agent, node: f.node, limit: 100, page_token: more_ ? token : ''}), {signal});
      if (gen !== generation) return;
      list.add(data.events);
      token = data.next_page_token || '';
      const partial = res.headers.get('X-Grid-Partial');
      if (partial) fill(note, message('warn', 'The list may be incomplete: ', partial));
    } catch (e) {
      if (!signal.aborted && gen === generation) fill(note, message('error', e.message));
    } finally {
      more.hidden = !token;
      more.disabled = false;
      counts();
    }
  };
  let live = 0;
  const counts = () => info.textContent = `${plural(list.size, 'event')} shown` + (live ? `, ${live} of them live` : '') +
    (FILTERS.some((k) => f[k]) ? ' · filtered' : '') + '. New events appear at the top as they happen.';

  const apply = () => {
    for (const k of FILTERS) f[k] = form.elements[k].value.trim();
    const q = new URLSearchParams(Object.entries(f).filter(([, v]) => v)).toString();
    history.replaceState(null, '', '#/events' + (q ? '?' + q : ''));
    live = 0;
    load(false);
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); apply(); });
  form.addEventListener('reset', () => setTimeout(apply));
  form.elements.type.addEventListener('change', apply);
  form.elements.severity.addEventListener('change', apply);
  more.addEventListener('click', () => load(true));

  let chartDue = 0;
  const unsub = onStream((m) => {
    if (m.gap) return list.gap(m.gap);
    if (matches(m.event) && !list.has(m.event.seq)) {
      live++;
      list.add([m.event]);
      counts();
    }
    chartDue = chartDue || Date.now() + 5000;
  });
  signal.addEventListener('abort', unsub);

  load(false);
  (async () => {
    let next = 0;
    while (!signal.aborted) {
      if (Date.now() >= next || (chartDue && Date.now() >= chartDue)) {
        chartDue = 0;
        next = Date.now() + 60000;
        await drawChart(chartBox, signal);
      }
      await sleep(1000, signal);
    }
  })();
}

// drawChart draws the last 24 hours' events per hour, stacked by severity.
async function drawChart(box, signal) {
  let data;
  try {
    data = await get('/v1/events/aggregate?group_by=severity&bucket=1h&since=24h', {signal});
  } catch (e) {
    if (!signal.aborted) fill(box, message('error', 'Could not count the events: ', e.message));
    return;
  }
  const buckets = [...new Set(data.groups.filter((g) => g.bucket).map((g) => g.bucket))].sort();
  const idx = new Map(buckets.map((b, i) => [b, i]));
  const series = SEVERITIES.map((sev) => ({name: sev, cls: sevClass(sev), values: buckets.map(() => 0)}));
  for (const g of data.groups) {
    const se = series.find((x) => x.name === g.values.severity);
    if (se && idx.has(g.bucket)) se.values[idx.get(g.bucket)] += g.count;
  }
  const hour = (b) => new Date(b).getHours();
  fill(box,
    barChart({
      labels: buckets.map((b) => fmtTime(b).slice(0, 16)),
      series,
      tick: (i) => (hour(buckets[i]) % 3 === 0 ? String(hour(buckets[i])).padStart(2, '0') + 'h' : ''),
      title: `Events per hour over the last 24 hours, by severity: ${data.total} in all`,
      testid: 'events-chart',
    }),
    h('p', {class: 'muted'}, `${plural(data.total, 'event')} in the last 24 hours`, data.truncated ? ' (some groups left out)' : '', '.'));
}

// eventView shows one event, its fields, and its chain of causes and effects.
export function eventView(main, seqText, signal) {
  const seq = Number(seqText);
  document.title = `Event #${seqText} · Grid`;
  const body = h('div', null, h('p', {class: 'muted'}, 'Loading…'));
  const nav = h('nav', {class: 'pager', 'aria-label': 'Neighbouring events'},
    seq > 1 ? h('a', {href: '#/events/' + (seq - 1)}, '← #' + (seq - 1)) : null,
    h('a', {href: '#/events'}, 'All events'),
    Number.isInteger(seq) ? h('a', {href: '#/events/' + (seq + 1)}, '#' + (seq + 1) + ' →') : null);
  fill(main, h('h1', null, 'Event #', seqText), nav, body);

  const show = async () => {
    let d, res;
    try {
      ({data: d, res} = await call('GET', '/v1/event/' + enc(seqText), {signal}));
    } catch (e) {
      if (!signal.aborted) fill(body, message('error', e.message));
      return;
    }
    const e = d.event;
    const sev = severityOf(e.type);
    const partial = res.headers.get('X-Grid-Partial');
    const skip = new Set(['seq', 'type', 'timestamp', 'description', 'agent_id', 'node_id', 'node_name', 'caused_by']);
    const extra = Object.entries(e).filter(([k]) => !skip.has(k))
      .map(([k, v]) => [k.replaceAll('_', ' '), k === 'last_seen' ? fmtTime(v) : typeof v === 'object' ? JSON.stringify(v) : String(v)]);
    fill(body,
      h('p', {class: 'lead sev-' + sev, testid: 'event-detail', data: {seq: e.seq, type: e.type}}, badge(sev), ' ', h('span', {class: 'type'}, e.type), ' — ', e.description),
      partial ? message('warn', 'Causes or effects may be missing: ', partial) : null,
      section('Details', dl([
        ['Time', h('span', {title: isoTitle(e.timestamp)}, fmtTime(e.timestamp))],
        ['Agent', e.agent_id ? [agentLink(e.agent_id), ' · ', h('a', {href: '#/events?agent=' + enc(e.agent_id)}, 'its events')] : ''],
        ['Node', e.node_id ? [nodeLink(e.node_id, e.node_name), e.node_name && e.node_name !== e.node_id ? ` (${e.node_id})` : ''] : ''],
        ['Caused by', e.caused_by ? eventLink(e.caused_by) : ''],
        ['Type', h('a', {href: '#/events?type=' + enc(e.type)}, 'all ', e.type, ' events')],
        ...extra,
      ])),
      h('section', {class: 'card', testid: 'event-chain'}, h('h2', null, 'Causes and effects'),
        (d.causes.length || d.effects.length)
          ? chain(e, d.causes, d.effects)
          : h('p', {class: 'muted'}, 'This event has no recorded cause and, so far, no effect.')));
  };
  show();
  // An effect that happens later (a spawn succeeding) shows up by itself.
  const unsub = onStream((m) => { if (m.event && m.event.caused_by === seq) show(); });
  signal.addEventListener('abort', unsub);
}
