/** The optional governance client (seed 004): telemetry, proposals and alerts upstream, governance events downstream, and the canonical proposal digest of specs/governance.md. */
import { create } from '@bufbuild/protobuf';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { Envelope } from './gen/arqon/v1/envelope_pb.js';
import { AlertSchema, ApprovalSchema, ProposalSchema } from './gen/arqon/v1/governance_pb.js';
import type { Alert, Approval, Proposal } from './gen/arqon/v1/governance_pb.js';
import { ArqonError } from './errors.js';
import { concatBytes } from './bytes.js';
import { DOWNSTREAM_BODIES } from './client.js';
import type { Client } from './client.js';

export { AlertSeverity } from './gen/arqon/v1/governance_pb.js';
export type { Alert, Approval, Proposal, Rejection, Enforce, CatalogUpdate, Telemetry } from './gen/arqon/v1/governance_pb.js';

const DOMAIN = new TextEncoder().encode('arqon.proposal.v1\0');
const utf8 = new TextEncoder();

/** An approval that is not for the proposal this data plane sent (seed 004's TOCTOU guard). */
export class DigestMismatch extends ArqonError {}

type Subtle = { digest(algorithm: string, data: Uint8Array): Promise<ArrayBuffer> };

async function subtle(): Promise<Subtle> {
  const global = (globalThis as { crypto?: { subtle?: Subtle } }).crypto?.subtle;
  if (global) return global;
  // Node 18 has WebCrypto only as node:crypto's webcrypto; a non-literal specifier keeps bundlers away.
  const name = 'node:crypto';
  const mod = (await import(/* @vite-ignore */ name)) as { webcrypto: { subtle: Subtle } };
  return mod.webcrypto.subtle;
}

function byteCompare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) {
    if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  }
  return a.length - b.length;
}

/** The canonical form: integers big-endian, strings with a u32 length prefix, params sorted by key
 * bytes, floats by their IEEE-754 bits (independent of the Protobuf encoding). */
export function proposalCanonicalBytes(proposal: MessageInitShape<typeof ProposalSchema>): Uint8Array {
  const p = create(ProposalSchema, proposal);
  const parts: Uint8Array[] = [DOMAIN];
  const u32 = (n: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n);
    parts.push(b);
  };
  const u64 = (n: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, n);
    parts.push(b);
  };
  const f64 = (n: number) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, n);
    parts.push(b);
  };
  const str = (s: string) => {
    const b = utf8.encode(s);
    u32(b.length);
    parts.push(b);
  };
  str(p.id);
  u64(p.timestampUs);
  if (p.variantId === undefined) {
    parts.push(Uint8Array.of(0));
  } else {
    parts.push(Uint8Array.of(1));
    u64(p.variantId);
  }
  const params = Object.entries(p.params)
    .map(([k, v]) => [utf8.encode(k), k, v] as const)
    .sort((a, b) => byteCompare(a[0], b[0]));
  u32(params.length);
  for (const [, key, value] of params) {
    str(key);
    f64(value);
  }
  str(p.reason);
  f64(p.confidence);
  return concatBytes(parts);
}

/** Lower-case hex SHA-256 of the proposal's canonical form (equal to the Rust and Python digests). */
export async function proposalDigest(proposal: MessageInitShape<typeof ProposalSchema>): Promise<string> {
  const hash = new Uint8Array(await (await subtle()).digest('SHA-256', proposalCanonicalBytes(proposal)));
  return [...hash].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Compares two strings in time that depends on their length only. */
function constantTimeEqual(a: string, b: string): boolean {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i += 1) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** Throws DigestMismatch unless `approval` approves exactly `proposal`. */
export async function verifyApproval(
  proposal: MessageInitShape<typeof ProposalSchema>,
  approval: MessageInitShape<typeof ApprovalSchema>,
): Promise<void> {
  const p = create(ProposalSchema, proposal);
  const a = create(ApprovalSchema, approval);
  const expected = await proposalDigest(p);
  const sameDigest = constantTimeEqual(expected, a.proposalDigest);
  if (a.proposalId !== p.id || !sameDigest) {
    throw new DigestMismatch(`approval for '${a.proposalId}' with digest ${a.proposalDigest} does not match proposal '${p.id}' (${expected})`);
  }
}

/** A downstream governance body: what `GovernanceClient.next()` returns. */
export type Downstream = Extract<Envelope['body'], { case: (typeof DOWNSTREAM_BODIES)[number] }>;

/** Governance over an open client: a data plane sends upstream and hears downstream decisions. */
export class GovernanceClient {
  constructor(private readonly client: Client) {}

  /** Sends a metrics digest upstream (data-plane role). */
  async sendTelemetry(nodeId: string, metrics: Record<string, number>, timestampUs: bigint): Promise<void> {
    await this.client.request({ case: 'telemetry', value: { nodeId, metrics, timestampUs } });
  }

  /** Sends a proposal upstream; keep it to check the approval with `verifyApproval`. */
  async sendProposal(proposal: MessageInitShape<typeof ProposalSchema>): Promise<Proposal> {
    const p = create(ProposalSchema, proposal);
    await this.client.request({ case: 'proposal', value: p });
    return p;
  }

  /** Sends an alert upstream. */
  async sendAlert(alert: MessageInitShape<typeof AlertSchema>): Promise<Alert> {
    const a = create(AlertSchema, alert);
    await this.client.request({ case: 'alert', value: a });
    return a;
  }

  /** Sends an Approval, Rejection, Enforce or CatalogUpdate (tier1/operator roles only). */
  async sendDownstream(body: { case: Downstream['case']; value: object }): Promise<void> {
    if (!(DOWNSTREAM_BODIES as readonly string[]).includes(body.case)) {
      throw new TypeError('sendDownstream takes approval, rejection, enforce or catalogUpdate');
    }
    await this.client.request(body);
  }

  /** The next downstream body (approval, rejection, enforce, catalogUpdate), waiting at most `timeoutMs`. */
  async next(timeoutMs?: number): Promise<Downstream> {
    return (await this.client.nextGovernance(timeoutMs)).body as Downstream;
  }

  /** Downstream bodies until the client closes. */
  async *events(): AsyncIterable<Downstream> {
    for await (const envelope of this.client.governanceEvents()) yield envelope.body as Downstream;
  }

  /** Resolves with `approval` when it approves `proposal` (digest verified), else throws DigestMismatch. */
  async verify(proposal: Proposal, approval: Approval): Promise<Approval> {
    await verifyApproval(proposal, approval);
    return approval;
  }
}
