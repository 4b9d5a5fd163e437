export { Emitter, reportListenerError } from './shared/emitter.js';
export type { Listener, Unsubscribe } from './shared/emitter.js';
