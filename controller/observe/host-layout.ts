// Owns natsfleet's own layout on a host: its state directory and what it keeps there (the record of
// the last apply, the pending steps of an apply in progress, the lock, the ownership lists, the
// backups, the apply history). Observe reads these paths and apply writes them: both name them from here.
import { HOST_STATE_DIR } from '../manifest/path-policy.js';

/** natsfleet's state directory on every host: one definition, also the path policy's (never a manifest's). */
export const STATE_DIR = HOST_STATE_DIR;
/** What natsfleet applied last (revision, time, file hashes and displays): the host's memory, for drift. */
export const RECORD_PATH = `${STATE_DIR}/applied.json`;
/** The steps of an apply in progress: an interrupted apply is finished by the next one. */
export const PENDING_PATH = `${STATE_DIR}/pending.json`;
/** One step name per line: the pending steps an apply finished (so a rerun does not repeat them). */
export const PENDING_DONE_PATH = `${STATE_DIR}/pending.done`;
/** The per-host apply lock: a directory (taken by an atomic rename) holding its owner in `info`. */
export const LOCK_DIR = `${STATE_DIR}/lock`;
export const LOCK_INFO_PATH = `${LOCK_DIR}/info`;
/** One path per line: every file natsfleet manages on the host, so files it no longer wants are seen too. */
export const APPLIED_FILES_PATH = `${STATE_DIR}/applied.files`;
/** One path per line: every dedicated directory natsfleet created (and so owns) on the host. */
export const OWNED_DIRS_PATH = `${STATE_DIR}/owned.dirs`;
/** One JSON line per apply that changed the host, the last 100 (apply/history.ts): `natsfleet history`. */
export const HISTORY_PATH = `${STATE_DIR}/history.jsonl`;
/** The previous version of every file an apply replaces or removes, for rollback. */
export const BACKUP_DIR = `${STATE_DIR}/backup`;
