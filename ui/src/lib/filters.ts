// The queue's filter bar: UI state ⇄ the QueueQuery the reviewer answers from its cache.

import type { QueueQuery } from './types';

/** The age filter's choices. */
export type AgeFilter = 'any' | 'today' | 'week' | 'older';

/** Everything the filter bar holds. */
export interface FilterState {
  search: string;
  provider: string;
  domain: string;
  age: AgeFilter;
  newestFirst: boolean;
  /** Only requests escalated to their route's fallback approvers (issue 14 §2). */
  escalated: boolean;
}

/** The empty filter: everything, oldest first. */
export const NO_FILTER: FilterState = { search: '', provider: '', domain: '', age: 'any', newestFirst: false, escalated: false };

/** The age choices for the select box. */
/** The age filter's choices; `label` is a message key (src/locales). */
export const AGE_CHOICES: Array<{ value: AgeFilter; label: string }> = [
  { value: 'any', label: 'filters.anyAge' },
  { value: 'today', label: 'filters.today' },
  { value: 'week', label: 'filters.week' },
  { value: 'older', label: 'filters.older' },
];

/** The age filter as an hour range (either end may be open). */
export function ageRange(age: AgeFilter): { minAgeHours: number | null; maxAgeHours: number | null } {
  switch (age) {
    case 'today':
      return { minAgeHours: null, maxAgeHours: 24 };
    case 'week':
      return { minAgeHours: null, maxAgeHours: 7 * 24 };
    case 'older':
      return { minAgeHours: 7 * 24, maxAgeHours: null };
    default:
      return { minAgeHours: null, maxAgeHours: null };
  }
}

/** The filter bar's state as a query for one page: blanks become nulls, the search is trimmed. */
export function toQuery(f: FilterState, offset = 0, limit = PAGE_SIZE): QueueQuery {
  const s = f.search.trim();
  return {
    q: s === '' ? null : s,
    identityProvider: f.provider === '' ? null : f.provider,
    emailDomain: f.domain === '' ? null : f.domain.toLowerCase(),
    ...ageRange(f.age),
    sort: f.newestFirst ? 'newestFirst' : 'oldestFirst',
    offset,
    limit,
    escalatedOnly: f.escalated,
  };
}

/** Requests per `queue` call; the reviewer answers at most 1,000. */
export const PAGE_SIZE = 500;

/** True when any filter narrows the queue (for the "n of m" count and the clear button). */
export function isFiltered(f: FilterState): boolean {
  return f.search.trim() !== '' || f.provider !== '' || f.domain !== '' || f.age !== 'any' || f.escalated;
}

/** Toggles `id` in a selection, keeping insertion order. */
export function toggleSelected(sel: string[], id: string): string[] {
  return sel.includes(id) ? sel.filter((x) => x !== id) : [...sel, id];
}

/** Whether compare mode can open: 2 to 4 selected requests. */
export function canCompare(sel: string[]): boolean {
  return sel.length >= 2 && sel.length <= 4;
}
