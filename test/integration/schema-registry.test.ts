// Goal: show that the stack's schema registry (Apicurio Registry 3, Confluent-compatible API at
// /apis/ccompat/v7) serves @kafkajs/confluent-schema-registry as creditflow uses it: register an
// Avro schema, find the latest id, encode and decode in the Confluent wire format (magic byte 0,
// big-endian int32 schema id, Avro body), accept a BACKWARD-compatible change and refuse an
// incompatible one through the registry's global compatibility rule.

import { COMPATIBILITY, SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import { describe, expect, it } from "vitest";
import { fixture } from "../support/fixture.ts";

const { iso, urls } = fixture(import.meta.url);
const registry = new SchemaRegistry({ host: urls.schemaRegistryUrl });

function usageSchema(extraFields: object[] = []): string {
  return JSON.stringify({
    type: "record",
    name: "Usage",
    namespace: "creditflow.test",
    fields: [
      { name: "eventId", type: "string" },
      { name: "userId", type: "string" },
      { name: "inputTokens", type: "long" },
      ...extraFields,
    ],
  });
}

/** A GET on the registry's Confluent API, bypassing the client library. */
async function registryGet(path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${urls.schemaRegistryUrl}${path}`, {
    headers: { accept: "application/vnd.schemaregistry.v1+json" },
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

describe("schema registry through @kafkajs/confluent-schema-registry", () => {
  it("applies BACKWARD compatibility globally", async () => {
    const global = await registryGet("/config");
    expect(global.status).toBe(200);
    expect(global.body).toMatchObject({ compatibilityLevel: "BACKWARD" });
  });

  it("registers an Avro schema and round-trips a record in the Confluent wire format", async () => {
    const subject = `${iso.topic("usage")}-value`;
    const { id } = await registry.register(
      { type: SchemaType.AVRO, schema: usageSchema() },
      { subject, compatibility: COMPATIBILITY.BACKWARD },
    );
    expect(id).toBeGreaterThan(0);
    expect(await registry.getLatestSchemaId(subject)).toBe(id);

    // Registering the same schema again is idempotent: same id.
    const again = await registry.register(
      { type: SchemaType.AVRO, schema: usageSchema() },
      { subject },
    );
    expect(again.id).toBe(id);

    const record = { eventId: "e-1", userId: "u-1", inputTokens: 1234 };
    const bytes = await registry.encode(id, record);
    expect(bytes[0]).toBe(0);
    expect(bytes.readInt32BE(1)).toBe(id);
    expect(bytes.length).toBeGreaterThan(5);

    // A fresh client (empty cache) decodes by fetching the schema by id from the registry.
    const fresh = new SchemaRegistry({ host: urls.schemaRegistryUrl });
    expect(await fresh.decode(bytes)).toEqual(record);
  });

  it("accepts a BACKWARD-compatible change and refuses an incompatible one", async () => {
    const subject = `${iso.topic("evolve")}-value`;
    // updateConfig: false keeps the subject without a rule of its own: only the global rule applies.
    const v1 = await registry.register(
      { type: SchemaType.AVRO, schema: usageSchema() },
      { subject, updateConfig: false },
    );

    // New optional field with a default: readers of v2 can read v1 data. Accepted.
    const v2 = await registry.register(
      {
        type: SchemaType.AVRO,
        schema: usageSchema([{ name: "cachedTokens", type: "long", default: 0 }]),
      },
      { subject, updateConfig: false },
    );
    expect(v2.id).not.toBe(v1.id);
    expect(await registry.getLatestSchemaId(subject)).toBe(v2.id);

    // v1 data decodes with v1; the wire id says which schema wrote it.
    const oldBytes = await registry.encode(v1.id, {
      eventId: "e-2",
      userId: "u-2",
      inputTokens: 5,
    });
    expect(await registry.decode(oldBytes)).toEqual({
      eventId: "e-2",
      userId: "u-2",
      inputTokens: 5,
    });

    // New required field without a default: v3 readers cannot read v2 data. Refused (409).
    const incompatible = registry.register(
      {
        type: SchemaType.AVRO,
        schema: usageSchema([
          { name: "cachedTokens", type: "long", default: 0 },
          { name: "featureId", type: "string" },
        ]),
      },
      { subject, updateConfig: false },
    );
    await expect(incompatible).rejects.toMatchObject({ status: 409 });
    expect(await registry.getLatestSchemaId(subject)).toBe(v2.id);

    const versions = await registryGet(`/subjects/${encodeURIComponent(subject)}/versions`);
    expect(versions.body).toEqual([1, 2]);
  });
});
