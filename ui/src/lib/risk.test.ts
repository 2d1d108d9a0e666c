import { afterEach, describe, expect, it } from 'vitest';
import { differingAttributes, sharedAttributes, riskLabel, riskSentence, riskSeverity, rowMark, skipReason, worstSeverity } from './risk';
import { setLanguageOverride } from './i18n';
import type { Risk } from '../bindings/Risk';
import type { SkippedClaim } from '../bindings/SkippedClaim';

const row = (submitted: unknown, willBeWritten: unknown, inDirectory: unknown = null) => ({ submitted, willBeWritten, inDirectory });

describe('side-by-side highlighting', () => {
  it('marks each kind of difference', () => {
    expect(rowMark(row('Ada', 'Ada'))).toBe('same');
    expect(rowMark(row('Ada', 'Ada', 'Ada'))).toBe('same');
    expect(rowMark(row('Ada', 'Ada', 'Adeline'))).toBe('conflict');
    expect(rowMark(row('x', null))).toBe('skipped');
    expect(rowMark(row(null, 'Guest'))).toBe('new');
    expect(rowMark(row(' Lovelace ', 'Lovelace'))).toBe('same');
    expect(rowMark(row('lastName-value', 'other'))).toBe('changed');
    expect(rowMark(row('', ''))).toBe('same');
  });

  it('compares structured values by their JSON', () => {
    const ids = [{ issuer: 'facebook.com', issuerAssignedId: '1' }];
    expect(rowMark(row(ids, [{ issuer: 'facebook.com', issuerAssignedId: '1' }]))).toBe('same');
    expect(rowMark(row(ids, [{ issuer: 'facebook.com', issuerAssignedId: '2' }]))).toBe('changed');
  });

  it('ranks risks', () => {
    expect(riskSeverity('existingAccount')).toBe('high');
    expect(riskSeverity('noPlan')).toBe('high');
    expect(riskSeverity('domainMismatch')).toBe('medium');
    expect(riskSeverity('freeMail')).toBe('medium');
    expect(riskSeverity('somethingElse')).toBe('low');
    expect(worstSeverity(['freeMail', 'existingAccount'])).toBe('high');
    expect(worstSeverity([])).toBeNull();
    expect(riskLabel('domainMismatch')).toBe('Domain ≠ company');
  });

  it('finds the attributes that differ across compared requests', () => {
    const d = differingAttributes([
      { city: 'Oslo', country: 'NO', jobTitle: 'CTO' },
      { city: 'Oslo', country: 'SE' },
      { city: 'Oslo', country: 'NO', jobTitle: 'CTO' },
    ]);
    expect([...d].sort()).toEqual(['country', 'jobTitle']);
  });

  it('finds the values at least two compared requests share (not what differs between people)', () => {
    const s = sharedAttributes([
      { mail: 'Ada@Contoso.com', sponsor: 'bo@x.se', city: 'Oslo', jobTitle: '' },
      { mail: 'ada@contoso.com', sponsor: 'eve@x.se', city: 'Bergen', jobTitle: '' },
      { mail: 'zed@contoso.com', sponsor: 'eve@x.se', city: null },
    ]);
    expect([...s].sort()).toEqual(['mail', 'sponsor']);
  });
});

// The reviewer crate's sentences (crates/guestlist-reviewer/src/detail.rs,
// `risks_are_data_with_the_same_english_sentence`; crates/guestlist-core/src/plan.rs
// `SkipReason::english`): the English catalogue words the same facts identically.
const RISKS: Risk[] = [
  {
    kind: 'existingAccount',
    message: 'An account already exists (found by mail): ada@contoso.onmicrosoft.com — approving links it and writes nothing.',
    params: { kind: 'existingAccount', foundBy: 'mail', account: 'ada@contoso.onmicrosoft.com' },
  },
  {
    kind: 'freeMail',
    message: "gmail.com is a free e-mail provider: the address says nothing about the requester's organisation.",
    params: { kind: 'freeMail', domain: 'gmail.com' },
  },
  {
    kind: 'domainMismatch',
    message: 'The e-mail domain woodgrove.com does not look like the company "Fabrikam".',
    params: { kind: 'domainMismatch', domain: 'woodgrove.com', company: 'Fabrikam' },
  },
  {
    kind: 'noPlan',
    message: 'Approval would fail: provisioning settings: tenant_domain is empty',
    params: { kind: 'noPlan', problem: { code: 'tenantDomainEmpty' } },
  },
  {
    kind: 'noPlan',
    message: 'Approval would fail: provisioning settings: extensions_app_id must be 32 hex digits without dashes, got "nothex"',
    params: { kind: 'noPlan', problem: { code: 'extensionsAppId', value: 'nothex' } },
  },
];

const SKIPS: SkippedClaim[] = [
  { claim: 'objectId', code: 'notWritable', reason: 'not a writable property of a Graph user' },
  {
    claim: 'extension_x_Sponsor',
    code: 'noExtensionsAppId',
    reason: 'its extensions app id is not 32 hex digits and no extensions_app_id is configured',
  },
  { claim: 'extension_', code: 'extensionForm', reason: 'not of the form extension_<extensions-app-id>_<Name>' },
  { claim: 'extension_a_b-c', code: 'extensionName', reason: "the attribute name must be letters, digits and '_'" },
];

describe('risk and skip sentences in the UI language', () => {
  afterEach(() => setLanguageOverride(null));

  it('English is word for word what the reviewer crate writes', () => {
    setLanguageOverride('en');
    for (const r of RISKS) expect(riskSentence(r)).toBe(r.message);
    for (const s of SKIPS) expect(skipReason(s)).toBe(s.reason);
  });

  it('French and Swedish word the same facts', () => {
    setLanguageOverride('fr');
    expect(riskSentence(RISKS[0])).toBe(
      'Un compte existe déjà (trouvé par e-mail) : ada@contoso.onmicrosoft.com — approuver le relie et n’écrit rien.',
    );
    expect(riskSentence(RISKS[2])).toBe('Le domaine e-mail woodgrove.com ne ressemble pas à la société « Fabrikam ».');
    expect(riskSentence(RISKS[3])).toBe('L’approbation échouerait : paramètres de provisionnement : tenant_domain est vide');
    expect(skipReason(SKIPS[2])).toBe('pas de la forme extension_<extensions-app-id>_<Name>');
    setLanguageOverride('sv');
    expect(riskSentence(RISKS[1])).toBe(
      'gmail.com är en gratis e-posttjänst: adressen säger ingenting om den sökandes organisation.',
    );
    expect(skipReason(SKIPS[3])).toBe("attributnamnet får bara innehålla bokstäver, siffror och '_'");
    for (const lang of ['fr', 'sv'] as const) {
      setLanguageOverride(lang);
      for (const r of RISKS) expect(riskSentence(r)).not.toBe(r.message);
      for (const s of SKIPS) expect(skipReason(s)).not.toBe(s.reason);
    }
  });

  it('facts this UI does not know show the English sentence', () => {
    setLanguageOverride('fr');
    expect(riskSentence({ kind: 'freeMail', message: 'As sent' } as unknown as Risk)).toBe('As sent');
    expect(skipReason({ claim: 'x', code: null, reason: 'stored before codes' })).toBe('stored before codes');
  });
});
