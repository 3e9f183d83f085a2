// Starts the e2e sandbox fleet once per test run and removes it afterwards, also when the run is
// interrupted (SIGINT/SIGTERM) or a previous run left one behind.
import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { fleetDown, fleetUp, SANDBOX_LABEL, type Fleet } from '../../controller/sandbox/fleet.js';

export const E2E_FLEET_ID = 'e2e';
/**
 * Three cluster members and a fourth to add; the single-host tests use the first three; the batches test
 * rolls an image bump over all six standalone hosts in batches of 2.
 */
export const E2E_HOSTS = 6;

declare module 'vitest' {
  export interface ProvidedContext {
    fleet: Fleet;
  }
}

function removeNow() {
  const filter = `label=${SANDBOX_LABEL}=${E2E_FLEET_ID}`;
  const ids = execFileSync('docker', ['ps', '-aq', '--filter', filter], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  if (ids.length) execFileSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
  const vols = execFileSync('docker', ['volume', 'ls', '-q', '--filter', filter], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  if (vols.length) execFileSync('docker', ['volume', 'rm', '-f', ...vols], { stdio: 'ignore' });
  const nets = execFileSync('docker', ['network', 'ls', '-q', '--filter', filter], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  if (nets.length) execFileSync('docker', ['network', 'rm', ...nets], { stdio: 'ignore' });
}

export default async function setup(project: TestProject) {
  const onSignal = (signal: NodeJS.Signals) => {
    removeNow();
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const fleet = await fleetUp({
    hosts: E2E_HOSTS,
    id: E2E_FLEET_ID,
    dir: '.sandbox/e2e',
    cluster: 'core',
    log: (l) => console.log(`[sandbox] ${l}`),
  });
  project.provide('fleet', fleet);
  return async () => {
    await fleetDown(E2E_FLEET_ID);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
