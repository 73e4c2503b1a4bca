// `creditflow`: admin and operator commands. Parsing by commander; every command has --help.
// Stack commands run the scripts of deploy/local; credit commands go to Kafka like the admin API.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { rebuildRedis } from "@creditflow/history";
import { Command, InvalidArgumentError } from "commander";
import { newCommandId, printBalance, sendCommand, tailLedger } from "./commands.ts";
import { creditsToMicros } from "./format.ts";
import { loadSettings } from "./settings.ts";
import { initSystem, memberToken, seedDemo } from "./system.ts";

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
const DAY_MS = 86_400_000;

function runScript(script: string, args: string[] = []): never {
  const r = spawnSync("bash", [`${repoRoot}/deploy/local/${script}`, ...args], {
    stdio: "inherit",
  });
  process.exit(r.status ?? 1);
}

function positiveInt(field: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n <= 0)
      throw new InvalidArgumentError(`${field} must be a whole number > 0`);
    return n;
  };
}

function usesMap(value: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of value.split(",")) {
    const [name, count] = part.split("=");
    const n = Number(count);
    if (!name || !Number.isSafeInteger(n) || n < 0) {
      throw new InvalidArgumentError(`--uses: "${part}" is not quota=count (e.g. agent=20,ppt=3)`);
    }
    out[name] = n;
  }
  return out;
}

const program = new Command("creditflow")
  .description("creditflow: unified credits for every feature (admin and operator commands)")
  .showHelpAfterError();

program
  .command("up")
  .description("start the local stack and the services; wait for health")
  .action(() => runScript("up"));
program
  .command("down")
  .description("stop everything this project started")
  .action(() => runScript("down"));
program
  .command("status")
  .description("what runs where, and its memory")
  .option("--env", "print the client settings instead")
  .action((o: { env?: boolean }) => runScript("status", o.env ? ["--env"] : []));

program
  .command("grant")
  .description("grant bonus credits to a member (a credit command through Kafka)")
  .argument("<user>", "member id")
  .requiredOption("--credits <n>", "credits to grant (up to 6 decimals)")
  .option("--days <n>", "days until the unspent remainder expires", positiveInt("--days"), 30)
  .option("--source <source>", "trial | promotion | purchase | adjustment", "promotion")
  .option("--campaign <name>", "campaign, for analysts")
  .option("--id <id>", "command id (a retry with the same id changes nothing)")
  .action(
    async (
      user: string,
      o: { credits: string; days: number; source: string; campaign?: string; id?: string },
    ) => {
      if (!["trial", "promotion", "purchase", "adjustment"].includes(o.source)) {
        throw new InvalidArgumentError(
          `--source: "${o.source}" is not trial, promotion, purchase or adjustment`,
        );
      }
      const now = Date.now();
      await sendCommand(
        loadSettings(),
        {
          type: "grant_bonus",
          id: o.id ?? newCommandId("grant"),
          userId: user,
          atMs: now,
          source: o.source as "promotion",
          amountMicros: creditsToMicros(o.credits, "--credits"),
          effectiveFromMs: now,
          expiresAtMs: now + o.days * DAY_MS,
          priority: 0,
          recurrence: null,
        },
        o.campaign ?? null,
      );
    },
  );

program
  .command("subscribe")
  .description("start a paid subscription, or change its tier (--change) or cancel it (--cancel)")
  .argument("<user>", "member id")
  .option("--tier <tier>", "tier id of deploy/config/plans.json")
  .option("--annual", "annual billing (credits still reset monthly)")
  .option("--change", "change the tier of a running subscription")
  .option("--cancel", "cancel at the end of the paid cycle")
  .option("--id <id>", "command id")
  .action(
    async (
      user: string,
      o: { tier?: string; annual?: boolean; change?: boolean; cancel?: boolean; id?: string },
    ) => {
      const base = { id: o.id ?? newCommandId("subscription"), userId: user, atMs: Date.now() };
      if (o.cancel) return sendCommand(loadSettings(), { ...base, type: "subscription_cancel" });
      if (!o.tier)
        throw new InvalidArgumentError("--tier is required to start or change a subscription");
      if (o.change)
        return sendCommand(loadSettings(), {
          ...base,
          type: "subscription_change",
          tierId: o.tier,
        });
      return sendCommand(loadSettings(), {
        ...base,
        type: "subscription_start",
        tierId: o.tier,
        billing: o.annual ? "annual" : "monthly",
      });
    },
  );

program
  .command("migrate")
  .description("convert a member's unused legacy per-feature uses into credits (once per member)")
  .argument("<user>", "member id")
  .requiredOption("--uses <list>", "quota=count pairs, e.g. agent=20,ppt=3", usesMap)
  .option("--id <id>", "command id")
  .action(async (user: string, o: { uses: Record<string, number>; id?: string }) => {
    await sendCommand(loadSettings(), {
      type: "migrate_legacy",
      id: o.id ?? `migrate-${user}`,
      userId: user,
      atMs: Date.now(),
      unusedUses: o.uses,
    });
  });

program
  .command("balance")
  .description("a member's balance as the consumer holds it in Redis")
  .argument("<user>", "member id")
  .option("--json", "print the balance view as JSON")
  .action(async (user: string, o: { json?: boolean }) => {
    process.exitCode = await printBalance(loadSettings(), user, o.json === true);
  });

program
  .command("tail")
  .description("follow a member's ledger entries live")
  .argument("<user>", "member id")
  .option("--from-beginning", "print the member's whole ledger first")
  .action(async (user: string, o: { fromBeginning?: boolean }) => {
    await tailLedger(loadSettings(), user, o.fromBeginning === true);
  });

program
  .command("init")
  .description("create the topics, register the Avro schemas, migrate ClickHouse (idempotent)")
  .option("--partitions <n>", "partitions per topic", positiveInt("--partitions"), 12)
  .action(async (o: { partitions: number }) => {
    await initSystem(loadSettings(), o.partitions);
  });

program
  .command("seed")
  .description("seed the demo members (grants, subscriptions, migration, usage) through Kafka")
  .action(async () => {
    await seedDemo(loadSettings());
  });

program
  .command("token")
  .description("print a member token (HS256 JWT signed with CF_JWT_SECRET) for the page and API")
  .argument("<user>", "member id")
  .option("--ttl <seconds>", "lifetime", positiveInt("--ttl"), 7 * 86_400)
  .action(async (user: string, o: { ttl: number }) => {
    const secret = process.env.CF_JWT_SECRET;
    if (!secret)
      throw new InvalidArgumentError(
        "CF_JWT_SECRET is not set (./creditflow up writes .state/secrets.env)",
      );
    console.log(await memberToken(secret, user, o.ttl));
  });

program
  .command("rebuild-redis")
  .description(
    "rebuild members absent from Redis by replaying Kafka at the ledger's times (stop the consumers first)",
  )
  .option(
    "--group <id>",
    "the consumer group whose committed offsets say what was applied",
    process.env.CF_CONSUMER_GROUP ?? "creditflow-consumer",
  )
  .action(async (o: { group: string }) => {
    const settings = loadSettings();
    // cli-progress ships no types: the two members used here, typed by hand.
    const { Presets, SingleBar } = createRequire(import.meta.url)("cli-progress") as {
      Presets: { shades_classic: object };
      SingleBar: new (
        options: object,
        preset: object,
      ) => {
        start(total: number, value: number): void;
        update(value: number): void;
        stop(): void;
      };
    };
    const bar = process.stderr.isTTY
      ? new SingleBar(
          { format: "rebuild [{bar}] {value}/{total} members", stream: process.stderr },
          Presets.shades_classic,
        )
      : null;
    let started = false;
    const summary = await rebuildRedis({
      ...settings,
      consumerGroupId: o.group,
      config: settings.engine,
      onProgress: (done, total) => {
        if (bar === null) return;
        if (!started) bar.start(total, 0);
        started = true;
        bar.update(done);
      },
    });
    bar?.stop();
    const s = summary;
    console.log(
      `members ${s.members} (written ${s.written}, already present ${s.present}), ` +
        `records replayed ${s.recordsReplayed}, sweeps ${s.timeSteps}, ` +
        `left to the consumer ${s.leftToConsumer}, entries owed to the ledger ${s.owedEntries}, ` +
        `dead letters skipped ${s.deadLetters}, ${s.seconds.toFixed(1)} s, mismatches ${s.mismatches.length}`,
    );
    const first = s.mismatches[0];
    if (first !== undefined) {
      console.error(
        `creditflow: rebuild mismatch: member ${first.userId}, field ${first.field}: ${first.detail}` +
          " (mismatched members were not written)",
      );
      process.exitCode = 1;
    }
  });

await program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(`creditflow: ${(error as Error).message}`);
  process.exit(2);
});
