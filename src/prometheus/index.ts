/**
 * `bulwark/prometheus`: a `MetricsRegistry` in Prometheus's text exposition format, and
 * `/metrics` handlers for `node:http`/Express/Connect and for `fetch`-style servers. It takes
 * only types from the core and needs no Prometheus client.
 *
 * @module bulwark/prometheus
 */
export { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from './render.js';
export type { MetricsSource, PrometheusOptions } from './render.js';
export { prometheusFetchHandler, prometheusHandler } from './handlers.js';
export type { FetchMetricsHandler, NodeMetricsHandler, NodeRequestLike, NodeResponseLike, PrometheusHandlerOptions } from './handlers.js';
