// Goal: a start-up step waits out a Kafka broker or a Redis that is restarting (tried again every
// interval, each retry told with where it failed) and no longer than its limit, while any other
// failure ends the start at once; and the failures waited out are exactly the refused connections
// of both Kafka clients, found however deep they are wrapped.

import { MemberStoreError } from "@creditflow/member-store";
import { MultipleErrors, NetworkError } from "@platformatic/kafka";
import kafkajs from "kafkajs";
import { describe, expect, it } from "vitest";
import {
  kafkaConnectionFailure,
  redisFailure,
  retryingWhileStarting,
  STARTUP_RETRY_INTERVAL_MS,
  type StartupClock,
  type StartupStep,
} from "./startup.ts";

const { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } = kafkajs;
/** Exported by kafkajs, missing from its types. */
const { KafkaJSConnectionClosedError } = kafkajs as unknown as {
  KafkaJSConnectionClosedError: new (message: string, at: { host: string; port: number }) => Error;
};

/** A clock that moves only when slept on, each sleep recorded. */
function fakeClock(): StartupClock & { slept: number[] } {
  let now = 0;
  const slept: number[] = [];
  return {
    slept,
    nowMs: () => now,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
  };
}

/** A step that fails with the given errors in turn, then answers `ok`. */
function failingThen(errors: unknown[]): (() => Promise<string>) & { calls: number } {
  const run = Object.assign(
    async () => {
      const error = errors[run.calls++];
      if (error !== undefined) throw error;
      return "ok";
    },
    { calls: 0 },
  );
  return run;
}

function kafkaStep(waitMs: number, retries: unknown[] = []): StartupStep {
  return {
    name: "partition count of cf.usage",
    waitMs,
    passing: kafkaConnectionFailure,
    onRetry: (r) => retries.push(r),
  };
}

const refused = () =>
  new KafkaJSConnectionError("Connection error: connect ECONNREFUSED 127.0.0.1:19094", {
    broker: "127.0.0.1:19094",
    code: "ECONNREFUSED",
  });

describe("retryingWhileStarting", () => {
  it("tries a refused step again each interval until it answers, telling each retry and its broker", async () => {
    const clock = fakeClock();
    const retries: unknown[] = [];
    const run = failingThen([refused(), refused()]);
    await expect(retryingWhileStarting(run, kafkaStep(60_000, retries), clock)).resolves.toBe("ok");
    expect(run.calls).toBe(3);
    expect(clock.slept).toEqual([STARTUP_RETRY_INTERVAL_MS, STARTUP_RETRY_INTERVAL_MS]);
    expect(retries).toEqual([
      expect.objectContaining({
        step: "partition count of cf.usage",
        attempt: 1,
        where: "127.0.0.1:19094",
      }),
      expect.objectContaining({ attempt: 2, where: "127.0.0.1:19094" }),
    ]);
  });

  it("gives up once the step has failed for its limit, with the step's last error", async () => {
    const clock = fakeClock();
    const retries: unknown[] = [];
    const errors = Array.from({ length: 100 }, refused);
    const run = failingThen(errors);
    const waitMs = 5 * STARTUP_RETRY_INTERVAL_MS;
    await expect(retryingWhileStarting(run, kafkaStep(waitMs, retries), clock)).rejects.toBe(
      errors[5],
    );
    expect(run.calls).toBe(6);
    expect(retries).toHaveLength(5);
    expect(clock.nowMs()).toBe(waitMs);
  });

  it("ends the start at once on a failure that does not pass with time", async () => {
    const clock = fakeClock();
    const denied = new KafkaJSProtocolError({
      message: "Not authorized to access topics",
      type: "TOPIC_AUTHORIZATION_FAILED",
      code: 29,
      retriable: false,
    } as unknown as Error);
    const run = failingThen([refused(), denied]);
    await expect(retryingWhileStarting(run, kafkaStep(60_000), clock)).rejects.toBe(denied);
    expect(run.calls).toBe(2);
    expect(clock.slept).toHaveLength(1);
  });

  it("waits for Redis on its retryable failures only", async () => {
    const clock = fakeClock();
    const step: StartupStep = {
      name: "move the unsharded deadline index",
      waitMs: 60_000,
      passing: redisFailure,
      onRetry: () => undefined,
    };
    const lost = new MemberStoreError("redis_failed", "connect ECONNREFUSED 127.0.0.1:16379");
    await expect(retryingWhileStarting(failingThen([lost]), step, clock)).resolves.toBe("ok");
    const corrupt = new MemberStoreError("state_corrupt", "state of u1 does not decode");
    await expect(retryingWhileStarting(failingThen([corrupt]), step, clock)).rejects.toBe(corrupt);
  });
});

describe("kafkaConnectionFailure", () => {
  it("finds kafkajs's refused connection, bare or wrapped by its retries", () => {
    expect(kafkaConnectionFailure(refused())).toBe("127.0.0.1:19094");
    const exhausted = new KafkaJSNumberOfRetriesExceeded(refused(), {
      retryCount: 8,
      retryTime: 30_000,
    });
    expect(kafkaConnectionFailure(exhausted)).toBe("127.0.0.1:19094");
    const closed = new KafkaJSConnectionClosedError("Connection closed by the server", {
      host: "127.0.0.1",
      port: 19093,
    });
    expect(kafkaConnectionFailure(closed)).toBe("127.0.0.1:19093");
  });

  it("finds @platformatic/kafka's network failure among a MultipleErrors", () => {
    const socket = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:19095"), {
      code: "ECONNREFUSED",
      address: "127.0.0.1",
      port: 19095,
    });
    const failed = new NetworkError("Connection to 127.0.0.1:19095 failed.", { cause: socket });
    expect(kafkaConnectionFailure(failed)).toBe("127.0.0.1:19095");
    expect(
      kafkaConnectionFailure(new MultipleErrors("Cannot connect to any broker.", [failed])),
    ).toBe("127.0.0.1:19095");
    const closedPool = new NetworkError("Connection pool is closed.", { canRetry: false });
    expect(kafkaConnectionFailure(closedPool)).toBeNull();
  });

  it("is null for anything else", () => {
    expect(kafkaConnectionFailure(new Error("topic cf.usage has no partitions"))).toBeNull();
    expect(kafkaConnectionFailure(undefined)).toBeNull();
    expect(kafkaConnectionFailure("ECONNREFUSED")).toBeNull();
  });
});
