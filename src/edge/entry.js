// The Worker's entry module (build/index.js). worker-build's bundle (build/gate.mjs)
// exports a WorkerEntrypoint class behind two Proxies that workerd constructs for every
// request; this module exports a plain handler object that calls the same wasm-bindgen
// `fetch` directly, which saves that construction on every request.
//
// Recovery after a crash is kept: a Rust panic sets `__worker_init_state.criticalError`
// (the `worker` crate's panic hook), and the next request then goes through the
// bundle's own entry, whose construction re-initialises the wasm instance. (An abort
// also makes wasm-bindgen's glue re-initialise on its next call.)
import Gate from './gate.mjs';

const fetchHandler = Gate.prototype.fetch;

export default {
  fetch(request, env, ctx) {
    if (globalThis.__worker_init_state?.criticalError) return new Gate(ctx, env).fetch(request);
    return fetchHandler.call({ env, ctx }, request);
  },
};
