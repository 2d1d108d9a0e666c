// The queue as the signed-in screen shows it: the filters, the pages of the cached queue loaded
// so far (the list loads the rest as it scrolls), the cursor, and the last error. Every load
// carries a generation: an answer to a query the filters have since replaced is dropped.
import type { Api } from './api';
import type { QueueItem, QueueView } from './types';
import { NO_FILTER, PAGE_SIZE, isFiltered, toQuery, type FilterState } from './filters';
import { emptyPages, indexOfId, itemAt, missingPages, withPage, type Pages } from './paging';
import { coalesced } from './coalesce';
import { toAppError, type AppError } from './format';

/** The queue's state and its loads (reactive fields; see the module comment). */
export class QueueState {
  filter = $state<FilterState>({ ...NO_FILTER });
  view = $state.raw<QueueView | null>(null);
  pages = $state.raw<Pages>(emptyPages(PAGE_SIZE));
  error = $state<AppError | null>(null);
  /** The row under the cursor (-1: none). */
  cursor = $state(-1);
  /** Requests matching the filters. */
  total = $derived(this.pages.total);
  current = $derived<QueueItem | null>(itemAt(this.pages, this.cursor) ?? null);
  currentId = $derived(this.current?.id ?? null);

  #api: Api;
  #gen = 0;
  #inflight = new Set<number>();
  /** Queries as the approver types, one at a time, the last text winning ([`coalesced`]). */
  #search: () => Promise<void>;

  constructor(api: Api) {
    this.#api = api;
    this.#search = coalesced(() => this.load());
  }

  /** Reloads from the first page (or the cursor's page), keeping the cursor on `keepId` if it is still there. */
  async load(keepId: string | null = this.currentId) {
    const g = ++this.#gen;
    this.#inflight = new Set();
    const page = this.cursor > 0 ? Math.floor(this.cursor / PAGE_SIZE) : 0;
    try {
      const v = await this.#api.queue(toQuery(this.filter, page * PAGE_SIZE, PAGE_SIZE));
      if (g !== this.#gen) return;
      const total = v.totalMatching;
      const prevIndex = this.cursor;
      this.view = v;
      this.pages = withPage(emptyPages(PAGE_SIZE), page, v.items, total);
      this.error = null;
      const still = keepId ? indexOfId(this.pages, keepId) : -1;
      this.cursor = still >= 0 ? still : total === 0 ? -1 : Math.min(Math.max(prevIndex, 0), total - 1);
    } catch (e) {
      if (g === this.#gen) this.error = toAppError(e);
    }
  }

  /** Fetches the pages of `[start, end)` that are not loaded (the list calls it as it scrolls). */
  ensureRange(start: number, end: number) {
    const g = this.#gen;
    for (const n of missingPages(this.pages, start, end)) {
      if (this.#inflight.has(n)) continue;
      this.#inflight.add(n);
      this.#api.queue(toQuery(this.filter, n * PAGE_SIZE, PAGE_SIZE)).then(
        (v) => {
          if (g !== this.#gen) return;
          this.#inflight.delete(n);
          this.pages = withPage(this.pages, n, v.items, v.totalMatching);
        },
        (e) => {
          this.#inflight.delete(n);
          if (g === this.#gen) this.error = toAppError(e);
        },
      );
    }
  }

  /** The filters changed: reload (`typing`: through the one-at-a-time search runner). */
  filterChanged(typing = false) {
    if (typing) void this.#search();
    else void this.load();
  }

  /** Clears every filter and reloads. */
  clearFilters() {
    this.filter = { ...NO_FILTER };
    this.filterChanged();
  }

  /** Moves the cursor past the rows of `decided` still listed (they wait in the outbox), at most one step each. */
  skip(decided: readonly string[]) {
    let guard = 0;
    while (this.current && decided.includes(this.current.id) && this.cursor < this.total - 1 && guard++ < decided.length) this.cursor += 1;
  }

  /**
   * The row of request `id`, loading what it takes: with the filters cleared if they hide it,
   * then page by page. `-1` when it is not in the pending queue; `null` when a load failed
   * (`error` says why).
   */
  async find(id: string): Promise<number | null> {
    let i = indexOfId(this.pages, id);
    if (i < 0 && isFiltered(this.filter)) {
      this.filter = { ...NO_FILTER };
      await this.load(id);
      i = indexOfId(this.pages, id);
    }
    for (let n = 0; i < 0 && n * PAGE_SIZE < this.total; n++) {
      if (this.pages.pages.has(n)) continue;
      try {
        const v = await this.#api.queue(toQuery(this.filter, n * PAGE_SIZE, PAGE_SIZE));
        this.pages = withPage(this.pages, n, v.items, v.totalMatching);
      } catch (e) {
        this.error = toAppError(e);
        return null;
      }
      i = indexOfId(this.pages, id);
    }
    return i;
  }
}
