// Goal: the transactions list says history lags exactly when a task the live state holds is
// missing from ClickHouse's answer or has another cost there.
import { describe, expect, it } from "vitest";
import { historyIsBehind } from "./history.ts";

const t = (taskId: string, atMs: number, creditsMicros = 100) => ({
  taskId,
  feature: "chat",
  atMs,
  creditsMicros,
});

describe("historyIsBehind", () => {
  it("is current when every live task is in history with the same cost", () => {
    expect(historyIsBehind([t("a", 2), t("b", 1)], [t("a", 2), t("b", 1)])).toBe(false);
    expect(historyIsBehind([], [])).toBe(false);
  });

  it("lags when a live task is missing or its cost differs (a task still running)", () => {
    expect(historyIsBehind([t("c", 3), t("a", 2)], [t("a", 2)])).toBe(true);
    expect(historyIsBehind([t("a", 2, 300)], [t("a", 2, 100)])).toBe(true);
  });

  it("ignores live tasks older than a full page of history", () => {
    const page = Array.from({ length: 10 }, (_, i) => t(`h${i}`, 100 + i));
    expect(historyIsBehind([...page, t("old", 5)], page)).toBe(false);
  });
});
