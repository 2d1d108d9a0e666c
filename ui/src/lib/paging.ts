// The queue as a sparse list of pages: the reviewer answers at most 1,000 requests per call, so
// the list fetches the pages around what is on screen and nothing else.

import type { QueueItem } from './types';

/** Pages of a result set of `total` items, `size` items per page. */
export interface Pages {
  total: number;
  size: number;
  pages: ReadonlyMap<number, QueueItem[]>;
}

/** An empty result. */
export function emptyPages(size: number): Pages {
  return { total: 0, size, pages: new Map() };
}

/** The item at `index`, if its page is loaded. */
export function itemAt(p: Pages, index: number): QueueItem | undefined {
  if (index < 0 || index >= p.total) return undefined;
  return p.pages.get(Math.floor(index / p.size))?.[index % p.size];
}

/** The page numbers covering `[start, end)` that are not loaded yet. */
export function missingPages(p: Pages, start: number, end: number): number[] {
  const out: number[] = [];
  if (p.total === 0 || end <= start) return out;
  const first = Math.floor(Math.max(0, start) / p.size);
  const last = Math.floor((Math.min(end, p.total) - 1) / p.size);
  for (let n = first; n <= last; n++) if (!p.pages.has(n)) out.push(n);
  return out;
}

/** `p` with page `n` set (a new object: the UI re-renders on identity). */
export function withPage(p: Pages, n: number, items: QueueItem[], total: number): Pages {
  const pages = new Map(total === p.total ? p.pages : []);
  pages.set(n, items);
  return { total, size: p.size, pages };
}

/** The index of the item with `id` among the loaded pages, or -1. */
export function indexOfId(p: Pages, id: string): number {
  for (const [n, items] of p.pages) {
    const i = items.findIndex((it) => it.id === id);
    if (i >= 0) return n * p.size + i;
  }
  return -1;
}
