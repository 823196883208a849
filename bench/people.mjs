// scripts/bench, second part: what the persons' Durable Objects (PEOPLE) cost.
// - The signed-in request when no object request is due (revocation_check 60 s), against
//   the same gate without PEOPLE, interleaved under wrk (target: at most 5 µs more).
// - A due check: SESSIONS signed-in sessions each make one request just over
//   revocation_check (1 s) after their last, so every one asks the person's object;
//   against the same requests on the gate without PEOPLE (median of three rounds).
// - The relay's CPU per WebSocket frame (the gate's upgrade handed to the object, which
//   relays in JavaScript), against a bare JavaScript relay worker, in the same run.
// workerd CPU comes from /proc (bench/measure.mjs); under Miniflare one workerd process runs
// the gate and its objects, so the object's CPU is counted with the gate's.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { startIssuer, gateClient } from '../stack/issuer.mjs';
import { startUpstream } from '../stack/upstream.mjs';
import { ROOT } from '../stack/worker.mjs';
import { startMeasuredWorker, compare, cpuSeconds } from './measure.mjs';
import { Browser, login } from '../stack/client.mjs';
import { freePort } from '../stack/ports.mjs';

const SECONDS = Number(process.env.BENCH_SECONDS || 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 9);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 10);
const TARGET_EXTRA_US = 5;
const SESSIONS = Number(process.env.BENCH_SESSIONS || 100);
const FRAMES = Number(process.env.BENCH_FRAMES || 20_000);

const SESSION_SECRET = 'bench-session-secret-0123456789abcdef0123456789';
const CLIENT_SECRET = 'bench-client-secret';
const host = 'photos.localhost';

const [issuerPort, upstreamPort, plainPort, boundPort, checkedPort, relayPort] = await Promise.all(
  [freePort(), freePort(), freePort(), freePort(), freePort(), freePort()],
);
const ports = [plainPort, boundPort, checkedPort];
const client = gateClient({ hosts: [host], port: plainPort, secret: CLIENT_SECRET });
for (const port of ports.slice(1)) {
  const other = gateClient({ hosts: [host], port, secret: CLIENT_SECRET });
  client.redirect_uris.push(...other.redirect_uris);
}
const issuer = await startIssuer({ port: issuerPort, clients: [client] });
const upstream = await startUpstream({ port: upstreamPort });
const config = (extra) => ({ issuer: issuer.url, client_id: 'portcullis', apps: [{ host, origin: upstream.url }], ...extra });
const secrets = { SESSION_SECRET, OIDC_CLIENT_SECRET: CLIENT_SECRET };
const start = (port, extra, people) => startMeasuredWorker({ port, config: config(extra), secrets, kvProbe: false, people });
const plain = await start(plainPort, {}, false);
const bound = await start(boundPort, { revocation_check: '60s' }, true);
const checked = await start(checkedPort, { revocation_check: '1s' }, true);

// The bare relay: a plain worker that relays the socket itself (no gate, no object).
const BARE_RELAY = `export default { async fetch(request) {
  const url = new URL(request.url);
  const origin = (await fetch('${upstream.url}' + url.pathname, { headers: { upgrade: 'websocket' } })).webSocket;
  const [client, server] = Object.values(new WebSocketPair());
  server.binaryType = 'arraybuffer'; origin.binaryType = 'arraybuffer';
  server.accept(); origin.accept();
  server.addEventListener('message', (e) => origin.send(e.data));
  origin.addEventListener('message', (e) => server.send(e.data));
  server.addEventListener('close', (e) => origin.close(e.code === 1005 ? 1000 : e.code));
  origin.addEventListener('close', (e) => server.close(e.code === 1005 ? 1000 : e.code));
  return new Response(null, { status: 101, webSocket: client });
} };`;
const bareRelay = await startMeasuredWorker({ port: relayPort, script: BARE_RELAY });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function signIn(port) {
  const b = new Browser();
  const landed = await login(b, `http://${host}:${port}/bench`);
  if (landed.status !== 200) throw new Error(`login on ${port}: ${landed.status}`);
  return b.cookieHeader(`http://${host}:${port}/`);
}

/** Workerd CPU per request when each of `cookies` makes one request, 10 at a time. */
async function round(target, cookies) {
  const b = new Browser();
  const url = `http://${host}:${target.port}/echo`;
  const cpu0 = cpuSeconds(target.pid);
  for (let i = 0; i < cookies.length; i += 10) {
    const batch = cookies.slice(i, i + 10).map((cookie) => b.request(url, { headers: { accept: 'application/json', cookie } }));
    for (const res of await Promise.all(batch)) if (res.status !== 200) throw new Error(`round: ${res.status}`);
  }
  await sleep(50); // after-response work
  return ((cpuSeconds(target.pid) - cpu0) / cookies.length) * 1e6;
}

/** The median of three rounds, each 1.1 s after the last (every session's check is due). */
async function dueRounds(target, cookies) {
  await round(target, cookies); // warm: cached sessions, compiled code
  const costs = [];
  for (let i = 0; i < 3; i += 1) {
    await sleep(1100);
    costs.push(await round(target, cookies));
  }
  return costs.sort((a, b) => a - b)[1];
}

/** Workerd CPU per relayed frame: FRAMES echo round trips (two frames each), 32 in flight. */
async function relayCost(target, cookie) {
  const ws = new WebSocket(`ws://127.0.0.1:${target.port}/ws`, { headers: { host: `${host}:${target.port}`, ...(cookie ? { cookie } : {}) } });
  await new Promise((resolve, reject) => { ws.once('message', resolve); ws.once('error', reject); });
  const payload = Buffer.alloc(256, 7);
  const cpu0 = cpuSeconds(target.pid);
  const t0 = performance.now();
  await new Promise((resolve) => {
    let sent = 0;
    let received = 0;
    const send = () => { if (sent < FRAMES) { sent += 1; ws.send(payload); } };
    ws.on('message', () => {
      received += 1;
      if (received === FRAMES) resolve();
      else send();
    });
    for (let i = 0; i < 32; i += 1) send();
  });
  const ms = performance.now() - t0;
  const cpu = cpuSeconds(target.pid) - cpu0;
  ws.close();
  return { usPerFrame: (cpu / (FRAMES * 2)) * 1e6, framesPerSecond: (FRAMES * 2) / (ms / 1000) };
}

try {
  const [plainCookie, boundCookie] = await Promise.all([plainPort, boundPort].map(signIn));
  const json = { accept: 'application/json' };
  const results = await compare({
    withoutPeople: { target: plain, host, path: '/echo', headers: { ...json, cookie: plainCookie } },
    withPeople: { target: bound, host, path: '/echo', headers: { ...json, cookie: boundCookie } },
  }, { rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS });
  const extra = results.withPeople.cpuUsPerRequest - results.withoutPeople.cpuUsPerRequest;
  const many = async (port) => {
    const cookies = [];
    for (let i = 0; i < SESSIONS; i += 1) cookies.push(await signIn(port));
    return cookies;
  };
  const spacedPlain = await dueRounds(plain, await many(plainPort));
  const spacedChecked = await dueRounds(checked, await many(checkedPort));
  const relayBare = await relayCost(bareRelay);
  const relayGate = await relayCost(bound, boundCookie);
  const lines = [
    `persons' objects (PEOPLE), ${ROUNDS} rounds of ${SECONDS}s, ${CONNECTIONS} connections:`,
    `  signed-in GET, no object request due: ${results.withPeople.cpuUsPerRequest.toFixed(1)} µs CPU vs ${results.withoutPeople.cpuUsPerRequest.toFixed(1)} µs without PEOPLE (${extra >= 0 ? '+' : ''}${extra.toFixed(1)} µs; target at most +${TARGET_EXTRA_US}) ${extra <= TARGET_EXTRA_US ? 'OK' : 'OVER'}`,
    `  a due check (${SESSIONS} sessions, one request each 1.1 s after the last, revocation_check 1s): ${spacedChecked.toFixed(0)} µs CPU per request vs ${spacedPlain.toFixed(0)} µs without PEOPLE (the check: ${(spacedChecked - spacedPlain).toFixed(0)} µs, the object's included)`,
    `  WebSocket relay, ${FRAMES} echo round trips of 256 bytes: ${relayGate.usPerFrame.toFixed(1)} µs CPU per frame through the gate and the person's object vs ${relayBare.usPerFrame.toFixed(1)} µs for a bare JavaScript relay (${relayGate.framesPerSecond.toFixed(0)} vs ${relayBare.framesPerSecond.toFixed(0)} frames/s)`,
  ];
  console.log(lines.join('\n'));
  writeFileSync(path.join(ROOT, 'target/bench-people.json'), JSON.stringify({ date: new Date().toISOString(), results, extra, spacedPlain, spacedChecked, relayBare, relayGate }, null, 2));
} finally {
  for (const w of [plain, bound, checked, bareRelay]) await w.stop();
  await upstream.stop();
  await issuer.stop();
}
