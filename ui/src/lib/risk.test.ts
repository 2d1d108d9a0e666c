import { describe, expect, it } from 'vitest';
import { differingAttributes, sharedAttributes, riskLabel, riskSeverity, rowMark, worstSeverity } from './risk';

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
