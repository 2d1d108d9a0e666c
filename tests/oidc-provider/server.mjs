// An independent, certified OpenID Provider (panva/node-oidc-provider v9) for the relying-party
// conformance test in crates/guestlist-devtenant/tests/it/oidc_provider.rs: the same Rust client
// code that runs against devtenant runs against this OP. Tests start it through
// guestlist_testkit::op (crates/guestlist-testkit/src/op.rs).
//
// Usage: node server.mjs PORT        (or PORT=… node server.mjs)
// Prints "issuer: http://127.0.0.1:PORT" once it listens.
//
// Configuration:
// - one native public client (`guestlist-desktop-test`, token_endpoint_auth_method none,
//   application_type native, redirect http://127.0.0.1/callback; loopback ports are ignored for
//   native clients, RFC 8252 §7.3), PKCE required;
// - resource indicators with a default resource so access tokens are JWTs;
// - a fixed test account (`ada`);
// - devInteractions disabled: /interaction/:uid finishes login and consent (including
//   offline_access and the resource scope) immediately for the test account, so the flow runs
//   without a browser.
// - OP_IMPLY_CONSENT_PROMPT=1 (off by default): authorization requests without `prompt` get
//   `prompt=consent`. OIDC Core §11 has the OP ignore offline_access unless prompt=consent, and
//   oidc-provider does; Entra (and so the desktop app, which never sends prompt) does not. The
//   reviewer test (tests/it/reviewer_oidc_provider.rs) sets it to run the app's own sign-in.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] || process.env.PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node server.mjs PORT');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const RESOURCE = 'urn:guestlist:approvals';
const RESOURCE_SCOPE = 'approvals:readwrite';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' };

const ACCOUNTS = {
  ada: { sub: 'ada', name: 'Ada Lovelace', preferred_username: 'ada@example.test', email: 'ada@example.test', email_verified: true },
};

const configuration = {
  clients: [
    {
      client_id: 'guestlist-desktop-test',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email', 'email_verified'] },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  findAccount: async (ctx, sub) => {
    const account = ACCOUNTS[sub];
    if (!account) return undefined;
    return { accountId: sub, claims: async () => ({ ...account }) };
  },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) throw new Error(`unknown resource ${resourceIndicator}`);
        return { scope: RESOURCE_SCOPE, audience: RESOURCE, accessTokenTTL: 3600, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
      },
    },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  issueRefreshToken: async (ctx, client, code) =>
    client.grantTypeAllowed('refresh_token') && (code.scopes.has('offline_access') || code.kind === 'RefreshToken'),
};

const provider = new Provider(issuer, configuration);

async function autoInteraction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session, grantId } = details;
  let result;
  if (prompt.name === 'login') {
    result = { login: { accountId: 'ada' } };
  } else if (prompt.name === 'consent') {
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    result = { consent: { grantId: await grant.save() } };
  } else {
    result = { error: 'access_denied', error_description: `unexpected prompt ${prompt.name}` };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
const IMPLY_CONSENT = process.env.OP_IMPLY_CONSENT_PROMPT === '1';
const server = createServer((req, res) => {
  if (IMPLY_CONSENT && req.method === 'GET' && (req.url === '/auth' || req.url.startsWith('/auth?'))) {
    const u = new URL(req.url, issuer);
    if (!u.searchParams.has('prompt')) {
      u.searchParams.set('prompt', 'consent');
      req.url = `${u.pathname}${u.search}`;
    }
  }
  if (req.url.startsWith('/interaction/')) {
    autoInteraction(req, res).catch((err) => {
      console.error('interaction failed:', err);
      res.statusCode = 500;
      res.end(String(err));
    });
    return;
  }
  callback(req, res);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`issuer: ${issuer}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
