/**
 * Whether Redis answers a shared policy of this replica, and which call asks it again while it
 * does not: one per `probeInterval`, whose answer brings sharing back. The rate limiter and the
 * bulkhead keep one each (the breaker probes on a timer of its own).
 */
import type { RedisStoreError } from './store.js';

/** The events a store's ups and downs are told by (a subset of each shared policy's). */
interface StoreSignals {
  has(event: 'storeError'): boolean;
  emit(event: 'storeError', payload: { readonly error: RedisStoreError }): void;
  emit(event: 'storeDown', payload: { readonly error: RedisStoreError }): void;
  emit(event: 'storeUp', payload: Record<string, never>): void;
}

export class StoreHealth {
  /** False from the first failure until Redis answers again. */
  up = true;
  /** When Redis was last found down, or last asked while down (this replica's clock, ms). */
  lastProbe = 0;
  /** True while the probe's answer is awaited: other calls decide locally meanwhile. */
  // Stryker disable next-line BooleanLiteral: read only while Redis is down, and the only way down is failed(), which sets it to false first
  private probing = false;
  private readonly probeInterval: number;
  private readonly signals: StoreSignals;

  constructor(probeInterval: number, signals: StoreSignals) {
    this.probeInterval = probeInterval;
    this.signals = signals;
  }

  /**
   * Whether a call starting at `now` asks Redis: always while it answers; while it is down, one
   * call per `probeInterval` (that call becomes the probe), the others decide locally.
   */
  mayAsk(now: number): boolean {
    if (this.up) return true;
    if (this.probing || now - this.lastProbe < this.probeInterval) return false;
    this.probing = true;
    this.lastProbe = now;
    return true;
  }

  /** Redis answered: `storeUp` if it was down. */
  answered(): void {
    // Stryker disable next-line BooleanLiteral: after this call Redis is up, and while it is up probing is not read; failed() resets it on the way down
    this.probing = false;
    if (this.up) return;
    this.up = true;
    this.signals.emit('storeUp', {});
  }

  /** A call to Redis failed or timed out: `storeError`, and `storeDown` if it was up. */
  failed(error: RedisStoreError): void {
    this.probing = false;
    this.lastProbe = Date.now();
    // Stryker disable next-line ConditionalExpression: the emitter returns at once when nobody listens; the guard only spares building the payload
    if (this.signals.has('storeError')) this.signals.emit('storeError', { error });
    if (!this.up) return;
    this.up = false;
    this.signals.emit('storeDown', { error });
  }
}
