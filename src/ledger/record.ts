import type { AuditEvent, PostRecord } from '../domain/state.js';

export { POST_STATES, type AuditEvent, type FailReason, type PostRecord, type PostState } from '../domain/state.js';

/** The stored form: the record as JSON, its audit trail inside it. */
export interface StoredRecord extends Omit<PostRecord, 'keyId'> {
  readonly trail: AuditEvent[];
}

/** Build a record from its stored JSON; undefined for a missing key. */
export function parseRecord(keyId: string, raw: string | null | undefined): PostRecord | undefined {
  const stored = parseStored(raw);
  if (!stored) return undefined;
  const { trail: _trail, ...rest } = stored;
  return { keyId, ...rest };
}

export function parseStored(raw: string | null | undefined): StoredRecord | undefined {
  if (!raw) return undefined;
  const stored = JSON.parse(raw) as StoredRecord;
  return stored.state ? stored : undefined;
}
