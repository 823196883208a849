// The local issuer and demo app for scripts/dev, on fixed ports matching dev/wrangler.toml.
import { startIssuer, gateClient } from './issuer.mjs';
import { startUpstream } from './upstream.mjs';

const WORKER = Number(process.env.PORTCULLIS_DEV_PORT || 8787);
const hosts = ['auth.portcullis.localhost', 'photos.portcullis.localhost', 'sonarr.portcullis.localhost'];
const alg = process.env.PORTCULLIS_DEV_ALG || 'RS256';
const issuer = await startIssuer({
  port: 9400,
  alg,
  clients: [gateClient({ hosts, port: WORKER, secret: process.env.OIDC_CLIENT_SECRET, backchannel: true })],
  log: (line) => console.log(`[issuer] ${line}`),
});
const app = await startUpstream({ port: 9401 });
console.log(`[stack] issuer ${issuer.url} (${alg}), demo app ${app.url}`);
const stop = async () => {
  await Promise.allSettled([issuer.stop(), app.stop()]);
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
