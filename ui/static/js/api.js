// Requests to the HTTP API, and what the UI learns from them: whether the server and
// a leader can be reached (the banner), the server's clock, the event types, and the
// event stream that every view shares. Every request carries the ACL token, and a
// refusal (403) asks for one (token.js).

import {withToken, askToken} from './token.js';

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status; // 0: the server could not be reached
  }
}

// Problems that the banner shows, by source; each source clears its own.
const problems = new Map();
const problemListeners = new Set();

export function setProblem(source, msg) {
  if (problems.get(source) === msg) return;
  problems.set(source, msg);
  problemListeners.forEach((fn) => fn(problems));
}

export function clearProblem(source) {
  if (!problems.delete(source)) return;
  problemListeners.forEach((fn) => fn(problems));
}

export function onProblems(fn) {
  problemListeners.add(fn);
  fn(problems);
}

// The server's clock, from the Date header of its answers, so that "3s ago" is
// right on a browser whose clock is off. The header counts whole seconds: only a
// skew over 2 s is believed.
let skew = 0;
export const serverNow = () => Date.now() + skew;

function learnClock(res) {
  const d = Date.parse(res.headers.get('Date') || '');
  if (isNaN(d)) return;
  const diff = d - Date.now();
  skew = Math.abs(diff) > 2000 ? diff : 0;
}

// call sends a request and returns {data, res}. An answer other than 2xx throws an
// APIError with the server's error text as it is. A server that cannot be reached,
// or that has no leader, raises the banner; the status poll (main.js) lowers it. A
// refusal asks for a token, and the request goes again with the token entered.
export async function call(method, path, opts = {}) {
  for (;;) {
    try {
      return await callOnce(method, path, opts);
    } catch (e) {
      if (!(e instanceof APIError && e.status === 403 && (await askToken(e.message)))) throw e;
    }
  }
}

async function callOnce(method, path, {body, signal, timeout = 15000} = {}) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new DOMException('timed out after ' + timeout / 1000 + 's', 'TimeoutError')), timeout);
  const abort = () => ctl.abort(signal.reason);
  if (signal) {
    if (signal.aborted) abort();
    signal.addEventListener('abort', abort);
  }
  let res;
  try {
    const init = {method, signal: ctl.signal, cache: 'no-store', headers: withToken({Accept: 'application/json'})};
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    res = await fetch(path, init);
  } catch (e) {
    if (signal && signal.aborted) throw e;
    const msg = e && e.name === 'TimeoutError' ? e.message : 'the server cannot be reached';
    setProblem('server', `No answer from ${location.host}: ${msg}. Retrying…`);
    throw new APIError(0, `${method} ${path}: ${msg}`);
  } finally {
    clearTimeout(timer);
    if (signal) signal.removeEventListener('abort', abort);
  }
  clearProblem('server');
  learnClock(res);
  let data = null;
  const text = await res.text();
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const msg = (data && typeof data.error === 'string' && data.error) || text.trim() || res.statusText;
    if (res.status === 503) setProblem('leader', `No leader: ${msg}. The servers may be electing one, or have lost their quorum; retrying…`);
    throw new APIError(res.status, msg);
  }
  return {data, res};
}

export async function get(path, opts) {
  return (await call('GET', path, opts)).data;
}

// query builds "path?k=v&…" from the parameters that are not empty.
export function query(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== '' && v != null) q.set(k, String(v));
  }
  const qs = q.toString();
  return qs ? path + '?' + qs : path;
}

export const enc = encodeURIComponent;

// Event types and their severities, from GET /v1/events/types.
export const SEVERITIES = ['info', 'warning', 'error', 'critical'];
let types = [];
const severityByType = new Map();

export async function loadTypes() {
  for (;;) {
    try {
      types = await get('/v1/events/types');
      types.forEach((t) => severityByType.set(t.type, t.severity));
      return types;
    } catch (e) {
      await sleep(2000);
    }
  }
}

export const eventTypes = () => types;
export const severityOf = (type) => severityByType.get(type) || 'info';

export const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  if (signal) signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, {once: true});
});

// poll calls fn every interval ms (from the end of one call to the start of the
// next, less the time it took) until signal aborts.
export async function poll(signal, interval, fn) {
  while (!signal.aborted) {
    const start = Date.now();
    try {
      await fn();
    } catch (e) {
      // fn shows its own errors; the loop goes on.
    }
    await sleep(Math.max(100, interval - (Date.now() - start)), signal);
  }
}

// The event stream: one for the page, on GET /v1/event/stream, read with fetch
// (EventSource cannot send the token header). It starts with the next new event;
// after a dropped connection it is opened again after the last seq seen (the id of
// the last message, as EventSource's Last-Event-ID would be). Listeners get {event}
// or {gap}.
const streamListeners = new Set();
const stateListeners = new Set();
let source = null; // the AbortController of the open stream
let lastSeq = 0;
let streamState = 'connecting';

export function onStream(fn) {
  streamListeners.add(fn);
  return () => streamListeners.delete(fn);
}

export function onStreamState(fn) {
  stateListeners.add(fn);
  fn(streamState);
}

function setStreamState(st) {
  streamState = st;
  stateListeners.forEach((fn) => fn(st));
}

// stopStream closes the stream, which startStream resumes after the last seq seen.
// A tab that is not shown lets its connection go: browsers allow only six to a
// server over HTTP/1.1, and a stream holds one for as long as it is open.
export function stopStream() {
  if (!source) return;
  source.abort();
  source = null;
  if (!lastSeq && lastStatus) lastSeq = lastStatus.events.last_seq;
  setStreamState('paused');
}

let hiddenTimer = 0;
document.addEventListener('visibilitychange', () => {
  clearTimeout(hiddenTimer);
  if (document.hidden) hiddenTimer = setTimeout(stopStream, 30000);
  else if (!source && streamState === 'paused') startStream();
});
// A page kept in the back-forward cache keeps no connection either.
window.addEventListener('pagehide', stopStream);
window.addEventListener('pageshow', (e) => { if (e.persisted && !source) startStream(); });

export function startStream() {
  if (source) source.abort();
  const ctl = new AbortController();
  source = ctl;
  follow(ctl.signal);
}

// follow reads the stream until signal aborts, opening it again after each end.
async function follow(signal) {
  while (!signal.aborted) {
    let wait = 2000;
    try {
      const url = lastSeq > 0 ? '/v1/event/stream?since_seq=' + lastSeq : '/v1/event/stream';
      const res = await fetch(url, {signal, cache: 'no-store', headers: withToken({Accept: 'text/event-stream'})});
      if (res.status === 403) {
        const e = await res.json().catch(() => ({}));
        setStreamState('reconnecting');
        if (await askToken(e.error || 'The event stream was refused.')) wait = 0;
        else wait = 10000;
      } else if (res.ok && res.body) {
        setStreamState('live');
        await readEvents(res.body, signal);
      }
    } catch {
      // A dropped connection, or the stream stopped: opened again below, or not.
    }
    if (signal.aborted) return;
    if (!lastSeq && lastStatus) lastSeq = lastStatus.events.last_seq;
    setStreamState('reconnecting');
    await sleep(wait, signal);
  }
}

// readEvents parses server-sent events from body until it ends.
async function readEvents(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener('abort', () => reader.cancel().catch(() => {}), {once: true});
  let buf = '';
  let msg = {};
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buf += value;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      if (line === '') {
        dispatch(msg);
        msg = {};
      } else if (line[0] !== ':') {
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        const val = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
        if (field === 'data') msg.data = msg.data == null ? val : msg.data + '\n' + val;
        else if (field === 'event' || field === 'id') msg[field] = val;
      }
    }
  }
}

// dispatch hands one message to the listeners: an event, or a gap.
function dispatch(m) {
  const id = Number(m.id);
  if (id > lastSeq) lastSeq = id;
  if (m.data == null) return;
  let v;
  try {
    v = JSON.parse(m.data);
  } catch {
    return;
  }
  if (m.event === 'gap') {
    streamListeners.forEach((fn) => fn({gap: v}));
  } else if (typeof v.seq === 'number') {
    streamListeners.forEach((fn) => fn({event: v}));
  }
}

// The status poll (main.js runs it every second): GET /v1/status is answered by the
// leader, so its success says that the server and a leader answer, and the banner
// goes. Views that show the status listen with onStatus.
const statusListeners = new Set();
let lastStatus = null;

export function onStatus(fn) {
  statusListeners.add(fn);
  if (lastStatus) fn(lastStatus);
  return () => statusListeners.delete(fn);
}

export async function pollStatus() {
  try {
    lastStatus = await get('/v1/status', {timeout: 8000});
    clearProblem('leader');
    clearProblem('status');
    statusListeners.forEach((fn) => fn(lastStatus));
  } catch (e) {
    if (e instanceof APIError && e.status !== 0 && e.status !== 503) setProblem('status', 'GET /v1/status: ' + e.message);
    statusListeners.forEach((fn) => fn(null, e));
  }
}
