// Usage: node verify.mjs <file> <bundle> <pub.pem>
//
// Verifies a key-based Sigstore bundle with @sigstore/verify, offline.
// Exit status: 0 verified, 1 verification failed, 2 usage or I/O error.
//
// The trust material holds only <pub.pem> (whatever the bundle's key hint
// says) and no CA, Rekor, CT or TSA: key-based bundles written by sluice carry
// no log entry or timestamp, so the Verifier runs with tlogThreshold,
// ctlogThreshold and timestampThreshold 0. What @sigstore/verify checks then
// is the bundle's shape (@sigstore/bundle's bundleFromJSON) and the signature
// with the key. Two checks are added here because @sigstore/verify leaves
// them to the log entry, which these bundles do not have:
//  - message signatures: the bundle's messageDigest is the file's sha256;
//  - DSSE envelopes (provenance): the payload is an in-toto statement whose
//    subjects include the file's sha256.
import crypto from 'node:crypto';
import { bundleFromJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { IN_TOTO, fail, read } from './common.mjs';

const [filePath, bundlePath, pubPath] = process.argv.slice(2);
if (!filePath || !bundlePath || !pubPath) {
  fail(2, 'usage: node verify.mjs <file> <bundle> <pub.pem>');
}
const artifact = read(filePath, 'file');
const bundleText = read(bundlePath, 'bundle').toString('utf8');
let publicKey;
try {
  publicKey = crypto.createPublicKey(read(pubPath, 'public key'));
} catch (err) {
  fail(2, `cannot use public key ${pubPath}: ${err.message}`);
}

try {
  const bundle = bundleFromJSON(JSON.parse(bundleText));
  const trust = toTrustMaterial(
    { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] },
    () => ({ publicKey, validFor: () => true }),
  );
  const verifier = new Verifier(trust, {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  verifier.verify(toSignedEntity(bundle, artifact));

  const digest = crypto.createHash('sha256').update(artifact);
  const hex = digest.digest('hex');
  switch (bundle.content.$case) {
    case 'messageSignature': {
      const declared = Buffer.from(bundle.content.messageSignature.messageDigest.digest);
      if (declared.toString('hex') !== hex) {
        throw new Error(`messageDigest ${declared.toString('hex')} is not the file's sha256 ${hex}`);
      }
      break;
    }
    case 'dsseEnvelope': {
      const envelope = bundle.content.dsseEnvelope;
      if (envelope.payloadType !== IN_TOTO) {
        throw new Error(`DSSE payloadType is ${envelope.payloadType}, not ${IN_TOTO}`);
      }
      const statement = JSON.parse(Buffer.from(envelope.payload).toString('utf8'));
      const subjects = (statement.subject ?? []).map((s) => s?.digest?.sha256);
      if (!subjects.includes(hex)) {
        throw new Error(`the file's sha256 ${hex} is not a subject of the statement`);
      }
      break;
    }
  }
  process.stdout.write(`verified: ${bundle.mediaType} ${bundle.content.$case} sha256:${hex}\n`);
} catch (err) {
  fail(1, `verification failed: ${err.code ? `${err.code}: ` : ''}${err.message}`);
}
