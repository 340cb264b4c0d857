/**
 * The admin console: log in with the admin token, then find, judge and fix
 * plugins in a compact list (search, filter, sort, summary), open a plugin's
 * details, settings and live logs on demand, install from a file or a URL,
 * and watch states change live over the event feed.
 */
import { api, followEvents, session } from './api.js';
import { busy } from './dom.js';
import { setUpInstall } from './install.js';
import { pluginDetail } from './plugin-detail.js';
import { pluginList } from './plugin-list.js';

const $ = (selector) => document.querySelector(selector);
let stopEvents = null;
/** The node this console talks to (from the feed's ready event). */
let nodeId = null;
/** id → the timer of the refresh that follows its state changes. */
const settling = new Map();
/**
 * How many state events the feed has brought for each plugin. A GET answered
 * after a state event it was asked before is older than that event: its state
 * and last error give way to the row's.
 */
const stateEvents = new Map();

/** `info` from a GET asked when the plugin's state-event count was `before`. */
function settled(info, before) {
  const row = list.get(info.id);
  if (!row || (stateEvents.get(info.id) ?? 0) === before) return info;
  return { ...info, state: row.info.state, lastError: row.info.lastError };
}
/** GET /server: the signature policy shown with each plugin. */
let server = { requireSignature: false, trustedKeys: [] };

const list = pluginList({
  listEl: $('#plugins'),
  summaryEl: $('#summary'),
  countEl: $('#count'),
  emptyEl: $('#empty'),
  openDetail: (row) => pluginDetail(row, { server, removed, upsert: (info) => list.upsert(info) }),
  retry: (row) => busy(row.retry, async () => {
    try {
      list.upsert(await api('POST', `/plugins/${encodeURIComponent(row.info.id)}/enable`));
    } catch (err) {
      // The reason is in the details: they open, and say it.
      list.setOpen(row, true);
      await row.detail.showError('Retry', err);
    }
    // The Retry button is gone once the plugin runs; the row keeps the focus.
    row.toggle.focus();
  }),
  nodeSummary: (row) => api('GET', `/plugins/${encodeURIComponent(row.info.id)}`),
  // With no plugin yet, installing is the only thing to do: the install panel opens by itself.
  onCount: (n) => {
    if (n === 0) $('#install').open = true;
  },
});

function setLive(status) {
  $('#live').textContent = status === 'live' ? 'live' : status === 'reconnecting' ? 'reconnecting…' : 'offline';
  $('#live').className = `live status-${status}`;
}

function showLogin({ message = '', error = '' } = {}) {
  stopEvents?.();
  stopEvents = null;
  setLive('offline');
  $('#app-view').hidden = true;
  $('#logout').hidden = true;
  $('#login-view').hidden = false;
  $('#login-message').textContent = message;
  $('#login-error').textContent = error;
  $('#token').focus();
}

const refused = (err) => showLogin({ error: `The token was refused: ${err.message}` });

async function showApp() {
  try {
    await loadPlugins();
  } catch (err) {
    session.clear();
    return err.isAuth ? refused(err) : showLogin({ error: err.message });
  }
  $('#login-view').hidden = true;
  $('#app-view').hidden = false;
  $('#logout').hidden = false;
  $('#login-message').textContent = '';
  loadServer();
  stopEvents = followEvents(
    {
      ready: (e) => {
        nodeId = e.nodeId;
        loadPlugins().catch(() => undefined);
      },
      installed: (e) => refresh(e.pluginId),
      enabled: (e) => refresh(e.pluginId),
      disabled: (e) => refresh(e.pluginId),
      removed: (e) => removed(list.get(e.pluginId), { quiet: true }),
      state: (e) => updateState(e),
      config: (e) => list.get(e.pluginId)?.detail?.reloadConfig().catch(() => undefined),
      unauthorized: refused,
    },
    setLive,
  );
}

async function loadPlugins() {
  const before = new Map(stateEvents);
  list.replaceAll((await api('GET', '/plugins')).map((info) => settled(info, before.get(info.id) ?? 0)));
}

async function loadServer() {
  try {
    const [s, cluster] = await Promise.all([api('GET', '/server'), api('GET', '/cluster')]);
    server = Object.assign(server, s);
    $('#signature-policy').textContent = `Signatures: ${s.requireSignature ? 'required' : 'not required'} by this host · ${s.trustedKeys.length} trusted key${s.trustedKeys.length === 1 ? '' : 's'} (set in the server's options)`;
    list.setMultiNode(cluster.nodes.length > 1);
  } catch {
    // The list works without these; the next login asks again.
  }
}

async function refresh(id) {
  const before = stateEvents.get(id) ?? 0;
  try {
    list.upsert(settled(await api('GET', `/plugins/${encodeURIComponent(id)}`), before));
  } catch (err) {
    if (err.status === 404) removed(list.get(id), { quiet: true });
  }
}

function updateState({ pluginId, state, lastError, nodeId: from }) {
  list.nodesChanged(pluginId);
  // In a cluster the feed carries every node's changes; a row shows this node's state.
  if (from && nodeId && from !== nodeId) return;
  stateEvents.set(pluginId, (stateEvents.get(pluginId) ?? 0) + 1);
  const row = list.get(pluginId);
  if (!row) return refresh(pluginId);
  list.upsert({ ...row.info, state, lastError }, { errorAt: Date.now() });
  // The event has the state; restarts and the rest follow from the API once the moves settle.
  clearTimeout(settling.get(pluginId));
  settling.set(pluginId, setTimeout(() => {
    settling.delete(pluginId);
    refresh(pluginId);
  }, 300));
}

/** After a removal the focus goes to the next row (else the previous one, else the search box). */
function removed(row, { quiet = false } = {}) {
  // The feed's "removed" and the DELETE's answer both come: the first one moves the focus.
  if (!row || list.get(row.info.id) !== row) return;
  const hadFocus = row.el.contains(document.activeElement);
  const next = list.neighbour(row.info.id);
  list.remove(row.info.id);
  if (quiet && !hadFocus) return;
  (next?.toggle ?? $('#search')).focus();
}

$('#search').addEventListener('input', (e) => list.setView({ query: e.target.value }));
$('#state-filter').addEventListener('change', (e) => list.setView({ group: e.target.value }));
$('#sort').addEventListener('change', (e) => list.setView({ sort: e.target.value }));
$('#login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('#token').value.trim();
  if (!token) return;
  session.set(token);
  $('#token').value = '';
  showApp();
});
$('#logout').addEventListener('click', () => {
  session.clear();
  list.replaceAll([]);
  showLogin({ message: 'Logged out.' });
});
setUpInstall({ installed: (info) => list.upsert(info), unauthorized: refused });
setInterval(() => list.tick(), 30_000);
if (session.token) showApp();
else showLogin();
