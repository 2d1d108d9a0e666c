// The invoke layer: one typed function per Tauri command of src-tauri/src/commands.rs.
// The product always talks to the real commands; tests pass their own `Api`.

import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type {
  ApprovalRequest,
  AppStatus,
  DecisionOutcome,
  HistoryEntry,
  QueueQuery,
  QueueView,
  RequestDetail,
  SessionInfo,
  Settings,
  SyncReport,
  UndoOutcome,
  ApproverRights,
} from './types';

/** What the UI can ask the app. Every call rejects with `{code, message}`. */
export interface Api {
  settings(): Promise<Settings>;
  saveSettings(settings: Settings): Promise<void>;
  signIn(): Promise<SessionInfo>;
  signOut(wipeCache: boolean): Promise<void>;
  status(): Promise<AppStatus>;
  queue(query: QueueQuery): Promise<QueueView>;
  sync(): Promise<SyncReport>;
  detail(id: string): Promise<RequestDetail>;
  approve(ids: string[]): Promise<DecisionOutcome[]>;
  deny(ids: string[], reason: string): Promise<DecisionOutcome[]>;
  /** Cancels decisions nothing was sent for yet (their undo window, or held offline). */
  undo(ids: string[]): Promise<UndoOutcome[]>;
  /** The approver's directory roles and which approvals they can complete. */
  approverRights?(): Promise<ApproverRights>;
  history(id: string): Promise<HistoryEntry[]>;
  /**
   * Reopens the denied request `id` seen at `version` (its ETag, sent as `If-Match`) with a
   * required `reason`; Admin app role, network only. Resolves to the request, pending again.
   */
  reopen(id: string, version: number, reason: string): Promise<ApprovalRequest>;
  /** Calls `cb` with the app's status each time it changes (the `status-changed` event); resolves to an unsubscribe. */
  onStatusChanged(cb: (status: AppStatus) => void): Promise<() => void>;
  /** Calls `cb` whenever the background sync changed the queue; resolves to an unsubscribe. */
  onQueueChanged(cb: () => void): Promise<() => void>;
  /**
   * Calls `cb` when the shell asks to open a request (a click on its OS notification: the
   * `open-request` event with the request id) or to show the queue (`null`: a summary's click).
   */
  onOpenRequest?(cb: (id: string | null) => void): Promise<() => void>;
  /** The request a `guestlist://request/<id>` link started the app with, once (else `null`). */
  takeOpenedRequest?(): Promise<string | null>;
}

/** The OS login entry (off until the approver turns it on); rejects with `{code, message}`. */
export interface Autostart {
  enabled(): Promise<boolean>;
  set(enabled: boolean): Promise<void>;
}

/** Start at login, through the shell's commands (src-tauri/src/desktop.rs). */
export const tauriAutostart: Autostart = {
  enabled: () => invoke<boolean>('autostart_enabled'),
  set: (enabled) => invoke<void>('set_autostart', { enabled }),
};

/** The real commands. */
export const tauriApi: Api = {
  settings: () => invoke<Settings>('get_settings'),
  saveSettings: (settings) => invoke<void>('save_settings', { settings }),
  signIn: () => invoke<SessionInfo>('sign_in'),
  signOut: (wipeCache) => invoke<void>('sign_out', { wipeCache }),
  status: () => invoke<AppStatus>('status'),
  queue: (query) => invoke<QueueView>('queue', { query }),
  sync: () => invoke<SyncReport>('sync'),
  detail: (id) => invoke<RequestDetail>('detail', { id }),
  approve: (ids) => invoke<DecisionOutcome[]>('approve', { ids }),
  deny: (ids, reason) => invoke<DecisionOutcome[]>('deny', { ids, reason }),
  undo: (ids) => invoke<UndoOutcome[]>('undo', { ids }),
  approverRights: () => invoke<ApproverRights>('approver_rights'),
  history: (id) => invoke<HistoryEntry[]>('history', { id }),
  reopen: (id, version, reason) => invoke<ApprovalRequest>('reopen', { id, version, reason }),
  onStatusChanged: async (cb) => {
    const un: UnlistenFn = await listen<AppStatus>('status-changed', (e) => cb(e.payload));
    return un;
  },
  onQueueChanged: async (cb) => {
    const un: UnlistenFn = await listen('queue-changed', () => cb());
    return un;
  },
  onOpenRequest: async (cb) => {
    const un: UnlistenFn = await listen<string | null>('open-request', (e) => cb(e.payload ?? null));
    return un;
  },
  takeOpenedRequest: () => invoke<string | null>('take_opened_request'),
};
