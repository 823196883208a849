// The Worker's entry module (build/index.js), in front of worker-build's bundle
// (build/gate.mjs).
//
// Two things are done here because each would otherwise cost every request:
// - the bundle's default export is a WorkerEntrypoint class that workerd constructs, behind
//   two Proxies, for every request; this plain handler object calls the wasm export
//   (`handle`, which worker-build puts on that class's prototype) directly;
// - the request's method, URL and headers go to wasm as one string, in the format
//   src/request.rs reads (`RequestHead::from_packed`), with the time, instead of one call each;
//   the string is encoded here by TextEncoder, natively (wasm-bindgen's own string
//   passing copies it one character at a time, in JavaScript).
//
// Recovery after a crash is kept: a Rust panic sets `__worker_init_state.criticalError`
// (the `worker` crate's panic hook), and the next request then goes through the bundle's
// own class, whose construction re-initialises the wasm instance. (An abort also makes
// wasm-bindgen's glue re-initialise on its next call.)
import Gate from './gate.mjs';

// The Durable Object class of the persons' objects (the `PEOPLE` binding; src/edge/person.rs).
// Exported whether or not wrangler.toml binds it: an unbound class costs nothing.
export { Person } from './gate.mjs';

const handle = Gate.prototype.handle;
// Created by the bundle when it loads; the same object for the isolate's lifetime (a
// re-initialised wasm instance updates its fields).
const initState = globalThis.__worker_init_state ?? {};

const encoder = new TextEncoder();
// The packed request is encoded into this one buffer, not a fresh one per request (an
// ArrayBuffer allocation each time). Reusing it is safe: the wasm export copies the bytes
// into its own memory before anything else runs. 16 KB holds a request whose method, URL
// and headers come to 5,461 UTF-16 units (UTF-8 takes at most three bytes for each); a
// larger one is encoded into a buffer of its own.
const scratch = new Uint8Array(16384);

// Where Cloudflare places the visitor of a login's callback (`request.cf`: city and
// country), recorded with the session for the account page and the admin console. It goes
// in as a header named `:location`, a name no client can send (`:` is not allowed in one).
function place(request) {
  const cf = request.cf;
  if (!cf) return '';
  return [cf.city, cf.country].filter((p) => typeof p === 'string' && p).join(', ').replace(/[\r\n]/g, ' ').slice(0, 64);
}

function packRequest(request) {
  let packed = request.method + '\n' + request.url + '\n';
  for (const [name, value] of request.headers) packed += name + '\n' + value + '\n';
  if (request.url.includes('/.portcullis/callback')) {
    const where = place(request);
    if (where) packed += ':location\n' + where + '\n';
  }
  if (packed.length * 3 > scratch.length) return encoder.encode(packed);
  return scratch.subarray(0, encoder.encodeInto(packed, scratch).written);
}

export default {
  fetch(request, env, ctx) {
    if (initState.criticalError) {
      return new Gate(ctx, env).handle(request, env, ctx, packRequest(request), Date.now());
    }
    return handle(request, env, ctx, packRequest(request), Date.now());
  },
};
