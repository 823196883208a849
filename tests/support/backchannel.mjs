// A back-channel logout as the issuer sends it: a logout token signed with the issuer's
// current key, POSTed to the gate.
import { SignJWT, importJWK } from 'jose';
import { Browser } from '../../stack/client.mjs';

/** A logout token from `issuer` (stack/issuer.mjs) with these claims (`sub` and/or `sid`). */
export async function logoutToken(issuer, claims) {
  const jwk = issuer.keys[0];
  const now = Math.floor(Date.now() / 1000);
  const payload = { iss: issuer.url, aud: 'portcullis', iat: now, exp: now + 120, jti: `jti-${Math.random()}`, events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, ...claims };
  return new SignJWT(payload).setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ: 'logout+jwt' }).sign(await importJWK(jwk, jwk.alg));
}

/** POSTs a logout token to the gate at `origin`. */
export function backchannelLogout(origin, token) {
  return new Browser().request(`${origin}/.portcullis/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }).toString(),
  });
}
