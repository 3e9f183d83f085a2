// Owns loading the NATS client on first use: a run that never talks NATS (a no-op apply, a controller with
// its state in a directory) never loads it. A CommonJS package: bundled by esbuild, its exports may sit under
// `default`.
type Nats = typeof import('nats');

export async function loadNats(): Promise<Nats> {
  const mod = (await import('nats')) as Nats & { default?: Nats };
  return typeof mod.connect === 'function' ? mod : mod.default!;
}
