// Avro through the schema registry: registers our schemas under their subjects (the
// registry's global BACKWARD rule decides what may change), caches the ids, and encodes and
// decodes in the Confluent wire format. Decoding classifies what is wrong with a record so the
// consumer can dead-letter it with a reason.
import {
  avroOptions,
  creditCommandSchema,
  frameWire,
  ledgerEntrySchema,
  type TopicNames,
  unframeWire,
  usageEventSchema,
  valueSubject,
  WIRE_HEADER_BYTES,
} from "@creditflow/contracts";
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import avro from "avsc";
import { KafkaError } from "./errors.ts";

/** Size of one encoding slab: records are views into it, so it lives as long as they do. */
const SLAB_BYTES = 64 * 1024;

/** Bound on one registry request. */
const REGISTRY_TIMEOUT_MS = 10_000;

export type RecordKind = "usage" | "command" | "ledger";

const schemaOf = {
  usage: usageEventSchema,
  command: creditCommandSchema,
  ledger: ledgerEntrySchema,
} as const;

export type DecodeResult =
  | { ok: true; schemaId: number; value: unknown }
  | { ok: false; reason: "bad_frame" | "unknown_schema" | "undecodable"; detail: string };

export class AvroCodec {
  readonly registry: SchemaRegistry;
  private readonly baseUrl: string;
  private readonly ids = new Map<RecordKind, number>();
  /** Encoded records are views into this slab; a full slab is replaced, never reused. */
  private slab = Buffer.allocUnsafe(SLAB_BYTES);
  private slabPos = 0;
  /** Writer schemas by id, fetched from the registry once each. */
  private readonly writers = new Map<number, avro.Type>();
  /** Resolvers from a writer schema to our reader schema, by `${kind}:${schemaId}`. */
  private readonly resolvers = new Map<string, avro.Resolver>();

  constructor(schemaRegistryUrl: string) {
    this.baseUrl = schemaRegistryUrl.replace(/\/+$/, "");
    // Only the registry's HTTP side is used here; we parse writer schemas ourselves, because the
    // library reuses one avsc options object and then refuses a second version of a name.
    this.registry = new SchemaRegistry({ host: this.baseUrl });
  }

  /** Register (or find) the schema of each kind under its topic's subject. Idempotent. */
  async register(topics: TopicNames, kinds: RecordKind[]): Promise<void> {
    const topicOf = { usage: topics.usage, command: topics.commands, ledger: topics.ledger };
    for (const kind of kinds) {
      try {
        const { id } = await this.registry.register(
          { type: SchemaType.AVRO, schema: schemaOf[kind].raw },
          { subject: valueSubject(topicOf[kind]), updateConfig: false },
        );
        this.ids.set(kind, id);
        this.writers.set(id, schemaOf[kind].type);
      } catch (cause) {
        throw new KafkaError("registry_failed", `could not register the ${kind} schema`, { cause });
      }
    }
  }

  /** The writer schema of an id, parsed by us (fresh avsc options); null when the id is unknown. */
  private async fetchWriter(schemaId: number): Promise<avro.Type | null> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}/schemas/ids/${schemaId}`, {
        signal: AbortSignal.timeout(REGISTRY_TIMEOUT_MS),
      });
    } catch (cause) {
      throw new KafkaError("registry_failed", `could not fetch schema ${schemaId}`, { cause });
    }
    if (response.status === 404) return null;
    if (!response.ok) {
      throw new KafkaError(
        "registry_failed",
        `registry answered ${response.status} for schema ${schemaId}`,
      );
    }
    const body = (await response.json()) as { schema: string; schemaType?: string };
    if (body.schemaType !== undefined && body.schemaType !== "AVRO") return null;
    return avro.Type.forSchema(JSON.parse(body.schema), avroOptions());
  }

  schemaId(kind: RecordKind): number {
    const id = this.ids.get(kind);
    if (id === undefined) throw new Error(`assertion: the ${kind} schema was not registered`);
    return id;
  }

  /** Encode a record of a registered kind (the caller has validated it). */
  encode(kind: RecordKind, record: unknown): Buffer {
    const schemaId = this.schemaId(kind);
    const type = schemaOf[kind].type;
    // Encode straight into a shared slab after a Confluent header: one view per record, no
    // per-record allocation or copy. A record that does not fit the rest of the slab takes a
    // fresh slab (or, if larger than a slab, its own buffer).
    if (this.slab.length - this.slabPos < WIRE_HEADER_BYTES + 16) this.newSlab();
    let start = this.slabPos;
    let end = type.encode(record, this.slab, start + WIRE_HEADER_BYTES);
    if (end < 0) {
      this.newSlab();
      start = 0;
      end = type.encode(record, this.slab, WIRE_HEADER_BYTES);
      if (end < 0) return frameWire(schemaId, type.toBuffer(record));
    }
    this.slab.writeUInt8(0, start);
    this.slab.writeInt32BE(schemaId, start + 1);
    this.slabPos = end;
    return this.slab.subarray(start, end);
  }

  private newSlab(): void {
    this.slab = Buffer.allocUnsafe(SLAB_BYTES);
    this.slabPos = 0;
  }

  /**
   * Decode bytes written with any registered schema of the subject and read them as our
   * current schema of `kind` (Avro schema resolution: old writers stay readable).
   */
  async decode(kind: RecordKind, bytes: Buffer | null): Promise<DecodeResult> {
    const known = this.decodeKnown(kind, bytes);
    if (known !== null) return known;
    // decodeKnown answers for every frame it can read: only an unseen schema id reaches here.
    const schemaId = (unframeWire(bytes) as { schemaId: number }).schemaId;
    const fetched = await this.fetchWriter(schemaId);
    if (fetched === null) {
      return {
        ok: false,
        reason: "unknown_schema",
        detail: `schema id ${schemaId} is not in the registry`,
      };
    }
    this.writers.set(schemaId, fetched);
    return this.decodeKnown(kind, bytes)!;
  }

  /**
   * decode without a promise, for the hot path: answers when the bytes are not a frame or were
   * written with a schema this codec already holds; null when the writer schema must first be
   * fetched from the registry (then call decode).
   */
  decodeKnown(kind: RecordKind, bytes: Buffer | null): DecodeResult | null {
    const frame = unframeWire(bytes);
    if (!frame.ok) {
      return { ok: false, reason: "bad_frame", detail: `${frame.reason}: ${frame.detail}` };
    }
    const writer = this.writers.get(frame.schemaId);
    if (writer === undefined) return null;
    const reader = schemaOf[kind].type;
    try {
      if (writer === reader) {
        return { ok: true, schemaId: frame.schemaId, value: reader.fromBuffer(frame.body) };
      }
      // A resolver is costly to build (more than the decode itself): one per writer and kind.
      const key = `${kind}:${frame.schemaId}`;
      let resolver = this.resolvers.get(key);
      if (resolver === undefined) {
        resolver = reader.createResolver(writer);
        this.resolvers.set(key, resolver);
      }
      return { ok: true, schemaId: frame.schemaId, value: reader.fromBuffer(frame.body, resolver) };
    } catch (error) {
      return { ok: false, reason: "undecodable", detail: (error as Error).message.slice(0, 300) };
    }
  }
}
