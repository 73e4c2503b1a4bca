// Start-up steps that outlast a service restarting under them: a consumer started while Redis or a
// Kafka broker restarts (a deploy, a crash, the chaos run) tries the step again for a bounded time
// instead of exiting. Only failures that pass with time are waited out (a refused connection, a
// retryable Redis failure); any other error, or one that lasts past the limit, fails the start.

/** How long a starting consumer waits for Redis to answer (a Redis restart takes seconds). */
export const STARTUP_REDIS_WAIT_MS = 60_000;
/**
 * How long a starting consumer waits for Kafka to accept its connections. A killed broker stays
 * in the cluster's metadata until its controller session times out (about 10 s), and a client
 * sent to it meanwhile is refused; a restart takes 10 to 30 s.
 */
export const STARTUP_KAFKA_WAIT_MS = 60_000;
/** Pause between two tries of a start-up step. */
export const STARTUP_RETRY_INTERVAL_MS = 1_000;

export interface StartupClock {
  nowMs(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: StartupClock = {
  nowMs: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface StartupStep {
  /** What the step does, for the log (`partition count of cf.usage`). */
  name: string;
  /** Longest the step is tried again for, counted from its first try. */
  waitMs: number;
  /** Where the failure is (a broker, a Redis) when it may pass with time; null otherwise. */
  passing(error: unknown): string | null;
  /** Told of each failure about to be tried again. */
  onRetry(retry: { step: string; attempt: number; where: string; error: unknown }): void;
}

/**
 * `run`, tried again every STARTUP_RETRY_INTERVAL_MS while it fails with an error that may pass
 * (`step.passing`), for `step.waitMs`; then, or on any other error, that error is thrown.
 */
export async function retryingWhileStarting<T>(
  run: () => Promise<T>,
  step: StartupStep,
  clock: StartupClock = realClock,
): Promise<T> {
  const startedMs = clock.nowMs();
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      const where = step.passing(error);
      if (where === null || clock.nowMs() - startedMs >= step.waitMs) throw error;
      step.onRetry({ step: step.name, attempt, where, error });
      await clock.sleep(STARTUP_RETRY_INTERVAL_MS);
    }
  }
}

/** How deep the causes of an error are searched. */
const MAX_CAUSE_DEPTH = 8;

/**
 * The broker (`host:port`, or `unknown broker`) a Kafka connection failed on, found in `error` or
 * its causes; null when the error is not a failed connection. kafkajs throws its
 * KafkaJSConnectionError bare when a broker the metadata names refuses (it leaves the retry to
 * its caller), or wrapped in KafkaJSNumberOfRetriesExceeded; @platformatic/kafka a NetworkError,
 * alone or among the errors of a MultipleErrors.
 */
export function kafkaConnectionFailure(error: unknown, depth = 0): string | null {
  if (typeof error !== "object" || error === null || depth > MAX_CAUSE_DEPTH) return null;
  const e = error as {
    name?: unknown;
    code?: unknown;
    canRetry?: unknown;
    broker?: unknown;
    cause?: unknown;
    errors?: unknown;
  };
  if (e.name === "KafkaJSConnectionError" || e.name === "KafkaJSConnectionClosedError") {
    return typeof e.broker === "string" ? e.broker : "unknown broker";
  }
  if (e.code === "PLT_KFK_NETWORK" && e.canRetry !== false) {
    const socket = e.cause as { address?: unknown; port?: unknown } | undefined;
    return typeof socket?.address === "string" && typeof socket.port === "number"
      ? `${socket.address}:${socket.port}`
      : "unknown broker";
  }
  if (Array.isArray(e.errors)) {
    for (const inner of e.errors) {
      const found = kafkaConnectionFailure(inner, depth + 1);
      if (found !== null) return found;
    }
  }
  return kafkaConnectionFailure(e.cause, depth + 1);
}

/** A retryable failure (a MemberStoreError saying so): Redis, named by the failure's message. */
export function redisFailure(error: unknown): string | null {
  const e = error as { retryable?: unknown; message?: unknown } | null;
  if (e?.retryable !== true) return null;
  return typeof e.message === "string" ? e.message : "redis";
}
