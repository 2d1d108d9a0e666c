// The "If you approve" sentence is composed from the plan's facts in the UI's language; in
// English it reads as the reviewer crate's own sentence (detail.rs `if_approved_sentence`).
import { afterEach, describe, expect, it } from 'vitest';
import { setLanguageOverride } from './i18n';
import { ifApprovedText, twoApproverText } from './plan';
import type { ApprovalRequest, IfApprovedFacts } from './types';

const facts = (over: Partial<IfApprovedFacts> = {}): IfApprovedFacts => ({
  kind: 'userCreated',
  name: 'Linnéa Öberg',
  providerLabel: 'Google',
  resumesAccount: null,
  existingAccount: null,
  properties: 6,
  sendsInvitation: false,
  sponsor: null,
  directoryChecked: true,
  grants: [],
  ...over,
});

afterEach(() => setLanguageOverride(null));

describe('the If you approve sentence', () => {
  it('English matches the crate’s sentence', () => {
    setLanguageOverride('en');
    expect(ifApprovedText(facts())).toBe('Creates guest Linnéa Öberg (Google sign-in) · writes 6 properties · then approved on the server');
    expect(ifApprovedText(facts({ kind: 'existingAccount', existingAccount: 'l@x.se', directoryChecked: false }))).toBe(
      'Links the existing account l@x.se · nothing is written in the directory · then approved on the server',
    );
    expect(ifApprovedText(facts({ kind: 'invitation', providerLabel: 'Entra ID', sendsInvitation: true, sponsor: 's@x.se', directoryChecked: false }))).toBe(
      'Directory not checked yet: approval looks the person up first and links an existing account if there is one. Otherwise: Invites Linnéa Öberg as a guest (Entra ID) · sends the invitation e-mail · then sets 6 properties · sponsor s@x.se · then approved on the server',
    );
    expect(ifApprovedText(facts({ kind: 'invitation', resumesAccount: 'u-1', properties: 1 }))).toBe(
      'Resumes the earlier attempt: the account u-1 it created exists · sets 1 property · then approved on the server',
    );
    expect(ifApprovedText(facts({ kind: null }))).toBe('Approval would fail: no provisioning plan can be made (see below).');
  });

  it('an external tenant’s approval writes nothing: the person finishes, Entra creates the account (en, fr, sv)', () => {
    const f = facts({ kind: 'userFlow', directoryChecked: false, sponsor: 's@x.se' });
    setLanguageOverride('en');
    expect(ifApprovedText(f)).toBe('Approve lets Linnéa Öberg finish their sign-up; Entra creates their account then');
    setLanguageOverride('fr');
    expect(ifApprovedText(f)).toBe('Approuver permet à Linnéa Öberg de terminer son inscription ; Entra crée alors son compte');
    setLanguageOverride('sv');
    expect(ifApprovedText(f)).toBe('Godkänn låter Linnéa Öberg slutföra sin registrering; Entra skapar kontot då');
  });

  it('names the grants: group, app role, sponsor (you), with the id when no name is known', () => {
    const grants: IfApprovedFacts['grants'] = [
      { kind: 'group', id: 'g-1', name: 'Partners-Fabrikam', resourceId: null, role: null, approver: false },
      { kind: 'appRole', id: 'r-1', name: 'Contoso Portal', resourceId: 'sp-1', role: 'Reader', approver: false },
      { kind: 'group', id: 'g-2', name: null, resourceId: null, role: null, approver: false },
      { kind: 'sponsor', id: 'oid-ada', name: 'Ada Lovelace', resourceId: null, role: null, approver: true },
    ];
    setLanguageOverride('en');
    expect(ifApprovedText(facts({ grants }))).toBe(
      'Creates guest Linnéa Öberg (Google sign-in) · writes 6 properties · added to group Partners-Fabrikam · app role Reader in Contoso Portal · added to group g-2 · sponsor Ada Lovelace (you) · then approved on the server',
    );
    setLanguageOverride('fr');
    expect(ifApprovedText(facts({ grants: grants.slice(0, 1) }))).toContain('ajouté au groupe Partners-Fabrikam');
    setLanguageOverride('sv');
    expect(ifApprovedText(facts({ grants: grants.slice(1, 2) }))).toContain('approllen Reader i Contoso Portal');
  });

  it('French and Swedish', () => {
    setLanguageOverride('fr');
    expect(ifApprovedText(facts())).toBe('Crée l’invité Linnéa Öberg (connexion Google) · écrit 6 propriétés · puis approuvée sur le serveur');
    setLanguageOverride('sv');
    expect(ifApprovedText(facts({ kind: 'invitation', properties: 1 }))).toBe(
      'Bjuder in Linnéa Öberg som gäst (Google) · inget inbjudningsmejl · sätter sedan 1 egenskap · sedan godkänd på servern',
    );
  });
});

describe('the two-approver rule (issue 14 §3)', () => {
  const request = (over: Partial<ApprovalRequest>): ApprovalRequest => ({
    id: '1',
    key: { email: 'l@x.se', issuer: 'google.com', issuerAssignedId: 'g1' },
    state: { status: 'pending' },
    version: 1,
    createdAt: '2025-01-01T00:00:00Z',
    updatedAt: '2025-01-01T00:00:00Z',
    attempts: 1,
    claims: {},
    grants: [],
    approvalsRequired: 2,
    approvals: [],
    ...over,
  });
  const ada = { by: { kind: 'user', id: 'oid-ada', name: 'Ada Lovelace' }, at: '2025-01-01T00:01:00Z' };
  const sentence = 'Creates guest Linnéa Öberg (Google sign-in) · writes 6 properties · then approved on the server';

  it('the first approval records itself only; the second runs the plan', () => {
    setLanguageOverride('en');
    expect(twoApproverText(request({}), sentence)).toBe(
      'Approve records the first of two approvals; Graph writes wait for a second approver',
    );
    expect(twoApproverText(request({ approvals: [ada] }), sentence)).toBe(
      `Second of two approvals (the first by Ada Lovelace): ${sentence}`,
    );
    expect(twoApproverText(request({ approvalsRequired: 1 }), sentence)).toBe(sentence);
    setLanguageOverride('fr');
    expect(twoApproverText(request({}), sentence)).toMatch(/^Approuver enregistre la première de deux approbations/);
    setLanguageOverride('sv');
    expect(twoApproverText(request({}), sentence)).toMatch(/^Godkänn registrerar det första av två godkännanden/);
  });
});
