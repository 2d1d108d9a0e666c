// Windowing for the queue: only the rows in view (plus a margin) are in the DOM, so 10,000
// requests scroll as fast as 10.

/** The slice of rows to render and the spacer heights around it. */
export interface Window {
  start: number;
  end: number;
  padTop: number;
  padBottom: number;
}

/** The rows visible at `scrollTop` in a viewport of `height` px, with `overscan` extra rows each side. */
export function visibleWindow(
  scrollTop: number,
  height: number,
  rowHeight: number,
  count: number,
  overscan = 8,
): Window {
  if (count <= 0 || rowHeight <= 0) return { start: 0, end: 0, padTop: 0, padBottom: 0 };
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const visible = Math.ceil(Math.max(0, height) / rowHeight) + 1;
  const start = Math.max(0, Math.min(count - 1, first - overscan));
  const end = Math.min(count, first + visible + overscan);
  return { start, end, padTop: start * rowHeight, padBottom: (count - end) * rowHeight };
}

/** The scrollTop that brings row `index` into view, moving as little as possible. */
export function scrollToShow(index: number, scrollTop: number, height: number, rowHeight: number): number {
  const top = index * rowHeight;
  const bottom = top + rowHeight;
  if (top < scrollTop) return top;
  if (bottom > scrollTop + height) return Math.max(0, bottom - height);
  return scrollTop;
}

/** `i` moved by `delta`, kept inside `[0, count)`; -1 when the list is empty. */
export function clampIndex(i: number, delta: number, count: number): number {
  if (count <= 0) return -1;
  return Math.max(0, Math.min(count - 1, i + delta));
}
