//! The relay itself, in JavaScript: each frame is passed on by the runtime without a
//! call into wasm (the object's CPU budget resets per message, but the cost per frame is
//! still the gate's to keep small).

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

#[wasm_bindgen(inline_js = r#"
// Close codes that may not be sent in a close frame (RFC 6455 §7.4.1) become 1011.
const sendable = (code) => (code === undefined || code === 1005 || code === 1006 || code === 1015 ? 1011 : code);
export async function open(request) {
  const headers = new Headers(request.headers);
  headers.delete('portcullis-relay');
  const response = await fetch(request.url, { method: 'GET', headers, redirect: 'manual' });
  const origin = response.webSocket;
  if (!origin) return { response };
  const [client, server] = Object.values(new WebSocketPair());
  server.binaryType = 'arraybuffer';
  origin.binaryType = 'arraybuffer';
  server.accept();
  origin.accept();
  const pipe = (from, to) => {
from.addEventListener('message', (e) => { try { to.send(e.data); } catch { /* closing */ } });
from.addEventListener('close', (e) => { try { to.close(sendable(e.code), e.reason); } catch { /* closed */ } });
from.addEventListener('error', () => { try { to.close(1011, 'relay error'); } catch { /* closed */ } });
  };
  pipe(server, origin);
  pipe(origin, server);
  // The origin's answer headers (the subprotocol, its cookies: the gate drops its own),
  // without those of the handshake itself, which the runtime writes for each leg.
  const out = new Headers();
  for (const [name, value] of response.headers) {
if (!['connection', 'upgrade', 'sec-websocket-accept', 'sec-websocket-extensions', 'content-length'].includes(name)) out.append(name, value);
  }
  return { response: new Response(null, { status: 101, webSocket: client, headers: out }), client: server, origin };
}
export function end(socket, code, reason) { try { socket.close(code, reason); } catch { /* closed */ } }
export function is_open(socket) { return socket.readyState <= 1; }
"#)]
extern "C" {
    /// Opens the origin's WebSocket for this upgrade request and relays it: resolves to
    /// `{ response, client, origin }` (the 101 for the client, and both sockets to
    /// close later), or `{ response }` with the origin's answer when it did not upgrade.
    pub fn open(request: &web_sys::Request) -> js_sys::Promise;
    pub fn end(socket: &JsValue, code: u16, reason: &str);
    pub fn is_open(socket: &JsValue) -> bool;
}
