// Goal: an environment integer is its number, undefined when unset, NaN when malformed (so the
// option's validation names it); the first SIGTERM or SIGINT closes once and exits 0, or 1 with
// the error logged when the close fails.
import { EventEmitter } from "node:events";
import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import { intFromEnv, stopOnSignals } from "./process.ts";

describe("intFromEnv", () => {
  it("reads an integer, leaves unset and empty to the default, and makes the rest NaN", () => {
    const env = { PORT: "18123", EMPTY: "", WORD: "many", HALF: "1.5" };
    expect(intFromEnv("PORT", env)).toBe(18123);
    expect([intFromEnv("UNSET", env), intFromEnv("EMPTY", env)]).toEqual([undefined, undefined]);
    expect([intFromEnv("WORD", env), intFromEnv("HALF", env)]).toEqual([Number.NaN, Number.NaN]);
  });
});

describe("stopOnSignals", () => {
  const started = (close: () => Promise<void>) => {
    const host = Object.assign(new EventEmitter(), { exit: vi.fn() });
    const log = pino({ enabled: false });
    const logged = vi.spyOn(log, "error");
    stopOnSignals(log, close, host);
    return { host, logged };
  };

  it("closes once on the first signal and exits 0", async () => {
    const close = vi.fn(async () => undefined);
    const { host } = started(close);
    host.emit("SIGTERM");
    host.emit("SIGINT");
    await vi.waitFor(() => expect(host.exit).toHaveBeenCalled());
    expect(close).toHaveBeenCalledTimes(1);
    expect(host.exit.mock.calls).toEqual([[0]]);
  });

  it("exits 1 with the error logged when the close fails", async () => {
    const failure = new Error("producer did not flush");
    const { host, logged } = started(async () => Promise.reject(failure));
    host.emit("SIGINT");
    await vi.waitFor(() => expect(host.exit).toHaveBeenCalled());
    expect(host.exit.mock.calls).toEqual([[1]]);
    expect(logged).toHaveBeenCalledWith({ err: failure }, "unclean stop");
  });
});
