// A small HTTP client that behaves like a browser where the tests need it to: a cookie
// jar (host-only and Domain cookies), manual or followed redirects, and the login form
// of the local issuer. Every request goes to 127.0.0.1 with the URL's host in `Host`,
// so names like photos.localhost work without DNS.
import http from 'node:http';
import { createHmac } from 'node:crypto';

export class Browser {
  /** headers: sent with every request unless the request sets them (e.g. user-agent). */
  constructor(name = 'browser', headers = {}) {
    this.name = name;
    this.headers = headers;
    this.cookies = []; // { name, value, host, domain, expires }
  }

  cookieHeader(url) {
    const host = new URL(url).hostname;
    const now = Date.now();
    this.cookies = this.cookies.filter((c) => !c.expires || c.expires > now);
    return this.cookies
      .filter((c) => (c.domain ? host === c.domain || host.endsWith(`.${c.domain}`) : host === c.host))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  cookie(name) {
    return this.cookies.find((c) => c.name === name)?.value;
  }

  setCookie(name, value, host) {
    this.cookies = this.cookies.filter((c) => !(c.name === name && c.host === host));
    this.cookies.push({ name, value, host, domain: null, expires: null });
  }

  store(url, setCookies) {
    const host = new URL(url).hostname;
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let domain = null;
      let expires = null;
      for (const a of attrs) {
        const [k, v] = a.split('=');
        if (k.toLowerCase() === 'domain') domain = v.replace(/^\./, '').toLowerCase();
        if (k.toLowerCase() === 'max-age') expires = Number(v) <= 0 ? 1 : Date.now() + Number(v) * 1000;
      }
      this.cookies = this.cookies.filter((c) => !(c.name === name && c.host === host && c.domain === domain));
      this.cookies.push({ name, value, host, domain, expires });
    }
  }

  /** One request, no redirect following. Returns { status, headers, setCookies, body, location, url }. */
  request(url, { method = 'GET', headers = {}, body, cookies = true } = {}) {
    const u = new URL(url);
    const h = { host: u.host, ...this.headers, ...headers };
    const jar = cookies ? this.cookieHeader(url) : '';
    if (jar && !h.cookie) h.cookie = jar;
    if (body !== undefined && !(body instanceof Buffer) && typeof body !== 'string') {
      throw new Error('body must be a string or Buffer');
    }
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: u.port || 80, path: u.pathname + u.search, method, headers: h, agent: false },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const setCookies = res.headers['set-cookie'] || [];
            if (cookies) this.store(url, setCookies);
            const location = res.headers.location ? new URL(res.headers.location, url).toString() : undefined;
            resolve({
              url,
              status: res.statusCode,
              headers: res.headers,
              setCookies,
              body: Buffer.concat(chunks).toString('utf8'),
              location,
              json() { return JSON.parse(this.body); },
            });
          });
          res.on('error', reject);
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error(`timeout: ${method} ${url}`)));
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  /** Follows redirects with GET (as browsers do after 302/303). Returns the final response and the chain. */
  async follow(url, options = {}, max = 15) {
    const chain = [];
    let res = await this.request(url, { headers: { accept: 'text/html', ...options.headers }, ...options });
    chain.push(res);
    for (let i = 0; i < max && res.location && res.status >= 300 && res.status < 400; i += 1) {
      res = await this.request(res.location, { headers: { accept: 'text/html', ...(options.headers || {}) } });
      chain.push(res);
    }
    res.chain = chain;
    return res;
  }
}

/** Submits the local issuer's login form shown by `page` (a response). */
export async function submitLogin(browser, page, { username = 'alice', password = username } = {}) {
  const action = page.body.match(/action="([^"]+)"/)?.[1];
  if (!action) throw new Error(`no login form at ${page.url}: ${page.status} ${page.body.slice(0, 300)}`);
  const target = new URL(action.replace(/&amp;/g, '&'), page.url).toString();
  const res = await browser.request(target, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
    body: new URLSearchParams({ username, password }).toString(),
  });
  if (res.location) return browser.follow(res.location);
  return res;
}

/** The whole login from a protected URL: returns the final response (the app) and the chain. */
export async function login(browser, startUrl, user = {}) {
  const atIssuer = await browser.follow(startUrl);
  if (atIssuer.status !== 200 || !atIssuer.body.includes('/interaction/')) return atIssuer;
  const done = await submitLogin(browser, atIssuer, user);
  done.chain = [...atIssuer.chain, ...(done.chain || [done])];
  return done;
}

/** A session cookie value for a given raw 32-byte ID, signed as the worker signs it. */
export function signSessionId(id, secret) {
  const mac = createHmac('sha256', secret)
    .update('portcullis session id v1')
    .update(Buffer.from([0]))
    .update(id)
    .digest();
  return `${id.toString('base64url')}.${mac.toString('base64url')}`;
}
