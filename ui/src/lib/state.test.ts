// @vitest-environment jsdom
// The signed-in screen's state modules (lib/*.svelte.ts) against a fake `Api`: the queue's loads
// and their generations, the one-at-a-time search, paging, finding a request, the selection, the
// detail's debounce and the decision guard, the toasts' lifetimes.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Api } from './api';
import type { QueueItem, QueueQuery, QueueView, RequestDetail } from './types';
import { coalesced } from './coalesce';
import { QueueState } from './queue.svelte';
import { Selection } from './selection.svelte';
import { DecisionGuard, DETAIL_DEBOUNCE_MS, DetailState } from './detail.svelte';
import { Toasts, toastMs } from './toasts.svelte';
import { DECISION_GUARD_MS } from './decisions';
import { PAGE_SIZE } from './filters';
import { queueItem } from '../test/fixtures';

const item = (n: number, name = `Person ${n}`): QueueItem => queueItem(`r${n}`, name, { email: `p${n}@x.example` });

/** A queue of `count` requests; `search` filters by name. Every query is recorded. */
function fakeQueue(count: number) {
  const all = Array.from({ length: count }, (_, n) => item(n));
  const queries: QueueQuery[] = [];
  const queue = vi.fn(async (q: QueueQuery): Promise<QueueView> => {
    queries.push(q);
    const hits = all.filter((i) => !q.q || i.displayName.toLowerCase().includes(q.q.toLowerCase()));
    const offset = q.offset ?? 0;
    return { items: hits.slice(offset, offset + (q.limit ?? PAGE_SIZE)), totalMatching: hits.length, totalPending: all.length, byProvider: [], byDomain: [], lastSyncAt: null };
  });
  return { api: { queue } as unknown as Api, queue, queries };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('coalesced', () => {
  it('runs one at a time and once more for any number of calls meanwhile', async () => {
    let running = 0;
    let most = 0;
    let runs = 0;
    const gates: (() => void)[] = [];
    const run = coalesced(async () => {
      running++;
      most = Math.max(most, running);
      runs++;
      await new Promise<void>((r) => gates.push(r));
      running--;
    });
    void run();
    void run();
    void run();
    void run();
    expect(runs).toBe(1);
    gates.shift()!();
    await vi.waitFor(() => expect(runs).toBe(2));
    gates.shift()!();
    await settle();
    expect(runs).toBe(2);
    expect(most).toBe(1);
  });
});

describe('QueueState', () => {
  it('loads the first page and keeps the cursor on the request it was on', async () => {
    const { api } = fakeQueue(5);
    const q = new QueueState(api);
    await q.load();
    expect(q.total).toBe(5);
    expect(q.cursor).toBe(0);
    q.cursor = 3;
    await q.load();
    expect(q.currentId).toBe('r3');
    await q.load(null);
    expect(q.cursor).toBe(3);
  });

  it('drops an answer to a query the filters have since replaced', async () => {
    const { api, queue } = fakeQueue(5);
    const q = new QueueState(api);
    let release!: () => void;
    queue.mockImplementationOnce(async () => {
      await new Promise<void>((r) => (release = r));
      return { items: [item(9, 'Stale')], totalMatching: 1, totalPending: 1, byProvider: [], byDomain: [], lastSyncAt: null };
    });
    const first = q.load();
    q.filter.search = 'person 2';
    await q.load();
    release();
    await first;
    expect(q.total).toBe(1);
    expect(q.current?.displayName).toBe('Person 2');
  });

  it('typing runs one query at a time and the last text wins', async () => {
    const { api, queries } = fakeQueue(30);
    const q = new QueueState(api);
    for (const text of ['p', 'pe', 'per', 'person 1', 'person 12']) {
      q.filter.search = text;
      q.filterChanged(true);
    }
    await vi.waitFor(() => expect(q.current?.displayName).toBe('Person 12'));
    expect(queries.length).toBe(2);
    expect(queries.at(-1)?.q).toBe('person 12');
  });

  it('loads missing pages once as the list scrolls, and finds a request past them', async () => {
    const { api, queries } = fakeQueue(PAGE_SIZE * 2 + 10);
    const q = new QueueState(api);
    await q.load();
    q.ensureRange(PAGE_SIZE - 5, PAGE_SIZE + 5);
    q.ensureRange(PAGE_SIZE - 5, PAGE_SIZE + 5);
    await settle();
    expect(queries.map((x) => x.offset)).toEqual([0, PAGE_SIZE]);
    expect(await q.find(`r${PAGE_SIZE * 2 + 3}`)).toBe(PAGE_SIZE * 2 + 3);
    expect(await q.find('nobody')).toBe(-1);
  });

  it('finds a request the filters hide by clearing them', async () => {
    const { api } = fakeQueue(5);
    const q = new QueueState(api);
    q.filter.search = 'person 1';
    await q.load();
    expect(await q.find('r4')).toBe(4);
    expect(q.filter.search).toBe('');
  });

  it('keeps the error of a failed load, as the ReviewerError it is', async () => {
    const { api, queue } = fakeQueue(2);
    queue.mockRejectedValueOnce({ code: 'storage.error', message: 'local database: disk full' });
    const q = new QueueState(api);
    await q.load();
    expect(q.error).toEqual({ code: 'storage.error', message: 'local database: disk full' });
    await q.load();
    expect(q.error).toBeNull();
  });

  it('moves the cursor past decided rows still listed', async () => {
    const { api } = fakeQueue(4);
    const q = new QueueState(api);
    await q.load();
    q.skip(['r0', 'r1']);
    expect(q.currentId).toBe('r2');
  });
});

describe('Selection', () => {
  it('ticks, unticks and drops decided ids', () => {
    const s = new Selection();
    s.toggle('a');
    s.toggle('b');
    s.toggle('c');
    s.toggle('b');
    expect(s.ids).toEqual(['a', 'c']);
    s.drop(['a']);
    expect(s.ids).toEqual(['c']);
    s.clear();
    expect(s.ids).toEqual([]);
  });
});

describe('DetailState and the decision guard', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const detailOf = (id: string) => ({ request: { id, state: { status: 'pending' } } }) as unknown as RequestDetail;

  it('loads the detail only once the cursor rests, and drops answers for rows it left', async () => {
    const detail = vi.fn(async (id: string) => detailOf(id));
    const history = vi.fn(async () => []);
    const d = new DetailState({ detail, history } as unknown as Api, new DecisionGuard());
    d.follow('r0');
    d.follow('r1');
    d.follow('r2');
    await vi.advanceTimersByTimeAsync(DETAIL_DEBOUNCE_MS + 1);
    expect(detail).toHaveBeenCalledTimes(1);
    expect(d.detail?.request.id).toBe('r2');
    d.toggleHistory();
    await vi.advanceTimersByTimeAsync(0);
    expect(history).toHaveBeenCalledWith('r2');
    expect(d.history).toEqual([]);
    d.follow(null);
    expect(d.detail).toBeNull();
  });

  it('the guard holds until the next detail shows plus DECISION_GUARD_MS, and lets go on a failure', async () => {
    const guard = new DecisionGuard();
    const detail = vi.fn(async (id: string) => {
      if (id === 'bad') throw { code: 'request.not_found', message: 'gone' };
      return detailOf(id);
    });
    const d = new DetailState({ detail, history: async () => [] } as unknown as Api, guard);
    guard.arm();
    expect(guard.on).toBe(true);
    await d.load('r1');
    await vi.advanceTimersByTimeAsync(DECISION_GUARD_MS - 10);
    expect(guard.on).toBe(true);
    await vi.advanceTimersByTimeAsync(20);
    expect(guard.on).toBe(false);

    guard.arm();
    await d.load('bad');
    expect(guard.on).toBe(false);
    expect(d.error?.code).toBe('request.not_found');
  });
});

describe('Toasts', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('each toast stays its time, and a newer one is not cut short by an older timer', async () => {
    const t = new Toasts();
    expect(toastMs({ text: '', tone: 'ok', undo: ['r1'] })).toBe(8000);
    expect(toastMs({ text: '', tone: 'error' })).toBe(12000);
    t.show('first', 'ok');
    await vi.advanceTimersByTimeAsync(5000);
    t.show('second', 'error');
    await vi.advanceTimersByTimeAsync(1500);
    expect(t.current?.text).toBe('second');
    await vi.advanceTimersByTimeAsync(11000);
    expect(t.current).toBeNull();
    t.show('third', 'warn', ['r1']);
    t.clear();
    expect(t.current).toBeNull();
  });
});
