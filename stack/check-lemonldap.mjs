// Used by scripts/install-tools --lemonldap: starts the LemonLDAP::NG portal once from a
// throwaway configuration (the same one the tests use) and reads its discovery document.
// A missing Perl module shows up here, at install time, rather than as five failed tests.
// Exit 0 when discovery answered; otherwise prints the portal's first complaints and each
// `Can't locate X.pm` as the module name on a line `missing-perl-module: X`, then exits 1.
import { startLemonldap } from './lemonldap.mjs';
import { freePort } from './ports.mjs';

const port = await freePort();
try {
  const portal = await startLemonldap({
    port,
    callbacks: [`http://127.0.0.1:${port + 1}/.portcullis/callback`],
    signedOut: `http://127.0.0.1:${port + 1}/.portcullis/signed-out`,
    secret: 'install-check',
  });
  await portal.stop();
} catch (e) {
  const text = String(e?.message ?? e);
  console.error(text);
  const missing = new Set([...text.matchAll(/Can't locate (\S+)\.pm in @INC/g)].map((m) => m[1].replaceAll('/', '::')));
  for (const m of missing) console.log(`missing-perl-module: ${m}`);
  process.exit(1);
}
