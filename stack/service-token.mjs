// scripts/service-token <name> [--json]: a new service token for machine clients.
import { randomBytes, createHash } from 'node:crypto';

const args = process.argv.slice(2);
const json = args.includes('--json');
const name = args.find((a) => !a.startsWith('--'));
if (!name || !/^[A-Za-z0-9._-]+$/.test(name)) {
  console.error('usage: scripts/service-token <name> [--json]   (name: letters, digits, - _ .; e.g. immich-mobile)');
  process.exit(2);
}
const clientId = `${name}.${randomBytes(4).toString('hex')}`;
const secret = randomBytes(32).toString('base64url');
const secretSha256 = createHash('sha256').update(secret).digest('hex');
const basic = Buffer.from(`${clientId}:${secret}`).toString('base64');

if (json) {
  console.log(JSON.stringify({ name, client_id: clientId, secret, secret_sha256: secretSha256 }));
  process.exit(0);
}
console.log(`# 1. Add this to wrangler.toml (only the secret's hash is stored):

[[vars.PORTCULLIS.service_tokens]]
name = "${name}"
client_id = "${clientId}"
secret_sha256 = "${secretSha256}"

# 2. List it on each app it may open, e.g.
#      service_tokens = ["${name}"]
#    then deploy: npx wrangler deploy

# 3. Give the client these headers (the secret is shown only now):
#
#    Immich mobile app: Settings → Advanced → Custom proxy headers
#      Portcullis-Client-Id       ${clientId}
#      Portcullis-Client-Secret   ${secret}
#
#    Clients that only do HTTP Basic authentication (user name / password):
#      user name  ${clientId}
#      password   ${secret}
#    i.e. the header   Authorization: Basic ${basic}
`);
