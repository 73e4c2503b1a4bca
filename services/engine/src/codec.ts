// The compact, versioned form of a member's state for Redis. decodeState(encodeState(s)) equals s
// exactly, and encodeState(decodeState(text)) === text.
//
// Version 4 is the JSON array [4, "<body>"]: the body is one text read front to back. Numbers are
// base-64 digits (5 bits each, low first; a digit >= 32 says "more follow"; signed numbers carry
// the sign in the first digit), most of them short: times relative to the state's clock, amounts
// as spent, codes for names, flags for fields left at their default. Strings are their length then
// their characters. Recent remembered ids are stored after the prefix they share with the previous
// id, with their horizon time, remembered entries by what differs from the entry before; older
// remembered ids are the id memory's compact records, copied as one run of characters (never
// decoded here: a member with thousands of ids in its horizon costs one copy, not a parse). Written byte by byte (no JSON.stringify
// of an object tree) and read with one JSON.parse of a single string (none when it has no escape).
// Version 3 states (the same without the sides last told in the flags: read as none told),
// version 2 states (the same without the horizon's clock, compact ids and record times: read with
// clock 0, no compact ids, and every record at the state's clock) and version 1 states
// (codec-v1.ts) are still read.

import { decodeStateV1, STATE_CODEC_V1 } from "./codec-v1.ts";
import { CompactIds, RECORD_CHARS } from "./compact-ids.ts";
import { EngineError } from "./errors.ts";
import { finish53, HASH53_M1, HASH53_M2, HASH53_SEED1, HASH53_SEED2 } from "./fingerprint.ts";
import { MemoryBuilder } from "./memory.ts";
import { ledgerEntry } from "./state.ts";
import { BILLINGS, CLASSES, KINDS, PERIODS, SOURCES } from "./state-codes.ts";
import {
  AGENT_TASK_KINDS,
  type AgentTaskKind,
  FEATURES,
  type Feature,
  type Grant,
  type LedgerEntry,
  type MemberState,
  REFUSAL_REASONS,
  type Recurrence,
  type TaskSummary,
  type UsageWindow,
} from "./types.ts";

export const STATE_CODEC_VERSION = 4;
const STATE_CODEC_V3 = 3;
const STATE_CODEC_V2 = 2;

/** Name -> code tables (no indexOf per field). */
function codes(list: readonly string[]): Map<string, number> {
  return new Map(list.map((v, i) => [v, i]));
}
const CLASS_CODE = codes(CLASSES);
const SOURCE_CODE = codes(SOURCES);
const PERIOD_CODE = codes(PERIODS);
const KIND_CODE = codes(KINDS);
const BILLING_CODE = codes(BILLINGS);
const FEATURE_CODE = codes(FEATURES);
const TASK_KIND_CODE = codes(AGENT_TASK_KINDS);
const REASON_CODE = codes(REFUSAL_REASONS);

function code(table: Map<string, number>, value: string): number {
  const c = table.get(value);
  if (c === undefined) throw new EngineError("assertion_failed", `no code for ${value}`);
  return c;
}

// The state's flags (one number after the tier).
const S_PENDING = 1;
const S_CANCEL = 2;
const S_WINDOW_5H = 4;
const S_WINDOW_7D = 8;
const S_MIGRATED = 16;
// Version 4: the sides last told (notifications.ts); version 3 and older states have told nothing.
const S_LOW_NOTIFIED = 32;
const S_EXHAUSTED_NOTIFIED = 64;
// A grant's head: class * 8 + source, plus which optional fields follow.
const G_SPENT = 16;
const G_EXPIRES = 32;
const G_PRIORITY = 64;
const G_CREATED = 128;
const G_RECURS = 256;
// A task's code: feature * 8 + kind, where kind is an agent kind, none, or text that follows.
const NO_KIND = 6;
const KIND_TEXT = 7;
// An entry's head: kind * 3 + class (2: none), plus which fields differ from their default.
const NO_CLASS = 2;
const E_ID = 32; // the id is not `${recordId}#${index}`
const E_GRANT = 64; // the grant id is not the previous entry's
const E_BALANCE = 128; // the balance after is not the previous entry's plus the amount
const E_DETAIL = 256; // detail is not 0
const E_FEATURE = 512; // the feature is not the previous entry's
const E_TASK = 1024; // the task id is not the previous entry's
const E_PROCESSED = 2048; // processed at another time than the event's
/** An entry's feature code when it has none. */
const NO_FEATURE = FEATURES.length;

const HEAD = '[4,"';
const TAIL = '"]';
/** Characters of a fingerprint: 53 bits as nine base-64 digits. */
const FP_DIGITS = 9;
const DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const DIGIT_CODE = new Uint8Array(64);
const DIGIT_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) {
  DIGIT_CODE[i] = DIGITS.charCodeAt(i);
  DIGIT_VALUE[DIGITS.charCodeAt(i)] = i;
}
const TWO_24 = 16_777_216;
const TWO_29 = 536_870_912;
const TWO_30 = 1_073_741_824;
const HEX = "0123456789abcdef";

/**
 * Writes the text as one-byte characters into a reused buffer, escaped for JSON on the way; a
 * string with a character above 0x7f goes through JSON.stringify as a separate part.
 */
class Writer {
  buf = new Uint8Array(8192);
  n = 0;
  parts: string[] = [];
  readonly latin1 = new TextDecoder("latin1");

  reset(): void {
    this.n = 0;
    this.parts.length = 0;
  }

  room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    bigger.set(this.buf.subarray(0, this.n));
    this.buf = bigger;
  }

  /** An integer >= 0. */
  u(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new EngineError("assertion_failed", `${value} is not a safe integer >= 0`);
    }
    this.room(11);
    let v = value;
    if (v >= TWO_30) {
      // Six digits of the low 30 bits with integer operations, then the rest.
      const high = Math.floor(v / TWO_30);
      let low = (v - high * TWO_30) | 0;
      for (let k = 0; k < 6; k++) {
        this.buf[this.n++] = DIGIT_CODE[32 + (low & 31)]!;
        low >>>= 5;
      }
      v = high;
    }
    this.digits(v);
  }

  /** An integer in 0..2^31 - 1, 5 bits per digit. */
  digits(value: number): void {
    let v = value | 0;
    while (v >= 32) {
      this.buf[this.n++] = DIGIT_CODE[32 + (v & 31)]!;
      v >>>= 5;
    }
    this.buf[this.n++] = DIGIT_CODE[v]!;
  }

  /** A safe integer: the first digit holds the sign and 4 bits. */
  int(value: number): void {
    if (!Number.isSafeInteger(value)) {
      throw new EngineError("assertion_failed", `${value} is not a safe integer`);
    }
    this.room(12);
    const sign = value < 0 ? 1 : 0;
    const m = sign === 1 ? -value : value;
    if (m < TWO_30) {
      const v = m | 0;
      const rest = v >>> 4;
      this.buf[this.n++] = DIGIT_CODE[(rest > 0 ? 32 : 0) + (v & 15) * 2 + sign]!;
      if (rest > 0) this.digits(rest);
      return;
    }
    // The low 29 bits (4 + 5 * 5) with integer operations, then the rest.
    const high = Math.floor(m / TWO_29);
    let low = (m - high * TWO_29) | 0;
    this.buf[this.n++] = DIGIT_CODE[32 + (low & 15) * 2 + sign]!;
    low >>>= 4;
    for (let k = 0; k < 5; k++) {
      this.buf[this.n++] = DIGIT_CODE[32 + (low & 31)]!;
      low >>>= 5;
    }
    this.digits(high);
  }

  /** Nine digits of a 53-bit integer >= 0. */
  fingerprint(fp: number): void {
    if (!Number.isSafeInteger(fp) || fp < 0) {
      throw new EngineError("assertion_failed", `fingerprint ${fp} is not a 53-bit integer`);
    }
    this.room(FP_DIGITS);
    const high = Math.floor(fp / TWO_24); // < 2^29
    const low = fp - high * TWO_24; // < 2^24
    const b = this.buf;
    let n = this.n;
    b[n++] = DIGIT_CODE[high >>> 24]!;
    b[n++] = DIGIT_CODE[(high >>> 18) & 63]!;
    b[n++] = DIGIT_CODE[(high >>> 12) & 63]!;
    b[n++] = DIGIT_CODE[(high >>> 6) & 63]!;
    b[n++] = DIGIT_CODE[high & 63]!;
    b[n++] = DIGIT_CODE[low >>> 18]!;
    b[n++] = DIGIT_CODE[(low >>> 12) & 63]!;
    b[n++] = DIGIT_CODE[(low >>> 6) & 63]!;
    b[n++] = DIGIT_CODE[low & 63]!;
    this.n = n;
  }

  /** The characters of `s` from `from` (no length). */
  chars(s: string, from = 0): void {
    this.room(6 * (s.length - from));
    const b = this.buf;
    const start = this.n;
    let n = start;
    for (let i = from; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) {
        b[n++] = c;
      } else if (c < 0x80) {
        // JSON escapes: \" \\ and \u00XX for control characters (and DEL, for simplicity).
        b[n++] = 0x5c;
        if (c === 0x22 || c === 0x5c) b[n++] = c;
        else {
          b[n++] = 0x75;
          b[n++] = 0x30;
          b[n++] = 0x30;
          b[n++] = HEX.charCodeAt(c >>> 4);
          b[n++] = HEX.charCodeAt(c & 15);
        }
      } else {
        // Beyond one byte: JSON.stringify escapes what needs it (lone surrogates).
        this.n = start;
        this.flush();
        this.parts.push(JSON.stringify(from === 0 ? s : s.slice(from)).slice(1, -1));
        return;
      }
    }
    this.n = n;
  }

  str(s: string): void {
    this.u(s.length);
    this.chars(s);
  }

  /** A string or null: 0, or the length + 1 and the characters. */
  strOrNull(s: string | null): void {
    if (s === null) this.u(0);
    else {
      this.u(s.length + 1);
      this.chars(s);
    }
  }

  flush(): void {
    if (this.n > 0) this.parts.push(this.latin1.decode(this.buf.subarray(0, this.n)));
    this.n = 0;
  }

  text(): string {
    if (this.parts.length === 0) return this.latin1.decode(this.buf.subarray(0, this.n));
    this.flush();
    return this.parts.join("");
  }
}

const writer = new Writer();

function sharedPrefix(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/** The state as a compact string: the JSON array [4, "<body>"] (version first). */
export function encodeState(state: MemberState): string {
  const w = writer;
  w.reset();
  w.room(HEAD.length);
  for (let i = 0; i < HEAD.length; i++) w.buf[w.n++] = HEAD.charCodeAt(i);

  const base = state.clockMs;
  const t = state.tier;
  w.str(state.userId);
  w.int(base);
  w.str(t.tierId);
  w.u(code(BILLING_CODE, t.billing));
  w.int(base - t.anchorMs);
  const grants = state.grants;
  const tierGrant = grants.findIndex((g) => g.id === t.grantId);
  // The tier grant by its index + 1 when held, else 0 and its id.
  w.u(tierGrant + 1);
  if (tierGrant < 0) w.str(t.grantId);
  const w5 = state.window5h;
  const w7 = state.window7d;
  w.u(
    (t.pendingTierId !== null ? S_PENDING : 0) +
      (t.cancelAtMs !== null ? S_CANCEL : 0) +
      (w5 !== null ? S_WINDOW_5H : 0) +
      (w7 !== null ? S_WINDOW_7D : 0) +
      (state.migrated ? S_MIGRATED : 0) +
      (state.lowCreditNotified ? S_LOW_NOTIFIED : 0) +
      (state.exhaustedNotified ? S_EXHAUSTED_NOTIFIED : 0),
  );
  if (t.pendingTierId !== null) w.str(t.pendingTierId);
  if (t.cancelAtMs !== null) w.int(base - t.cancelAtMs);
  w.int(state.debtMicros);
  if (w5 !== null) {
    w.int(base - w5.startMs);
    w.int(w5.usedMicros);
  }
  if (w7 !== null) {
    w.int(base - w7.startMs);
    w.int(w7.usedMicros);
  }

  w.u(grants.length);
  for (const g of grants) {
    // Spent rather than remaining, times after effectiveFrom, and defaults left out.
    const from = g.effectiveFromMs;
    const spent = g.amountMicros - g.remainingMicros;
    const r = g.recurrence;
    w.u(
      code(CLASS_CODE, g.cls) * 8 +
        code(SOURCE_CODE, g.source) +
        (spent !== 0 ? G_SPENT : 0) +
        (g.expiresAtMs !== null ? G_EXPIRES : 0) +
        (g.priority !== 0 ? G_PRIORITY : 0) +
        (g.createdAtMs !== from ? G_CREATED : 0) +
        (r !== null ? G_RECURS : 0),
    );
    w.str(g.id);
    w.int(g.amountMicros);
    w.int(base - from);
    if (spent !== 0) w.int(spent);
    if (g.expiresAtMs !== null) w.int(g.expiresAtMs - from);
    if (g.priority !== 0) w.int(g.priority);
    if (g.createdAtMs !== from) w.int(g.createdAtMs - from);
    if (r !== null) {
      w.u(code(PERIOD_CODE, r.period));
      w.int(base - r.anchorMs);
      w.int(r.nextIndex);
    }
  }

  const tasks = state.recentTasks;
  w.u(tasks.length);
  for (const k of tasks) {
    const kind = k.taskKind === null ? NO_KIND : (TASK_KIND_CODE.get(k.taskKind) ?? KIND_TEXT);
    w.u(code(FEATURE_CODE, k.feature) * 8 + kind);
    w.str(k.taskId);
    w.int(base - k.firstAtMs);
    w.int(k.lastAtMs - k.firstAtMs);
    w.int(k.costMicros);
    if (kind === KIND_TEXT) w.str(k.taskKind as string);
  }

  // The id memory: the horizon's clock, the compact records as they are, then the recent ids
  // (the length shared with the previous id, the rest, the fingerprint, the horizon time).
  const applied = state.applied;
  const baseSec = Math.ceil(base / 1000);
  w.int(base - applied.clockMs);
  const compact = applied.compact;
  w.u(compact.sorted.length / RECORD_CHARS);
  w.u(compact.tail.length);
  if (compact.count > 0) {
    w.int(baseSec - compact.minAtSec);
    w.flush();
    w.parts.push(compact.sorted);
    for (const record of compact.tail) w.parts.push(record);
  }
  const idCount = applied.length;
  w.u(idCount);
  let prevId = "";
  for (let r = 0; r < idCount; r++) {
    const id = applied.idAt(r);
    const shared = sharedPrefix(prevId, id);
    w.u(shared);
    w.u(id.length - shared);
    w.chars(id, shared);
    w.fingerprint(applied.fingerprintAt(r));
    w.int(baseSec - applied.atSecAt(r));
    prevId = id;
  }

  // Answers: remembered entries (tag 2 * record index) and refusals (tag + 1), in record order.
  let prevGrant: string | null = null;
  let prevTask: string | null = null;
  let prevFeature: number = NO_FEATURE;
  let prevBalance = 0;
  for (let r = 0; r < idCount; r++) {
    const entries = applied.entriesAt(r);
    if (entries !== null) {
      const recordId = applied.idAt(r);
      w.u(2 * r);
      w.u(entries.length);
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        const literalId = e.id !== `${recordId}#${i}`;
        const balanceDelta = e.balanceAfterMicros - (prevBalance + e.amountMicros);
        const feature = e.feature === null ? NO_FEATURE : code(FEATURE_CODE, e.feature);
        w.u(
          code(KIND_CODE, e.kind) * 3 +
            (e.cls === null ? NO_CLASS : code(CLASS_CODE, e.cls)) +
            (literalId ? E_ID : 0) +
            (e.grantId !== prevGrant ? E_GRANT : 0) +
            (balanceDelta !== 0 ? E_BALANCE : 0) +
            (e.detailMicros !== 0 ? E_DETAIL : 0) +
            (feature !== prevFeature ? E_FEATURE : 0) +
            (e.taskId !== prevTask ? E_TASK : 0) +
            (e.processedAtMs !== e.eventAtMs ? E_PROCESSED : 0),
        );
        if (literalId) w.str(e.id);
        if (e.grantId !== prevGrant) w.strOrNull(e.grantId);
        w.int(e.amountMicros);
        if (balanceDelta !== 0) w.int(balanceDelta);
        if (e.detailMicros !== 0) w.int(e.detailMicros);
        if (feature !== prevFeature) w.u(feature);
        if (e.taskId !== prevTask) w.strOrNull(e.taskId);
        w.int(base - e.eventAtMs);
        if (e.processedAtMs !== e.eventAtMs) w.int(e.processedAtMs - e.eventAtMs);
        prevGrant = e.grantId;
        prevTask = e.taskId;
        prevFeature = feature;
        prevBalance = e.balanceAfterMicros;
      }
    }
    const f = applied.refusalAt(r);
    if (f !== null) {
      w.u(2 * r + 1);
      w.u(code(REASON_CODE, f.reason));
      w.strOrNull(f.field);
      w.str(f.message);
    }
  }

  w.room(TAIL.length);
  for (let i = 0; i < TAIL.length; i++) w.buf[w.n++] = TAIL.charCodeAt(i);
  return w.text();
}

// ---------------------------------------------------------------------------------------------
// Decoding trusts the text only after checking it: a corrupt value is an infrastructure failure.

function fail(why: string): never {
  throw new EngineError("state_invalid", `stored member state is invalid: ${why}`);
}

/** Reads the body (s from p to end) front to back, checking every value. */
class Reader {
  readonly s: string;
  p: number;
  readonly end: number;

  constructor(s: string, p: number, end: number) {
    this.s = s;
    this.p = p;
    this.end = end;
  }

  more(): boolean {
    return this.p < this.end;
  }

  digit(what: string): number {
    if (this.p >= this.end) fail(`${what} is missing`);
    const c = this.s.charCodeAt(this.p++);
    const d = c < 128 ? DIGIT_VALUE[c]! : -1;
    if (d < 0) fail(`${what} has a bad digit`);
    return d;
  }

  /** The digits after a first digit that said "more": value = n + rest * scale. */
  rest(n: number, scale: number, what: string): number {
    let value = n;
    let s = scale;
    for (;;) {
      const d = this.digit(what);
      if (d < 32) {
        if (d === 0) fail(`${what} is not canonical`);
        value += d * s;
        break;
      }
      value += (d - 32) * s;
      s *= 32;
      if (s > 2 ** 50) fail(`${what} is too long`);
    }
    if (value > Number.MAX_SAFE_INTEGER) fail(`${what} is out of range`);
    return value;
  }

  u(what: string): number {
    const d = this.digit(what);
    return d < 32 ? d : this.rest(d - 32, 32, what);
  }

  int(what: string): number {
    const d = this.digit(what);
    const low = (d >>> 1) & 15;
    const n = d < 32 ? low : this.rest(low, 16, what);
    if ((d & 1) === 0) return n;
    if (n === 0) fail(`${what} is not canonical`);
    return -n;
  }

  /** A time stored as base - time. */
  time(base: number, what: string): number {
    const t = base - this.int(what);
    if (!Number.isSafeInteger(t)) fail(`${what} is out of range`);
    return t;
  }

  /** A count of items that each take at least one character. */
  count(what: string): number {
    const n = this.u(what);
    if (n > this.end - this.p) fail(`${what} ${n} is out of range`);
    return n;
  }

  chars(length: number, what: string): string {
    if (length > this.end - this.p) fail(`${what} is cut short`);
    const value = this.s.slice(this.p, this.p + length);
    this.p += length;
    return value;
  }

  str(what: string): string {
    return this.chars(this.u(what), what);
  }

  strOrNull(what: string): string | null {
    const n = this.u(what);
    return n === 0 ? null : this.chars(n - 1, what);
  }

  fingerprint(what: string): number {
    if (this.end - this.p < FP_DIGITS) fail(`${what} is cut short`);
    // Five digits (29 bits: the first must be < 32), then four (24 bits): integer operations.
    const s = this.s;
    let p = this.p;
    let high = 0;
    let low = 0;
    let bad = 0;
    for (let k = 0; k < 5; k++) {
      const c = s.charCodeAt(p++);
      const d = c < 128 ? DIGIT_VALUE[c]! : -1;
      bad |= d;
      high = (high << 6) | (d & 63);
    }
    for (let k = 0; k < 4; k++) {
      const c = s.charCodeAt(p++);
      const d = c < 128 ? DIGIT_VALUE[c]! : -1;
      bad |= d;
      low = (low << 6) | (d & 63);
    }
    this.p = p;
    if (bad < 0) fail(`${what} has a bad digit`);
    if (high >= TWO_29) fail(`${what} is out of range`);
    return high * TWO_24 + low;
  }
}

function pick<T>(list: readonly T[], c: number, what: string): T {
  const value = list[c];
  if (value === undefined) fail(`${what} code ${c} is unknown`);
  return value;
}

function readGrant(r: Reader, base: number): Grant {
  const head = r.u("grant.head");
  if (head >= 2 * G_RECURS) fail("grant.head is out of range");
  const id = r.str("grant.id");
  const amount = r.int("grant.amount");
  const from = r.time(base, "grant.effectiveFrom");
  const spent = head & G_SPENT ? r.int("grant.spent") : 0;
  const expiresAtMs = head & G_EXPIRES ? from + r.int("grant.expiresAt") : null;
  const priority = head & G_PRIORITY ? r.int("grant.priority") : 0;
  const createdAtMs = head & G_CREATED ? from + r.int("grant.createdAt") : from;
  let recurrence: Recurrence | null = null;
  if (head & G_RECURS) {
    const period = pick(PERIODS, r.u("recurrence.period"), "recurrence.period");
    const anchorMs = r.time(base, "recurrence.anchor");
    recurrence = { period, anchorMs, nextIndex: r.int("recurrence.nextIndex") };
  }
  return {
    id,
    cls: pick(CLASSES, (head >>> 3) & 1, "grant.cls"),
    source: pick(SOURCES, head & 7, "grant.source"),
    amountMicros: amount,
    remainingMicros: amount - spent,
    effectiveFromMs: from,
    expiresAtMs,
    priority,
    createdAtMs,
    recurrence,
  };
}

function readTask(r: Reader, base: number): TaskSummary {
  const fk = r.u("task.feature");
  const feature = pick(FEATURES, Math.floor(fk / 8), "task.feature");
  const kindCode = fk % 8;
  const taskId = r.str("task.id");
  const firstAtMs = r.time(base, "task.first");
  const lastAtMs = firstAtMs + r.int("task.last");
  const costMicros = r.int("task.cost");
  let taskKind: AgentTaskKind | null;
  if (kindCode === NO_KIND) taskKind = null;
  else if (kindCode === KIND_TEXT) taskKind = r.str("task.kind") as AgentTaskKind;
  else taskKind = pick(AGENT_TASK_KINDS, kindCode, "task.kind");
  return { taskId, feature, taskKind, firstAtMs, lastAtMs, costMicros };
}

function readWindow(r: Reader, base: number, what: string): UsageWindow {
  const startMs = r.time(base, `${what}.start`);
  return { startMs, usedMicros: r.int(`${what}.used`) };
}

/** cyrb53 states after each character of the previous id (pairs; index 0: the seeds). */
let idHashStates = hashStates(256);

function hashStates(length: number): Int32Array {
  const states = new Int32Array(length);
  states[0] = HASH53_SEED1;
  states[1] = HASH53_SEED2;
  return states;
}

/** Reads a version 4 (or 3 or 2) body: text from start to end. */
function decodeBody(text: string, start: number, end: number, version: number): MemberState {
  const r = new Reader(text, start, end);
  const userId = r.str("userId");
  const base = r.int("clockMs");
  const tierId = r.str("tier.id");
  const billing = pick(BILLINGS, r.u("tier.billing"), "tier.billing");
  const anchorMs = r.time(base, "tier.anchor");
  const tierGrant = r.u("tier.grant") - 1;
  const tierGrantId = tierGrant < 0 ? r.str("tier.grantId") : null;
  const flags = r.u("flags");
  if (flags >= (version >= STATE_CODEC_VERSION ? 2 * S_EXHAUSTED_NOTIFIED : 2 * S_MIGRATED)) {
    fail("flags are out of range");
  }
  const pendingTierId = flags & S_PENDING ? r.str("tier.pending") : null;
  const cancelAtMs = flags & S_CANCEL ? r.time(base, "tier.cancelAt") : null;
  const debtMicros = r.int("debt");
  const window5h = flags & S_WINDOW_5H ? readWindow(r, base, "window5h") : null;
  const window7d = flags & S_WINDOW_7D ? readWindow(r, base, "window7d") : null;

  const grantCount = r.count("grants");
  const grants: Grant[] = [];
  for (let i = 0; i < grantCount; i++) grants.push(readGrant(r, base));
  let grantId: string;
  if (tierGrantId !== null) grantId = tierGrantId;
  else if (tierGrant < grantCount) grantId = grants[tierGrant]!.id;
  else fail("tier.grant is not held");

  const taskCount = r.count("tasks");
  const recentTasks: TaskSummary[] = [];
  for (let i = 0; i < taskCount; i++) recentTasks.push(readTask(r, base));

  const baseSec = Math.ceil(base / 1000);
  let horizonClockMs = 0;
  let compact = CompactIds.EMPTY;
  if (version >= STATE_CODEC_V3) {
    horizonClockMs = r.time(base, "applied.clock");
    const sortedCount = r.count("applied.compact");
    const tailCount = r.count("applied.tail");
    if (sortedCount + tailCount > 0) {
      const minAtSec = baseSec - r.int("applied.compact.min");
      const sorted = r.chars(sortedCount * RECORD_CHARS, "applied.compact");
      const tail = r.chars(tailCount * RECORD_CHARS, "applied.tail");
      compact = CompactIds.fromText(sorted, tail, minAtSec);
    }
  }
  const idCount = r.count("applied");
  const memory = new MemoryBuilder(idCount);
  // The ids again, to read the answers' entry ids against (a record's entries are `${id}#${i}`).
  const ids: string[] = [];
  let prevId = "";
  // hash53 of every id, continued from the state after the prefix shared with the previous id.
  let states = idHashStates;
  for (let i = 0; i < idCount; i++) {
    const shared = r.u("applied.shared");
    if (shared > prevId.length) fail("applied.shared is out of range");
    const rest = r.chars(r.u("applied.id"), "applied.id");
    const id = shared === 0 ? rest : prevId.slice(0, shared) + rest;
    const fingerprint = r.fingerprint("applied.fingerprint");
    if (2 * id.length + 2 > states.length) states = idHashStates = hashStates(4 * id.length + 2);
    let h1 = states[2 * shared]!;
    let h2 = states[2 * shared + 1]!;
    for (let k = shared; k < id.length; k++) {
      const ch = id.charCodeAt(k);
      h1 = Math.imul(h1 ^ ch, HASH53_M1);
      h2 = Math.imul(h2 ^ ch, HASH53_M2);
      states[2 * k + 2] = h1;
      states[2 * k + 3] = h2;
    }
    const atSec = version >= STATE_CODEC_V3 ? baseSec - r.int("applied.at") : baseSec;
    memory.add(id, finish53(h1, h2), fingerprint, atSec);
    ids.push(id);
    prevId = id;
  }

  let lastTag = -1;
  let prevGrant: string | null = null;
  let prevTask: string | null = null;
  let prevFeature: number = NO_FEATURE;
  let prevBalance = 0;
  while (r.more()) {
    const tag = r.u("answer.tag");
    if (tag <= lastTag || tag >= 2 * idCount) fail("answer.tag is out of order");
    lastTag = tag;
    const at = Math.floor(tag / 2);
    const recordId = ids[at]!;
    if (tag % 2 === 1) {
      const reason = pick(REFUSAL_REASONS, r.u("refusal.reason"), "refusal.reason");
      const field = r.strOrNull("refusal.field");
      memory.setRefusal(at, { reason, field, message: r.str("refusal.message") });
      continue;
    }
    const count = r.count("entries");
    const entries: LedgerEntry[] = [];
    for (let i = 0; i < count; i++) {
      const head = r.u("entry.head");
      if (head >= 2 * E_PROCESSED) fail("entry.head is out of range");
      const kind = pick(KINDS, Math.floor((head & 31) / 3), "entry.kind");
      const clsCode = (head & 31) % 3;
      const cls = clsCode === NO_CLASS ? null : pick(CLASSES, clsCode, "entry.cls");
      const id = head & E_ID ? r.str("entry.id") : `${recordId}#${i}`;
      const grantId: string | null = head & E_GRANT ? r.strOrNull("entry.grantId") : prevGrant;
      const amountMicros = r.int("entry.amount");
      const balanceAfterMicros =
        prevBalance + amountMicros + (head & E_BALANCE ? r.int("entry.balanceAfter") : 0);
      if (!Number.isSafeInteger(balanceAfterMicros)) fail("entry.balanceAfter is out of range");
      const detailMicros = head & E_DETAIL ? r.int("entry.detail") : 0;
      const featureCode = head & E_FEATURE ? r.u("entry.feature") : prevFeature;
      const feature: Feature | null =
        featureCode === NO_FEATURE ? null : pick(FEATURES, featureCode, "entry.feature");
      const taskId: string | null = head & E_TASK ? r.strOrNull("entry.taskId") : prevTask;
      const eventAtMs = r.time(base, "entry.eventAt");
      const processedAtMs = head & E_PROCESSED ? eventAtMs + r.int("entry.processedAt") : eventAtMs;
      if (!Number.isSafeInteger(processedAtMs)) fail("entry.processedAt is out of range");
      entries.push(
        ledgerEntry(
          id,
          kind,
          userId,
          grantId,
          cls,
          amountMicros,
          balanceAfterMicros,
          detailMicros,
          feature,
          taskId,
          eventAtMs,
          processedAtMs,
        ),
      );
      prevGrant = grantId;
      prevTask = taskId;
      prevFeature = featureCode;
      prevBalance = balanceAfterMicros;
    }
    memory.setEntries(at, entries);
  }

  return {
    userId,
    clockMs: base,
    tier: { tierId, billing, anchorMs, grantId, pendingTierId, cancelAtMs },
    grants,
    debtMicros,
    window5h,
    window7d,
    migrated: (flags & S_MIGRATED) !== 0,
    lowCreditNotified: (flags & S_LOW_NOTIFIED) !== 0,
    exhaustedNotified: (flags & S_EXHAUSTED_NOTIFIED) !== 0,
    recentTasks,
    applied: memory.finish(compact, horizonClockMs),
  };
}

/** Reads a state written by encodeState (this version, 3, 2 or 1); throws EngineError(state_invalid) otherwise. */
export function decodeState(text: string): MemberState {
  // The common case: [4,"<body>"] with nothing escaped in the body is the body itself.
  if (
    text.startsWith(HEAD) &&
    text.endsWith(TAIL) &&
    text.indexOf("\\", HEAD.length) < 0 &&
    text.indexOf('"', HEAD.length) === text.length - TAIL.length
  ) {
    return decodeBody(text, HEAD.length, text.length - TAIL.length, STATE_CODEC_VERSION);
  }
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (cause) {
    throw new EngineError("state_invalid", "stored member state is not JSON", [], cause);
  }
  if (!Array.isArray(root)) fail("state is not an array");
  if (root[0] === STATE_CODEC_VERSION || root[0] === STATE_CODEC_V3 || root[0] === STATE_CODEC_V2) {
    if (root.length !== 2 || typeof root[1] !== "string") fail("state is not [version, body]");
    return decodeBody(root[1], 0, root[1].length, root[0]);
  }
  if (root[0] === STATE_CODEC_V1) return decodeStateV1(root);
  return fail(`unknown version ${String(root[0])}`);
}
