// The chaos checker's invariants over plain data: what the generator says was accepted, what the
// usage and ledger topics hold, what Redis and ClickHouse hold at the end. Pure: the I/O that
// gathers the data lives in observe.ts, so every check here is unit-tested with small fixtures.
import { ledgerBalanceMicros, type MemberState } from "@creditflow/engine";

/** One usage event: who it belongs to and what it costs. */
export interface UsageFact {
  userId: string;
  costMicros: number;
}

/** The fields of a ledger entry the checks read. */
export interface LedgerFact {
  entryId: string;
  kind: string;
  userId: string;
  grantId: string | null;
  amountMicros: number;
  balanceAfterMicros: number;
  detailMicros: number;
  /** When the consumer made it (the checks do not read it: a failed run's evidence does). */
  processedAtMs?: number;
  /** What made it: `<topic>:<partition>:<offset>`, or `sweep`; for the evidence too. */
  source?: string;
}

/**
 * A duplicate the generator sent after newer events of the same member (same id, same content),
 * and how many unique events of that member came between the original and it.
 */
export interface LateDuplicateFact {
  id: string;
  userId: string;
  newerOfMember: number;
}

/** One record of the ledger topic: the entry and a digest of its bytes (copies must match). */
export interface LedgerCopy {
  entry: LedgerFact;
  digest: string;
}

/** A member as Redis holds it at the end. */
export interface StoredMember {
  state: MemberState | null;
  outboxLength: number;
}

/** A bonus grant the harness sent to expire during the run. */
export interface ExpiringGrant {
  userId: string;
  grantId: string;
  amountMicros: number;
  expiresAtMs: number;
}

/** One row of ClickHouse's ledger_entries (read with FINAL). */
export interface HistoryLedgerRow {
  entryId: string;
  userId: string;
  kind: string;
  amountMicros: number;
}

export interface CheckInput {
  /** The generator's record: event id -> fact, for every event Kafka acknowledged. */
  accepted: Map<string, UsageFact>;
  /** The late duplicates Kafka acknowledged to the generator (its record too). */
  lateDuplicates: LateDuplicateFact[];
  /** Distinct usage events of the usage topic (cost priced from the record). */
  usageTopic: Map<string, UsageFact>;
  /** Every record of the ledger topic; one member's records in topic order. */
  ledgerTopic: LedgerCopy[];
  /** Every member hash of Redis. */
  redis: Map<string, StoredMember>;
  /** ClickHouse ledger_entries and usage_events, read with FINAL. */
  historyLedger: HistoryLedgerRow[];
  historyUsageIds: string[];
  expiringGrants: ExpiringGrant[];
  /** Records on the dead-letter topic (the chaos load is all valid). */
  deadLetters: number;
  /** The rebuild's own verdict (members checked, refused, first reason); null when none ran. */
  rebuild: InvariantResult | null;
  /** When the data was read, and the engine's allowed lateness (an expiry is due after it). */
  checkedAtMs: number;
  latenessMs: number;
  /** Time the sweeper gets after a deadline before a missing expiry counts as a violation. */
  sweepSlackMs: number;
}

export interface InvariantResult {
  name: string;
  /** How many items the invariant looked at. */
  checked: number;
  violations: number;
  /** The first violation, precise enough to find it in the data. */
  first: string | null;
}

class Tally {
  checked = 0;
  violations = 0;
  first: string | null = null;
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
  ok(): void {
    this.checked++;
  }
  fail(counterexample: string): void {
    this.checked++;
    this.violations++;
    this.first ??= counterexample;
  }
  /** Counts one item: fail with the message when `problem` is non-null. */
  check(problem: string | null): void {
    if (problem === null) this.ok();
    else this.fail(problem);
  }
  result(): InvariantResult {
    return {
      name: this.name,
      checked: this.checked,
      violations: this.violations,
      first: this.first,
    };
  }
}

/** `<causeId>#<n>` -> [causeId, n]; null for time-driven ids. */
export function splitEntryId(entryId: string): [string, number] | null {
  const hash = entryId.lastIndexOf("#");
  if (hash < 0) return null;
  const n = Number(entryId.slice(hash + 1));
  if (!Number.isSafeInteger(n) || n < 0) return null;
  return [entryId.slice(0, hash), n];
}

const show = (e: LedgerFact) =>
  `${e.entryId} (${e.kind} ${e.amountMicros} micros, grant ${e.grantId ?? "-"}, balance after ${e.balanceAfterMicros})`;

/** The ledger deduplicated by entry id (first copy kept), and copies that differ from it. */
export function dedupLedger(copies: LedgerCopy[]): {
  entries: LedgerFact[];
  identical: InvariantResult;
} {
  const tally = new Tally("ledger copies of one entry id are identical");
  const first = new Map<string, LedgerCopy>();
  const entries: LedgerFact[] = [];
  const differing = new Set<string>();
  for (const c of copies) {
    const seen = first.get(c.entry.entryId);
    if (seen === undefined) {
      first.set(c.entry.entryId, c);
      entries.push(c.entry);
    } else if (seen.digest !== c.digest && !differing.has(c.entry.entryId)) {
      differing.add(c.entry.entryId);
      tally.fail(
        `entry ${c.entry.entryId} is on the ledger topic twice with different content: ` +
          `${show(seen.entry)} and ${show(c.entry)}`,
      );
    }
  }
  for (const id of first.keys()) if (!differing.has(id)) tally.ok();
  return { entries, identical: tally.result() };
}

/** Every event Kafka acknowledged to the generator is on the usage topic, with its cost. */
export function acceptedAreDurable(
  accepted: Map<string, UsageFact>,
  usageTopic: Map<string, UsageFact>,
): InvariantResult {
  const tally = new Tally("every accepted event is on the usage topic");
  for (const [id, a] of accepted) {
    const t = usageTopic.get(id);
    if (t === undefined)
      tally.fail(`accepted event ${id} (user ${a.userId}) is not on the usage topic`);
    else if (t.userId !== a.userId || t.costMicros !== a.costMicros)
      tally.fail(
        `event ${id}: accepted as user ${a.userId} cost ${a.costMicros}, topic holds user ${t.userId} cost ${t.costMicros}`,
      );
    else tally.ok();
  }
  return tally.result();
}

/**
 * The events applied more than once, each with how it shows: entry ids derive from the event, so
 * a second application (an id forgotten, a late duplicate taken for new) writes `<id>#n` again,
 * made at another time from another record: a copy with other bytes. Relays of one application
 * are the same bytes.
 */
export function reappliedEvents(copies: LedgerCopy[]): Map<string, string> {
  const first = new Map<string, LedgerCopy>();
  const out = new Map<string, string>();
  for (const c of copies) {
    const seen = first.get(c.entry.entryId);
    if (seen === undefined) {
      first.set(c.entry.entryId, c);
      continue;
    }
    const split = splitEntryId(c.entry.entryId);
    if (seen.digest === c.digest || split === null || out.has(split[0])) continue;
    const at = (e: LedgerFact) => (e.source === undefined ? "" : ` from ${e.source}`);
    out.set(
      split[0],
      `${c.entry.entryId} is on the ledger from two applications: ${show(seen.entry)}${at(seen.entry)}, then ${show(c.entry)}${at(c.entry)}`,
    );
  }
  return out;
}

/**
 * Every usage event on the topic (each accepted one among them) is debited exactly once: its
 * entries `<id>#0..#n-1` are all there, made by one application (no entry id twice with other
 * content), debits then at most one overdraft, of its member, and together they cover its cost
 * exactly (a second application would have changed the amounts or left the member's balance off
 * the ledger's sum). And no debit exists without its event.
 */
export function debitedExactlyOnce(
  usageTopic: Map<string, UsageFact>,
  accepted: Map<string, UsageFact>,
  ledger: LedgerFact[],
  /** reappliedEvents of the ledger topic's copies. */
  reapplied: Map<string, string>,
): InvariantResult {
  const tally = new Tally("every accepted event debited exactly once");
  const byCause = new Map<string, LedgerFact[]>();
  const orphan = new Tally("");
  for (const e of ledger) {
    const split = splitEntryId(e.entryId);
    if (split === null) continue;
    const [cause] = split;
    if (usageTopic.has(cause)) {
      const list = byCause.get(cause) ?? [];
      list.push(e);
      byCause.set(cause, list);
    } else if (e.kind === "debit" || e.kind === "overdraft") {
      orphan.fail(`ledger entry ${show(e)} has no usage event ${cause} on the usage topic`);
    }
  }
  const problemOf = (id: string, fact: UsageFact): string | null => {
    const twice = reapplied.get(id);
    if (twice !== undefined) return `event ${id} (user ${fact.userId}) applied twice: ${twice}`;
    const entries = (byCause.get(id) ?? [])
      .slice()
      .sort((a, b) => splitEntryId(a.entryId)![1] - splitEntryId(b.entryId)![1]);
    if (entries.length === 0) {
      return fact.costMicros === 0
        ? null
        : `event ${id} (user ${fact.userId}, cost ${fact.costMicros}) has no debit on the ledger`;
    }
    let covered = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (splitEntryId(e.entryId)![1] !== i)
        return `event ${id}: entries are not ${id}#0..#${entries.length - 1} (found ${entries.map((x) => x.entryId).join(", ")})`;
      if (e.userId !== fact.userId)
        return `event ${id} of user ${fact.userId} debited user ${e.userId}: ${show(e)}`;
      if (e.kind === "debit") covered += -e.amountMicros;
      else if (e.kind === "overdraft" && i === entries.length - 1) covered += e.detailMicros;
      else return `event ${id}: unexpected entry ${show(e)}`;
    }
    if (covered !== fact.costMicros)
      return `event ${id} (user ${fact.userId}) costs ${fact.costMicros} micros but its entries cover ${covered}: ${entries.map(show).join("; ")}`;
    return null;
  };
  // Accepted events first, so the first counterexample names one the generator saw accepted.
  for (const [id, fact] of accepted) tally.check(problemOf(id, usageTopic.get(id) ?? fact));
  for (const [id, fact] of usageTopic) if (!accepted.has(id)) tally.check(problemOf(id, fact));
  const r = tally.result();
  return {
    ...r,
    violations: r.violations + orphan.violations,
    first: r.first ?? orphan.first,
  };
}

/**
 * Every late duplicate (an exact copy resent after newer events of its member) changed nothing:
 * its event was applied once, and the copy came from the event's own member.
 */
export function lateDuplicatesChangedNothing(
  lateDuplicates: LateDuplicateFact[],
  usageTopic: Map<string, UsageFact>,
  /** reappliedEvents of the ledger topic's copies. */
  reapplied: Map<string, string>,
): InvariantResult {
  const tally = new Tally("every late duplicate changed nothing (its event applied once)");
  for (const d of lateDuplicates) {
    const fact = usageTopic.get(d.id);
    const twice = reapplied.get(d.id);
    if (fact === undefined)
      tally.fail(`late duplicate ${d.id} (user ${d.userId}) has no event on the usage topic`);
    else if (twice !== undefined)
      tally.fail(
        `late duplicate ${d.id} (user ${d.userId}, after ${d.newerOfMember} newer events of the member) applied its event again: ${twice}`,
      );
    else tally.ok();
  }
  return tally.result();
}

/** Per member: the balance in Redis equals the sum of its ledger entries. */
export function balancesMatchLedger(
  redis: Map<string, StoredMember>,
  ledger: LedgerFact[],
): InvariantResult {
  const tally = new Tally("member balance in Redis = sum of its ledger entries");
  const sums = new Map<string, { sum: number; entries: number }>();
  for (const e of ledger) {
    const s = sums.get(e.userId) ?? { sum: 0, entries: 0 };
    s.sum += e.amountMicros;
    s.entries++;
    sums.set(e.userId, s);
  }
  const users = new Set([...sums.keys(), ...redis.keys()]);
  for (const userId of [...users].sort()) {
    const s = sums.get(userId) ?? { sum: 0, entries: 0 };
    const state = redis.get(userId)?.state ?? null;
    if (state === null) {
      tally.check(
        s.entries === 0
          ? null
          : `member ${userId}: ${s.entries} ledger entries (sum ${s.sum}) but no state in Redis`,
      );
      continue;
    }
    const balance = ledgerBalanceMicros(state);
    tally.check(
      balance === s.sum
        ? null
        : `member ${userId}: Redis balance ${balance} micros, ledger sum ${s.sum} over ${s.entries} entries (difference ${balance - s.sum})`,
    );
  }
  return tally.result();
}

/** Per member, in ledger order: each entry's balance-after is the previous one plus its amount. */
export function runningBalancesChain(ledger: LedgerFact[]): InvariantResult {
  const tally = new Tally("ledger running balance chains (no entry lost or reordered)");
  const last = new Map<string, number>();
  for (const e of ledger) {
    const before = last.get(e.userId) ?? 0;
    last.set(e.userId, e.balanceAfterMicros);
    tally.check(
      before + e.amountMicros === e.balanceAfterMicros
        ? null
        : `member ${e.userId}: balance before ${before} + ${show(e)} does not give its balance after`,
    );
  }
  return tally.result();
}

/**
 * No grant below zero or above its amount: every grant Redis holds has 0 <= remaining <= amount and
 * the sum of its ledger entries equals that remaining; a grant Redis no longer holds sums to zero;
 * and in ledger order no grant's running sum ever goes below zero.
 */
export function grantsWithinBounds(
  redis: Map<string, StoredMember>,
  ledger: LedgerFact[],
): InvariantResult {
  const tally = new Tally("grant remaining within [0, amount], = its ledger sum");
  const key = (userId: string, grantId: string) => `${userId}\u0000${grantId}`;
  const sums = new Map<string, number>();
  const wentNegative = new Map<string, string>();
  for (const e of ledger) {
    if (e.grantId === null) continue;
    const k = key(e.userId, e.grantId);
    const sum = (sums.get(k) ?? 0) + e.amountMicros;
    sums.set(k, sum);
    if (sum < 0 && !wentNegative.has(k))
      wentNegative.set(k, `grant ${e.grantId} of ${e.userId} below zero (${sum}) after ${show(e)}`);
  }
  const held = new Set<string>();
  for (const [userId, m] of redis) {
    for (const g of m.state?.grants ?? []) {
      const k = key(userId, g.id);
      held.add(k);
      const sum = sums.get(k) ?? 0;
      if (g.remainingMicros < 0 || g.remainingMicros > g.amountMicros)
        tally.fail(
          `grant ${g.id} of ${userId}: remaining ${g.remainingMicros} outside [0, ${g.amountMicros}]`,
        );
      else if (sum !== g.remainingMicros)
        tally.fail(
          `grant ${g.id} of ${userId}: remaining ${g.remainingMicros} in Redis, ledger sum ${sum}`,
        );
      else tally.check(wentNegative.get(k) ?? null);
    }
  }
  for (const [k, sum] of sums) {
    if (held.has(k)) continue;
    const [userId, grantId] = k.split("\u0000");
    if (sum !== 0)
      tally.fail(`grant ${grantId} of ${userId} is gone from Redis but its ledger sums to ${sum}`);
    else tally.check(wentNegative.get(k) ?? null);
  }
  return tally.result();
}

/**
 * Bonus forfeited exactly once: no grant has two expire entries, and every grant the harness sent
 * to expire during the run, once its expiry and the lateness passed, is gone from Redis with one
 * expire entry of its unspent remainder (none when it was spent in full).
 */
export function forfeitedOnce(input: {
  redis: Map<string, StoredMember>;
  ledger: LedgerFact[];
  expiringGrants: ExpiringGrant[];
  checkedAtMs: number;
  latenessMs: number;
  sweepSlackMs: number;
}): InvariantResult {
  const tally = new Tally("bonus forfeited exactly once per expired grant");
  const key = (userId: string, grantId: string) => `${userId}\u0000${grantId}`;
  const byGrant = new Map<string, LedgerFact[]>();
  for (const e of input.ledger) {
    if (e.grantId === null) continue;
    const k = key(e.userId, e.grantId);
    const list = byGrant.get(k) ?? [];
    list.push(e);
    byGrant.set(k, list);
  }
  const expiring = new Set(input.expiringGrants.map((g) => key(g.userId, g.grantId)));
  for (const [k, entries] of byGrant) {
    if (expiring.has(k)) continue;
    const expires = entries.filter((e) => e.kind === "expire");
    if (expires.length > 0)
      tally.check(
        expires.length === 1
          ? null
          : `grant ${entries[0]!.grantId} of ${entries[0]!.userId} forfeited ${expires.length} times: ${expires.map(show).join("; ")}`,
      );
  }
  for (const g of input.expiringGrants) {
    const entries = byGrant.get(key(g.userId, g.grantId)) ?? [];
    const expires = entries.filter((e) => e.kind === "expire");
    const due = g.expiresAtMs + input.latenessMs + input.sweepSlackMs <= input.checkedAtMs;
    const name = `grant ${g.grantId} of ${g.userId} (expires ${new Date(g.expiresAtMs).toISOString()})`;
    if (expires.length > 1) {
      tally.fail(`${name} forfeited ${expires.length} times: ${expires.map(show).join("; ")}`);
      continue;
    }
    if (!due) {
      tally.check(expires.length === 0 ? null : `${name} forfeited before it was due`);
      continue;
    }
    if (!entries.some((e) => e.kind === "grant")) {
      tally.fail(`${name}: the grant command was never applied (no grant entry)`);
      continue;
    }
    const held = input.redis.get(g.userId)?.state?.grants.some((x) => x.id === g.grantId) ?? false;
    const remainder = entries
      .filter((e) => e.kind !== "expire")
      .reduce((s, e) => s + e.amountMicros, 0);
    if (held) tally.fail(`${name} is past its expiry and lateness but still held in Redis`);
    else if (remainder > 0 && expires.length === 0)
      tally.fail(`${name} had ${remainder} micros unspent and no expire entry`);
    else if (remainder > 0 && expires[0]!.amountMicros !== -remainder)
      tally.fail(`${name}: ${remainder} unspent but forfeited ${show(expires[0]!)}`);
    else if (remainder === 0 && expires.length !== 0)
      tally.fail(`${name} was spent in full but has ${show(expires[0]!)}`);
    else tally.ok();
  }
  return tally.result();
}

/** ClickHouse's usage_events hold each event of the usage topic once, and nothing else. */
export function historyUsageMatches(
  usageTopic: Map<string, UsageFact>,
  historyUsageIds: string[],
): InvariantResult {
  const tally = new Tally("ClickHouse usage rows = accepted events (distinct ids)");
  const seen = new Set<string>();
  for (const id of historyUsageIds) {
    if (seen.has(id)) tally.fail(`usage event ${id} is in ClickHouse twice (after FINAL)`);
    else if (!usageTopic.has(id))
      tally.fail(`ClickHouse holds usage event ${id} that Kafka does not`);
    seen.add(id);
  }
  for (const [id, fact] of usageTopic) {
    tally.check(
      seen.has(id) ? null : `usage event ${id} (user ${fact.userId}) is missing from ClickHouse`,
    );
  }
  return tally.result();
}

/** ClickHouse's ledger_entries hold each distinct entry of the topic once, with its amount. */
export function historyLedgerMatches(
  ledger: LedgerFact[],
  historyLedger: HistoryLedgerRow[],
): InvariantResult {
  const tally = new Tally("ClickHouse ledger rows = ledger entries (ids, amounts)");
  const rows = new Map<string, HistoryLedgerRow>();
  for (const r of historyLedger) {
    if (rows.has(r.entryId))
      tally.fail(`ledger entry ${r.entryId} is in ClickHouse twice (after FINAL)`);
    rows.set(r.entryId, r);
  }
  const onTopic = new Set<string>();
  for (const e of ledger) {
    onTopic.add(e.entryId);
    const r = rows.get(e.entryId);
    if (r === undefined)
      tally.fail(`ledger entry ${show(e)} of ${e.userId} is missing from ClickHouse`);
    else if (r.userId !== e.userId || r.kind !== e.kind || r.amountMicros !== e.amountMicros)
      tally.fail(
        `ledger entry ${e.entryId}: topic ${e.userId} ${e.kind} ${e.amountMicros}, ClickHouse ${r.userId} ${r.kind} ${r.amountMicros}`,
      );
    else tally.ok();
  }
  for (const r of historyLedger) {
    if (!onTopic.has(r.entryId))
      tally.fail(`ClickHouse holds ledger entry ${r.entryId} that the topic does not`);
  }
  return tally.result();
}

/** Nothing written and not relayed: every member's outbox is empty once drained. */
export function outboxesEmpty(redis: Map<string, StoredMember>): InvariantResult {
  const tally = new Tally("Redis outboxes empty after the drain");
  for (const [userId, m] of redis) {
    tally.check(
      m.outboxLength === 0 ? null : `member ${userId} has ${m.outboxLength} entries in its outbox`,
    );
  }
  return tally.result();
}

/** Every invariant of the run, in the order the table prints them. */
export function checkAll(input: CheckInput): InvariantResult[] {
  const { entries, identical } = dedupLedger(input.ledgerTopic);
  const reapplied = reappliedEvents(input.ledgerTopic);
  const results = [
    acceptedAreDurable(input.accepted, input.usageTopic),
    debitedExactlyOnce(input.usageTopic, input.accepted, entries, reapplied),
    lateDuplicatesChangedNothing(input.lateDuplicates, input.usageTopic, reapplied),
    identical,
    balancesMatchLedger(input.redis, entries),
    runningBalancesChain(entries),
    grantsWithinBounds(input.redis, entries),
    forfeitedOnce({ ...input, ledger: entries }),
    historyUsageMatches(input.usageTopic, input.historyUsageIds),
    historyLedgerMatches(entries, input.historyLedger),
    outboxesEmpty(input.redis),
    {
      name: "no dead letters from valid traffic",
      checked: input.usageTopic.size,
      violations: input.deadLetters,
      first:
        input.deadLetters === 0 ? null : `${input.deadLetters} records on the dead-letter topic`,
    },
  ];
  if (input.rebuild !== null) results.push(input.rebuild);
  return results;
}
