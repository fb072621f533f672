// The TypeScript proposal digest equals the Rust one (specs/governance.md), and approvals are verified (AC-SDKTS-11).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DigestMismatch, proposalDigest, verifyApproval } from '../../src/governance.js';

// The value arqon-core's `digest_is_canonical` test pins for the same proposal (also in sdk/python/tests/test_digest.py).
const RUST_DIGEST = 'fe79107d8b0882835ccefb1d3898d4c43c698d1f88e744039617fe60e4316846';

const proposal = () => ({
  id: 'prop_001',
  timestampUs: 1_700_000_000_000_000n,
  variantId: 42n,
  params: { beta: 2.0, alpha: 0.5 },
  reason: 'Latency regression detected',
  confidence: 0.92,
});

test('AC-SDKTS-11: the digest equals the Rust implementation', async () => {
  assert.equal(await proposalDigest(proposal()), RUST_DIGEST);
});

test('AC-SDKTS-11: the digest changes with every field', async () => {
  const changes = [
    { id: 'prop_002' },
    { timestampUs: 1_700_000_000_000_001n },
    { variantId: undefined },
    { params: { beta: 2.0, alpha: 0.6 } },
    { reason: 'other' },
    { confidence: 0.93 },
  ];
  for (const change of changes) assert.notEqual(await proposalDigest({ ...proposal(), ...change }), RUST_DIGEST, JSON.stringify(Object.keys(change)));
});

test('AC-SDKTS-11: verifyApproval refuses a tampered digest or another proposal', async () => {
  await verifyApproval(proposal(), { proposalId: 'prop_001', proposalDigest: RUST_DIGEST });
  await assert.rejects(verifyApproval(proposal(), { proposalId: 'prop_001', proposalDigest: '00'.repeat(32) }), DigestMismatch);
  await assert.rejects(verifyApproval(proposal(), { proposalId: 'prop_999', proposalDigest: RUST_DIGEST }), DigestMismatch);
});
