// @vitest-environment jsdom
// The escalation's history line (stop 23) in English, French and Swedish, and other actions as stored.
import { afterEach, describe, expect, it } from 'vitest';
import { setLanguageOverride } from './i18n';
import { delayText, escalationOf, historyAction } from './history';
import type { HistoryEntry } from './types';

const entry = (action: string, detail: unknown): HistoryEntry => ({
  at: '2026-12-01T02:00:00Z',
  action,
  actor: { kind: 'policy', id: 'escalation', name: 'Policy rule escalation' },
  version: 1,
  detail,
});

/** `s` with every space (Intl's French puts no-break spaces before some units) a plain one. */
const plain = (s: string) => s.replace(/\s/gu, ' ');

const escalated = entry('escalated', { route: 'partners', fallbackRole: 'Approver.Fallback', escalateAfterHours: 48 });

describe('history lines', () => {
  afterEach(() => setLanguageOverride(null));

  it('words an escalation with its role, route and delay in each language', () => {
    setLanguageOverride('en');
    expect(plain(historyAction(escalated, 'en'))).toBe('Escalated to Approver.Fallback (route partners) after 2 days');
    setLanguageOverride('fr');
    expect(plain(historyAction(escalated, 'fr'))).toBe('Escaladée vers Approver.Fallback (route partners) après 2 jours');
    setLanguageOverride('sv');
    expect(plain(historyAction(escalated, 'sv'))).toBe('Eskalerad till Approver.Fallback (rutt partners) efter 2 dygn');
  });

  it('shows other actions, and an escalation it cannot read, as stored', () => {
    setLanguageOverride('en');
    expect(historyAction(entry('expired', {}), 'en')).toBe('expired');
    expect(historyAction(entry('escalated', { route: 'partners' }), 'en')).toBe('escalated');
    expect(escalationOf(entry('escalated', null))).toBeNull();
    expect(escalationOf(entry('denied', escalated.detail))).toBeNull();
  });

  it('gives the delay in days, hours or minutes', () => {
    expect(plain(delayText(48, 'en'))).toBe('2 days');
    expect(plain(delayText(36, 'en'))).toBe('36 hours');
    expect(plain(delayText(1.5, 'en'))).toBe('1.5 hours');
    expect(plain(delayText(60 / 3600, 'en'))).toBe('1 minute');
    expect(plain(delayText(0.25, 'fr'))).toBe('15 minutes');
    expect(plain(delayText(24, 'sv'))).toBe('1 dygn'); // CLDR's Swedish day of 24 hours
  });
});
