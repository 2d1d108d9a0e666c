// The request under the cursor: its side-by-side detail (loaded 60 ms after the cursor settles,
// so holding `j` does not fire a call per row), its history panel, and the decision guard.
import { tick } from 'svelte';
import type { Api } from './api';
import type { HistoryEntry, RequestDetail } from './types';
import { DECISION_GUARD_MS } from './decisions';
import { toAppError, type AppError } from './format';

/** How long the cursor must rest on a row before its detail is loaded, in ms. */
export const DETAIL_DEBOUNCE_MS = 60;

/**
 * After a decision, Approve and Deny ignore input until the next detail has rendered plus
 * [`DECISION_GUARD_MS`]: a double-click or `a a` can never decide the next person.
 */
export class DecisionGuard {
  /** Decisions are ignored now (reactive). */
  on = $state(false);
  #armed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Starts the guard (a decision was just made). */
  arm() {
    clearTimeout(this.#timer);
    this.on = true;
    this.#armed = true;
  }

  /** The next detail is on screen: keep ignoring decisions a little longer, then accept. */
  async shown() {
    if (!this.#armed) return;
    this.#armed = false;
    await tick();
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => (this.on = false), DECISION_GUARD_MS);
  }

  /** Nothing is left to protect (no next request, the decision failed): accept at once. */
  release() {
    this.#armed = false;
    this.on = false;
  }
}

/** The detail and history of the request under the cursor (reactive fields). */
export class DetailState {
  detail = $state<RequestDetail | null>(null);
  error = $state<AppError | null>(null);
  historyOpen = $state(false);
  history = $state<HistoryEntry[] | null>(null);
  historyError = $state<AppError | null>(null);

  #api: Api;
  #guard: DecisionGuard;
  #seq = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(api: Api, guard: DecisionGuard) {
    this.#api = api;
    this.#guard = guard;
  }

  /** The cursor is on `id` (`null`: on nothing): loads its detail once the cursor rests there. */
  follow(id: string | null) {
    clearTimeout(this.#timer);
    if (!id) {
      this.detail = null;
      return;
    }
    if (this.detail?.request.id === id) return;
    this.#timer = setTimeout(() => void this.load(id), DETAIL_DEBOUNCE_MS);
  }

  /** Loads the detail of `id` (an answer for a request the cursor has left is dropped). */
  async load(id: string) {
    const seq = ++this.#seq;
    try {
      const d = await this.#api.detail(id);
      if (seq !== this.#seq) return;
      this.detail = d;
      this.error = null;
      void this.#guard.shown();
      this.history = null;
      this.historyError = null;
      if (this.historyOpen) void this.loadHistory(id);
    } catch (e) {
      if (seq === this.#seq) {
        this.detail = null;
        this.error = toAppError(e);
        // Nothing to decide on screen: the guard has nothing left to protect.
        this.#guard.release();
      }
    }
  }

  /** Loads the history of `id` (kept only while `id` is still the request shown). */
  async loadHistory(id: string) {
    try {
      const h = await this.#api.history(id);
      if (this.detail?.request.id === id) this.history = h;
    } catch (e) {
      this.historyError = toAppError(e);
    }
  }

  /** Opens or closes the history panel (loading it on open). */
  toggleHistory() {
    this.historyOpen = !this.historyOpen;
    if (this.historyOpen && this.detail) {
      this.history = null;
      this.historyError = null;
      void this.loadHistory(this.detail.request.id);
    }
  }
}
