// The mutation score of every file of src/, from Stryker's JSON reports, held to a floor.
// Stryker's own `thresholds.break` judges the score of the whole run, where a well-tested
// file hides a weak one; this script holds every file to it (or to `--floor`).
// `npm run test:mutation` runs it after Stryker:
//   node scripts/mutation-score.mjs [--floor 95] [report.json ...]
// Without a report it reads reports/mutation/mutation.json. With several (a run of the whole
// file, then runs of a few lines after tests were added: `--mutate 'src/x.ts:120-140'`), the
// mutants of a later report replace, line by line, those an earlier one found on a line with
// the same text; the earlier report's mutants stay for lines the later did not re-test, and
// go with lines no longer in the file. Exits 1 when a file is below the floor, naming it.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);
const DEFAULT_REPORT = 'reports/mutation/mutation.json';

/**
 * Counts per file, from one or more parsed reports (mutation-testing-report-schema), merged as
 * the header says.
 */
export function scoresOf(reports) {
  const mutantsByFile = new Map(); // file -> Map(line text -> mutants found on such lines)
  for (const report of reports) {
    for (const [file, { source, mutants }] of Object.entries(report.files)) {
      const lines = source.split('\n');
      const retested = new Map();
      for (const mutant of mutants) {
        const text = lines[mutant.location.start.line - 1].trim();
        if (!retested.has(text)) retested.set(text, []);
        retested.get(text).push({ ...mutant, file });
      }
      const earlier = mutantsByFile.get(file) ?? new Map();
      const present = new Set(lines.map((line) => line.trim()));
      const merged = new Map([...earlier].filter(([text]) => present.has(text)));
      for (const [text, found] of retested) merged.set(text, found);
      mutantsByFile.set(file, merged);
    }
  }
  const scores = new Map();
  for (const [file, byText] of [...mutantsByFile].sort(([a], [b]) => a.localeCompare(b))) {
    const counts = { detected: 0, undetected: 0, other: 0, survivors: [] };
    for (const mutant of [...byText.values()].flat()) {
      if (DETECTED.has(mutant.status)) counts.detected++;
      else if (UNDETECTED.has(mutant.status)) {
        counts.undetected++;
        counts.survivors.push(`${file}:${mutant.location.start.line} ${mutant.mutatorName}`
          + (mutant.replacement === undefined ? '' : ` → ${oneLine(mutant.replacement)}`));
      } else counts.other++;
    }
    const valid = counts.detected + counts.undetected;
    // A file with no mutant that can be tested (types only) has nothing to miss.
    counts.score = valid === 0 ? 100 : (100 * counts.detected) / valid;
    scores.set(file, counts);
  }
  return scores;
}

/** The files whose score is under `floor`, in path order. */
export function belowFloor(scores, floor) {
  return [...scores].filter(([, counts]) => counts.score < floor).map(([file]) => file);
}

function oneLine(text) {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > 60 ? `${flat.slice(0, 57)}...` : flat;
}

/** stryker.config.mjs's `thresholds.break`, or its `thresholds.high` while break is unset. */
async function configuredFloor() {
  const { default: config } = await import(new URL('../stryker.config.mjs', import.meta.url).href);
  return config.thresholds.break ?? config.thresholds.high;
}

function parseArgs(argv, floor) {
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--floor') {
      floor = Number(argv[++i]);
      if (!Number.isFinite(floor) || floor < 0 || floor > 100) {
        throw new RangeError(`--floor must be a number from 0 to 100, got ${argv[i]}`);
      }
    } else files.push(argv[i]);
  }
  return { floor, files: files.length > 0 ? files : [DEFAULT_REPORT] };
}

async function main() {
  const { floor, files } = parseArgs(process.argv.slice(2), await configuredFloor());
  const scores = scoresOf(files.map((file) => JSON.parse(readFileSync(file, 'utf8'))));
  const width = Math.max(...[...scores.keys()].map((file) => file.length));
  for (const [file, counts] of scores) {
    const mark = counts.score < floor ? '  < floor' : '';
    console.log(`${file.padEnd(width)}  ${counts.score.toFixed(2).padStart(6)} %  `
      + `${counts.detected} detected, ${counts.undetected} undetected${mark}`);
  }
  const below = belowFloor(scores, floor);
  if (below.length === 0) {
    console.log(`Every file of ${scores.size} scores ${floor} % or more.`);
    return;
  }
  console.error(`\n${below.length} file(s) under ${floor} %; their undetected mutants:`);
  for (const file of below) for (const line of scores.get(file).survivors) console.error(`  ${line}`);
  process.exitCode = 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
