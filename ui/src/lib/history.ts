// A request's history lines in the UI's language (the detail's "History" panel). Most actions are
// shown as the server names them; an escalation (`escalated`, written by the server's escalation
// task: docs/CONTRACTS.md, "Escalation") is worded as a sentence naming the role it went to, the
// route and the delay.

import type { HistoryEntry } from './types';
import { currentLanguage, t } from './i18n';

/** What an `escalated` entry's `detail` carries (`{"route","fallbackRole","escalateAfterHours"}`). */
export type Escalation = { route: string; fallbackRole: string; hours: number };

/** The escalation an entry records, or `null` (another action, or a detail this UI cannot read). */
export function escalationOf(h: HistoryEntry): Escalation | null {
  if (h.action !== 'escalated' || typeof h.detail !== 'object' || h.detail === null) return null;
  const d = h.detail as Record<string, unknown>;
  const { route, fallbackRole, escalateAfterHours } = d;
  if (typeof route !== 'string' || typeof fallbackRole !== 'string') return null;
  if (typeof escalateAfterHours !== 'number' || !Number.isFinite(escalateAfterHours) || escalateAfterHours < 0) return null;
  return { route, fallbackRole, hours: escalateAfterHours };
}

/**
 * A delay of `hours` in `lang`, in the largest whole unit that reads well: days when it is a whole
 * number of days, hours from one hour, minutes below ("2 days", "36 heures", "1 minut").
 */
export function delayText(hours: number, lang: string = currentLanguage()): string {
  const unit = (value: number, u: 'day' | 'hour' | 'minute') =>
    new Intl.NumberFormat(lang, { style: 'unit', unit: u, unitDisplay: 'long', maximumFractionDigits: 1 }).format(value);
  if (hours >= 24 && Number.isInteger(hours / 24)) return unit(hours / 24, 'day');
  if (hours >= 1) return unit(hours, 'hour');
  return unit(hours * 60, 'minute');
}

/**
 * The line of an entry's action: for an escalation, "Escalated to {role} (route {route}) after
 * {delay}"; otherwise the action as stored. `lang` is the language shown now (`$locale`): passing
 * it makes a component word the line again when it changes.
 */
export function historyAction(h: HistoryEntry, lang?: string | null): string {
  const e = escalationOf(h);
  if (e === null) return h.action;
  return t('history.escalated', { role: e.fallbackRole, route: e.route, delay: delayText(e.hours, lang ?? currentLanguage()) });
}
