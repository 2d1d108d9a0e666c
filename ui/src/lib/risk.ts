// Differences and risks: which cells of the side-by-side view to highlight, and how loud.

import { cellText } from './format';
import { t } from './i18n';
import type { PlanProblem } from '../bindings/PlanProblem';
import type { Risk } from '../bindings/Risk';
import type { SkippedClaim } from '../bindings/SkippedClaim';

/** How a row of the side-by-side view differs between its three columns. */
export type RowMark = 'same' | 'changed' | 'skipped' | 'conflict' | 'new';

/** Normalises a cell for comparison: text form, trimmed, empty as absent. */
function norm(v: unknown): string | null {
  const t = cellText(v)?.trim() ?? null;
  return t === '' ? null : t;
}

/**
 * Classifies one attribute row:
 * - `conflict`: the directory already holds a different value (the write would overwrite it);
 * - `skipped`: submitted but not written (the plan skips the claim);
 * - `changed`: written differently from what was submitted (e.g. normalised);
 * - `new`: written where nothing was submitted (e.g. the UPN, `userType`);
 * - `same`: written as submitted, nothing in the directory or the same value there.
 */
export function rowMark(row: { submitted: unknown; willBeWritten: unknown; inDirectory: unknown }): RowMark {
  const s = norm(row.submitted);
  const w = norm(row.willBeWritten);
  const e = norm(row.inDirectory);
  if (e !== null && w !== null && e !== w) return 'conflict';
  if (s !== null && w === null) return 'skipped';
  if (s === null && w !== null) return 'new';
  if (s !== null && w !== null && s !== w) return 'changed';
  return 'same';
}

/** The severity of a risk kind: `high` needs a careful look, `medium` warns. */
export type Severity = 'high' | 'medium' | 'low';

/** Severity of a risk, by its kind (`existingAccount`, `noPlan`, `domainMismatch`, `freeMail`). */
export function riskSeverity(kind: string): Severity {
  switch (kind) {
    case 'existingAccount':
    case 'noPlan':
      return 'high';
    case 'domainMismatch':
    case 'freeMail':
      return 'medium';
    default:
      return 'low';
  }
}

/** The risk kinds with a label in the catalogues (`risk.<kind>`). */
const RISK_KINDS = ['existingAccount', 'domainMismatch', 'freeMail', 'noPlan'];

/** A short label for a risk chip, in the UI's language (unknown kinds as they are). */
export function riskLabel(kind: string): string {
  return RISK_KINDS.includes(kind) ? t(`risk.${kind}`) : kind;
}

/** Why no plan can be made, in the UI's language (`risk.plan.<code>`). */
export function planProblem(p: PlanProblem): string {
  switch (p.code) {
    case 'invalidClaims':
      return t('risk.plan.invalidClaims', { detail: p.detail });
    case 'extensionsAppId':
      // As Rust's `{:?}` quotes it.
      return t('risk.plan.extensionsAppId', { value: JSON.stringify(p.value) });
    case 'tenantDomainEmpty':
    case 'inviteRedirectUrlEmpty':
      return t(`risk.plan.${p.code}`);
  }
}

/**
 * A risk's sentence in the UI's language, from its facts (`risk.params`; `risk.message.<kind>`).
 * The English catalogue gives the sentence the reviewer crate writes in `message`; a risk whose
 * facts this UI does not know (a newer app's) shows that English `message`. `_lang` is the language
 * shown now (`$locale`): passing it makes a component word the sentence again when it changes.
 */
export function riskSentence(r: Risk, _lang?: string | null): string {
  const p = r.params as Risk['params'] | undefined;
  switch (p?.kind) {
    case 'existingAccount':
      return t('risk.message.existingAccount', { foundBy: t(`risk.foundBy.${p.foundBy}`), account: p.account });
    case 'freeMail':
      return t('risk.message.freeMail', { domain: p.domain });
    case 'domainMismatch':
      return t('risk.message.domainMismatch', { domain: p.domain, company: p.company });
    case 'noPlan':
      return t('risk.message.noPlan', { problem: planProblem(p.problem) });
    default:
      return r.message;
  }
}

/**
 * Why a claim is not written, in the UI's language (`skip.<code>`); the English `reason` for a
 * code this UI does not know. `_lang`: as for {@link riskSentence}.
 */
export function skipReason(s: SkippedClaim, _lang?: string | null): string {
  switch (s.code) {
    case 'notWritable':
    case 'noExtensionsAppId':
      return t(`skip.${s.code}`);
    case 'extensionForm':
      return t('skip.extensionForm', { form: 'extension_<extensions-app-id>_<Name>' });
    case 'extensionName':
      return t('skip.extensionName', { underscore: "'_'" });
    default:
      return s.reason;
  }
}

/** The loudest severity among risk kinds, or `null` for none. */
export function worstSeverity(kinds: string[]): Severity | null {
  const order: Severity[] = ['high', 'medium', 'low'];
  let best: Severity | null = null;
  for (const k of kinds) {
    const s = riskSeverity(k);
    if (best === null || order.indexOf(s) < order.indexOf(best)) best = s;
  }
  return best;
}

/** For compare mode: the attribute names whose values differ across the compared requests. */
export function differingAttributes(columns: Array<Record<string, unknown>>): Set<string> {
  const names = new Set<string>();
  for (const c of columns) for (const k of Object.keys(c)) names.add(k);
  const out = new Set<string>();
  for (const n of names) {
    const vals = new Set(columns.map((c) => norm(c[n])));
    if (vals.size > 1) out.add(n);
  }
  return out;
}

/**
 * For compare mode: the attribute names for which at least two of the compared requests hold the
 * same non-empty value, ignoring case (the same e-mail, the same sponsor, the same company): what ties the
 * requests together, which is what comparing is for.
 */
export function sharedAttributes(columns: Array<Record<string, unknown>>): Set<string> {
  const names = new Set<string>();
  for (const c of columns) for (const k of Object.keys(c)) names.add(k);
  const out = new Set<string>();
  for (const n of names) {
    const seen = new Set<string>();
    for (const c of columns) {
      const v = norm(c[n])?.toLowerCase() ?? null; // e-mail addresses differ only in case
      if (v === null) continue;
      if (seen.has(v)) {
        out.add(n);
        break;
      }
      seen.add(v);
    }
  }
  return out;
}
