// @vitest-environment jsdom
// Issue 14 §2 (stop 22): the queue list says which requests escalated to their route's fallback
// approvers — "Escalated" as text in the row (not colour only), in the approver's language — and
// the "Escalated only" filter (a checkbox in the filter bar) asks the reviewer for them only.
import { flushSync } from 'svelte';
import { describe, expect, it, vi } from 'vitest';
import { setLanguageOverride } from '../lib/i18n';
import type { Api } from '../lib/api';
import type { QueueItem, QueueQuery, QueueView } from '../lib/types';
import { allByTestId as all, byTestId as $, mountReviewer } from '../test/dom';
import { queueItem, queueView } from '../test/fixtures';

const item = (id: string, name: string, escalatedAt?: string): QueueItem =>
  queueItem(id, name, { identityProvider: 'mail', ...(escalatedAt ? { escalatedAt } : {}) });

function api(queries: QueueQuery[]): Api {
  const items = [item('a1', 'Ana Lind', '2026-01-02T00:00:00Z'), item('b1', 'Bo Ek')];
  return {
    queue: async (q: QueueQuery): Promise<QueueView> => {
      queries.push(q);
      const shown = q.escalatedOnly ? items.filter((i) => i.escalatedAt) : items;
      return queueView(shown, items.length);
    },
    detail: vi.fn(async () => new Promise(() => {})),
    approve: vi.fn(),
    undo: vi.fn(),
    deny: vi.fn(),
    history: async () => [],
    sync: vi.fn(),
    onQueueChanged: async () => () => {},
  } as unknown as Api;
}

describe('escalated requests in the queue list', () => {
  for (const [lang, label, only] of [
    ['en', 'Escalated', 'Escalated only'],
    ['fr', 'Escaladée', 'Escaladées seulement'],
    ['sv', 'Eskalerad', 'Endast eskalerade'],
  ] as const) {
    it(`marks the escalated row with text and filters on it (${lang})`, async () => {
      setLanguageOverride(lang);
      const queries: QueueQuery[] = [];
      mountReviewer(api(queries));
      await vi.waitFor(() => expect(all('queue-row').length).toBe(2), { timeout: 2000 });
      flushSync();
      const [a, b] = all('queue-row');
      const marker = a.querySelector('[data-testid="queue-row-escalated"]') as HTMLElement;
      // Text (the glyph is hidden from screen readers), so the row's accessible name says it.
      expect(marker.textContent?.trim()).toBe(`⚑ ${label}`);
      expect(marker.querySelector('[aria-hidden="true"]')?.textContent?.trim()).toBe('⚑');
      expect(a.textContent).toContain(label);
      expect(b.querySelector('[data-testid="queue-row-escalated"]')).toBeNull();
      const box = $('filter-escalated') as HTMLInputElement;
      expect(box.type).toBe('checkbox');
      expect(box.closest('label')?.textContent?.trim()).toBe(only);
      box.click();
      await vi.waitFor(() => expect(all('queue-row').length).toBe(1), { timeout: 2000 });
      expect(queries.at(-1)?.escalatedOnly).toBe(true);
      expect(all('queue-row')[0].dataset.id).toBe('a1');
    });
  }
});
