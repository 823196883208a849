// The gate against a second, independent OpenID provider: LemonLDAP::NG 2.16 (Debian's
// packages, scripts/install-tools --lemonldap), configured as docs/issuers/lemonldap-ng.md
// says. Where oidc-provider and LemonLDAP::NG differ, Portcullis must work with both: an
// issuer that names itself with a trailing slash, claims only from UserInfo, a `groups`
// claim released by an extra scope, refresh tokens tied to the person's session at the
// portal, JWT access tokens without email or groups.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Browser } from '../stack/client.mjs';
import { lemonldapInstalled, startLemonldap, submitPortalLogin } from '../stack/lemonldap.mjs';
import { freePort } from '../stack/ports.mjs';
import { startUpstream } from '../stack/upstream.mjs';
import { startWorker } from '../stack/worker.mjs';
import { createAppPassword } from './support/app-passwords.mjs';
import { CLIENT_SECRET, SESSION_SECRET } from './support/stack.mjs';

const JSON_ACCEPT = { accept: 'application/json' };
// Re-validation as often as Portcullis allows, so a test can wait for it.
const EVERY = 30;

let issuer;
let upstream;
let worker;
let app;
let api;
let auth;

before(async () => {
  // Installed by scripts/install-tools --lemonldap, which scripts/test runs: missing is a
  // failure, never a skip.
  assert.ok(lemonldapInstalled(), 'LemonLDAP::NG is not installed: run scripts/install-tools --lemonldap');
  const [issuerPort, upstreamPort, workerPort] = await Promise.all([freePort(), freePort(), freePort()]);
  app = `http://photos.localhost:${workerPort}`;
  api = `http://api.localhost:${workerPort}`;
  // Self-service (app passwords) lives on the auth host, which does every login.
  auth = `http://auth.localhost:${workerPort}`;
  issuer = await startLemonldap({
    port: issuerPort,
    callbacks: [`${auth}/.portcullis/callback`, `${api}/.portcullis/callback`],
    signedOut: `${auth}/.portcullis/signed-out`,
    secret: CLIENT_SECRET,
  });
  upstream = await startUpstream({ port: upstreamPort });
  worker = await startWorker({
    port: workerPort,
    config: {
      issuer: issuer.url,
      client_id: 'portcullis',
      // LemonLDAP::NG does not list its extra `groups` scope: asked for by name.
      scopes: ['openid', 'profile', 'email', 'groups'],
      revalidate_every: `${EVERY}s`,
      session_cache: '0s',
      cookie_domain: 'localhost',
      auth_host: 'auth.localhost',
      apps: [
        { host: 'photos.localhost', origin: upstream.url, allow_groups: ['family'], app_passwords: true },
        { host: 'api.localhost', origin: upstream.url, accept_bearer: true, api_paths: ['/**'] },
      ],
    },
    secrets: { SESSION_SECRET, OIDC_CLIENT_SECRET: CLIENT_SECRET },
  });
});

after(async () => {
  await worker?.stop();
  await upstream?.stop();
  await issuer?.stop();
});

/** A browser signed in as `user` through the portal's login form. */
async function signIn(user, start = `${app}/albums?sort=date`) {
  const b = new Browser(user);
  // Every login is done on the auth host.
  const toAuth = await b.request(start, { headers: { accept: 'text/html' } });
  assert.equal(toAuth.status, 303, toAuth.body.slice(0, 300));
  assert.ok(toAuth.location.startsWith(`${auth}/.portcullis/login?`), toAuth.location);
  const first = await b.request(toAuth.location, { headers: { accept: 'text/html' } });
  assert.equal(first.status, 303, first.body.slice(0, 300));
  assert.ok(first.location.startsWith(`${issuer.url}oauth2/authorize?`), first.location);
  const form = await b.follow(first.location);
  const done = await submitPortalLogin(b, form, user);
  return { b, done };
}

test('login through LemonLDAP::NG: identity from UserInfo, groups from an extra scope, access rules', async () => {
  const { b, done } = await signIn('dwho');
  assert.equal(done.status, 200, done.body.slice(0, 300));
  assert.equal(done.url, `${app}/albums?sort=date`);
  const echo = (await b.request(`${app}/echo`, { headers: JSON_ACCEPT })).json();
  const h = echo.headers;
  assert.equal(h['x-auth-request-user'], 'dwho@badwolf.org', 'the verified email (email_verified from a macro)');
  assert.equal(h['x-auth-request-preferred-username'], 'dwho');
  assert.equal(h['remote-name'], 'Doctor Who');
  assert.ok(h['x-auth-request-groups'].split(',').includes('family'), h['x-auth-request-groups']);
  assert.ok(!h.cookie?.includes('portcullis'), 'no Portcullis cookie upstream');

  // msmith is in no `family`: signed in at the issuer, refused by the app's rule.
  const { done: refused } = await signIn('msmith');
  assert.equal(refused.status, 403, refused.body.slice(0, 300));
});

test('a JWT access token from LemonLDAP::NG opens an accept_bearer app; its ID token does not', async () => {
  // The code flow done by hand, as a script would obtain a token.
  const b = new Browser('rtyler');
  const page = await b.request(issuer.url, { headers: { accept: 'text/html' } });
  await submitPortalLogin(b, page, 'rtyler');
  const verifier = randomBytes(32).toString('base64url');
  const redirect = `${api}/.portcullis/callback`;
  const authorize = new URL(`${issuer.url}oauth2/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: 'portcullis', redirect_uri: redirect, scope: 'openid profile email',
    state: 's', nonce: 'n', code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
  })) authorize.searchParams.set(k, v);
  const answer = await b.request(authorize.toString(), { headers: { accept: 'text/html' } });
  const code = new URL(answer.location).searchParams.get('code');
  assert.ok(code, answer.location);
  const tokens = await (await fetch(`${issuer.url}oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`portcullis:${CLIENT_SECRET}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirect, code_verifier: verifier }),
  })).json();
  const call = (token) => new Browser('script').request(`${api}/items`, { headers: { ...JSON_ACCEPT, authorization: `Bearer ${token}` } });

  const ok = await call(tokens.access_token);
  assert.equal(ok.status, 200, ok.body.slice(0, 300));
  assert.equal(ok.json().headers['x-auth-request-user'], 'rtyler', 'no email in the access token: the sub');
  assert.equal(ok.json().headers.authorization, undefined, 'the token is not passed on');
  const idToken = await call(tokens.id_token);
  assert.equal(idToken.status, 401);
  assert.equal(idToken.json().error, 'invalid_token');
});

test('an app password is created through LemonLDAP::NG (its own grant) and opens the app', async () => {
  const { b } = await signIn('rtyler');
  const created = await createAppPassword(b, app, { app: 'photos.localhost', label: 'phone', lifetime: '1d', username: 'rtyler' });
  const res = await new Browser('phone').request(`${app}/api/assets`, {
    headers: { ...JSON_ACCEPT, 'portcullis-client-id': created.id, 'portcullis-client-secret': created.secret },
  });
  assert.equal(res.status, 200, res.body.slice(0, 300));
  assert.equal(res.json().headers['x-auth-request-credential'], 'phone');
  assert.equal(res.json().headers['x-auth-request-user'], 'rtyler@badwolf.org');
});

test('signing out at the portal ends the Portcullis session at its next re-validation', async () => {
  const { b, done } = await signIn('dwho');
  assert.equal(done.status, 200);
  const signedOut = await b.request(`${issuer.url}?logout=1`, { headers: { accept: 'text/html' } });
  assert.equal(signedOut.status, 200);
  // Still valid here until the issuer is asked again.
  assert.equal((await b.request(`${app}/echo`, { headers: JSON_ACCEPT })).status, 200);

  await new Promise((r) => setTimeout(r, (EVERY + 1) * 1000));
  const mark = worker.lines.length;
  // Due: served, and re-validated after the response; LemonLDAP::NG refuses the refresh
  // token of a session that has ended.
  assert.equal((await b.request(`${app}/echo`, { headers: JSON_ACCEPT })).status, 200);
  let status;
  for (let i = 0; i < 50; i += 1) {
    status = (await b.request(`${app}/echo`, { headers: JSON_ACCEPT })).status;
    if (status === 401) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(status, 401, worker.lines.slice(mark).join('\n'));
  assert.ok(worker.lines.slice(mark).some((l) => l.includes('revalidation_failed')), worker.lines.slice(mark).join('\n'));
});

test('sign-out goes to LemonLDAP::NG with the ID token as a hint, and the session ends here', async () => {
  const { b } = await signIn('rtyler');
  const out = await b.request(`${app}/.portcullis/logout`, { headers: { accept: 'text/html', 'sec-fetch-site': 'same-origin' } });
  assert.equal(out.status, 303);
  const end = new URL(out.location);
  assert.equal(`${end.origin}${end.pathname}`, `${issuer.url}oauth2/logout`);
  assert.ok(end.searchParams.get('id_token_hint'));
  assert.equal(end.searchParams.get('post_logout_redirect_uri'), `${auth}/.portcullis/signed-out`);
  assert.equal((await b.request(`${app}/echo`, { headers: JSON_ACCEPT })).status, 401);
  // LemonLDAP::NG asks the person to confirm.
  const confirm = await b.follow(out.location);
  assert.equal(confirm.status, 200);
});
