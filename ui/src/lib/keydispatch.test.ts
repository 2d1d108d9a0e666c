// @vitest-environment jsdom
// The key dispatcher's rules around the key map: dialogs that own their keys, the help overlay,
// auto-repeat, buttons, the search box, PageDown paging the detail pane.
import { describe, expect, it, vi } from 'vitest';
import { dispatchKey, type Overlay } from './keydispatch';

function key(k: string, init: KeyboardEventInit = {}, target: EventTarget = document.body) {
  const e = new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true, ...init });
  Object.defineProperty(e, 'target', { value: target });
  return e;
}

describe('dispatchKey', () => {
  it('runs the mapped action and stops the default', () => {
    const run = vi.fn();
    const e = key('j');
    expect(dispatchKey(e, { overlay: null }, run)).toBe('down');
    expect(run).toHaveBeenCalledWith('down');
    expect(e.defaultPrevented).toBe(true);
  });

  it('leaves every key to the deny, bulk and reopen dialogs', () => {
    for (const overlay of ['deny', 'bulk', 'reopen'] as Overlay[]) {
      const run = vi.fn();
      expect(dispatchKey(key('a'), { overlay }, run)).toBeNull();
      expect(dispatchKey(key('Escape'), { overlay }, run)).toBeNull();
      expect(run).not.toHaveBeenCalled();
    }
  });

  it('over the help overlay only help and back work', () => {
    const run = vi.fn();
    expect(dispatchKey(key('a'), { overlay: 'help' }, run)).toBeNull();
    expect(dispatchKey(key('Escape'), { overlay: 'help' }, run)).toBe('back');
    expect(run).toHaveBeenCalledTimes(1);
  });

  it('auto-repeat never decides, and Enter on a button clicks it', () => {
    const run = vi.fn();
    const held = key('a', { repeat: true });
    expect(dispatchKey(held, { overlay: null }, run)).toBeNull();
    expect(held.defaultPrevented).toBe(true);
    const button = document.createElement('button');
    const enter = key('Enter', {}, button);
    expect(dispatchKey(enter, { overlay: null }, run)).toBeNull();
    expect(enter.defaultPrevented).toBe(false);
    expect(run).not.toHaveBeenCalled();
  });

  it('down from the search box leaves it', () => {
    const box = document.createElement('input');
    document.body.append(box);
    box.focus();
    const run = vi.fn();
    expect(dispatchKey(key('ArrowDown', {}, box), { overlay: null, searchBox: box }, run)).toBe('down');
    expect(document.activeElement).not.toBe(box);
    box.remove();
  });

  it('PageDown outside the detail pages it; inside, the browser scrolls', () => {
    const pane = document.createElement('div');
    const scrollBy = vi.fn();
    pane.scrollBy = scrollBy as unknown as typeof pane.scrollBy;
    const run = vi.fn();
    const outside = key('PageDown');
    dispatchKey(outside, { overlay: null, detailPane: pane }, run);
    expect(scrollBy).toHaveBeenCalledWith({ top: 40 });
    expect(outside.defaultPrevented).toBe(true);
    const inner = document.createElement('p');
    pane.append(inner);
    const inside = key('PageUp', {}, inner);
    dispatchKey(inside, { overlay: null, detailPane: pane }, run);
    expect(scrollBy).toHaveBeenCalledTimes(1);
    expect(inside.defaultPrevented).toBe(false);
    expect(run).not.toHaveBeenCalled();
  });
});
