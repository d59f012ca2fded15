// The chat box on POST /v1/ask: each question and its answer (the summary, the
// answer drawn by its kind, and how the question was understood, with the queries
// run) are added to a conversation that lasts as long as the browser tab.

import {h, fill, dl, message, badge, agentLink, nodeLink, fmtTime, isoTitle, enc} from './dom.js';
import {call, SEVERITIES} from './api.js';
import {eventRow, eventLine, chain} from './eventlist.js';
import {barChart, hbar, sevClass} from './chart.js';

const KEY = 'grid.ask.conversation';
const KEEP = 30;
let conversation = null; // [{question, response} | {question, error}]

function loadConversation() {
  if (conversation) return conversation;
  try {
    conversation = JSON.parse(sessionStorage.getItem(KEY) || '[]');
    if (!Array.isArray(conversation)) conversation = [];
  } catch {
    conversation = [];
  }
  return conversation;
}

function saveConversation() {
  conversation = conversation.slice(-KEEP);
  try {
    sessionStorage.setItem(KEY, JSON.stringify(conversation));
  } catch {
    // Storage full or refused: the conversation stays in memory.
  }
}

const EXAMPLES = [
  'is the cluster healthy?',
  'what happened in the last hour?',
  'how many crashes per agent today?',
  'how many events per hour today?',
  'which nodes are running?',
  'why did the last node crash?',
];

export function askView(main, signal) {
  document.title = 'Ask · Grid';
  const log = h('ol', {class: 'conversation', testid: 'ask-history', 'aria-live': 'polite'});
  const input = h('input', {type: 'text', name: 'question', id: 'ask-q', testid: 'ask-input', autocomplete: 'off',
    placeholder: 'Ask about the grid: what happened to web-1 today?', required: true, maxlength: 1000, 'aria-label': 'Your question'});
  const submit = h('button', {type: 'submit', class: 'primary', testid: 'ask-submit'}, 'Ask');
  const form = h('form', {class: 'ask-form', role: 'search'}, input, submit);
  const clear = h('button', {type: 'button', class: 'small'}, 'Clear the conversation');
  const examples = h('p', {class: 'examples'}, h('span', {class: 'muted'}, 'Try: '),
    EXAMPLES.map((q) => h('button', {type: 'button', class: 'chip', on: {click: () => { input.value = q; input.focus(); }}}, q)));
  fill(main,
    h('h1', null, 'Ask'),
    h('p', {class: 'muted'}, 'Questions in plain English about what happened in the grid and how it is now. Each answer says how the question was understood and which API requests answered it.'),
    log,
    h('section', {class: 'card ask-box'}, form, examples, h('div', {class: 'actions'}, clear)));

  for (const item of loadConversation()) log.appendChild(exchange(item));
  clear.addEventListener('click', () => {
    conversation = [];
    saveConversation();
    log.replaceChildren();
    input.focus();
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    submit.disabled = true;
    const pending = h('li', {class: 'exchange'}, h('p', {class: 'question'}, question),
      h('div', {class: 'answer pending', testid: 'ask-pending'}, h('span', {class: 'spinner', 'aria-hidden': 'true'}), 'Looking it up…'));
    log.appendChild(pending);
    pending.scrollIntoView({block: 'nearest'});
    let item;
    try {
      const {data} = await call('POST', '/v1/ask', {body: {question}, timeout: 60000});
      item = {question, response: data};
      input.value = '';
    } catch (err) {
      item = {question, error: err.message, status: err.status};
    }
    submit.disabled = false;
    loadConversation().push(item);
    saveConversation();
    const el = exchange(item);
    pending.replaceWith(el);
    if (!signal.aborted) {
      el.scrollIntoView({block: 'nearest'});
      input.focus();
    }
  });
  input.focus();
}

// exchange is one question and its answer.
function exchange(item) {
  return h('li', {class: 'exchange'}, h('p', {class: 'question'}, item.question),
    item.error != null
      ? h('div', {class: 'answer', testid: 'ask-answer', data: {kind: 'error'}},
        message('error', item.error, item.status ? ` (HTTP ${item.status})` : ''))
      : answerView(item.response));
}

function answerView(r) {
  const a = r.answer || {kind: 'none'};
  return h('div', {class: 'answer', testid: 'ask-answer', data: {kind: a.kind, intent: r.interpretation && r.interpretation.intent}},
    h('p', {class: 'summary', testid: 'ask-summary'}, r.summary),
    r.partial && r.partial.length ? message('warn', 'The answer may lack events: ', r.partial.join('; ')) : null,
    body(a, r.summary),
    interpreted(r));
}

function body(a, summary) {
  switch (a.kind) {
    case 'events':
      return h('div', null,
        a.by_type && a.by_type.length ? h('p', {class: 'by-type'}, a.by_type.map((g) => h('a', {class: 'chip', href: '#/events?type=' + enc(g.values.type)}, g.values.type, ' ', h('strong', null, String(g.count))))) : null,
        events(a.events, a.total));
    case 'count':
      return h('p', {class: 'big'}, String(a.total ?? 0));
    case 'groups':
      return groups(a);
    case 'series':
      return series(a);
    case 'rate':
      return rate(a.rate);
    case 'state':
      return state(a);
    case 'chain':
      return h('div', null,
        chain(a.anchor, a.causes, a.effects),
        a.window ? h('h4', null, `On the same agent and the cluster, within ${a.window}`) : null,
        a.window ? events(a.events, null) : null);
    case 'event':
      return a.anchor ? h('p', null, eventLine(a.anchor)) : null;
    case 'none':
      // The reason, unless the summary says it already.
      return a.reason && !(summary || '').includes(a.reason) ? message('warn', a.reason) : null;
  }
  return message('warn', `An answer of kind "${a.kind}", which this page does not know how to draw.`);
}

// events lists events in the order given (the question's).
function events(list, total) {
  if (!list || !list.length) return h('p', {class: 'muted'}, 'No events.');
  const tbody = h('tbody', null, list.map((e) => eventRow(e)));
  return h('div', null,
    total != null && total > list.length ? h('p', {class: 'muted'}, `${list.length} of ${total} shown.`) : null,
    h('div', {class: 'scroll'}, h('table', {class: 'events'},
      h('thead', null, h('tr', null, ['Seq', 'Time', 'Severity', 'Type', 'Agent', 'Node', 'Description'].map((x) => h('th', {scope: 'col'}, x)))),
      tbody)));
}

// value shows one group value, linked to what it names.
function value(dim, g) {
  const v = g.values[dim];
  if (!v) return h('span', {class: 'muted'}, dim === 'agent' || dim === 'node' ? '(none: cluster events)' : '(none)');
  switch (dim) {
    case 'agent': return agentLink(v);
    case 'node': return nodeLink(v, g.values.node_name);
    case 'type': return h('a', {href: '#/events?type=' + enc(v)}, v);
    case 'severity': return badge(v);
  }
  return v;
}

function groups(a) {
  const by = a.group_by || [];
  const list = a.groups || [];
  if (!list.length) return h('p', {class: 'muted'}, 'No events.');
  const max = Math.max(...list.map((g) => g.count));
  return h('div', {class: 'scroll'}, h('table', {class: 'groups'},
    h('thead', null, h('tr', null, by.map((d) => h('th', {scope: 'col'}, d)), h('th', {scope: 'col', class: 'num'}, 'Count'), h('th', {scope: 'col'}, h('span', {class: 'sr'}, 'Share')))),
    h('tbody', null, list.map((g) => h('tr', null,
      by.map((d) => h('td', null, value(d, g))),
      h('td', {class: 'num'}, String(g.count)),
      h('td', {class: 'barcell'}, hbar(g.count, max, by[0] === 'severity' ? sevClass(g.values.severity) : '')))))));
}

function series(a) {
  const by = a.group_by || [];
  const list = a.groups || [];
  const buckets = [...new Set(list.map((g) => g.bucket))].sort();
  if (!buckets.length) return h('p', {class: 'muted'}, 'No events.');
  const idx = new Map(buckets.map((b, i) => [b, i]));
  const keyOf = (g) => by.map((d) => (d === 'node' && g.values.node_name) || g.values[d] || '(none)').join(' · ');
  const names = [...new Set(list.map(keyOf))];
  if (by[0] === 'severity') names.sort((x, y) => SEVERITIES.indexOf(x) - SEVERITIES.indexOf(y));
  const ser = names.map((n, i) => ({name: by.length ? n : 'events', cls: by[0] === 'severity' ? sevClass(n) : 'c' + (i % 6), values: buckets.map(() => 0)}));
  for (const g of list) ser[names.indexOf(keyOf(g))].values[idx.get(g.bucket)] += g.count;
  const every = Math.max(1, Math.ceil(buckets.length / 8));
  const label = (b) => {
    const t = fmtTime(b);
    return a.bucket && a.bucket.endsWith('d') ? t.slice(5, 10) : t.slice(11, 16);
  };
  return barChart({
    labels: buckets.map((b) => fmtTime(b).slice(0, 16)),
    series: ser,
    tick: (i) => (i % every === 0 ? label(buckets[i]) : ''),
    title: `${a.total} events in buckets of ${a.bucket}`,
    testid: 'ask-chart',
  });
}

function rate(r) {
  if (!r) return null;
  const pct = r.value == null ? 'no rate: nothing to divide by' : (r.value * 100).toFixed(1).replace(/\.0$/, '') + '%';
  return h('p', {class: 'rate'}, h('span', {class: 'big'}, pct), h('br'),
    h('span', {class: 'muted'}, `${r.numerator.count} ${r.numerator.type} / ${r.denominator.count} ${r.denominator.type}`));
}

function state(a) {
  const out = h('div');
  if (a.cluster) {
    const c = a.cluster;
    out.appendChild(dl([
      ['Health', c.health ? badge(c.health) : 'no agent registered'],
      ['Leader', c.leader],
      ['Servers', String(c.servers)],
      ['Agents', `${c.agents.total}: ${c.agents.healthy} healthy, ${c.agents.degraded} degraded, ${c.agents.offline} offline`],
      ['Nodes', `${c.nodes.total}: ${c.nodes.running} running, ${c.nodes.pending} pending, ${c.nodes.restarting} restarting, ${c.nodes.failed} failed, ${c.nodes.lost} lost, ${c.nodes.stopped} stopped`],
    ]));
  }
  if (a.agents) {
    out.appendChild(simpleTable(['Agent', 'Status', 'Address', 'Nodes', 'Last heartbeat'], a.agents.map((x) => [
      agentLink(x.name), badge(x.status), x.address, `${x.nodes} / ${x.max_nodes}`, h('span', {title: isoTitle(x.last_heartbeat)}, fmtTime(x.last_heartbeat))])));
  }
  if (a.nodes) {
    out.appendChild(simpleTable(['Node', 'ID', 'Agent', 'Status', 'Port', 'Restarts'], a.nodes.map((n) => [
      nodeLink(n.id, n.name), n.id, agentLink(n.agent), badge(n.status), String(n.port), String(n.restarts)])));
  }
  if (!a.cluster && !(a.agents && a.agents.length) && !(a.nodes && a.nodes.length)) out.appendChild(h('p', {class: 'muted'}, 'None.'));
  return out;
}

function simpleTable(heads, rows) {
  return h('div', {class: 'scroll'}, h('table', null,
    h('thead', null, h('tr', null, heads.map((x) => h('th', {scope: 'col'}, x)))),
    h('tbody', null, rows.map((r) => h('tr', null, r.map((c) => h('td', null, c)))))));
}

// interpreted shows how the question was understood and the queries that answered it.
function interpreted(r) {
  const i = r.interpretation || {};
  const list = (v) => (Array.isArray(v) && v.length ? v.join(', ') : '');
  const range = i.since || i.until
    ? `${i.since ? fmtTime(i.since) : 'the beginning'} to ${i.until ? fmtTime(i.until) : 'now'}` + (i.default_window ? ' (the default: the last 24 hours)' : '')
    : '';
  return h('details', {class: 'interpreted', testid: 'ask-interpreted'},
    h('summary', null, 'Interpreted as ', h('code', null, i.intent || '?')),
    dl([
      ['Intent', i.intent],
      ['Entities', list(i.entities) + (i.entities_kind ? ` (${i.entities_kind})` : '')],
      ['State', i.state],
      ['Types', i.types ? list(i.types) || 'none' : 'all'],
      ['Severity', i.severity ? i.severity + ' or worse' : ''],
      ['Time', range],
      ['Order', i.order === 'asc' ? 'oldest first' : ''],
      ['Grouped by', list(i.group_by)],
      ['Bucket', i.bucket],
      ['Limit', i.limit ? String(i.limit) : ''],
      ['Window', i.window],
      ['Reason', i.reason],
      ['Asked at', r.now ? fmtTime(r.now) : ''],
    ]),
    h('h4', null, 'Queries'),
    r.queries && r.queries.length
      ? h('ol', {class: 'queries', testid: 'ask-queries'}, r.queries.map((q) => {
        const [method, path] = q.split(' ', 2);
        return h('li', null, method === 'GET' && path && path.startsWith('/v1/')
          ? h('a', {href: path, target: '_blank', rel: 'noopener', title: 'Open the answer of this request'}, h('code', null, q))
          : h('code', null, q));
      }))
      : h('p', {class: 'muted'}, 'None: the question was answered without asking the API.'));
}
