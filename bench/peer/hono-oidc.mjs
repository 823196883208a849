// The peer for `scripts/bench`: a small Hono app in front of the same upstream, as a person
// would write it with @hono/oidc-auth (a stateless session: the ID token's claims in a
// signed JWT cookie, checked with WebCrypto, no store). It forwards signed-in requests
// with the user's identity in the headers Portcullis sends (those it has claims for).
import { Hono } from 'hono';
import { getAuth, oidcAuthMiddleware, processOAuthCallback } from '@hono/oidc-auth';

const app = new Hono();
app.get('/callback', (c) => processOAuthCallback(c));
app.use('*', oidcAuthMiddleware());
app.all('*', async (c) => {
  const auth = await getAuth(c);
  const url = new URL(c.req.url);
  const headers = new Headers(c.req.raw.headers);
  headers.delete('cookie');
  headers.set('x-auth-request-user', auth.sub);
  headers.set('x-auth-request-email', auth.email);
  headers.set('remote-user', auth.sub);
  headers.set('remote-email', auth.email);
  headers.set('x-forwarded-proto', url.protocol.slice(0, -1));
  headers.set('x-forwarded-host', url.host);
  const method = c.req.method;
  const response = await fetch(c.env.UPSTREAM + url.pathname + url.search, {
    method,
    headers,
    body: method === 'GET' || method === 'HEAD' ? undefined : c.req.raw.body,
    redirect: 'manual',
  });
  // The middleware sets Cache-Control on the response, and a fetched response's headers
  // are immutable: answer with a copy around the same body.
  return new Response(response.body, response);
});

export default app;
