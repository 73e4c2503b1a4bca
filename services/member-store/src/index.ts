// @creditflow/member-store: the Redis layout of members, known here only (key space, hash fields,
// the atomic CAS write, the outbox, the deadline index) and the read model the readers use. The
// only public door of the package.
import type { MemberStoreError } from "./errors.ts";

export {
  MEMBER_STORE_ERROR_CODES,
  MemberStoreError,
} from "./errors.ts";
/** A code of MEMBER_STORE_ERROR_CODES. */
export type MemberStoreErrorCode = MemberStoreError["code"];
export { type KeySpace, keySpace, type MemberKeys, offsetField } from "./keys.ts";
export {
  deleteKeysUnder,
  MemberReader,
  type MemberSnapshot,
  type StoredState,
  seedMembers,
} from "./read.ts";
export {
  connectRedis,
  isCluster,
  parseClusterNodes,
  type Redirection,
  type RedisClient,
  type RedisTarget,
} from "./route.ts";
export {
  type DeadlineItem,
  decodeStoredState,
  type EncodeLedgerEntry,
  type LoadedMember,
  MemberStore,
  type MemberStoreLimits,
  type MemberWrite,
  type OutboxEntry,
  type OutboxField,
  outboxEntries,
  outboxValues,
  type WriteResult,
} from "./store.ts";
