// Creating an app password as a person does: the form on the account page, then — when the
// gate sends them to the issuer first — the issuer's login form again; returns what the
// page shows once ({ id, secret }).
import assert from 'node:assert/strict';
import { submitLogin } from '../../stack/client.mjs';

export async function createAppPassword(browser, origin, { app, label, lifetime = '30d', username = browser.name }) {
  // From an app's host, the account page sends the person to the auth host.
  const account = await browser.follow(`${origin}/.portcullis/account`);
  assert.equal(account.status, 200, account.body.slice(0, 300));
  const here = new URL(account.url).origin;
  const csrf = account.body.match(/name="csrf" value="([\w-]+)"/)[1];
  let page = await browser.request(`${here}/.portcullis/app-passwords`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
    body: new URLSearchParams({ app, label, lifetime, csrf }).toString(),
  });
  if (page.status === 303) {
    assert.match(page.location, /max_age=600/);
    const atIssuer = await browser.follow(page.location);
    page = atIssuer.body.includes('/interaction/') ? await submitLogin(browser, atIssuer, { username }) : atIssuer;
  }
  assert.equal(page.status, 200, page.body.slice(0, 300));
  return {
    id: page.body.match(/data-client-id>([^<]+)</)[1],
    secret: page.body.match(/data-secret>([^<]+)</)[1],
  };
}
