// @vitest-environment jsdom
// The catalogues are complete (every English key in French and Swedish, nothing extra, the same
// ICU placeholders), the language choice follows the OS, and Intl formats follow the language.
import { describe, expect, it, afterEach } from 'vitest';
import { CATALOGUES, pickLanguage, setLanguageOverride, languageOverride, currentLanguage, t, followLanguage } from './i18n';
import { dateTime, relativeAge, shortAge } from './format';

/** The `{name}` placeholders of an ICU message (plural/select arguments by their name). */
function placeholders(msg: string): string[] {
  const names = new Set<string>();
  for (const m of msg.matchAll(/\{\s*([A-Za-z_][\w]*)\s*(?:,|\})/g)) names.add(m[1]);
  return [...names].sort();
}

describe('message catalogues', () => {
  const en = CATALOGUES.en as Record<string, string>;
  for (const [lang, cat] of Object.entries(CATALOGUES) as [string, Record<string, string>][]) {
    it(`${lang} has every key of English and no other`, () => {
      expect(Object.keys(en).filter((k) => !(k in cat))).toEqual([]);
      expect(Object.keys(cat).filter((k) => !(k in en))).toEqual([]);
    });
    it(`${lang} messages are non-empty and keep English's placeholders`, () => {
      for (const [k, v] of Object.entries(cat)) {
        expect(typeof v === 'string' && v.trim() !== '', `${lang}:${k} is empty`).toBe(true);
        expect(placeholders(v), `${lang}:${k}`).toEqual(placeholders(en[k]));
      }
    });
  }
});

describe('language choice', () => {
  afterEach(() => setLanguageOverride(null));

  it('takes the first OS locale with a catalogue, else English', () => {
    expect(pickLanguage(['fr-FR', 'en-US'])).toBe('fr');
    expect(pickLanguage(['sv_SE.UTF-8'])).toBe('sv');
    expect(pickLanguage(['de-DE', 'sv-FI'])).toBe('sv');
    expect(pickLanguage(['de-DE', null])).toBe('en');
    expect(pickLanguage([])).toBe('en');
  });

  it('the settings override wins, sets the document language and is kept', () => {
    setLanguageOverride('fr');
    expect(languageOverride()).toBe('fr');
    expect(currentLanguage()).toBe('fr');
    expect(document.documentElement.lang).toBe('fr');
    expect(t('deny.confirm')).toBe('Refuser');
    expect(t('counts.requests', { count: 3 })).toBe('3 demandes');
    setLanguageOverride('sv');
    expect(t('counts.requests', { count: 1 })).toBe('1 förfrågan');
    setLanguageOverride(null);
    expect(languageOverride()).toBeNull();
  });

  it('tells the shell the language at start and at each change, once each', async () => {
    setLanguageOverride('en');
    const sent: string[] = [];
    const stop = followLanguage(async (l) => {
      sent.push(l);
    });
    setLanguageOverride('fr');
    setLanguageOverride('fr');
    setLanguageOverride('sv');
    // A shell that refuses does not break the UI.
    const stopFailing = followLanguage(() => Promise.reject(new Error('no shell')));
    setLanguageOverride('en');
    stop();
    stopFailing();
    setLanguageOverride('fr');
    await Promise.resolve();
    expect(sent).toEqual(['en', 'fr', 'sv', 'en']);
  });
});

describe('Intl formats follow the language', () => {
  // Intl separates number and unit with a (narrow) no-break space in some languages.
  const plain = (s: string) => s.replace(/[\u00a0\u202f]/g, ' ');
  const now = new Date('2025-03-14T12:00:00Z');
  it('ages, relative times and dates', () => {
    setLanguageOverride('fr');
    expect(shortAge('2025-03-14T11:59:30Z', now)).toBe('à l’instant');
    expect(plain(shortAge('2025-03-14T11:54:00Z', now))).toBe('6 min');
    expect(plain(relativeAge('2025-03-11T12:00:00Z', now))).toBe('il y a 3 jours');
    expect(dateTime('2025-03-14T09:26:00Z')).toMatch(/mars 2025/);
    setLanguageOverride('sv');
    expect(plain(relativeAge('2025-03-14T11:54:00Z', now))).toBe('för 6 minuter sedan');
    expect(dateTime('2025-03-14T09:26:00Z')).toMatch(/mars 2025/);
    setLanguageOverride('en');
    expect(relativeAge('2025-03-14T11:54:00Z', now)).toBe('6 minutes ago');
    setLanguageOverride(null);
  });
});
