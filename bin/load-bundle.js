// Owns running the CLI bundle (dist/natsfleet.cjs, scripts/bundle.mjs) with V8's code cache, as Python
// keeps its .pyc files: the first run of a command writes the code V8 compiled for it (the bytecode of every
// function that run called) to dist/code-cache/, and the next runs of that command compile almost nothing.
// Node 20 has no compile cache of its own (module.enableCompileCache is Node 22's) and none for ES modules,
// hence one CommonJS file run as a vm.Script. This file and bin/natsfleet.js are CommonJS too (bin/package.json):
// a CommonJS entry starts without Node's ES module loader.
// A cache is read only when it was made from this very bundle (its build's SHA-256, size and mtime are in
// the file name), by this Node with the same flags (version, architecture and flags are in the name too; V8
// also checks its own version and flags and rejects what does not match), and when it and its directory
// belong to this user or root and nobody else can write them (the bundle beside it has the same trust:
// whoever can write one can write the other). It is written
// only where natsfleet's own files are writable (not by a user running a root's installation), complete
// (a temporary file renamed into place), after a run that succeeded, and again only when it was missing or
// V8 rejected it.
'use strict';
const {
  closeSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} = require('node:fs');
const { isAscii } = require('node:buffer');
const Module = require('node:module');
const { dirname, join } = require('node:path');
const { Script } = require('node:vm');

const CODE_CACHE_DIR = 'code-cache';

/** The commands that get a cache of their own; any other argument shares `default` (a bounded set of files). */
const COMMANDS = new Set([
  'apply',
  'completion',
  'controller',
  'demo',
  'history',
  'hostkey',
  'import',
  'init',
  'plan',
  'render',
  'resume',
  'revert',
  'sandbox',
  'status',
  'suspend',
  'sync',
  'unlock',
  'validate',
]);

/** Which cache a command line uses. */
const cacheKey = (argv) => (COMMANDS.has(argv[2]) ? argv[2] : 'default');

/** Owned by this user or root, and writable by nobody else: safe to take code from. */
function trusted(st) {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return (st.uid === uid || st.uid === 0) && (st.mode & 0o022) === 0;
}

/**
 * This process's V8 and Node flags (its command line's and NODE_OPTIONS), as 8 hex digits (FNV-1a): V8
 * rejects a cache made under other flags, so runs with and without, say, --max-old-space-size keep one each
 * instead of rewriting a shared one in turn.
 */
function flagsKey() {
  let h = 0x811c9dc5;
  for (const c of `${process.execArgv.join(' ')}\0${process.env.NODE_OPTIONS ?? ''}`) {
    h ^= c.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** The cache file for this bundle and key, or undefined when the bundle has no build identity. */
function cachePath(bundle, st, key) {
  let build;
  try {
    build = readFileSync(`${bundle}.sha256`, 'utf8').trim().slice(0, 16);
  } catch {
    return undefined;
  }
  if (!/^[0-9a-f]{16}$/.test(build)) return undefined;
  const bundleId = `${build}-${st.size}-${Math.trunc(st.mtimeMs)}`;
  const name = `${key}-${bundleId}-${process.version}-${process.arch}-${flagsKey()}.bin`;
  return join(dirname(bundle), CODE_CACHE_DIR, name);
}

function readCache(path) {
  try {
    if (!trusted(lstatSync(dirname(path)))) return undefined;
    const st = lstatSync(path);
    return st.isFile() && trusted(st) ? readFileSync(path) : undefined;
  } catch {
    return undefined; // none yet
  }
}

function writeCache(path, data) {
  const dir = dirname(path);
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(dir, { mode: 0o755, recursive: true });
    const st = lstatSync(dir);
    if (!st.isDirectory() || !trusted(st)) return;
    writeFileSync(tmp, data, { flag: 'wx', mode: 0o644 });
    renameSync(tmp, path);
  } catch {
    // A read-only installation, a full disk: the next run compiles again, as it did without a cache.
    rmSync(tmp, { force: true });
  }
}

/**
 * Loads the bundle and returns its `main`, plus `saveCache(exitCode)` to call once the command is done (it writes
 * the cache when there was none or V8 rejected it), and what happened to the cache (for tests).
 */
function loadBundle(bundle, argv) {
  const fd = openSync(bundle, 'r');
  let bytes;
  let st;
  try {
    st = fstatSync(fd);
    bytes = readFileSync(fd);
  } finally {
    closeSync(fd);
  }
  // The build writes ASCII (scripts/bundle.mjs): read as Latin-1, several times faster than decoding UTF-8.
  const source = isAscii(bytes) ? bytes.latin1Slice(0, bytes.length) : bytes.toString('utf8');
  const path = cachePath(bundle, st, cacheKey(argv));
  const cachedData = path ? readCache(path) : undefined;
  const script = new Script(Module.wrap(source), { filename: bundle, cachedData });
  const cache = !path ? 'none' : !cachedData ? 'missing' : script.cachedDataRejected ? 'rejected' : 'used';
  const module = { exports: {} };
  script.runInThisContext()(module.exports, Module.createRequire(bundle), module, bundle, dirname(bundle));
  return {
    main: module.exports.main,
    cache,
    // Only after a run that did its command's whole work (exit 0, or plan's 2: changes): one that stopped at
    // an error may have run little of it, and its cache would be kept.
    saveCache: (code) => {
      if (path && (code === 0 || code === 2) && (cache === 'missing' || cache === 'rejected'))
        writeCache(path, script.createCachedData());
    },
  };
}

exports.CODE_CACHE_DIR = CODE_CACHE_DIR;
exports.cacheKey = cacheKey;
exports.loadBundle = loadBundle;
