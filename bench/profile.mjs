// A CPU profile of the signed-in request under plain `workerd serve`, through workerd's
// V8 inspector: where the gate's time per request goes, by function (self time).
//
//   BUILD=<dir with index.js and an unstripped index_bg.wasm> node --experimental-websocket bench/profile.mjs
//
// The shipped build has no names section, so wasm frames show as indices there; build
// with `worker-build --release` alone (scripts/build strips the names) for readable names.
import { startWorkerdServe } from '../stack/workerd.mjs';
import { startIssuer, gateClient } from '../stack/issuer.mjs';
import { startUpstream } from '../stack/upstream.mjs';
import { freePort } from '../stack/ports.mjs';
import { Browser, login } from '../stack/client.mjs';
import { pin, wrkRun, bareWorker } from './measure.mjs';

const SECONDS = Number(process.env.SECONDS || 5);
const TOP = Number(process.env.TOP || 45);
const [ip, up, wp, inspector] = [await freePort(), await freePort(), await freePort(), await freePort()];
const host = 'photos.localhost';
const issuer = await startIssuer({ port: ip, clients: [gateClient({ hosts: [host], port: wp, secret: 'cs' })] });
const upstream = await startUpstream({ port: up });
// BARE=1 profiles the bare pass-through worker instead, for comparison.
const gate = await startWorkerdServe({
  port: wp,
  script: process.env.BARE ? bareWorker(upstream.url) : undefined,
  config: { issuer: issuer.url, client_id: 'portcullis', apps: [{ host, origin: upstream.url }] },
  secrets: { SESSION_SECRET: 'x'.repeat(48), OIDC_CLIENT_SECRET: 'cs' },
  build: process.env.BUILD,
  args: [`--inspector-addr=127.0.0.1:${inspector}`],
});
pin(gate.pid);
try {
  const browser = new Browser();
  let cookie = 'none=1';
  if (!process.env.BARE) {
    await login(browser, `http://${host}:${wp}/`, { username: 'alice' });
    cookie = browser.cookieHeader(`http://${host}:${wp}/`);
  }
  const load = { host, path: '/echo', headers: { accept: 'application/json', cookie }, connections: 10 };
  await wrkRun(gate, { ...load, seconds: 2 });

  const targets = await (await fetch(`http://127.0.0.1:${inspector}/json/list`)).json();
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  let next = 0;
  const pending = new Map();
  ws.onmessage = ({ data }) => {
    const msg = JSON.parse(data);
    if (pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id); }
  };
  const send = (method, params = {}) => new Promise((resolve) => {
    next += 1;
    pending.set(next, resolve);
    ws.send(JSON.stringify({ id: next, method, params }));
  });
  await send('Profiler.enable');
  await send('Profiler.setSamplingInterval', { interval: Number(process.env.INTERVAL_US || 50) });
  await send('Profiler.start');
  const run = await wrkRun(gate, { ...load, seconds: SECONDS });
  const { result } = await send('Profiler.stop');
  ws.close();

  const { nodes, samples, timeDeltas } = result.profile;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const self = new Map();
  const total = timeDeltas.reduce((a, b) => a + b, 0);
  samples.forEach((id, i) => {
    const f = byId.get(id).callFrame;
    const name = `${f.functionName || '(anonymous)'} ${f.url ? f.url.split('/').pop() : ''}`.trim();
    self.set(name, (self.get(name) || 0) + timeDeltas[i]);
  });
  console.log(`${run.requests} requests, ${Math.round(run.cpuUsPerRequest)} µs workerd CPU each (profiled); sampled ${(total / 1000).toFixed(0)} ms`);
  console.log('µs/request  share  function (self time)');
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    console.log(`${(us / run.requests).toFixed(2).padStart(9)}  ${((us / total) * 100).toFixed(1).padStart(5)}%  ${name.slice(0, 140)}`);
  }
} finally {
  await gate.stop();
  await upstream.stop();
  await issuer.stop();
}
