// @vitest-environment jsdom
// Grants on approval (issue 14 §1) on screen: the "If you approve" sentence names the group,
// the app role and the sponsor, and an approval whose account exists but a grant was refused
// shows "Account created · 1 of 3 grants failed" with Retry, in the UI's language.
import { describe, expect, it } from 'vitest';
import { setLanguageOverride } from '../lib/i18n';
import type { IfApprovedFacts, QueueItem, RequestDetail } from '../lib/types';
import { mountDetail, unmountShown } from '../test/dom';
import { queueItem } from '../test/fixtures';

const $ = (id: string) => document.querySelector(`[data-testid="${id}"]`) as HTMLElement | null;
const text = (id: string) => ($(id)?.textContent ?? '').replace(/\s+/g, ' ').trim();

const item: QueueItem = queueItem('r1', 'Linnéa Öberg', {
  email: 'linnea@fabrikam.com',
  emailDomain: 'fabrikam.com',
  outboxState: 'failed',
});

const facts: IfApprovedFacts = {
  kind: 'userCreated',
  name: 'Linnéa Öberg',
  providerLabel: 'Google',
  resumesAccount: null,
  existingAccount: null,
  properties: 5,
  sendsInvitation: false,
  sponsor: null,
  directoryChecked: true,
  grants: [
    { kind: 'group', id: 'g-1', name: 'Partners-Fabrikam', resourceId: null, role: null, approver: false },
    { kind: 'appRole', id: 'r-1', name: 'Contoso Portal', resourceId: 'sp-1', role: 'Reader', approver: false },
    { kind: 'sponsor', id: 'oid-ada', name: 'Ada Lovelace', resourceId: null, role: null, approver: true },
  ],
};

const detail = (failedGrants: boolean) =>
  ({
    request: { id: 'r1', state: { status: 'pending' }, claims: {}, grants: [] },
    rows: [],
    identity: { provider: 'google.com', label: 'Google', issuer: 'google.com', issuerAssignedId: 'g', signInType: 'federated' },
    plan: { kind: 'userCreated', lookups: [], writes: [], skipped: [], grants: [] },
    planError: null,
    skipped: [],
    directory: { checked: true, matches: [], error: null },
    risks: [],
    outbox: failedGrants
      ? {
          requestId: 'r1',
          kind: 'approve',
          state: 'failed',
          label: 'Linnéa Öberg <linnea@fabrikam.com>',
          queuedAt: '2026-01-01T00:00:00Z',
          attempts: 1,
          directoryObjectId: 'u-42',
          how: 'userCreated',
          writeStarted: true,
          grantsTotal: 3,
          grantsDone: 2,
          undoUntil: null,
          updatedAt: '2026-01-01T00:00:05Z',
          lastError: { code: 'graph.Request_ResourceNotFound', message: 'Account created · 1 of 3 grants failed: Graph 404' },
        }
      : null,
    ifApproved: 'x',
    ifApprovedFacts: facts,
    sponsor: null,
    reason: null,
    invitation: null,
  }) as unknown as RequestDetail;

const show = (d: RequestDetail) => mountDetail(d, item);

describe('grants in the detail', () => {
  it('the plan sentence names group, app role and sponsor', () => {
    setLanguageOverride('en');
    show(detail(false));
    expect(text('if-approved-text')).toBe(
      'Creates guest Linnéa Öberg (Google sign-in) · writes 5 properties · added to group Partners-Fabrikam · app role Reader in Contoso Portal · sponsor Ada Lovelace (you) · then approved on the server',
    );
    expect($('partial-grants')).toBeNull();
  });

  it('a refused grant is a partial state with Retry, in English and Swedish', () => {
    setLanguageOverride('en');
    show(detail(true));
    expect(text('partial-grants')).toBe(
      'Account created · 1 of 3 grants failed u-42 · Retry runs only the missing ones; the account is not created again.',
    );
    expect($('partial-state')).toBeNull();
    expect($('retry-button')).not.toBeNull();
    unmountShown();
    setLanguageOverride('sv');
    show(detail(true));
    expect(text('partial-grants')).toContain('Kontot skapat · 1 av 3 behörigheter misslyckades');
  });
});
