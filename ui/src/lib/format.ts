// Formatting helpers: ages, identity providers, e-mail domains, errors.

/** An age as a short label: `now`, `12m`, `5h`, `3d`, `6w`. */
export function shortAge(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.max(0, Math.floor((now.getTime() - t) / 1000));
  if (s < 60) return 'now';
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 14) return `${d}d`;
  return `${Math.floor(d / 7)}w`;
}

/** "3 minutes ago"-style text for the status bar; `never` without a time. */
export function sinceText(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return 'never';
  const age = shortAge(iso, now);
  if (age === '') return 'never';
  return age === 'now' ? 'just now' : `${age} ago`;
}

/** A local date and time, `2025-03-14 09:26`. */
export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** The domain of an e-mail address, lower-cased; empty if there is none. */
export function emailDomain(email: string | null | undefined): string {
  if (!email) return '';
  const at = email.lastIndexOf('@');
  return at < 0 ? '' : email.slice(at + 1).trim().toLowerCase();
}

const PROVIDERS: Record<string, string> = {
  'facebook.com': 'Facebook',
  'google.com': 'Google',
  mail: 'Email OTP',
  entra: 'Entra ID',
  '': 'Entra ID',
  microsoftaccount: 'Microsoft account',
};

/** A human name for an identity provider (`facebook.com` → `Facebook`). */
export function providerLabel(provider: string | null | undefined): string {
  const p = (provider ?? '').toLowerCase();
  return PROVIDERS[p] ?? provider ?? 'Entra ID';
}

/** A short, stable colour key for an identity provider badge. */
export function providerKey(provider: string | null | undefined): string {
  const p = (provider ?? '').toLowerCase();
  if (p.includes('facebook')) return 'facebook';
  if (p.includes('google')) return 'google';
  if (p === 'mail') return 'otp';
  return 'entra';
}

/** `{code, message}` as every command error arrives; `requestId` for Graph errors. */
export interface AppError {
  code: string;
  message: string;
  requestId?: string | null;
}

/** Turns whatever a rejected `invoke` gave into an [`AppError`] (Graph errors keep their `request-id`). */
export function toAppError(e: unknown): AppError {
  if (e && typeof e === 'object') {
    const o = e as Record<string, unknown>;
    if (typeof o.code === 'string' && typeof o.message === 'string') {
      const graph = o.graph && typeof o.graph === 'object' ? (o.graph as Record<string, unknown>) : null;
      const rid = graph?.requestId ?? o.requestId;
      return {
        code: o.code,
        message: o.message,
        requestId: typeof rid === 'string' ? rid : extractRequestId(o.message),
      };
    }
    if (e instanceof Error) return { code: 'ui.error', message: e.message };
  }
  if (typeof e === 'string') return { code: 'ui.error', message: e };
  return { code: 'ui.error', message: String(e) };
}

/** A cell of the side-by-side view: strings as they are, everything else as compact JSON. */
export function cellText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** Finds a Graph `request-id` quoted in a message, if any. */
export function extractRequestId(message: string): string | null {
  const m = /request-id[":=\s]+([0-9a-f-]{8,})/i.exec(message);
  return m ? m[1] : null;
}

/** One line for the status bar or a toast: `code: message (request-id …)`. */
export function errorLine(e: AppError): string {
  const rid = e.requestId ?? extractRequestId(e.message);
  const tail = rid && !e.message.includes(rid) ? ` (request-id ${rid})` : '';
  return `${e.code}: ${e.message}${tail}`;
}

/** `1 request` / `3 requests`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

/** Pretty JSON for the Graph request code blocks. */
export function prettyJson(v: unknown): string {
  return JSON.stringify(v, null, 2);
}
