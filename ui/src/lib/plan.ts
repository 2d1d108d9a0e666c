// The "If you approve" sentence in the UI's language, composed from the facts the reviewer
// crate computes from the provisioning plan (`IfApprovedFacts`, crates/guestlist-reviewer
// detail.rs `if_approved_facts`; its `if_approved_sentence` is the English reference).

import type { ApprovalRequest } from '../bindings/ApprovalRequest';
import { t } from './i18n';
import type { GrantFact, IfApprovedFacts } from './types';

/**
 * What approval will do, in the order it does it, as one sentence in the current language:
 * `Creates guest Ada (Google sign-in) · writes 6 properties · then approved on the server`.
 */
export function ifApprovedText(f: IfApprovedFacts): string {
  if (f.kind === null) return t('plan.noPlan');
  // An external tenant's request (issue 17): nothing is written; Entra creates the account.
  if (f.kind === 'userFlow') return t('plan.userFlow', { name: f.name });
  const values = { name: f.name, provider: f.providerLabel, count: f.properties };
  const parts: string[] = [];
  if (f.resumesAccount) parts.push(t('plan.resumes', { id: f.resumesAccount }));
  if (f.kind === 'existingAccount') parts.push(t('plan.links', { who: f.existingAccount ?? '?' }));
  else if (f.kind === 'userCreated' && !f.resumesAccount) parts.push(t('plan.creates', values));
  else if (f.kind === 'invitation' && !f.resumesAccount)
    parts.push(t('plan.invites', { ...values, mail: t(f.sendsInvitation ? 'plan.sendsMail' : 'plan.noMail') }));
  else if (f.kind === 'invitation') parts.push(t('plan.sets', { count: f.properties }));
  if (f.sponsor) parts.push(t('plan.sponsor', { sponsor: f.sponsor }));
  for (const g of f.grants) parts.push(grantText(g));
  parts.push(t('plan.approvedOnServer'));
  const sentence = parts.join(' · ');
  return f.directoryChecked || f.kind === 'existingAccount' ? sentence : t('plan.notChecked', { sentence });
}

/**
 * One grant approval makes after the account exists (issue 14 §1), with the display name Graph
 * gave (cached), else the id: `added to group Partners-Fabrikam`, `app role Reader in Contoso
 * Portal`, `sponsor Ada Lovelace (you)`.
 */
export function grantText(g: GrantFact): string {
  switch (g.kind) {
    case 'group':
      return t('plan.grantGroup', { group: g.name ?? g.id });
    case 'appRole':
      return t('plan.grantAppRole', { role: g.role ?? g.id, app: g.name ?? g.resourceId ?? '?' });
    default:
      return g.approver ? t('plan.grantSponsorYou', { sponsor: g.name ?? g.id }) : t('plan.sponsor', { sponsor: g.name ?? g.id });
  }
}

/**
 * The "If you approve" sentence under the two-approver rule (issue 14 §3): a request that needs
 * two approvals and has none records the first only (`Approve records the first of two
 * approvals; Graph writes wait for a second approver`); after the first, approval is the second
 * and runs `sentence` (named with the first approver). One-approver requests keep `sentence`.
 */
export function twoApproverText(r: ApprovalRequest, sentence: string): string {
  if ((r.approvalsRequired ?? 1) < 2) return sentence;
  const first = r.approvals?.[0];
  if (!first) return t('plan.firstOfTwo');
  return t('plan.secondOfTwo', { name: first.by.name || first.by.username || first.by.id, sentence });
}
