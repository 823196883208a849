// scripts/bench: the built worker in workerd in front of a local upstream, under wrk.
// For each scenario: requests/s, p50/p99 latency, and workerd CPU time per request read
// from /proc/<pid>/stat, next to a bare JavaScript pass-through worker measured in the
// same run (see measure.mjs for pinning and interleaving), and a peer: the same proxy
// written with Hono and @hono/oidc-auth (bench/peer/hono-oidc.mjs). Also full logins
// through both, the gate's CPU per login, the cold start and the wasm size.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { startIssuer, gateClient } from '../stack/issuer.mjs';
import { startUpstream } from '../stack/upstream.mjs';
import { ROOT } from '../stack/worker.mjs';
import { startMeasuredWorker, compare, pinned, pin, cpuSeconds, bareWorker } from './measure.mjs';
import { startWorkerdServe } from '../stack/workerd.mjs';
import { Browser, login } from '../stack/client.mjs';
import { freePort } from '../stack/ports.mjs';

// The benchmark's own secrets (local only).
const SESSION_SECRET = 'bench-session-secret-0123456789abcdef0123456789';
const CLIENT_SECRET = 'bench-client-secret';

const SECONDS = Number(process.env.BENCH_SECONDS || 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 9);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 10);
// Targets: the signed-in request's workerd CPU against the bare worker below, under
// Miniflare and under plain workerd; the other credentials against the signed-in path.
const TARGET_RATIO = 1.2;
const TARGET_RATIO_SERVE = 1.5;
const TARGET_CREDENTIAL_RATIO = 1.3;
const TARGET_GZIP_KB = 300;

const [issuerPort, upstreamPort, gatePort, barePort, bareInitPort, servePort, serveBarePort, honoPort, serveHonoPort] = await Promise.all(
  [freePort(), freePort(), freePort(), freePort(), freePort(), freePort(), freePort(), freePort(), freePort()],
);
const host = 'photos.localhost';
// The same origin behind an app with every kind of rule, to show what evaluating them costs.
const rulesHost = 'rules.localhost';
const token = JSON.parse(execFileSync(path.join(ROOT, 'scripts/service-token'), ['bench', '--json']).toString());
// One client registration for the gate under Miniflare and under plain workerd.
const client = gateClient({ hosts: [host, rulesHost], port: gatePort, secret: CLIENT_SECRET });
const serveClient = gateClient({ hosts: [host, rulesHost], port: servePort, secret: CLIENT_SECRET });
client.redirect_uris.push(...serveClient.redirect_uris);
client.post_logout_redirect_uris.push(...serveClient.post_logout_redirect_uris);
const HONO_SECRET = 'bench-hono-client-secret';
const honoClient = (port) => ({ client_id: `hono-${port}`, client_secret: HONO_SECRET, redirect_uris: [`http://${host}:${port}/callback`] });
const issuer = await startIssuer({ port: issuerPort, clients: [client, honoClient(honoPort), honoClient(serveHonoPort)] });
const upstream = await startUpstream({ port: upstreamPort });
const BARE = bareWorker(upstream.url);
// The same, passing the incoming request itself as the init (it also serialises
// request.cf, which costs more under Miniflare).
const BARE_REQUEST_INIT = `export default { fetch(request) {
  const url = new URL(request.url);
  return fetch('${upstream.url}' + url.pathname + url.search, request);
} };`;
const bare = await startMeasuredWorker({ port: barePort, script: BARE });
const bareInit = await startMeasuredWorker({ port: bareInitPort, script: BARE_REQUEST_INIT });
const gateConfig = {
    issuer: issuer.url,
    client_id: 'portcullis',
    service_tokens: [{ name: token.name, client_id: token.client_id, secret_sha256: token.secret_sha256 }],
    apps: [
      { host, origin: upstream.url },
      {
        host: rulesHost,
        origin: upstream.url,
        allow_groups: ['staff', 'ops', 'family'],
        allow_emails: ['someone@example.org'],
        allow_email_domains: ['example.net'],
        public_paths: ['/share/**', '/favicon.ico', '/api/shared-link/*', '/manifest.json'],
        api_paths: ['/api/**', '/feed/**'],
        service_tokens: ['bench'],
      },
    ],
};
const gateSecrets = { SESSION_SECRET, OIDC_CLIENT_SECRET: CLIENT_SECRET };
// SESSIONS bound as `wrangler dev` binds it, without the tests' logging probe.
const gate = await startMeasuredWorker({ port: gatePort, config: gateConfig, secrets: gateSecrets, kvProbe: false });
// Plain `workerd serve`: no Miniflare wrappers around the request.
const serveBare = await startWorkerdServe({ port: serveBarePort, script: BARE });
const serveGate = await startWorkerdServe({ port: servePort, config: gateConfig, secrets: gateSecrets });
// The peer, bundled as a person would deploy it.
const honoScript = execFileSync(path.join(ROOT, 'node_modules/.bin/esbuild'), [
  path.join(ROOT, 'bench/peer/hono-oidc.mjs'), '--bundle', '--format=esm', '--platform=neutral',
  '--main-fields=module,main', '--minify', '--log-level=warning',
]).toString();
const honoEnv = (port) => ({
  OIDC_ISSUER: issuer.url,
  OIDC_CLIENT_ID: `hono-${port}`,
  OIDC_CLIENT_SECRET: HONO_SECRET,
  OIDC_AUTH_SECRET: 'bench-hono-auth-secret-0123456789abcdef',
  OIDC_REDIRECT_URI: `http://${host}:${port}/callback`,
  UPSTREAM: upstream.url,
});
const hono = await startMeasuredWorker({ port: honoPort, script: honoScript, secrets: honoEnv(honoPort) });
const serveHono = await startWorkerdServe({ port: serveHonoPort, script: honoScript, secrets: honoEnv(serveHonoPort) });
pin(serveBare.pid);
pin(serveGate.pid);
pin(serveHono.pid);

// What `wrangler deploy` would upload, against the Free plan's 3 MB (compressed) limit;
// measured before the load, from wrangler's own dry run.
let upload;
try {
  const dryRun = execFileSync('npx', ['wrangler', 'deploy', '--dry-run', '--outdir', path.join(ROOT, 'tests/.artifacts/bench-dry-run')], {
    cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: 'false' }, stdio: ['ignore', 'pipe', 'pipe'],
  }).toString();
  upload = dryRun.match(/Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/);
} catch (err) {
  process.stderr.write(`wrangler deploy --dry-run failed: ${err.stderr || err.message}\n`);
}

try {
  // Full logins (start → issuer login form → callback → the app), median of 5, and the
  // workerd CPU they cost (under Miniflare the process also runs Miniflare's services).
  // Measured twice: on a fresh isolate (its first logins also pay for compiling and
  // tiering up the code they run), and again after 15 more.
  const fullLogins = async (target, port) => {
    const measure = async () => {
      const times = [];
      let cookie;
      const cpu0 = cpuSeconds(target.pid);
      for (let i = 0; i < 5; i += 1) {
        const browser = new Browser();
        const t0 = performance.now();
        const landed = await login(browser, `http://${host}:${port}/bench`);
        times.push(performance.now() - t0);
        if (landed.status !== 200) throw new Error(`login through port ${port} failed: ${landed.status}`);
        cookie = browser.cookieHeader(`http://${host}:${port}/`);
      }
      const cpuMs = ((cpuSeconds(target.pid) - cpu0) / 5) * 1000;
      return { ms: times.sort((a, b) => a - b)[2], cpuMs, cookie };
    };
    const cold = await measure();
    for (let i = 0; i < 15; i += 1) await login(new Browser(), `http://${host}:${port}/bench`);
    const warm = await measure();
    return { ...cold, warm };
  };
  const gateLogin = await fullLogins(gate, gatePort);
  const honoLogin = await fullLogins(hono, honoPort);
  const { cookie } = gateLogin;
  const loginMs = gateLogin.ms;
  const honoCookie = honoLogin.cookie;
  const serveHonoBrowser = new Browser();
  if ((await login(serveHonoBrowser, `http://${host}:${serveHonoPort}/bench`)).status !== 200) throw new Error('hono login under workerd serve failed');
  const serveHonoCookie = serveHonoBrowser.cookieHeader(`http://${host}:${serveHonoPort}/`);
  const serveBrowser = new Browser();
  if ((await login(serveBrowser, `http://${host}:${servePort}/bench`)).status !== 200) throw new Error('login under workerd serve failed');
  const serveCookie = serveBrowser.cookieHeader(`http://${host}:${servePort}/`);
  const rulesBrowser = new Browser();
  await login(rulesBrowser, `http://${rulesHost}:${gatePort}/bench`);
  const rulesCookie = rulesBrowser.cookieHeader(`http://${rulesHost}:${gatePort}/`);
  const json = { accept: 'application/json' };
  // What Chrome sends on a navigation (about 1 KB with cookies): copying and reading the
  // headers costs every worker more than wrk's three do.
  const chrome = {
    accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7',
    'accept-encoding': 'gzip, deflate, br, zstd',
    'accept-language': 'en-GB,en-US;q=0.9,en;q=0.8,de;q=0.7',
    'cache-control': 'max-age=0',
    priority: 'u=0, i',
    'sec-ch-ua': '"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"',
    'sec-ch-ua-mobile': '?0',
    'sec-ch-ua-platform': '"Linux"',
    'sec-fetch-dest': 'document',
    'sec-fetch-mode': 'navigate',
    'sec-fetch-site': 'none',
    'sec-fetch-user': '?1',
    'upgrade-insecure-requests': '1',
    'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  };
  const withAppCookies = (own) => `theme=dark; _ga=GA1.1.123456789.1700000000; ${own}; immich_is_authenticated=true`;
  const results = await compare({
    bare: { target: bare, host, path: '/echo', headers: json },
    bareRequestInit: { target: bareInit, host, path: '/echo', headers: json },
    hono: { target: hono, host, path: '/echo', headers: { ...json, cookie: honoCookie } },
    authenticated: { target: gate, host, path: '/echo', headers: { ...json, cookie } },
    authenticatedRules: { target: gate, host: rulesHost, path: '/echo', headers: { ...json, cookie: rulesCookie } },
    serviceToken: {
      target: gate,
      host: rulesHost,
      path: '/api/echo',
      headers: { ...json, 'portcullis-client-id': token.client_id, 'portcullis-client-secret': token.secret },
    },
    redirect: { target: gate, host, path: '/echo', headers: { accept: 'text/html' } },
    unauthenticatedApi: { target: gate, host, path: '/echo', headers: json },
    serveBare: { target: serveBare, host, path: '/echo', headers: json },
    serveHono: { target: serveHono, host, path: '/echo', headers: { ...json, cookie: serveHonoCookie } },
    serveAuthenticated: { target: serveGate, host, path: '/echo', headers: { ...json, cookie: serveCookie } },
    serveBareChrome: { target: serveBare, host, path: '/echo', headers: { ...chrome, cookie: withAppCookies('session=0123456789abcdef') } },
    serveHonoChrome: { target: serveHono, host, path: '/echo', headers: { ...chrome, cookie: withAppCookies(serveHonoCookie) } },
    serveAuthenticatedChrome: { target: serveGate, host, path: '/echo', headers: { ...chrome, cookie: withAppCookies(serveCookie) } },
    serveServiceToken: {
      target: serveGate,
      host: rulesHost,
      path: '/api/echo',
      headers: { ...json, 'portcullis-client-id': token.client_id, 'portcullis-client-secret': token.secret },
    },
  }, { rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS });

  const policyLine = execFileSync('cargo', ['run', '--quiet', '--release', '--features', 'cli', '--bin', 'portcullis-bench-policy'], { cwd: ROOT }).toString().trim();
  const wasm = readFileSync(path.join(ROOT, 'build/index_bg.wasm'));
  const size = { raw: wasm.length, gzip: gzipSync(wasm, { level: 9 }).length };
  const ratio = (r, base = results.bare) => r.cpuUsPerRequest / base.cpuUsPerRequest;
  const row = (name, r, base = results.bare) => `| ${name} | ${Math.round(r.rps)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${Math.round(r.cpuUsPerRequest)} | ${ratio(r, base).toFixed(2)}× |`;
  const authRatio = ratio(results.authenticated);
  const serveRatio = ratio(results.serveAuthenticated, results.serveBare);
  const tokenRatio = ratio(results.serviceToken, results.authenticatedRules);
  const serveTokenRatio = ratio(results.serveServiceToken, results.serveAuthenticated);
  const met = (ok) => (ok ? 'met' : 'NOT met');
  const lines = [
    `wrk: ${CONNECTIONS} connections; ${ROUNDS} interleaved rounds of ${SECONDS} s per scenario, medians; workerd CPU from /proc/<pid>/stat${pinned ? '; workerd pinned to core 0, load and upstream to the others' : ''}.`,
    '',
    '**Miniflare** (as `wrangler dev` runs it):',
    '',
    '| scenario | requests/s | p50 ms | p99 ms | workerd CPU µs/request | CPU vs bare |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    row('bare JS pass-through worker (fetch with method, headers, body)', results.bare),
    row('bare JS pass-through worker (the request itself as init)', results.bareRequestInit),
    row('peer: Hono + @hono/oidc-auth, signed-in GET, proxied', results.hono),
    row('Portcullis: signed-in GET, proxied', results.authenticated),
    row('Portcullis: signed-in GET on an app with allow rules and path patterns', results.authenticatedRules),
    row('Portcullis: service token (header pair), proxied', results.serviceToken),
    row('Portcullis: unauthenticated navigation (303 to the issuer)', results.redirect),
    row('Portcullis: unauthenticated API call (401)', results.unauthenticatedApi),
    '',
    '**Plain `workerd serve`** (generated capnp; KV as an in-memory service worker):',
    '',
    '| scenario | requests/s | p50 ms | p99 ms | workerd CPU µs/request | CPU vs bare |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    row('bare JS pass-through worker (fetch with method, headers, body)', results.serveBare, results.serveBare),
    row('peer: Hono + @hono/oidc-auth, signed-in GET, proxied', results.serveHono, results.serveBare),
    row('Portcullis: signed-in GET, proxied', results.serveAuthenticated, results.serveBare),
    row('Portcullis: service token (header pair), proxied', results.serveServiceToken, results.serveBare),
    row('with Chrome\'s navigation headers: bare JS pass-through worker', results.serveBareChrome, results.serveBareChrome),
    row('with Chrome\'s navigation headers: peer, signed in', results.serveHonoChrome, results.serveBareChrome),
    row('with Chrome\'s navigation headers: Portcullis, signed in', results.serveAuthenticatedChrome, results.serveBareChrome),
    '',
    // Rounds are interleaved, so round i of one scenario ran next to round i of another:
    // the per-round ratios show the spread of each ratio on this machine.
    ...[
      ['signed in / bare, Miniflare', results.authenticated, results.bare],
      ['signed in / bare, plain workerd', results.serveAuthenticated, results.serveBare],
      ['signed in / peer, Miniflare', results.authenticated, results.hono],
      ['signed in / peer, plain workerd', results.serveAuthenticated, results.serveHono],
      ['signed in / bare, plain workerd, Chrome headers', results.serveAuthenticatedChrome, results.serveBareChrome],
      ['signed in / peer, plain workerd, Chrome headers', results.serveAuthenticatedChrome, results.serveHonoChrome],
    ].map(([name, a, b]) => {
      const perRound = a.cpuSamples.map((x, i) => x / b.cpuSamples[i]).sort((x, y) => x - y);
      return `Per-round ratio ${name}: median ${perRound[Math.floor(perRound.length / 2)].toFixed(2)}, range ${perRound[0].toFixed(2)}–${perRound[perRound.length - 1].toFixed(2)} (${perRound.map((x) => x.toFixed(2)).join(' ')}).`;
    }),
    `CPU samples (µs/request per round): ${Object.entries(results).map(([k, r]) => `${k} ${r.cpuSamples.join('/')}`).join('; ')}.`,
    `One full login (start → issuer login form → callback → app; local issuer; Miniflare), median of 5 on a fresh isolate: Portcullis ${loginMs.toFixed(0)} ms, the peer ${honoLogin.ms.toFixed(0)} ms (target: no slower: ${met(loginMs <= honoLogin.ms)}); after 20 logins: Portcullis ${gateLogin.warm.ms.toFixed(0)} ms, the peer ${honoLogin.warm.ms.toFixed(0)} ms. workerd CPU per login (its redirect, the callback's code exchange, ID-token verification and KV writes, the first proxied request): fresh ${gateLogin.cpuMs.toFixed(1)} ms vs the peer's ${honoLogin.cpuMs.toFixed(1)} ms; after 20 logins ${gateLogin.warm.cpuMs.toFixed(1)} ms vs ${honoLogin.warm.cpuMs.toFixed(1)} ms.`,
    `Wasm: ${(size.raw / 1024).toFixed(0)} KB raw, ${(size.gzip / 1024).toFixed(0)} KB gzipped (target ≤ ${TARGET_GZIP_KB} KB: ${met(size.gzip / 1024 <= TARGET_GZIP_KB)}).`,
    upload
      ? `Upload (wrangler deploy --dry-run): ${Number(upload[1]).toFixed(0)} KiB, ${Number(upload[2]).toFixed(0)} KiB compressed — ${(Number(upload[2]) / 3072 * 100).toFixed(0)}% of the Free plan's 3 MB limit.`
      : 'Upload size: wrangler deploy --dry-run printed no size.',
    `Signed-in request CPU vs the bare worker: ${authRatio.toFixed(2)}× under Miniflare (target ≤ ${TARGET_RATIO}×: ${met(authRatio <= TARGET_RATIO)}), ${serveRatio.toFixed(2)}× under plain workerd, ${Math.round(results.serveAuthenticated.cpuUsPerRequest - results.serveBare.cpuUsPerRequest)} µs over bare (target ≤ ${TARGET_RATIO_SERVE}×: ${met(serveRatio <= TARGET_RATIO_SERVE)}).`,
    `Signed-in request CPU vs the peer: ${ratio(results.authenticated, results.hono).toFixed(2)}× under Miniflare, ${ratio(results.serveAuthenticated, results.serveHono).toFixed(2)}× under plain workerd (target < 1×: ${met(results.authenticated.cpuUsPerRequest < results.hono.cpuUsPerRequest && results.serveAuthenticated.cpuUsPerRequest < results.serveHono.cpuUsPerRequest)}).`,
    `Service token CPU vs the signed-in request: ${tokenRatio.toFixed(2)}× under Miniflare (on the app with rules), ${serveTokenRatio.toFixed(2)}× under plain workerd (target ≤ ${TARGET_CREDENTIAL_RATIO}×: ${met(tokenRatio <= TARGET_CREDENTIAL_RATIO && serveTokenRatio <= TARGET_CREDENTIAL_RATIO)}).`,
    `Cold start under plain workerd: the first request answered ${serveGate.firstRequestMs.toFixed(0)} ms after it was sent, ${serveGate.readyMs.toFixed(0)} ms after workerd was started (process start, wasm compile and instantiate, configuration parse, one request); the bare worker: ${serveBare.firstRequestMs.toFixed(0)} ms / ${serveBare.readyMs.toFixed(0)} ms.`,
    policyLine,
  ];
  for (const [name, r] of Object.entries(results)) {
    const expectedNon2xx = name === 'redirect' || name === 'unauthenticatedApi';
    if (r.socketErrors.length || (!expectedNon2xx && r.non2xx)) {
      lines.push(`Note: ${name}: ${r.non2xx} non-2xx responses; ${r.socketErrors.join('; ') || 'no socket errors'}`);
    }
  }
  console.log(lines.join('\n'));
  mkdirSync(path.join(ROOT, 'target'), { recursive: true });
  writeFileSync(path.join(ROOT, 'target/bench.json'), JSON.stringify({ date: new Date().toISOString(), loginMs, gateLogin: { ms: gateLogin.ms, cpuMs: gateLogin.cpuMs, warm: { ms: gateLogin.warm.ms, cpuMs: gateLogin.warm.cpuMs } }, honoLogin: { ms: honoLogin.ms, cpuMs: honoLogin.cpuMs, warm: { ms: honoLogin.warm.ms, cpuMs: honoLogin.warm.cpuMs } }, size, results }, null, 2));
} finally {
  await gate.stop();
  await bare.stop();
  await bareInit.stop();
  await serveGate.stop();
  await serveBare.stop();
  await hono.stop();
  await serveHono.stop();
  await upstream.stop();
  await issuer.stop();
}
