/**
 * A plugin's settings form, generated from its manifest's settings schema:
 * each setting type gets its own control, secrets are write-only (the stored
 * value is never put back into the page, not even masked), and the server's
 * validation problems are shown next to the field they name.
 */
import { action, h } from './dom.js';

/** What the API shows instead of a stored secret; sending it back keeps the secret. */
const SECRET_MASK = '********';

/** A setting's name for people: its display name, else its key. */
export const labelOf = (setting) => setting.display_name || setting.key;

/**
 * Builds the form. `save(values)` sends them and throws an ApiError on refusal.
 * A key the configuration lacks shows the schema's default (what the plugin
 * gets until a value is saved). Returns { el, fill(config), showProblems(problems), focus(key), get dirty }.
 */
export function settingsForm({ pluginId, pluginName, settings, save }) {
  const fields = settings.map((s) => field(pluginId, s));
  const formError = h('p', { class: 'error form-error', role: 'alert' });
  const status = h('p', { class: 'status', role: 'status' });
  let dirty = false;
  const form = h(
    'form',
    { class: 'settings-form', novalidate: true, oninput: () => (dirty = true), onchange: () => (dirty = true) },
    settings.length ? fields.map((f) => f.el) : h('p', { class: 'muted' }, 'This plugin has no settings.'),
    settings.length ? action('Save settings', pluginName, { type: 'submit' }) : null,
    formError,
    status,
  );

  /** Puts each problem beside its field; answers the problems no field took. */
  function showProblems(problems) {
    for (const f of fields) f.showError('');
    const unplaced = [];
    for (const p of problems) {
      const f = fields.find((x) => x.key === p.path);
      if (f) f.showError(p.message);
      else unplaced.push(`${p.path || 'settings'}: ${p.message}`);
    }
    return unplaced;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showProblems([]);
    formError.textContent = '';
    status.textContent = 'Saving…';
    const values = {};
    for (const f of fields) {
      const v = f.value();
      if (v !== undefined) values[f.key] = v;
    }
    try {
      const saved = await save(values);
      dirty = false;
      fill(saved);
      status.textContent = 'Saved.';
    } catch (err) {
      status.textContent = '';
      const unplaced = showProblems(err.problems ?? []);
      formError.textContent = err.problems?.length ? unplaced.join('; ') || 'Some settings need fixing; see the fields above.' : err.message;
      // Focus goes to the first field that needs fixing, so its message is read out.
      fields.find((f) => f.el.querySelector('[aria-invalid=true]'))?.focus();
    }
  });

  function fill(config) {
    for (const f of fields) f.fill(f.key in config ? config[f.key] : f.default);
  }

  return {
    el: form,
    fill,
    showProblems,
    focus: (key) => fields.find((f) => f.key === key)?.focus(),
    get dirty() {
      return dirty;
    },
  };
}

/** One setting: its label, control, help text and error line. */
function field(pluginId, s) {
  const id = `setting-${pluginId}-${s.key}`.replace(/[^A-Za-z0-9_-]/g, '_');
  const errorId = `${id}-error`;
  const error = h('p', { class: 'field-error', id: errorId, role: 'alert' });
  const help = s.help_text ? h('small', { class: 'help' }, s.help_text) : null;
  const label = `${labelOf(s)}${s.required ? ' (required)' : ''}`;
  const control = makeControl(s, id, errorId);
  // A group of inputs is labelled by its fieldset's legend, not by one <label>.
  const grouped = s.type === 'radio' || s.type === 'multiselect';
  const el = h(
    'div',
    { class: `field field-${s.type}`, 'data-key': s.key },
    grouped ? control.el : [h('label', { for: id }, label), control.el],
    help,
    error,
  );
  if (grouped) control.el.prepend(h('legend', {}, label));
  return {
    key: s.key,
    el,
    default: s.type === 'secret' ? undefined : s.default,
    value: control.value,
    fill: control.fill,
    focus: () => el.querySelector('input, select, textarea')?.focus(),
    showError(message) {
      error.textContent = message;
      for (const input of el.querySelectorAll('input, select, textarea')) {
        if (message) input.setAttribute('aria-invalid', 'true');
        else input.removeAttribute('aria-invalid');
      }
    },
  };
}

function makeControl(s, id, errorId) {
  const described = { id, 'aria-describedby': errorId, name: s.key };
  switch (s.type) {
    case 'bool': {
      const input = h('input', { ...described, type: 'checkbox' });
      return { el: input, value: () => input.checked, fill: (v) => (input.checked = v === true) };
    }
    case 'number': {
      const input = h('input', { ...described, type: 'number', step: 'any' });
      return {
        el: input,
        value: () => (input.value === '' ? undefined : Number(input.value)),
        fill: (v) => (input.value = v === undefined ? '' : String(v)),
      };
    }
    case 'longtext': {
      const input = h('textarea', { ...described, rows: '4' });
      return { el: input, value: () => input.value, fill: (v) => (input.value = v ?? '') };
    }
    case 'dropdown': {
      const select = h('select', described, h('option', { value: '' }, '(choose)'), s.options.map((o) => h('option', { value: o.value }, o.display_name)));
      return { el: select, value: () => select.value || undefined, fill: (v) => (select.value = v ?? '') };
    }
    case 'radio': {
      const radios = s.options.map((o, i) => {
        const input = h('input', { type: 'radio', name: id, value: o.value, id: `${id}-${i}`, 'aria-describedby': errorId });
        return { input, el: h('label', { class: 'radio' }, input, ` ${o.display_name}`) };
      });
      const set = h('fieldset', { id }, radios.map((r) => r.el));
      return {
        el: set,
        value: () => radios.find((r) => r.input.checked)?.input.value,
        fill: (v) => radios.forEach((r) => (r.input.checked = r.input.value === v)),
      };
    }
    case 'list':
    case 'multiselect':
      return listControl(s, described, errorId);
    case 'secret': {
      const input = h('input', { ...described, type: 'password', autocomplete: 'new-password' });
      let stored = false;
      return {
        el: input,
        // Blank keeps what is stored: the mask tells the server to keep it.
        value: () => (input.value !== '' ? input.value : stored ? SECRET_MASK : undefined),
        fill: (v) => {
          stored = v !== undefined && v !== '';
          input.value = '';
          input.placeholder = stored ? 'stored; type to replace' : 'not set';
        },
      };
    }
    default: {
      const input = h('input', { ...described, type: 'text' });
      return { el: input, value: () => input.value, fill: (v) => (input.value = v ?? '') };
    }
  }
}

/**
 * A `list` as a text area, one item per line (blank lines dropped), and a
 * `multiselect` as one checkbox per option; both give a list of strings.
 */
function listControl(s, described, errorId) {
  if (s.type === 'list') {
    const input = h('textarea', { ...described, rows: '4', placeholder: 'one item per line' });
    return {
      el: input,
      value: () => input.value.split(/\r?\n/).filter((line) => line.trim() !== ''),
      fill: (v) => (input.value = Array.isArray(v) ? v.join('\n') : ''),
    };
  }
  const boxes = s.options.map((o, i) => {
    const input = h('input', { type: 'checkbox', name: s.key, value: o.value, id: `${described.id}-${i}`, 'aria-describedby': errorId });
    return { input, el: h('label', { class: 'checkbox' }, input, ` ${o.display_name}`) };
  });
  return {
    el: h('fieldset', { id: described.id }, boxes.map((b) => b.el)),
    value: () => boxes.filter((b) => b.input.checked).map((b) => b.input.value),
    fill: (v) => boxes.forEach((b) => (b.input.checked = Array.isArray(v) && v.includes(b.input.value))),
  };
}
