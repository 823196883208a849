// The demo upstream app: answers every request with a page (or JSON) showing what it
// received, so the effect of the gate is visible. Also: a redirect, several Set-Cookie
// headers, a streamed-body checksum, a cacheable response, and a WebSocket echo.
import http from 'node:http';
import { createHash } from 'node:crypto';
import { WebSocketServer } from 'ws';

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(info) {
  const rows = Object.entries(info.headers)
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('');
  const user = info.headers['x-auth-request-user'] || '(nobody)';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo app</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem;color:#1d2433}th{text-align:left;padding-right:1rem;color:#555}
td,th{font-family:ui-monospace,monospace;font-size:13px;vertical-align:top}</style></head><body>
<h1>Demo app</h1><p id="user">Signed in as <b>${esc(user)}</b></p>
<p><a href="/.portcullis/me">/.portcullis/me</a> · <a id="logout" href="/.portcullis/logout">Sign out</a></p>
<h2>Request as the app received it</h2><p><code>${esc(info.method)} ${esc(info.url)}</code></p><table>${rows}</table></body></html>`;
}

export async function startUpstream({ port, host = '127.0.0.1' }) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk) => { bytes += chunk.length; hash.update(chunk); });
    req.on('end', () => {
      const info = {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: { bytes, sha256: hash.digest('hex') },
      };
      if (url.pathname === '/redirect') {
        res.writeHead(302, { location: '/after-redirect?from=origin' });
        return res.end();
      }
      if (url.pathname === '/cookies') {
        res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/; HttpOnly', 'c=3; Path=/; Max-Age=60']);
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(info));
      }
      if (url.pathname === '/reset-early') {
        // The origin dies before answering.
        return req.socket.destroy();
      }
      if (url.pathname === '/reset-mid') {
        // The origin dies halfway through its body.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1048576' });
        res.write(Buffer.alloc(64 * 1024, 'x'));
        return setTimeout(() => req.socket.destroy(), 20);
      }
      if (url.pathname === '/plant') {
        // An app (or someone who took it over) trying to set Portcullis's own cookies.
        res.setHeader('set-cookie', ['a=1; Path=/', '__Host-portcullis-session=planted; Path=/; Secure', '__Secure-Portcullis-session=x; Path=/; Secure; Domain=localhost']);
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(info));
      }
      if (url.pathname === '/public') {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=3600' });
        return res.end(JSON.stringify(info));
      }
      const wantsHtml = (req.headers.accept || '').includes('text/html');
      res.writeHead(200, { 'content-type': wantsHtml ? 'text/html; charset=utf-8' : 'application/json' });
      res.end(wantsHtml ? page(info) : JSON.stringify(info));
    });
  });
  // The first subprotocol a client offers is chosen (Jupyter's and Home Assistant's
  // clients need theirs echoed). `closes` records the close frames the app received.
  const closes = [];
  const wss = new WebSocketServer({ server, path: '/ws', handleProtocols: (offered) => offered.values().next().value ?? false });
  // `/ws?plant=1`: an app that tries to plant Portcullis's cookies through its upgrade
  // response (alongside a cookie of its own, which must get through).
  wss.on('headers', (headers, req) => {
    if (new URL(req.url, 'http://upstream').searchParams.has('plant')) {
      headers.push('Set-Cookie: __Host-portcullis-session=planted; Path=/; Secure; HttpOnly');
      headers.push('Set-Cookie: __Host-portcullis-login-abcdefghijklmnop=planted; Path=/; Secure');
      headers.push('Set-Cookie: app_pref=dark; Path=/');
    }
  });
  wss.on('connection', (socket, req) => {
    socket.send(JSON.stringify({ hello: req.headers['x-auth-request-user'] || null, protocol: socket.protocol || null }));
    // Echo; the text `close:CODE:REASON` makes the app close with that code.
    socket.on('message', (data, isBinary) => {
      const close = !isBinary && /^close:(\d+):(.*)$/.exec(data.toString());
      if (close) socket.close(Number(close[1]), close[2]);
      else socket.send(data, { binary: isBinary });
    });
    socket.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    url: `http://${host}:${port}`,
    closes,
    async stop() {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    },
  };
}
