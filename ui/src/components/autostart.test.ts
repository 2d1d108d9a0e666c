// @vitest-environment jsdom
// The start-at-login toggle, mounted for real: it shows the OS entry's state (off by default),
// applies a change at once, and shows the shell's error and the actual state when it fails.
import { flushSync, tick } from 'svelte';
import { describe, expect, it, vi } from 'vitest';
import AutostartToggle from './AutostartToggle.svelte';
import type { Autostart } from '../lib/api';
import { mountInBody } from '../test/dom';

const $ = (id: string) => document.querySelector(`[data-testid="${id}"]`) as HTMLInputElement | null;
const settle = async () => {
  for (let i = 0; i < 5; i++) await tick();
  flushSync();
};

function open(autostart: Autostart) {
  mountInBody(AutostartToggle, { autostart });
}

describe('AutostartToggle', () => {
  it('is off until the approver turns it on, and a click applies at once', async () => {
    let on = false;
    const set = vi.fn(async (v: boolean) => void (on = v));
    open({ enabled: async () => on, set });
    await settle();
    const box = $('setting-autostart')!;
    expect(box.checked).toBe(false);
    expect(box.disabled).toBe(false);
    box.click();
    await settle();
    expect(set).toHaveBeenCalledWith(true);
    expect(on).toBe(true);
    expect($('setting-autostart')!.checked).toBe(true);
    expect($('autostart-error')).toBeNull();
  });

  it('shows why it could not change and keeps the real state', async () => {
    const set = vi.fn(async () => Promise.reject({ code: 'autostart.unavailable', message: 'start at login: read-only home' }));
    open({ enabled: async () => false, set });
    await settle();
    $('setting-autostart')!.click();
    await settle();
    expect($('setting-autostart')!.checked).toBe(false);
    expect($('autostart-error')?.textContent).toContain('read-only home');
  });

  it('stays disabled when the state cannot be read', async () => {
    open({ enabled: async () => Promise.reject({ code: 'autostart.unavailable', message: 'no entry' }), set: vi.fn() });
    await settle();
    expect($('setting-autostart')!.disabled).toBe(true);
    expect($('autostart-error')?.textContent).toContain('no entry');
  });
});
