import { describe, expect, it } from 'vitest';
import { cellText, emailBreaks, emailDomain, errorLine, plural, providerLabel, requestIdOf, shortAge, sinceText, toAppError } from './format';
import { OTHER_PROVIDER_LABEL, PROVIDER_LABELS } from '../bindings/providerLabels';
import { CATALOGUES, setLanguageOverride } from './i18n';

const now = new Date('2025-03-14T12:00:00Z');

describe('format', () => {
  it('shortens ages', () => {
    expect(shortAge('2025-03-14T11:59:30Z', now, 'en')).toBe('just now');
    expect(shortAge('2025-03-14T11:48:00Z', now, 'en')).toBe('12 min');
    expect(shortAge('2025-03-14T07:00:00Z', now, 'en')).toBe('5 hr');
    expect(shortAge('2025-03-11T12:00:00Z', now, 'en')).toBe('3 days');
    expect(shortAge('2025-01-31T12:00:00Z', now, 'en')).toBe('6 wks');
    expect(shortAge('garbage', now)).toBe('');
    expect(sinceText(null, now)).toBe('never');
    expect(sinceText('2025-03-14T11:59:59Z', now)).toBe('just now');
    expect(sinceText('2025-03-14T11:00:00Z', now, 'en')).toBe('1 hour ago');
  });

  it('extracts e-mail domains and names providers', () => {
    expect(emailDomain('John@Fabrikam.COM')).toBe('fabrikam.com');
    expect(emailDomain('nodomain')).toBe('');
    expect(providerLabel('facebook.com')).toBe('Facebook');
    expect(providerLabel('entra')).toBe('Entra ID');
    expect(providerLabel('mail')).toBe('Email OTP');
    expect(providerLabel('example.org')).toBe('Other provider');
    expect(providerLabel('Google')).toBe('Other provider');
  });

  it('keeps the ReviewerError binding as it is, its request-id a typed field', () => {
    const graph = { status: 400, code: 'Request_BadRequest', message: 'Invalid value', requestId: 'abcd-1234-ef', date: null };
    const e = toAppError({ code: 'graph.error', message: 'Invalid value', requestId: 'abcd-1234-ef', graph });
    expect(e).toEqual({ code: 'graph.error', message: 'Invalid value', requestId: 'abcd-1234-ef', graph });
    expect(requestIdOf(e)).toBe('abcd-1234-ef');
    expect(errorLine(e)).toBe('graph.error: Invalid value (request-id abcd-1234-ef)');
    expect(errorLine(toAppError({ code: 'network.offline', message: 'no route' }))).toBe('network.offline: no route');
    expect(toAppError('boom')).toEqual({ code: 'ui.error', message: 'boom' });
    expect(toAppError(new Error('x')).message).toBe('x');
  });

  it('never reads a request-id out of a message, and does not repeat one the message quotes', () => {
    const bare = toAppError({ code: 'api.error', message: 'failed (request-id 0123abcd-9)' });
    expect(requestIdOf(bare)).toBeNull();
    expect(errorLine(bare)).toBe('api.error: failed (request-id 0123abcd-9)');
    const quoted = toAppError({ code: 'api.error', message: 'failed (request-id 0123abcd-9)', requestId: '0123abcd-9' });
    expect(errorLine(quoted)).toBe('api.error: failed (request-id 0123abcd-9)');
    // An outbox error stored before `requestId` existed: Graph's own request id still shows.
    const older = toAppError({
      code: 'graph.error',
      message: 'failed',
      graph: { status: 500, code: 'X', message: 'failed', requestId: '0123abcd-9', date: null },
    });
    expect(errorLine(older)).toBe('graph.error: failed (request-id 0123abcd-9)');
  });

  it('labels providers from the generated Rust table, translating only through the catalogue', () => {
    // The English catalogue says what Rust says: no second wording to drift.
    for (const [key, label] of Object.entries(PROVIDER_LABELS)) {
      const msg = (CATALOGUES.en as Record<string, string>)[`provider.${key}`];
      if (msg !== undefined) expect(msg).toBe(label);
      expect(providerLabel(key)).toBe(label);
    }
    expect(providerLabel(null)).toBe('Entra ID');
    expect(providerLabel('Google.com')).toBe('Google');
    // Any other issuer: Rust's one fallback label, translated.
    expect(CATALOGUES.en['provider.other']).toBe(OTHER_PROVIDER_LABEL);
    expect(providerLabel('login.partner.example')).toBe(OTHER_PROVIDER_LABEL);
    try {
      setLanguageOverride('fr');
      expect(providerLabel('login.partner.example')).toBe('Autre fournisseur');
      expect(providerLabel('mail')).toBe('Code à usage unique par e-mail');
      expect(providerLabel('facebook.com')).toBe('Facebook');
    } finally {
      setLanguageOverride(null);
    }
  });

  it('renders cells and plurals', () => {
    expect(cellText(null)).toBeNull();
    expect(cellText('x')).toBe('x');
    expect(cellText(true)).toBe('true');
    expect(cellText([{ issuer: 'facebook.com' }])).toBe('[{"issuer":"facebook.com"}]');
    expect(plural(1, 'request')).toBe('1 request');
    expect(plural(10000, 'request')).toBe('10,000 requests');
  });

  it('cuts e-mail addresses only after the @ and before a dot', () => {
    expect(emailBreaks('ada.lovelace@contoso.example.com')).toEqual(['ada', '.lovelace@', 'contoso', '.example', '.com']);
    expect(emailBreaks('x@y')).toEqual(['x@', 'y']);
    expect(emailBreaks('').length).toBe(0);
    expect(emailBreaks('ada.lovelace@contoso.com').join('')).toBe('ada.lovelace@contoso.com');
  });
});
