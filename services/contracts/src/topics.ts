// Topic names, partition counts and schema-registry subjects: named once, here.
// Subjects follow the Confluent TopicNameStrategy (`<topic>-value`).

export interface TopicNames {
  /** token-usage events from feature services, keyed by userId */
  usage: string;
  /** credit commands from billing and admin (grants, subscriptions, …), keyed by userId */
  commands: string;
  /** ledger entries produced by the deduction consumer, keyed by userId */
  ledger: string;
  /** records that could not be decoded or validated, with the reason in headers */
  deadLetters: string;
}

/** topicNames(prefix): the topics of one deployment; tests pass a prefix of their own. */
export function topicNames(prefix = "creditflow"): TopicNames {
  return {
    usage: `${prefix}.usage.v1`,
    commands: `${prefix}.commands.v1`,
    ledger: `${prefix}.ledger.v1`,
    deadLetters: `${prefix}.dead-letters.v1`,
  };
}

/** The subject under which a topic's value schema is registered. */
export function valueSubject(topic: string): string {
  return `${topic}-value`;
}

/**
 * Partitions per topic. Usage, commands and ledger share one count so a user's records sit
 * at the same partition number in each (keyed by userId with the same partitioner).
 */
export const DEFAULT_PARTITIONS = 12;
