// Test support: SSH key pairs from ssh2 that ssh2 itself can read. ssh2's generateKeyPairSync('ed25519')
// now and then (about 7 in 3,000) makes a key its own parser refuses ("Malformed OpenSSH private key"):
// such a key is made again, so that no test fails on it.
import ssh2 from 'ssh2';

type Gen = typeof ssh2.utils.generateKeyPairSync;

/** ssh2.utils.generateKeyPairSync, made again until ssh2 parses the private key. */
export const generateKeyPairSync = ((...args: Parameters<Gen>) => {
  for (;;) {
    const k = ssh2.utils.generateKeyPairSync(...args);
    if (!(ssh2.utils.parseKey(k.private) instanceof Error)) return k;
  }
}) as Gen;
