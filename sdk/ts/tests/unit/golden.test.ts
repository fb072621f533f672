// The golden vectors in golden/vectors decode and re-encode byte for byte in TypeScript, like the Rust and Python code (AC-SDKTS-2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { equals, fromBinary, fromJson, toBinary, toJson } from '@bufbuild/protobuf';
import type { JsonValue } from '@bufbuild/protobuf';
import { EnvelopeSchema } from '../../src/gen/arqon/v1/envelope_pb.js';
import { ROOT } from '../helpers/paths.js';

const DIR = join(ROOT, 'golden/vectors');
/** Every vector in the directory: enumerated, never a hard-coded list. */
const VECTORS = readdirSync(DIR)
  .filter((name) => name.endsWith('.snap'))
  .sort();

interface Vector {
  name: string;
  body: string;
  hex: string;
  json: JsonValue;
}

/** An insta snapshot: a header between two `---` lines, then one JSON document. */
function load(name: string): Vector {
  const text = readFileSync(join(DIR, name), 'utf8');
  const parts = text.split('---\n');
  assert.ok(parts.length >= 3, `${name} is not an insta snapshot`);
  return JSON.parse(parts.slice(2).join('---\n')) as Vector;
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
/** The oneof member names as the vectors spell them (snake_case), e.g. presenceUpdate -> presence_update. */
const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

test('AC-SDKTS-2: there are vectors, and one for every Envelope body', () => {
  assert.ok(VECTORS.length >= 30, `only ${VECTORS.length} vectors in ${DIR}`);
  const bodies = new Set(VECTORS.map((name) => load(name).body));
  const oneof = EnvelopeSchema.oneofs.find((o) => o.name === 'body');
  assert.ok(oneof);
  const missing = oneof.fields.map((f) => f.name).filter((name) => !bodies.has(name));
  assert.deepEqual(missing, [], `bodies without a vector: ${missing.join(', ')}`);
});

for (const name of VECTORS) {
  test(`AC-SDKTS-2: ${name} round-trips byte for byte`, () => {
    const doc = load(name);
    const wire = Uint8Array.from(Buffer.from(doc.hex, 'hex'));
    const decoded = fromBinary(EnvelopeSchema, wire);
    assert.equal(snake(decoded.body.case ?? ''), doc.body);
    assert.equal(hex(toBinary(EnvelopeSchema, decoded)), doc.hex, 'decode then encode');
    assert.deepEqual(toJson(EnvelopeSchema, decoded), doc.json, 'decoded equals the canonical JSON');
    const built = fromJson(EnvelopeSchema, doc.json);
    assert.ok(equals(EnvelopeSchema, built, decoded), 'the JSON builds the same message');
    assert.equal(hex(toBinary(EnvelopeSchema, built)), doc.hex, 'the JSON encodes to the same bytes');
  });
}

test('AC-SDKTS-2: a flipped bit is detected', () => {
  for (const name of VECTORS) {
    const doc = load(name);
    const wire = Uint8Array.from(Buffer.from(doc.hex, 'hex'));
    const at = Math.floor(wire.length / 2);
    wire[at] = (wire[at] as number) ^ 0x01;
    let decoded;
    try {
      decoded = fromBinary(EnvelopeSchema, wire);
    } catch {
      continue; // refusing to decode is a detection too
    }
    // As the Rust check (golden_vectors.rs `verify`): the decoded message differs, or it does not
    // re-encode to the flipped bytes (protobuf-es reads a scalar whatever its tag's wire type says,
    // so a bit flipped in batch.snap's `offset` tag decodes to the same message).
    const unchanged = equals(EnvelopeSchema, decoded, fromJson(EnvelopeSchema, doc.json)) && hex(toBinary(EnvelopeSchema, decoded)) === hex(wire);
    assert.ok(!unchanged, `${name}: a flipped bit went unnoticed`);
  }
});
