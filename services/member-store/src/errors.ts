// The one error class of the member store, with a closed list of codes: infrastructure failures
// (Redis did not answer) and stored data that does not read back, each saying whether a retry may
// help. A CAS that finds another version is not an error: it is a write's result.
import { CreditflowError, errorCodes } from "@creditflow/engine";

export const MEMBER_STORE_ERROR_CODES = errorCodes({
  redis_failed: { retryable: true, doc: "Redis did not answer or refused a script (cause kept)" },
  replicas_behind: {
    retryable: true,
    doc: "fewer replicas than minReplicaAcks acknowledged a write in replicaAckTimeoutMs",
  },
  invalid_target: {
    retryable: false,
    doc: "redisUrl / redisClusterNodes missing, both set, or a node not host:port",
  },
  state_corrupt: {
    retryable: false,
    doc: "a member's stored state or outbox entry does not decode",
  },
});

export class MemberStoreError extends CreditflowError.withCodes(MEMBER_STORE_ERROR_CODES) {}
