/**
 * A helper of the examples, not part of bulwark: runs an example's `main` only when its module
 * is the file Node was asked to run, so the example stays quiet when a test imports it.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** True when `moduleUrl` (pass `import.meta.url`) is the entry point of this process. */
function isMain(moduleUrl: string): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return pathToFileURL(realpathSync(entry)).href === moduleUrl;
  } catch {
    return false;
  }
}

/**
 * Runs `main` when `moduleUrl` (pass `import.meta.url`) is the entry point of this process. A
 * rejection is printed and sets the exit code rather than exiting, so servers and timers still
 * closing get to finish.
 */
export function runMain(moduleUrl: string, main: () => Promise<void>): void {
  if (!isMain(moduleUrl)) return;
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
