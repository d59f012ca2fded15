// The fleet page: cluster health (GET /v1/status), servers (GET
// /v1/operator/raft/configuration with GET /v1/members), agents (GET /v1/agents)
// and storage nodes (GET /v1/nodes), refreshed every second, with the spawn form and
// each node's stop button.

import {h, fill, setText, setData, syncRows, table, row, put, badge, agentLink, nodeLink, ago, isoTitle, section, message} from './dom.js';
import {get, onStatus, onStream, serverNow} from './api.js';
import {spawnForm, stopButton} from './actions.js';

export function fleetView(main, signal) {
  document.title = 'Fleet · Grid';
  const health = healthCard(signal);
  const servers = table('servers', ['Name', 'Address', 'Raft state', 'Leader', 'Voter', 'Gossip'], 'Servers');
  const agents = table('agents', ['Name', 'Address', 'Status', 'Nodes', 'Last heartbeat', 'Host', 'Version'], 'Agents');
  const nodes = table('nodes', ['Name', 'ID', 'Agent', 'Port', 'Status', 'PID', 'Restarts', 'Endpoint', ''], 'Storage nodes');
  const errs = {servers: h('div'), agents: h('div'), nodes: h('div')};
  const counts = {servers: h('span', {class: 'count'}), agents: h('span', {class: 'count'}), nodes: h('span', {class: 'count'})};
  const empty = {
    agents: h('p', {class: 'muted', hidden: true}, 'No agent has registered. Start one with ', h('code', null, 'grid agent'), '.'),
    nodes: h('p', {class: 'muted', hidden: true}, 'No storage node yet: spawn one below.'),
  };
  const spawn = spawnForm(signal);
  fill(main,
    h('h1', null, 'Fleet'),
    health.el,
    h('section', {class: 'card'}, h('h2', null, 'Servers ', counts.servers), errs.servers, servers.el),
    h('section', {class: 'card'}, h('h2', null, 'Agents ', counts.agents), errs.agents, agents.el, empty.agents),
    h('section', {class: 'card'}, h('h2', null, 'Storage nodes ', counts.nodes), errs.nodes, nodes.el, empty.nodes),
    section('Spawn a storage node', spawn.el));

  const show = (key, res, render) => {
    if (res.status === 'fulfilled') {
      errs[key].replaceChildren();
      render(res.value);
    } else {
      fill(errs[key], message('error', `Could not refresh: ${res.reason.message}`));
    }
  };
  const settle = (p) => p.then((value) => ({status: 'fulfilled', value}), (reason) => ({status: 'rejected', reason}));
  const load = (path) => settle(get(path, {timeout: 8000, signal}));

  const showServers = (cfg, members) => show('servers', cfg, (c) => {
    const gossip = new Map(members.status === 'fulfilled' ? members.value.filter((m) => m.role === 'server').map((m) => [m.name, m.status]) : []);
    const list = c.servers || [];
    setText(counts.servers, `(${list.length})`);
    syncRows(servers.tbody, list, (x) => x.id, serverRow);
    servers.tbody._rows.forEach((r) => r.gossip(gossip));
  });
  const showAgents = (ags) => show('agents', ags, (list) => {
    list.sort((a, b) => a.name.localeCompare(b.name));
    setText(counts.agents, `(${list.length})`);
    empty.agents.hidden = list.length > 0;
    agents.el.hidden = !list.length;
    syncRows(agents.tbody, list, (a) => a.name, agentRow);
    spawn.update(list);
  });
  const showNodes = (nds) => show('nodes', nds, (list) => {
    const rank = (n) => (n.status === 'stopped' ? 1 : 0);
    list.sort((a, b) => rank(a) - rank(b) || a.agent.localeCompare(b.agent) || a.name.localeCompare(b.name));
    setText(counts.nodes, `(${list.length})`);
    empty.nodes.hidden = list.length > 0;
    nodes.el.hidden = !list.length;
    syncRows(nodes.tbody, list, (n) => n.id, nodeRow);
  });

  // Each section refreshes every second on its own, so that the servers (answered
  // by this server) do not wait for the agents (answered by the leader, which may be
  // being elected); an event, which says something changed, refreshes them at once.
  const wakers = new Set();
  const loop = async (tick) => {
    while (!signal.aborted) {
      const start = Date.now();
      await tick();
      await new Promise((resolve) => {
        const t = setTimeout(done, Math.max(150, 1000 - (Date.now() - start)));
        function done() {
          clearTimeout(t);
          wakers.delete(done);
          resolve();
        }
        wakers.add(done);
        signal.addEventListener('abort', done, {once: true});
      });
    }
  };
  const unsub = onStream(() => [...wakers].forEach((wake) => wake()));
  signal.addEventListener('abort', unsub);
  loop(async () => {
    const [cfg, members] = await Promise.all([load('/v1/operator/raft/configuration'), load('/v1/members')]);
    if (!signal.aborted) showServers(cfg, members);
  });
  loop(async () => {
    const r = await load('/v1/agents');
    if (!signal.aborted) showAgents(r);
  });
  loop(async () => {
    const r = await load('/v1/nodes');
    if (!signal.aborted) showNodes(r);
  });
}

function healthCard(signal) {
  const state = h('span');
  const err = h('div');
  const facts = h('dl', {class: 'facts'});
  const el = h('section', {class: 'card health-card', testid: 'cluster-health', 'aria-live': 'polite'},
    h('h2', null, 'Cluster health ', state), err, facts);
  const fact = (k, ...v) => h('div', null, h('dt', null, k), h('dd', null, v));
  const unsub = onStatus((st, e) => {
    if (!st) {
      el.classList.add('stale');
      fill(err, message('error', 'Status unknown: ', e ? e.message : 'no answer', '. The figures below may be out of date.'));
      return;
    }
    el.classList.remove('stale');
    err.replaceChildren();
    const hv = (st.cluster_health || '').replace('cluster_', '');
    setData(el, 'health', hv || 'none');
    put(state, hv, () => hv ? badge(hv) : h('span', {class: 'muted'}, '(no agent registered yet)'));
    const a = st.agents, n = st.nodes, ev = st.events;
    const parts = (obj, keys) => keys.filter((k) => obj[k]).map((k) => `${obj[k]} ${k}`).join(', ');
    fill(facts,
      fact('Leader', st.leader.name || st.leader.address || 'none', st.leader.address && st.leader.name ? h('span', {class: 'muted'}, ' ', st.leader.address) : ''),
      fact('Servers', String(st.servers)),
      fact('Agents', `${a.total}`, a.total ? h('span', {class: 'muted'}, ' (' + parts(a, ['healthy', 'degraded', 'offline']) + ')') : ''),
      fact('Nodes', `${n.total}`, n.total ? h('span', {class: 'muted'}, ' (' + parts(n, ['running', 'pending', 'restarting', 'stopping', 'failed', 'lost', 'stopped']) + ')') : ''),
      fact('Events', `last #${ev.last_seq}`, h('span', {class: 'muted'}, `, ${ev.waiting} waiting to be stored`),
        storesFact(ev)));
  });
  signal.addEventListener('abort', unsub);
  return {el};
}

// storesFact tells how the event stores fare: their count by state, in red when none
// holds the whole history, with the leader's last shipping error.
function storesFact(ev) {
  const stores = ev.stores || [];
  if (!stores.length) {
    return ev.event_store ? (ev.store_reachable ? '' : h('span', {class: 'msg-inline error'}, ' · event store unreachable' + (ev.last_error ? ': ' + ev.last_error : '')))
      : h('span', {class: 'muted'}, ' · no event store');
  }
  const count = {};
  for (const s of stores) count[s.state] = (count[s.state] || 0) + 1;
  const text = ['in-sync', 'catching-up', 'down', 'faulty'].filter((k) => count[k]).map((k) => `${count[k]} ${k}`).join(', ');
  const label = ` · event ${stores.length === 1 ? 'store' : 'stores'}: ${text}`;
  if (count['in-sync'] === stores.length) return h('span', {class: 'muted', testid: 'event-stores'}, label);
  return h('span', {class: 'msg-inline error', testid: 'event-stores'}, label + (ev.last_error ? ': ' + ev.last_error : ''));
}

function serverRow() {
  let gossipStatus = new Map();
  let last = null;
  const r = row({testid: 'server-row'}, 6, (td, s, tr) => {
    last = s;
    setData(tr, 'name', s.node);
    setData(tr, 'leader', s.leader);
    setText(td[0], s.node || '(unknown to gossip)');
    setText(td[1], s.address);
    put(td[2], s.state, () => badge(s.state));
    put(td[3], s.leader, () => s.leader ? h('span', {class: 'star', title: 'the leader'}, '★ leader') : '');
    setText(td[4], s.voter ? 'yes' : 'no');
    const g = gossipStatus.get(s.node) || 'unknown';
    put(td[5], g, () => badge(g));
  });
  r.gossip = (m) => { gossipStatus = m; if (last) r.update(last); };
  return r;
}

function agentRow() {
  return row({testid: 'agent-row'}, 7, (td, a, tr) => {
    setData(tr, 'name', a.name);
    setData(tr, 'status', a.status);
    put(td[0], a.name, () => agentLink(a.name));
    setText(td[1], a.address);
    put(td[2], a.status, () => badge(a.status));
    setText(td[3], `${a.nodes} / ${a.max_nodes}`);
    td[3].title = `${a.nodes} running of at most ${a.max_nodes}`;
    setText(td[4], ago(a.last_heartbeat, serverNow()));
    td[4].title = isoTitle(a.last_heartbeat);
    setText(td[5], [a.hostname, a.platform].filter(Boolean).join(' · '));
    setText(td[6], a.version);
  });
}

function nodeRow() {
  const stop = stopButton();
  return row({testid: 'node-row'}, 9, (td, n, tr) => {
    setData(tr, 'id', n.id);
    setData(tr, 'name', n.name);
    setData(tr, 'status', n.status);
    put(td[0], n.id + '\n' + n.name, () => nodeLink(n.id, n.name));
    setText(td[1], n.id);
    put(td[2], n.agent, () => agentLink(n.agent));
    setText(td[3], n.port);
    put(td[4], n.status + '\n' + (n.error || ''), () => [badge(n.status), n.error ? h('div', {class: 'err-text'}, n.error) : null]);
    setText(td[5], n.pid || '');
    setText(td[6], n.restarts);
    setText(td[7], n.endpoint);
    if (!td[8].firstChild) td[8].appendChild(stop.el);
    stop.update(n);
  });
}
