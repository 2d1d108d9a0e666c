// @vitest-environment jsdom
// Settings show each error at its field (issue 15 §5): every wrong field at once, each with its
// own message (what is wrong, then how to fix it) tied to the input with `aria-describedby` and
// `aria-invalid`, in the UI's language; the app's own `settings.invalid` answer lands on its field.
// Mounted for real (SettingsForm.svelte).
import { flushSync, tick } from 'svelte';
import { describe, expect, it, vi } from 'vitest';
import SettingsForm from './SettingsForm.svelte';
import { setLanguageOverride } from '../lib/i18n';
import { checkSettings, fieldOfError } from '../lib/settings-check';
import type { Settings } from '../lib/types';
import type { AppError } from '../lib/format';
import { mountInBody } from '../test/dom';

const $ = (id: string) => document.querySelector(`[data-testid="${id}"]`) as HTMLInputElement | null;
const settle = async () => {
  for (let i = 0; i < 5; i++) await tick();
  flushSync();
};
function type(id: string, value: string) {
  const el = $(id)!;
  el.value = value;
  el.dispatchEvent(new Event('input', { bubbles: true }));
  flushSync();
}

const good: Settings = {
  authority: 'https://login.microsoftonline.com/t/v2.0',
  client_id: 'c1',
  api_base_url: 'http://127.0.0.1:8080',
  api_scope: 'api://x/Approvals.ReadWrite',
  graph_base_url: 'https://graph.microsoft.com/v1.0',
  graph_scopes: ['User.ReadWrite.All'],
  provisioning: {
    tenant_domain: 'contoso.onmicrosoft.com',
    upn_form: 'seed',
    invite_redirect_url: 'https://myapplications.microsoft.com',
    send_invitation_message: true,
    extensions_app_id: null,
  },
  do_not_disturb: false,
  purge_decided_after_days: 30,
  undo_seconds: 5,
};

function open(onsave: (s: Settings) => Promise<AppError | null>, initial: Settings = good) {
  mountInBody(SettingsForm, { initial, onsave, oncancel: () => {} });
}

/** The error element an input is described by, and its text. */
function describedError(id: string): string | null {
  const input = $(id)!;
  const ids = (input.getAttribute('aria-describedby') ?? '').split(/\s+/).filter((x) => x !== '');
  const el = ids.map((i) => document.getElementById(i)).find((e) => e?.classList.contains('field-error'));
  return el ? (el.textContent ?? '').trim() : null;
}

describe('settings checks', () => {
  it('follow the reviewer crate: https, or http on loopback only; required values; 32 hex digits', () => {
    const input = {
      authority: good.authority,
      client_id: 'c',
      api_base_url: 'http://localhost:8080',
      api_scope: 's',
      graph_base_url: 'http://[::1]:9000/v1.0',
      graph_scopes: 'a b',
      tenant_domain: 'contoso.onmicrosoft.com',
      extensions_app_id: '',
      purge_decided_after_days: 1,
    };
    expect(checkSettings(input)).toEqual({});
    expect(
      checkSettings({
        ...input,
        authority: 'http://login.example.com',
        api_base_url: 'not a url',
        client_id: '  ',
        extensions_app_id: 'b7e5-c3a1',
        purge_decided_after_days: 0,
      }),
    ).toEqual({
      authority: { problem: 'notHttps' },
      api_base_url: { problem: 'notUrl' },
      client_id: { problem: 'required' },
      'provisioning.extensions_app_id': { problem: 'hex32' },
      purge_decided_after_days: { problem: 'atLeastOne' },
    });
    expect(fieldOfError({ code: 'settings.invalid', message: 'settings.provisioning.tenant_domain: is empty' })).toEqual({
      field: 'provisioning.tenant_domain',
      problem: { problem: 'required' },
    });
    expect(fieldOfError({ code: 'storage.error', message: 'settings.client_id: is empty' })).toBeNull();
  });
});

describe('SettingsForm errors at each field', () => {
  it('marks every wrong field with its own message and remedy, and saves nothing', async () => {
    setLanguageOverride('en');
    const onsave = vi.fn(async () => null);
    open(onsave);
    // Before a Save nothing is marked.
    expect($('setting-authority')!.getAttribute('aria-invalid')).toBeNull();
    type('setting-authority', 'http://login.example.com');
    type('setting-client-id', '');
    type('setting-extensions-app-id', 'nothex');
    $('settings-save')!.click();
    await settle();
    expect(onsave).not.toHaveBeenCalled();
    for (const id of ['setting-authority', 'setting-client-id', 'setting-extensions-app-id']) {
      expect($(id)!.getAttribute('aria-invalid'), id).toBe('true');
    }
    expect(describedError('setting-authority')).toBe(
      "Plain http:// would send access tokens and guests' personal data unencrypted (it is accepted only for 127.0.0.1, [::1] or localhost). Enter your tenant's sign-in address, e.g. https://login.microsoftonline.com/<tenant-id>/v2.0.",
    );
    expect(describedError('setting-client-id')).toBe(
      "This is required. Copy the Application (client) ID of the desktop app's registration from the Entra admin center.",
    );
    expect(describedError('setting-extensions-app-id')).toMatch(/^This is not 32 hexadecimal digits\. Copy the b2c-extensions-app/);
    // The right fields are not marked, and focus is on the first wrong one.
    expect($('setting-api-scope')!.getAttribute('aria-invalid')).toBeNull();
    expect(describedError('setting-api-scope')).toBeNull();
    expect(document.activeElement).toBe($('setting-authority'));
    expect($('settings-errors-summary')!.textContent).toBe('3 settings need a fix: see the marked fields.');
    // Fixed as typed: the marks go, and Save goes through.
    type('setting-authority', 'https://login.microsoftonline.com/t/v2.0');
    type('setting-client-id', 'c1');
    type('setting-extensions-app-id', 'B7E5C3A1D9F24E6A8C0B1D2E3F4A5B6C');
    expect($('setting-authority')!.getAttribute('aria-invalid')).toBeNull();
    expect($('settings-errors-summary')).toBeNull();
    $('settings-save')!.click();
    await settle();
    expect(onsave).toHaveBeenCalledOnce();
  });

  it('puts the app’s own settings.invalid answer on its field, in French', async () => {
    setLanguageOverride('fr');
    const onsave = vi.fn(async () => ({ code: 'settings.invalid' as const, message: 'settings.graph_scopes: is empty' }));
    open(onsave);
    $('settings-save')!.click();
    await settle();
    expect(onsave).toHaveBeenCalledOnce();
    expect($('setting-graph-scopes')!.getAttribute('aria-invalid')).toBe('true');
    expect(describedError('setting-graph-scopes')).toBe(
      'Ce champ est obligatoire. Saisissez au moins une étendue, séparées par des espaces, par exemple User.ReadWrite.All.',
    );
    expect($('settings-error')).toBeNull();
    // An edit clears the app's mark (it is checked again at the next Save).
    type('setting-graph-scopes', 'User.Read');
    expect($('setting-graph-scopes')!.getAttribute('aria-invalid')).toBeNull();
  });

  it('an error about no field stays below the form, with its remedy', async () => {
    setLanguageOverride('en');
    open(async () => ({ code: 'storage.error', message: 'disk full' }));
    $('settings-save')!.click();
    await settle();
    const text = $('settings-error')!.textContent ?? '';
    expect(text).toContain('storage.error: disk full');
    expect(document.querySelectorAll('[aria-invalid="true"]').length).toBe(0);
  });
});
