import { describe, expect, it } from 'vitest';
import { NO_FILTER, PAGE_SIZE, ageRange, canCompare, isFiltered, toQuery, toggleSelected } from './filters';

describe('filters', () => {
  it('the empty filter is every request, oldest first, first page', () => {
    expect(toQuery(NO_FILTER)).toEqual({
      q: null,
      identityProvider: null,
      emailDomain: null,
      minAgeHours: null,
      maxAgeHours: null,
      sort: 'oldestFirst',
      offset: 0,
      limit: PAGE_SIZE,
      escalatedOnly: false,
    });
    expect(isFiltered(NO_FILTER)).toBe(false);
  });

  it('trims the search, lower-cases the domain, pages by offset', () => {
    const q = toQuery({ search: '  ada ', provider: 'facebook.com', domain: 'Fabrikam.com', age: 'week', newestFirst: true, escalated: false }, 1000, 500);
    expect(q).toEqual({
      q: 'ada',
      identityProvider: 'facebook.com',
      emailDomain: 'fabrikam.com',
      minAgeHours: null,
      maxAgeHours: 168,
      sort: 'newestFirst',
      offset: 1000,
      limit: 500,
      escalatedOnly: false,
    });
    expect(isFiltered({ ...NO_FILTER, search: '   ' })).toBe(false);
    expect(isFiltered({ ...NO_FILTER, age: 'older' })).toBe(true);
  });

  it('the escalated filter asks for escalated requests only, and counts as a filter', () => {
    expect(toQuery({ ...NO_FILTER, escalated: true }).escalatedOnly).toBe(true);
    expect(isFiltered({ ...NO_FILTER, escalated: true })).toBe(true);
  });

  it('maps ages to hour ranges', () => {
    expect(ageRange('today')).toEqual({ minAgeHours: null, maxAgeHours: 24 });
    expect(ageRange('older')).toEqual({ minAgeHours: 168, maxAgeHours: null });
    expect(ageRange('any')).toEqual({ minAgeHours: null, maxAgeHours: null });
  });

  it('selects and compares 2 to 4', () => {
    let s: string[] = [];
    s = toggleSelected(s, 'a');
    s = toggleSelected(s, 'b');
    expect(s).toEqual(['a', 'b']);
    expect(canCompare(s)).toBe(true);
    s = toggleSelected(s, 'a');
    expect(s).toEqual(['b']);
    expect(canCompare(s)).toBe(false);
    expect(canCompare(['1', '2', '3', '4', '5'])).toBe(false);
  });
});
