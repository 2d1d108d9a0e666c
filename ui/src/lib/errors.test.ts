// @vitest-environment jsdom
// Errors end to end in the UI: every generated `Code` has a remedy in every language, a remedy is
// chosen by the typed code (Graph's own code for `graph.error`), and the request id shown comes
// from the `requestId` field, through the state modules as a fake `Api` rejects.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Api } from './api';
import type { Code } from '../bindings/Code';
import type { RequestDetail } from './types';
import { CATALOGUES, setLanguageOverride } from './i18n';
import { errorDetails, errorLine, isCode, remedy, REMEDIES, requestIdOf, toAppError, type AppError } from './errors';
import { QueueState } from './queue.svelte';
import { ReopenFlow, reopenRemedy } from './reopen.svelte';

const graph403 = { status: 403, code: 'Authorization_RequestDenied', message: 'Insufficient privileges', requestId: 'g-1', date: null };

afterEach(() => setLanguageOverride(null));

describe('remedies by code', () => {
  it('every code has a sentence and a next step in English, French and Swedish', () => {
    const codes = Object.keys(REMEDIES) as Code[];
    expect(codes.length).toBeGreaterThan(60);
    for (const lang of Object.keys(CATALOGUES) as (keyof typeof CATALOGUES)[]) {
      setLanguageOverride(lang);
      for (const code of codes) {
        const r = remedy({ code, message: 'the message', graph: code === 'graph.error' ? graph403 : undefined });
        expect(r.sentence, `${lang} ${code}`).not.toMatch(/^error\./);
        expect(r.next, `${lang} ${code}`).not.toMatch(/^error\./);
        expect(r.sentence.trim(), `${lang} ${code}`).not.toBe('');
      }
    }
  });

  it('choose the words by the typed code, not by the message', () => {
    const cases: [AppError, RegExp][] = [
      [{ code: 'decision.self_approval', message: 'x' }, /your own sign-up/],
      [{ code: 'auth.forbidden', message: 'x' }, /Approver app role/],
      [{ code: 'auth.scope_missing', message: 'x' }, /Approver app role/],
      [{ code: 'request.not_denied', message: 'x' }, /no longer denied/],
      [{ code: 'request.erased', message: 'x' }, /erased/],
      [{ code: 'auth.keyring_unavailable', message: 'locked' }, /keyring .*: locked/],
      [{ code: 'store.failure', message: 'database is locked' }, /approval API could not do this: database is locked/],
      [{ code: 'graph.error', message: 'x', graph: graph403 }, /User Administrator role/],
      [{ code: 'graph.error', message: 'x', graph: { ...graph403, status: 429, code: 'TooManyRequests' } }, /Graph is busy/],
      [{ code: 'graph.error', message: 'bad mail', graph: { ...graph403, status: 400, code: 'Request_BadRequest' } }, /refused the change: bad mail/],
      // A message that looks like another error does not change the remedy.
      [{ code: 'network.offline', message: 'Authorization_RequestDenied request.already_decided' }, /can't reach/],
    ];
    for (const [e, sentence] of cases) expect(remedy(e).sentence, e.code).toMatch(sentence);
    // The approval API's 403 is not Graph's: no "User Administrator" advice for it.
    expect(remedy({ code: 'auth.forbidden', message: 'x' }).sentence).not.toMatch(/User Administrator/);
  });

  it('in French and Swedish too', () => {
    setLanguageOverride('fr');
    expect(remedy({ code: 'decision.self_approval', message: 'x' }).next).toBe('Demandez à un autre approbateur de la traiter.');
    setLanguageOverride('sv');
    expect(remedy({ code: 'auth.forbidden', message: 'x' }).sentence).toMatch(/saknar approllen Approver/);
  });

  it('a code the UI does not know is its own error, its text kept', () => {
    expect(isCode('request.not_found')).toBe(true);
    expect(isCode('graph.Authorization_RequestDenied')).toBe(false);
    const e = toAppError({ code: 'request.from_the_future', message: 'new', requestId: 'r' });
    expect(e).toEqual({ code: 'ui.error', message: 'request.from_the_future: new' });
    expect(remedy(e).sentence).toBe('request.from_the_future: new');
  });
});

describe('request ids', () => {
  it('come from the requestId field, for the line and for Copy details', () => {
    const e = toAppError({ code: 'decision.self_approval', message: 'you cannot decide your own request', requestId: '5f0c3b2a17d49a1e-000000000000002a' });
    expect(requestIdOf(e)).toBe('5f0c3b2a17d49a1e-000000000000002a');
    expect(errorLine(e)).toBe('decision.self_approval: you cannot decide your own request (request-id 5f0c3b2a17d49a1e-000000000000002a)');
    const details = errorDetails(e, new Date('2026-01-02T03:04:05Z'));
    expect(details).toContain('request-id: 5f0c3b2a17d49a1e-000000000000002a');
    expect(details).toContain('code: decision.self_approval');
  });

  it('are never read out of a message', () => {
    const e = toAppError({ code: 'api.error', message: 'failed (request-id 0123abcd-9) request-id: zz' });
    expect(requestIdOf(e)).toBeNull();
    expect(errorDetails(e)).toContain('request-id: —');
  });

  it('reach the queue state as the fake Api rejects, with the code and its remedy', async () => {
    const queue = vi.fn().mockRejectedValueOnce({ code: 'auth.forbidden', message: 'forbidden: your account needs the Approver role', requestId: 'rid-7' });
    const q = new QueueState({ queue } as unknown as Api);
    await q.load();
    expect(q.error).toEqual({ code: 'auth.forbidden', message: 'forbidden: your account needs the Approver role', requestId: 'rid-7' });
    expect(errorLine(q.error!)).toContain('(request-id rid-7)');
    expect(remedy(q.error!).sentence).toMatch(/Approver app role/);
  });

  it('reach the reopen dialog, its remedy chosen by code', async () => {
    const reopen = vi
      .fn()
      .mockRejectedValueOnce({ code: 'request.not_denied', message: 'this request is not denied any more', requestId: 'rid-8' })
      .mockRejectedValueOnce({ code: 'network.offline', message: 'cannot reach the approval API' });
    const flow = new ReopenFlow({ reopen } as unknown as Api);
    const detail = { request: { id: 'r1', version: 3 } } as unknown as RequestDetail;
    flow.start(detail, 'Ada');
    expect(await flow.submit('wrong denial')).toBeNull();
    expect(flow.error?.requestId).toBe('rid-8');
    expect(reopenRemedy(flow.error!).sentence).toMatch(/no longer denied/);
    expect(await flow.submit('wrong denial')).toBeNull();
    expect(reopenRemedy(flow.error!).sentence).toMatch(/a reopen is not kept/);
  });
});
