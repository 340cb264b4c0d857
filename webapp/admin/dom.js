/** A tiny element builder: h('p', { class: 'x', onclick: fn }, 'text', child). Text is always set as text. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name in el && typeof value !== 'string') el[name] = value;
    else el.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null && child !== false) el.append(child);
  }
  return el;
}

/** Text for screen readers only: a button reads "Enable Hello" while it shows "Enable". */
export const hidden = (text) => h('span', { class: 'vh' }, ` ${text}`);

/** A button whose accessible name names its plugin: `action('Enable', 'Hello', { 'data-action': 'enable' })`. */
export function action(label, pluginName, attrs = {}) {
  return h('button', { type: 'button', ...attrs }, h('span', { class: 'label' }, label), hidden(pluginName));
}

/** Sets an action button's visible words, keeping its plugin's name for screen readers. */
export function relabel(button, label) {
  button.querySelector('.label').textContent = label;
}

/**
 * Runs `work` with `button` marked busy (aria-disabled, not disabled: a disabled
 * button drops the focus to the page). A click while busy does nothing.
 */
export async function busy(button, work) {
  if (button.getAttribute('aria-disabled') === 'true') return undefined;
  button.setAttribute('aria-disabled', 'true');
  try {
    return await work();
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

const RELATIVE = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const STEPS = [['second', 60], ['minute', 60], ['hour', 24], ['day', 365]];

/** "3 minutes ago", for a time in milliseconds since the epoch. */
export function timeAgo(ms, now = Date.now()) {
  let value = Math.round((ms - now) / 1000);
  for (const [unit, size] of STEPS) {
    if (Math.abs(value) < size) return RELATIVE.format(value, unit);
    value = Math.round(value / size);
  }
  return RELATIVE.format(value, 'year');
}

/** An absolute local time for a title or a `<time>`: 2026-12-03 07:46:05. */
export function stamp(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `<time>` showing "3 minutes ago", with the exact time as its title and datetime. */
export function timeEl(ms) {
  return h('time', { datetime: new Date(ms).toISOString(), title: stamp(ms) }, timeAgo(ms));
}
