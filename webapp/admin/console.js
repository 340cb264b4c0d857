/**
 * The admin console: log in with the admin token, see every plugin, upload,
 * enable, disable, remove, edit settings, read recent logs, and watch states
 * change live over the event feed.
 */
import { api, followEvents, session, uploadBundle } from './api.js';
import { h } from './dom.js';
import { settingsForm } from './settings-form.js';

const $ = (selector) => document.querySelector(selector);
/** id → { el, info, form, update(info) } */
const cards = new Map();
let stopEvents = null;
/** The node this console talks to (from the feed's ready event). */
let nodeId = null;

function showLogin(message = '') {
  stopEvents?.();
  stopEvents = null;
  $('#app-view').hidden = true;
  $('#logout').hidden = true;
  $('#login-view').hidden = false;
  $('#login-error').textContent = message;
  $('#token').focus();
}

async function showApp() {
  try {
    await loadPlugins();
  } catch (err) {
    session.clear();
    return showLogin(err.isAuth ? `The token was refused: ${err.message}` : err.message);
  }
  $('#login-view').hidden = true;
  $('#app-view').hidden = false;
  $('#logout').hidden = false;
  stopEvents = followEvents(
    {
      ready: (e) => {
        nodeId = e.nodeId;
        loadPlugins().catch(() => undefined);
      },
      installed: (e) => refreshCard(e.pluginId),
      enabled: (e) => refreshCard(e.pluginId),
      disabled: (e) => refreshCard(e.pluginId),
      removed: (e) => dropCard(e.pluginId),
      state: (e) => updateState(e),
      config: (e) => reloadConfig(e.pluginId),
      unauthorized: (err) => showLogin(`The token was refused: ${err.message}`),
    },
    (live) => {
      $('#live').textContent = live ? 'live' : 'reconnecting…';
      $('#live').className = live ? 'live on' : 'live';
    },
  );
}

async function loadPlugins() {
  const plugins = await api('GET', '/plugins');
  const ids = new Set(plugins.map((p) => p.id));
  for (const id of [...cards.keys()]) if (!ids.has(id)) dropCard(id);
  for (const p of plugins) upsertCard(p);
  $('#empty').hidden = plugins.length > 0;
}

async function refreshCard(id) {
  try {
    upsertCard(await api('GET', `/plugins/${encodeURIComponent(id)}`));
  } catch (err) {
    if (err.status === 404) dropCard(id);
  }
}

function dropCard(id) {
  cards.get(id)?.el.remove();
  cards.delete(id);
  $('#empty').hidden = cards.size > 0;
}

function updateState({ pluginId, state, lastError, nodeId: from }) {
  // In a cluster the feed carries every node's changes; a card shows this node's state.
  if (from && nodeId && from !== nodeId) return;
  const card = cards.get(pluginId);
  if (!card) return refreshCard(pluginId);
  card.update({ ...card.info, state, lastError });
  if (card.logs.open) card.loadLogs();
}

async function reloadConfig(id) {
  const card = cards.get(id);
  if (card?.form && !card.form.dirty) card.form.fill(await api('GET', `/plugins/${encodeURIComponent(id)}/config`));
}

function upsertCard(info) {
  const existing = cards.get(info.id);
  // A new version may bring a new settings schema: rebuild the card then.
  if (existing && existing.info.version === info.version && existing.info.bundleSha256 === info.bundleSha256) return existing.update(info);
  const card = buildCard(info);
  if (existing) existing.el.replaceWith(card.el);
  else $('#plugins').append(card.el);
  cards.set(info.id, card);
  $('#empty').hidden = true;
}

function buildCard(info) {
  const id = info.id;
  const path = `/plugins/${encodeURIComponent(id)}`;
  const state = h('span', { class: 'state', 'data-field': 'state' });
  const version = h('span', { class: 'version', 'data-field': 'version' });
  const lastError = h('p', { class: 'last-error', 'data-field': 'last-error' });
  const actionError = h('p', { class: 'error action-error', role: 'alert' });
  const enable = h('button', { type: 'button', 'data-action': 'enable' }, 'Enable');
  const disable = h('button', { type: 'button', 'data-action': 'disable' }, 'Disable');
  const remove = h('button', { type: 'button', class: 'danger', 'data-action': 'remove' }, 'Remove');
  const logText = h('pre', { class: 'log-lines' });
  const logs = h('details', { class: 'logs' }, h('summary', {}, 'Recent logs'), logText);
  const settingsBox = h('details', { class: 'settings' }, h('summary', {}, 'Settings'));
  const details = h('dl', { class: 'facts' });
  const el = h(
    'article',
    { class: 'plugin', 'data-plugin-id': id },
    h('header', {}, h('h2', {}, info.name || id), version, state),
    h('p', { class: 'id muted' }, id, info.description ? ` · ${info.description}` : ''),
    lastError,
    details,
    h('div', { class: 'actions' }, enable, disable, remove),
    actionError,
    settingsBox,
    logs,
  );

  const act = async (button, work) => {
    actionError.textContent = '';
    button.disabled = true;
    try {
      await work();
    } catch (err) {
      actionError.textContent = `${button.textContent} failed: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  };
  enable.addEventListener('click', () => act(enable, async () => card.update(await api('POST', `${path}/enable`))));
  disable.addEventListener('click', () => act(disable, async () => card.update(await api('POST', `${path}/disable`))));
  // Two clicks, not confirm(): the second click within five seconds removes.
  let armed = null;
  remove.addEventListener('click', () => {
    if (!armed) {
      remove.textContent = 'Click again to remove';
      armed = setTimeout(() => ((armed = null), (remove.textContent = 'Remove')), 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    act(remove, async () => {
      await api('DELETE', path);
      dropCard(id);
    });
  });

  const card = {
    el,
    info,
    logs,
    form: null,
    update(next) {
      card.info = next;
      state.textContent = next.state.replace(/_/g, ' ');
      state.className = `state state-${next.state}`;
      version.textContent = `v${next.version}`;
      lastError.textContent = next.lastError ? `Last error: ${next.lastError}` : '';
      lastError.hidden = !next.lastError;
      enable.hidden = next.enabled;
      disable.hidden = !next.enabled;
      details.replaceChildren(
        h('dt', {}, 'Permissions'),
        h('dd', {}, next.permissions.length ? next.permissions.join(', ') : 'none'),
        h('dt', {}, 'Parts'),
        h('dd', {}, [next.hasServer && 'server', next.hasWebapp && 'webapp'].filter(Boolean).join(' + ')),
        h('dt', {}, 'Restarts'),
        h('dd', {}, String(next.restarts)),
      );
    },
    async loadLogs() {
      try {
        const entries = await api('GET', `${path}/logs?limit=50`);
        logText.textContent = entries.length
          ? entries.map((e) => `${new Date(e.time).toISOString()} ${e.level.toUpperCase().padEnd(5)} ${e.message}`).join('\n')
          : '(no log lines yet)';
      } catch (err) {
        logText.textContent = `Could not read the logs: ${err.message}`;
      }
    },
  };
  logs.addEventListener('toggle', () => logs.open && card.loadLogs());
  settingsBox.addEventListener('toggle', async () => {
    if (!settingsBox.open || card.form) return;
    const settings = info.manifest.settings_schema?.settings ?? [];
    // The values come first, so nothing typed into the form is overwritten by their arrival.
    let config;
    try {
      config = await api('GET', `${path}/config`);
    } catch (err) {
      actionError.textContent = `Could not read the settings: ${err.message}`;
      settingsBox.open = false;
      return;
    }
    if (card.form) return;
    card.form = settingsForm(id, settings, (values) => api('PUT', `${path}/config`, values));
    card.form.fill(config);
    settingsBox.append(card.form.el);
  });
  card.update(info);
  return card;
}

function setUpUpload() {
  const form = $('#upload-form');
  const progress = $('#upload-progress');
  const status = $('#upload-status');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const file = $('#bundle-file').files[0];
    status.className = 'status';
    if (!file) {
      status.textContent = 'Choose a .tar.gz bundle first.';
      return;
    }
    const button = form.querySelector('button');
    button.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    status.textContent = `Uploading ${file.name}…`;
    try {
      const info = await uploadBundle(file, {
        force: $('#upload-force').checked,
        onProgress: (fraction) => {
          progress.value = Math.round(fraction * 100);
          if (fraction >= 1) status.textContent = `Uploaded ${file.name}; the server is checking it…`;
        },
      });
      progress.value = 100;
      status.textContent = `Installed ${info.name} ${info.version} (${info.id}).${info.enabled ? '' : ' Enable it below.'}`;
      upsertCard(info);
      form.reset();
    } catch (err) {
      status.className = 'status error';
      status.textContent = `Upload refused${err.status ? ` (HTTP ${err.status})` : ''}: ${err.message}`;
      if (err.isAuth) showLogin(`The token was refused: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  });
}

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
  for (const id of [...cards.keys()]) dropCard(id);
  showLogin('Logged out.');
});
setUpUpload();
if (session.token) showApp();
else showLogin();
