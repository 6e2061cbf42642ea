// Paddock dashboard (issue 17). Vanilla JavaScript, no library: it speaks only the public API
// (`/v1/...`) with the token the viewer typed, kept in this tab's sessionStorage and nowhere else.
// Live updates: one loop per tab refreshes what the shown page needs when the farm moves (one
// long-poll, `GET /v1/changes`; pages of host samples and running logs on their own clocks), one
// request at a time, and backs off (with a banner) while the master does not answer.

const TOKEN_KEY = 'paddock.token';
const POLL_MS = 2000;
const HIDDEN_POLL_MS = 15000;
const MAX_BACKOFF_MS = 30000;
/** How long the change feed's long-poll is held (seconds), and the least time between two refreshes. */
const CHANGES_WAIT_S = 25;
const MIN_REFRESH_MS = 1000;
const LOG_KEEP_CHARS = 2_000_000;
const SERIES_KEEP = 4000;
/** A job's tasks per page (and so the most its graph draws at once). */
const TASKS_PER_PAGE = 300;

// ---------------------------------------------------------------------------------------------
// DOM helpers: text always goes in as text nodes, never as HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.setAttribute('class', value);
    else if (key === 'width%') node.style.width = `${value}%`;
    else if (key === 'flex') node.style.flex = String(value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  return node;
}

function h(tag, attrs, ...children) {
  return append(setAttrs(document.createElement(tag), attrs), children);
}

function s(tag, attrs, ...children) {
  return append(setAttrs(document.createElementNS(SVG_NS, tag), attrs), children);
}

const $ = (selector, root = document) => root.querySelector(selector);

// ---------------------------------------------------------------------------------------------
// Formatting: times in the viewer's zone, sizes with units.

function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

function fmtAgo(iso) {
  if (!iso) return '—';
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  return `${fmtDuration(seconds)} ago`;
}

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours} h ${m % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

function fmtBytes(bytes) {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function fmtCPUs(cpus) {
  return Number.isInteger(cpus) ? String(cpus) : cpus.toFixed(2).replace(/\.?0+$/, '');
}

function pct(x) { return `${Math.round(Math.max(0, Math.min(1, x)) * 100)}%`; }

function stateBadge(state) { return h('span', { class: `state s-${state}` }, state); }

function progressBar(fraction, label) {
  const value = Math.max(0, Math.min(1, Number(fraction) || 0));
  return h('span', { class: 'progress-cell' },
    h('span', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100,
      'aria-valuenow': Math.round(value * 100), 'aria-label': label || 'progress' }, h('span', { 'width%': value * 100 })),
    ' ', pct(value));
}

const TASK_STATES = ['blocked', 'queued', 'assigned', 'running', 'succeeded', 'failed', 'cancelled'];
const JOB_STATES = ['queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled'];
const LIVE_TASK = new Set(['assigned', 'running']);
const DONE_JOB = new Set(['succeeded', 'failed', 'cancelled']);

// ---------------------------------------------------------------------------------------------
// The API: bearer token, JSON, typed failures.

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}
/** The master did not answer (network error, 502/503/504): wait it out. */
class Unreachable extends Error {}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

/** A request that takes longer than this is given up (the master hangs): a long-poll passes `timeoutMs: null`. */
const REQUEST_TIMEOUT_MS = 20000;

async function request(path, { method = 'GET', body, signal, tokenOverride, timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
  const headers = { Authorization: `Bearer ${tokenOverride ?? token() ?? ''}` };
  const timeout = timeoutMs ? AbortSignal.timeout(timeoutMs) : null;
  const signals = [signal, timeout].filter(Boolean);
  const init = { method, headers, signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0], cache: 'no-store' };
  if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
  let response;
  try {
    // Relative to the page (`v1/...`): the same behind a frontend that serves the master under a prefix.
    response = await fetch(path.replace(/^\//, ''), init);
  } catch (error) {
    if (timeout?.aborted && !signal?.aborted) throw new Unreachable(`no answer in ${timeoutMs / 1000} s`);
    if (error.name === 'AbortError') throw error;
    throw new Unreachable('no connection');
  }
  if (response.ok) return response;
  let detail = null;
  try { detail = await response.json(); } catch { /* not JSON: a frontend's page */ }
  if ([502, 503, 504].includes(response.status)) {
    throw new Unreachable(detail?.message || `the master answered ${response.status}`);
  }
  throw new ApiError(response.status, detail?.error || 'error', detail?.message || response.statusText);
}

async function api(path, options = {}) {
  try {
    const response = await request(path, options);
    return response.status === 204 ? null : await response.json();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && !options.tokenOverride) {
      signOut('The master refused this token (401). Sign in again.');
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// The live loop: one per tab, one request in flight, back-off with a banner.

const live = { controller: null, wake: null, failures: 0, kicked: false, version: null, noChangeFeed: false };

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() { clearTimeout(timer); signal.removeEventListener('abort', done); live.wake = null; resolve(); }
    live.wake = done;
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Waits until the farm has moved since the last answer (one long-poll, `GET /v1/changes`), or kick().
 * A master without the feed (404) is polled every POLL_MS instead. */
async function waitForChange(signal) {
  if (live.noChangeFeed) { await sleep(POLL_MS, signal); return; }
  const own = new AbortController();
  const stop = () => own.abort();
  signal.addEventListener('abort', stop, { once: true });
  live.wake = stop;
  try {
    const params = new URLSearchParams({ wait: String(CHANGES_WAIT_S) });
    if (live.version) params.set('after', live.version);
    const answer = await api(`/v1/changes?${params}`, { signal: own.signal, timeoutMs: (CHANGES_WAIT_S + 15) * 1000 });
    live.version = answer.version;
  } catch (error) {
    if (error.name === 'AbortError') return;
    if (error instanceof ApiError && error.status === 404) { live.noChangeFeed = true; return; }
    throw error;
  } finally {
    signal.removeEventListener('abort', stop);
    if (live.wake === stop) live.wake = null;
  }
}

/** Refresh now (after an action, or when the tab comes back): at once if the loop waits, else
 * as soon as the refresh in flight ends (no wait after it). */
function kick() {
  live.kicked = true;
  live.wake?.();
}

function setAway(away, retryMs = 0, message = '') {
  const banner = $('#banner');
  if (!away) { banner.hidden = true; banner.textContent = ''; document.body.dataset.away = 'false'; return; }
  banner.hidden = false;
  document.body.dataset.away = 'true';
  banner.textContent = `The master is not answering (${message}). Retrying in ${Math.round(retryMs / 1000)} s…`;
}

function runPage(page) {
  live.controller?.abort();
  const controller = new AbortController();
  live.controller = controller;
  const { signal } = controller;
  (async () => {
    while (!signal.aborted) {
      let delay = POLL_MS;
      try {
        live.kicked = false;
        const asked = await page.refresh(signal);
        if (typeof asked === 'number') delay = asked;
        if (live.failures > 0) { live.failures = 0; setAway(false); }
        showPageError(null);
        if (typeof asked !== 'number' && !document.hidden) {
          // Refreshed again when the farm moves, at most once a MIN_REFRESH_MS.
          if (!live.kicked) await sleep(MIN_REFRESH_MS, signal);
          if (!live.kicked && !signal.aborted) await waitForChange(signal);
          continue;
        }
      } catch (error) {
        if (signal.aborted || error.name === 'AbortError') return;
        // Any answer (an error included) means the master is back.
        if (error instanceof ApiError && live.failures > 0) { live.failures = 0; setAway(false); }
        if (error instanceof Unreachable) {
          live.failures += 1;
          delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(live.failures - 1, 5));
          setAway(true, delay, error.message);
        } else if (error instanceof ApiError && error.status === 401) {
          return;
        } else {
          showPageError(error);
          delay = 10000;
        }
      }
      if (document.hidden) delay = Math.max(delay, HIDDEN_POLL_MS);
      if (live.kicked) { live.kicked = false; continue; }
      if (delay > 0) await sleep(delay, signal);
    }
  })();
}

document.addEventListener('visibilitychange', () => { if (!document.hidden) kick(); });

function showPageError(error) {
  const slot = $('#page-error');
  if (!slot) return;
  if (error === null) { if (slot.textContent) slot.textContent = ''; return; }
  slot.textContent = error instanceof ApiError ? `${error.message} (${error.status} ${error.code})` : String(error.message || error);
}

function flash(text, isError = false) {
  const slot = $('#flash');
  if (!slot) return;
  slot.textContent = text;
  slot.className = isError ? 'error' : 'muted';
}

// ---------------------------------------------------------------------------------------------
// Confirmation dialog (native <dialog>: Escape cancels, focus is trapped by the browser).

function confirmAction({ title, text, ok = 'Confirm', danger = false, extra = null }) {
  const dialog = $('#confirm');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  const extraSlot = $('#confirm-extra');
  extraSlot.replaceChildren(...(extra ? [extra] : []));
  const okButton = $('#confirm-ok');
  okButton.textContent = ok;
  okButton.className = danger ? 'danger' : '';
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
    (extra?.querySelector('input') ?? okButton).focus();
  });
}

async function act(description, call) {
  try {
    await call();
    flash(`${description}: done.`);
  } catch (error) {
    flash(`${description} failed: ${error.message}`, true);
  }
  kick();
}

// Who the signed-in token is (`GET /v1/whoami`: name and role), learnt at sign-in.
let who = null;

/**
 * Why the signed-in token may not take an action that needs `needs` ('submit': a job's or a task's,
 * 'admin': an agent's) on a job of `owner`, or null. The master refuses such calls (403) anyway:
 * this only says so before the click.
 */
function roleBlock(needs, owner) {
  const role = who?.role;
  if (!role || role === 'admin') return null;
  if (role === 'read') return `your token has role read: this needs the ${needs === 'admin' ? 'admin' : 'submit or admin'} role`;
  if (needs === 'admin') return `your token has role ${role}: this needs the admin role`;
  if (owner != null && owner !== who.name) return `this job belongs to ${owner}: your submit token (${who.name}) controls only its own jobs`;
  return null;
}

function actionButton(label, { disabled = null, danger = false, needs = 'submit', owner = null, onclick }) {
  const reason = roleBlock(needs, owner) ?? disabled;
  return h('button', { type: 'button', class: danger ? 'danger' : 'secondary', disabled: Boolean(reason),
    title: reason || null, 'aria-disabled': reason ? 'true' : null, onclick }, label);
}

/** Says, next to "Sign out", who is signed in; on a read token, that actions are disabled. */
function showWho() {
  let badge = $('#who');
  if (!badge) {
    badge = h('span', { id: 'who', class: 'muted' });
    $('#signout').before(badge);
  }
  badge.hidden = !who;
  badge.textContent = who?.name ? `${who.name} (${who.role})` : '';
  badge.title = who?.role === 'read' ? 'A read token: every action is disabled.' : '';
}

// ---------------------------------------------------------------------------------------------
// Sign in.

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  who = null;
  showWho();
  live.controller?.abort();
  setAway(false);
  renderSignIn(message);
}

function renderSignIn(message = '') {
  $('#nav').hidden = true;
  $('#signout').hidden = true;
  document.title = 'Sign in · Paddock';
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'current-password', required: true,
    spellcheck: 'false', 'aria-describedby': 'signin-message' });
  const status = h('p', { id: 'signin-message', role: 'alert', class: message ? 'error' : 'muted' },
    message || 'The token is kept for this tab only, until you sign out or close it.');
  const button = h('button', { type: 'submit' }, 'Sign in');
  // No name on the input and a script-only submit: the token can never end up in a URL.
  const form = h('form', { id: 'signin', novalidate: true },
    h('label', { for: 'token' }, 'Token (an admin, submit or read token of this master)'), input, button, status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const typed = input.value.trim();
    if (!typed) { status.className = 'error'; status.textContent = 'Type a token first.'; input.focus(); return; }
    button.disabled = true;
    status.className = 'muted';
    status.textContent = 'Checking…';
    try {
      await api('/v1/master', { tokenOverride: typed });
      who = await api('/v1/whoami', { tokenOverride: typed });
      sessionStorage.setItem(TOKEN_KEY, typed);
      showWho();
      route();
    } catch (error) {
      status.className = 'error';
      if (error instanceof ApiError && error.status === 401) {
        status.textContent = 'Wrong token: the master refused it (401 unauthorized).';
      } else if (error instanceof ApiError && error.status === 403) {
        status.textContent = 'This token may not read the farm (403 forbidden): use an admin, submit or read token.';
      } else {
        status.textContent = `Could not sign in: ${error.message}`;
      }
      input.select();
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  $('#main').replaceChildren(h('section', { class: 'signin card' }, h('h1', null, 'Sign in to Paddock'), form));
  input.focus();
}

// ---------------------------------------------------------------------------------------------
// Pages. Each returns { refresh(signal) } and draws into #main.

function pageShell(title, ...children) {
  document.title = `${title} · Paddock`;
  const heading = h('h1', { id: 'page-title' }, title);
  const readOnly = who?.role === 'read'
    ? h('p', { id: 'read-only', class: 'muted' }, `Signed in as ${who.name} with a read token: every action is disabled (they need the submit or admin role).`)
    : '';
  $('#main').replaceChildren(heading, readOnly, h('p', { id: 'page-error', class: 'error', role: 'alert' }),
    h('p', { id: 'flash', role: 'status', class: 'muted' }), ...children);
  return heading;
}

function card(title, ...children) { return h('section', { class: 'card' }, h('h2', null, title), ...children); }

function stateStack(counts, states) {
  const total = states.reduce((sum, state) => sum + (counts[state] || 0), 0);
  const bar = h('div', { class: 'stack', role: 'img',
    'aria-label': states.map((state) => `${counts[state] || 0} ${state}`).join(', ') });
  for (const state of states) {
    if (counts[state]) bar.append(h('span', { class: `s-${state}`, flex: counts[state] / Math.max(total, 1) }));
  }
  const legend = h('ul', { class: 'legend' },
    states.map((state) => h('li', { 'data-state': state }, stateBadge(state), ' ', h('b', null, counts[state] || 0))));
  return [bar, legend];
}

function sumResources(agents, key) {
  let total = 0;
  let free = 0;
  for (const agent of agents) {
    if (agent.state === 'offline' || agent.state === 'disabled') continue;
    total += agent.resources.total[key] || 0;
    free += agent.resources.free[key] || 0;
  }
  return { total, free, busy: total - free };
}

function overviewPage() {
  const agentsCard = h('div');
  const slotsCard = h('div');
  const tasksCard = h('div');
  const masterCard = h('div');
  const exceptions = h('div', { id: 'exceptions' });
  const throughputCard = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  let throughputAt = 0;
  pageShell('Farm overview',
    h('div', { class: 'cards' }, card('Agents', agentsCard), card('Slots', slotsCard), card('Master', masterCard)),
    h('h2', null, 'Tasks by state'), h('div', { class: 'card', id: 'task-states' }, tasksCard),
    h('h2', null, 'Throughput, last hour'), h('div', { class: 'card', id: 'throughput' }, throughputCard),
    h('h2', null, 'Recent exceptions'), exceptions);
  // Exceptions are read incrementally: per agent, from the last one seen (the API pages oldest first).
  const seen = new Map();
  let recent = [];
  return {
    async refresh(signal) {
      const master = await api('/v1/master', { signal });
      const agents = (await api('/v1/agents?limit=1000', { signal })).items;
      const byState = master.agents;
      agentsCard.replaceChildren(h('div', { class: 'big', id: 'agents-online' }, byState.online || 0, ' online'),
        h('ul', { class: 'legend' }, ['online', 'draining', 'offline', 'disabled'].map((state) =>
          h('li', { 'data-state': state }, stateBadge(state), ' ', h('b', null, byState[state] || 0)))));
      const cpus = sumResources(agents, 'cpus');
      const ram = sumResources(agents, 'ram');
      const gpus = sumResources(agents, 'gpus');
      slotsCard.replaceChildren(h('div', { class: 'big', id: 'slots' }, `${fmtCPUs(cpus.busy)} / ${fmtCPUs(cpus.total)}`,
        h('span', { class: 'muted' }, ' CPUs busy')),
      h('dl', { class: 'kv' },
        h('dt', null, 'CPUs free'), h('dd', null, fmtCPUs(cpus.free)),
        h('dt', null, 'RAM free'), h('dd', null, `${fmtBytes(ram.free)} of ${fmtBytes(ram.total)}`),
        h('dt', null, 'GPUs free'), h('dd', null, `${gpus.free} of ${gpus.total}`)));
      masterCard.replaceChildren(h('dl', { class: 'kv' },
        h('dt', null, 'Version'), h('dd', null, master.version),
        h('dt', null, 'Up'), h('dd', null, fmtDuration(master.uptime_seconds)),
        h('dt', null, 'Store'), h('dd', null, master.store),
        h('dt', null, 'Jobs'), h('dd', null, master.jobs),
        h('dt', null, 'Requests'), h('dd', null, `${master.requests} (p50 ${master.request_ms.p50.toFixed(1)} ms, p99 ${master.request_ms.p99.toFixed(1)} ms)`)));
      tasksCard.replaceChildren(...stateStack(master.tasks, TASK_STATES));
      if (Date.now() - throughputAt > 20000) {
        throughputAt = Date.now();
        const data = await api('/v1/throughput', { signal });
        throughputCard.replaceChildren(throughputChart(data, throughputCard.clientWidth));
      }
      for (const agent of agents) {
        const known = seen.get(agent.id) || { count: 0, cursor: null };
        if (agent.exceptions === known.count) continue;
        let cursor = known.cursor;
        for (;;) {
          const query = cursor ? `?limit=200&cursor=${encodeURIComponent(cursor)}` : '?limit=200';
          const page = await api(`/v1/agents/${agent.id}/exceptions${query}`, { signal });
          for (const item of page.items) recent.push({ ...item, agentName: agent.name });
          if (page.items.length) cursor = String(page.items[page.items.length - 1].id);
          if (!page.next) break;
          recent = recent.sort((a, b) => b.at.localeCompare(a.at)).slice(0, 20);
        }
        seen.set(agent.id, { count: agent.exceptions, cursor });
      }
      recent = recent.sort((a, b) => b.at.localeCompare(a.at)).slice(0, 20);
      exceptions.replaceChildren(recent.length === 0 ? h('p', { class: 'muted' }, 'None reported.')
        : h('div', { class: 'scroll' }, h('table', null,
          h('thead', null, h('tr', null, h('th', null, 'When'), h('th', null, 'Agent'), h('th', null, 'Type'),
            h('th', null, 'Task'), h('th', null, 'Message'))),
          h('tbody', null, recent.map((e) => h('tr', null, h('td', null, fmtTime(e.at)),
            h('td', null, h('a', { href: `#/agents/${e.agent}` }, e.agentName)), h('td', null, e.type),
            h('td', null, e.task ? h('a', { href: `#/tasks/${e.task}` }, e.task) : '—'),
            h('td', { class: 'wrap' }, e.message)))))));
    },
  };
}

function throughputChart(data, width) {
  const W = Math.max(280, Math.round(width || 600)); const H = 120; const B = 18; const n = data.succeeded.length;
  const totals = data.succeeded.map((ok, i) => ok + data.failed[i]);
  const max = Math.max(1, ...totals);
  const ok = data.succeeded.reduce((a, b) => a + b, 0);
  const failed = data.failed.reduce((a, b) => a + b, 0);
  const svg = s('svg', { class: 'chart', id: 'throughput-chart', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img',
    'aria-label': `${ok} runs succeeded and ${failed} failed in the last hour; at most ${max} in one minute` });
  const bar = (W - 10) / n;
  data.succeeded.forEach((value, i) => {
    const x = 5 + i * bar;
    const hOk = ((H - B - 6) * value) / max;
    const hFail = ((H - B - 6) * data.failed[i]) / max;
    if (value) svg.append(s('rect', { x, y: H - B - hOk, width: Math.max(1, bar - 1), height: hOk, class: 'bar-ok' }));
    if (data.failed[i]) svg.append(s('rect', { x, y: H - B - hOk - hFail, width: Math.max(1, bar - 1), height: hFail, class: 'bar-failed' }));
  });
  const start = new Date(data.since).getTime();
  const fmt = (t) => new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  svg.append(s('line', { class: 'axis', x1: 5, x2: W - 5, y1: H - B, y2: H - B }),
    s('text', { x: 5, y: H - 4 }, fmt(start)), s('text', { x: W - 5, y: H - 4, 'text-anchor': 'end' }, fmt(start + n * data.bucket_seconds * 1000)),
    s('text', { x: 5, y: 12 }, `${max}/min`));
  return h('figure', null, svg, h('figcaption', { class: 'muted' },
    `${ok} runs succeeded, ${failed} failed in the last hour (per minute, your time).`));
}

function hashQuery() {
  const hash = location.hash.slice(1);
  const at = hash.indexOf('?');
  return new URLSearchParams(at >= 0 ? hash.slice(at + 1) : '');
}

const JOB_COLUMNS = [
  ['id', 'Job', (j) => Number(j.id.slice(1))], ['name', 'Name', (j) => j.name], ['owner', 'Owner', (j) => j.owner],
  ['state', 'State', (j) => j.state], ['priority', 'Priority', (j) => j.priority],
  ['progress', 'Progress', (j) => j.progress], ['tasks', 'Tasks', (j) => totalTasks(j)],
  ['created', 'Created', (j) => j.created_at],
];

function totalTasks(job) { return Object.values(job.counts).reduce((a, b) => a + b, 0); }

function jobsPage() {
  const query = hashQuery();
  const filters = { state: query.get('state') || '', owner: query.get('owner') || '', label: query.get('label') || '',
    name: query.get('name') || '' };
  const limit = Math.max(1, Math.min(1000, Number.parseInt(query.get('limit') || '50', 10) || 50));
  let sort = query.get('sort') || '';
  let descending = query.get('dir') !== 'asc';
  const cursors = [null];
  let next = null;
  let jobs = [];
  const field = (name, label, control) => h('label', { for: `f-${name}` }, label, control);
  const state = h('select', { id: 'f-state' }, h('option', { value: '' }, 'any'),
    JOB_STATES.map((st) => h('option', { value: st, selected: st === filters.state }, st)));
  const owner = h('input', { id: 'f-owner', value: filters.owner, placeholder: 'any' });
  const label = h('input', { id: 'f-label', value: filters.label, placeholder: 'KEY=VALUE' });
  const name = h('input', { id: 'f-name', value: filters.name, placeholder: 'part of the name' });
  const form = h('form', { class: 'filters', role: 'search' }, field('state', 'State', state), field('owner', 'Owner', owner),
    field('label', 'Label', label), field('name', 'Name contains', name), h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [key, value] of [['state', state.value], ['owner', owner.value.trim()], ['label', label.value.trim()],
      ['name', name.value.trim()], ['sort', sort], ['dir', sort && !descending ? 'asc' : ''],
      ['limit', limit === 50 ? '' : String(limit)]]) {
      if (value) params.set(key, value);
    }
    const target = `#/jobs${params.toString() ? `?${params}` : ''}`;
    if (location.hash === target) kick(); else location.hash = target;
  });
  const table = h('div', { class: 'scroll' });
  const previous = h('button', { type: 'button', class: 'secondary', disabled: true }, '← Previous');
  const following = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Next →');
  const where = h('span', { class: 'muted' });
  previous.addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); kick(); } });
  following.addEventListener('click', () => { if (next) { cursors.push(next); kick(); } });
  pageShell('Jobs', form, table, h('div', { class: 'pager' }, previous, following, where));

  function draw() {
    let shown = filters.name ? jobs.filter((j) => j.name.toLowerCase().includes(filters.name.toLowerCase())) : jobs;
    const column = JOB_COLUMNS.find(([key]) => key === sort);
    if (column) {
      const key = column[2];
      shown = [...shown].sort((a, b) => {
        const x = key(a); const y = key(b);
        const order = x < y ? -1 : x > y ? 1 : 0;
        return descending ? -order : order;
      });
    }
    const head = h('tr', null, JOB_COLUMNS.map(([key, title]) => h('th', {
      'aria-sort': key === sort ? (descending ? 'descending' : 'ascending') : null,
      class: ['owner', 'priority', 'created'].includes(key) ? 'hide-narrow' : null },
    h('button', { type: 'button', onclick: () => { if (sort === key) descending = !descending; else { sort = key; descending = key !== 'name'; } draw(); } },
      title, key === sort ? (descending ? ' ▼' : ' ▲') : ''))));
    const rows = shown.map((job) => h('tr', { 'data-job': job.id, 'data-state': job.state },
      h('td', null, h('a', { href: `#/jobs/${job.id}` }, job.id)), h('td', { class: 'wrap' }, job.name),
      h('td', { class: 'hide-narrow' }, job.owner),
      h('td', null, stateBadge(job.state), job.paused && job.state !== 'paused' ? ' (paused)' : ''),
      h('td', { class: 'hide-narrow' }, job.priority), h('td', null, progressBar(job.progress, `${job.id} progress`)),
      h('td', null, `${job.counts.succeeded || 0}/${totalTasks(job)}`), h('td', { class: 'hide-narrow' }, fmtTime(job.created_at))));
    table.replaceChildren(h('table', { id: 'jobs' }, h('thead', null, head),
      h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: 8, class: 'muted' }, 'No jobs.')))));
    previous.disabled = cursors.length <= 1;
    following.disabled = !next;
    where.textContent = `page ${cursors.length}${filters.name ? ` · name filter applies to this page` : ''}`;
  }

  return {
    async refresh(signal) {
      const params = new URLSearchParams({ limit: String(limit) });
      if (filters.state) params.set('state', filters.state);
      if (filters.owner) params.set('owner', filters.owner);
      if (filters.label) params.set('label', filters.label);
      const cursor = cursors[cursors.length - 1];
      if (cursor) params.set('cursor', cursor);
      const page = await api(`/v1/jobs?${params}`, { signal });
      jobs = page.items;
      next = page.next;
      drawKeepingFocus(draw);
    },
  };
}

/** Redraws without losing the keyboard focus (the focused element is found again by its text). */
function drawKeepingFocus(draw) {
  const focused = document.activeElement;
  const key = focused ? `${focused.tagName}|${focused.textContent}` : null;
  draw();
  if (!key || focused.isConnected) return;
  for (const candidate of document.querySelectorAll(`#main ${focused.tagName.toLowerCase()}`)) {
    if (`${candidate.tagName}|${candidate.textContent}` === key) { candidate.focus(); break; }
  }
}

function taskDuration(task) {
  if (!task.started_at) return null;
  const end = task.finished_at ? new Date(task.finished_at) : new Date();
  return (end - new Date(task.started_at)) / 1000;
}

function dagPicture(tasks, edges) {
  // Layers by longest path from a root (tasks only ever depend on older ones: no cycles).
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const before = new Map(tasks.map((t) => [t.id, []]));
  for (const [from, to] of edges) if (byId.has(from) && byId.has(to)) before.get(to).push(from);
  const layer = new Map();
  const depth = (id, guard = 0) => {
    if (layer.has(id)) return layer.get(id);
    const value = guard > 500 ? 0 : Math.max(-1, ...before.get(id).map((b) => depth(b, guard + 1))) + 1;
    layer.set(id, value);
    return value;
  };
  const columns = [];
  for (const task of tasks) {
    const d = depth(task.id);
    (columns[d] ||= []).push(task);
  }
  const W = 150; const H = 40; const GX = 60; const GY = 14; const PAD = 12;
  const place = new Map();
  columns.forEach((column, x) => column.forEach((task, y) => place.set(task.id, { x: PAD + x * (W + GX), y: PAD + y * (H + GY) })));
  const width = PAD * 2 + columns.length * (W + GX) - GX;
  const height = PAD * 2 + Math.max(...columns.map((c) => c.length)) * (H + GY) - GY;
  const svg = s('svg', { class: 'dag', id: 'dag', width, height, viewBox: `0 0 ${width} ${height}`, role: 'group',
    'aria-label': `Dependency graph: ${tasks.length} tasks, ${edges.length} dependencies` });
  for (const [from, to] of edges) {
    const a = place.get(from); const b = place.get(to);
    if (!a || !b) continue;
    const x1 = a.x + W; const y1 = a.y + H / 2; const x2 = b.x; const y2 = b.y + H / 2;
    svg.append(s('path', { class: 'edge', d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}`,
      'marker-end': 'url(#arrow)' }));
  }
  svg.prepend(s('defs', null, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto' },
    s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead', fill: 'currentColor' }))));
  for (const task of tasks) {
    const p = place.get(task.id);
    const label = task.name.length > 18 ? `${task.name.slice(0, 17)}…` : task.name;
    svg.append(s('a', { href: `#/tasks/${task.id}`, class: `s-${task.state}`, 'data-task': task.id,
      'aria-label': `${task.id} ${task.name}: ${task.state}` },
    s('title', null, `${task.id} ${task.name}: ${task.state}`),
    s('rect', { x: p.x, y: p.y, width: W, height: H, rx: 7 }),
    s('circle', { cx: p.x + 12, cy: p.y + H / 2, r: 5 }),
    s('text', { x: p.x + 24, y: p.y + 16 }, label),
    s('text', { x: p.x + 24, y: p.y + 31, class: 'muted' }, `${task.id} · ${task.state}`)));
  }
  return svg;
}

function jobPage(id) {
  const heading = pageShell(`Job ${id}`);
  const summary = h('div');
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Job actions' });
  const warnings = h('div');
  const graph = h('div');
  const tasksTable = h('div', { class: 'scroll' });
  const more = h('div', { class: 'pager' });
  $('#main').append(actions, summary, warnings, h('h2', null, 'Dependencies'), graph, h('h2', null, 'Tasks'), tasksTable, more);
  let edges = null;
  let after = [];
  let graphKey = '';
  const cursors = [null];
  let job = null;

  function drawActions() {
    const done = DONE_JOB.has(job.state);
    const failedOrCancelled = (job.counts.failed || 0) + (job.counts.cancelled || 0);
    actions.replaceChildren(
      actionButton('Cancel job', { danger: true, owner: job.owner, disabled: done ? `the job is ${job.state}` : null, onclick: async () => {
        if (await confirmAction({ title: `Cancel ${job.id}?`, text: `Every task of “${job.name}” that has not ended is cancelled; running ones are stopped on their agents.`, ok: 'Cancel the job', danger: true })) {
          await act(`Cancel ${job.id}`, () => api(`/v1/jobs/${job.id}/cancel`, { method: 'POST' }));
        }
      } }),
      actionButton('Pause', { owner: job.owner, disabled: done ? `the job is ${job.state}` : job.paused ? 'the job is paused' : null, onclick: async () => {
        if (await confirmAction({ title: `Pause ${job.id}?`, text: 'No new task of this job starts; running ones finish.', ok: 'Pause' })) {
          await act(`Pause ${job.id}`, () => api(`/v1/jobs/${job.id}/pause`, { method: 'POST' }));
        }
      } }),
      actionButton('Pause and kill', { owner: job.owner, disabled: done ? `the job is ${job.state}` : job.paused ? 'the job is paused' : null, onclick: async () => {
        if (await confirmAction({ title: `Pause ${job.id} and stop its running tasks?`, text: 'Running tasks are stopped and go back to the queue; nothing starts until you resume.', ok: 'Pause and kill', danger: true })) {
          await act(`Pause ${job.id}`, () => api(`/v1/jobs/${job.id}/pause?kill=true`, { method: 'POST' }));
        }
      } }),
      actionButton('Resume', { owner: job.owner, disabled: job.paused ? null : 'the job is not paused', onclick: async () => {
        if (await confirmAction({ title: `Resume ${job.id}?`, text: 'Its queued tasks may start again.', ok: 'Resume' })) {
          await act(`Resume ${job.id}`, () => api(`/v1/jobs/${job.id}/resume`, { method: 'POST' }));
        }
      } }),
      actionButton('Retry', { owner: job.owner, disabled: failedOrCancelled ? null : 'no task failed or was cancelled', onclick: async () => {
        if (await confirmAction({ title: `Retry ${job.id}?`, text: `${failedOrCancelled} failed or cancelled task(s) go back to the queue.`, ok: 'Retry' })) {
          await act(`Retry ${job.id}`, () => api(`/v1/jobs/${job.id}/retry`, { method: 'POST' }));
        }
      } }),
      actionButton('Priority…', { owner: job.owner, disabled: done ? `the job is ${job.state}` : null, onclick: async () => {
        const input = h('input', { id: 'priority-input', type: 'number', step: 1, value: job.priority });
        if (await confirmAction({ title: `Priority of ${job.id}`, text: 'Higher runs first (now ' + job.priority + ').', ok: 'Set priority',
          extra: h('label', { for: 'priority-input' }, 'Priority', input) })) {
          const value = Number.parseInt(input.value, 10);
          if (!Number.isFinite(value)) { flash('The priority is a whole number.', true); return; }
          await act(`Priority of ${job.id}`, () => api(`/v1/jobs/${job.id}`, { method: 'PATCH', body: { priority: value } }));
        }
      } }),
      actionButton('Clear blocklist', { owner: job.owner, disabled: job.blocklist?.length ? null : 'no agent is blocklisted', onclick: async () => {
        if (await confirmAction({ title: `Clear the blocklist of ${job.id}?`, text: 'Every agent may run its tasks again.', ok: 'Clear' })) {
          await act(`Clear the blocklist of ${job.id}`, () => api(`/v1/jobs/${job.id}`, { method: 'PATCH', body: { clear_blocklist: true } }));
        }
      } }));
  }

  return {
    async refresh(signal) {
      job = await api(`/v1/jobs/${id}`, { signal });
      const cursor = cursors[cursors.length - 1];
      const page = await api(`/v1/tasks?job=${id}&limit=${TASKS_PER_PAGE}${cursor ? `&cursor=${cursor}` : ''}`, { signal });
      if (edges === null) {
        try {
          const answer = await api(`/v1/jobs/${id}/graph`, { signal });
          edges = answer.edges;
          after = answer.after;
        } catch (error) {
          if (!(error instanceof ApiError) || error.status !== 404) throw error;
          edges = [];
        }
      }
      heading.replaceChildren(`Job ${job.id}: ${job.name} `, stateBadge(job.state));
      document.title = `${job.id} ${job.name} · Paddock`;
      const total = totalTasks(job);
      const focusInActions = actions.contains(document.activeElement);
      if (focusInActions) drawKeepingFocus(drawActions); else drawActions();
      summary.replaceChildren(h('div', { class: 'cards' },
        card('Progress', h('div', { class: 'big' }, pct(job.progress)), progressBar(job.progress, 'job progress'),
          h('p', { class: 'muted' }, `${job.counts.succeeded || 0} of ${total} tasks succeeded`)),
        card('Tasks', ...stateStack(job.counts, TASK_STATES)),
        card('Details', h('dl', { class: 'kv' },
          h('dt', null, 'Owner'), h('dd', null, job.owner), h('dt', null, 'Priority'), h('dd', { id: 'job-priority' }, job.priority),
          h('dt', null, 'Paused'), h('dd', null, job.paused ? 'yes' : 'no'), h('dt', null, 'Created'), h('dd', null, fmtTime(job.created_at)),
          h('dt', null, 'Labels'), h('dd', null, Object.entries(job.labels).map(([k, v]) => `${k}=${v}`).join(', ') || '—'),
          h('dt', null, 'Runs after'), h('dd', null, after.length ? after.map((j, i) => [i ? ', ' : '', h('a', { href: `#/jobs/${j}` }, j)]) : '—')))));
      const notes = [...(job.warnings || []).map((w) => h('li', null, w)),
        ...(job.blocklist || []).map((b) => h('li', null, `Blocklisted: agent `, h('a', { href: `#/agents/${b.agent}` }, b.agent), ` (${b.failures} failed runs)`))];
      warnings.replaceChildren(...(notes.length ? [h('ul', { class: 'warnings', id: 'warnings' }, notes)] : []));
      const tasks = page.items;
      const key = tasks.map((t) => `${t.id}:${t.state}`).join(',');
      if (key !== graphKey) {
        graphKey = key;
        if (edges.length === 0) graph.replaceChildren(h('p', { class: 'muted' }, 'No dependencies between the tasks of this job.'));
        else {
          graph.replaceChildren(h('div', { class: 'dag-wrap' }, dagPicture(tasks, edges)),
            ...(page.next || cursors.length > 1 ? [h('p', { class: 'muted' }, 'The graph shows the tasks of this page.')] : []));
        }
      }
      tasksTable.replaceChildren(h('table', { id: 'tasks' },
        h('thead', null, h('tr', null, ['Task', 'Name', 'State', 'Agent', 'Attempt', 'Exit', 'Duration', 'Progress', 'Status'].map((t) => h('th', null, t)))),
        h('tbody', null, tasks.map((t) => h('tr', { 'data-task': t.id, 'data-state': t.state },
          h('td', null, h('a', { href: `#/tasks/${t.id}` }, t.id)), h('td', { class: 'wrap' }, t.name, t.frames ? ` (frames ${t.frames})` : ''),
          h('td', null, stateBadge(t.state), t.fits_no_agent ? h('span', { class: 'error', title: 'no agent could ever run it' }, ' fits no agent') : ''),
          h('td', null, t.agent ? h('a', { href: `#/agents/${t.agent}` }, t.agent) : '—'),
          h('td', null, `${t.attempt}/${t.max_attempts}`), h('td', null, t.exit_code ?? '—'),
          h('td', null, fmtDuration(taskDuration(t))), h('td', null, progressBar(t.progress, `${t.id} progress`)),
          h('td', { class: 'wrap task-status' }, t.status || '—'))))));
      more.replaceChildren(
        h('button', { type: 'button', class: 'secondary', disabled: cursors.length <= 1, onclick: () => { cursors.pop(); kick(); } }, '← Previous tasks'),
        h('button', { type: 'button', class: 'secondary', disabled: !page.next, onclick: () => { cursors.push(page.next); kick(); } }, 'Next tasks →'));
    },
  };
}

function taskPage(id) {
  const heading = pageShell(`Task ${id}`);
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Task actions' });
  const details = h('div');
  const history = h('div', { class: 'scroll' });
  const log = h('pre', { class: 'log', id: 'log', tabindex: 0, 'aria-label': 'Task log', 'aria-live': 'off' });
  const logState = h('span', { class: 'muted', id: 'log-state' });
  const download = h('button', { type: 'button', class: 'secondary', id: 'download-log' }, 'Download log');
  const attemptSelect = h('select', { id: 'attempt' });
  const attemptField = h('label', { for: 'attempt', hidden: true }, 'Run', attemptSelect);
  $('#main').append(actions, details, h('h2', null, 'Log ', logState),
    h('div', { class: 'actions' }, attemptField, download), log, h('h2', null, 'History'), history);
  let position = 0;
  /** The run whose log is shown, and the one the viewer chose (null: the latest). */
  let logRun = null;
  let chosen = null;
  attemptSelect.addEventListener('change', () => {
    chosen = attemptSelect.value === 'latest' ? null : Number(attemptSelect.value);
    following?.abort(); // a follow stream in flight ends now: the loop goes on at once
    kick();
  });
  let following = null;
  let decoder = new TextDecoder();
  let trimmed = false;
  let finishedRead = false;

  download.addEventListener('click', async () => {
    try {
      const run = logRun ?? 1;
      const response = await request(`/v1/tasks/${id}/logs?attempt=${run}`, { timeoutMs: null });
      const url = URL.createObjectURL(await response.blob());
      const link = h('a', { href: url, download: `${id}-run${run}.log` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      flash(`Download failed: ${error.message}`, true);
    }
  });

  function appendLog(text) {
    if (!text) return;
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    let content = log.textContent + text;
    if (content.length > LOG_KEEP_CHARS) {
      content = content.slice(content.length - LOG_KEEP_CHARS);
      trimmed = true;
    }
    log.textContent = content;
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  /** Reads the log from `position`: following (long-poll stream) for up to `ms` while the run lives. */
  async function readLog(signal, follow, ms) {
    const params = new URLSearchParams({ from: String(position), attempt: String(logRun) });
    if (follow) params.set('follow', 'true');
    const own = new AbortController();
    const stop = () => own.abort();
    signal.addEventListener('abort', stop, { once: true });
    const timer = follow ? setTimeout(stop, ms) : null;
    if (follow) following = own;
    try {
      const response = await request(`/v1/tasks/${id}/logs?${params}`, { signal: own.signal, timeoutMs: follow ? null : 60000 });
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        position += value.byteLength;
        appendLog(decoder.decode(value, { stream: true }));
      }
      return true;
    } catch (error) {
      if (error.name === 'AbortError' && !signal.aborted) return false; // our own timer: the stream was cut, resume later
      throw error;
    } finally {
      clearTimeout(timer);
      if (following === own) following = null;
      signal.removeEventListener('abort', stop);
    }
  }

  return {
    async refresh(signal) {
      const task = await api(`/v1/tasks/${id}`, { signal });
      heading.replaceChildren(`Task ${task.id}: ${task.name} `, stateBadge(task.state));
      document.title = `${task.id} ${task.name} · Paddock`;
      const ended = !LIVE_TASK.has(task.state) && task.state !== 'queued' && task.state !== 'blocked';
      const inActions = actions.contains(document.activeElement);
      const drawActions = () => actions.replaceChildren(
        h('a', { href: `#/jobs/${task.job_id}` }, `← job ${task.job_id}`),
        actionButton('Cancel task', { danger: true, disabled: ended ? `the task is ${task.state}` : null, onclick: async () => {
          if (await confirmAction({ title: `Cancel ${task.id}?`, text: 'If it runs, its process tree is stopped on its agent.', ok: 'Cancel the task', danger: true })) {
            await act(`Cancel ${task.id}`, () => api(`/v1/tasks/${task.id}/cancel`, { method: 'POST' }));
          }
        } }),
        actionButton('Retry task', { disabled: ['failed', 'cancelled'].includes(task.state) ? null : 'only a failed or cancelled task is retried', onclick: async () => {
          if (await confirmAction({ title: `Retry ${task.id}?`, text: 'It goes back to the queue for a new attempt.', ok: 'Retry' })) {
            await act(`Retry ${task.id}`, () => api(`/v1/tasks/${task.id}/retry`, { method: 'POST' }));
          }
        } }));
      if (inActions) drawKeepingFocus(drawActions); else drawActions();
      const usage = task.usage;
      const req = task.requirements;
      details.replaceChildren(h('div', { class: 'two' },
        card('Run', h('dl', { class: 'kv' },
          h('dt', null, 'Job'), h('dd', null, h('a', { href: `#/jobs/${task.job_id}` }, task.job_id)),
          h('dt', null, 'Agent'), h('dd', null, task.agent ? h('a', { href: `#/agents/${task.agent}` }, task.agent) : '—'),
          h('dt', null, 'Attempt'), h('dd', null, `${task.attempt} of ${task.max_attempts}`),
          h('dt', null, 'Exit code'), h('dd', { id: 'exit-code' }, task.exit_code ?? '—'),
          h('dt', null, 'Reason'), h('dd', null, task.reason || '—'),
          h('dt', null, 'Started'), h('dd', null, fmtTime(task.started_at)),
          h('dt', null, 'Finished'), h('dd', null, fmtTime(task.finished_at)),
          h('dt', null, 'Duration'), h('dd', null, fmtDuration(taskDuration(task))),
          h('dt', null, 'Progress'), h('dd', null, progressBar(task.progress, 'task progress')),
          h('dt', null, 'Status'), h('dd', { id: 'task-status', class: 'wrap' }, task.status || '—'),
          task.parameters ? [h('dt', null, 'Parameters'), h('dd', { id: 'task-parameters', class: 'wrap' },
            Object.entries(task.parameters).map(([name, value]) => `${name}=${value}`).join(' '))] : null)),
        card('Command and usage', h('dl', { class: 'kv' },
          h('dt', null, 'Command'), h('dd', null, h('code', null, task.command.map((a) => (/[\s"'\\$]/.test(a) ? JSON.stringify(a) : a)).join(' '))),
          h('dt', null, 'Needs'), h('dd', null, `${fmtCPUs(req.cpus)} CPU, ${fmtBytes(req.ram)} RAM${req.gpus ? `, ${req.gpus} GPU` : ''}${req.tags?.length ? `, tags ${req.tags.join(',')}` : ''}`),
          h('dt', null, 'CPU time'), h('dd', { id: 'cpu-seconds' }, usage ? fmtDuration(usage.cpu_seconds) : '—'),
          h('dt', null, 'Peak RSS'), h('dd', { id: 'peak-rss' }, usage ? fmtBytes(usage.peak_rss) : '—'),
          h('dt', null, 'Processes'), h('dd', null, usage ? usage.processes : '—')))));
      history.replaceChildren(h('table', { id: 'history' },
        h('thead', null, h('tr', null, ['When', 'Move', 'From', 'To', 'Agent', 'Epoch', 'Reason'].map((t) => h('th', null, t)))),
        h('tbody', null, (task.history || []).map((e) => h('tr', null, h('td', null, fmtTime(e.at)), h('td', null, e.transition),
          h('td', null, stateBadge(e.from)), h('td', null, stateBadge(e.to)), h('td', null, e.agent || '—'), h('td', null, e.epoch),
          h('td', { class: 'wrap' }, e.reason || ''))))));

      // The latest run: `runs` counts every start (a release or a retry gives attempts back, never runs),
      // and each run has its own log; an assigned task is about to start its next one.
      const latest = task.state === 'assigned' ? task.runs + 1 : Math.max(task.runs, 1);
      if (attemptSelect.options.length !== latest + 1) {
        attemptSelect.replaceChildren(h('option', { value: 'latest' }, `latest (${latest})`),
          ...Array.from({ length: latest }, (_, i) => h('option', { value: i + 1 }, `${i + 1}`)));
        attemptSelect.value = chosen === null ? 'latest' : String(chosen);
      }
      attemptField.hidden = latest <= 1;
      const run = chosen ?? latest;
      if (run !== logRun) {
        // Another run: its own log.
        logRun = run; position = 0; decoder = new TextDecoder(); log.textContent = ''; finishedRead = false; trimmed = false;
      }
      if (task.runs === 0 && (task.state === 'queued' || task.state === 'blocked')) {
        logState.textContent = '(not started yet)';
        return POLL_MS;
      }
      if (chosen === null && LIVE_TASK.has(task.state)) {
        logState.textContent = '(following)';
        log.dataset.following = 'true';
        // One request in flight: the follow stream, cut every few seconds to refresh the task itself.
        await readLog(signal, true, 5000);
        return 0;
      }
      log.dataset.following = 'false';
      if (!finishedRead) {
        await readLog(signal, false, 0);
        appendLog(decoder.decode());
        finishedRead = true;
      }
      const which = run === latest ? '' : `run ${run} of ${latest}; `;
      logState.textContent = trimmed ? `(${which}ended; the start was trimmed here: download it all)` : `(${which}ended)`;
      return 5000;
    },
  };
}

function resourceCell(agent, key, format) {
  const total = agent.resources.total[key] || 0;
  const free = agent.resources.free[key] || 0;
  return `${format(free)} / ${format(total)}`;
}

function agentsPage() {
  const table = h('div', { class: 'scroll' });
  pageShell('Agents', h('p', { class: 'muted' }, 'Free / total resources. Select an agent for its graphs and actions.'), table);
  return {
    async refresh(signal) {
      const agents = (await api('/v1/agents?limit=1000', { signal })).items;
      table.replaceChildren(h('table', { id: 'agents' },
        h('thead', null, h('tr', null, ['Agent', 'State', 'CPUs', 'RAM', 'GPUs', 'Disk', 'CPU busy', 'Tags', 'Running', 'Version', 'Last seen']
          .map((t) => h('th', null, t)))),
        h('tbody', null, agents.length === 0 ? h('tr', null, h('td', { colspan: 11, class: 'muted' }, 'No agent has enrolled.'))
          : agents.map((a) => h('tr', { 'data-agent': a.id, 'data-state': a.state },
            h('td', null, h('a', { href: `#/agents/${a.id}` }, a.name), ' ', h('span', { class: 'muted' }, a.id)),
            h('td', null, stateBadge(a.state)), h('td', null, resourceCell(a, 'cpus', fmtCPUs)),
            h('td', null, resourceCell(a, 'ram', fmtBytes)), h('td', null, resourceCell(a, 'gpus', String)),
            h('td', null, resourceCell(a, 'disk', fmtBytes)),
            h('td', null, a.metrics ? `${Math.round(a.metrics.cpu.busy_percent)}%` : '—'),
            h('td', null, a.tags.join(', ') || '—'),
            h('td', { class: 'wrap' }, a.tasks.length ? a.tasks.map((t, i) => [i ? ', ' : '', h('a', { href: `#/tasks/${t}` }, t)]) : '—'),
            h('td', null, a.version), h('td', null, fmtAgo(a.last_seen)))))));
    },
  };
}

function lineChart({ id, title, series, max = 100, unit = '%', width = 600 }) {
  // series: [{ name, cls, points: [[timeMs, value]] }]; the x axis spans the samples we hold.
  // The drawing is as wide as the room it has (measured by the caller), so its text is not stretched.
  const W = Math.max(280, Math.round(width)); const H = 160; const L = 34; const R = 8; const T = 10; const B = 22;
  const all = series.flatMap((line) => line.points);
  const svg = s('svg', { class: 'chart', id, viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img',
    'aria-label': `${title}: ${all.length} samples`, 'data-points': series[0]?.points.length ?? 0 });
  svg.append(s('title', null, title));
  for (const tick of [0, 0.5, 1]) {
    const y = T + (1 - tick) * (H - T - B);
    svg.append(s('line', { class: 'axis', x1: L, x2: W - R, y1: y, y2: y }),
      s('text', { x: 2, y: y + 4 }, `${Math.round(max * tick)}${unit}`));
  }
  if (all.length === 0) {
    svg.append(s('text', { x: L + 10, y: H / 2 }, 'no samples yet'));
    return svg;
  }
  const t0 = Math.min(...all.map((p) => p[0]));
  const t1 = Math.max(...all.map((p) => p[0]), t0 + 1);
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - Math.max(0, Math.min(max, v)) / max) * (H - T - B);
  for (const line of series) {
    if (!line.points.length) continue;
    svg.append(s('polyline', { class: line.cls, points: line.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ') }));
  }
  const fmt = (t) => new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  svg.append(s('text', { x: L, y: H - 6 }, fmt(t0)), s('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, fmt(t1)));
  return svg;
}

function agentPage(id) {
  const heading = pageShell(`Agent ${id}`);
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Agent actions' });
  const details = h('div');
  const charts = h('div', { class: 'two' });
  const exceptions = h('div');
  $('#main').append(actions, details, h('h2', null, 'Host (retained samples)'), charts, h('h2', null, 'Exceptions'), exceptions);
  const samples = [];
  let lastAt = null;
  let exceptionCount = -1;
  let exceptionCursor = null;
  const recentExceptions = [];
  return {
    async refresh(signal) {
      const agent = await api(`/v1/agents/${id}`, { signal });
      // Only the samples since the last one held (the series is kept every ~10 s for 24 h).
      const since = lastAt ? encodeURIComponent(lastAt) : '3600';
      const series = (await api(`/v1/agents/${id}/metrics?since=${since}`, { signal })).items;
      for (const sample of series) {
        if (lastAt && sample.at <= lastAt) continue;
        samples.push(sample);
        lastAt = sample.at;
      }
      if (samples.length > SERIES_KEEP) samples.splice(0, samples.length - SERIES_KEEP);
      if (agent.exceptions !== exceptionCount) {
        exceptionCount = agent.exceptions;
        // Oldest first in the API: read on from the last one seen, keep the latest 50.
        for (;;) {
          const page = await api(`/v1/agents/${id}/exceptions?limit=1000${exceptionCursor ? `&cursor=${exceptionCursor}` : ''}`, { signal });
          recentExceptions.push(...page.items);
          if (recentExceptions.length > 50) recentExceptions.splice(0, recentExceptions.length - 50);
          if (page.items.length) exceptionCursor = String(page.items[page.items.length - 1].id);
          if (!page.next) break;
        }
        const items = [...recentExceptions].reverse();
        exceptions.replaceChildren(items.length === 0 ? h('p', { class: 'muted' }, 'None reported.')
          : h('div', { class: 'scroll' }, h('table', null, h('thead', null, h('tr', null, ['When', 'Type', 'Task', 'Message'].map((t) => h('th', null, t)))),
            h('tbody', null, items.map((e) => h('tr', null, h('td', null, fmtTime(e.at)), h('td', null, e.type),
              h('td', null, e.task ? h('a', { href: `#/tasks/${e.task}` }, e.task) : '—'), h('td', { class: 'wrap' }, e.message)))))));
      }
      heading.replaceChildren(`Agent ${agent.name} `, h('span', { class: 'muted' }, agent.id), ' ', stateBadge(agent.state));
      document.title = `${agent.name} · Paddock`;
      const drawActions = () => actions.replaceChildren(
        actionButton('Drain', { needs: 'admin', disabled: agent.state === 'draining' ? 'it is draining' : agent.state === 'disabled' ? 'it is disabled' : null, onclick: async () => {
          if (await confirmAction({ title: `Drain ${agent.name}?`, text: 'It finishes what it runs and claims nothing new.', ok: 'Drain' })) {
            await act(`Drain ${agent.name}`, () => api(`/v1/agents/${id}`, { method: 'PATCH', body: { drain: true } }));
          }
        } }),
        actionButton('Undrain', { needs: 'admin', disabled: agent.state === 'draining' ? null : 'it is not draining', onclick: async () => {
          if (await confirmAction({ title: `Undrain ${agent.name}?`, text: 'It claims work again.', ok: 'Undrain' })) {
            await act(`Undrain ${agent.name}`, () => api(`/v1/agents/${id}`, { method: 'PATCH', body: { drain: false } }));
          }
        } }),
        actionButton('Forget', { needs: 'admin', danger: true, onclick: async () => {
          if (await confirmAction({ title: `Forget ${agent.name}?`, text: 'Its leases are released and its credential stops working; it must enroll again.', ok: 'Forget', danger: true })) {
            await act(`Forget ${agent.name}`, () => api(`/v1/agents/${id}`, { method: 'DELETE' }));
            location.hash = '#/agents';
          }
        } }));
      if (actions.contains(document.activeElement)) drawKeepingFocus(drawActions); else drawActions();
      const m = agent.metrics;
      details.replaceChildren(h('div', { class: 'cards' },
        card('Resources (free / total)', h('dl', { class: 'kv' },
          h('dt', null, 'CPUs'), h('dd', null, resourceCell(agent, 'cpus', fmtCPUs)),
          h('dt', null, 'RAM'), h('dd', null, resourceCell(agent, 'ram', fmtBytes)),
          h('dt', null, 'GPUs'), h('dd', null, resourceCell(agent, 'gpus', String)),
          h('dt', null, 'Disk'), h('dd', null, resourceCell(agent, 'disk', fmtBytes)))),
        card('Agent', h('dl', { class: 'kv' },
          h('dt', null, 'Tags'), h('dd', null, agent.tags.join(', ') || '—'),
          h('dt', null, 'Version'), h('dd', null, agent.version),
          h('dt', null, 'Address'), h('dd', null, agent.address || '—'),
          h('dt', null, 'Enrolled'), h('dd', null, fmtTime(agent.enrolled_at)),
          h('dt', null, 'Last seen'), h('dd', null, fmtAgo(agent.last_seen)),
          h('dt', null, 'Runs'), h('dd', { id: 'agent-tasks' }, agent.tasks.length ? agent.tasks.map((t, i) => [i ? ', ' : '', h('a', { href: `#/tasks/${t}` }, t)]) : 'nothing'))),
        card('Host now', m ? h('dl', { class: 'kv' },
          h('dt', null, 'CPU'), h('dd', null, `${Math.round(m.cpu.busy_percent)}% of ${m.cpu.cores} cores`),
          h('dt', null, 'Load'), h('dd', null, `${m.load.one.toFixed(2)} ${m.load.five.toFixed(2)} ${m.load.fifteen.toFixed(2)}`),
          h('dt', null, 'RAM used'), h('dd', null, `${fmtBytes(m.memory.used)} of ${fmtBytes(m.memory.total)}`),
          h('dt', null, 'Disk free'), h('dd', null, `${fmtBytes(m.disk.free)} of ${fmtBytes(m.disk.total)}`),
          ...m.gpus.flatMap((g) => [h('dt', null, `GPU ${g.index}`), h('dd', null, `${g.name}${g.utilization_percent !== undefined && g.utilization_percent !== null ? `, ${Math.round(g.utilization_percent)}%` : ''}`)]))
          : h('p', { class: 'muted' }, 'No sample yet.'))));
      const points = (f) => samples.map((sample) => [new Date(sample.at).getTime(), f(sample)]);
      const gpuCount = Math.max(0, ...samples.map((sample) => sample.gpus.length));
      const room = charts.clientWidth || 600;
      const width = room >= 2 * 320 + 16 ? (room - 16) / 2 : room;
      charts.replaceChildren(
        h('figure', null, lineChart({ id: 'cpu-chart', title: 'CPU busy', width, series: [{ name: 'cpu', cls: 'line-cpu', points: points((x) => x.cpu.busy_percent) }] }),
          h('figcaption', { class: 'muted' }, `CPU busy, % of the host (${samples.length} samples)`)),
        h('figure', null, lineChart({ id: 'ram-chart', title: 'RAM used', width, series: [{ name: 'ram', cls: 'line-ram', points: points((x) => (x.memory.total ? (100 * x.memory.used) / x.memory.total : 0)) }] }),
          h('figcaption', { class: 'muted' }, `RAM used, % of ${fmtBytes(samples[samples.length - 1]?.memory.total)}`)),
        ...(gpuCount ? [h('figure', null, lineChart({ id: 'gpu-chart', title: 'GPU utilisation', width,
          series: [{ name: 'gpu', cls: 'line-gpu', points: points((x) => x.gpus[0]?.utilization_percent ?? 0) }] }),
        h('figcaption', { class: 'muted' }, 'GPU 0 utilisation, %'))] : []));
      return 5000;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Routing (#/..., so that no path but / is ever asked of the master for a page).

function route() {
  if (!token()) { live.controller?.abort(); renderSignIn(); return; }
  if (!who) {
    // A tab that kept its token: learn the role before drawing any action.
    api('/v1/whoami').then((answer) => { who = answer; showWho(); route(); }, (error) => {
      if (error instanceof ApiError && error.status === 401) return;  // api() signed out
      who = { name: '', role: '' };  // unknown: the master still refuses what the token may not do
      route();
    });
    return;
  }
  $('#nav').hidden = false;
  $('#signout').hidden = false;
  const path = location.hash.replace(/^#/, '').split('?')[0] || '/';
  const parts = path.split('/').filter(Boolean);
  let page;
  let section = 'overview';
  if (parts.length === 0) page = overviewPage();
  else if (parts[0] === 'jobs' && parts.length === 1) { page = jobsPage(); section = 'jobs'; }
  else if (parts[0] === 'jobs' && /^j?\d+$/.test(parts[1] || '')) { page = jobPage(parts[1].startsWith('j') ? parts[1] : `j${parts[1]}`); section = 'jobs'; }
  else if (parts[0] === 'tasks' && /^t?\d+$/.test(parts[1] || '')) { page = taskPage(parts[1].startsWith('t') ? parts[1] : `t${parts[1]}`); section = 'jobs'; }
  else if (parts[0] === 'agents' && parts.length === 1) { page = agentsPage(); section = 'agents'; }
  else if (parts[0] === 'agents' && /^a?\d+$/.test(parts[1] || '')) { page = agentPage(parts[1].startsWith('a') ? parts[1] : `a${parts[1]}`); section = 'agents'; }
  else {
    pageShell('Not found', h('p', null, 'No such page. ', h('a', { href: '#/' }, 'Go to the overview.')));
    live.controller?.abort();
    return;
  }
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.page === section) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
  }
  runPage(page);
}

window.addEventListener('hashchange', () => { route(); $('#main').focus({ preventScroll: true }); });
$('#signout').addEventListener('click', () => signOut('Signed out.'));
route();
