// The one toast of the signed-in screen (decisions, undo, errors), with how long each kind stays.

/** How a toast looks: done, worth a look, or failed. */
export type Tone = 'ok' | 'warn' | 'error';

/** One toast: its text, tone, and the request ids its Undo button cancels (if any). */
export interface Toast {
  text: string;
  tone: Tone;
  undo?: string[];
}

/** How long a toast stays, in ms: with Undo 8 s, an error 12 s, anything else 6 s. */
export function toastMs(t: Toast): number {
  return t.undo?.length ? 8000 : t.tone === 'error' ? 12000 : 6000;
}

/** The toast shown now (`current`, reactive), replaced by the next one, gone after [`toastMs`]. */
export class Toasts {
  current = $state.raw<Toast | null>(null);

  /** Shows a toast; it goes away after its time unless another replaced it first. */
  show(text: string, tone: Tone, undo?: string[]) {
    const mine: Toast = { text, tone, undo };
    this.current = mine;
    setTimeout(() => {
      if (this.current === mine) this.current = null;
    }, toastMs(mine));
  }

  /** Hides the toast now. */
  clear() {
    this.current = null;
  }
}
