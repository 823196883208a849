// What any gate that edits headers pays in workerd before running any logic of its own:
// JavaScript pass-through workers that each add one step of what the gate's edge does,
// measured like scripts/bench (interleaved rounds, workerd CPU per request).
//
//   node bench/floor.mjs                      # plain workerd serve
//   FLOOR_RUNTIME=miniflare node bench/floor.mjs
//   FLOOR_RUNTIME=miniflare FLOOR_STRIP_CF_CONNECTING_IP=0 node bench/floor.mjs
//       # without the JavaScript worker Miniflare puts in front of every outgoing fetch
//       # (`stripCfConnectingIp`, on in `wrangler dev`), which copies each header again
//
// bare:    fetch(url, { method, headers, body, redirect: 'manual' })
// sets:    a copy of the headers, the session cookie removed, the 10 headers the gate
//          sets for a signed-in person (identity and X-Forwarded-*)
// nostore: the same with cache: 'no-store'
// then:    the same, and the response's Cache-Control/Set-Cookie looked at
// pack:    the same, and the request's headers iterated into one string
import { startWorkerdServe } from '../stack/workerd.mjs';
import { startUpstream } from '../stack/upstream.mjs';
import { freePort } from '../stack/ports.mjs';
import { compare, pin, startMeasuredWorker } from './measure.mjs';

const miniflare = process.env.FLOOR_RUNTIME === 'miniflare';
const stripCfConnectingIp = process.env.FLOOR_STRIP_CF_CONNECTING_IP !== '0';
const upstream = await startUpstream({ port: await freePort() });
const U = upstream.url;
const PAIRS = `[['x-auth-request-user','alice'],['x-auth-request-email','alice@example.com'],['x-auth-request-groups','admins,users'],['x-auth-request-preferred-username','alice'],['remote-user','alice'],['remote-email','alice@example.com'],['remote-groups','admins,users'],['remote-name','Alice'],['x-forwarded-proto','http'],['x-forwarded-host','photos.localhost:1']]`;
const SETS = `const h = new Headers(request.headers); h.delete('cookie'); for (const [k, v] of ${PAIRS}) h.set(k, v);`;
const THEN = `.then((r) => r.status === 101 || (r.headers.get('cache-control') === null && r.headers.get('set-cookie') === null) ? r : r)`;
const variants = {
  bare: `return fetch('${U}' + url.pathname + url.search, { method: request.method, headers: request.headers, body: request.body, redirect: 'manual' });`,
  sets: `${SETS} return fetch('${U}' + url.pathname + url.search, { method: request.method, headers: h, redirect: 'manual' });`,
  nostore: `${SETS} return fetch('${U}' + url.pathname + url.search, { method: request.method, headers: h, redirect: 'manual', cache: 'no-store' });`,
  then: `${SETS} return fetch('${U}' + url.pathname + url.search, { method: request.method, headers: h, redirect: 'manual', cache: 'no-store' })${THEN};`,
  pack: `let p = ''; for (const [n, v] of request.headers) p += n + '\\n' + v + '\\n'; globalThis.packed = p; ${SETS} return fetch('${U}' + url.pathname + url.search, { method: request.method, headers: h, redirect: 'manual', cache: 'no-store' })${THEN};`,
};
const host = 'photos.localhost';
const scenarios = {};
const started = [];
try {
  for (const [name, body] of Object.entries(variants)) {
    const script = `export default { fetch(request) { const url = new URL(request.url); ${body} } };`;
    const port = await freePort();
    const worker = miniflare ? await startMeasuredWorker({ port, script, stripCfConnectingIp }) : await startWorkerdServe({ port, script });
    if (!miniflare) pin(worker.pid);
    started.push(worker);
    scenarios[name] = {
      target: worker,
      host,
      path: '/echo',
      headers: { accept: 'application/json', cookie: 'portcullis_session=abcdefabcdefabcdefabcdefabcdefabcdefabcdef.abcdefabcdef; other=1' },
    };
  }
  const r = await compare(scenarios, { rounds: Number(process.env.ROUNDS || 5), seconds: 3, connections: 10 });
  console.log(`${miniflare ? `Miniflare${stripCfConnectingIp ? '' : ' without stripCfConnectingIp'}` : 'plain workerd serve'}: workerd CPU µs/request (median), against bare`);
  for (const [name, v] of Object.entries(r)) {
    console.log(`${name.padEnd(8)} ${String(Math.round(v.cpuUsPerRequest)).padStart(5)} µs  ${(v.cpuUsPerRequest / r.bare.cpuUsPerRequest).toFixed(2)}×  rounds ${v.cpuSamples.join('/')}`);
  }
} finally {
  for (const worker of started) await worker.stop();
  await upstream.stop();
}
