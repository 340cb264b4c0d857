import { Errors, PlughostError } from '../../src/errors';
import { MAX_LIST_ITEMS, SECRET_MASK, SettingsSchema, maskSecrets, validateConfig, validateManifest } from '../../src/manifest';

const schema: SettingsSchema = {
  settings: [
    { key: 'enabled', type: 'bool', default: true },
    { key: 'greeting', type: 'text', default: 'hello' },
    { key: 'notes', type: 'longtext' },
    { key: 'max', type: 'number', required: true },
    { key: 'color', type: 'dropdown', options: [{ display_name: 'Red', value: 'red' }, { display_name: 'Blue', value: 'blue' }] },
    { key: 'size', type: 'radio', default: 's', options: [{ display_name: 'S', value: 's' }, { display_name: 'L', value: 'l' }] },
    { key: 'token', type: 'secret' },
  ],
};

function configProblems(config: unknown): Record<string, string> {
  try {
    validateConfig(schema, config);
  } catch (err) {
    const e = err as PlughostError;
    expect(e.code).toBe(Errors.CONFIG_INVALID.code);
    return Object.fromEntries((e.details.problems as Array<{ path: string; message: string }>).map((p) => [p.path, p.message]));
  }
  return {};
}

describe('validateConfig', () => {
  it('applies defaults and keeps schema order', () => {
    const out = validateConfig(schema, { token: 's3cret', max: 3, color: 'blue' });
    expect(out).toEqual({ enabled: true, greeting: 'hello', max: 3, color: 'blue', size: 's', token: 's3cret' });
    expect(Object.keys(out)).toEqual(['enabled', 'greeting', 'max', 'color', 'size', 'token']);
  });

  it('reports types, options, required and unknown keys together', () => {
    expect(configProblems({ enabled: 'yes', max: '3', color: 'green', size: 'xl', nickname: 'bob', notes: 4 })).toEqual({
      enabled: 'expected true or false, got the string "yes"',
      max: 'expected a number, got the string "3"',
      color: 'expected one of "red", "blue", got the string "green"',
      size: 'expected one of "s", "l", got the string "xl"',
      nickname: expect.stringContaining('unknown setting'),
      notes: 'expected a string, got number 4',
    });
    expect(configProblems({})).toEqual({ max: 'required; expected a number' });
    expect(configProblems([1])['']).toContain('an object of setting values');
  });

  it('keeps a secret that comes back masked', () => {
    const saved = validateConfig(schema, { max: 1, token: 'abc' });
    const shown = maskSecrets(schema, saved);
    expect(shown.token).toBe(SECRET_MASK);
    expect(shown.max).toBe(1);
    expect(validateConfig(schema, shown, saved).token).toBe('abc');
    expect(validateConfig(schema, { ...shown, token: 'new' }, saved).token).toBe('new');
  });

  it('accepts an empty config when the plugin has no settings, and refuses keys it does not know', () => {
    expect(validateConfig(undefined, undefined)).toEqual({});
    expect(() => validateConfig(undefined, { a: 1 })).toThrow(/unknown setting; expected one of \(none/);
  });
});

describe('settings_schema in a manifest', () => {
  const base = { id: 'abc', name: 'A', version: '1.0.0', server: { executable: 'x' } };
  const problems = (settings: unknown) =>
    Object.fromEntries(validateManifest({ ...base, settings_schema: { settings } }).map((p) => [p.path, p.message]));

  it('checks keys, types, options and defaults', () => {
    expect(problems([
      { key: 'a', type: 'color' },
      { key: 'a', type: 'bool', default: 'yes' },
      { key: 'b', type: 'dropdown' },
      { key: 'c', type: 'radio', options: [{ display_name: 'X', value: 'x' }], default: 'y' },
      { key: 'd', type: 'text', options: [{ display_name: 'X', value: 'x' }] },
      { key: '__proto__', type: 'text' },
      { type: 'text', extra: 1 },
    ])).toEqual({
      'settings_schema.settings[0].type': expect.stringContaining('one of bool, text'),
      'settings_schema.settings[1].key': expect.stringContaining('unique'),
      'settings_schema.settings[1].default': 'expected true or false, got the string "yes"',
      'settings_schema.settings[2].options': 'required for type dropdown; expected a list of { display_name, value }',
      'settings_schema.settings[3].default': 'expected one of "x", got the string "y"',
      'settings_schema.settings[4].options': 'only allowed for dropdown, radio, multiselect, not text',
      'settings_schema.settings[5].key': expect.stringContaining('reserved'),
      'settings_schema.settings[6].key': expect.stringContaining('required'),
      'settings_schema.settings[6].extra': expect.stringContaining('unknown field'),
    });
  });

  it('checks list and multiselect definitions, naming the setting and the bad item', () => {
    const days = [{ display_name: 'Monday', value: 'mon' }, { display_name: 'Tuesday', value: 'tue' }];
    expect(problems([
      { key: 'tags', type: 'list', default: ['a', 'b'] },
      { key: 'days', type: 'multiselect', options: days, default: ['tue'] },
      { key: 'l1', type: 'list', default: ['a', 3] },
      { key: 'l2', type: 'list', default: 'a,b' },
      { key: 'l3', type: 'list', options: days },
      { key: 'l4', type: 'list', default: Array.from({ length: MAX_LIST_ITEMS + 1 }, (_, i) => `t${i}`) },
      { key: 'm1', type: 'multiselect' },
      { key: 'm2', type: 'multiselect', options: days, default: ['mon', 'sun'] },
      { key: 'm3', type: 'multiselect', options: days, default: 'mon' },
      { key: 'm4', type: 'multiselect', options: days, default: ['mon', 'mon'] },
    ])).toEqual({
      'settings_schema.settings[2].default': 'item [1]: expected a string, got number 3',
      'settings_schema.settings[3].default': 'expected a list of strings, got the string "a,b"',
      'settings_schema.settings[4].options': 'only allowed for dropdown, radio, multiselect, not list',
      'settings_schema.settings[5].default': `expected at most ${MAX_LIST_ITEMS} items (the limit of a list setting), got ${MAX_LIST_ITEMS + 1}; keep larger collections in the plugin's KV`,
      'settings_schema.settings[6].options': 'required for type multiselect; expected a list of { display_name, value }',
      'settings_schema.settings[7].default': 'item [1]: expected one of "mon", "tue", got the string "sun"',
      'settings_schema.settings[8].default': 'expected a list of values from "mon", "tue", got the string "mon"',
      'settings_schema.settings[9].default': 'item [1]: "mon" is chosen twice',
    });
  });
});

describe('list and multiselect values', () => {
  const lists: SettingsSchema = {
    settings: [
      { key: 'tags', type: 'list', default: ['news'] },
      { key: 'hosts', type: 'list', required: true },
      { key: 'days', type: 'multiselect', options: [{ display_name: 'Monday', value: 'mon' }, { display_name: 'Tuesday', value: 'tue' }] },
    ],
  };
  const problemsOf = (config: unknown): Record<string, string> => {
    try {
      validateConfig(lists, config);
      return {};
    } catch (err) {
      return Object.fromEntries(((err as PlughostError).details.problems as Array<{ path: string; message: string }>).map((p) => [p.path, p.message]));
    }
  };

  it('keeps lists of strings, fills list defaults and allows an empty optional list', () => {
    expect(validateConfig(lists, { hosts: ['a.example', 'b.example, with a comma'], days: ['tue', 'mon'] })).toEqual({
      tags: ['news'], hosts: ['a.example', 'b.example, with a comma'], days: ['tue', 'mon'],
    });
    expect(validateConfig(lists, { tags: [], hosts: ['h'], days: [] })).toEqual({ tags: [], hosts: ['h'], days: [] });
  });

  it('refuses non-strings, unknown or repeated choices, over-long lists and an empty required list, naming each setting', () => {
    expect(problemsOf({ tags: ['ok', { no: 1 }], hosts: [], days: ['mon', 'sun'] })).toEqual({
      tags: 'item [1]: expected a string, got an object',
      hosts: 'required; expected a list of strings, at least one',
      days: 'item [1]: expected one of "mon", "tue", got the string "sun"',
    });
    expect(problemsOf({ tags: 'news', hosts: ['h'], days: ['tue', 'tue'] })).toEqual({
      tags: 'expected a list of strings, got the string "news"',
      days: 'item [1]: "tue" is chosen twice',
    });
    expect(problemsOf({ hosts: new Array(MAX_LIST_ITEMS + 1).fill('h') }).hosts).toMatch(/^expected at most 1000 items \(the limit of a list setting\), got 1001/);
    expect(problemsOf({})).toEqual({ hosts: 'required; expected a list of strings, at least one' });
  });
});
