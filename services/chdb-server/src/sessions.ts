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
}

/** A refusal the front words as a ClickHouse error (code and text). */
export type Failure = { failure: { code: number; text: string } };

export class SessionPool {
  readonly #free: Lease[] = [];
  readonly #waiting: Array<{ resolve: (lease: Lease) => void; timer: NodeJS.Timeout }> = [];
  readonly #all: Lease[] = [];
  readonly #maxQueued: number;
  readonly #queueTimeoutMs: number;

  constructor(dataDir: string, size: number, maxQueued: number, queueTimeoutMs: number) {
    for (let i = 0; i < size; i++) {
      const lease: Lease = {
        engine: new EngineSession(dataDir),
        kind: "pooled",
        resetStatements: [],
      };
      this.#all.push(lease);
      this.#free.push(lease);
    }
    this.#maxQueued = maxQueued;
    this.#queueTimeoutMs = queueTimeoutMs;
  }

  get busy(): number {
    return this.#all.length - this.#free.length;
  }

  acquire(): Promise<Lease | Failure> {
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
      const waiter = {
        resolve,
        timer: setTimeout(() => {
          this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
          resolve({
            failure: {
              code: FrontErrorCode.TOO_MANY_SIMULTANEOUS_QUERIES,
              text: `No engine session became free within ${this.#queueTimeoutMs} ms (queueTimeoutMs)`,
            },
          });
        }, this.#queueTimeoutMs),
      };
      this.#waiting.push(waiter);
    });
  }

  release(lease: Lease): void {
    const waiter = this.#waiting.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.resolve(lease);
    } else {
      this.#free.push(lease);
    }
  }

  /** Closes every Session; callers make sure no request still holds one. */
  close(): void {
    for (const waiter of this.#waiting.splice(0)) clearTimeout(waiter.timer);
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
        lease: { engine: new EngineSession(this.#dataDir), kind: "named", resetStatements: [] },
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

  close(): void {
    for (const session of this.#sessions.values()) {
      clearTimeout(session.expiry);
      session.lease.engine.close();
    }
    this.#sessions.clear();
  }
}

export function isFailure(value: Lease | Failure): value is Failure {
  return "failure" in value;
}
