// Benchmark support: one controller replica's coordination alone (controller/ha/coordinator.ts) in a
// process of its own, holding leases for BENCH_REPLICA_HOSTS simulated hosts, printing one JSON line per
// change of what it leads or holds: what the takeover benchmark (bench/takeover.ts) kills and watches.
import pino from 'pino';
import { Coordinator } from '../controller/ha/coordinator.js';

const [url, bucket, id, ttlMs, hosts] = process.argv.slice(2);
const c = await Coordinator.start({ url, bucket, replica: id, ttlMs: Number(ttlMs), log: pino({ level: 'silent' }) });
const names = Array.from({ length: Number(hosts) }, (_, i) => ({ name: `sim-${i}` }));
c.setHosts(names);
let last = '';
c.onRound = () => {
  const now = JSON.stringify({ leading: c.isLeader(), held: names.filter((h) => c.owns(h.name)).length });
  if (now !== last) process.stdout.write(`${JSON.stringify({ id, at: Date.now(), ...JSON.parse(now) })}\n`);
  last = now;
};
process.once('SIGTERM', () => void c.stop().then(() => process.exit(0)));
