// Sending decisions from the signed-in screen: approve, deny and undo through the `Api`, their
// toasts (with Undo while the outbox holds them), and the toast of a decision that finished after
// its undo window (the outbox reports it in the status). Reviewer.svelte keeps the dialogs and
// what happens to the view after a decision (`after`).
import type { Api } from './api';
import type { DecisionOutcome, OutboxItem } from './types';
import { t as tr } from './i18n';
import { finishedText, summarise } from './decisions';
import { errorLine, toAppError } from './format';
import type { DecisionGuard } from './detail.svelte';
import type { QueueState } from './queue.svelte';
import type { Selection } from './selection.svelte';
import type { Toasts } from './toasts.svelte';

/** What a [`DecisionFlow`] works with: the screen's other state modules and callbacks. */
export interface DecisionDeps {
  q: QueueState;
  sel: Selection;
  guard: DecisionGuard;
  toasts: Toasts;
  /** Whether the app is online now (the status bar's view); decides the toast's wording. */
  online: () => boolean;
  /** After a decision was accepted: the view moves on (`ids` are the requests just decided). */
  after: (ids: string[]) => Promise<void>;
}

/** Approve, deny and undo, one at a time (`busy`, reactive), guarded by the [`DecisionGuard`]. */
export class DecisionFlow {
  /** A decision is being sent now (reactive). */
  busy = $state(false);
  // Decisions sent after their undo window: their outcome is toasted when the outbox reports it.
  #watching = new Set<string>();
  #api: Api;
  #d: DecisionDeps;

  constructor(api: Api, deps: DecisionDeps) {
    this.#api = api;
    this.#d = deps;
  }

  /** Approves `ids`; ignored while busy, while the guard is on, or for no ids. */
  approve(ids: string[]): Promise<void> {
    if (ids.length === 0 || this.busy || this.#d.guard.on) return Promise.resolve();
    return this.#send(ids, () => this.#api.approve(ids), 'Approved');
  }

  /** Denies `ids` with `reason` (shown to the person); ignored while busy or for no ids. */
  deny(ids: string[], reason: string): Promise<void> {
    if (ids.length === 0 || this.busy) return Promise.resolve();
    return this.#send(ids, () => this.#api.deny(ids, reason), 'Denied');
  }

  async #send(ids: string[], call: () => Promise<DecisionOutcome[]>, verb: 'Approved' | 'Denied') {
    const d = this.#d;
    this.busy = true;
    d.guard.arm();
    try {
      const outcomes = await call();
      const s = summarise(verb, outcomes, d.online());
      d.toasts.show(s.text, s.tone, s.undoable);
      s.undoable.forEach((id) => this.#watching.add(id));
      d.sel.drop(ids);
      await d.after(ids);
    } catch (e) {
      d.toasts.show(errorLine(toAppError(e)), 'error');
      d.guard.release();
    } finally {
      this.busy = false;
    }
  }

  /** Cancels `ids` (the toast's Undo) and reloads the queue on the first one undone. */
  async undo(ids: string[]) {
    const { toasts, q } = this.#d;
    toasts.clear();
    try {
      const res = await this.#api.undo(ids);
      ids.forEach((id) => this.#watching.delete(id));
      const late = res.filter((r) => !r.undone);
      if (late.length) toasts.show(tr('toast.tooLate', { count: late.length, state: tr(late[0].state ? `detail.outbox.${late[0].state}` : 'toast.sent') }), 'warn');
      else toasts.show(tr('toast.undone', { count: res.length }), 'ok');
      const back = res.find((r) => r.undone)?.id ?? null;
      await q.load(back ?? q.currentId);
    } catch (e) {
      toasts.show(errorLine(toAppError(e)), 'error');
    }
  }

  /** Toasts each watched decision the outbox (`items`, from the status) reports as finished. */
  finished(items: readonly OutboxItem[]) {
    for (const item of items) {
      if (!this.#watching.has(item.requestId)) continue;
      if (!['reported', 'conflict', 'failed'].includes(item.state)) continue;
      this.#watching.delete(item.requestId);
      const t = finishedText(item);
      this.#d.toasts.show(t.text, t.tone);
    }
  }
}
