// Prometheus metrics of the front at GET /metrics, on a registry of its own: the engine
// sessions' state read at scrape time (busy, free, waiting, released after a client left,
// retired), so a jam shows as busy sessions with nobody connected.
import { Gauge, Registry } from "prom-client";
import type { NamedSessions, SessionPool } from "./sessions.ts";

export function createMetrics(pool: SessionPool, sessions: NamedSessions): Registry {
  const registry = new Registry();
  const poolGauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name: `chdb_server_${name}`,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  poolGauge("pool_sessions", "Pooled engine sessions (poolSize)", () => pool.state().size);
  poolGauge("pool_sessions_busy", "Pooled engine sessions running a request", () => pool.busy);
  poolGauge(
    "pool_sessions_free",
    "Pooled engine sessions free for the next request",
    () => pool.state().free,
  );
  poolGauge(
    "pool_requests_waiting",
    "Session-less requests queued for a pooled engine session",
    () => pool.state().waiting,
  );
  poolGauge(
    "pool_released_after_client_left_total",
    "Pooled sessions given back after their client had left (the query ended or was killed)",
    () => pool.state().releasedAfterClientLeft,
  );
  poolGauge(
    "pool_left_while_waiting_total",
    "Queued requests dropped because their client left before a session was free",
    () => pool.state().leftWhileWaiting,
  );
  poolGauge(
    "pool_sessions_retired_total",
    "Pooled sessions replaced because their query still ran abandonedQueryHoldMs after the client left",
    () => pool.state().retired,
  );
  poolGauge("named_sessions", "Open session_id sessions", () => sessions.state().open);
  poolGauge(
    "named_sessions_busy",
    "session_id sessions running a request",
    () => sessions.state().busy,
  );
  return registry;
}
