// @vitest-environment jsdom
// A guestlist://request/<id> link: the one the app was started with is taken once the signed-in
// screen listens, and opens that request full width; a link arriving later (the shell's
// `open-request` event, from a second launch) opens its request too.
import { flushSync, mount, unmount } from 'svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import Reviewer from './Reviewer.svelte';
import type { Api } from '../lib/api';
import type { AppStatus, QueueItem, QueueView, RequestDetail } from '../lib/types';

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
const $ = (sel: string) => document.querySelector(sel) as HTMLElement | null;

const item = (n: number): QueueItem => ({
  id: `r${n}`,
  displayName: `Person ${n}`,
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

function fakeApi(opened: string | null) {
  const items = Array.from({ length: 4 }, (_, n) => item(n));
  let shell: ((id: string | null) => void) | null = null;
  const takeOpenedRequest = vi.fn(async () => opened);
  const api = {
    queue: async (): Promise<QueueView> => ({ items, totalMatching: 4, totalPending: 4, byProvider: [], byDomain: [], lastSyncAt: null }),
    detail: async (id: string) =>
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
      }) as unknown as RequestDetail,
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
  mounted = mount(Reviewer, {
    target: document.body,
    props: { api, status: null, now: new Date(), onsettings: () => {}, onsignout: () => {} },
  });
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
      queue: async (): Promise<QueueView> => ({ items, totalMatching: 2, totalPending: 2, byProvider: [], byDomain: [], lastSyncAt: null }),
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
    mounted = mount(Reviewer, {
      target: document.body,
      props: { api, status, now: new Date(), onsettings: () => {}, onsignout: () => {} },
    });
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
      return { items: shown, totalMatching: shown.length, totalPending: shown.length, byProvider: [], byDomain: [], lastSyncAt: null };
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
