import { Errors, PlughostError } from '../../src/errors';
import { SECRET_MASK, SettingsSchema, maskSecrets, validateConfig, validateManifest } from '../../src/manifest';

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
      'settings_schema.settings[4].options': 'only allowed for dropdown and radio, not text',
      'settings_schema.settings[5].key': expect.stringContaining('reserved'),
      'settings_schema.settings[6].key': expect.stringContaining('required'),
      'settings_schema.settings[6].extra': expect.stringContaining('unknown field'),
    });
  });
});
