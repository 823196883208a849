// Starts the whole local stack for a test file: issuer, upstream app, and the gate in
// workerd, on free loopback ports.
import { startIssuer, gateClient } from '../../stack/issuer.mjs';
import { freePort } from '../../stack/ports.mjs';
import { startUpstream } from '../../stack/upstream.mjs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startWorker } from '../../stack/worker.mjs';

export { freePort };

export const SESSION_SECRET = 'test-session-secret-0123456789abcdef0123456789';
export const CLIENT_SECRET = 'test-client-secret';

/**
 * options.photos: extra keys for the photos.localhost app; options.apps: further app
 * entries (their hosts get callback URLs at the issuer); options.config: extra PORTCULLIS
 * keys; options.secrets: extra secrets; options.alg: issuer signing algorithm;
 * options.issuerProfile: imitate an issuer (stack/issuer.mjs PROFILES);
 * options.requireAuthTime: the issuer puts auth_time in every ID token; options.secretInForm:
 * the issuer takes the client secret only in the form; options.issuerAuthMethods: the
 * client authentication methods the issuer's discovery lists; options.kvPersist: KV on
 * disk, kept across `redeploy`; options.people: bind PEOPLE (the persons' objects);
 * options.secondLocation: { lagMs }: a second gate, reached with `x-location: b`, whose KV
 * reads lag (stack/worker.mjs); options.authHost: self-service on auth.<domain> (with
 * cookie_domain <domain>), where app passwords are created and the admin console lives;
 * options.domain: the domain of every host (default `localhost`; Chromium refuses a
 * `Domain=localhost` cookie, so its tests with an auth host use `portcullis.localhost`).
 */
export async function startStack(options = {}) {
  const [issuerPort, upstreamPort, workerPort, deadPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const base = (host) => `http://${host}:${workerPort}`;
  const domain = options.domain || 'localhost';
  const [photos, down, auth] = ['photos', 'down', 'auth'].map((name) => `${name}.${domain}`);
  const hosts = options.callbackHosts || [photos, down, ...(options.authHost ? [auth] : []), ...(options.apps || []).map((a) => a.host)];
  const issuerLog = [];
  const issuer = await startIssuer({
    port: issuerPort,
    alg: options.alg,
    profile: options.issuerProfile,
    authMethods: options.issuerAuthMethods,
    log: (l) => issuerLog.push(l),
    clients: [gateClient({ hosts, port: workerPort, secret: CLIENT_SECRET, backchannel: options.backchannel, requireAuthTime: options.requireAuthTime, secretInForm: options.secretInForm })],
  });
  const upstream = await startUpstream({ port: upstreamPort });
  const config = {
    issuer: issuer.url,
    client_id: 'portcullis',
    apps: [
      { host: photos, origin: upstream.url, ...(options.photos || {}) },
      { host: down, origin: `http://127.0.0.1:${deadPort}` },
      ...(options.apps || []).map((a) => ({ origin: upstream.url, ...a })),
    ],
    ...(options.authHost ? { cookie_domain: domain, auth_host: auth } : {}),
    ...(options.config || {}),
  };
  const secrets = { SESSION_SECRET, OIDC_CLIENT_SECRET: CLIENT_SECRET, ...(options.secrets || {}) };
  const raw = typeof options.rawConfig === 'function' ? options.rawConfig({ issuer: issuer.url, upstream: upstream.url }) : options.rawConfig;
  // KV on disk, so a redeployment (`redeploy`) keeps it, as Workers KV does.
  const kvPersist = options.kvPersist ? await mkdtemp(path.join(tmpdir(), 'portcullis-kv-')) : undefined;
  const stack = {
    issuer,
    issuerLog,
    upstream,
    worker: await startWorker({ port: workerPort, config: raw ?? config, secrets, kvPersist, people: options.people, secondLocation: options.secondLocation }),
    config,
    app: base(photos),
    down: base(down),
    auth: base(auth),
    at: base,
    /** Deploys a changed configuration: a new worker on the same port and KV (`kvPersist`). */
    async redeploy(changed) {
      await stack.worker.stop();
      stack.config = changed;
      stack.worker = await startWorker({ port: workerPort, config: changed, secrets, kvPersist });
    },
    async stop() {
      await stack.worker.stop();
      if (kvPersist) await rm(kvPersist, { recursive: true, force: true });
      await upstream.stop();
      await issuer.stop();
    },
  };
  return stack;
}

/** The admin API's token in the tests of two locations. */
export const ADMIN_TOKEN = 'admin-token-for-tests-0123456789abcdef';
/** Their `revocation_check`, in milliseconds. */
export const CHECK_MS = 2000;

/**
 * Two locations sharing the persons' objects (PEOPLE), the second one's KV reads lagging
 * 60 s (requests with `x-location: b`), `revocation_check` 2 s and the admin API on;
 * `options` as for startStack.
 */
export function startTwoLocations(options = {}) {
  return startStack({
    people: true,
    secondLocation: { lagMs: 60_000 },
    ...options,
    secrets: { ADMIN_TOKEN, ...(options.secrets || {}) },
    config: { revocation_check: `${CHECK_MS / 1000}s`, ...(options.config || {}) },
  });
}
