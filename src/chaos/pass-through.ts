/**
 * A chaos policy that can never inject (`rate: 0`, `enabled: false`) steps aside.
 */
import type { LayerPolicy } from 'bulwark';

/**
 * Makes `policy` a pass-through that costs nothing: the engine reads a policy's hooks when it
 * is first run or composed (docs/extending.md), and a policy with no hook is entered without
 * a promise of its own. Chaos policies are built with their rate and `enabled` fixed, so one
 * switched off (in production, say) can never need its hook (`run`, or a latency's `enter`): it
 * is shadowed by `undefined`.
 */
export function passThrough(policy: LayerPolicy<void, unknown>, hook: 'enter' | 'run'): void {
  // Stryker disable next-line ObjectLiteral: a descriptor without a value defines the property as undefined all the same.
  Object.defineProperty(policy, hook, { value: undefined });
}
