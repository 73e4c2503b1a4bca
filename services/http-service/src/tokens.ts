// Named bearer credentials of an HTTP service (the API's service and admin tokens, the ingest's
// service tokens): the `name:secret,…` format of their environment variables, and the start-up
// check that makes them safe to match: well-formed unique names, long and distinct secrets.
import { createHash } from "node:crypto";
import type { OptionError } from "@creditflow/engine";

/** A credential: its name is the caller's subject (rate limits, audit trail, events' service). */
export interface NamedToken {
  name: string;
  secret: string;
}

/** The service's start-up failure (ApiOptionError, IngestOptionError), thrown naming the field. */
export type OptionErrorClass = new (field: string, message: string) => OptionError;

/** Names are recorded as subjects and as the events' service: 1 to 64 of a safe alphabet. */
const TOKEN_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** Secrets shorter than this are guessable; longer than the max is a configuration mistake. */
export const MIN_SECRET_LENGTH = 16;
export const MAX_SECRET_LENGTH = 512;

const digestOf = (secret: string) => createHash("sha256").update(secret).digest("hex");

/**
 * parseNamedTokens("billing:s3cret,ops:other", "serviceTokens", ApiOptionError): the credentials
 * of a `name:secret,…` variable (a secret may hold `:`); a pair without a name is refused as
 * `<field>.<index>`. Unset or blank: none.
 */
export function parseNamedTokens(
  raw: string | undefined,
  field: string,
  Refusal: OptionErrorClass,
): NamedToken[] {
  if (raw === undefined || raw.trim() === "") return [];
  return raw.split(",").map((pair, i) => {
    const colon = pair.indexOf(":");
    if (colon <= 0) throw new Refusal(`${field}.${i}`, "expected name:secret");
    return { name: pair.slice(0, colon).trim(), secret: pair.slice(colon + 1).trim() };
  });
}

/**
 * Checks a service's credentials together, each named by its field (`serviceTokens.0`): at most
 * `maxTokens` of them (refused as `tokens`), names well-formed and unique, secrets
 * MIN_SECRET_LENGTH to MAX_SECRET_LENGTH characters and distinct from each other and from
 * `otherSecrets` (the API's member-token key). The first failure throws `Refusal`.
 */
export function checkNamedTokens(
  tokens: readonly { token: NamedToken; field: string }[],
  limits: { maxTokens: number; otherSecrets?: readonly string[] },
  Refusal: OptionErrorClass,
): void {
  if (tokens.length > limits.maxTokens) {
    throw new Refusal("tokens", `at most ${limits.maxTokens} tokens`);
  }
  const names = new Set<string>();
  const secrets = new Set<string>((limits.otherSecrets ?? []).map(digestOf));
  for (const { token: t, field } of tokens) {
    if (typeof t.name !== "string" || !TOKEN_NAME.test(t.name)) {
      throw new Refusal(`${field}.name`, "1 to 64 characters of [A-Za-z0-9._-]");
    }
    if (
      typeof t.secret !== "string" ||
      t.secret.length < MIN_SECRET_LENGTH ||
      t.secret.length > MAX_SECRET_LENGTH
    ) {
      throw new Refusal(
        `${field}.secret`,
        `${MIN_SECRET_LENGTH} to ${MAX_SECRET_LENGTH} characters`,
      );
    }
    if (names.has(t.name)) throw new Refusal(`${field}.name`, "names must be unique");
    const digest = digestOf(t.secret);
    if (secrets.has(digest)) throw new Refusal(`${field}.secret`, "secrets must be distinct");
    names.add(t.name);
    secrets.add(digest);
  }
}
