import { describe, expect, it } from 'vitest';
import { decisionTargets, summarise, unfinishedCount } from './decisions';
import type { DecisionOutcome, OutboxItem } from './types';

const outcome = (id: string, o: DecisionOutcome['outcome'], error: DecisionOutcome['error'] = null): DecisionOutcome => ({
  id,
  outcome: o,
  state: o === 'done' ? 'reported' : o === 'queued' ? 'queued' : o === 'conflict' ? 'conflict' : 'failed',
  directoryObjectId: null,
  how: null,
  error,
  current: null,
});

describe('decisions', () => {
  it('act on the selection, else on the cursor', () => {
    expect(decisionTargets(['a', 'b'], 'c')).toEqual(['a', 'b']);
    expect(decisionTargets([], 'c')).toEqual(['c']);
    expect(decisionTargets([], null)).toEqual([]);
  });

  it('summarise a clean batch', () => {
    const s = summarise('Approved', [outcome('1', 'done'), outcome('2', 'done')]);
    expect(s.text).toBe('Approved 2 requests');
    expect(s.tone).toBe('ok');
  });

  it('say when decisions are queued offline', () => {
    const s = summarise('Denied', [outcome('1', 'queued', { code: 'network.offline', message: 'x' })]);
    expect(s.queued).toBe(1);
    expect(s.tone).toBe('warn');
    expect(s.text).toContain('queued');
  });

  it('show the first failure with its code and request-id', () => {
    const s = summarise('Approved', [
      outcome('1', 'done'),
      outcome('2', 'failed', {
        code: 'graph.Authorization_RequestDenied',
        message: 'Insufficient privileges',
        graph: { status: 403, code: 'Authorization_RequestDenied', message: 'Insufficient privileges', requestId: 'r-123456789', date: null },
      }),
      outcome('3', 'conflict', { code: 'request.already_decided', message: 'already approved' }),
    ]);
    expect(s).toMatchObject({ done: 1, failed: 1, conflicts: 1, tone: 'error' });
    expect(s.text).toBe(
      'Approved 1 request · 1 already decided by someone else · 1 failed · graph.Authorization_RequestDenied: Insufficient privileges (request-id r-123456789)',
    );
  });
});

describe('sign-out', () => {
  const item = (state: OutboxItem['state']): OutboxItem => ({
    requestId: state,
    kind: 'approve',
    state,
    label: state,
    queuedAt: '2026-01-01T00:00:00Z',
    attempts: 1,
    directoryObjectId: null,
    lastError: null,
  });
  it('counts the decisions a wipe keeps (not sent yet)', () => {
    const all = (['queued', 'claimed', 'invited', 'provisioned', 'reported', 'conflict', 'failed'] as const).map(item);
    expect(unfinishedCount(all)).toBe(4);
    expect(unfinishedCount([])).toBe(0);
  });
});
