import { describe, expect, it } from 'vitest';
import { approveLabel, decisionTargets, doneToday, finishedText, personName, secondsLeft, summarise, unfinishedCount } from './decisions';
import { errorDetails, remedy, toAppError } from './format';
import { setLanguageOverride } from './i18n';
import type { DecisionOutcome, OutboxItem } from './types';

const outcome = (id: string, o: DecisionOutcome['outcome'], error: DecisionOutcome['error'] = null): DecisionOutcome => ({
  id,
  outcome: o,
  state: o === 'done' ? 'reported' : o === 'queued' ? 'queued' : o === 'conflict' ? 'conflict' : 'failed',
  directoryObjectId: null,
  how: null,
  error,
  current: null,
  label: `Person ${id} <p${id}@x.example>`,
  undoUntil: null,
  grantsFailed: 0,
});

describe('decisions', () => {
  it('act on the selection, else on the cursor', () => {
    expect(decisionTargets(['a', 'b'], 'c')).toEqual(['a', 'b']);
    expect(decisionTargets([], 'c')).toEqual(['c']);
    expect(decisionTargets([], null)).toEqual([]);
  });

  it('summarise names the people and what happened to each', () => {
    const one = summarise('Approved', [{ ...outcome('1', 'done'), how: 'userCreated', label: 'Linnéa Öberg <linnea@x.se>' }]);
    expect(one.text).toBe('Linnéa Öberg: guest created');
    expect(one.tone).toBe('ok');
    const linked = summarise('Approved', [{ ...outcome('1', 'done'), how: 'existingAccount' }]);
    expect(linked.text).toBe('Person 1: linked to an existing account');
    const invited = summarise('Approved', [{ ...outcome('1', 'done'), how: 'invitation' }]);
    expect(invited.text).toBe('Person 1: invited');
    // An external tenant's approval creates no guest: the person finishes signing up (issue 17).
    const external = summarise('Approved', [{ ...outcome('1', 'done'), how: 'userFlow', label: 'Linnéa Öberg <linnea@x.se>' }]);
    expect(external.text).toBe('Linnéa Öberg: can now finish their sign-up');
    const two = summarise('Approved', [outcome('1', 'done'), outcome('2', 'done')]);
    expect(two.text).toBe('Approved Person 1, Person 2');
  });

  it('a decision in its undo window offers Undo', () => {
    const until = new Date(Date.now() + 4500).toISOString();
    const s = summarise('Approved', [{ ...outcome('1', 'queued'), undoUntil: until, label: 'Linnéa Öberg <l@x.se>' }]);
    expect(s.undoable).toEqual(['1']);
    expect(s.text).toBe('Approving Linnéa Öberg in 5 s');
    expect(s.tone).toBe('ok');
    const offline = summarise('Approved', [{ ...outcome('1', 'queued'), undoUntil: until }], false);
    expect(offline.text).toContain('queued — sent when back online');
    expect(offline.tone).toBe('warn');
  });

  it('say when decisions are queued offline', () => {
    const s = summarise('Denied', [outcome('1', 'queued', { code: 'network.offline', message: 'x' })]);
    expect(s.queued).toBe(1);
    expect(s.tone).toBe('warn');
    expect(s.text).toContain('queued');
    expect(s.undoable).toEqual([]);
  });

  it('show each failure with a plain sentence', () => {
    const s = summarise('Approved', [
      outcome('1', 'done'),
      outcome('2', 'failed', {
        code: 'graph.error',
        message: 'Insufficient privileges (request-id r-123456789)',
        graph: { status: 403, code: 'Authorization_RequestDenied', message: 'Insufficient privileges', requestId: 'r-123456789', date: null },
      }),
      outcome('3', 'conflict', { code: 'request.already_decided', message: 'already approved' }),
    ]);
    expect(s).toMatchObject({ done: 1, failed: 1, conflicts: 1, tone: 'error' });
    expect(s.text).toContain('Approved Person 1');
    expect(s.text).toContain('Person 3: already decided by someone else');
    expect(s.text).toContain('Person 2: failed');
    expect(s.text).toContain('User Administrator role');
  });

  it('the button says who it approves', () => {
    expect(approveLabel(0, 'Linnéa Öberg')).toBe('Approve Linnéa Öberg');
    expect(approveLabel(4, 'Linnéa Öberg')).toBe('Approve 4 selected');
    expect(personName('Ada Lovelace <ada@x.example>')).toBe('Ada Lovelace');
    expect(personName('ada@x.example')).toBe('ada@x.example');
    expect(secondsLeft(new Date(1000 + 4200).toISOString(), 1000)).toBe(5);
    expect(secondsLeft(null)).toBe(0);
  });
});

describe('toasts and remedies in the UI language', () => {
  const outboxItem: OutboxItem = {
    requestId: 'r1',
    kind: 'approve',
    state: 'reported',
    label: 'Ada <ada@x.example>',
    queuedAt: '2026-01-01T00:00:00Z',
    attempts: 1,
    directoryObjectId: 'u',
    how: 'userCreated',
    writeStarted: true,
    grantsTotal: 0,
    grantsDone: 0,
    undoUntil: null,
    updatedAt: '2026-01-01T00:00:05Z',
    lastError: null,
  };
  it("an external tenant's approval says the person can finish signing up, not that a guest was created", () => {
    expect(finishedText({ ...outboxItem, state: 'reported', how: 'userFlow' }).text).toBe('Approved Ada: can now finish their sign-up');
  });
  it('French and Swedish toasts name the people and what happened', () => {
    try {
      setLanguageOverride('fr');
      const one = summarise('Approved', [{ ...outcome('1', 'done'), how: 'userCreated', label: 'Linnéa Öberg <linnea@x.se>' }]);
      expect(one.text).toBe('Linnéa Öberg : invité créé');
      const until = new Date(Date.now() + 4500).toISOString();
      expect(summarise('Denied', [{ ...outcome('1', 'queued'), undoUntil: until }]).text).toBe('Refus de Person 1 dans 5 s');
      const many = summarise('Approved', [
        outcome('1', 'done'),
        outcome('2', 'done'),
        outcome('3', 'done'),
        outcome('4', 'done'),
        outcome('5', 'conflict', { code: 'request.already_decided', message: 'already approved' }),
      ]);
      expect(many.text).toBe(
        'Approuvé : Person 1, Person 2, Person 3 et 1 autre · Person 5 : déjà traité par quelqu’un d’autre · Quelqu’un d’autre a traité cette demande avant vous.',
      );
      const off = remedy({ code: 'network.offline', message: 'x' });
      expect(off.next).toBe('Vérifiez votre réseau ou votre VPN. Rien à faire dans Guestlist : il réessaie dès le retour de la connexion.');
      expect(remedy({ code: 'graph.error', message: 'bad mail', graph: { status: 400, code: 'Request_BadRequest', message: 'bad mail', requestId: null, date: null } }).sentence).toBe('Microsoft Graph a refusé la modification : bad mail');
      setLanguageOverride('sv');
      expect(remedy({ code: 'request.not_found', message: 'x' }).next).toBe('Synkronisera för att uppdatera kön.');
      expect(finishedText({ ...outboxItem, state: 'reported', how: 'invitation' }).text).toBe('Godkände Ada: inbjuden');
      expect(finishedText({ ...outboxItem, state: 'reported', how: 'userFlow' }).text).toBe('Godkände Ada: kan nu slutföra sin registrering');
      setLanguageOverride('fr');
      expect(finishedText({ ...outboxItem, state: 'reported', how: 'userFlow' }).text).toBe('Approuvé : Ada (peut maintenant terminer son inscription)');
    } finally {
      setLanguageOverride(null);
    }
  });
});

describe('errors a person can act on', () => {
  it('map codes to a sentence and a next step', () => {
    const role = remedy({
      code: 'graph.error',
      message: 'Insufficient privileges',
      graph: { status: 403, code: 'Authorization_RequestDenied', message: 'Insufficient privileges', requestId: null, date: null },
    });
    expect(role.sentence).toMatch(/User Administrator role/);
    expect(role.sentence).toMatch(/Guest Inviter is enough for Entra ID/);
    expect(remedy({ code: 'network.offline', message: 'error sending request for url (http://127.0.0.1:1)' }).sentence).toBe(
      "Guestlist can't reach the approval API or Microsoft Graph: your decisions are kept and will be sent when it's back.",
    );
    expect(remedy({ code: 'request.version_mismatch', message: 'x' }).next).toMatch(/Review/);
    expect(remedy({ code: 'test.simulated_crash', message: 'boom' }).sentence).toBe('boom');
    expect(remedy(toAppError({ code: 'weird.code', message: 'boom' })).sentence).toBe('weird.code: boom');
  });
  it('copy details carries the code, request-id and time', () => {
    const graph = { status: 503, code: 'X', message: 'no', requestId: '0123abcd-ef', date: null };
    const t = errorDetails({ code: 'graph.error', message: 'no', requestId: '0123abcd-ef', graph }, new Date('2026-01-02T03:04:05Z'));
    expect(t).toContain('code: graph.error');
    expect(t).toContain('graph-code: X (HTTP 503)');
    expect(t).toContain('request-id: 0123abcd-ef');
    expect(t).toContain('time: 2026-01-02T03:04:05.000Z');
  });
});

describe('sign-out', () => {
  const item = (state: OutboxItem['state']): OutboxItem => ({
    requestId: state,
    kind: 'approve',
    state,
    label: state,
    queuedAt: '2026-01-01T00:00:00Z',
    attempts: 1,
    directoryObjectId: null,
    how: null,
    writeStarted: false,
    grantsTotal: 0,
    grantsDone: 0,
    undoUntil: null,
    updatedAt: '2026-01-01T00:00:05Z',
    lastError: null,
  });
  it('counts the decisions a wipe keeps (not sent yet)', () => {
    const all = (['queued', 'claimed', 'invited', 'provisioned', 'reported', 'conflict', 'failed'] as const).map(item);
    expect(unfinishedCount(all)).toBe(4);
    expect(unfinishedCount([])).toBe(0);
  });
});

describe('done today', () => {
  const item = (id: string, state: OutboxItem['state'], updatedAt: string, how: OutboxItem['how'] = 'userCreated'): OutboxItem => ({
    requestId: id,
    kind: 'approve',
    state,
    label: `P${id} <p${id}@x.example>`,
    queuedAt: updatedAt,
    attempts: 1,
    directoryObjectId: 'u',
    how,
    writeStarted: true,
    grantsTotal: 0,
    grantsDone: 0,
    undoUntil: null,
    updatedAt,
    lastError: null,
  });
  it("lists today's finished decisions, newest first", () => {
    const now = new Date('2026-03-04T15:00:00');
    const list = doneToday(
      [
        item('1', 'reported', new Date('2026-03-04T09:00:00').toISOString()),
        item('2', 'queued', new Date('2026-03-04T10:00:00').toISOString()),
        item('3', 'reported', new Date('2026-03-03T10:00:00').toISOString()),
        item('4', 'failed', new Date('2026-03-04T11:00:00').toISOString()),
      ],
      now,
    );
    expect(list.map((i) => i.requestId)).toEqual(['4', '1']);
    expect(finishedText(list[1]).text).toBe('Approved P1: guest created');
    expect(finishedText(item('5', 'reported', '', 'invitation')).text).toBe('Approved P5: invited');
  });
});
