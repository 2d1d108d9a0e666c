// Who a request is, from its claims (for views that have the detail but not the queue row).

import type { RequestDetail } from './types';

/** Name, e-mail and company of a request, from its claims. */
export function describe(d: Pick<RequestDetail, 'request'>): { name: string; email: string; company: string | null } {
  const c = d.request.claims;
  const str = (k: string) => (typeof c[k] === 'string' && (c[k] as string).trim() !== '' ? (c[k] as string).trim() : null);
  const email = str('email') ?? d.request.key.email;
  const given = [str('givenName'), str('surname') ?? str('lastName')].filter((x) => x !== null).join(' ');
  const name = str('displayName') ?? (given !== '' ? given : email);
  const company = str('companyName') ?? str('company');
  return { name, email, company };
}
