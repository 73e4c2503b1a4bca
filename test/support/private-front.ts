// A ClickHouse front (services/chdb-server) of the test file's own, in its process, on a data
// directory of its own: its /metrics (the engine sessions' pool) are the file's alone. For the
// tests of the front under abandoned and aborted requests; the other files use the stack's.
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChdbServer, startChdbServer } from "@creditflow/chdb-server";
import { pino } from "pino";
import { afterAll, beforeAll } from "vitest";

export interface PrivateFront {
  /** http://127.0.0.1:port, set in the beforeAll this registers. */
  readonly url: string;
  /** The pool's gauges from /metrics, by name without the chdb_server_ prefix. */
  poolState(): Promise<Record<string, number>>;
  /** A GET whose socket is destroyed after `afterMs`, whatever has arrived by then. */
  droppedRequest(query: string, afterMs: number): Promise<void>;
}

/**
 * Starts the front (4 engine sessions, logging nothing) in a beforeAll and closes it and removes
 * its data in an afterAll; `before` runs once it answers (creating tables, clients).
 */
export function privateFront(name: string, before?: (url: string) => Promise<void>): PrivateFront {
  const dataDir = mkdtempSync(join(tmpdir(), `chdb-front-${name}-`));
  let front: ChdbServer | undefined;
  const started = (): ChdbServer => {
    if (front === undefined) throw new Error("the private front starts in its beforeAll");
    return front;
  };

  beforeAll(async () => {
    front = await startChdbServer({
      dataDir: join(dataDir, "data"),
      port: 0,
      poolSize: 4,
      logger: pino({ level: "silent" }),
    });
    await before?.(front.url);
  });

  afterAll(async () => {
    await front?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  return {
    get url() {
      return started().url;
    },
    async poolState() {
      const text = await (await fetch(`${started().url}/metrics`)).text();
      const state: Record<string, number> = {};
      for (const [, gauge, value] of text.matchAll(/^chdb_server_(\w+) (\S+)$/gm))
        state[gauge as string] = Number(value);
      return state;
    },
    droppedRequest(query, afterMs) {
      return new Promise((resolve) => {
        const req = request(`${started().url}/?query=${encodeURIComponent(query)}`, (res) => {
          res.on("data", () => undefined);
          res.on("error", () => resolve());
          res.on("end", () => resolve());
        });
        req.on("error", () => resolve());
        req.on("close", () => resolve());
        req.end();
        setTimeout(() => req.destroy(), afterMs);
      });
    },
  };
}
