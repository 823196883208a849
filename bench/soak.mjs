// scripts/soak: the gate in workerd under a long mixed load. 20 concurrent clients for
// SOAK_SECONDS (default 600), each looping over: signed-in GETs, WebSocket round trips,
// streamed uploads checked by SHA-256 at the app, unauthenticated API calls and page
// navigations, full logins, and revocations (logout) followed by a check that the
// revoked cookie is refused. Every answer is checked; workerd's memory (RSS) is sampled
// and must be flat after warm-up. Exits non-zero on any unexpected status, lost or altered
// body, or memory growth. Loopback only; every loop is bounded by the deadline.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { startIssuer, gateClient } from '../stack/issuer.mjs';
import { startUpstream } from '../stack/upstream.mjs';
import { Browser, login } from '../stack/client.mjs';
import { freePort } from '../stack/ports.mjs';
import { startMeasuredWorker, pin } from './measure.mjs';
import { startWorkerdServe } from '../stack/workerd.mjs';

const SECONDS = Number(process.env.SOAK_SECONDS || 600);
const CLIENTS = Number(process.env.SOAK_CLIENTS || 20);
const WARMUP = Math.min(60, Math.floor(SECONDS / 5));
const SESSION_SECRET = 'soak-session-secret-0123456789abcdef0123456789';
const CLIENT_SECRET = 'soak-client-secret';

const rssMb = (pid) => {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line.split(/\s+/)[1]) / 1024;
};

const [issuerPort, upstreamPort, gatePort] = await Promise.all([freePort(), freePort(), freePort()]);
const host = 'photos.localhost';
const issuer = await startIssuer({ port: issuerPort, clients: [gateClient({ hosts: [host], port: gatePort, secret: CLIENT_SECRET })], log: () => {} });
const upstream = await startUpstream({ port: upstreamPort });
// KV lives on disk, so what accumulates in it by design (sessions, tombstones) does not
// count as workerd's memory.
const kvDir = mkdtempSync(path.join(os.tmpdir(), 'portcullis-soak-kv-'));
const gateOptions = {
  port: gatePort,
  config: { issuer: issuer.url, client_id: 'portcullis', apps: [{ host, origin: upstream.url, api_paths: ['/api/**'] }] },
  secrets: { SESSION_SECRET, OIDC_CLIENT_SECRET: CLIENT_SECRET },
};
// SOAK_RUNTIME=workerd: plain `workerd serve` (no Miniflare); KV is then an in-memory
// service in the same process, so the sessions stored count towards its memory.
const RUNTIME = process.env.SOAK_RUNTIME === 'workerd' ? 'workerd serve' : 'Miniflare';
const gate = RUNTIME === 'workerd serve'
  ? await startWorkerdServe(gateOptions)
  : await startMeasuredWorker({ ...gateOptions, kvPersist: kvDir });
if (RUNTIME === 'workerd serve') pin(gate.pid);
const app = `http://${host}:${gatePort}`;

const counts = {};
const problems = [];
const count = (what) => { counts[what] = (counts[what] || 0) + 1; };
const expect = (ok, what, detail) => {
  count(what);
  if (!ok && problems.length < 50) problems.push(`${what}: ${detail}`);
  if (!ok) count('unexpected');
};

async function signedIn(i) {
  const b = new Browser(`soak-${i}`, { 'user-agent': `Soak/${i}` });
  const done = await login(b, `${app}/start`);
  expect(done.status === 200, 'login', `status ${done.status}`);
  return b;
}

async function websocket(b) {
  const cookie = b.cookieHeader(`${app}/ws`);
  const ws = new WebSocket(`ws://127.0.0.1:${gatePort}/ws`, { headers: { host: `${host}:${gatePort}`, cookie } });
  const got = await new Promise((resolve) => {
    const msgs = [];
    const timer = setTimeout(() => resolve(msgs), 10_000);
    ws.on('message', (d) => {
      msgs.push(d.toString());
      if (msgs.length === 1) ws.send('soak-ping');
      if (msgs.length === 2) { clearTimeout(timer); resolve(msgs); }
    });
    ws.on('error', () => { clearTimeout(timer); resolve(msgs); });
  });
  ws.close();
  expect(got.length === 2 && got[1] === 'soak-ping', 'websocket', JSON.stringify(got));
}

async function client(i, deadline) {
  let b = await signedIn(i);
  for (let n = 0; Date.now() < deadline; n += 1) {
    // SOAK_ONLY=gets: signed-in GETs alone (no KV writes), to tell the gate's memory from
    // what the local KV keeps.
    const step = process.env.SOAK_ONLY === 'gets' ? n % 4 : n % 10;
    if (step <= 3) {
      const res = await b.request(`${app}/echo?c=${i}&n=${n}`, { headers: { accept: 'application/json' } });
      expect(res.status === 200 && res.json().url === `/echo?c=${i}&n=${n}`, 'signed-in GET', `${res.status}`);
    } else if (step === 4) {
      await websocket(b);
    } else if (step === 5) {
      const body = randomBytes(256 * 1024 + (n % 97));
      const res = await b.request(`${app}/upload`, { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/octet-stream' }, body });
      const seen = res.status === 200 ? res.json().body : {};
      expect(seen.sha256 === createHash('sha256').update(body).digest('hex') && seen.bytes === body.length, 'upload', `${res.status} ${JSON.stringify(seen)}`);
    } else if (step === 6) {
      const res = await new Browser().request(`${app}/api/x`, { headers: { accept: 'application/json' } });
      expect(res.status === 401, 'unauthenticated API', `${res.status}`);
    } else if (step === 7) {
      const res = await new Browser().request(`${app}/page`, { headers: { accept: 'text/html' } });
      expect(res.status === 303 && res.location.startsWith(issuer.url), 'unauthenticated navigation', `${res.status}`);
    } else if (step === 8 && n % 20 === 8) {
      // Revocation: log out, then the old cookie must be refused at once (same isolate).
      const cookie = b.cookieHeader(`${app}/`);
      const out = await b.request(`${app}/.portcullis/logout`, { headers: { accept: 'text/html', 'sec-fetch-site': 'same-origin' } });
      expect(out.status === 303, 'logout', `${out.status}`);
      const replay = await new Browser().request(`${app}/echo`, { headers: { accept: 'application/json', cookie } });
      expect(replay.status === 401, 'revoked cookie refused', `${replay.status}`);
      b = await signedIn(i);
    } else {
      const res = await b.request(`${app}/.portcullis/me`, { headers: { accept: 'application/json' } });
      expect(res.status === 200, 'me', `${res.status}`);
    }
  }
}

const start = Date.now();
const deadline = start + SECONDS * 1000;
const samples = [];
const sampler = setInterval(() => samples.push({ t: (Date.now() - start) / 1000, mb: rssMb(gate.pid) }), 5000);
console.log(`soak: ${CLIENTS} clients for ${SECONDS}s against workerd pid ${gate.pid} (${RUNTIME})`);
const results = await Promise.allSettled(Array.from({ length: CLIENTS }, (_, i) => client(i, deadline)));
clearInterval(sampler);
for (const r of results) if (r.status === 'rejected') { count('unexpected'); problems.push(`client failed: ${r.reason?.stack || r.reason}`); }

const after = samples.filter((s) => s.t >= WARMUP);
const firstHalf = after.slice(0, Math.ceil(after.length / 2)).map((s) => s.mb);
const secondHalf = after.slice(Math.ceil(after.length / 2)).map((s) => s.mb);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const growth = median(secondHalf) - median(firstHalf);
// Flat: the second half's median within 5 % (or 16 MB) of the first half's.
const flat = !(growth > Math.max(16, 0.05 * median(firstHalf)));
const total = Object.entries(counts).filter(([k]) => k !== 'unexpected').reduce((a, [, v]) => a + v, 0);

console.log(JSON.stringify({ seconds: SECONDS, clients: CLIENTS, checks: total, counts, unexpected: counts.unexpected || 0 }, null, 1));
console.log(`workerd RSS after warm-up (${WARMUP}s): first half median ${median(firstHalf).toFixed(1)} MB, second half ${median(secondHalf).toFixed(1)} MB, max ${Math.max(...after.map((s) => s.mb)).toFixed(1)} MB; growth ${growth.toFixed(1)} MB → ${flat ? 'flat' : 'GROWING'}`);
for (const p of problems) console.log(`  problem: ${p}`);
await gate.stop();
await upstream.stop();
await issuer.stop();
rmSync(kvDir, { recursive: true, force: true });
const ok = !counts.unexpected && flat;
console.log(ok ? 'soak: passed' : 'soak: FAILED');
process.exit(ok ? 0 : 1);
