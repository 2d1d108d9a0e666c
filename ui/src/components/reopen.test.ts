// @vitest-environment jsdom
// Reopening a denial in the real signed-in screen with a fake Api (issue 12 item 6): an admin
// opens a denial from "Done today", its history offers Reopen, the dialog says what it means and
// wants a reason, Enter sends it with the version seen; errors show as remedies; offline it
// says a reopen needs the network; an approver without the Admin role never sees the action.
import { flushSync } from 'svelte';
import { describe, expect, it, vi } from 'vitest';
import type { Api } from '../lib/api';
import type { ApprovalRequest, AppStatus, OutboxItem, RequestDetail } from '../lib/types';
import { canReopen, decidedRow, isAdmin } from '../lib/reopen.svelte';
import { byTestId as $, mountReviewer } from '../test/dom';
import { queueView } from '../test/fixtures';

const now = new Date();

const denial: OutboxItem = {
  requestId: 'r7',
  kind: 'deny',
  state: 'reported',
  label: 'Linnéa Öberg <linnea@fabrikam.se>',
  queuedAt: now.toISOString(),
  attempts: 1,
  directoryObjectId: null,
  how: null,
  writeStarted: false,
  grantsTotal: 0,
  grantsDone: 0,
  undoUntil: null,
  updatedAt: now.toISOString(),
  lastError: null,
};

const request = (status: 'denied' | 'pending', version: number) =>
  ({
    id: 'r7',
    key: { email: 'linnea@fabrikam.se', issuer: 'google.com', issuerAssignedId: 'g1' },
    state: status === 'denied' ? { status, reason: 'spam' } : { status },
    version,
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    attempts: 1,
    claims: { displayName: 'Linnéa Öberg', email: 'linnea@fabrikam.se' },
  }) as unknown as ApprovalRequest;

const detailOf = (r: ApprovalRequest) =>
  ({
    request: r,
    rows: [],
    identity: { provider: 'google.com', label: 'Google', issuer: 'google.com', issuerAssignedId: 'g1', signInType: 'federated' },
    plan: null,
    planError: null,
    skipped: [],
    directory: { checked: false, matches: [], error: null },
    risks: [],
    outbox: denial,
    ifApproved: '',
    ifApprovedFacts: null,
    sponsor: null,
    reason: 'spam',
    invitation: null,
  }) as unknown as RequestDetail;

function status(roles: string[], online = true): AppStatus {
  return {
    session: { username: 'ada@x', name: 'Ada', objectId: 'o', tenantId: null, roles, apiTokenExpiresAt: now.toISOString() },
    online,
    syncing: false,
    lastSyncAt: null,
    pendingCount: 0,
    outbox: [denial],
    lastError: null,
  };
}

function fakeApi() {
  const reopen = vi.fn(async (_id: string, _version: number, _reason: string) => request('pending', 4));
  const queue = vi.fn(
    async () => queueView([]),
  );
  const api = {
    queue,
    detail: async () => detailOf(request('denied', 3)),
    history: async () => [
      { at: now.toISOString(), action: 'denied', actor: { kind: 'approver', id: 'o', name: 'Bo' }, version: 3, detail: { reason: 'spam' } },
    ],
    reopen,
    onQueueChanged: async () => () => {},
  } as unknown as Api;
  return { api, reopen, queue };
}

async function openDenial(roles: string[], online = true) {
  const f = fakeApi();
  mountReviewer(f.api, status(roles, online), now);
  await vi.waitFor(() => expect($('done-today-button')).not.toBeNull());
  $('done-today-button')!.click();
  flushSync();
  $('done-open')!.click();
  await vi.waitFor(() => expect($('history-entry')).not.toBeNull(), { timeout: 2000 });
  return f;
}

function typeReason(text: string) {
  const area = $('reopen-reason') as HTMLTextAreaElement;
  area.value = text;
  area.dispatchEvent(new Event('input', { bubbles: true }));
  flushSync();
  return area;
}

describe('Reopen a denial', () => {
  it('an admin reopens from the history: the consequence, a required reason, Enter sends it with the version seen', async () => {
    const { reopen, queue } = await openDenial(['Approver', 'Admin']);
    expect($('detail-status')!.textContent).toBeTruthy();
    $('reopen-button')!.click();
    flushSync();
    expect($('reopen-dialog')).not.toBeNull();
    expect($('reopen-consequence')!.textContent).toBe(
      'Linnéa Öberg will be able to finish sign-up once an approver approves: the request returns to the queue as pending.',
    );
    const area = $('reopen-reason') as HTMLTextAreaElement;
    expect(document.activeElement).toBe(area);
    expect(($('reopen-confirm') as HTMLButtonElement).disabled).toBe(true);
    typeReason('  Denied by mistake  ');
    const calls = queue.mock.calls.length;
    area.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
    await vi.waitFor(() => expect($('reopen-dialog')).toBeNull());
    expect(reopen).toHaveBeenCalledWith('r7', 3, 'Denied by mistake');
    expect($('toast')!.textContent).toContain('Linnéa Öberg is pending again');
    expect($('reopen-button')).toBeNull();
    expect(queue.mock.calls.length).toBeGreaterThan(calls);
  });

  it('a refusal keeps the dialog open with a remedy', async () => {
    const { reopen } = await openDenial(['Admin']);
    reopen.mockRejectedValueOnce({ code: 'request.not_denied', message: 'this request is not denied any more' });
    $('reopen-button')!.click();
    flushSync();
    typeReason('mistake');
    $('reopen-confirm')!.click();
    await vi.waitFor(() => expect($('reopen-error')).not.toBeNull());
    expect($('reopen-error')!.getAttribute('role')).toBe('alert');
    expect($('reopen-error')!.dataset.code).toBe('request.not_denied');
    expect($('reopen-error')!.textContent).toContain('no longer denied');
    expect($('reopen-dialog')).not.toBeNull();
    $('reopen-cancel')!.click();
    flushSync();
    expect($('reopen-dialog')).toBeNull();
  });

  it('offline the dialog says a reopen needs the network and cannot be sent', async () => {
    const { reopen } = await openDenial(['Admin'], false);
    $('reopen-button')!.click();
    flushSync();
    expect($('reopen-offline')!.textContent).toContain('needs the network');
    typeReason('mistake');
    expect(($('reopen-confirm') as HTMLButtonElement).disabled).toBe(true);
    expect(reopen).not.toHaveBeenCalled();
  });

  it('an approver without the Admin role sees the history but no Reopen', async () => {
    await openDenial(['Approver']);
    expect($('history-panel')).not.toBeNull();
    expect($('reopen-button')).toBeNull();
  });

  it('who may reopen what', () => {
    const admin = status(['Admin']).session;
    expect(isAdmin(admin)).toBe(true);
    expect(isAdmin(status(['Approver']).session)).toBe(false);
    expect(isAdmin(null)).toBe(false);
    expect(canReopen(admin, detailOf(request('denied', 3)))).toBe(true);
    expect(canReopen(admin, detailOf(request('pending', 3)))).toBe(false);
    const row = decidedRow(detailOf(request('denied', 3)), denial.label);
    expect([row.displayName, row.email, row.emailDomain, row.version]).toEqual(['Linnéa Öberg', 'linnea@fabrikam.se', 'fabrikam.se', 3]);
  });
});
