// Reopening a denial (issue 12 item 6): who may (approvers whose approval API token holds the
// Admin app role), on what (a denied request), and the dialog's state. Reopen needs the network:
// unlike a decision it is never kept in the outbox for later.
import type { Api } from './api';
import type { ApprovalRequest, HistoryEntry, QueueItem, RequestDetail, SessionInfo } from './types';
import { personName } from './decisions';
import { emailDomain } from './format';
import { remedy, toAppError, type AppError, type Remedy } from './format';
import { t } from './i18n';

/**
 * The app role that may reopen a denial: the approval API's `approver_auth.admin_role` default.
 * The server decides (403 `auth.not_admin` otherwise); this only hides the action from others.
 */
export const ADMIN_ROLE = 'Admin';

/** The signed-in approver's approval API token holds the Admin app role (`SessionInfo.roles`). */
export function isAdmin(session: SessionInfo | null | undefined): boolean {
  return !!session?.roles.includes(ADMIN_ROLE);
}

/** Reopen is offered: an admin looks at a denied request. */
export function canReopen(session: SessionInfo | null | undefined, detail: RequestDetail | null | undefined): boolean {
  return isAdmin(session) && detail?.request.state.status === 'denied';
}

/** What to tell the admin about a failed reopen: offline has its own words (nothing is kept for later). */
export function reopenRemedy(e: AppError): Remedy {
  if (e.code === 'network.offline') return { sentence: t('error.reopenOffline.sentence'), next: t('error.reopenOffline.next') };
  return remedy(e);
}

/** The request a reopen is about: its id, the version the admin saw (sent as `If-Match`), whom. */
export interface ReopenTarget {
  id: string;
  version: number;
  name: string;
}

/** The reopen dialog's state: which request, whether the call runs, its error (reactive). */
export class ReopenFlow {
  target = $state<ReopenTarget | null>(null);
  busy = $state(false);
  error = $state<AppError | null>(null);

  #api: Api;

  constructor(api: Api) {
    this.#api = api;
  }

  /** Opens the dialog for the request of `detail`, named `name`. */
  start(detail: RequestDetail, name: string) {
    this.target = { id: detail.request.id, version: detail.request.version, name };
    this.error = null;
    this.busy = false;
  }

  /** Closes the dialog (not while the call runs). */
  cancel() {
    if (this.busy) return;
    this.target = null;
    this.error = null;
  }

  /**
   * Reopens the target with `reason` (trimmed; required). Resolves to the request, pending
   * again, and closes the dialog; on failure keeps it open with `error` and resolves to `null`.
   */
  async submit(reason: string): Promise<ApprovalRequest | null> {
    const target = this.target;
    const why = reason.trim();
    if (!target || this.busy || why === '') return null;
    this.busy = true;
    this.error = null;
    try {
      const r = await this.#api.reopen(target.id, target.version, why);
      this.target = null;
      return r;
    } catch (e) {
      this.error = toAppError(e);
      return null;
    } finally {
      this.busy = false;
    }
  }
}

/**
 * The queue-row fields a decided request's header shows (it is no longer in the pending queue):
 * from its detail, and from its outbox `label` (`Name <e-mail>`) when its claims have no name.
 */
export function decidedRow(d: RequestDetail, label: string): QueueItem {
  const claims = d.request.claims;
  const str = (k: string) => (typeof claims[k] === 'string' ? (claims[k] as string) : '');
  const email = d.request.key.email;
  return {
    id: d.request.id,
    displayName: str('displayName') || `${str('givenName')} ${str('surname')}`.trim() || personName(label),
    email,
    emailDomain: emailDomain(email),
    company: str('companyName') || null,
    identityProvider: d.identity.provider,
    createdAt: d.request.createdAt,
    ageHours: 0,
    attempts: d.request.attempts,
    version: d.request.version,
    outboxState: d.outbox?.state ?? null,
    freeMail: false,
    samePerson: 1,
    personAttempts: d.request.attempts,
    personProviders: 1,
  };
}

/**
 * A decided request, opened from "Done today" or from a `guestlist://request/<id>` link to a
 * request the queue no longer lists (its detail then comes from the approval API): its detail
 * and its history (where an admin may reopen a denial), apart from the queue's own detail
 * (reactive fields).
 */
export class DecidedView {
  detail = $state<RequestDetail | null>(null);
  label = $state('');
  history = $state<HistoryEntry[] | null>(null);
  historyError = $state<AppError | null>(null);
  /** Its queue-row fields, for the header. */
  row = $derived(this.detail ? decidedRow(this.detail, this.label) : null);

  #api: Api;

  constructor(api: Api) {
    this.#api = api;
  }

  /**
   * Loads request `id` (outbox `label`, `''` when there is none) and then its history. Rejects
   * with the detail's error (`network.offline` for a request not cached, when offline).
   */
  async open(id: string, label: string) {
    const d = await this.#api.detail(id);
    this.detail = d;
    this.label = label;
    this.history = null;
    this.historyError = null;
    try {
      const h = await this.#api.history(id);
      if (this.detail?.request.id === id) this.history = h;
    } catch (e) {
      if (this.detail?.request.id === id) this.historyError = toAppError(e);
    }
  }

  /** Forgets it. */
  close() {
    this.detail = null;
    this.history = null;
    this.historyError = null;
  }
}
