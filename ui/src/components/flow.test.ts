// @vitest-environment jsdom
// Issue 17: the queue and the detail say which user flow a request came through, and an
// external tenant's request says what approval does there (nothing in the directory; the
// person finishes signing up), in the approver's language.
import { flushSync, mount, unmount } from 'svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import Reviewer from './Reviewer.svelte';
import { setLanguageOverride } from '../lib/i18n';
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
  setLanguageOverride(null);
});

const all = (id: string) => Array.from(document.querySelectorAll(`[data-testid="${id}"]`)) as HTMLElement[];
const $ = (id: string) => document.querySelector(`[data-testid="${id}"]`) as HTMLElement | null;

const item = (id: string, name: string, flow?: 'external' | 'workforce'): QueueItem => ({
  id,
  displayName: name,
  email: `${id}@x.example`,
  emailDomain: 'x.example',
  company: null,
  identityProvider: 'mail',
  ...(flow ? { flow } : {}),
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

function api(): Api {
  // The first is external; the second has no flow (a server before flows): workforce.
  const items = [item('e1', 'Linnéa Öberg', 'external'), item('w1', 'Karin Åkesson')];
  const detail = async (id: string) =>
    ({
      request: { id, state: { status: 'pending' }, claims: {}, flow: 'external' },
      rows: [],
      identity: { provider: 'mail', label: 'Email', issuer: null, issuerAssignedId: null, signInType: null },
      plan: { kind: 'userFlow', lookups: [], writes: [], skipped: [], grants: [] },
      planError: null,
      skipped: [],
      directory: { checked: false, matches: [], error: null },
      risks: [],
      outbox: null,
      ifApproved: 'Approve lets Linnéa Öberg finish their sign-up; Entra creates their account then',
      ifApprovedFacts: {
        kind: 'userFlow',
        name: 'Linnéa Öberg',
        providerLabel: 'Email',
        resumesAccount: null,
        existingAccount: null,
        properties: 0,
        sendsInvitation: false,
        sponsor: null,
        directoryChecked: false,
        grants: [],
      },
      sponsor: null,
      reason: null,
      invitation: null,
    }) as unknown as RequestDetail;
  return {
    queue: async (): Promise<QueueView> => ({
      items,
      totalMatching: items.length,
      totalPending: items.length,
      byProvider: [],
      byDomain: [],
      lastSyncAt: null,
    }),
    detail,
    approve: vi.fn(),
    undo: vi.fn(),
    deny: vi.fn(),
    history: async () => [],
    sync: vi.fn(),
    onQueueChanged: async () => () => {},
  } as unknown as Api;
}

describe('the user flow in the queue and the detail', () => {
  for (const [lang, external, workforce, sentence] of [
    ['en', 'External', 'Workforce', 'Approve lets Linnéa Öberg finish their sign-up; Entra creates their account then'],
    ['fr', 'Externe', 'Personnel', 'Approuver permet à Linnéa Öberg de terminer son inscription ; Entra crée alors son compte'],
    ['sv', 'Extern', 'Personal', 'Godkänn låter Linnéa Öberg slutföra sin registrering; Entra skapar kontot då'],
  ] as const) {
    it(`shows the flow badge and the external plan sentence (${lang})`, async () => {
      setLanguageOverride(lang);
      mounted = mount(Reviewer, {
        target: document.body,
        props: { api: api(), status: null, now: new Date(), onsettings: () => {}, onsignout: () => {} },
      });
      await vi.waitFor(() => expect(all('queue-row-flow').length).toBe(2), { timeout: 2000 });
      flushSync();
      const [e, w] = all('queue-row-flow');
      expect([e.dataset.flow, e.textContent]).toEqual(['external', external]);
      expect([w.dataset.flow, w.textContent]).toEqual(['workforce', workforce]);
      await vi.waitFor(() => expect($('detail-flow')).not.toBeNull(), { timeout: 2000 });
      expect($('detail-flow')!.dataset.flow).toBe('external');
      expect($('if-approved-text')!.textContent).toBe(sentence);
    });
  }
});
