// The toolbar's filters fold into one menu when they do not fit whole (issue 15 §5 and its
// follow-up: in French at 1,280 px the filter menus were cut to "Tous les fou…").
//
// The menus keep the toolbar's sizes (Reviewer.svelte: they shrink when the row is crowded, up to
// 170 px each). Whenever a menu would show its chosen label cut, or the toolbar would overflow —
// at any window width, in any language, whatever the approver's name or the menus' options — the
// header gets the `folded` class and the filters collapse behind the Filters button, as they do
// below 1,100 px, where each menu is as wide as it needs. Measured, not guessed: French and
// Swedish labels are longer than English ones.

import './fold.css';

/** Room kept for a menu's drop-down arrow (WebKitGTK draws it in about 20 px), in CSS px. */
export const ARROW_PX = 24;

/** The width of `text` in `el`'s font, in CSS px (`null`: cannot be measured here). */
export type MeasureText = (el: HTMLElement, text: string) => number | null;

let ctx: CanvasRenderingContext2D | null | undefined;

/** Measures with a canvas in the element's computed font. */
export const canvasMeasure: MeasureText = (el, text) => {
  if (ctx === undefined) {
    try {
      ctx = document.createElement('canvas').getContext('2d');
    } catch {
      ctx = null;
    }
  }
  if (!ctx) return null;
  const cs = getComputedStyle(el);
  ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
  return ctx.measureText(text).width;
};

/** Whether `select` (shown) shows its chosen option cut. */
function labelCut(select: HTMLSelectElement, measure: MeasureText): boolean {
  if (select.getClientRects().length === 0) return false; // hidden (folded, or below 1,100 px)
  const label = select.selectedOptions[0]?.textContent ?? '';
  const width = measure(select, label);
  if (width === null) return false;
  const cs = getComputedStyle(select);
  const room = select.clientWidth - parseFloat(cs.paddingLeft || '0') - parseFloat(cs.paddingRight || '0') - ARROW_PX;
  return width > room;
}

/** Whether `header` is crowded: its content overflows it (a pixel of rounding is tolerated) or a filter menu's label is cut. */
function crowded(header: HTMLElement, measure: MeasureText): boolean {
  if (header.scrollWidth > header.clientWidth + 1) return true;
  return [...header.querySelectorAll<HTMLSelectElement>('.filters select')].some((s) => labelCut(s, measure));
}

/**
 * Sets `folded` on `header` when it is crowded unfolded, and clears it when it is not. Tries the
 * unfolded layout first (a synchronous reflow: nothing is painted in between). Returns whether it
 * folded.
 */
export function fitFilters(header: HTMLElement, measure: MeasureText = canvasMeasure): boolean {
  header.classList.remove('folded');
  const fold = crowded(header, measure);
  header.classList.toggle('folded', fold);
  return fold;
}

/**
 * Svelte action for the toolbar (`<header use:foldFilters>`): runs [`fitFilters`] again when the
 * window is resized, when the toolbar's text changes (language, menu options, the user name) and
 * when a menu's choice changes.
 */
export function foldFilters(header: HTMLElement): { destroy(): void } {
  header.classList.add('fold-watch');
  let queued = false;
  const check = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fitFilters(header);
    });
  };
  fitFilters(header);
  const resize = typeof ResizeObserver === 'undefined' ? null : new ResizeObserver(check);
  resize?.observe(header);
  // Text and options only: the `folded` class itself (an attribute) is not watched.
  const text = new MutationObserver(check);
  text.observe(header, { childList: true, characterData: true, subtree: true });
  window.addEventListener('resize', check);
  header.addEventListener('change', check);
  return {
    destroy() {
      resize?.disconnect();
      text.disconnect();
      window.removeEventListener('resize', check);
      header.removeEventListener('change', check);
    },
  };
}
