/**
 * The plugin list: one compact row per plugin (name, id, version, state,
 * restarts, when it last failed, and in a cluster how many nodes run it),
 * searched, filtered and sorted in the page, with a summary of states.
 * A row's details are built the first time it is opened. Live updates change
 * a row where it stands: only a new sort, a reload or a new plugin reorders.
 */
import { action, h, relabel, timeEl } from './dom.js';

const FAILED = new Set(['failed_to_start', 'failed_to_stay_running']);

/** The filter group of a plugin: running, failed, disabled or changing (starting, stopping, stopped while enabled). */
export function groupOf(info) {
  if (FAILED.has(info.state)) return 'failed';
  if (!info.enabled) return 'disabled';
  return info.state === 'running' ? 'running' : 'changing';
}

const SUMMARY_ORDER = [['running', 'running'], ['failed', 'failed'], ['disabled', 'disabled'], ['changing', 'starting or stopping']];

const byName = (a, b) => {
  const x = (a.info.name || a.info.id).toLowerCase();
  const y = (b.info.name || b.info.id).toLowerCase();
  return x < y ? -1 : x > y ? 1 : a.info.id < b.info.id ? -1 : a.info.id > b.info.id ? 1 : 0;
};
const SORTS = {
  name: byName,
  failed: (a, b) => Number(groupOf(b.info) === 'failed') - Number(groupOf(a.info) === 'failed') || byName(a, b),
};

/**
 * `openDetail(row)` builds a row's details the first time (it returns the element);
 * `retry(row)` re-enables a failed plugin; `nodeSummary(row)` fetches the cluster summary.
 */
export function pluginList({ listEl, summaryEl, countEl, emptyEl, openDetail, retry, nodeSummary, onCount = () => undefined }) {
  /** id → row */
  const rows = new Map();
  const view = { query: '', group: 'all', sort: 'name' };
  let summaryQueued = false;
  let multiNode = false;
  // In a cluster, each visible row asks for its node summary once it scrolls into view (and again after changes).
  const watcher = 'IntersectionObserver' in window
    ? new IntersectionObserver((entries) => {
      for (const e of entries) {
        const row = e.target.plughostRow;
        row.visible = e.isIntersecting;
        if (multiNode && row.visible && row.nodesStale) refreshNodes(row);
      }
    })
    : null;

  function buildRow(info) {
    const id = info.id;
    const detailId = `detail-${id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const name = h('span', { class: 'name' });
    const toggle = h('button', { type: 'button', class: 'toggle', 'aria-expanded': 'false', 'aria-controls': detailId, 'data-action': 'toggle' },
      name, h('span', { class: 'id' }, id));
    const row = {
      info,
      el: null,
      detail: null,
      detailEl: h('div', { class: 'detail', id: detailId, hidden: true }),
      toggle,
      fields: {
        name,
        version: h('span', { class: 'version', 'data-field': 'version' }),
        state: h('span', { class: 'state', 'data-field': 'state' }),
        nodes: h('span', { class: 'nodes', 'data-field': 'nodes' }),
        restarts: h('span', { class: 'restarts', 'data-field': 'restarts' }),
        failedAt: h('span', { class: 'failed-at', 'data-field': 'failed-at' }),
      },
      retry: action('Retry', info.name || id, { class: 'retry', 'data-action': 'retry', hidden: true }),
      errorAt: info.lastError ? info.updatedAt : null,
      visible: false,
      nodesStale: true,
      nodes: null,
    };
    const f = row.fields;
    row.el = h('li', { class: 'row', 'data-plugin-id': id },
      h('div', { class: 'row-head' }, toggle, f.version, f.state, f.nodes, f.restarts, f.failedAt, row.retry),
      row.detailEl);
    row.el.plughostRow = row;
    toggle.addEventListener('click', () => setOpen(row, !row.open));
    row.retry.addEventListener('click', () => retry(row));
    paint(row);
    return row;
  }

  function paint(row) {
    const { info, fields: f } = row;
    f.name.textContent = info.name || info.id;
    f.version.textContent = `v${info.version}`;
    const group = groupOf(info);
    f.state.textContent = group === 'disabled' && info.state === 'not_running' ? 'disabled' : info.state.replace(/_/g, ' ');
    f.state.className = `state state-${info.state}${info.enabled ? '' : ' state-disabled'}`;
    f.restarts.textContent = info.restarts ? `${info.restarts} restart${info.restarts === 1 ? '' : 's'}` : '';
    f.failedAt.replaceChildren(...(info.lastError && row.errorAt ? ['failed ', timeEl(row.errorAt)] : []));
    row.retry.hidden = group !== 'failed';
    relabel(row.retry, 'Retry');
    paintNodes(row);
    row.detail?.update(info);
  }

  function paintNodes(row) {
    // A disabled plugin runs nowhere on purpose: only an enabled one has a count worth reading.
    const s = multiNode && row.info.enabled ? row.nodes?.summary : null;
    row.fields.nodes.textContent = s ? `running on ${s.running}/${s.nodes} nodes` : '';
    row.fields.nodes.classList.toggle('partial', Boolean(s && s.running < s.nodes));
  }

  async function refreshNodes(row) {
    row.nodesStale = false;
    try {
      row.nodes = await nodeSummary(row);
      paintNodes(row);
      row.detail?.showNodes(row.nodes);
    } catch {
      row.nodesStale = true;
    }
  }

  function setOpen(row, open) {
    if (open && !row.detail) {
      row.detail = openDetail(row);
      row.detailEl.append(row.detail.el);
      row.detail.update(row.info);
      if (row.nodes) row.detail.showNodes(row.nodes);
    }
    row.open = open;
    row.detailEl.hidden = !open;
    row.toggle.setAttribute('aria-expanded', String(open));
    row.el.classList.toggle('open', open);
    if (open && multiNode) refreshNodes(row);
  }

  function matches(row) {
    const { info } = row;
    if (view.group !== 'all' && groupOf(info) !== view.group) return false;
    if (!view.query) return true;
    return info.id.toLowerCase().includes(view.query) || (info.name || '').toLowerCase().includes(view.query);
  }

  /** Shows or hides a row by the filter; an open row, or one holding focus, stays until closed. */
  function applyFilter(row) {
    row.el.hidden = !(matches(row) || (row.open && row.el.contains(document.activeElement)));
  }

  function queueSummary() {
    if (summaryQueued) return;
    summaryQueued = true;
    requestAnimationFrame(() => {
      summaryQueued = false;
      const counts = { running: 0, failed: 0, disabled: 0, changing: 0 };
      let shown = 0;
      for (const row of rows.values()) {
        counts[groupOf(row.info)]++;
        if (!row.el.hidden) shown++;
      }
      summaryEl.textContent = SUMMARY_ORDER.filter(([k]) => counts[k] > 0).map(([k, words]) => `${counts[k]} ${words}`).join(' · ') || 'No plugins';
      countEl.textContent = shown === rows.size ? `${rows.size} plugin${rows.size === 1 ? '' : 's'}` : `showing ${shown} of ${rows.size}`;
      emptyEl.hidden = rows.size > 0;
      onCount(rows.size);
    });
  }

  function sorted() {
    return [...rows.values()].sort(SORTS[view.sort]);
  }

  /** Puts a new row where the current sort puts it, without moving the others. */
  function insert(row) {
    const compare = SORTS[view.sort];
    const after = [...listEl.children].find((el) => el.plughostRow && compare(row, el.plughostRow) < 0);
    listEl.insertBefore(row.el, after ?? null);
  }

  return {
    rows,
    get(id) {
      return rows.get(id);
    },
    /** Replaces the whole list (a load), in sort order, in one DOM write. */
    replaceAll(infos) {
      const seen = new Set();
      for (const info of infos) {
        seen.add(info.id);
        const row = rows.get(info.id);
        if (row) {
          row.info = info;
          row.errorAt = info.lastError ? row.errorAt ?? info.updatedAt : null;
          paint(row);
        } else {
          rows.set(info.id, buildRow(info));
        }
      }
      for (const id of [...rows.keys()]) if (!seen.has(id)) this.remove(id);
      const frag = document.createDocumentFragment();
      for (const row of sorted()) {
        applyFilter(row);
        frag.append(row.el);
        watcher?.observe(row.el);
      }
      listEl.append(frag);
      queueSummary();
    },
    /** A plugin's new facts: its row changes in place, or a new row goes where the sort puts it. */
    upsert(info, { errorAt } = {}) {
      let row = rows.get(info.id);
      if (!row) {
        row = buildRow(info);
        rows.set(info.id, row);
        insert(row);
        watcher?.observe(row.el);
      } else {
        const newError = info.lastError && info.lastError !== row.info.lastError;
        row.info = info;
        if (!info.lastError) row.errorAt = null;
        else if (newError || !row.errorAt) row.errorAt = errorAt ?? info.updatedAt ?? Date.now();
        paint(row);
      }
      applyFilter(row);
      queueSummary();
      return row;
    },
    remove(id) {
      const row = rows.get(id);
      if (!row) return;
      watcher?.unobserve(row.el);
      row.detail?.close();
      row.el.remove();
      rows.delete(id);
      queueSummary();
    },
    /** The row after (else before) this one among those shown, for focus after a removal. */
    neighbour(id) {
      const shown = [...listEl.children].filter((el) => !el.hidden);
      const i = shown.findIndex((el) => el.plughostRow?.info.id === id);
      return (shown[i + 1] ?? shown[i - 1])?.plughostRow ?? null;
    },
    setOpen,
    /** "failed 3 minutes ago" moves on with the clock. */
    tick() {
      for (const row of rows.values()) {
        if (row.errorAt) row.fields.failedAt.replaceChildren('failed ', timeEl(row.errorAt));
      }
    },
    setView(next) {
      const resort = next.sort && next.sort !== view.sort;
      Object.assign(view, next);
      view.query = view.query.trim().toLowerCase();
      if (resort) listEl.append(...sorted().map((r) => r.el));
      for (const row of rows.values()) applyFilter(row);
      queueSummary();
    },
    setMultiNode(on) {
      multiNode = on;
      for (const row of rows.values()) {
        row.nodesStale = true;
        if (on && row.visible) refreshNodes(row);
        paintNodes(row);
      }
    },
    /** Another node's change: the row's cluster summary is out of date. */
    nodesChanged(id) {
      const row = rows.get(id);
      if (!row || !multiNode) return;
      row.nodesStale = true;
      clearTimeout(row.nodesTimer);
      row.nodesTimer = setTimeout(() => row.visible && refreshNodes(row), 250);
    },
    get multiNode() {
      return multiNode;
    },
  };
}
