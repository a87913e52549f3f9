// `{{name}}`: a sluice stage in JavaScript that counts marker comments
// (`TODO`, `FIXME`, ...) in the workspace files its config selects. It
// reports a metric per count, a gate a pipeline can also set on the metric,
// one finding per marker (shown in the console, the HTML report and CI
// annotations), an output and a text report artifact.
//
//   stages:
//     {{name}}:
//       uses: ./{{name}}.wasm
//       with: { include: ["src/**/*.py"], markers: [TODO, FIXME], max: 0 }
//       grants: { workspace: read }
//
// Built with sluice-stage (the SDK in ./sluice-stage, from sluice {{sluice_version}}).

import { defineStage, s, report, Gate, finding, log, progress, checkCancelled } from './sluice-stage/index.js';

// The stage's `with:`: validated before `run` (a typo fails the stage naming
// the key) and published as a JSON Schema, so `sluice validate` checks it too.
const config = s.object({
  include: s.array(s.string()).default(['**/*']).describe('Globs of the files to look at, relative to the workspace.'),
  markers: s.array(s.string({ minLength: 1 })).default(['TODO', 'FIXME']).describe('The words that count as markers.'),
  max: s.integer({ minimum: 0 }).default(0).describe("The most markers the stage's gate lets through."),
});

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The markers in `text`: `{ line, word, text }` for every line holding one
 * of `markers` (kept apart from `run` so that it is easy to test).
 * @param {string} text
 * @param {string[]} markers
 */
export function scanText(text, markers) {
  const found = [];
  text.split('\n').forEach((line, i) => {
    const word = markers.find((m) => line.includes(m));
    if (word) found.push({ line: i + 1, word, text: line.trim() });
  });
  return found;
}

export const plugin = defineStage({
  name: '{{name}}',
  version: '0.1.0',
  kind: 'lint',
  description: 'Counts marker comments (TODO, FIXME) in the workspace',
  config,
  capabilities: ['workspace-read'],
  run(ctx) {
    const { include, markers, max } = ctx.config;
    log.info(`looking for ${markers.join(', ')} in ${JSON.stringify(include)}`);
    const paths = ctx.workspace.find(include);
    const found = [];
    let files = 0;
    paths.forEach((path, i) => {
      checkCancelled(`cancelled after ${i} of ${paths.length} file(s)`);
      progress(i, paths.length, path);
      let text;
      try {
        text = utf8.decode(ctx.workspace.readBytes(path));
      } catch {
        return; // Binary and unreadable files are not text to look at.
      }
      files += 1;
      for (const m of scanText(text, markers)) {
        log.info(`${m.word} at ${path}:${m.line}`, { path });
        found.push({ path, ...m });
      }
    });

    ctx.writeArtifact('markers.txt', `${found.map((m) => `${m.path}:${m.line}: ${m.text}`).join('\n')}\n`, {
      mediaType: 'text/plain',
      role: 'report',
    });
    const count = found.length;
    const gate = count <= max ? Gate.pass : Gate.fail;
    return report(`${count} marker(s) in ${files} file(s)`)
      .metric('{{name}}.files', files)
      .metric('{{name}}.markers', count)
      .gate(gate('{{name}}', `${count} marker(s), at most ${max} allowed`).observed(count).threshold(max))
      .output('markers', count)
      .findings(found.map((m) => finding.warning('{{name}}/marker', `${m.word}: ${m.text}`)
        .at(m.path, m.line)
        .fingerprint(`${m.path}:${m.text}`)));
  },
});
