// SPDX-License-Identifier: Apache-2.0
/**
 * The real {@link import('./host.js').Host}: the `sluice:stage@0.2.0` and
 * WASI imports as componentize-js exposes them. The only module of the SDK
 * that imports them; in a native test `testing.js` resolves these
 * specifiers to inert stand-ins and installs a fake host instead.
 * @module
 */
import { log, progress } from 'sluice:stage/log@0.2.0';
import { isCancelled } from 'sluice:stage/cancel@0.2.0';
import { run, spawn } from 'sluice:stage/exec@0.2.0';
import { get } from 'sluice:stage/secrets@0.2.0';
import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import { poll } from 'wasi:io/poll@0.2.12';
import { FsError, setRealHost } from './host.js';
import { hostErrorCode } from './errors.js';

const CHUNK = 65536n;
const DISPOSE = Symbol.dispose ?? Symbol.for('dispose');

/** Drops a resource now rather than at garbage collection (a process, a stream, a descriptor). */
function drop(r) {
  if (r && typeof r[DISPOSE] === 'function') r[DISPOSE]();
}

/** @type {Array<[any, string]> | null} */
let preopens = null;
// Asked once, at the first file access of a run (never while the component
// is being built, whose preopens are not the runner's): each call of
// `getDirectories` hands out new descriptors.
const dirs = () => (preopens ??= getDirectories());

/** Splits `path` into the preopen holding it and the path inside it. */
function locate(path) {
  let best = null;
  for (const [descriptor, guest] of dirs()) {
    const root = guest.replace(/\/+$/, '');
    if ((path === root || path.startsWith(`${root}/`)) && (!best || root.length > best[1].length)) {
      best = [descriptor, root];
    }
  }
  if (!best) throw new FsError('not-mounted', path);
  const rel = path.slice(best[1].length).replace(/^\/+/, '');
  return [best[0], rel === '' ? '.' : rel];
}

/** Runs `f` with the descriptor for `path`, converting WASI errors to {@link FsError}. */
function at(path, f) {
  const [root, rel] = locate(path);
  try {
    return f(root, rel);
  } catch (e) {
    const code = hostErrorCode(e);
    if (code) throw new FsError(code.tag, path);
    throw e;
  }
}

function concat(chunks) {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    all.set(c, offset);
    offset += c.length;
  }
  return all;
}

const fs = {
  readFile: (path) => at(path, (root, rel) => {
    const fd = root.openAt({ symlinkFollow: false }, rel, {}, { read: true });
    try {
      const chunks = [];
      let offset = 0n;
      for (;;) {
        const [bytes, eof] = fd.read(CHUNK, offset);
        chunks.push(bytes);
        offset += BigInt(bytes.length);
        if (eof || bytes.length === 0) return concat(chunks);
      }
    } finally {
      drop(fd);
    }
  }),
  writeFile: (path, bytes) => at(path, (root, rel) => {
    const fd = root.openAt({}, rel, { create: true, truncate: true }, { write: true });
    try {
      let offset = 0;
      while (offset < bytes.length) offset += Number(fd.write(bytes.subarray(offset), BigInt(offset)));
    } finally {
      drop(fd);
    }
  }),
  list: (path) => at(path, (root, rel) => {
    const dir = rel === '.' ? root : root.openAt({}, rel, { directory: true }, { read: true });
    try {
      const stream = dir.readDirectory();
      const entries = [];
      for (let e = stream.readDirectoryEntry(); e; e = stream.readDirectoryEntry()) entries.push({ name: e.name, type: e.type });
      drop(stream);
      return entries;
    } finally {
      if (dir !== root) drop(dir);
    }
  }),
  stat: (path) => {
    try {
      return at(path, (root, rel) => {
        const st = root.statAt({ symlinkFollow: false }, rel);
        const m = st.dataModificationTimestamp;
        return { type: st.type, size: Number(st.size), mtimeNs: m ? m.seconds * 1000000000n + BigInt(m.nanoseconds) : 0n };
      });
    } catch (e) {
      if (e instanceof FsError && e.code === 'no-entry') return null;
      throw e;
    }
  },
  mkdirp: (path) => {
    const parts = path.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = `/${parts.slice(0, i).join('/')}`;
      // Directories above a preopen (`/artifacts`) exist already.
      if (!dirs().some(([, g]) => p === g || p.startsWith(`${g.replace(/\/+$/, '')}/`))) continue;
      if (!fs.stat(p)) at(p, (root, rel) => root.createDirectoryAt(rel));
    }
  },
};

/** A reader over a WASI input stream: `read()` blocks for data, `null` at the end. */
function reader(stream) {
  if (!stream) return null;
  return {
    read() {
      try {
        return stream.blockingRead(CHUNK);
      } catch (e) {
        if (hostErrorCode(e)?.tag === 'closed') {
          drop(stream);
          return null;
        }
        throw e;
      }
    },
  };
}

function writer(stream) {
  if (!stream) return null;
  return {
    write(bytes) {
      for (let at = 0; at < bytes.length; at += 4096) stream.blockingWriteAndFlush(bytes.subarray(at, at + 4096));
    },
    close() {
      drop(stream);
    },
  };
}

function process(p) {
  return {
    stdin: () => writer(p.stdin()),
    stdout: () => reader(p.stdout()),
    stderr: () => reader(p.stderr()),
    tryWait: () => p.tryWait(),
    wait: () => p.wait(),
    kill: () => p.kill(),
    truncated: () => p.truncated(),
  };
}

/** Reads a process's stdout and stderr as data arrives (so neither blocks the other) and waits. */
function collect(command) {
  const p = spawn(command);
  try {
    const streams = [p.stdout(), p.stderr()];
    const bufs = [[], []];
    for (;;) {
      const open = [0, 1].filter((i) => streams[i]);
      if (open.length === 0) break;
      const pollables = open.map((i) => streams[i].subscribe());
      const ready = Array.from(poll(pollables), (r) => open[r]);
      // Pollables are children of their streams: drop them first.
      pollables.forEach(drop);
      for (const i of ready) {
        try {
          bufs[i].push(streams[i].read(CHUNK));
        } catch (e) {
          if (hostErrorCode(e)?.tag !== 'closed') throw e;
          drop(streams[i]);
          streams[i] = null;
        }
      }
    }
    return { status: p.wait(), stdout: concat(bufs[0]), stderr: concat(bufs[1]), truncated: p.truncated() };
  } finally {
    drop(p);
  }
}

setRealHost({
  log,
  progress,
  isCancelled,
  execRun: run,
  execSpawn: (command) => process(spawn(command)),
  execCollect: collect,
  secretGet: get,
  fs,
});
