/**
 * A plugin's logs: the last 1,000 records of this node (more with "Load
 * older"), then each new one as it arrives over the event feed (?logs=<id>),
 * the host's own lines (started, restarting, parked, stopped) among them.
 * Levels filter in the page; structured fields show as key=value.
 */
import { api, followEvents } from './api.js';
import { busy, h, hidden, stamp } from './dom.js';

const PAGE = 1_000;
/** Lines kept on the page while following; the oldest go first (they can be loaded again). */
const MAX_LINES = 5_000;
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

export function logsPanel({ pluginId, pluginName, path }) {
  const level = h('select', { id: `log-level-${pluginId}`, class: 'log-level' },
    h('option', { value: 'trace' }, 'all levels'),
    LEVELS.slice(1).map((l) => h('option', { value: l }, `${l} and above`)));
  const follow = h('input', { type: 'checkbox', id: `log-follow-${pluginId}`, checked: true });
  const older = h('button', { type: 'button', class: 'secondary', 'data-action': 'older' }, 'Load older lines', hidden(`of ${pluginName}`));
  const status = h('p', { class: 'muted log-status', role: 'status' });
  const lines = h('ol', { class: 'log-lines', tabindex: '0', 'aria-label': `Log of ${pluginName}` });
  const el = h('div', { class: 'logs-panel' },
    h('div', { class: 'log-tools' },
      h('label', { for: level.id }, 'Level', hidden(`of ${pluginName}'s log`)), level,
      h('label', { class: 'inline', for: follow.id }, follow, ' Follow live', hidden(`the log of ${pluginName}`)),
      older),
    status, lines);

  /** Sequence number of the oldest record shown that came from the API; null when unknown. */
  let oldestSeq = null;
  let stop = null;
  /** Records that arrived over the feed while the first page was loading. */
  let early = null;

  function line(r) {
    const fields = Object.entries(r.fields ?? {});
    const li = h('li', { class: `log log-${r.level} source-${r.source}`, 'data-level': r.level },
      h('time', { datetime: new Date(r.time).toISOString() }, stamp(r.time)), ' ',
      h('span', { class: 'lvl' }, r.level.toUpperCase()), ' ',
      r.source === 'host' ? h('span', { class: 'src' }, '[host] ') : null,
      h('span', { class: 'msg' }, r.message),
      fields.flatMap(([k, v]) => [' ', h('span', { class: 'field' }, h('span', { class: 'k' }, k), '=', typeof v === 'string' ? v : JSON.stringify(v))]),
      r.truncated ? h('span', { class: 'muted' }, ' (cut)') : null);
    if (r.seq) li.dataset.seq = r.seq;
    li.hidden = !shown(r.level);
    return li;
  }

  const shown = (l) => LEVELS.indexOf(l) >= LEVELS.indexOf(level.value);
  const atBottom = () => lines.scrollHeight - lines.scrollTop - lines.clientHeight < 8;
  const sameRecord = (a, b) => a.time === b.time && a.message === b.message && a.source === b.source && a.level === b.level;

  function append(records) {
    const stick = atBottom();
    lines.append(...records.map(line));
    while (lines.children.length > MAX_LINES) lines.firstElementChild.remove();
    const first = lines.querySelector('[data-seq]');
    if (first) oldestSeq = Number(first.dataset.seq);
    if (stick) lines.scrollTop = lines.scrollHeight;
    counts();
  }

  function counts() {
    const n = lines.children.length;
    const visible = lines.querySelectorAll('li:not([hidden])').length;
    status.textContent = n === 0 ? 'No log lines yet.' : `${visible === n ? n : `${visible} of ${n}`} lines${follow.checked ? ', following' : ''}.`;
  }

  async function firstPage() {
    let page;
    try {
      page = await api('GET', `${path}/logs?limit=${PAGE}`);
    } catch (err) {
      early = null;
      status.textContent = `Could not read the logs: ${err.message}`;
      return;
    }
    lines.replaceChildren();
    oldestSeq = page.length ? page[0].seq : null;
    older.hidden = page.length < PAGE;
    // The feed was opened first: drop what it sent that the page holds already.
    const tail = page.slice(-50);
    const fresh = (early ?? []).filter((r) => !tail.some((p) => sameRecord(p, r)));
    early = null;
    append([...page, ...fresh]);
    lines.scrollTop = lines.scrollHeight;
  }

  /** The page is read once the feed is up (and again after it reconnects), so no record falls between the two. */
  function startFollowing() {
    stop = followEvents({
      ready: () => {
        early = [];
        firstPage();
      },
      log: (r) => (early ? early.push(r) : append([r])),
      removed: (e) => e.pluginId === pluginId && stopFollowing(),
    }, () => undefined, `&logs=${encodeURIComponent(pluginId)}`);
  }

  function stopFollowing() {
    stop?.();
    stop = null;
    early = null;
  }

  older.addEventListener('click', () => busy(older, async () => {
    if (oldestSeq === null) return;
    try {
      const page = await api('GET', `${path}/logs?limit=${PAGE}&before=${oldestSeq}`);
      const keep = lines.scrollHeight - lines.scrollTop;
      lines.prepend(...page.map(line));
      if (page.length) oldestSeq = page[0].seq;
      older.hidden = page.length < PAGE;
      lines.scrollTop = lines.scrollHeight - keep;
      counts();
    } catch (err) {
      status.textContent = `Could not read older lines: ${err.message}`;
    }
    // Once there is nothing older the button goes: the focus stays in the log.
    if (older.hidden) lines.focus();
  }));
  level.addEventListener('change', () => {
    for (const li of lines.children) li.hidden = !shown(li.dataset.level);
    counts();
  });
  follow.addEventListener('change', () => {
    if (follow.checked) startFollowing();
    else stopFollowing();
    counts();
  });

  return {
    el,
    start() {
      if (stop) return;
      if (follow.checked) startFollowing();
      else firstPage();
    },
    stop: stopFollowing,
  };
}
