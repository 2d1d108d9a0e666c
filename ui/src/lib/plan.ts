// The "If you approve" sentence in the UI's language, composed from the facts the reviewer
// crate computes from the provisioning plan (`IfApprovedFacts`, crates/guestlist-reviewer
// detail.rs `if_approved_facts`; its `if_approved_sentence` is the English reference).

import { t } from './i18n';
import type { IfApprovedFacts } from './types';

/**
 * What approval will do, in the order it does it, as one sentence in the current language:
 * `Creates guest Ada (Google sign-in) · writes 6 properties · then approved on the server`.
 */
export function ifApprovedText(f: IfApprovedFacts): string {
  if (f.kind === null) return t('plan.noPlan');
  const values = { name: f.name, provider: f.providerLabel, count: f.properties };
  const parts: string[] = [];
  if (f.resumesAccount) parts.push(t('plan.resumes', { id: f.resumesAccount }));
  if (f.kind === 'existingAccount') parts.push(t('plan.links', { who: f.existingAccount ?? '?' }));
  else if (f.kind === 'userCreated' && !f.resumesAccount) parts.push(t('plan.creates', values));
  else if (f.kind === 'invitation' && !f.resumesAccount)
    parts.push(t('plan.invites', { ...values, mail: t(f.sendsInvitation ? 'plan.sendsMail' : 'plan.noMail') }));
  else if (f.kind === 'invitation') parts.push(t('plan.sets', { count: f.properties }));
  if (f.sponsor) parts.push(t('plan.sponsor', { sponsor: f.sponsor }));
  parts.push(t('plan.approvedOnServer'));
  const sentence = parts.join(' · ');
  return f.directoryChecked || f.kind === 'existingAccount' ? sentence : t('plan.notChecked', { sentence });
}
