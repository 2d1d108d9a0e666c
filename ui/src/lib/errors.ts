// Errors as the facade sends them and as a person can act on them. Every command rejects with
// the generated `ReviewerError` binding (Rust: guestlist_reviewer::error): its `code` is a
// `Code` (bindings/Code.ts, generated from guestlist_core::Code), its `requestId` the failed
// call's request id (the approval API's `x-request-id` or Graph's `request-id`), its `graph`
// Graph's own error. Nothing here reads a message to learn a code or a request id.
import type { Code } from '../bindings/Code';
import { CATALOGUES, t } from './i18n';
import type { ReviewerError } from './types';

/** An error as every command rejects with: the generated `ReviewerError` binding. */
export type AppError = ReviewerError;

/** Catalogue keys of the English reference catalogue (the others have the same keys). */
type CatalogueKey = keyof typeof CATALOGUES.en;

/**
 * A remedy's name: `x` of an `error.x.sentence` message that has its `error.x.next` too, so a
 * remedy named here without both messages in the catalogue fails `tsc`.
 */
export type RemedyKey = {
  [K in CatalogueKey]: K extends `error.${infer R}.sentence` ? (`error.${R}.next` extends CatalogueKey ? R : never) : never;
}[CatalogueKey];

/**
 * What to tell the approver about one code: a remedy, a choice made from the error (Graph's own
 * code for `graph.error`), or `null`: the message itself and "Copy details".
 */
type RemedyRule = RemedyKey | null | ((e: AppError) => RemedyKey | null);

/** Graph's own code of a `graph.error`: what Graph said decides the remedy. */
function graphRemedy(e: AppError): RemedyKey {
  switch (e.graph?.code) {
    case 'Authorization_RequestDenied':
      return 'role';
    case 'TooManyRequests':
    case 'serviceNotAvailable':
      return 'throttled';
    default:
      return 'graph';
  }
}

/**
 * The remedy of every `Code`. A `Record` over the generated union: a code added in Rust
 * without a remedy here fails `tsc --noEmit`.
 */
export const REMEDIES: Readonly<Record<Code, RemedyRule>> = {
  // The approval API refused the approver's token or rights.
  'auth.unauthorized': 'signedOut',
  'auth.forbidden': 'approverRole',
  'auth.scope_missing': 'approverRole',
  'auth.client_not_allowed': 'approverRole',
  'auth.throttled': 'apiBusy',
  'auth.not_configured': 'server',
  'auth.issuer_unavailable': 'server',
  'auth.not_admin': 'notAdmin',
  // Requests and decisions.
  'request.not_found': 'notFound',
  'request.bad_id': 'server',
  'request.bad_status': 'server',
  'request.bad_if_match': 'server',
  'request.bad_idempotency_key': 'server',
  'request.precondition_required': 'server',
  'request.version_mismatch': 'versionMismatch',
  'request.already_decided': 'alreadyDecided',
  'request.idempotency_key_reused': 'server',
  'request.too_large': 'server',
  'request.unsupported_media_type': 'server',
  'request.body_timeout': 'server',
  'request.body_unreadable': 'server',
  'request.malformed_json': 'server',
  'request.bad_query': 'server',
  'request.not_denied': 'notDenied',
  'request.erased': 'erased',
  'route.not_found': 'server',
  'decision.malformed': 'server',
  'decision.reason_required': 'input',
  'decision.object_id_required': 'server',
  'decision.self_approval': 'selfApproval',
  'decision.wrong_flow': 'server',
  'decision.not_routed': 'notRouted',
  'decision.second_approver_required': 'secondApprover',
  'events.too_many_streams': 'apiBusy',
  'events.too_many_streams_for_principal': 'apiBusy',
  'reopen.malformed': 'server',
  'reopen.reason_required': 'input',
  'reopen.reason_too_long': 'input',
  // The server's other endpoints and storage: not the desktop's calls, said as the server's.
  'privacy.malformed': 'server',
  'privacy.bad_email': 'server',
  'audit.bad_time': 'server',
  'audit.bad_format': 'server',
  'claims.malformed_json': 'server',
  'claims.not_an_object': 'server',
  'claims.missing_email': 'server',
  'claims.invalid_email': 'server',
  'claims.wrong_type': 'server',
  'email.invisible_character': 'server',
  'email.invalid': 'server',
  'extension.malformed': 'server',
  'extension.wrong_event': 'server',
  'store.failure': 'server',
  'store.locked': 'server',
  'store.corrupt': 'server',
  'store.unavailable': 'storeDown',
  'api.error': 'server',
  // The desktop itself.
  'auth.keyring_unavailable': 'keyring',
  'auth.not_signed_in': 'signedOut',
  'auth.sign_in_failed': 'signInFailed',
  'auth.browser': 'browser',
  'network.offline': 'offline',
  'storage.error': 'storage',
  'storage.cache_key_mismatch': 'storage',
  'storage.cache_key_lost': 'storage',
  'storage.cache_key_unavailable': 'storage',
  'settings.invalid': 'plan',
  'input.invalid': 'input',
  'plan.error': 'plan',
  'graph.error': graphRemedy,
  'graph.decode': 'graph',
  'test.simulated_crash': null,
  'app.not_ready': 'notReady',
  'autostart.unavailable': 'autostart',
  'ui.error': null,
};

/** `true` when `s` is one of the generated codes. */
export function isCode(s: string): s is Code {
  return Object.prototype.hasOwnProperty.call(REMEDIES, s);
}

/**
 * Turns whatever a rejected `invoke` gave into an [`AppError`]: a `ReviewerError` is kept as it
 * is (its `requestId` and `graph` included); anything else, or a code this UI does not know, is
 * `ui.error` with the text it had.
 */
export function toAppError(e: unknown): AppError {
  if (e && typeof e === 'object') {
    const o = e as Record<string, unknown>;
    if (typeof o.code === 'string' && typeof o.message === 'string') {
      if (!isCode(o.code)) return { code: 'ui.error', message: `${o.code}: ${o.message}` };
      const out: AppError = { code: o.code, message: o.message };
      if (typeof o.requestId === 'string') out.requestId = o.requestId;
      if (o.graph && typeof o.graph === 'object') out.graph = o.graph as AppError['graph'];
      return out;
    }
    if (e instanceof Error) return { code: 'ui.error', message: e.message };
  }
  if (typeof e === 'string') return { code: 'ui.error', message: e };
  return { code: 'ui.error', message: String(e) };
}

/**
 * The request id of an error, for support: the typed `requestId` field, else Graph's own (an
 * outbox error stored by an older version has only that). Never read out of the message.
 */
export function requestIdOf(e: AppError): string | null {
  return e.requestId ?? e.graph?.requestId ?? null;
}

/** One line for the status bar or a toast: `code: message (request-id …)`. */
export function errorLine(e: AppError): string {
  const rid = requestIdOf(e);
  const tail = rid && !e.message.includes(rid) ? ` (request-id ${rid})` : '';
  return `${e.code}: ${e.message}${tail}`;
}

/** An error as a person can act on it: what happened, and what to do next. */
export interface Remedy {
  /** A plain sentence: what happened. */
  sentence: string;
  /** The next step. */
  next: string;
}

/**
 * The remedy of an error in the UI's language: [`REMEDIES`] by its code (the `error.*`
 * catalogue messages, `{message}` filled with the error's message); a code without one keeps
 * its message and points at "Copy details".
 */
export function remedy(e: AppError): Remedy {
  const rule = isCode(e.code) ? REMEDIES[e.code] : null;
  const key = typeof rule === 'function' ? rule(e) : rule;
  if (key === null) return { sentence: e.message, next: t('error.unknown.next') };
  const values = { message: e.message };
  return { sentence: t(`error.${key}.sentence`, values), next: t(`error.${key}.next`, values) };
}

/** "Copy details": the code (and Graph's), the request-id and the time, for a support ticket. */
export function errorDetails(e: AppError, at: Date = new Date()): string {
  const rid = requestIdOf(e);
  const lines = [`code: ${e.code}`];
  if (e.graph) lines.push(`graph-code: ${e.graph.code} (HTTP ${e.graph.status})`);
  lines.push(`message: ${e.message}`, `request-id: ${rid ?? '—'}`);
  if (e.graph?.date) lines.push(`graph-date: ${e.graph.date}`);
  lines.push(`time: ${at.toISOString()}`);
  return lines.join('\n');
}
