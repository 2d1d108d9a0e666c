// lib/decide.svelte.ts against a fake `Api`: one decision at a time, the guard, the toasts with
// Undo, a failure, and the toast of a decision that finishes after its undo window.
import { describe, expect, it, vi } from 'vitest';
import type { Api } from './api';
import type { DecisionOutcome, OutboxItem } from './types';
import { DecisionFlow } from './decide.svelte';
import { DecisionGuard } from './detail.svelte';
import type { QueueState } from './queue.svelte';
import { Selection } from './selection.svelte';
import { Toasts } from './toasts.svelte';

const waiting = (id: string): DecisionOutcome => ({
  id,
  outcome: 'queued',
  state: 'queued',
  directoryObjectId: null,
  how: null,
  error: null,
  current: null,
  label: `Person ${id} <${id}@x.example>`,
  undoUntil: new Date(Date.now() + 5000).toISOString(),
  grantsFailed: 0,
});

const outboxItem = (requestId: string, state: OutboxItem['state']): OutboxItem => ({
  requestId,
  kind: 'approve',
  state,
  label: `Person ${requestId} <${requestId}@x.example>`,
  queuedAt: '2026-01-01T00:00:00Z',
  attempts: 1,
  directoryObjectId: 'u1',
  how: 'userCreated',
  writeStarted: true,
  grantsTotal: 0,
  grantsDone: 0,
  undoUntil: null,
  updatedAt: '2026-01-01T00:00:05Z',
  lastError: null,
});

/** A flow over a fake `Api` whose approve waits for `release()`; every call is recorded. */
function setup() {
  let release: () => void = () => {};
  const approve = vi.fn((ids: string[]) => new Promise<DecisionOutcome[]>((r) => (release = () => r(ids.map(waiting)))));
  const deny = vi.fn(async (ids: string[]) => ids.map(waiting));
  const undo = vi.fn(async (ids: string[]) => ids.map((id) => ({ id, undone: true, state: null })));
  const api = { approve, deny, undo } as unknown as Api;
  const q = { load: vi.fn(async () => {}), currentId: 'r9' } as unknown as QueueState;
  const sel = new Selection();
  const guard = new DecisionGuard();
  const toasts = new Toasts();
  const after = vi.fn(async () => {});
  const flow = new DecisionFlow(api, { q, sel, guard, toasts, online: () => true, after });
  return { flow, approve, deny, undo, q, sel, guard, toasts, after, release: () => release() };
}

describe('DecisionFlow', () => {
  it('sends one decision at a time, toasts it with Undo and moves the view on', async () => {
    const s = setup();
    s.sel.toggle('r1');
    s.sel.toggle('r2');
    const first = s.flow.approve(['r1']);
    expect(s.flow.busy).toBe(true);
    expect(s.guard.on).toBe(true);
    // A double-click, and a deny, while the first is in flight: nothing more is sent.
    await s.flow.approve(['r1']);
    await s.flow.deny(['r1'], 'no');
    expect(s.approve).toHaveBeenCalledTimes(1);
    expect(s.deny).not.toHaveBeenCalled();
    s.release();
    await first;
    expect(s.flow.busy).toBe(false);
    expect(s.toasts.current?.undo).toEqual(['r1']);
    expect(s.toasts.current?.text).toContain('Person r1');
    expect(s.sel.ids).toEqual(['r2']);
    expect(s.after).toHaveBeenCalledWith(['r1']);
    // The guard stays on until the next detail has rendered: approving again is ignored.
    await s.flow.approve(['r2']);
    expect(s.approve).toHaveBeenCalledTimes(1);
    // A denial is not held by the guard (it has its own dialog).
    await s.flow.deny(['r2'], 'Not a partner');
    expect(s.deny).toHaveBeenCalledWith(['r2'], 'Not a partner');
    // No ids: nothing is sent.
    s.guard.release();
    await s.flow.approve([]);
    expect(s.approve).toHaveBeenCalledTimes(1);
  });

  it('a failed call toasts the error and releases the guard at once', async () => {
    const s = setup();
    s.approve.mockRejectedValueOnce({ code: 'network.offline', message: 'the approval API is unreachable' });
    await s.flow.approve(['r1']);
    expect(s.toasts.current?.tone).toBe('error');
    expect(s.guard.on).toBe(false);
    expect(s.flow.busy).toBe(false);
    expect(s.after).not.toHaveBeenCalled();
  });

  it('toasts a watched decision once when the outbox reports it, and never an undone one', async () => {
    const s = setup();
    const sent = s.flow.approve(['r1', 'r2']);
    s.release();
    await sent;
    s.toasts.clear();
    await s.flow.undo(['r2']);
    expect(s.undo).toHaveBeenCalledWith(['r2']);
    expect(s.toasts.current?.tone).toBe('ok');
    expect(s.q.load).toHaveBeenCalledWith('r2');
    s.toasts.clear();
    // Still running: no toast yet. Someone else's decision: never.
    s.flow.finished([outboxItem('r1', 'provisioned'), outboxItem('r7', 'reported')]);
    expect(s.toasts.current).toBeNull();
    s.flow.finished([outboxItem('r1', 'reported'), outboxItem('r2', 'reported')]);
    expect(s.toasts.current?.text).toBe('Approved Person r1: guest created');
    expect(s.toasts.current?.tone).toBe('ok');
    s.toasts.clear();
    s.flow.finished([outboxItem('r1', 'reported'), outboxItem('r2', 'failed')]);
    expect(s.toasts.current).toBeNull();
  });
});
