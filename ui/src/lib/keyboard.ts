// The keyboard map: which key does what, as a pure function so it is unit-tested.

/** Everything a key can do in the app. */
export type Action =
  | 'down'
  | 'up'
  | 'open'
  | 'approve'
  | 'deny'
  | 'search'
  | 'select'
  | 'compare'
  | 'help'
  | 'back'
  | 'history'
  | 'sync'
  | 'top'
  | 'bottom';

/** The parts of a `KeyboardEvent` the map looks at, plus where the focus is. */
export interface KeyInput {
  key: string;
  ctrlKey?: boolean;
  metaKey?: boolean;
  altKey?: boolean;
  /** The focus is in a text field (search box, dialog, settings form). */
  inTextField: boolean;
}

const plain: Record<string, Action> = {
  j: 'down',
  ArrowDown: 'down',
  k: 'up',
  ArrowUp: 'up',
  Enter: 'open',
  a: 'approve',
  d: 'deny',
  '/': 'search',
  x: 'select',
  c: 'compare',
  '?': 'help',
  Escape: 'back',
  h: 'history',
  r: 'sync',
  g: 'top',
  Home: 'top',
  G: 'bottom',
  End: 'bottom',
};

/**
 * The action of a key press, or `null` when the key is not a shortcut here.
 *
 * In a text field only Escape does something (it leaves the field); keys with Ctrl, Meta or Alt
 * are left to the web view (copy, paste, zoom).
 */
export function actionFor(ev: KeyInput): Action | null {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return null;
  if (ev.inTextField) {
    return ev.key === 'Escape' ? 'back' : ev.key === 'ArrowDown' ? 'down' : ev.key === 'ArrowUp' ? 'up' : null;
  }
  return plain[ev.key] ?? null;
}

/** One line of the shortcut help overlay. */
export interface ShortcutHelp {
  keys: string[];
  what: string;
}

/** The shortcut help overlay's content, in display order. */
export const SHORTCUTS: ShortcutHelp[] = [
  { keys: ['j', '↓'], what: 'help.next' },
  { keys: ['k', '↑'], what: 'help.previous' },
  { keys: ['g', 'G'], what: 'help.firstLast' },
  { keys: ['Enter'], what: 'help.open' },
  { keys: ['PgDn', 'PgUp'], what: 'help.scroll' },
  { keys: ['a'], what: 'help.approve' },
  { keys: ['d'], what: 'help.deny' },
  { keys: ['x'], what: 'help.select' },
  { keys: ['c'], what: 'help.compare' },
  { keys: ['h'], what: 'help.history' },
  { keys: ['/'], what: 'help.search' },
  { keys: ['r'], what: 'help.sync' },
  { keys: ['?'], what: 'help.help' },
  { keys: ['Esc'], what: 'help.back' },
];

/** True when the event's target is a text input, so single-letter shortcuts must not fire. */
export function isTextField(target: EventTarget | null): boolean {
  if (!target || typeof (target as HTMLElement).tagName !== 'string') return false;
  const el = target as HTMLElement;
  const tag = el.tagName.toLowerCase();
  if (tag === 'textarea' || tag === 'select' || el.isContentEditable) return true;
  if (tag !== 'input') return false;
  const type = ((el as HTMLInputElement).type || 'text').toLowerCase();
  return !['checkbox', 'radio', 'button', 'submit', 'reset'].includes(type);
}
