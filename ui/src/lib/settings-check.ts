// The settings form's checks, field by field (issue 15 §5: "settings show errors at each field,
// with hints"). The same rules as the reviewer crate's `Settings::validate`
// (crates/guestlist-reviewer/src/settings.rs), run before Save so every wrong field is marked at
// once instead of the first one only; the app's own answer (`settings.invalid`,
// "settings.<field>: why") is placed on its field too.

import type { AppError } from './format';
import { t } from './i18n';

/** The fields of the form that can be wrong, by their `Settings` path. */
export type SettingsField =
  | 'authority'
  | 'client_id'
  | 'api_base_url'
  | 'api_scope'
  | 'graph_base_url'
  | 'graph_scopes'
  | 'provisioning.tenant_domain'
  | 'provisioning.extensions_app_id'
  | 'purge_decided_after_days';

/** Every field, in the order of the form (the first wrong one gets the focus). */
export const SETTINGS_FIELDS: readonly SettingsField[] = [
  'authority',
  'client_id',
  'api_base_url',
  'api_scope',
  'graph_base_url',
  'graph_scopes',
  'provisioning.tenant_domain',
  'provisioning.extensions_app_id',
  'purge_decided_after_days',
];

/** What is wrong with a field: a catalogue problem (`settings.problem.<problem>`), or the app's own sentence. */
export type FieldProblem =
  | { problem: 'required' | 'notUrl' | 'notHttps' | 'hex32' | 'atLeastOne' }
  | { problem: 'app'; message: string };

/** The values the form checks (as typed: the scopes as one line, the extensions app id as text). */
export interface SettingsInput {
  authority: string;
  client_id: string;
  api_base_url: string;
  api_scope: string;
  graph_base_url: string;
  graph_scopes: string;
  tenant_domain: string;
  extensions_app_id: string;
  purge_decided_after_days: number | null;
}

/** A loopback host (127.0.0.0/8, [::1], localhost): plain http is accepted there (the local demo). */
function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** `https://`, or `http://` on a loopback host; else why not. */
function urlProblem(v: string): FieldProblem | null {
  if (v.trim() === '') return { problem: 'required' };
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return { problem: 'notUrl' };
  }
  if (u.protocol === 'https:') return null;
  if (u.protocol === 'http:') return isLoopback(u.hostname) ? null : { problem: 'notHttps' };
  return { problem: 'notUrl' };
}

/** Every wrong field of `s` (none: `{}`). */
export function checkSettings(s: SettingsInput): Partial<Record<SettingsField, FieldProblem>> {
  const out: Partial<Record<SettingsField, FieldProblem>> = {};
  const required = (f: SettingsField, v: string) => {
    if (v.trim() === '') out[f] = { problem: 'required' };
  };
  for (const f of ['authority', 'api_base_url', 'graph_base_url'] as const) {
    const p = urlProblem(s[f]);
    if (p) out[f] = p;
  }
  required('client_id', s.client_id);
  required('api_scope', s.api_scope);
  required('graph_scopes', s.graph_scopes);
  required('provisioning.tenant_domain', s.tenant_domain);
  const ext = s.extensions_app_id.trim();
  if (ext !== '' && !/^[0-9a-fA-F]{32}$/.test(ext)) out['provisioning.extensions_app_id'] = { problem: 'hex32' };
  const days = s.purge_decided_after_days;
  if (days === null || !Number.isInteger(days) || days < 1) out.purge_decided_after_days = { problem: 'atLeastOne' };
  return out;
}

/**
 * The field an error of the app is about: `settings.invalid` errors start with `settings.<field>:`
 * (`settings.provisioning.tenant_domain: is empty`); `null` for any other error.
 */
export function fieldOfError(e: AppError): { field: SettingsField; problem: FieldProblem } | null {
  if (e.code !== 'settings.invalid') return null;
  const m = /^settings\.([a-z_.]+):\s*(.*)$/s.exec(e.message);
  if (!m) return null;
  const field = m[1] as SettingsField;
  if (!SETTINGS_FIELDS.includes(field)) return null;
  // The reviewer's reasons that the catalogues word; any other is shown as the app said it.
  const why = m[2];
  const problem: FieldProblem =
    why === 'is empty'
      ? { problem: 'required' }
      : why.startsWith('must be an https:// URL:')
        ? { problem: 'notHttps' }
        : why === 'must be an https:// URL'
          ? { problem: 'notUrl' }
          : { problem: 'app', message: why };
  return { field, problem };
}

/** The catalogue key stem of a field (`settings.fix.<stem>`). */
function stem(f: SettingsField): string {
  return f.replace('provisioning.', '').replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The example value a field's remedy quotes (`{example}`), where it has one. */
const EXAMPLES: Partial<Record<SettingsField, string>> = {
  authority: 'https://login.microsoftonline.com/<tenant-id>/v2.0',
  api_scope: 'api://<api-app-id>/Approvals.ReadWrite',
  graph_base_url: 'https://graph.microsoft.com/v1.0',
  graph_scopes: 'User.ReadWrite.All',
  'provisioning.tenant_domain': 'contoso.onmicrosoft.com',
};

/**
 * What is wrong, then how to fix it, in the UI's language: the field's whole error message.
 * `_lang` is the language shown now (`$locale`), so a component words it again when it changes.
 */
export function fieldMessage(f: SettingsField, p: FieldProblem, _lang?: string | null): string {
  const what = p.problem === 'app' ? p.message : t(`settings.problem.${p.problem}`);
  return `${what} ${t(`settings.fix.${stem(f)}`, { example: EXAMPLES[f] ?? '' })}`;
}
