// Test data the UI tests share: queue rows, a queue page and a pending request's detail as the
// reviewer (the `Api`) answers them.
import type { QueueItem, QueueView, RequestDetail } from '../lib/types';

/**
 * A pending queue row for request `id`, named `displayName`, with the address `<id>@x.example`
 * unless `overrides` say otherwise: one attempt, one hour old, no outbox entry, not free-mail,
 * no other requests from the same person.
 */
export function queueItem(id: string, displayName: string, overrides: Partial<QueueItem> = {}): QueueItem {
  return {
    id,
    displayName,
    email: `${id}@x.example`,
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
    ...overrides,
  };
}

/**
 * A queue page holding `items`, all of them matching; `totalPending` (default: as many as
 * `items`) pending in all; no facets and never synced.
 */
export function queueView(items: QueueItem[], totalPending: number = items.length): QueueView {
  return { items, totalMatching: items.length, totalPending, byProvider: [], byDomain: [], lastSyncAt: null };
}

/**
 * The detail of pending request `id` from a Google identity: no claims, no rows, an empty
 * `userCreated` plan, an empty directory check, no risks and no outbox entry.
 */
export function pendingDetail(id: string): RequestDetail {
  return {
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
  } as unknown as RequestDetail;
}
