// @vitest-environment jsdom
// A guestlist://request/<id> link: the one the app was started with is taken once the signed-in
// screen listens, and opens that request full width; a link arriving later (the shell's
// `open-request` event, from a second launch) opens its request too.
import { mount, unmount } from 'svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import Reviewer from './Reviewer.svelte';
import type { Api } from '../lib/api';
import type { QueueItem, QueueView, RequestDetail } from '../lib/types';

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
