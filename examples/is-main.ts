/**
 * A helper of the examples, not part of bulwark: tells whether a module is the file Node was
 * asked to run, so an example can hold a runnable `main` that stays quiet when imported.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** True when `moduleUrl` (pass `import.meta.url`) is the entry point of this process. */
export function isMain(moduleUrl: string): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return pathToFileURL(realpathSync(entry)).href === moduleUrl;
  } catch {
    return false;
  }
}
