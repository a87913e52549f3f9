// Usage: node sign.mjs [--dsse] <file> <key.pem> <out.bundle>
//
// Signs <file> with an unencrypted ECDSA P-256 PKCS#8 PEM key through
// @sigstore/sign, as a key-based bundle with no witnesses (no Rekor entry, no
// timestamp): the sigstore-js equivalent of `cosign sign-blob --key ...
// --tlog-upload=false`. The key hint is cosign-style.
//
// Without --dsse: MessageSignatureBundleBuilder (a signature over the file;
// @sigstore/sign writes media type ...bundle+json;version=0.2 for these).
// With --dsse: <file> is an in-toto statement, signed as a DSSE envelope with
// payloadType application/vnd.in-toto+json (DSSEBundleBuilder, bundle v0.3).
import crypto from 'node:crypto';
import fs from 'node:fs';
import { DSSEBundleBuilder, MessageSignatureBundleBuilder } from '@sigstore/sign';
import { bundleToJSON } from '@sigstore/bundle';
import { IN_TOTO, fail, keyHint, read } from './common.mjs';

const args = process.argv.slice(2);
const dsse = args[0] === '--dsse';
if (dsse) args.shift();
const [filePath, keyPath, outPath] = args;
if (!filePath || !keyPath || !outPath) {
  fail(2, 'usage: node sign.mjs [--dsse] <file> <key.pem> <out.bundle>');
}

const data = read(filePath, 'file');
let privateKey;
try {
  privateKey = crypto.createPrivateKey(read(keyPath, 'private key'));
} catch (err) {
  fail(2, `cannot use private key ${keyPath}: ${err.message}`);
}
const publicKey = crypto.createPublicKey(privateKey);

const signer = {
  async sign(payload) {
    return {
      // ECDSA over SHA-256, ASN.1 DER encoded (node's default for EC keys).
      signature: crypto.sign('sha256', payload, privateKey),
      key: {
        $case: 'publicKey',
        publicKey: publicKey.export({ type: 'spki', format: 'pem' }),
        hint: keyHint(publicKey),
      },
    };
  },
};

const builder = dsse
  ? new DSSEBundleBuilder({ signer, witnesses: [] })
  : new MessageSignatureBundleBuilder({ signer, witnesses: [] });
const bundle = await builder.create(dsse ? { data, type: IN_TOTO } : { data });
fs.writeFileSync(outPath, JSON.stringify(bundleToJSON(bundle), null, 2) + '\n');
