// @vitest-environment jsdom
// The detail is in the UI's language, down to the lines that used to be English literals: the
// partial-state line and its remedy, the directory check, the invitation block, risk chips and
// the outbox state. Mounted for real (Detail.svelte) with a request whose approval half-failed.
import { describe, expect, it } from 'vitest';
import { setLanguageOverride } from '../lib/i18n';
import type { QueueItem, RequestDetail } from '../lib/types';
import { mountDetail, unmountShown } from '../test/dom';
import { queueItem } from '../test/fixtures';

const $ = (id: string) => document.querySelector(`[data-testid="${id}"]`) as HTMLElement;
const text = (id: string) => ($(id).textContent ?? '').replace(/\s+/g, ' ').trim();

const item: QueueItem = queueItem('r1', 'Linnéa Öberg', {
  email: 'linnea@contoso.example',
  emailDomain: 'contoso.example',
  identityProvider: 'entra',
  outboxState: 'failed',
});

const detail = (matches: { foundBy: string; user: Record<string, unknown> }[]) =>
  ({
    request: { id: 'r1', state: { status: 'pending' }, claims: {} },
    rows: [],
    identity: { provider: 'entra', label: 'Entra ID', issuer: null, issuerAssignedId: null, signInType: null },
    plan: { kind: 'invitation', lookups: [], writes: [], skipped: [] },
    planError: null,
    skipped: [{ claim: 'objectId', code: 'notWritable', reason: 'not a writable property of a Graph user' }],
    directory: { checked: true, matches, error: null },
    risks: [
      {
        kind: 'domainMismatch',
        message: 'The e-mail domain contoso.example does not look like the company "Fabrikam".',
        params: { kind: 'domainMismatch', domain: 'contoso.example', company: 'Fabrikam' },
      },
    ],
    outbox: {
      requestId: 'r1',
      kind: 'approve',
      state: 'failed',
      label: 'Linnéa Öberg <linnea@contoso.example>',
      queuedAt: '2026-01-01T00:00:00Z',
      attempts: 2,
      directoryObjectId: 'u-42',
      how: 'invitation',
      writeStarted: true,
      undoUntil: null,
      updatedAt: '2026-01-01T00:00:05Z',
      lastError: {
        code: 'graph.error',
        message: 'Insufficient privileges',
        requestId: 'g-rid-42',
        graph: { status: 403, code: 'Authorization_RequestDenied', message: 'Insufficient privileges', requestId: 'g-rid-42', date: null },
      },
    },
    ifApproved: 'Invites linnea@contoso.example',
    sponsor: null,
    reason: null,
    invitation: { sendInvitationMessage: true, redirectUrl: 'https://myapps.example', invitedUserType: 'Guest' },
  }) as unknown as RequestDetail;

const show = (d: RequestDetail) => mountDetail(d, item);

describe('Detail in the UI language', () => {
  it('English stays as it was', () => {
    setLanguageOverride('en');
    show(detail([]));
    expect(text('partial-state')).toBe('Invited (account u-42), then a later step was refused: nothing is created twice when you Retry.');
    expect(text('directory-check')).toBe('No existing account for this identity or e-mail.');
    expect(text('invitation-email')).toBe('Microsoft sends the invitation e-mail');
    expect(text('detail-risk')).toContain('The e-mail domain contoso.example does not look like the company "Fabrikam".');
    expect(text('skipped-claims')).toBe('objectId not a writable property of a Graph user');
    // The outbox error: a remedy chosen by Graph's own code, the request id from its field.
    expect($('outbox-error').dataset.code).toBe('graph.error');
    expect(text('outbox-error')).toContain('You need the User Administrator role');
    expect(text('outbox-error')).toContain('graph.error: Insufficient privileges (request-id g-rid-42)');
  });

  it('French: partial state, remedy, directory check, invitation, risk and outbox state', () => {
    setLanguageOverride('fr');
    show(detail([{ foundBy: 'identity', user: {} }, { foundBy: 'mail', user: {} }]));
    expect(text('partial-state')).toBe(
      'Invité (compte u-42), puis une étape suivante a été refusée : rien n’est créé deux fois quand vous réessayez.',
    );
    expect(text('outbox-error')).toContain('Il vous faut le rôle Administrateur d’utilisateurs');
    expect(text('directory-check')).toBe('Compte existant trouvé par identité et e-mail.');
    expect(text('invitation-email')).toBe('Microsoft envoie l’e-mail d’invitation');
    expect(text('detail-risk')).toContain('Domaine ≠ société');
    expect(text('detail-risk')).toContain('Le domaine e-mail contoso.example ne ressemble pas à la société « Fabrikam ».');
    expect(text('skipped-claims')).toBe('objectId pas une propriété modifiable d’un utilisateur Graph');
    expect(text('detail-outbox')).toBe('approbation : échec');
  });

  it('an escalated request carries the Escalated badge in each language, others none', () => {
    for (const [lang, label] of [['en', 'Escalated'], ['fr', 'Escaladée'], ['sv', 'Eskalerad']] as const) {
      setLanguageOverride(lang);
      const d = detail([]);
      d.request.escalatedAt = '2026-01-01T00:30:00Z';
      show(d);
      expect(text('detail-escalated')).toBe(label);
      unmountShown();
    }
    show(detail([]));
    expect($('detail-escalated')).toBeNull();
  });

  it('Swedish: directory check and partial state', () => {
    setLanguageOverride('sv');
    show(detail([]));
    expect(text('directory-check')).toBe('Inget befintligt konto för den här identiteten eller e-postadressen.');
    expect(text('partial-state')).toMatch(/^Inbjuden \(konto u-42\), sedan nekades ett senare steg/);
  });
});
