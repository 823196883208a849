// A local OpenID provider for development and tests: the OpenID-certified `oidc-provider`
// package with two demo users, a `groups` claim, a login form, RP-initiated logout, and
// key rotation on demand (RS256 by default; ES256 or EdDSA selectable).
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';

export const USERS = {
  alice: {
    password: 'alice',
    claims: {
      sub: 'alice-0001',
      email: 'alice@example.com',
      email_verified: true,
      name: 'Alice Example',
      preferred_username: 'alice',
      groups: ['family', 'admins'],
    },
  },
  bob: {
    password: 'bob',
    claims: {
      sub: 'bob-0002',
      email: 'bob@example.org',
      email_verified: false,
      name: 'Bob Guest',
      preferred_username: 'bob',
      groups: ['guests'],
    },
  },
  carol: {
    password: 'carol',
    claims: {
      sub: 'carol-0003',
      email: 'carol@example.net',
      email_verified: true,
      name: 'Carol Friend',
      preferred_username: 'carol',
      groups: [],
    },
  },
};

const BY_SUB = Object.fromEntries(Object.values(USERS).map((u) => [u.claims.sub, u.claims]));

async function makeKey(alg, kid) {
  const options = { extractable: true };
  if (alg === 'EdDSA') options.crv = 'Ed25519';
  const { privateKey } = await generateKeyPair(alg, options);
  return { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, clientId, error, prefix = '/') {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in - Local ID</title>
<style>body{font:16px system-ui,sans-serif;background:#eef1f6;display:flex;justify-content:center;padding-top:10vh}
form{background:#fff;padding:2rem;border-radius:10px;box-shadow:0 2px 10px #0002;display:grid;gap:.75rem;width:18rem}
input,button{font:inherit;padding:.5rem}button{background:#2f5bd3;color:#fff;border:0;border-radius:6px}.err{color:#b00020}</style></head>
<body><form method="post" action="${esc(prefix)}interaction/${esc(uid)}/login" autocomplete="off">
<h1 style="margin:0;font-size:1.2rem">Local ID</h1><p style="margin:0">Sign in to <b>${esc(clientId)}</b></p>
${error ? `<p class="err">${esc(error)}</p>` : ''}
<input id="username" name="username" placeholder="username (alice, bob or carol)" required autofocus>
<input id="password" name="password" type="password" placeholder="password (same as username)" required>
<button id="submit" type="submit">Sign in</button></form></body></html>`;
}

/**
 * fetch for the provider's own outgoing requests (back-channel logout): names under
 * .localhost go to 127.0.0.1 with the name in Host, as a browser would send them.
 */
function localFetch(url, options = {}) {
  const u = new URL(url);
  if (!u.hostname.endsWith('.localhost')) return globalThis.fetch(url, options);
  const headers = { ...Object.fromEntries(new Headers(options.headers || {})), host: u.host };
  const body = options.body === undefined ? undefined : String(options.body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: u.port || 80, path: u.pathname + u.search, method: options.method || 'GET', headers, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve(new Response(Buffer.concat(chunks), { status: res.statusCode })));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; if (body.length > 1e5) req.destroy(); });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

/**
 * How the local issuer imitates the issuers Portcullis is used with (docs/issuers/):
 * - pocket-id: RS256, refresh tokens rotated on every use, no back-channel logout and so
 *   no `sid` in ID tokens.
 * - authentik: an issuer URL with a path and a trailing slash
 *   (`/application/o/<slug>/`), ES256 keys.
 * - keycloak: ID tokens carrying the claim `typ: "ID"`; back-channel logout with `sid`;
 *   no `groups` scope (the groups come from a mapper on the client's own scope, as
 *   docs/issuers/keycloak.md sets up), and a login naming a scope the realm does not have
 *   is refused with `invalid_scope`, as Keycloak (since version 10) refuses it.
 * - strict: as OpenID Connect Core §5.4 has it (oidc-provider's default): with an access
 *   token issued, the claims of the `email`, `profile` and `groups` scopes come from the
 *   UserInfo endpoint only, and the ID token carries little more than `sub`.
 */
export const PROFILES = {
  'pocket-id': { alg: 'RS256', backchannel: false },
  authentik: { alg: 'ES256', path: '/application/o/portcullis/' },
  keycloak: { alg: 'RS256', idTokenTyp: 'ID', groupsScope: false, refuseUnknownScopes: true },
  strict: { claimsFromUserinfoOnly: true },
};

/**
 * Starts the provider on `port`.
 * clients: [{ client_id, client_secret?, redirect_uris, post_logout_redirect_uris, backchannel_logout_uri? }]
 * profile: one of PROFILES (default: none of their particulars).
 */
export async function startIssuer({ port, host = '127.0.0.1', clients, alg, log = () => {}, profile, authMethods }) {
  const imitate = profile ? PROFILES[profile] : {};
  if (profile && !imitate) throw new Error(`unknown issuer profile ${profile}`);
  alg = alg || imitate.alg || 'RS256';
  const prefix = imitate.path || '/';
  // Authentik's issuer ends with a slash; the others have none.
  const issuer = `http://${host}:${port}${prefix === '/' ? '' : prefix}`;
  let keyNumber = 1;
  let currentAlg = alg;
  let keys = [await makeKey(alg, `key-${keyNumber}`)];
  const cookieKeys = [randomBytes(32).toString('hex')];
  let down = false;
  const grants = new Map(); // sub → grant IDs, so a test can revoke a user's grants
  const groupsScope = imitate.groupsScope !== false;
  // What discovery lists as scopes_supported.
  const listedScopes = ['openid', 'offline_access', 'email', 'profile', ...(groupsScope ? ['groups'] : [])];

  function build() {
    const provider = new Provider(issuer, {
      clients: clients.map((c) => ({
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: c.client_secret ? 'client_secret_basic' : 'none',
        id_token_signed_response_alg: currentAlg,
        ...c,
      })),
      jwks: { keys },
      // Every asymmetric algorithm an issuer may sign ID tokens with (the default list
      // leaves out RS384/512, PS384/512, ES384/512).
      enabledJWA: {
        idTokenSigningAlgValues: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'],
      },
      cookies: { keys: cookieKeys },
      // What discovery lists as token_endpoint_auth_methods_supported (default: all).
      ...(authMethods ? { clientAuthMethods: authMethods } : {}),
      findAccount: (_ctx, sub) => BY_SUB[sub] && ({
        accountId: sub,
        claims: () => (imitate.idTokenTyp ? { ...BY_SUB[sub], typ: imitate.idTokenTyp } : BY_SUB[sub]),
      }),
      claims: {
        openid: ['sub', ...(imitate.idTokenTyp ? ['typ'] : []), ...(groupsScope ? [] : ['groups'])],
        email: ['email', 'email_verified'],
        profile: ['name', 'preferred_username'],
        ...(groupsScope ? { groups: ['groups'] } : {}),
      },
      scopes: listedScopes,
      // Put the scope claims into the ID token, as Pocket ID does (unless strict).
      conformIdTokenClaims: Boolean(imitate.claimsFromUserinfoOnly),
      features: {
        devInteractions: { enabled: false },
        rpInitiatedLogout: {
          enabled: true,
          logoutSource: async (ctx, form) => {
            ctx.body = `<!doctype html><html><body><h1>Sign out of Local ID?</h1>${form}<button id="logout-yes" type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button></body></html>`;
          },
        },
        backchannelLogout: { enabled: imitate.backchannel !== false },
      },
      interactions: { url: (_ctx, interaction) => `${prefix}interaction/${interaction.uid}` },
      fetch: localFetch,
      pkce: { required: () => true },
      // As Pocket ID: refresh tokens for clients allowed the grant (no consent prompt for
      // offline_access), rotated on every use.
      issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
      rotateRefreshToken: true,
      // First-party clients only: no consent screen.
      loadExistingGrant: async (ctx) => {
        const grantId = ctx.oidc.result?.consent?.grantId
          || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
        if (grantId) return ctx.oidc.provider.Grant.find(grantId);
        const grant = new ctx.oidc.provider.Grant({
          clientId: ctx.oidc.client.clientId,
          accountId: ctx.oidc.session.accountId,
        });
        grant.addOIDCScope('openid email profile groups offline_access');
        const id = await grant.save();
        const sub = ctx.oidc.session.accountId;
        grants.set(sub, [...(grants.get(sub) || []), id]);
        return grant;
      },
      ttl: { IdToken: 3600, AccessToken: 3600, Session: 86400, Grant: 86400, Interaction: 600 },
      renderError: async (ctx, out) => {
        ctx.type = 'html';
        ctx.body = `<!doctype html><html><body><h1>Local ID error</h1><pre>${esc(JSON.stringify(out))}</pre></body></html>`;
      },
    });
    provider.proxy = false;
    provider.on('grant.success', (ctx) => {
      const { grant_type: type } = ctx.oidc.params;
      const sub = ctx.oidc.entities.RefreshToken?.accountId || ctx.oidc.entities.Account?.accountId || '';
      log(`grant ${type} ${sub}`);
    });
    provider.on('grant.error', (ctx, err) => log(`grant error ${ctx.oidc.params?.grant_type}: ${err.message}`));
    provider.on('backchannel.success', (_ctx, client, sub, sid) => log(`backchannel ok ${client.clientId} ${sub} ${sid}`));
    provider.on('backchannel.error', (_ctx, err, client) => log(`backchannel error ${client.clientId}: ${err.message}`));
    return provider;
  }

  let provider = build();
  let callback = provider.callback();

  async function interaction(req, res, url) {
    const match = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
    const details = await provider.interactionDetails(req, res);
    if (req.method === 'GET' && !match[2]) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(loginPage(details.uid, details.params.client_id, undefined, prefix));
    }
    if (req.method === 'POST' && match[2]) {
      const form = await readForm(req);
      const user = USERS[form.get('username')];
      if (!user || user.password !== form.get('password')) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end(loginPage(details.uid, details.params.client_id, 'Wrong username or password', prefix));
      }
      log(`login ${user.claims.sub}`);
      return provider.interactionFinished(req, res, { login: { accountId: user.claims.sub } }, { mergeWithLastSubmission: false });
    }
    res.writeHead(405).end();
  }

  const server = http.createServer(async (req, res) => {
    if (down) {
      req.socket.destroy();
      return;
    }
    if (prefix !== '/') {
      // Mounted below a path, as Authentik serves each application's issuer.
      if (!req.url.startsWith(prefix)) return res.writeHead(404).end();
      req.originalUrl = req.url;
      req.url = req.url.slice(prefix.length - 1);
    }
    const url = new URL(req.url, `http://${host}:${port}`);
    // oidc-provider takes either way of sending a client secret, whatever the client is
    // registered for; Authelia and Zitadel refuse HTTP Basic for a client registered with
    // client_secret_post, and so does this issuer.
    if (url.pathname === '/token' && req.headers.authorization && clients.some((c) => c.token_endpoint_auth_method === 'client_secret_post')) {
      log('token refused: HTTP Basic from a client_secret_post client');
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic' });
      return res.end(JSON.stringify({ error: 'invalid_client', error_description: 'client_secret_post only' }));
    }
    // Keycloak answers an authorization request naming a scope the realm does not have
    // with `invalid_scope`, back at the client (oidc-provider ignores such scopes).
    if (imitate.refuseUnknownScopes && url.pathname === '/auth') {
      const requested = (url.searchParams.get('scope') || '').split(' ').filter(Boolean);
      const redirect = url.searchParams.get('redirect_uri');
      if (requested.some((s) => !listedScopes.includes(s)) && clients.some((c) => c.redirect_uris.includes(redirect))) {
        log(`authorization refused: invalid scopes ${requested.join(' ')}`);
        const back = new URL(redirect);
        back.searchParams.set('error', 'invalid_scope');
        back.searchParams.set('error_description', `Invalid scopes: ${requested.join(' ')}`);
        if (url.searchParams.has('state')) back.searchParams.set('state', url.searchParams.get('state'));
        res.writeHead(302, { location: back.toString() });
        return res.end();
      }
    }
    try {
      if (url.pathname.startsWith('/interaction/')) return await interaction(req, res, url);
      return callback(req, res);
    } catch (err) {
      log(`issuer error: ${err.stack || err}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err.message || err));
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });

  return {
    url: issuer,
    get keys() { return keys; },
    provider: () => provider,
    /** Replaces the signing key (the JWKS then lists only the new one, as Pocket ID's does). */
    async rotate(newAlg = currentAlg) {
      currentAlg = newAlg;
      keyNumber += 1;
      keys = [await makeKey(newAlg, `key-${keyNumber}`)];
      provider = build();
      callback = provider.callback();
      return keys[0].kid;
    },
    /** Changes a user's claims (e.g. groups), as an administrator would at the issuer. */
    setClaims(username, claims) { Object.assign(USERS[username].claims, claims); },
    /** Revokes every grant of a user: their refresh tokens stop working. */
    async revokeGrants(username) {
      const { sub } = USERS[username].claims;
      for (const id of grants.get(sub) || []) {
        const grant = await provider.Grant.find(id);
        if (grant) await grant.destroy();
      }
      grants.delete(sub);
    },
    /** While down, every connection is dropped. */
    setDown(value) { down = value; },
    async stop() {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * The registration of the Portcullis client at the local issuer: callback and sign-out
 * URLs on every host (http, this port), optionally back-channel logout to the first host
 * and `auth_time` in every ID token.
 */
export function gateClient({ hosts, port, secret, backchannel = false, requireAuthTime = false, secretInForm = false }) {
  const base = (host) => `http://${host}:${port}`;
  return {
    client_id: 'portcullis',
    // The issuer takes the secret only in the form (`client_secret_post`), as Authelia or
    // Zitadel do when the client is registered so.
    ...(secretInForm ? { token_endpoint_auth_method: 'client_secret_post' } : {}),
    // `auth_time` in every ID token, as Keycloak and Authentik send it (without it, only
    // when the request carries max_age).
    ...(requireAuthTime ? { require_auth_time: true } : {}),
    client_secret: secret,
    redirect_uris: hosts.map((h) => `${base(h)}/.portcullis/callback`),
    post_logout_redirect_uris: hosts.map((h) => `${base(h)}/.portcullis/signed-out`),
    ...(backchannel ? {
      backchannel_logout_uri: `${base(hosts[0])}/.portcullis/backchannel-logout`,
      backchannel_logout_session_required: true,
    } : {}),
  };
}
