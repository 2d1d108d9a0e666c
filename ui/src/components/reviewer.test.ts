// @vitest-environment jsdom
// The signed-in screen mounted for real with a fake Api: decisions cannot slip (a second `a`
// while the next person's detail appears is ignored, key auto-repeat never decides), the button
// names whom it approves, a bulk decision above the threshold asks once, and the toast offers
// Undo while the decision waits.
import { flushSync, mount, unmount } from 'svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import Reviewer from './Reviewer.svelte';
import type { Api } from '../lib/api';
import type { DecisionOutcome, QueueItem, QueueView, RequestDetail } from '../lib/types';

// jsdom has no layout: the virtual list's ResizeObserver observes nothing.
globalThis.ResizeObserver ??= class {
  observe() {}
  unobserve() {}
  disconnect() {}
} as unknown as typeof ResizeObserver;

let mounted: Record<string, unknown> | null = null;
afterEach(() => {
  if (mounted) unmount(mounted);
  mounted = null;
  document.body.innerHTML = '';
});

const $ = (id: string) => document.querySelector(`[data-testid="${id}"]`) as HTMLElement | null;
const press = (k: string, init: KeyboardEventInit = {}) => {
  window.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true, ...init }));
  flushSync();
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const people = ['Linnéa Öberg', 'Karin Åkesson', 'Göran Nyström', 'Ada One', 'Ada Two', 'Ada Three', 'Ada Four'];
const item = (n: number): QueueItem => ({
  id: `r${n}`,
  displayName: people[n],
  email: `p${n}@x.example`,
  emailDomain: 'x.example',
  company: null,
  identityProvider: 'google.com',
  createdAt: '2026-01-01T00:00:00Z',
  ageHours: 1,
  attempts: 1,
  version: 1,
  outboxState: null,
  freeMail: false,
  samePerson: 1,
  personAttempts: 1,
  personProviders: 1,
});

function fakeApi(count = 3) {
  let items = Array.from({ length: count }, (_, n) => item(n));
  const approve = vi.fn(async (ids: string[]): Promise<DecisionOutcome[]> => {
    items = items.filter((i) => !ids.includes(i.id));
    return ids.map((id) => ({
      id,
      outcome: 'queued',
      state: 'queued',
      directoryObjectId: null,
      how: null,
      error: null,
      current: null,
      label: `${people[Number(id.slice(1))]} <${id}@x.example>`,
      undoUntil: new Date(Date.now() + 5000).toISOString(),
      grantsFailed: 0,
    }));
  });
  const undo = vi.fn(async (ids: string[]) => ids.map((id) => ({ id, undone: true, state: null })));
  const detail = async (id: string) =>
    ({
      request: { id, state: { status: 'pending' }, claims: {} },
      rows: [],
      identity: { provider: 'google.com', label: 'Google', issuer: 'google.com', issuerAssignedId: 'x', signInType: 'federated' },
      plan: { kind: 'userCreated', lookups: [], writes: [], skipped: [] },
      planError: null,
      skipped: [],
      directory: { checked: true, matches: [], error: null },
      risks: [],
      outbox: null,
      ifApproved: 'Creates guest',
      sponsor: null,
      reason: null,
      invitation: null,
    }) as unknown as RequestDetail;
  const api = {
    queue: async (): Promise<QueueView> => ({
      items,
      totalMatching: items.length,
      totalPending: items.length,
      byProvider: [],
      byDomain: [],
      lastSyncAt: null,
    }),
    detail,
    approve,
    undo,
    deny: vi.fn(),
    history: async () => [],
    sync: vi.fn(),
    onQueueChanged: async () => () => {},
  } as unknown as Api;
  return { api, approve, undo };
}

async function open(count = 3) {
  const f = fakeApi(count);
  mounted = mount(Reviewer, {
    target: document.body,
    props: { api: f.api, status: null, now: new Date(), onsettings: () => {}, onsignout: () => {} },
  });
  await vi.waitFor(() => expect($('approve-button')).not.toBeNull(), { timeout: 2000 });
  return f;
}

describe('Reviewer decisions', () => {
  it('names the person, and `a a` 150 ms apart approves only that person', async () => {
    const { approve } = await open();
    expect($('approve-button')!.textContent).toContain('Approve Linnéa Öberg');
    press('a');
    await sleep(150);
    press('a');
    await sleep(150);
    press('a', { repeat: true });
    await vi.waitFor(() => expect($('detail-name')?.textContent).toBe('Karin Åkesson'), { timeout: 2000 });
    press('a'); // the next detail just rendered: still inside the guard
    expect(approve).toHaveBeenCalledTimes(1);
    expect(approve).toHaveBeenCalledWith(['r0']);
    expect($('toast')!.textContent).toContain('Approving Linnéa Öberg in 5 s');
    expect($('undo-button')).not.toBeNull();
    // After the guard the next person can be approved on purpose.
    await sleep(500);
    await vi.waitFor(() => expect(($('approve-button') as HTMLButtonElement).disabled).toBe(false));
    press('a');
    expect(approve).toHaveBeenCalledTimes(2);
    expect(approve).toHaveBeenLastCalledWith(['r1']);
  });

  it('key auto-repeat never decides', async () => {
    const { approve } = await open();
    press('a', { repeat: true });
    press('a', { repeat: true });
    expect(approve).not.toHaveBeenCalled();
  });

  it('says "Approve N selected" and asks once above the threshold', async () => {
    const { approve } = await open(7);
    for (let n = 0; n < 6; n++) {
      press('x');
      press('j');
    }
    await vi.waitFor(() => expect($('approve-button')!.textContent).toContain('Approve 6 selected'));
    press('a');
    expect(approve).not.toHaveBeenCalled();
    expect($('bulk-confirm')).not.toBeNull();
    $('bulk-confirm-approve')!.click();
    flushSync();
    await vi.waitFor(() => expect(approve).toHaveBeenCalledTimes(1));
    expect(approve.mock.calls[0][0]).toHaveLength(6);
  });

  it('Undo cancels the waiting decision', async () => {
    const { undo } = await open();
    press('a');
    await vi.waitFor(() => expect($('undo-button')).not.toBeNull());
    $('undo-button')!.click();
    await vi.waitFor(() => expect(undo).toHaveBeenCalledWith(['r0']));
    await vi.waitFor(() => expect($('toast')!.textContent).toContain('Undone'));
  });
});
