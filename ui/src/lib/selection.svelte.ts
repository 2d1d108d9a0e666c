// The requests ticked for a bulk decision or a comparison (`x` on a row).
import { toggleSelected } from './filters';

/** The selected request ids, in the order they were ticked (reactive). */
export class Selection {
  ids = $state<string[]>([]);

  /** Ticks `id`, or unticks it. */
  toggle(id: string) {
    this.ids = toggleSelected(this.ids, id);
  }

  /** Unticks everything. */
  clear() {
    this.ids = [];
  }

  /** Unticks the requests just decided. */
  drop(decided: readonly string[]) {
    this.ids = this.ids.filter((id) => !decided.includes(id));
  }
}
