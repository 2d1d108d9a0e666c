import { describe, expect, it } from 'vitest';
import { emptyPages, indexOfId, itemAt, missingPages, withPage } from './paging';
import type { QueueItem } from './types';
import { queueItem } from '../test/fixtures';

const item = (i: number): QueueItem =>
  queueItem(`id-${i}`, `User ${i}`, {
    email: `u${i}@example.com`,
    emailDomain: 'example.com',
    identityProvider: 'facebook.com',
    createdAt: '2025-01-01T00:00:00Z',
  });
const page = (n: number, size: number, total: number) =>
  Array.from({ length: Math.min(size, total - n * size) }, (_, i) => item(n * size + i));

describe('paged queue', () => {
  it('knows which pages a window needs', () => {
    let p = withPage(emptyPages(500), 0, page(0, 500, 10_000), 10_000);
    expect(missingPages(p, 0, 40)).toEqual([]);
    expect(missingPages(p, 480, 520)).toEqual([1]);
    expect(missingPages(p, 9990, 10_030)).toEqual([19]);
    p = withPage(p, 19, page(19, 500, 10_000), 10_000);
    expect(itemAt(p, 9999)?.id).toBe('id-9999');
    expect(itemAt(p, 600)).toBeUndefined();
    expect(itemAt(p, 10_000)).toBeUndefined();
    expect(indexOfId(p, 'id-9500')).toBe(9500);
    expect(indexOfId(p, 'nope')).toBe(-1);
  });

  it('drops the other pages when the total changes (the queue moved under us)', () => {
    let p = withPage(emptyPages(500), 0, page(0, 500, 1000), 1000);
    p = withPage(p, 1, page(1, 500, 1000), 1000);
    expect(p.pages.size).toBe(2);
    p = withPage(p, 0, page(0, 500, 999), 999);
    expect(p.pages.size).toBe(1);
    expect(p.total).toBe(999);
  });

  it('an empty queue needs nothing', () => {
    expect(missingPages(emptyPages(500), 0, 20)).toEqual([]);
  });
});
