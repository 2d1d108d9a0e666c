// Formatting helpers: ages, identity providers, e-mail domains, errors. Ages, dates and numbers
// go through `Intl` in the UI's language (lib/i18n.ts).
import { CATALOGUES, currentLanguage, num, t } from './i18n';
import { PROVIDER_LABELS } from '../bindings/providerLabels';
import type { GraphErrorInfo, ReviewerError } from './types';

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
 * other key as it is), translated only where the catalogue has `provider.<key>` (e-mail OTP,
 * Microsoft account).
 */
export function providerLabel(provider: string | null | undefined): string {
  const key = (provider ?? '').toLowerCase();
  if (`provider.${key}` in CATALOGUES.en) return t(`provider.${key}`);
  return PROVIDER_LABELS[key] ?? provider ?? PROVIDER_LABELS[''];
}

/** A short, stable colour key for an identity provider badge. */
export function providerKey(provider: string | null | undefined): string {
  const p = (provider ?? '').toLowerCase();
  if (p.includes('facebook')) return 'facebook';
  if (p.includes('google')) return 'google';
  if (p === 'mail') return 'otp';
  return 'entra';
}

/**
 * An error as every command rejects with: the generated `ReviewerError` binding
 * (`{code, message, graph?}`; `graph.requestId` and `graph.date` for Graph errors). Errors of
 * the UI itself get the code `ui.error`.
 */
export type AppError = ReviewerError;

/** Turns whatever a rejected `invoke` gave into an [`AppError`] (a `ReviewerError` is kept as it is, its `graph` included). */
export function toAppError(e: unknown): AppError {
  if (e && typeof e === 'object') {
    const o = e as Record<string, unknown>;
    if (typeof o.code === 'string' && typeof o.message === 'string') {
      const graph = o.graph && typeof o.graph === 'object' ? (o.graph as GraphErrorInfo) : null;
      return graph ? { code: o.code, message: o.message, graph } : { code: o.code, message: o.message };
    }
    if (e instanceof Error) return { code: 'ui.error', message: e.message };
  }
  if (typeof e === 'string') return { code: 'ui.error', message: e };
  return { code: 'ui.error', message: String(e) };
}

/** The Graph `request-id` of an error, when Graph answered it (the typed field; never read out of the message). */
export function requestIdOf(e: AppError): string | null {
  return e.graph?.requestId ?? null;
}

/** A cell of the side-by-side view: strings as they are, everything else as compact JSON. */
export function cellText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** One line for the status bar or a toast: `code: message (request-id …)`. */
export function errorLine(e: AppError): string {
  const rid = requestIdOf(e);
  const tail = rid && !e.message.includes(rid) ? ` (request-id ${rid})` : '';
  return `${e.code}: ${e.message}${tail}`;
}

/** `1 request` / `3 requests`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${num(n)} ${n === 1 ? one : many}`;
}

/** Pretty JSON for the Graph request code blocks. */
export function prettyJson(v: unknown): string {
  return JSON.stringify(v, null, 2);
}

/** An error as a person can act on it: what happened, and what to do next. */
export interface Remedy {
  /** A plain sentence: what happened. */
  sentence: string;
  /** The next step. */
  next: string;
}

/**
 * Maps an error code (and Graph's own code) to a plain sentence and a next step in the UI's
 * language (the `error.*` catalogue messages). Unknown codes keep their message and point at
 * "Copy details".
 */
export function remedy(e: AppError): Remedy {
  const code = e.code;
  const r = (key: string, values?: Record<string, string>): Remedy => ({
    sentence: t(`error.${key}.sentence`, values),
    next: t(`error.${key}.next`, values),
  });
  if (code === 'graph.Authorization_RequestDenied' || code === 'auth.forbidden') {
    return r('role');
  }
  if (code === 'network.offline') return r('offline');
  if (code === 'auth.not_signed_in' || code === 'auth.sign_in_failed') return r('signedOut');
  if (code === 'request.already_decided') return r('alreadyDecided');
  if (code === 'request.version_mismatch') return r('versionMismatch');
  if (code === 'request.not_denied') return r('notDenied');
  if (code === 'auth.not_admin') return r('notAdmin');
  if (code === 'request.not_found') return r('notFound');
  if (code === 'graph.TooManyRequests' || code === 'graph.serviceNotAvailable') return r('throttled');
  if (code === 'plan.error' || code === 'settings.invalid') return r('plan', { message: e.message });
  if (code.startsWith('graph.')) return r('graph', { message: e.message });
  if (code.startsWith('storage.')) return r('storage', { message: e.message });
  return { sentence: e.message, next: t('error.unknown.next') };
}

/** "Copy details": the code, the request-id and the time, for a support ticket. */
export function errorDetails(e: AppError, at: Date = new Date()): string {
  const rid = requestIdOf(e);
  return [`code: ${e.code}`, `message: ${e.message}`, `request-id: ${rid ?? '—'}`, `time: ${at.toISOString()}`].join('\n');
}

/**
 * An e-mail address cut where a line may break: after the `@` and before each `.`
 * (`ada.lovelace@contoso.com` → `ada`, `.lovelace@`, `contoso`, `.com`); rendered with `<wbr>`
 * between the parts (components/Email.svelte) so an address never breaks mid-word.
 */
export function emailBreaks(email: string): string[] {
  return email.split(/(?<=@)|(?=\.)/).filter((p) => p !== '');
}
