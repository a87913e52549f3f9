// Usage: node keyless.mjs [options] <file> <out.bundle> <out.trusted_root.json>
//
// Signs <file> keyless against a private, in-process Sigstore: @sigstore/mock
// provides a Fulcio CA (with a CT log that embeds an SCT), a Rekor v1 log and
// an RFC 3161 timestamp authority; @sigstore/sign talks to them through nock,
// exactly as it talks to the public instance. Writes the bundle (v0.3) and a
// trusted_root.json that trusts only these private services. Nothing leaves
// the process.
//
// Options:
//   --tsa              add an RFC 3161 timestamp from the private TSA
//   --rekor            add a Rekor v1 (hashedrekord) entry with SET and proof
//   --cert-time ISO    clock of the CA and CT log (default: now)
//   --tsa-time ISO     clock of the TSA (default: the certificate time, whole
//                      seconds); milliseconds become fractional seconds in
//                      the TSTInfo genTime, e.g. 20250102030405.12Z
//   --check            verify the result with @sigstore/verify too
// At least one of --tsa and --rekor is required. Exit: 0 written, 1 --check
// failed, 2 usage error.
import crypto from 'node:crypto';
import fs from 'node:fs';
import nock from 'nock';
import {
  fulcioHandler,
  initializeCA,
  initializeCTLog,
  initializeTLog,
  initializeTSA,
  rekorHandler,
  tsaHandler,
} from '@sigstore/mock';
import {
  FulcioSigner,
  MessageSignatureBundleBuilder,
  RekorWitness,
  TSAWitness,
} from '@sigstore/sign';
import { bundleFromJSON, bundleToJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { fail, read } from './common.mjs';

const FULCIO = 'https://fulcio.sluice.test';
const REKOR = 'https://rekor.sluice.test';
const TSA = 'https://tsa.sluice.test';
const ISSUER = 'https://issuer.sluice.test';
const SUBJECT = 'https://github.com/acme/plugins/.github/workflows/release.yml@refs/heads/main';

const args = process.argv.slice(2);
const opts = { tsa: false, rekor: false, check: false, certTime: null, tsaTime: null };
const positional = [];
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--tsa') opts.tsa = true;
  else if (arg === '--rekor') opts.rekor = true;
  else if (arg === '--check') opts.check = true;
  else if (arg === '--cert-time') opts.certTime = new Date(args[++i]);
  else if (arg === '--tsa-time') opts.tsaTime = new Date(args[++i]);
  else positional.push(arg);
}
const [filePath, bundlePath, rootPath] = positional;
if (!filePath || !bundlePath || !rootPath || (!opts.tsa && !opts.rekor)) {
  fail(2, 'usage: node keyless.mjs [--tsa] [--rekor] [--cert-time ISO] [--tsa-time ISO] [--check] <file> <out.bundle> <out.trusted_root.json>');
}
for (const t of [opts.certTime, opts.tsaTime]) {
  if (t && Number.isNaN(t.getTime())) fail(2, 'invalid time');
}
const certTime = opts.certTime ?? new Date();
const tsaTime = opts.tsaTime ?? new Date(Math.floor(certTime.getTime() / 1000) * 1000);
const data = read(filePath, 'file');

// The mock's root certificates start at `new Date()`; backdate them to a
// minute before the earliest time used, so that backdated certificates and
// timestamps still chain to a root that was valid then.
const rootsTime = new Date(Math.min(Date.now(), certTime.getTime(), tsaTime.getTime()) - 60_000);
async function atRootsTime(fn) {
  const RealDate = globalThis.Date;
  globalThis.Date = class extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(rootsTime.getTime());
      else super(...args);
    }
    static now() {
      return rootsTime.getTime();
    }
  };
  try {
    return await fn();
  } finally {
    globalThis.Date = RealDate;
  }
}
const ec = () => crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ctlog = await initializeCTLog(ec(), certTime);
const ca = await atRootsTime(() => initializeCA(ec(), ctlog, certTime));
const tlog = await initializeTLog(REKOR, ec(), certTime);
const tsa = await atRootsTime(() => initializeTSA(ec(), tsaTime));

const intercept = (base, handler) =>
  nock(base)
    .post(handler.path)
    .reply(async (_, body) => {
      const req = typeof body === 'string' ? body : JSON.stringify(body);
      const { statusCode, response, contentType } = await handler.fn(req);
      return [statusCode, response, { 'Content-Type': contentType || 'text/plain' }];
    });
nock.disableNetConnect();
intercept(FULCIO, fulcioHandler(ca));
intercept(REKOR, rekorHandler(tlog));
intercept(TSA, tsaHandler(tsa));

// An unsigned OIDC token: the mock Fulcio decodes it without checking.
const b64url = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const token = `${b64url({ alg: 'none' })}.${b64url({ iss: ISSUER, sub: SUBJECT, aud: 'sigstore' })}.`;

const witnesses = [];
if (opts.rekor) witnesses.push(new RekorWitness({ rekorBaseURL: REKOR, retry: 0 }));
if (opts.tsa) witnesses.push(new TSAWitness({ tsaBaseURL: TSA, retry: 0 }));
const builder = new MessageSignatureBundleBuilder({
  signer: new FulcioSigner({
    fulcioBaseURL: FULCIO,
    retry: 0,
    identityProvider: { getToken: async () => token },
  }),
  witnesses,
});
const bundle = await builder.create({ data });
const bundleJSON = bundleToJSON(bundle);
// @sigstore/sign writes v0.2 with a one-certificate chain for message
// signatures; v0.3 (a single certificate) is what current clients write.
const chain = bundleJSON.verificationMaterial.x509CertificateChain;
if (chain) {
  delete bundleJSON.verificationMaterial.x509CertificateChain;
  bundleJSON.verificationMaterial.certificate = chain.certificates[0];
  bundleJSON.mediaType = 'application/vnd.dev.sigstore.bundle.v0.3+json';
}
fs.writeFileSync(bundlePath, JSON.stringify(bundleJSON, null, 2) + '\n');

const since = new Date(rootsTime.getTime() - 24 * 3600 * 1000);
const spki = (pub) => pub.export?.({ type: 'spki', format: 'der' }) ?? pub;
const key = (raw) => ({
  rawBytes: raw,
  keyDetails: 'PKIX_ECDSA_P256_SHA_256',
  validFor: { start: since },
});
const root = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [{
    baseUrl: REKOR,
    hashAlgorithm: 'SHA2_256',
    publicKey: key(spki(tlog.publicKey)),
    logId: { keyId: crypto.createHash('sha256').update(spki(tlog.publicKey)).digest() },
  }],
  certificateAuthorities: [{
    subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
    uri: FULCIO,
    certChain: { certificates: [{ rawBytes: Buffer.from(ca.rootCertificate) }] },
    validFor: { start: since },
  }],
  ctlogs: [{
    baseUrl: 'https://ct.sluice.test',
    hashAlgorithm: 'SHA2_256',
    publicKey: key(spki(ctlog.publicKey)),
    logId: { keyId: Buffer.from(ctlog.logID) },
  }],
  timestampAuthorities: [{
    subject: { organization: 'sigstore.mock', commonName: 'tsa' },
    uri: TSA,
    certChain: {
      certificates: [
        { rawBytes: Buffer.from(tsa.intCertificate) },
        { rawBytes: Buffer.from(tsa.rootCertificate) },
      ],
    },
    validFor: { start: since },
  }],
};
const rootJSON = TrustedRoot.toJSON(TrustedRoot.fromJSON(JSON.parse(JSON.stringify(root, (k, v) =>
  v && v.type === 'Buffer' && Array.isArray(v.data) ? Buffer.from(v.data).toString('base64') : v))));
fs.writeFileSync(rootPath, JSON.stringify(rootJSON, null, 2) + '\n');

if (opts.check) {
  try {
    const trust = toTrustMaterial(TrustedRoot.fromJSON(rootJSON));
    const verifier = new Verifier(trust, {
      tlogThreshold: opts.rekor ? 1 : 0,
      ctlogThreshold: 1,
      timestampThreshold: 1,
    });
    verifier.verify(toSignedEntity(bundleFromJSON(bundleJSON), data));
  } catch (err) {
    fail(1, `@sigstore/verify refused it: ${err.code ? `${err.code}: ` : ''}${err.message}`);
  }
}
process.stdout.write(`written: ${bundlePath} (${witnesses.length} witnesses), ${rootPath}\n`);
