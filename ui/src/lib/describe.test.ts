import { describe as suite, expect, it } from 'vitest';
import { describe } from './describe';
import type { ApprovalRequest } from './types';

const req = (claims: Record<string, unknown>): { request: ApprovalRequest } => ({
  request: {
    id: '1',
    key: { email: 'ada@contoso.com', issuer: '', issuerAssignedId: '' },
    state: { status: 'pending' },
    version: 1,
    createdAt: '2025-01-01T00:00:00Z',
    updatedAt: '2025-01-01T00:00:00Z',
    attempts: 1,
    claims,
    grants: [],
    approvalsRequired: 1,
    approvals: [],
  },
});

suite('describe', () => {
  it('prefers displayName, then given name + surname (or lastName), then the e-mail', () => {
    expect(describe(req({ email: 'a@b.c', displayName: 'Ada L' })).name).toBe('Ada L');
    expect(describe(req({ email: 'a@b.c', givenName: 'Ada', lastName: 'Lovelace' })).name).toBe('Ada Lovelace');
    expect(describe(req({})).name).toBe('ada@contoso.com');
    expect(describe(req({ email: 'a@b.c', companyName: 'Fabrikam' })).company).toBe('Fabrikam');
  });
});
