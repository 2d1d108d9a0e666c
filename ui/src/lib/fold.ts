// The toolbar's filters fold into one menu when they do not fit whole (issue 15 §5 and its
// follow-up: in French at 1,280 px the filter menus were cut to "Tous les fou…").
//
// Unfolded, each filter menu is as wide as its label (up to a cap, fold.css), so a label is never
// cut; when the toolbar cannot hold them all in one row — at any window width, in any language,
// whatever the approver's name — the header gets the `folded` class and the filters collapse
// behind the Filters button, as they do below 1,100 px. Measured, not guessed: French and Swedish
// labels are longer than English ones, and the provider and domain menus grow with the queue.

import './fold.css';

/** Whether `header`'s content overflows it (a pixel of rounding is tolerated). */
function overflows(header: HTMLElement): boolean {
  return header.scrollWidth > header.clientWidth + 1;
}

/**
 * Sets `folded` on `header` when its content does not fit unfolded, and clears it when it does.
 * Tries the unfolded layout first (a synchronous reflow: nothing is painted in between).
 * Returns whether it folded.
 */
export function fitFilters(header: HTMLElement): boolean {
  header.classList.remove('folded');
  const fold = overflows(header);
  header.classList.toggle('folded', fold);
  return fold;
}

/**
 * Svelte action for the toolbar (`<header use:foldFilters>`): keeps [`fitFilters`] true when the
 * window is resized and when the toolbar's text changes (language, menu options, the user name).
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
  return {
    destroy() {
      resize?.disconnect();
      text.disconnect();
      window.removeEventListener('resize', check);
    },
  };
}
