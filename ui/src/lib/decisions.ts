// Approve / deny: which requests a key press acts on, and what to tell the approver afterwards.

import { errorLine, plural, toAppError, type AppError } from './format';
import type { DecisionOutcome, OutboxItem } from './types';

/** The requests a decision acts on: the selection if there is one, else the request under the cursor. */
export function decisionTargets(selected: string[], cursorId: string | null): string[] {
  if (selected.length > 0) return [...selected];
  return cursorId ? [cursorId] : [];
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
}

/** Summarises the outcomes of `approve` / `deny` into one line. */
export function summarise(verb: 'Approved' | 'Denied', outcomes: DecisionOutcome[]): DecisionSummary {
  let done = 0;
  let queued = 0;
  let conflicts = 0;
  let failed = 0;
  const errors: AppError[] = [];
  for (const o of outcomes) {
    if (o.outcome === 'done') done += 1;
    else if (o.outcome === 'queued') queued += 1;
    else if (o.outcome === 'conflict') conflicts += 1;
    else failed += 1;
    if (o.outcome !== 'done' && o.error) errors.push(toAppError(o.error));
  }
  const parts: string[] = [];
  if (done) parts.push(`${verb} ${plural(done, 'request')}`);
  if (queued) parts.push(`${plural(queued, 'decision')} queued — sent when back online`);
  if (conflicts) parts.push(`${conflicts} already decided by someone else`);
  if (failed) parts.push(`${failed} failed`);
  if (errors.length && (failed || conflicts)) parts.push(errorLine(errors[0]));
  return {
    done,
    queued,
    conflicts,
    failed,
    errors,
    text: parts.join(' · ') || 'Nothing to do',
    tone: failed ? 'error' : queued || conflicts ? 'warn' : 'ok',
  };
}

/** Outbox items not finished yet (sign-out keeps them even when it wipes the cache). */
export function unfinishedCount(outbox: OutboxItem[]): number {
  const finished = new Set(['reported', 'conflict', 'failed']);
  return outbox.filter((o) => !finished.has(o.state)).length;
}
