// @vitest-environment jsdom
// The toolbar folds its filters when they do not fit whole, and unfolds when they do (fold.ts).
// jsdom has no layout: the widths are given, as the unfolded and folded layouts measure them.
import { describe, expect, it } from 'vitest';
import { ARROW_PX, fitFilters, foldFilters, type MeasureText } from './fold';

/** A header whose content needs `unfolded` px unfolded and `folded` px folded, in `width` px, with one filter menu of `menu` px showing `label`. */
function header(unfolded: number, folded: number, width: number, menu = 170, label = 'All providers') {
  const h = document.createElement('header');
  h.innerHTML = `<div class="filters"><select><option selected>${label}</option></select></div>`;
  Object.defineProperty(h, 'clientWidth', { get: () => width });
  Object.defineProperty(h, 'scrollWidth', { get: () => (h.classList.contains('folded') ? folded : unfolded) });
  const select = h.querySelector('select')!;
  Object.defineProperty(select, 'clientWidth', { get: () => menu });
  // Shown unless folded.
  select.getClientRects = () => (h.classList.contains('folded') ? [] : [{}]) as unknown as DOMRectList;
  return h;
}
/** 7 px a character, as a stand-in for the font. */
const measure: MeasureText = (_el, text) => text.length * 7;

describe('filters fold when they do not fit whole', () => {
  it('folds when the unfolded toolbar overflows, unfolds when it fits', () => {
    const crowded = header(1392, 1180, 1280);
    expect(fitFilters(crowded, measure)).toBe(true);
    expect(crowded.classList.contains('folded')).toBe(true);
    const roomy = header(1230, 1100, 1280);
    roomy.classList.add('folded');
    expect(fitFilters(roomy, measure)).toBe(false);
    expect(roomy.classList.contains('folded')).toBe(false);
    // A pixel of rounding is no overflow.
    expect(fitFilters(header(1281, 1100, 1280), measure)).toBe(false);
  });

  it('folds when a menu would cut its label, even if the row fits ("Tous les fou…")', () => {
    const label = 'Tous les fournisseurs'; // 21 characters: 147 px here
    expect(fitFilters(header(1200, 1100, 1280, 147 + ARROW_PX - 1, label), measure)).toBe(true);
    expect(fitFilters(header(1200, 1100, 1280, 147 + ARROW_PX, label), measure)).toBe(false);
    // Where text cannot be measured, only the overflow counts.
    expect(fitFilters(header(1200, 1100, 1280, 10, label), () => null)).toBe(false);
  });

  it('the action checks at once and marks the header it watches', () => {
    const h = header(1500, 1200, 1280);
    const action = foldFilters(h);
    expect(h.classList.contains('fold-watch')).toBe(true);
    expect(h.classList.contains('folded')).toBe(true);
    action.destroy();
  });
});
