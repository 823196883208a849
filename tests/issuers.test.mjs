// The gate against the local issuer imitating each issuer of docs/issuers/: Pocket ID (no
// back-channel logout, so no `sid`), Authentik (an issuer URL with a path and a trailing
// slash, ES256), Keycloak (ID tokens with `typ: "ID"`, back-channel logout by `sid`),
// Authelia (`strict`: claims from UserInfo only; a client secret taken only in the form);
// and the other signature algorithms issuers offer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, exportJWK, generateKeyPair, importJWK } from 'jose';
import { startStack } from './support/stack.mjs';
import { Browser, login } from '../stack/client.mjs';
import { USERS } from '../stack/issuer.mjs';

const JSON_ACCEPT = { accept: 'application/json' };

async function signIn(s, user = 'alice') {
  const b = new Browser(user);
  const done = await login(b, `${s.app}/`, { username: user });
  assert.equal(done.status, 200, done.body.slice(0, 300));
  return b;
}

async function sessionRecord(s, b) {
  const { session_id_hash: hash } = (await b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT })).json();
  return JSON.parse(await s.worker.kv.get(`session:${hash}`));
}

async function logoutToken(s, claims) {
  const jwk = s.issuer.keys[0];
  const now = Math.floor(Date.now() / 1000);
  const payload = { iss: s.issuer.url, aud: 'portcullis', iat: now, exp: now + 120, jti: `jti-${Math.random()}`, events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, ...claims };
  return new SignJWT(payload).setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ: 'logout+jwt' }).sign(await importJWK(jwk, jwk.alg));
}

const backchannel = async (s, token) => new Browser().request(`${s.app}/.portcullis/backchannel-logout`, {
  method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ logout_token: token }).toString(),
});

const payload = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

test('Pocket ID profile: no sid in ID tokens; a back-channel logout by sub still ends the sessions', async () => {
  const s = await startStack({ issuerProfile: 'pocket-id' });
  try {
    const b = await signIn(s);
    const record = await sessionRecord(s, b);
    assert.equal(payload(record.id_token).sid, undefined, 'the ID token has no sid');
    assert.equal(record.sid, undefined);
    assert.deepEqual((await s.worker.kv.list({ prefix: 'sid:' })).keys, [], 'no sid index');
    assert.equal((await backchannel(s, await logoutToken(s, { sub: 'alice-0001' }))).status, 200);
    assert.equal((await b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT })).status, 401);
  } finally {
    await s.stop();
  }
});

test('Authentik profile: an issuer URL with a path and a trailing slash, ES256', async () => {
  const s = await startStack({ issuerProfile: 'authentik' });
  try {
    assert.match(s.issuer.url, /\/application\/o\/portcullis\/$/);
    const b = await signIn(s);
    const record = await sessionRecord(s, b);
    assert.equal(payload(record.id_token).iss, s.issuer.url, 'iss carries the trailing slash');
    assert.equal(JSON.parse(Buffer.from(record.id_token.split('.')[0], 'base64url')).alg, 'ES256');
    assert.equal((await b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT })).json().sub, 'alice-0001');
  } finally {
    await s.stop();
  }
});

test('Keycloak profile: no groups scope asked of a realm without one; ID tokens marked typ ID never open an app as bearer tokens; back-channel logout by sid', async () => {
  const s = await startStack({ issuerProfile: 'keycloak', backchannel: true, photos: { accept_bearer: true } });
  try {
    // The realm refuses a login naming a scope it does not have: Portcullis asks only for
    // the default scopes its discovery lists, and the groups still come (from the mapper).
    const laptop = await signIn(s);
    assert.ok(!s.issuerLog.some((l) => l.includes('authorization refused')), s.issuerLog.join('\n'));
    const me = (await laptop.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT })).json();
    assert.deepEqual(me.groups, USERS.alice.claims.groups);
    const phone = await signIn(s, 'alice');
    const record = await sessionRecord(s, laptop);
    const claims = payload(record.id_token);
    assert.equal(claims.typ, 'ID');
    assert.ok(claims.sid, 'sid, since the client requires sessions in logout tokens');
    const asBearer = await new Browser().request(`${s.app}/api/x`, { headers: { ...JSON_ACCEPT, authorization: `Bearer ${record.id_token}` } });
    assert.equal(asBearer.status, 401, 'an ID token is not a bearer credential');

    // The logout of the laptop's issuer session ends the laptop's Portcullis session only.
    const phoneSid = payload((await sessionRecord(s, phone)).id_token).sid;
    assert.equal((await backchannel(s, await logoutToken(s, { sub: 'alice-0001', sid: claims.sid }))).status, 200);
    assert.equal((await laptop.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT })).status, 401);
    const phoneMe = await phone.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT });
    assert.equal(phoneMe.status, phoneSid === claims.sid ? 401 : 200, 'another issuer session stays');
  } finally {
    await s.stop();
  }
});

test('strict profile: claims only from UserInfo are asked there, and decide access', async () => {
  const s = await startStack({
    issuerProfile: 'strict',
    apps: [{ host: 'family.localhost', allow_groups: ['family'] }, { host: 'staff.localhost', allow_groups: ['staff'] }],
  });
  try {
    const b = await signIn(s);
    const record = await sessionRecord(s, b);
    const claims = payload(record.id_token);
    assert.equal(claims.email, undefined, 'the ID token itself carries no email');
    assert.equal(claims.groups, undefined, 'nor groups');
    const me = (await b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT })).json();
    assert.equal(me.email, 'alice@example.com');
    assert.deepEqual(me.groups, USERS.alice.claims.groups);
    // The upstream sees them, and group rules use them.
    const echoed = (await b.request(`${s.app}/echo`, { headers: JSON_ACCEPT })).json();
    assert.equal(echoed.headers['x-auth-request-email'], 'alice@example.com');
    const port = new URL(s.app).port;
    const family = await login(new Browser('alice'), `http://family.localhost:${port}/echo`, { username: 'alice' });
    const staff = await login(new Browser('alice'), `http://staff.localhost:${port}/echo`, { username: 'alice' });
    assert.deepEqual([family.status, staff.status], [200, 403]);
  } finally {
    await s.stop();
  }
});

test('an issuer taking the client secret only in the form: logins work, after one refusal of Basic', async () => {
  const s = await startStack({ secretInForm: true });
  try {
    const b = await signIn(s);
    assert.equal((await b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT })).json().sub, 'alice-0001');
    const second = await signIn(s, 'bob');
    assert.equal((await second.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT })).json().sub, 'bob-0002');
    const refused = s.issuerLog.filter((l) => /^token refused/.test(l));
    assert.equal(refused.length, 1, `Basic is tried once per isolate, then the form:\n${s.issuerLog.join('\n')}`);
  } finally {
    await s.stop();
  }
});

test('an issuer whose discovery lists only client_secret_post gets the secret in the form at once', async () => {
  const s = await startStack({ secretInForm: true, issuerAuthMethods: ['client_secret_post', 'none'] });
  try {
    const listed = await (await fetch(`${s.issuer.url}/.well-known/openid-configuration`)).json();
    assert.deepEqual(listed.token_endpoint_auth_methods_supported, ['client_secret_post', 'none']);
    const b = await signIn(s);
    assert.equal((await b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT })).json().sub, 'alice-0001');
    assert.deepEqual(s.issuerLog.filter((l) => /^token refused/.test(l)), [], s.issuerLog.join('\n'));
  } finally {
    await s.stop();
  }
});

test('issuers signing with PS256/384/512, ES384 or ES512: logins verify, and a token signed by another key does not', { timeout: 120_000 }, async () => {
  const s = await startStack({ backchannel: true });
  try {
    for (const alg of ['PS256', 'PS384', 'PS512', 'ES384', 'ES512']) {
      // As after a key rotation at the issuer: the gate refetches the JWKS for the new kid.
      const kid = await s.issuer.rotate(alg);
      const b = await signIn(s);
      const record = await sessionRecord(s, b);
      assert.deepEqual(
        (({ alg: a, kid: k }) => ({ alg: a, kid: k }))(JSON.parse(Buffer.from(record.id_token.split('.')[0], 'base64url'))),
        { alg, kid },
      );
      const me = () => b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT });
      assert.equal((await me()).json().sub, 'alice-0001', alg);

      // A logout token with this algorithm and kid, signed by a key the issuer never had.
      const { privateKey } = await generateKeyPair(alg, { extractable: true });
      const impostor = { ...(await exportJWK(privateKey)), alg, kid };
      const now = Math.floor(Date.now() / 1000);
      const claims = { iss: s.issuer.url, aud: 'portcullis', iat: now, exp: now + 120, events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, sub: 'alice-0001' };
      const forged = await new SignJWT({ ...claims, jti: `forged-${alg}` }).setProtectedHeader({ alg, kid, typ: 'logout+jwt' }).sign(await importJWK(impostor, alg));
      assert.equal((await backchannel(s, forged)).status, 400, `${alg}: a forged logout token is refused`);
      assert.equal((await me()).status, 200, `${alg}: and ends nothing`);
      // The issuer's own, with the same algorithm, is accepted.
      assert.equal((await backchannel(s, await logoutToken(s, { sub: 'alice-0001' }))).status, 200, alg);
      assert.equal((await me()).status, 401, `${alg}: the session is over`);
    }
  } finally {
    await s.stop();
  }
});
