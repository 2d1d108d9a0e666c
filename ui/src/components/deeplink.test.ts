// @vitest-environment jsdom
// A guestlist://request/<id> link: the one the app was started with is taken once the signed-in
// screen listens, and opens that request full width; a link arriving later (the shell's
// `open-request` event, from a second launch) opens its request too.
import { flushSync } from 'svelte';
import { describe, expect, it, vi } from 'vitest';
import type { Api } from '../lib/api';
import type { AppStatus, QueueItem, QueueView, RequestDetail } from '../lib/types';
import { mountReviewer } from '../test/dom';
import { pendingDetail, queueItem, queueView } from '../test/fixtures';

const $ = (sel: string) => document.querySelector(sel) as HTMLElement | null;

const item = (n: number): QueueItem => queueItem(`r${n}`, `Person ${n}`, { email: `p${n}@x.example` });

function fakeApi(opened: string | null) {
  const items = Array.from({ length: 4 }, (_, n) => item(n));
  let shell: ((id: string | null) => void) | null = null;
  const takeOpenedRequest = vi.fn(async () => opened);
  const api = {
    queue: async () => queueView(items),
    detail: async (id: string) => pendingDetail(id),
    history: async () => [],
    approve: vi.fn(),
    deny: vi.fn(),
    undo: vi.fn(),
    sync: vi.fn(),
    onQueueChanged: async () => () => {},
    onOpenRequest: async (cb: (id: string | null) => void) => ((shell = cb), () => (shell = null)),
    takeOpenedRequest,
  } as unknown as Api;
  return { api, takeOpenedRequest, link: (id: string) => shell?.(id) };
}

function open(api: Api) {
  mountReviewer(api);
}

describe('deep links', () => {
  it('opens the request the app was started with, once the screen listens', async () => {
    const f = fakeApi('r2');
    open(f.api);
    await vi.waitFor(() => expect($('[data-testid="detail"][data-id="r2"]')).not.toBeNull(), { timeout: 2000 });
    expect($('[data-testid="reviewer"]')!.getAttribute('data-mode')).toBe('open');
    expect(f.takeOpenedRequest).toHaveBeenCalledTimes(1);
  });

  it('without one it stays on the queue; a later link opens its request', async () => {
    const f = fakeApi(null);
    open(f.api);
    await vi.waitFor(() => expect($('[data-testid="detail"][data-id="r0"]')).not.toBeNull(), { timeout: 2000 });
    expect($('[data-testid="reviewer"]')!.getAttribute('data-mode')).toBe('list');
    await vi.waitFor(() => expect(f.takeOpenedRequest).toHaveBeenCalledTimes(1));
    f.link('r3');
    await vi.waitFor(() => expect($('[data-testid="detail"][data-id="r3"]')).not.toBeNull(), { timeout: 2000 });
    expect($('[data-testid="reviewer"]')!.getAttribute('data-mode')).toBe('open');
  });
});

// A link to a request the queue no longer lists (decided elsewhere): its decided view opens,
// read through the Api's detail (the app fetches it from the approval API), with its history and,
// for a denial and an admin, Reopen. Offline it says this needs the network.
describe('deep links to a decided request', () => {
  const denied = (id: string) =>
    ({
      request: {
        id,
        key: { email: 'linnea@fabrikam.se', issuer: 'google.com', issuerAssignedId: 'g1' },
        state: { status: 'denied', reason: 'spam' },
        version: 3,
        createdAt: '2026-01-01T00:00:00Z',
        updatedAt: '2026-01-01T00:00:00Z',
        attempts: 1,
        claims: { displayName: 'Linnéa Öberg', email: 'linnea@fabrikam.se' },
      },
      rows: [],
      identity: { provider: 'google.com', label: 'Google', issuer: 'google.com', issuerAssignedId: 'g1', signInType: 'federated' },
      plan: null,
      planError: null,
      skipped: [],
      directory: { checked: false, matches: [], error: null },
      risks: [],
      outbox: null,
      ifApproved: '',
      sponsor: null,
      reason: 'spam',
      invitation: null,
    }) as unknown as RequestDetail;

  function linkApi(detail: (id: string) => Promise<RequestDetail>) {
    const items = Array.from({ length: 2 }, (_, n) => item(n));
    const history = vi.fn(async () => [
      { at: '2026-01-02T00:00:00Z', action: 'denied', actor: { kind: 'approver', id: 'o', name: 'Grace Hopper' }, version: 3, detail: { reason: 'spam' } },
    ]);
    const reopen = vi.fn();
    const api = {
      queue: async () => queueView(items),
      detail: vi.fn(detail),
      history,
      reopen,
      approve: vi.fn(),
      deny: vi.fn(),
      undo: vi.fn(),
      sync: vi.fn(),
      onQueueChanged: async () => () => {},
      onOpenRequest: async () => () => {},
      takeOpenedRequest: async () => 'gone1',
    } as unknown as Api;
    return { api, history, reopen };
  }

  function openAs(api: Api, roles: string[]) {
    const status = {
      session: { username: 'ada@x', name: 'Ada', objectId: 'o', tenantId: null, roles, apiTokenExpiresAt: new Date().toISOString() },
      online: true,
      syncing: false,
      lastSyncAt: null,
      pendingCount: 2,
      outbox: [],
      lastError: null,
    } as unknown as AppStatus;
    mountReviewer(api, status);
  }

  it('opens a denial decided elsewhere with its history, and Reopen for an admin', async () => {
    const f = linkApi(async (id) => denied(id));
    openAs(f.api, ['Approver', 'Admin']);
    await vi.waitFor(() => expect($('[data-testid="history-entry"]')).not.toBeNull(), { timeout: 2000 });
    expect($('[data-testid="reviewer"]')!.getAttribute('data-mode')).toBe('decided');
    expect($('[data-testid="detail"]')!.getAttribute('data-id')).toBe('gone1');
    expect(f.history).toHaveBeenCalledWith('gone1');
    expect($('[data-testid="history-panel"]')!.textContent).toContain('Grace Hopper');
    expect($('[data-testid="toast"]')).toBeNull();
    $('[data-testid="reopen-button"]')!.click();
    flushSync();
    expect($('[data-testid="reopen-consequence"]')!.textContent).toContain('Linnéa Öberg');
  });

  it('an approver without Admin sees the denial and its history, without Reopen', async () => {
    const f = linkApi(async (id) => denied(id));
    openAs(f.api, ['Approver']);
    await vi.waitFor(() => expect($('[data-testid="history-entry"]')).not.toBeNull(), { timeout: 2000 });
    expect($('[data-testid="reviewer"]')!.getAttribute('data-mode')).toBe('decided');
    expect($('[data-testid="reopen-button"]')).toBeNull();
  });

  it('a request the server still has pending (not synced yet) opens in the queue', async () => {
    let fetched = false;
    const items = [item(0), { ...item(9), id: 'gone1' }];
    const f = linkApi(async (id) => {
      fetched = true;
      const d = denied(id);
      return { ...d, request: { ...d.request, state: { status: 'pending' } } } as unknown as RequestDetail;
    });
    // The detail call cached it: the queue lists it from then on.
    (f.api as { queue: unknown }).queue = async (): Promise<QueueView> => {
      const shown = fetched ? items : items.slice(0, 1);
      return queueView(shown);
    };
    openAs(f.api, ['Admin']);
    await vi.waitFor(() => expect($('[data-testid="reviewer"]')!.getAttribute('data-mode')).toBe('open'), { timeout: 2000 });
    await vi.waitFor(() => expect($('[data-testid="detail"][data-id="gone1"]')).not.toBeNull(), { timeout: 2000 });
    expect($('[data-testid="toast"]')).toBeNull();
  });

  it('offline (not cached, the API unreachable) it says this needs the network', async () => {
    const f = linkApi(async () => Promise.reject({ code: 'network.offline', message: 'cannot reach the approval API' }));
    openAs(f.api, ['Admin']);
    await vi.waitFor(() => expect($('[data-testid="toast"]')).not.toBeNull(), { timeout: 2000 });
    expect($('[data-testid="toast"]')!.textContent).toContain('needs the network');
    expect($('[data-testid="toast"]')!.textContent).not.toContain('cannot reach the approval API');
    expect($('[data-testid="reviewer"]')!.getAttribute('data-mode')).toBe('list');
    expect(f.history).not.toHaveBeenCalled();
  });
});
