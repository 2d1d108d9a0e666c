// @vitest-environment jsdom
// The signed-in screen mounted for real with a fake Api: decisions cannot slip (a second `a`
// while the next person's detail appears is ignored, key auto-repeat never decides), the button
// names whom it approves, a bulk decision above the threshold asks once, and the toast offers
// Undo while the decision waits.
import { flushSync } from 'svelte';
import { describe, expect, it, vi } from 'vitest';
import type { Api } from '../lib/api';
import type { DecisionOutcome, QueueItem } from '../lib/types';
import { byTestId as $, mountReviewer } from '../test/dom';
import { pendingDetail, queueItem, queueView } from '../test/fixtures';

const press = (k: string, init: KeyboardEventInit = {}) => {
  window.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true, ...init }));
  flushSync();
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const people = ['Linnéa Öberg', 'Karin Åkesson', 'Göran Nyström', 'Ada One', 'Ada Two', 'Ada Three', 'Ada Four'];
const item = (n: number): QueueItem => queueItem(`r${n}`, people[n], { email: `p${n}@x.example` });

function fakeApi(count = 3) {
  let items = Array.from({ length: count }, (_, n) => item(n));
  const approve = vi.fn(async (ids: string[]): Promise<DecisionOutcome[]> => {
    items = items.filter((i) => !ids.includes(i.id));
    return ids.map((id) => ({
      id,
      outcome: 'queued',
      state: 'queued',
      directoryObjectId: null,
      how: null,
      error: null,
      current: null,
      label: `${people[Number(id.slice(1))]} <${id}@x.example>`,
      undoUntil: new Date(Date.now() + 5000).toISOString(),
      grantsFailed: 0,
    }));
  });
  const undo = vi.fn(async (ids: string[]) => ids.map((id) => ({ id, undone: true, state: null })));
  const detail = async (id: string) => pendingDetail(id);
  const api = {
    queue: async () => queueView(items),
    detail,
    approve,
    undo,
    deny: vi.fn(),
    history: async () => [],
    sync: vi.fn(),
    onQueueChanged: async () => () => {},
  } as unknown as Api;
  return { api, approve, undo };
}

async function open(count = 3) {
  const f = fakeApi(count);
  mountReviewer(f.api);
  await vi.waitFor(() => expect($('approve-button')).not.toBeNull(), { timeout: 2000 });
  return f;
}

describe('Reviewer decisions', () => {
  it('names the person, and `a a` 150 ms apart approves only that person', async () => {
    const { approve } = await open();
    expect($('approve-button')!.textContent).toContain('Approve Linnéa Öberg');
    press('a');
    await sleep(150);
    press('a');
    await sleep(150);
    press('a', { repeat: true });
    await vi.waitFor(() => expect($('detail-name')?.textContent).toBe('Karin Åkesson'), { timeout: 2000 });
    press('a'); // the next detail just rendered: still inside the guard
    expect(approve).toHaveBeenCalledTimes(1);
    expect(approve).toHaveBeenCalledWith(['r0']);
    expect($('toast')!.textContent).toContain('Approving Linnéa Öberg in 5 s');
    expect($('undo-button')).not.toBeNull();
    // After the guard the next person can be approved on purpose.
    await sleep(500);
    await vi.waitFor(() => expect(($('approve-button') as HTMLButtonElement).disabled).toBe(false));
    press('a');
    expect(approve).toHaveBeenCalledTimes(2);
    expect(approve).toHaveBeenLastCalledWith(['r1']);
  });

  it('key auto-repeat never decides', async () => {
    const { approve } = await open();
    press('a', { repeat: true });
    press('a', { repeat: true });
    expect(approve).not.toHaveBeenCalled();
  });

  it('says "Approve N selected" and asks once above the threshold', async () => {
    const { approve } = await open(7);
    for (let n = 0; n < 6; n++) {
      press('x');
      press('j');
    }
    await vi.waitFor(() => expect($('approve-button')!.textContent).toContain('Approve 6 selected'));
    press('a');
    expect(approve).not.toHaveBeenCalled();
    expect($('bulk-confirm')).not.toBeNull();
    $('bulk-confirm-approve')!.click();
    flushSync();
    await vi.waitFor(() => expect(approve).toHaveBeenCalledTimes(1));
    expect(approve.mock.calls[0][0]).toHaveLength(6);
  });

  it('Undo cancels the waiting decision', async () => {
    const { undo } = await open();
    press('a');
    await vi.waitFor(() => expect($('undo-button')).not.toBeNull());
    $('undo-button')!.click();
    await vi.waitFor(() => expect(undo).toHaveBeenCalledWith(['r0']));
    await vi.waitFor(() => expect($('toast')!.textContent).toContain('Undone'));
  });
});
