// Approve / deny: which requests a key press acts on, and what to tell the approver afterwards.

import { remedy, toAppError, type AppError } from './format';
import { t } from './i18n';
import type { DecisionOutcome, OutboxItem } from './types';

/** The requests a decision acts on: the selection if there is one, else the request under the cursor. */
export function decisionTargets(selected: string[], cursorId: string | null): string[] {
  if (selected.length > 0) return [...selected];
  return cursorId ? [cursorId] : [];
}

/** Above this many requests, a bulk decision asks once before it is queued. */
export const BULK_CONFIRM_ABOVE = 5;

/** After a decision, Approve/Deny ignore input until the next detail has rendered, plus this (ms). */
export const DECISION_GUARD_MS = 400;

/** The name part of an outbox label (`Linnéa Öberg <linnea@x.se>` → `Linnéa Öberg`). */
export function personName(label: string): string {
  const m = /^(.*?)\s*<[^>]*>\s*$/.exec(label);
  const name = (m ? m[1] : label).trim();
  return name || label;
}

/** What the Approve button says: exactly who it approves. */
export function approveLabel(selected: number, name: string): string {
  return selected > 0 ? t('counts.approveSelected', { count: selected }) : t('detail.approve', { name });
}

/** What the Deny button says. */
export function denyLabel(selected: number, name: string): string {
  return selected > 0 ? t('counts.denySelected', { count: selected }) : t('detail.deny', { name });
}

/** Seconds left in an undo window (`undoUntil`, RFC 3339), at least 0. */
export function secondsLeft(undoUntil: string | null | undefined, now: number = Date.now()): number {
  if (!undoUntil) return 0;
  const t = Date.parse(undoUntil);
  return Number.isFinite(t) ? Math.max(0, Math.ceil((t - now) / 1000)) : 0;
}

/** What happened to one person's decision, in a few words. */
export function whatHappened(
  o: { outcome: DecisionOutcome['outcome']; how: DecisionOutcome['how']; error: DecisionOutcome['error']; undoUntil?: string | null },
  kind: 'approve' | 'deny',
): string {
  switch (o.outcome) {
    case 'done':
      if (kind === 'deny') return t('decision.denied');
      if (o.how === 'invitation') return t('decision.invited');
      if (o.how === 'existingAccount') return t('decision.linked');
      // An external tenant's request (issue 17): no guest is created; Entra creates the
      // customer account when the person comes back and finishes signing up.
      if (o.how === 'userFlow') return t('decision.userFlow');
      return t('decision.created');
    case 'queued':
      return o.undoUntil ? t('decision.waitingUndo') : t('decision.queuedOffline');
    case 'conflict':
      return o.error ? t('decision.alreadyDecidedWhy', { why: remedy(toAppError(o.error)).sentence }) : t('decision.alreadyDecided');
    default:
      return o.error ? t('decision.failedWhy', { why: remedy(toAppError(o.error)).sentence }) : t('decision.failed');
  }
}

/** What happened to a batch of decisions, for the toast. */
export interface DecisionSummary {
  done: number;
  queued: number;
  conflicts: number;
  failed: number;
  errors: AppError[];
  text: string;
  tone: 'ok' | 'warn' | 'error';
  /** Requests whose decision is still in its undo window (the toast offers Undo). */
  undoable: string[];
}

/** Summarises the outcomes of `approve` / `deny` into one line that names the people, in the UI's language. */
export function summarise(verb: 'Approved' | 'Denied', outcomes: DecisionOutcome[], online = true): DecisionSummary {
  let done = 0;
  let queued = 0;
  let conflicts = 0;
  let failed = 0;
  const errors: AppError[] = [];
  const undoable: string[] = [];
  const kind = verb === 'Approved' ? 'approve' : 'deny';
  for (const o of outcomes) {
    if (o.outcome === 'done') done += 1;
    else if (o.outcome === 'queued') queued += 1;
    else if (o.outcome === 'conflict') conflicts += 1;
    else failed += 1;
    if (o.outcome === 'queued' && o.undoUntil) undoable.push(o.id);
    if (o.outcome !== 'done' && o.error && !(o.outcome === 'queued' && o.undoUntil)) errors.push(toAppError(o.error));
  }
  const named = (list: DecisionOutcome[], max = 3) => {
    const names = list.slice(0, max).map((o) => personName(o.label || o.id)).join(', ');
    return list.length > max ? t('toast.namesMore', { names, count: list.length - max }) : names;
  };
  let text: string;
  if (undoable.length === outcomes.length && outcomes.length > 0) {
    const secs = Math.max(...outcomes.map((o) => secondsLeft(o.undoUntil)));
    text = t(kind === 'approve' ? 'toast.approving' : 'toast.denying', { names: named(outcomes), secs });
    if (!online) text += ` · ${t('decision.queuedOffline')}`;
  } else if (outcomes.length === 1) {
    const o = outcomes[0];
    text = t('toast.personWhat', { name: personName(o.label || o.id), what: whatHappened(o, kind) });
  } else {
    const parts: string[] = [];
    const by = (f: (o: DecisionOutcome) => boolean) => outcomes.filter(f);
    const d = by((o) => o.outcome === 'done');
    if (d.length) parts.push(t(kind === 'approve' ? 'toast.approvedNames' : 'toast.deniedNames', { names: named(d) }));
    const q = by((o) => o.outcome === 'queued');
    if (q.length) parts.push(t('toast.queuedNames', { names: named(q) }));
    const c = by((o) => o.outcome === 'conflict');
    if (c.length) parts.push(t('toast.conflictNames', { names: named(c) }));
    const f = by((o) => o.outcome === 'failed');
    if (f.length) parts.push(t('toast.failedNames', { names: named(f) }));
    if (errors.length && (failed || conflicts)) parts.push(remedy(errors[0]).sentence);
    text = parts.join(' · ') || t('toast.nothing');
  }
  return {
    done,
    queued,
    conflicts,
    failed,
    errors,
    text,
    tone: failed ? 'error' : (queued && !undoable.length) || conflicts || !online ? 'warn' : 'ok',
    undoable,
  };
}

/** The toast for a decision that finished after its undo window (seen in the status's outbox). */
export function finishedText(item: OutboxItem): { text: string; tone: 'ok' | 'warn' | 'error' } {
  const name = personName(item.label);
  const outcome = item.state === 'reported' ? 'done' : item.state === 'conflict' ? 'conflict' : item.state === 'failed' ? 'failed' : 'queued';
  const tone = outcome === 'done' ? 'ok' : outcome === 'failed' ? 'error' : 'warn';
  const what = whatHappened({ outcome, how: item.how, error: item.lastError, undoUntil: null }, item.kind);
  const text =
    outcome === 'done'
      ? t(item.kind === 'approve' ? 'toast.approvedWhat' : 'toast.deniedWhat', { name, what })
      : t('toast.personWhat', { name, what });
  return { text, tone };
}

/** Decisions finished today (local time), newest first: the "Done today" list. */
export function doneToday(outbox: OutboxItem[], now: Date): OutboxItem[] {
  const finished = new Set(['reported', 'conflict', 'failed']);
  const day = now.toDateString();
  return outbox
    .filter((o) => finished.has(o.state) && new Date(o.updatedAt ?? o.queuedAt).toDateString() === day)
    .sort((a, b) => Date.parse(b.updatedAt ?? b.queuedAt) - Date.parse(a.updatedAt ?? a.queuedAt));
}

/** Outbox items not finished yet (sign-out keeps them even when it wipes the cache). */
export function unfinishedCount(outbox: OutboxItem[]): number {
  const finished = new Set(['reported', 'conflict', 'failed']);
  return outbox.filter((o) => !finished.has(o.state)).length;
}
