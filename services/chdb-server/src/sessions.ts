// Who runs a request: a pool of chdb Sessions for session-less requests (queries run in
// parallel up to the pool size) and one Session per ClickHouse `session_id`, with its idle
// timeout, lock and `session_check`, like the server's named sessions.
import { EngineSession } from "./engine.ts";
import { FrontErrorCode } from "./errors.ts";

export interface Lease {
  engine: EngineSession;
  /** Pooled: reset to `default` and no settings before each request. Named: keeps USE/SET between requests. */
  kind: "pooled" | "named";
  /** Statements that undo the previous request's per-query settings; run before the next one. */
  resetStatements: string[];
  /**
   * The request bound query parameters (`SET param_x`), which the engine cannot unset: a
   * pooled lease then gets a fresh Session (about 1 ms) before its next request, so a query
   * that names a parameter it did not send fails with code 456 as on a server.
   */
  carriesParams: boolean;
}

/** A refusal the front words as a ClickHouse error (code and text). */
export type Failure = { failure: { code: number; text: string } };

/** What the pool holds and has done, for /metrics and tests. */
export interface PoolState {
  size: number;
  busy: number;
  free: number;
  /** requests queued for a Session */
  waiting: number;
  /** Sessions given back after their client had left (the query stopped or was killed) */
  releasedAfterClientLeft: number;
  /** queued requests dropped because their client left before a Session was free */
  leftWhileWaiting: number;
  /** Sessions replaced because their query still ran abandonedQueryHoldMs after the client left */
  retired: number;
}

interface Waiter {
  resolve: (lease: Lease | Failure) => void;
  timer: NodeJS.Timeout;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

export class SessionPool {
  readonly #free: Lease[] = [];
  readonly #waiting: Waiter[] = [];
  readonly #all: Lease[] = [];
  readonly #dataDir: string;
  readonly #maxQueued: number;
  readonly #queueTimeoutMs: number;
  #releasedAfterClientLeft = 0;
  #leftWhileWaiting = 0;
  #retired = 0;

  constructor(dataDir: string, size: number, maxQueued: number, queueTimeoutMs: number) {
    this.#dataDir = dataDir;
    for (let i = 0; i < size; i++) {
      const lease = this.#open();
      this.#free.push(lease);
    }
    this.#maxQueued = maxQueued;
    this.#queueTimeoutMs = queueTimeoutMs;
  }

  #open(): Lease {
    const lease: Lease = {
      engine: new EngineSession(this.#dataDir),
      kind: "pooled",
      resetStatements: [],
      carriesParams: false,
    };
    this.#all.push(lease);
    return lease;
  }

  get busy(): number {
    return this.#all.length - this.#free.length;
  }

  state(): PoolState {
    return {
      size: this.#all.length,
      busy: this.busy,
      free: this.#free.length,
      waiting: this.#waiting.length,
      releasedAfterClientLeft: this.#releasedAfterClientLeft,
      leftWhileWaiting: this.#leftWhileWaiting,
      retired: this.#retired,
    };
  }

  /**
   * A free Session, or a place in the queue. `left` is the client's departure: a request
   * whose client left while queued leaves the queue and never reaches the engine.
   */
  acquire(left?: AbortSignal): Promise<Lease | Failure> {
    if (left?.aborted) return Promise.resolve(clientLeft());
    const lease = this.#free.pop();
    if (lease) return Promise.resolve(lease);
    if (this.#waiting.length >= this.#maxQueued) {
      return Promise.resolve({
        failure: {
          code: FrontErrorCode.TOO_MANY_SIMULTANEOUS_QUERIES,
          text: `Too many simultaneous queries: ${this.#all.length} running and ${this.#waiting.length} queued (maxQueuedRequests)`,
        },
      });
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        resolve,
        signal: left,
        timer: setTimeout(() => {
          this.#dequeue(waiter);
          resolve({
            failure: {
              code: FrontErrorCode.TOO_MANY_SIMULTANEOUS_QUERIES,
              text: `No engine session became free within ${this.#queueTimeoutMs} ms (queueTimeoutMs)`,
            },
          });
        }, this.#queueTimeoutMs),
        onAbort: () => {
          this.#dequeue(waiter);
          this.#leftWhileWaiting++;
          resolve(clientLeft());
        },
      };
      left?.addEventListener("abort", waiter.onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  #dequeue(waiter: Waiter): void {
    const at = this.#waiting.indexOf(waiter);
    if (at >= 0) this.#waiting.splice(at, 1);
    clearTimeout(waiter.timer);
    waiter.signal?.removeEventListener("abort", waiter.onAbort);
  }

  /** Gives a Session back; `afterClientLeft` counts the ones whose client had gone. */
  release(lease: Lease, afterClientLeft = false): void {
    if (afterClientLeft) this.#releasedAfterClientLeft++;
    if (lease.carriesParams) {
      lease.engine.close();
      lease.engine = new EngineSession(this.#dataDir);
      lease.resetStatements = [];
      lease.carriesParams = false;
    }
    this.#handOver(lease);
  }

  #handOver(lease: Lease): void {
    const waiter = this.#waiting.shift();
    if (waiter) {
      this.#dequeue(waiter);
      waiter.resolve(lease);
    } else {
      this.#free.push(lease);
    }
  }

  /**
   * Replaces a Session whose abandoned query would not end: a fresh Session takes its place
   * at once; chdb closes the old one when its native call returns.
   */
  retire(lease: Lease): void {
    const at = this.#all.indexOf(lease);
    if (at < 0) return;
    this.#all.splice(at, 1);
    this.#retired++;
    lease.engine.close();
    this.#handOver(this.#open());
  }

  /** Closes every Session; callers make sure no request still holds one. */
  close(): void {
    for (const waiter of this.#waiting.splice(0)) this.#dequeue(waiter);
    for (const lease of this.#all) lease.engine.close();
    this.#all.length = 0;
    this.#free.length = 0;
  }
}

interface NamedSession {
  lease: Lease;
  locked: boolean;
  timeoutSeconds: number;
  expiry: NodeJS.Timeout | undefined;
}

export class NamedSessions {
  readonly #sessions = new Map<string, NamedSession>();
  readonly #dataDir: string;
  readonly #max: number;
  readonly #defaultTimeoutSeconds: number;
  readonly #maxTimeoutSeconds: number;

  constructor(
    dataDir: string,
    max: number,
    defaultTimeoutSeconds: number,
    maxTimeoutSeconds: number,
  ) {
    this.#dataDir = dataDir;
    this.#max = max;
    this.#defaultTimeoutSeconds = defaultTimeoutSeconds;
    this.#maxTimeoutSeconds = maxTimeoutSeconds;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Takes the session's lock, creating the session unless `check` asks for an existing one. */
  acquire(id: string, check: boolean, timeoutSeconds: number | undefined): Lease | Failure {
    if (
      timeoutSeconds !== undefined &&
      !(Number.isInteger(timeoutSeconds) && timeoutSeconds >= 0)
    ) {
      return { failure: { code: FrontErrorCode.BAD_ARGUMENTS, text: "Invalid session timeout" } };
    }
    if (timeoutSeconds !== undefined && timeoutSeconds > this.#maxTimeoutSeconds) {
      return {
        failure: {
          code: FrontErrorCode.BAD_ARGUMENTS,
          text: `Session timeout ${timeoutSeconds} is larger than max_session_timeout: ${this.#maxTimeoutSeconds}. Maximum session timeout could be modified in configuration file.`,
        },
      };
    }
    let session = this.#sessions.get(id);
    if (!session) {
      if (check)
        return {
          failure: { code: FrontErrorCode.SESSION_NOT_FOUND, text: `Session ${id} not found` },
        };
      if (this.#sessions.size >= this.#max) {
        return {
          failure: {
            code: FrontErrorCode.TOO_MANY_SIMULTANEOUS_QUERIES,
            text: `Too many sessions: ${this.#sessions.size} open (maxSessions)`,
          },
        };
      }
      session = {
        lease: {
          engine: new EngineSession(this.#dataDir),
          kind: "named",
          resetStatements: [],
          carriesParams: false,
        },
        locked: false,
        timeoutSeconds: this.#defaultTimeoutSeconds,
        expiry: undefined,
      };
      this.#sessions.set(id, session);
    }
    if (session.locked) {
      return {
        failure: {
          code: FrontErrorCode.SESSION_IS_LOCKED,
          text: `Session ${id} is locked by a concurrent client`,
        },
      };
    }
    session.locked = true;
    clearTimeout(session.expiry);
    if (timeoutSeconds !== undefined) session.timeoutSeconds = timeoutSeconds;
    return session.lease;
  }

  /** Unlocks and restarts the idle timer; an expired session's Session is closed. */
  release(id: string): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    session.locked = false;
    session.expiry = setTimeout(() => {
      if (session.locked) return;
      this.#sessions.delete(id);
      session.lease.engine.close();
    }, session.timeoutSeconds * 1000);
    session.expiry.unref();
  }

  /** Sessions open, and how many of them run a request now. */
  state(): { open: number; busy: number } {
    let busy = 0;
    for (const session of this.#sessions.values()) if (session.locked) busy++;
    return { open: this.#sessions.size, busy };
  }

  /**
   * Forgets a session whose abandoned query would not end (its temporary tables and SETs go
   * with it); chdb closes its Session when the native call returns. The id may start afresh.
   */
  retire(id: string): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    clearTimeout(session.expiry);
    this.#sessions.delete(id);
    session.lease.engine.close();
  }

  close(): void {
    for (const session of this.#sessions.values()) {
      clearTimeout(session.expiry);
      session.lease.engine.close();
    }
    this.#sessions.clear();
  }
}

/** A queued request's answer when its client left: nobody reads it, the handler only stops. */
function clientLeft(): Failure {
  return {
    failure: { code: FrontErrorCode.QUERY_WAS_CANCELLED, text: "The client closed the connection" },
  };
}

export function isFailure(value: Lease | Failure): value is Failure {
  return "failure" in value;
}
