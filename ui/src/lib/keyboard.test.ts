import { describe, expect, it } from 'vitest';
import { SHORTCUTS, actionFor, isTextField } from './keyboard';

const key = (k: string, extra: Partial<Parameters<typeof actionFor>[0]> = {}) => actionFor({ key: k, inTextField: false, ...extra });

describe('keyboard map', () => {
  it('maps the documented single keys', () => {
    expect(key('j')).toBe('down');
    expect(key('k')).toBe('up');
    expect(key('ArrowDown')).toBe('down');
    expect(key('Enter')).toBe('open');
    expect(key('a')).toBe('approve');
    expect(key('d')).toBe('deny');
    expect(key('/')).toBe('search');
    expect(key('x')).toBe('select');
    expect(key('c')).toBe('compare');
    expect(key('?')).toBe('help');
    expect(key('Escape')).toBe('back');
    expect(key('h')).toBe('history');
    expect(key('G')).toBe('bottom');
    expect(key('g')).toBe('top');
  });

  it('ignores unknown keys and modified keys (copy, paste, zoom stay with the web view)', () => {
    expect(key('q')).toBeNull();
    expect(key('A')).toBeNull();
    expect(key('a', { ctrlKey: true })).toBeNull();
    expect(key('c', { metaKey: true })).toBeNull();
    expect(key('d', { altKey: true })).toBeNull();
  });

  it('in a text field only Escape and the arrows act', () => {
    expect(key('a', { inTextField: true })).toBeNull();
    expect(key('j', { inTextField: true })).toBeNull();
    expect(key('/', { inTextField: true })).toBeNull();
    expect(key('Escape', { inTextField: true })).toBe('back');
    expect(key('ArrowDown', { inTextField: true })).toBe('down');
  });

  it('the help overlay lists every action of the map', () => {
    const listed = SHORTCUTS.flatMap((s) => s.keys);
    for (const k of ['j', 'k', 'Enter', 'a', 'd', 'x', 'c', '/', '?', 'Esc', 'h', 'r']) {
      expect(listed).toContain(k);
    }
  });

  it('recognises text fields but not checkboxes', () => {
    const el = (tagName: string, type?: string) => ({ tagName, type, isContentEditable: false }) as unknown as EventTarget;
    expect(isTextField(el('INPUT', 'search'))).toBe(true);
    expect(isTextField(el('INPUT'))).toBe(true);
    expect(isTextField(el('TEXTAREA'))).toBe(true);
    expect(isTextField(el('INPUT', 'checkbox'))).toBe(false);
    expect(isTextField(el('DIV'))).toBe(false);
    expect(isTextField(null)).toBe(false);
  });
});
