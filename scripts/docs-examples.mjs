// Type-checks every `@example` of the JSDoc in src/: each fenced code block of an `@example`
// tag is compiled against the public API, as a user's file importing 'bulwark' and its
// subpaths would be. `node scripts/docs-examples.mjs` prints each broken example with the
// file and line of src/ it is written on, and exits 1 if there is one.
//
// An example may write its imports; the names it leaves out are imported from the public
// entry of the file it documents ('bulwark', and 'bulwark/redis' for a file of src/redis/ …).
// The values and types it assumes (`log`, `order`, `Invoice` …) are exported by
// test/fixtures/example-prelude.d.ts and imported the same way. Each example is a module of its
// own, so it may `await` at its top level and `export`.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The subpaths of package.json `exports`, each a folder of src/ with an index.ts. */
export const SUBPATHS = ['health', 'prometheus', 'otel', 'chaos', 'fetch', 'redis'];
export const PRELUDE = 'test/fixtures/example-prelude.d.ts';
/** Where the examples are compiled from (in memory: nothing is written there). */
const EXAMPLES_DIR = 'examples/__jsdoc__';

/** Every .ts file under `dir`, relative to `root`, sorted. */
export function sourceFiles(root = ROOT, dir = 'src') {
  const files = [];
  const walk = (folder) => {
    for (const entry of readdirSync(join(root, folder), { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) files.push(path);
    }
  };
  walk(dir);
  return files.sort();
}

/**
 * The fenced code blocks of the `@example` tags of the JSDoc comments in `text`: for each, its
 * lines (the comment's ` * ` taken off) and the 1-based line of `text` its first line is on.
 */
export function extractExamples(text) {
  const examples = [];
  const lines = text.split('\n');
  let inComment = false;
  let inExample = false;
  let fence; // the lines of the open code block, and where it starts
  for (let index = 0; index < lines.length; index++) {
    const raw = lines[index];
    if (!inComment) {
      if (/^\s*\/\*\*/.test(raw) && !/\*\/\s*$/.test(raw.replace(/^\s*\/\*\*/, ''))) inComment = true;
      continue;
    }
    if (/^\s*\*\/\s*$/.test(raw) || /\*\/\s*$/.test(raw)) {
      if (fence) examples.push({ line: fence.line, code: fence.code, unclosed: true });
      inComment = inExample = false;
      fence = undefined;
      continue;
    }
    const line = raw.replace(/^\s*\* ?/, '');
    if (fence) {
      if (/^\s*```\s*$/.test(line)) {
        examples.push({ line: fence.line, code: fence.code });
        fence = undefined;
      } else fence.code.push(line);
      continue;
    }
    const tag = /^\s*@(\w+)/.exec(line);
    if (tag) inExample = tag[1] === 'example';
    if (inExample && /^\s*```\s*(ts|typescript|js|javascript)?\s*$/.test(line)) fence = { line: index + 2, code: [] };
  }
  return examples;
}

/** The names an entry exports, runtime values and types apart (`export { … }` and `export type { … }` lists). */
function exportsOf(text) {
  const values = [];
  const types = [];
  for (const match of text.matchAll(/export\s+(type\s+)?\{([^}]*)\}/g)) {
    for (const item of match[2].split(',')) {
      const name = item.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()?.trim();
      if (!name) continue;
      (match[1] || /^\s*type\s/.test(item) ? types : values).push(name);
    }
  }
  return { values, types };
}

/** The names the prelude declares (`export declare const`, `export interface` …), values and types apart. */
function preludeExports(text) {
  const values = [];
  const types = [];
  const source = ts.createSourceFile('prelude.d.ts', text, ts.ScriptTarget.Latest, true);
  for (const statement of source.statements) {
    if (!statement.modifiers?.some((modifier) => modifier.kind === ts.SyntaxKind.ExportKeyword)) continue;
    if (ts.isVariableStatement(statement)) statement.declarationList.declarations.forEach((declaration) => values.push(declaration.name.getText(source)));
    else if (ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement)) types.push(statement.name.text);
    else if (statement.name) values.push(statement.name.text);
  }
  return { values, types };
}

/** Where an example in `file` takes the names it leaves out from: its public entries, then the prelude. */
function entriesFor(file, prelude) {
  const area = relative('src', file).split(/[\\/]/)[0];
  return SUBPATHS.includes(area) ? ['bulwark', `bulwark/${area}`, prelude] : ['bulwark', prelude];
}

/** The names an example declares at its top level, which it may give to an export too. */
function declaredBy(code) {
  const names = new Set();
  const source = ts.createSourceFile('example.ts', code, ts.ScriptTarget.Latest, false);
  const bind = (name) => {
    if (ts.isIdentifier(name)) names.add(name.text);
    else for (const element of name.elements) if (!ts.isOmittedExpression(element)) bind(element.name);
  };
  for (const statement of source.statements) {
    if (ts.isVariableStatement(statement)) statement.declarationList.declarations.forEach((declaration) => bind(declaration.name));
    else if (statement.name && ts.isIdentifier(statement.name)) names.add(statement.name.text);
    else if (ts.isImportDeclaration(statement) && statement.importClause) {
      const { name, namedBindings } = statement.importClause;
      if (name) names.add(name.text);
      if (namedBindings && ts.isNamespaceImport(namedBindings)) names.add(namedBindings.name.text);
      if (namedBindings && ts.isNamedImports(namedBindings)) namedBindings.elements.forEach((element) => names.add(element.name.text));
    }
  }
  return names;
}

/**
 * The module a user would write for one example: its own imports first, then those of the
 * names it leaves out, then its code; with the line of the source each of its lines is on.
 */
function moduleFor(example, entries, exportsByEntry) {
  const header = [];
  const lineOf = [];
  const body = [];
  example.code.forEach((line, offset) => {
    if (/^\s*import\s/.test(line)) {
      header.push(line);
      lineOf.push(example.line + offset);
      body.push('');
    } else body.push(line);
  });
  const taken = declaredBy(example.code.join('\n'));
  for (const entry of entries) {
    const { values, types } = exportsByEntry.get(entry);
    for (const [names, keyword] of [[values, 'import'], [types, 'import type']]) {
      const wanted = names.filter((name) => !taken.has(name));
      wanted.forEach((name) => taken.add(name));
      if (wanted.length === 0) continue;
      header.push(`${keyword} { ${wanted.join(', ')} } from '${entry}';`);
      lineOf.push(example.line);
    }
  }
  body.forEach((_, offset) => lineOf.push(example.line + offset));
  // A module even when it imports and exports nothing, so its names stay its own.
  const text = [...header, ...body, 'export {};', ''].join('\n');
  lineOf.push(example.line + body.length);
  return { text, lineOf };
}

/**
 * Compiles every example of `sources` ({ file, text }, `file` relative to `root`) and returns
 * the problems found, each { file, line, message }, `line` the line of `file` it is on.
 */
export function checkExamples({ root = ROOT, sources, prelude = PRELUDE } = {}) {
  sources ??= sourceFiles(root).map((file) => ({ file, text: readFileSync(join(root, file), 'utf8') }));
  const preludeSpecifier = relative(EXAMPLES_DIR, prelude).split('\\').join('/').replace(/\.d\.ts$|\.ts$/, '.js');
  const exportsByEntry = new Map([
    ['bulwark', exportsOf(readFileSync(join(root, 'src/index.ts'), 'utf8'))],
    ...SUBPATHS.map((subpath) => [`bulwark/${subpath}`, exportsOf(readFileSync(join(root, `src/${subpath}/index.ts`), 'utf8'))]),
    [preludeSpecifier, preludeExports(readFileSync(join(root, prelude), 'utf8'))],
  ]);
  const problems = [];
  const virtual = new Map();
  const origins = new Map();
  for (const { file, text } of sources) {
    extractExamples(text).forEach((example, index) => {
      if (example.unclosed) problems.push({ file, line: example.line, message: 'the code block of this @example is not closed (```)' });
      const { text: code, lineOf } = moduleFor(example, entriesFor(file, preludeSpecifier), exportsByEntry);
      const path = resolve(root, EXAMPLES_DIR, `${file.replace(/[\\/.]/g, '_')}_${index}.ts`);
      virtual.set(path, code);
      origins.set(path, { file, lineOf });
    });
  }
  if (virtual.size === 0) return { count: 0, problems };

  const configPath = join(root, 'examples/tsconfig.json');
  const config = ts.readConfigFile(configPath, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, join(root, 'examples'), undefined, configPath);
  // Examples are fragments: a value computed for show, an import the example needs no more.
  const options = { ...parsed.options, noEmit: true, noUnusedLocals: false, noUnusedParameters: false };
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (path) => virtual.has(resolve(path)) || fileExists.call(host, path);
  host.readFile = (path) => virtual.get(resolve(path)) ?? readFile.call(host, path);
  host.getSourceFile = (path, language, ...rest) => {
    const code = virtual.get(resolve(path));
    return code === undefined ? getSourceFile.call(host, path, language, ...rest) : ts.createSourceFile(path, code, language, true);
  };
  const program = ts.createProgram({ rootNames: [...virtual.keys()], options, host });
  const diagnostics = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics(), ...[...virtual.keys()].flatMap((path) => {
    const source = program.getSourceFile(path);
    return [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
  })];
  for (const diagnostic of diagnostics) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    const origin = diagnostic.file && origins.get(resolve(diagnostic.file.fileName));
    if (!origin) {
      problems.push({ file: diagnostic.file ? relative(root, diagnostic.file.fileName) : '(compiler)', line: 0, message });
      continue;
    }
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
    problems.push({ file: origin.file, line: origin.lineOf[line] ?? 0, message: `TS${diagnostic.code}: ${message}` });
  }
  return { count: virtual.size, problems };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  const { count, problems } = checkExamples();
  for (const { file, line, message } of problems) console.error(`${file}:${line}: ${message}`);
  console.log(`${count} @example code blocks checked in ${Date.now() - started} ms: ${problems.length} problem(s)`);
  process.exitCode = problems.length ? 1 : 0;
}
