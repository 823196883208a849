// scripts/assertion-key [ES256|EdDSA] [--json]: a new private key for Portcullis-Assertion.
import { generateKeyPairSync, createHash } from 'node:crypto';

const args = process.argv.slice(2);
const alg = args.find((a) => !a.startsWith('--')) || 'ES256';
if (!['ES256', 'EdDSA'].includes(alg)) {
  console.error('usage: scripts/assertion-key [ES256|EdDSA] [--json]');
  process.exit(2);
}
const { privateKey } = alg === 'ES256'
  ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
  : generateKeyPairSync('ed25519');
const jwk = privateKey.export({ format: 'jwk' });
// RFC 7638 thumbprint as the key ID.
const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
const kid = createHash('sha256').update(JSON.stringify(members)).digest('base64url');
const key = JSON.stringify({ ...jwk, kid, alg, use: 'sig' });

if (args.includes('--json')) {
  console.log(key);
  process.exit(0);
}
console.log(`# A new ${alg} key for Portcullis-Assertion (key ID ${kid}).
# Store it as a secret (never in wrangler.toml):
#
#   npx wrangler secret put ASSERTION_KEY        and paste the line below
#
# or, for local development, put it in .dev.vars as   ASSERTION_KEY=<the line below>
#
# Apps verify assertions against https://<app host>/.portcullis/jwks.json
# (iss https://<app host>/.portcullis, aud <app host>).

${key}`);
