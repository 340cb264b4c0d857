/**
 * A plugin's details, built when its row is first opened: the manifest's
 * icon and links, facts (parts, permissions, signature, restarts, the last
 * error with its time), each node's state in a cluster, the actions, and the
 * settings and logs sections, each loaded when opened.
 */
import { api } from './api.js';
import { action, busy, h, hidden, relabel, stamp, timeEl } from './dom.js';
import { logsPanel } from './logs-panel.js';
import { labelOf, settingsForm } from './settings-form.js';

const LINKS = [['homepage_url', 'Homepage'], ['release_notes_url', 'Release notes'], ['support_url', 'Support']];

/**
 * `row` is the list's row; `server` the host's answer to GET /server;
 * `removed(row)` runs after a removal (the list drops the row and moves focus);
 * `upsert(info)` shows what an action answered.
 */
export function pluginDetail(row, { server, removed, upsert }) {
  const id = row.info.id;
  const name = () => row.info.name || id;
  const path = `/plugins/${encodeURIComponent(id)}`;
  const el = h('div', { class: 'detail-body' });
  const head = h('div', { class: 'detail-head' });
  const facts = h('dl', { class: 'facts' });
  const nodesBox = h('div', { class: 'nodes-box', hidden: true });
  const enable = action('Enable', name(), { 'data-action': 'enable' });
  const disable = action('Disable', name(), { 'data-action': 'disable' });
  const remove = action('Remove', name(), { class: 'danger', 'data-action': 'remove' });
  const actionError = h('div', { class: 'error action-error', role: 'alert' });
  const settingsBox = h('details', { class: 'settings' }, h('summary', {}, 'Settings', hidden(`of ${name()}`)));
  const logsBox = h('details', { class: 'logs' }, h('summary', {}, 'Logs', hidden(`of ${name()}`)));
  el.append(head, facts, nodesBox, h('div', { class: 'actions' }, enable, disable, remove), actionError, settingsBox, logsBox);

  let form = null;
  let logs = null;
  let detail = null;
  /** The state when the shown action error happened: once the state moves on, the error is stale. */
  let errorState = null;
  /**
   * Whether the feed has shown `errorState` yet. The GET that finds the state
   * can answer before the feed brings the events that led there, and those
   * older states are not a move on.
   */
  let errorStateSeen = false;

  async function loadDetail() {
    try {
      detail = await api('GET', path);
      paintHead();
      update(row.info);
    } catch {
      // The row's own facts stay; the icon and signature wait for the next open.
    }
  }

  function paintHead() {
    const m = row.info.manifest;
    // The manifest's check allows only http(s) URLs; checked again here, as an href is where a javascript: URL would run.
    const links = LINKS.filter(([key]) => /^https?:\/\//i.test(m[key] ?? '')).map(([key, words]) =>
      h('a', { href: m[key], rel: 'noopener noreferrer', target: '_blank' }, words, hidden(`of ${name()} (opens a new tab)`)));
    head.replaceChildren(
      detail?.iconUrl ? h('img', { class: 'icon', src: detail.iconUrl, alt: '', width: '40', height: '40' }) : h('span', { class: 'icon icon-none', 'aria-hidden': 'true' }, name().slice(0, 1).toUpperCase()),
      h('div', {}, h('p', { class: 'description' }, row.info.description || 'No description.'), links.length ? h('p', { class: 'links' }, ...links) : null),
    );
  }

  function signatureText() {
    const policy = server.requireSignature ? 'this host requires signatures' : 'this host does not require signatures';
    const s = detail?.signature;
    if (s === undefined) return `… (${policy})`;
    if (s === null) return `not recorded (installed before plughost kept it; ${policy})`;
    if (!s.signed) return `unsigned (${policy})`;
    return `signed by trusted key #${s.keyIndex + 1}, ${s.fingerprint.slice(0, 16)}… (${policy})`;
  }

  function update(info) {
    if (errorState !== null) {
      if (info.state === errorState) errorStateSeen = true;
      else if (errorStateSeen) clearError();
    }
    const lastError = info.lastError && !(errorState !== null && actionError.dataset.message === info.lastError)
      ? [h('span', {}, info.lastError), row.errorAt ? h('span', { class: 'muted' }, ' (', timeEl(row.errorAt), ')') : null]
      : null;
    const m = info.manifest;
    facts.replaceChildren(...[
      ['Id', id],
      ['Version', info.version],
      ['Parts', [info.hasServer && 'server', info.hasWebapp && 'webapp'].filter(Boolean).join(' + ')],
      ['Permissions', info.permissions.length ? info.permissions.join(', ') : 'none'],
      ['Signature', signatureText()],
      ['Restarts', String(info.restarts)],
      ['Installed', stamp(info.installedAt)],
      m.min_host_version ? ['Needs host', m.min_host_version] : null,
      lastError ? ['Last error', lastError] : null,
    ].filter(Boolean).flatMap(([term, value]) => [h('dt', {}, term), h('dd', { 'data-fact': term.toLowerCase().replace(/ /g, '-') }, value)]));
    enable.hidden = info.enabled;
    disable.hidden = !info.enabled;
  }

  function showNodes(d) {
    nodesBox.hidden = false;
    nodesBox.replaceChildren(
      h('h3', {}, `Nodes: running on ${d.summary.running}/${d.summary.nodes}`),
      h('ul', { class: 'node-list' }, d.nodes.map((n) =>
        h('li', { 'data-node-id': n.nodeId, class: n.live ? '' : 'muted' },
          h('span', { class: `state state-${n.state}` }, n.state.replace(/_/g, ' ')), ` ${n.nodeId}`,
          n.live ? '' : ' (no heartbeat)',
          n.generation < d.generation ? ` · converging (generation ${n.generation} of ${d.generation})` : '',
          n.lastError ? h('span', { class: 'error' }, ` · ${n.lastError}`) : null,
          ' · ', timeEl(n.updatedAt)))),
    );
  }

  function clearError() {
    errorState = null;
    errorStateSeen = false;
    delete actionError.dataset.message;
    actionError.replaceChildren();
  }

  async function showError(verb, err) {
    actionError.dataset.message = err.message;
    if (err.code === 'PLUGHOST_ERR_CONFIG_INVALID' && err.problems.length) {
      const settings = row.info.manifest.settings_schema?.settings ?? [];
      actionError.replaceChildren(
        h('p', {}, `${verb} failed: ${settings.length ? 'these settings need a value' : 'the configuration is refused'}.`),
        h('ul', {}, err.problems.map((p) => {
          const setting = settings.find((s) => s.key === p.path);
          const words = p.message.startsWith('required') ? 'required' : p.message;
          if (!setting) return h('li', {}, `${p.path || 'settings'}: ${words}`);
          return h('li', {}, h('a', { href: '#', 'data-setting': p.path, onclick: (e) => (e.preventDefault(), goToSetting(err.problems, p.path)) }, labelOf(setting)), `: ${words}`);
        })),
      );
    } else {
      actionError.replaceChildren(h('p', {}, `${verb} failed: ${err.message}`));
    }
    // The state the error left behind: a later move clears the error. Until
    // it is known, the row's state stands in, and nothing clears the error.
    let state = row.info.state;
    errorState = state;
    errorStateSeen = false;
    try {
      state = (await api('GET', path)).state;
    } catch {
      // Keep the state the row had.
    }
    errorState = state;
    errorStateSeen = row.info.state === state;
    update(row.info);
  }

  async function goToSetting(problems, key) {
    settingsBox.open = true;
    await openSettings();
    form?.showProblems(problems);
    form?.focus(key);
  }

  const act = (button, verb, work) => busy(button, async () => {
    clearError();
    try {
      await work();
    } catch (err) {
      await showError(verb, err);
    }
  });
  const toggleEnabled = (button, verb, route) => act(button, verb, async () => {
    const info = await api('POST', `${path}/${route}`);
    upsert(info);
    // The button the user pressed is hidden now; its counterpart takes the focus.
    (info.enabled ? disable : enable).focus();
  });
  enable.addEventListener('click', () => toggleEnabled(enable, 'Enable', 'enable'));
  disable.addEventListener('click', () => toggleEnabled(disable, 'Disable', 'disable'));
  // Two clicks, not confirm(): the second click within five seconds removes.
  let armed = null;
  remove.addEventListener('click', () => {
    if (!armed) {
      relabel(remove, 'Click again to remove');
      armed = setTimeout(() => ((armed = null), relabel(remove, 'Remove')), 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    act(remove, 'Remove', async () => {
      await api('DELETE', path);
      removed(row);
    });
  });

  async function openSettings() {
    if (form) return;
    const settings = row.info.manifest.settings_schema?.settings ?? [];
    // The values come first, so nothing typed into the form is overwritten by their arrival.
    let config;
    try {
      config = await api('GET', `${path}/config`);
    } catch (err) {
      actionError.replaceChildren(h('p', {}, `Could not read the settings: ${err.message}`));
      settingsBox.open = false;
      return;
    }
    if (form) return;
    form = settingsForm({ pluginId: id, pluginName: name(), settings, save: (values) => api('PUT', `${path}/config`, values) });
    form.fill(config);
    settingsBox.append(form.el);
  }
  settingsBox.addEventListener('toggle', () => settingsBox.open && openSettings());
  logsBox.addEventListener('toggle', () => {
    if (logsBox.open) {
      logs ??= logsPanel({ pluginId: id, pluginName: name(), path });
      if (!logs.el.isConnected) logsBox.append(logs.el);
      logs.start();
    } else {
      logs?.stop();
    }
  });

  paintHead();
  loadDetail();
  return {
    el,
    update,
    showNodes,
    showError,
    /** The configuration changed elsewhere: an untouched form shows it. */
    async reloadConfig() {
      if (form && !form.dirty) form.fill(await api('GET', `${path}/config`));
    },
    close() {
      clearTimeout(armed);
      logs?.stop();
    },
  };
}
