// An agent's page (GET /v1/agent/NAME, its nodes from GET /v1/nodes?agent=NAME) and
// a node's page (GET /v1/node/ID, its logs from GET /v1/node/ID/logs), each with its
// history: GET /v1/events?entity=NAME, then the stream's events as they come.

import {h, fill, setText, syncRows, table, row, put, section, dl, message, badge, agentLink, nodeLink, ago, fmtTime, isoTitle, enc, setData} from './dom.js';
import {call, get, query, poll, onStream, serverNow, APIError} from './api.js';
import {EventList} from './eventlist.js';
import {stopButton} from './actions.js';

// history shows an entity's events: a page from the API, older pages on demand, and
// new events from the stream that match.
function history(entity, matches, signal, opts) {
  const list = new EventList({testid: 'history', caption: 'History, newest first', empty: 'No events yet.', ...opts});
  const note = h('div');
  const more = h('button', {type: 'button', hidden: true}, 'Load older events');
  let token = '';
  const load = async () => {
    more.disabled = true;
    try {
      const {data, res} = await call('GET', query('/v1/events', {entity, limit: 100, page_token: token}), {signal});
      list.add(data.events);
      token = data.next_page_token || '';
      const partial = res.headers.get('X-Grid-Partial');
      fill(note, partial ? message('warn', 'The history may be incomplete: ', partial) : null);
    } catch (e) {
      if (!signal.aborted) fill(note, message('error', e.message));
    } finally {
      more.hidden = !token;
      more.disabled = false;
    }
  };
  more.addEventListener('click', load);
  const unsub = onStream((m) => {
    if (m.gap) list.gap(m.gap);
    else if (matches(m.event)) list.add([m.event]);
  });
  signal.addEventListener('abort', unsub);
  load();
  return h('section', {class: 'card'}, h('h2', null, 'History'), note, list.el, h('div', {class: 'actions'}, more));
}

export function agentView(main, name, signal) {
  document.title = `Agent ${name} · Grid`;
  const status = h('span');
  const details = h('div', null, h('p', {class: 'muted'}, 'Loading…'));
  const beat = h('span');
  const stale = h('div');
  const nodes = table('agent-nodes', ['Name', 'ID', 'Port', 'Status', 'PID', 'Restarts', 'Endpoint', ''], 'Nodes of ' + name);
  const nodesNote = h('div');
  const noNodes = h('p', {class: 'muted', hidden: true}, 'This agent runs no node.');
  fill(main,
    h('h1', null, 'Agent ', h('span', {class: 'name'}, name), ' ', status),
    h('p', null, h('a', {href: '#/'}, '← Fleet'), ' · ', h('a', {href: '#/events?agent=' + enc(name)}, 'Its events on the events page')),
    section('Details', stale, details),
    h('section', {class: 'card'}, h('h2', null, 'Nodes'), nodesNote, nodes.el, noNodes),
    history(name, (e) => e.agent_id === name, signal, {agent: false}));

  poll(signal, 1000, async () => {
    const [a, ns] = await Promise.allSettled([
      get('/v1/agent/' + enc(name), {signal, timeout: 8000}),
      get(query('/v1/nodes', {agent: name}), {signal, timeout: 8000}),
    ]);
    if (signal.aborted) return;
    if (a.status !== 'rejected' || a.reason.status === 404) stale.replaceChildren();
    if (a.status === 'fulfilled') {
      const ag = a.value;
      put(status, ag.status, () => badge(ag.status));
      setText(beat, ago(ag.last_heartbeat, serverNow()));
      beat.title = isoTitle(ag.last_heartbeat);
      // Rebuilt only when it changes, so that a selection in it survives the refresh.
      put(details, JSON.stringify({...ag, last_heartbeat: 0}), () => dl([
        ['Status', [badge(ag.status), h('span', {class: 'muted'}, ' since ', fmtTime(ag.status_changed_at))]],
        ['Address', ag.address],
        ['Host', ag.hostname],
        ['Platform', ag.platform],
        ['Version', ag.version],
        ['Nodes', `${ag.nodes} running, at most ${ag.max_nodes}`],
        ['Storage root', ag.storage_root],
        ['Last heartbeat', beat],
        ['Registered', fmtTime(ag.registered_at)],
      ]));
    } else if (a.reason instanceof APIError && a.reason.status === 404) {
      put(status, 'gone', () => badge('not registered'));
      put(details, '404', () => message('warn', a.reason.message, '. The agent is not registered now; its history is below.'));
    } else {
      fill(stale, message('error', 'Could not refresh: ', a.reason.message));
    }
    if (ns.status === 'fulfilled') {
      nodesNote.replaceChildren();
      noNodes.hidden = ns.value.length > 0;
      nodes.el.hidden = !ns.value.length;
      ns.value.sort((x, y) => (x.status === 'stopped') - (y.status === 'stopped') || x.name.localeCompare(y.name));
      syncRows(nodes.tbody, ns.value, (n) => n.id, agentNodeRow);
    } else {
      fill(nodesNote, message('error', 'Could not refresh: ', ns.reason.message));
    }
  });
}

function agentNodeRow() {
  const stop = stopButton();
  return row({testid: 'node-row'}, 8, (td, n, tr) => {
    setData(tr, 'id', n.id);
    setData(tr, 'name', n.name);
    setData(tr, 'status', n.status);
    put(td[0], n.id + n.name, () => nodeLink(n.id, n.name));
    setText(td[1], n.id);
    setText(td[2], n.port);
    put(td[3], n.status + (n.error || ''), () => [badge(n.status), n.error ? h('div', {class: 'err-text'}, n.error) : null]);
    setText(td[4], n.pid || '');
    setText(td[5], n.restarts);
    setText(td[6], n.endpoint);
    if (!td[7].firstChild) td[7].appendChild(stop.el);
    stop.update(n);
  });
}

export function nodeView(main, id, signal) {
  document.title = `Node ${id} · Grid`;
  const title = h('span', {class: 'name'}, id);
  const status = h('span');
  const details = h('div', null, h('p', {class: 'muted'}, 'Loading…'));
  const stale = h('div');
  const stop = stopButton();
  const logs = logsCard(id, signal);
  const head = h('div', {class: 'title-row'}, h('h1', null, 'Node ', title, ' ', status), stop.el);
  stop.el.hidden = true;
  fill(main, head, h('p', null, h('a', {href: '#/'}, '← Fleet'), ' · ', h('a', {href: '#/events?node=' + enc(id)}, 'Its events on the events page')),
    section('Details', stale, details), logs, history(id, (e) => e.node_id === id, signal, {node: false}));

  let tries = 0;
  poll(signal, 1000, async () => {
    let n;
    try {
      n = await get('/v1/node/' + enc(id), {signal, timeout: 8000});
    } catch (e) {
      if (signal.aborted) return;
      // A node's name given for its ID: find the ID.
      if (e instanceof APIError && e.status === 404 && tries++ === 0) {
        const all = await get('/v1/nodes', {signal}).catch(() => []);
        const m = all.find((x) => x.name === id);
        if (m) return location.replace('#/nodes/' + enc(m.id));
      }
      if (e.status === 404) put(details, '404', () => message('warn', e.message));
      else fill(stale, message('error', 'Could not refresh: ', e.message));
      return;
    }
    stale.replaceChildren();
    document.title = `Node ${n.name} · Grid`;
    setText(title, n.name);
    put(status, n.status, () => badge(n.status));
    stop.el.hidden = false;
    stop.update(n);
    const rp = n.restart_policy || {};
    put(details, JSON.stringify(n), () => dl([
      ['ID', n.id],
      ['Name', n.name],
      ['Agent', [agentLink(n.agent), ' ', h('a', {href: '#/events?agent=' + enc(n.agent)}, '(its events)')]],
      ['Status', [badge(n.status), h('span', {class: 'muted'}, ' · updated ', fmtTime(n.updated_at))]],
      ['Error', n.error ? h('span', {class: 'err-text'}, n.error) : ''],
      ['Endpoint', n.endpoint],
      ['Port', String(n.port)],
      ['PID', n.pid ? String(n.pid) : ''],
      ['Restarts', String(n.restarts)],
      ['Last exit', n.exit_code != null ? `exit code ${n.exit_code}` + (n.signal ? `, signal ${n.signal}` : '') : ''],
      ['Storage path', n.storage_path],
      ['Memory limit', `${n.memory_limit_mb} MiB`],
      ['Restart policy', `${rp.attempts ?? 3} attempts in ${rp.interval}, after ${rp.delay} doubling up to ${rp.max_delay}`],
      ['Created', fmtTime(n.created_at)],
      ['Requested by', n.requested_by || ''],
    ]));
  });
}

function logsCard(id, signal) {
  const out = h('div');
  const btn = h('button', {type: 'button'}, 'Show the last 100 lines');
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    fill(out, h('p', {class: 'muted'}, 'Asking the node\'s agent…'));
    try {
      const l = await get('/v1/node/' + enc(id) + '/logs?lines=100', {signal});
      fill(out,
        h('h3', null, 'stderr'), h('pre', {class: 'logs', tabindex: 0}, l.stderr || '(empty)'),
        h('h3', null, 'stdout'), h('pre', {class: 'logs', tabindex: 0}, l.stdout || '(empty)'));
      btn.textContent = 'Refresh';
    } catch (e) {
      fill(out, message('error', e.message));
    } finally {
      btn.disabled = false;
    }
  });
  return h('section', {class: 'card'}, h('h2', null, 'Logs'), h('div', {class: 'actions'}, btn), out);
}
