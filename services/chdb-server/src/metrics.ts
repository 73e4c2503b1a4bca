// Prometheus metrics of the front at GET /metrics, on a registry of its own: the engine
// sessions' state read at scrape time (busy, free, waiting, released after a client left,
// retired), so a jam shows as busy sessions with nobody connected.
import { Gauge, Registry } from "prom-client";
import type { NamedSessions, SessionPool } from "./sessions.ts";

/** Each gauge's name after `chdb_server_`, and its help. */
const GAUGES = {
  pool_sessions: "Pooled engine sessions (poolSize)",
  pool_sessions_busy: "Pooled engine sessions running a request",
  pool_sessions_free: "Pooled engine sessions free for the next request",
  pool_requests_waiting: "Session-less requests queued for a pooled engine session",
  pool_released_after_client_left_total:
    "Pooled sessions given back after their client had left (the query ended or was killed)",
  pool_left_while_waiting_total:
    "Queued requests dropped because their client left before a session was free",
  pool_sessions_retired_total:
    "Pooled sessions replaced because their query still ran abandonedQueryHoldMs after the client left",
  named_sessions: "Open session_id sessions",
  named_sessions_busy: "session_id sessions running a request",
};

export function createMetrics(pool: SessionPool, sessions: NamedSessions): Registry {
  const registry = new Registry();
  const read: Record<keyof typeof GAUGES, () => number> = {
    pool_sessions: () => pool.state().size,
    pool_sessions_busy: () => pool.busy,
    pool_sessions_free: () => pool.state().free,
    pool_requests_waiting: () => pool.state().waiting,
    pool_released_after_client_left_total: () => pool.state().releasedAfterClientLeft,
    pool_left_while_waiting_total: () => pool.state().leftWhileWaiting,
    pool_sessions_retired_total: () => pool.state().retired,
    named_sessions: () => sessions.state().open,
    named_sessions_busy: () => sessions.state().busy,
  };
  for (const [name, help] of Object.entries(GAUGES) as [keyof typeof GAUGES, string][]) {
    new Gauge({
      name: `chdb_server_${name}`,
      help,
      registers: [registry],
      collect() {
        this.set(read[name]());
      },
    });
  }
  return registry;
}
