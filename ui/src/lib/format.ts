// Formatting helpers: ages, identity providers, e-mail domains. Ages, dates and numbers go
// through `Intl` in the UI's language (lib/i18n.ts). Errors are lib/errors.ts, re-exported here
// for the components that format both.
import { CATALOGUES, currentLanguage, num, t } from './i18n';
import { PROVIDER_LABELS } from '../bindings/providerLabels';

export { errorDetails, errorLine, remedy, requestIdOf, toAppError } from './errors';
export type { AppError, Remedy } from './errors';

/** Whole seconds from `iso` to `now` (at least 0), or `null` when `iso` is not a time. */
function ageSeconds(iso: string | null | undefined, now: Date): number | null {
  if (!iso) return null;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return null;
  return Math.max(0, Math.floor((now.getTime() - t) / 1000));
}

/** The largest whole unit of an age in seconds: `[6, 'minute']`, `[3, 'day']` (weeks from 14 days). */
function ageUnit(s: number): [number, 'minute' | 'hour' | 'day' | 'week'] {
  const m = Math.floor(s / 60);
  if (m < 60) return [m, 'minute'];
  const h = Math.floor(m / 60);
  if (h < 48) return [h, 'hour'];
  const d = Math.floor(h / 24);
  if (d < 14) return [d, 'day'];
  return [Math.floor(d / 7), 'week'];
}

/**
 * An age as a short label in `lang` through `Intl.NumberFormat` units: `just now`, `6 min`,
 * `5 hr`, `3 days`, `6 wks` (French `à l’instant`, `6 min`, `5 h`; Swedish `nyss`, `6 min`,
 * `5 tim`). Empty when `iso` is not a time.
 */
export function shortAge(iso: string | null | undefined, now: Date = new Date(), lang: string = currentLanguage()): string {
  const s = ageSeconds(iso, now);
  if (s === null) return '';
  if (s < 60) return t('age.justNow');
  const [n, unit] = ageUnit(s);
  return new Intl.NumberFormat(lang, { style: 'unit', unit, unitDisplay: 'short' }).format(n);
}

/** An age as a relative time in `lang` (`Intl.RelativeTimeFormat`): `just now`, `6 minutes ago`, `il y a 3 jours`. */
export function relativeAge(iso: string | null | undefined, now: Date = new Date(), lang: string = currentLanguage()): string {
  const s = ageSeconds(iso, now);
  if (s === null) return '';
  if (s < 60) return t('age.justNow');
  const [n, unit] = ageUnit(s);
  return new Intl.RelativeTimeFormat(lang, { numeric: 'auto' }).format(-n, unit);
}

/** When something last happened, for the status bar: a relative time, or `never`. */
export function sinceText(iso: string | null | undefined, now: Date = new Date(), lang: string = currentLanguage()): string {
  return relativeAge(iso, now, lang) || t('status.never');
}

/** A local date and time in `lang` (`Intl.DateTimeFormat`, medium date, short time): `14 Mar 2025, 09:26`. */
export function dateTime(iso: string | null | undefined, lang: string = currentLanguage()): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}

/** The domain of an e-mail address, lower-cased; empty if there is none. */
export function emailDomain(email: string | null | undefined): string {
  if (!email) return '';
  const at = email.lastIndexOf('@');
  return at < 0 ? '' : email.slice(at + 1).trim().toLowerCase();
}

/**
 * A human name for an identity provider key, in the UI's language: the one label function of
 * Rust, `guestlist_core::provider::provider_label`, read from its generated table
 * (`bindings/providerLabels.ts`: `facebook.com` → `Facebook`, `''`/`entra` → `Entra ID`, any
 * other key `OTHER_PROVIDER_LABEL`, the catalogue's `provider.other`), translated only where the
 * catalogue has `provider.<key>` (e-mail OTP, Microsoft account).
 */
export function providerLabel(provider: string | null | undefined): string {
  const key = (provider ?? '').trim().toLowerCase();
  if (!(key in PROVIDER_LABELS)) return t('provider.other');
  if (`provider.${key}` in CATALOGUES.en) return t(`provider.${key}`);
  return PROVIDER_LABELS[key];
}

/** A short, stable colour key for an identity provider badge. */
export function providerKey(provider: string | null | undefined): string {
  const p = (provider ?? '').toLowerCase();
  if (p.includes('facebook')) return 'facebook';
  if (p.includes('google')) return 'google';
  if (p === 'mail') return 'otp';
  // An external tenant's local e-mail account (issue 17), not an Entra ID work account.
  if (p === 'email') return 'email';
  return 'entra';
}

/** A cell of the side-by-side view: strings as they are, everything else as compact JSON. */
export function cellText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** `1 request` / `3 requests`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${num(n)} ${n === 1 ? one : many}`;
}

/** Pretty JSON for the Graph request code blocks. */
export function prettyJson(v: unknown): string {
  return JSON.stringify(v, null, 2);
}

/**
 * An e-mail address cut where a line may break: after the `@` and before each `.`
 * (`ada.lovelace@contoso.com` → `ada`, `.lovelace@`, `contoso`, `.com`); rendered with `<wbr>`
 * between the parts (components/Email.svelte) so an address never breaks mid-word.
 */
export function emailBreaks(email: string): string[] {
  return email.split(/(?<=@)|(?=\.)/).filter((p) => p !== '');
}
