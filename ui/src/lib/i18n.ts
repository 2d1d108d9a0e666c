// The UI's languages (issue 15 §1): English, French and Swedish message catalogues
// (src/locales/*.json, ICU MessageFormat through svelte-i18n), the choice of language, and
// `Intl` formatting of ages, dates and numbers in that language.
//
// The language is the approver's choice in settings (kept in this webview's localStorage) or
// else the first of the OS's preferred locales we have a catalogue for (the `os_locales`
// command, then `navigator.languages`), else English. `document.documentElement.lang` follows it.

import { addMessages, init, locale, format } from 'svelte-i18n';
/** The message store (`$_('key', { values })`) and the language store, for components. */
export { _, locale } from 'svelte-i18n';
import { get } from 'svelte/store';
import en from '../locales/en.json';
import fr from '../locales/fr.json';
import sv from '../locales/sv.json';

/** The catalogues, by language code. English is the reference: every key is in each of them. */
export const CATALOGUES = { en, fr, sv } as const;
export type Lang = keyof typeof CATALOGUES;
/** The languages offered in settings, each named in itself. */
export const LANGUAGES: readonly { code: Lang; name: string }[] = [
  { code: 'en', name: 'English' },
  { code: 'fr', name: 'Français' },
  { code: 'sv', name: 'Svenska' },
];
const OVERRIDE_KEY = 'guestlist.language';

for (const [code, messages] of Object.entries(CATALOGUES)) addMessages(code, messages);
// English until `startI18n` chooses: messages can be formatted from the first import (tests too).
init({ fallbackLocale: 'en', initialLocale: 'en' });

/** The first of `preferred` (BCP 47 or POSIX tags, `fr-CA`, `sv_SE.UTF-8`) we have a catalogue for; English otherwise. */
export function pickLanguage(preferred: readonly (string | null | undefined)[]): Lang {
  for (const p of preferred) {
    const base = (p ?? '').toLowerCase().split(/[-_.@]/)[0];
    if (base in CATALOGUES) return base as Lang;
  }
  return 'en';
}

/** The language chosen in settings, or `null` to follow the OS. */
export function languageOverride(): Lang | null {
  try {
    const v = globalThis.localStorage?.getItem(OVERRIDE_KEY) ?? null;
    return v !== null && v in CATALOGUES ? (v as Lang) : null;
  } catch {
    return null;
  }
}

let osPreferred: readonly string[] = [];

/** Shows the UI in `lang` now (messages, `Intl` formats, the document's `lang`). */
function apply(lang: Lang) {
  void locale.set(lang);
  if (typeof document !== 'undefined') document.documentElement.lang = lang;
}

/** Keeps `lang` as the approver's choice (`null`: follow the OS again) and applies it. */
export function setLanguageOverride(lang: Lang | null) {
  try {
    if (lang === null) globalThis.localStorage?.removeItem(OVERRIDE_KEY);
    else globalThis.localStorage?.setItem(OVERRIDE_KEY, lang);
  } catch {
    /* storage unavailable: the choice lasts for this session */
  }
  apply(lang ?? pickLanguage([...osPreferred, ...browserLanguages()]));
}

function browserLanguages(): readonly string[] {
  return typeof navigator === 'undefined' ? [] : (navigator.languages ?? [navigator.language]);
}

/**
 * Starts the catalogues synchronously (the override, else the webview's languages), then asks the
 * OS (`osLocales`, the `os_locales` command) and switches to its language unless overridden.
 */
export function startI18n(osLocales?: () => Promise<string[]>): Lang {
  const first = languageOverride() ?? pickLanguage(browserLanguages());
  apply(first);
  void osLocales?.().then(
    (list) => {
      osPreferred = list;
      if (languageOverride() === null) apply(pickLanguage([...list, ...browserLanguages()]));
    },
    () => {},
  );
  return first;
}

/** The language the OS asks for (what "same as the system" means in settings). */
export function osLanguage(): Lang {
  return pickLanguage([...osPreferred, ...browserLanguages()]);
}

/** The language shown now. */
export function currentLanguage(): Lang {
  return pickLanguage([get(locale)]);
}

/** A message of the current catalogue outside a component (`t('status.online')`). */
export function t(key: string, values?: Record<string, string | number | Date | boolean | null | undefined>): string {
  return get(format)(key, { values: values as Record<string, string | number | boolean | Date | null | undefined> });
}

/** A number in the current language (`1 234`, `1,234`). */
export function num(n: number, lang: string = currentLanguage()): string {
  return new Intl.NumberFormat(lang).format(n);
}

/**
 * Tells the shell the UI's language now and at every change (`send`: the `set_ui_language`
 * command, src-tauri/src/locale.rs), so OS notifications and the tray speak it too — also in the
 * background after a restart, since the shell keeps the last one. Sends each distinct language
 * once; a failed send is ignored (the shell keeps its previous language). Returns the unsubscriber.
 */
export function followLanguage(send: (language: Lang) => Promise<unknown>): () => void {
  let last: Lang | null = null;
  return locale.subscribe((l) => {
    if (l === null || l === undefined) return;
    const lang = pickLanguage([l]);
    if (lang === last) return;
    last = lang;
    void send(lang).catch(() => {});
  });
}
