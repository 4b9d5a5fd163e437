/**
 * Names a value in an error message without printing an object's contents. One function for
 * the core and the subpath entries, so every option error reads the same; it imports nothing,
 * so the subpaths share it without taking any of the core's code.
 */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null) return 'an object';
  return String(value);
}

/** An error as two strings, safe for every logger and for JSON (an Error object serializes to `{}`). */
export function describeError(error: unknown): { readonly name: string; readonly message: string } {
  if (error instanceof Error) return { name: error.name, message: error.message };
  try {
    return { name: typeof error, message: String(error) };
  } catch {
    return { name: typeof error, message: '(unprintable)' };
  }
}
