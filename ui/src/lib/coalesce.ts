// One run at a time, the last call always wins: the search box's queries (a search over 10,000
// cached requests takes ~25 ms) run as the approver types, and fast typing never piles them up.

/**
 * Wraps `task` so that it runs one at a time: a call while it runs asks for exactly one more
 * run when it ends (so the state at the last call is what the last run sees), and any number of
 * calls meanwhile still make only that one. The returned promise settles when this call's run
 * (or its hand-off) is done; a failing run rejects its caller and still honours the hand-off.
 */
export function coalesced(task: () => Promise<void>): () => Promise<void> {
  let running = false;
  let again = false;
  const run = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await task();
    } finally {
      running = false;
      if (again) {
        again = false;
        void run();
      }
    }
  };
  return run;
}
