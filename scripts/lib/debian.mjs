// Debian packages the scripts need. Installed with apt-get when running as
// root (CI, fresh machines); otherwise a missing package is a clear error.
import { $ } from 'zx';
import { step } from './progress.mjs';

async function missingPackages(packages) {
  const missing = [];
  for (const name of packages) {
    const r = await $`dpkg-query -W -f='\${Status}' ${name}`.quiet().nothrow();
    if (!r.stdout.includes('install ok installed')) missing.push(name);
  }
  return missing;
}

export async function ensureDebianPackages(packages) {
  const missing = await missingPackages(packages);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`missing Debian packages: ${missing.join(' ')}\n` +
      `install them with: sudo apt-get install -y ${missing.join(' ')}`);
  }
  step(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await $({ env })`apt-get update -q`.quiet();
  await $({ env })`apt-get install -y -q --no-install-recommends ${missing}`.quiet();
}

/** The installed version of a package, e.g. "6.12.117-1~deb12u1". */
export async function packageVersion(name) {
  return (await $`dpkg-query -W -f='\${Version}' ${name}`.quiet()).stdout.trim();
}
