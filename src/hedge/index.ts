export { HedgePolicy, hedge } from './policy.js';
export { HedgeLostError } from './race.js';
export type { HedgeBudget, HedgeDelay, HedgeDelayInfo, HedgeEvents, HedgeOptions } from './types.js';
