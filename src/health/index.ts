/**
 * `bulwark/health`: liveness, readiness and dependency checks for any server, with circuit
 * breakers reporting in. It imports nothing but types from the core.
 *
 * @module bulwark/health
 */
export { HealthMonitor } from './monitor.js';
export type {
  CheckOptions,
  CheckResult,
  CheckStatus,
  CircuitBreakerCheckOptions,
  CircuitBreakerLike,
  HealthCheck,
  HealthCheckContext,
  HealthMonitorOptions,
  HealthPhase,
  HealthReport,
  HealthStatus,
  LivenessReport,
  NotReadyReason,
  ReadinessReport,
} from './types.js';

export { nodeHealthHandler } from './node-handler.js';
export type { NodeHealthHandler, NodeHealthRequest, NodeHealthResponse, NodeNextFunction } from './node-handler.js';

export { fetchHealthHandler } from './fetch-handler.js';
export type { FetchHealthHandler } from './fetch-handler.js';

export type { HealthEndpoint, HealthHandlerOptions, HealthPaths } from './format.js';
