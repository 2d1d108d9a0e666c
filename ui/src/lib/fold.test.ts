// @vitest-environment jsdom
// The toolbar folds its filters when they do not fit whole, and unfolds when they do (fold.ts).
// jsdom has no layout: the header's widths are given, as the unfolded and folded layouts measure.
import { describe, expect, it } from 'vitest';
import { fitFilters, foldFilters } from './fold';

/** A header whose content needs `unfolded` px unfolded and `folded` px folded, in `width` px. */
function header(unfolded: number, folded: number, width: number) {
  const h = document.createElement('header');
  Object.defineProperty(h, 'clientWidth', { get: () => width });
  Object.defineProperty(h, 'scrollWidth', { get: () => (h.classList.contains('folded') ? folded : unfolded) });
  return h;
}

describe('filters fold when they do not fit', () => {
  it('folds when the unfolded toolbar overflows, unfolds when it fits', () => {
    const frAt1280 = header(1392, 1180, 1280);
    expect(fitFilters(frAt1280)).toBe(true);
    expect(frAt1280.classList.contains('folded')).toBe(true);
    const enAt1280 = header(1230, 1100, 1280);
    enAt1280.classList.add('folded');
    expect(fitFilters(enAt1280)).toBe(false);
    expect(enAt1280.classList.contains('folded')).toBe(false);
    // A pixel of rounding is no overflow.
    expect(fitFilters(header(1281, 1100, 1280))).toBe(false);
  });

  it('the action checks at once and marks the header it watches', () => {
    const h = header(1500, 1200, 1280);
    const action = foldFilters(h);
    expect(h.classList.contains('fold-watch')).toBe(true);
    expect(h.classList.contains('folded')).toBe(true);
    action.destroy();
  });
});
