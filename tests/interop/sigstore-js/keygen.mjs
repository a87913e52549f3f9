// Usage: node keygen.mjs <key.pem> <pub.pem>
// Writes an unencrypted ECDSA P-256 private key (PKCS#8 PEM) and its public
// key (SPKI PEM), for signing with sign.mjs.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { fail } from './common.mjs';

const [keyPath, pubPath] = process.argv.slice(2);
if (!keyPath || !pubPath) fail(2, 'usage: node keygen.mjs <key.pem> <pub.pem>');
const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
fs.writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
fs.writeFileSync(pubPath, publicKey.export({ type: 'spki', format: 'pem' }));
