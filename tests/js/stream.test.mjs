// static/js/stream.js, the part of the reader page that decides order and sequencing, run
// against tests/fixtures/stream.json (whose `order` cases the server's own rendering is
// held to as well, by tests/test_update_order.py). Run with `node --test tests/js`.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import test from 'node:test';

import { Sequence, comesBefore } from '../../static/js/stream.js';

const fixtures = JSON.parse(readFileSync(new URL('../fixtures/stream.json', import.meta.url)));
const SLUG = 'the-story';

for (const { name, oldest_first: oldestFirst, updates, expected } of fixtures.order) {
  test(`order: ${name}`, () => {
    const sorted = [...updates].sort((a, b) => (comesBefore(a, b, oldestFirst) ? -1 : 1));
    assert.deepEqual(
      sorted.map((update) => update.id),
      expected,
    );
    // Inserted one at a time before the first it comes before, as reader.js places a live
    // update, the same order results whatever order they arrive in.
    for (const arrival of [updates, [...updates].reverse()]) {
      const shown = [];
      for (const update of arrival) {
        const next = shown.findIndex((other) => comesBefore(update, other, oldestFirst));
        shown.splice(next === -1 ? shown.length : next, 0, update);
      }
      assert.deepEqual(
        shown.map((update) => update.id),
        expected,
      );
    }
  });
}

for (const { name, start, known, deliveries, applied, waiting } of fixtures.sequence) {
  test(`sequence: ${name}`, () => {
    const sequence = new Sequence(SLUG, start);
    if (known !== undefined) sequence.know(known);
    deliveries.forEach(([seq, article = SLUG], index) => {
      const got = [];
      sequence.receive({ article, seq, type: 'created' }, (change) => got.push(change.seq));
      assert.deepEqual(got, applied[index], `after delivering ${seq}`);
    });
    const last = Math.max(start, ...applied.flat());
    assert.equal(sequence.lastSeq, last);
    assert.equal(sequence.waiting, waiting);
  });
}
