// How many records the next unit of a partition takes. A unit runs from start to commit without
// returning to kafkajs, so it must end well inside the group's session and rebalance timeouts
// whatever the machine's load: a unit that outlives them costs the process its membership, its
// commit is refused, and the partition's next owner does the unit again (an endless loop when
// every unit is that long; seen in a 10-minute chaos run, 6 s session, units of 100,000 records
// on a loaded machine). The size follows the throughput of the last units, aiming at `targetMs`
// each, between `minRecords` and `maxRecords` (the limit batchRecords).

export class UnitSizer {
  private readonly maxRecords: number;
  private readonly minRecords: number;
  private readonly targetMs: number;
  /** Records per millisecond of the last units (smoothed); null before the first. */
  private perMs: number | null = null;

  constructor(maxRecords: number, targetMs: number, minRecords = 500) {
    this.maxRecords = maxRecords;
    this.minRecords = Math.min(minRecords, maxRecords);
    this.targetMs = targetMs;
  }

  /**
   * Records for the next unit of a batch that has `remaining` records left. The first unit is
   * small: nothing is known of the machine yet. A tail of at most a quarter of the unit is taken
   * along (the unit then aims at up to 1.25 times the target, never past maxRecords): as a unit of
   * its own it would write most of its members a second time for few records.
   */
  next(remaining = Number.POSITIVE_INFINITY): number {
    let n = this.minRecords;
    if (this.perMs !== null) {
      n = Math.floor(this.perMs * this.targetMs);
      n = Math.max(this.minRecords, Math.min(this.maxRecords, n));
    }
    return remaining - n <= n / 4 && remaining <= this.maxRecords ? remaining : n;
  }

  /**
   * A unit of `records` took `ms` from its start to its commit. A faster unit counts in full (a
   * small unit is slower per record than a big one: its members' fixed costs are spread over fewer
   * records, so averaging would hold the ramp-up back for several units, each a pass over most of
   * the partition's members); a slower one is averaged with what was known.
   */
  observe(records: number, ms: number): void {
    const rate = records / Math.max(ms, 1);
    this.perMs = this.perMs === null || rate > this.perMs ? rate : (this.perMs + rate) / 2;
  }
}
