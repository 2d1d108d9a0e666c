// The signed-in screen's key dispatcher: from a window `keydown` to the action it runs (the map
// itself is `actionFor` in keyboard.ts), with the rules around it — dialogs that handle their own
// keys, PageDown/PageUp paging the request shown, auto-repeat never deciding, buttons clicking.
import { actionFor, isTextField, type Action } from './keyboard';

/** What is open over the queue: a dialog with its own keys, the help overlay, or nothing. */
export type Overlay = 'deny' | 'bulk' | 'reopen' | 'help' | null;

/** What the dispatcher needs to know of the screen. */
export interface KeyContext {
  overlay: Overlay;
  /** The search box (its `down`/`up` leave it). */
  searchBox?: HTMLElement | null;
  /** The scrollable detail pane PageDown/PageUp page through, if shown. */
  detailPane?: HTMLElement | null;
}

/** Dialogs that handle every key themselves (text fields, Enter to confirm). */
const OWN_KEYS: readonly Overlay[] = ['deny', 'bulk', 'reopen'];

/**
 * Handles one `keydown`: runs its action through `run` (and stops the browser's default), pages
 * the detail pane, or leaves the event alone. Returns the action run, if any.
 */
export function dispatchKey(e: KeyboardEvent, ctx: KeyContext, run: (a: Action) => void): Action | null {
  if (OWN_KEYS.includes(ctx.overlay)) return null;
  const inText = isTextField(e.target);
  // PageDown/PageUp page through the request shown (its Graph calls, its history) from
  // anywhere but a text field; inside the detail the browser scrolls it itself.
  if ((e.key === 'PageDown' || e.key === 'PageUp') && !inText && !ctx.overlay) {
    const pane = ctx.detailPane;
    if (pane && !(e.target instanceof Node && pane.contains(e.target))) {
      e.preventDefault();
      pane.scrollBy({ top: (e.key === 'PageDown' ? 1 : -1) * Math.max(40, pane.clientHeight - 40) });
    }
    return null;
  }
  const action = actionFor({ key: e.key, ctrlKey: e.ctrlKey, metaKey: e.metaKey, altKey: e.altKey, inTextField: inText });
  if (!action) return null;
  // Key auto-repeat never decides.
  if (e.repeat && (action === 'approve' || action === 'deny')) {
    e.preventDefault();
    return null;
  }
  if (ctx.overlay === 'help' && action !== 'help' && action !== 'back') return null;
  if (inText && (action === 'down' || action === 'up')) ctx.searchBox?.blur();
  if (action === 'open' && e.target instanceof HTMLButtonElement) return null; // let buttons click
  e.preventDefault();
  run(action);
  return action;
}
