// The jsdom set-up the component tests share (files marked `// @vitest-environment jsdom`).
// Importing this module stubs `ResizeObserver` and registers an `afterEach` that unmounts what
// `mountInBody` mounted, empties the body and drops any language override, so each test starts
// from an empty document in the default language.
import { flushSync, mount, unmount, type Component } from 'svelte';
import { afterEach } from 'vitest';
import Detail from '../components/Detail.svelte';
import Reviewer from '../components/Reviewer.svelte';
import { setLanguageOverride } from '../lib/i18n';
import type { Api } from '../lib/api';
import type { AppStatus, QueueItem, RequestDetail } from '../lib/types';

// jsdom has no layout: the virtual list's ResizeObserver observes nothing.
globalThis.ResizeObserver ??= class {
  observe() {}
  unobserve() {}
  disconnect() {}
} as unknown as typeof ResizeObserver;

let mounted: Record<string, unknown> | null = null;

/**
 * Mounts `component` into `document.body` with `props` and flushes Svelte's updates once; the
 * shared `afterEach` (or `unmountShown`) unmounts it. One component at a time: mounting again
 * without unmounting leaves the first to the body reset.
 */
export function mountInBody<Props extends Record<string, any>>(component: Component<Props>, props: Props): void {
  mounted = mount(component, { target: document.body, props }) as Record<string, unknown>;
  flushSync();
}

/** Unmounts what `mountInBody` mounted, if anything (for a test that mounts twice). */
export function unmountShown(): void {
  if (mounted) unmount(mounted);
  mounted = null;
}

afterEach(() => {
  unmountShown();
  document.body.innerHTML = '';
  setLanguageOverride(null);
});

/**
 * The signed-in screen (`Reviewer.svelte`) mounted on `api`, with the shell's `status` (`null`:
 * none yet), the clock `now` and no-op settings/sign-out callbacks.
 */
export function mountReviewer(api: Api, status: AppStatus | null = null, now: Date = new Date()): void {
  mountInBody(Reviewer, { api, status, now, onsettings: () => {}, onsignout: () => {} });
}

/**
 * The detail pane (`Detail.svelte`) showing `detail` for the queue row `item`: idle (not busy,
 * history closed), on the clock 2026-01-01T01:00:00Z, with no-op callbacks.
 */
export function mountDetail(detail: RequestDetail, item: QueueItem): void {
  mountInBody(Detail, {
    detail,
    item,
    now: new Date('2026-01-01T01:00:00Z'),
    busy: false,
    approveText: 'a',
    denyText: 'd',
    history: null,
    historyOpen: false,
    historyError: null,
    onapprove: () => {},
    ondeny: () => {},
    onretry: () => {},
    ontogglehistory: () => {},
  });
}

/** The first element whose `data-testid` is `id`, or `null`. */
export const byTestId = (id: string) => document.querySelector(`[data-testid="${id}"]`) as HTMLElement | null;

/** Every element whose `data-testid` is `id`, in document order. */
export const allByTestId = (id: string) => Array.from(document.querySelectorAll(`[data-testid="${id}"]`)) as HTMLElement[];
