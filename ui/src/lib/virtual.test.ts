import { describe, expect, it } from 'vitest';
import { clampIndex, scrollToShow, visibleWindow } from './virtual';

describe('virtual list window', () => {
  it('renders only the rows in view plus the overscan for 10,000 items', () => {
    const w = visibleWindow(50 * 5000, 600, 50, 10_000, 8);
    expect(w.start).toBe(5000 - 8);
    expect(w.end).toBe(5000 + 13 + 8);
    expect(w.end - w.start).toBeLessThan(40);
    expect(w.padTop + (w.end - w.start) * 50 + w.padBottom).toBe(10_000 * 50);
  });

  it('clamps at both ends', () => {
    expect(visibleWindow(0, 600, 50, 5)).toEqual({ start: 0, end: 5, padTop: 0, padBottom: 0 });
    const end = visibleWindow(1e9, 600, 50, 100);
    expect(end.end).toBe(100);
    expect(end.padBottom).toBe(0);
    expect(visibleWindow(0, 600, 50, 0)).toEqual({ start: 0, end: 0, padTop: 0, padBottom: 0 });
  });

  it('scrolls as little as possible to show a row', () => {
    expect(scrollToShow(0, 100, 600, 50)).toBe(0);
    expect(scrollToShow(5, 0, 600, 50)).toBe(0);
    expect(scrollToShow(20, 0, 600, 50)).toBe(21 * 50 - 600);
  });

  it('moves the cursor inside the list', () => {
    expect(clampIndex(0, -1, 10)).toBe(0);
    expect(clampIndex(9, 1, 10)).toBe(9);
    expect(clampIndex(-1, 1, 10)).toBe(0);
    expect(clampIndex(3, 1, 0)).toBe(-1);
  });
});
