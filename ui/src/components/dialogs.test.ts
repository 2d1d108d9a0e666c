// @vitest-environment jsdom
// The deny and sign-out dialogs, mounted for real (Svelte 5 in jsdom): what each key and button
// does, and that Esc stops at the dialog so the queue's own keys never see it.
import { flushSync } from 'svelte';
import { describe, expect, it, vi } from 'vitest';
import DenyDialog from './DenyDialog.svelte';
import SignOutDialog from './SignOutDialog.svelte';
import { mountInBody } from '../test/dom';

function key(el: Element, k: string, init: KeyboardEventInit = {}) {
  el.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true, ...init }));
  flushSync();
}
const $ = (id: string) => document.querySelector(`[data-testid="${id}"]`) as HTMLElement;

describe('DenyDialog', () => {
  function open(count = 1) {
    const onconfirm = vi.fn();
    const oncancel = vi.fn();
    mountInBody(DenyDialog, { count, onconfirm, oncancel });
    return { onconfirm, oncancel };
  }

  it('titles the dialog by how many requests it denies and focuses the reason', () => {
    open(3);
    expect($('deny-dialog').tagName).toBe('DIALOG');
    expect(document.getElementById('deny-dialog-title')?.textContent).toBe('Deny 3 requests');
    expect(document.activeElement).toBe($('deny-reason'));
  });

  it('needs a reason: Enter on an empty reason does nothing, the button is disabled', () => {
    const { onconfirm } = open();
    key($('deny-reason'), 'Enter');
    expect(onconfirm).not.toHaveBeenCalled();
    expect(($('deny-confirm') as HTMLButtonElement).disabled).toBe(true);
  });

  it('Enter denies with the trimmed reason; Shift+Enter does not', () => {
    const { onconfirm } = open();
    const area = $('deny-reason') as HTMLTextAreaElement;
    area.value = '  Unknown company  ';
    area.dispatchEvent(new Event('input', { bubbles: true }));
    flushSync();
    key(area, 'Enter', { shiftKey: true });
    expect(onconfirm).not.toHaveBeenCalled();
    key(area, 'Enter');
    expect(onconfirm).toHaveBeenCalledWith('Unknown company');
  });

  it('a quick reason fills the field', () => {
    const { onconfirm } = open();
    const quick = [...document.querySelectorAll('button.link')].find((b) => b.textContent === 'Personal (free-mail) address');
    (quick as HTMLButtonElement).click();
    flushSync();
    $('deny-confirm').click();
    expect(onconfirm).toHaveBeenCalledWith('Personal (free-mail) address');
  });

  it('Esc cancels and does not reach the window (the queue keys)', () => {
    const { oncancel } = open();
    const windowKeys = vi.fn();
    window.addEventListener('keydown', windowKeys);
    key($('deny-reason'), 'Escape');
    window.removeEventListener('keydown', windowKeys);
    expect(oncancel).toHaveBeenCalledTimes(1);
    expect(windowKeys).not.toHaveBeenCalled();
  });

  it('a click on the backdrop cancels', () => {
    const { oncancel } = open();
    $('deny-dialog').click(); // the ::backdrop: a click outside the box targets the <dialog>
    expect(oncancel).toHaveBeenCalledTimes(1);
  });
});

describe('SignOutDialog', () => {
  function open(unfinished: number) {
    const onconfirm = vi.fn();
    const oncancel = vi.fn();
    mountInBody(SignOutDialog, { unfinished, onconfirm, oncancel });
    return { onconfirm, oncancel };
  }

  it('offers to wipe the cache, on by default, with Sign out focused', () => {
    const { onconfirm } = open(0);
    expect(($('signout-wipe') as HTMLInputElement).checked).toBe(true);
    expect(document.activeElement).toBe($('signout-confirm'));
    expect($('signout-unfinished')).toBeNull();
    $('signout-confirm').click();
    expect(onconfirm).toHaveBeenCalledWith(true);
  });

  it('keeps the cache when unticked and says unsent decisions are kept', () => {
    const { onconfirm } = open(2);
    expect($('signout-unfinished').textContent).toContain('2 decisions are not sent yet');
    $('signout-wipe').click();
    flushSync();
    $('signout-confirm').click();
    expect(onconfirm).toHaveBeenCalledWith(false);
  });

  it('Esc cancels', () => {
    const { oncancel, onconfirm } = open(0);
    key($('signout-confirm'), 'Escape');
    expect(oncancel).toHaveBeenCalledTimes(1);
    expect(onconfirm).not.toHaveBeenCalled();
  });
});
