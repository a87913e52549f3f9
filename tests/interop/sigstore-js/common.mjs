// Helpers shared by the interop scripts.
import crypto from 'node:crypto';
import fs from 'node:fs';

/** Reads a file or exits with status 2 (usage/IO error). */
export function read(path, what) {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    fail(2, `cannot read ${what} ${path}: ${err.message}`);
  }
}

/** Prints `message` to stderr and exits with `status`. */
export function fail(status, message) {
  process.stderr.write(`${message}\n`);
  process.exit(status);
}

/** The cosign-style key hint: base64 of the sha256 of the DER SubjectPublicKeyInfo. */
export function keyHint(publicKey) {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(der).digest('base64');
}

export const IN_TOTO = 'application/vnd.in-toto+json';
