// @vitest-environment jsdom
// Issue 17: the queue and the detail say which user flow a request came through, and an
// external tenant's request says what approval does there (nothing in the directory; the
// person finishes signing up), in the approver's language.
import { flushSync } from 'svelte';
import { describe, expect, it, vi } from 'vitest';
import { CATALOGUES, setLanguageOverride } from '../lib/i18n';
import type { Api } from '../lib/api';
import type { QueueItem, RequestDetail } from '../lib/types';
import { allByTestId as all, byTestId as $, mountReviewer } from '../test/dom';
import { queueItem, queueView } from '../test/fixtures';

const item = (id: string, name: string, flow?: 'external' | 'workforce', identityProvider = 'mail'): QueueItem =>
  queueItem(id, name, { identityProvider, ...(flow ? { flow } : {}) });

/** An external tenant's request as the reviewer builds it; `identity` and `rows` as given. */
type Shown = { identity?: Record<string, unknown>; rows?: unknown[]; provider?: string };

function api(shown: Shown = {}): Api {
  // The first is external; the second has no flow (a server before flows): workforce.
  const items = [item('e1', 'Linnéa Öberg', 'external', shown.provider), item('w1', 'Karin Åkesson')];
  const detail = async (id: string) =>
    ({
      request: { id, state: { status: 'pending' }, claims: {}, flow: 'external' },
      rows: shown.rows ?? [],
      identity: shown.identity ?? { provider: 'mail', label: 'Email', issuer: null, issuerAssignedId: null, signInType: null },
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
    queue: async () => queueView(items),
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
      mountReviewer(api());
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

// Issue 17: an external tenant's local e-mail account (e-mail + password or e-mail one-time
// passcode) is the provider `email`: its own label in every language, the identity it signs in
// with, no invitation wording and no "not written" mark (approval writes nothing; Entra creates
// the account when the person finishes signing up).
describe('an external tenant\'s local e-mail account in the detail', () => {
  const row = (attribute: string, submitted: string) => ({
    attribute,
    claim: attribute,
    property: null,
    submitted,
    willBeWritten: null,
    inDirectory: null,
  });
  const rows = [row('displayName', 'Linnéa Öberg'), row('city', 'Umeå')];
  const mountWith = async (shown: Shown) => {
    mountReviewer(api(shown));
    await vi.waitFor(() => expect($('detail-provider')).not.toBeNull(), { timeout: 2000 });
    flushSync();
  };
  for (const [lang, label, notWritten, invitation] of [
    ['en', 'Email (external tenant)', 'not written', /invitation/i],
    ['fr', 'E-mail (locataire externe)', 'non écrit', /invitation/i],
    ['sv', 'E-post (extern klient)', 'skrivs inte', /inbjudan/i],
  ] as const) {
    it(`shows the e-mail provider, its identity, no invitation and no "not written" (${lang})`, async () => {
      setLanguageOverride(lang);
      await mountWith({
        provider: 'email',
        rows,
        identity: {
          provider: 'email',
          label: 'Email (external tenant)',
          issuer: 'woodgrove.onmicrosoft.com',
          issuerAssignedId: 'e1@x.example',
          signInType: 'email',
        },
      });
      expect($('detail-provider')!.textContent).toBe(label);
      expect($('detail-provider')!.className).toContain('email');
      const badges = Array.from(document.querySelectorAll('[data-testid="queue-row"] .badge.email')).map((b) => b.textContent);
      expect(badges).toEqual([label]);
      const identity = $('identity-block')!;
      expect(identity.dataset.provider).toBe('email');
      expect(identity.textContent).toContain('woodgrove.onmicrosoft.com');
      expect(identity.textContent).toContain('e1@x.example');
      const marks = all('attribute-row').map((r) => r.dataset.mark);
      expect(marks).toEqual(['same', 'same']);
      for (const cell of document.querySelectorAll('[data-testid="attribute-row"] td.write')) {
        expect(cell.textContent!.trim()).toBe('—');
        expect(cell.textContent).not.toContain(notWritten);
      }
      expect($('detail')!.textContent).not.toMatch(invitation);
      // Nothing is written, so no claim is "skipped" either, and no Graph call is planned.
      expect($('none-skipped')!.textContent).not.toBe(CATALOGUES[lang]['detail.noneSkipped']);
      expect($('none-skipped')!.textContent).toBe(CATALOGUES[lang]['detail.noneSkippedExternal']);
      expect($('no-graph-calls')!.textContent).toBe(CATALOGUES[lang]['detail.noGraphCallsExternal']);
    });
  }

  it('says Entra creates the account, not that approval invites, for an external request with no identity', async () => {
    await mountWith({ rows });
    // The default identity above has no issuer: the sentence of a request without `identities`.
    expect($('identity-block')!.textContent).toContain('Entra creates the account when the person finishes signing up');
    expect($('detail')!.textContent).not.toMatch(/invitation/i);
  });
});
