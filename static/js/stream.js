'use strict';
// What a story page's live stream decides without looking at the page: the order of its
// updates, and which changes may be applied when. reader.js does the rest (the page itself);
// tests/js/stream.test.mjs runs this file in Node against tests/fixtures/stream.json.

// Whether update `a` is shown before `b` (each {pinned, published, id}; `published` an ISO
// time): pinned first, then newest first, or oldest first on such pages. The server
// renders the same order (liveblog/models.py), so an update arriving live lands where a
// fresh load of the page would put it.
export const comesBefore = (a, b, oldestFirst = false) => {
  if (a.pinned !== b.pinned) return a.pinned;
  const newer = a.published !== b.published ? a.published > b.published : a.id > b.id;
  return oldestFirst ? !newer : newer;
};

// A story's changes, applied in seq order and each exactly once, whatever order they come
// in and however often (the socket, a catch-up and the changes API may all deliver one).
export class Sequence {
  constructor(slug, lastSeq) {
    this.slug = slug;
    this.lastSeq = lastSeq; // the last change applied
    this.knownSeq = lastSeq; // the newest seq the server has said exists
    this.held = new Map(); // changes that came ahead of one still missing
  }

  // The server says changes up to `seq` exist (a subscription's ack, the changes API).
  know(seq) {
    this.knownSeq = Math.max(this.knownSeq, seq);
  }

  // Takes a change as it comes and calls `apply` on each change that can now be applied,
  // in order. Another story's changes, and ones already applied, are dropped.
  receive(change, apply) {
    if (change.article !== this.slug || change.seq <= this.lastSeq) return;
    this.held.set(change.seq, change);
    this.know(change.seq);
    this.drain(apply);
  }

  drain(apply) {
    while (this.held.has(this.lastSeq + 1)) {
      const change = this.held.get(this.lastSeq + 1);
      this.held.delete(change.seq);
      apply(change);
      this.lastSeq = change.seq;
    }
  }

  // True while a change is missing: one came after it, or the server said it exists. The
  // page then asks the changes API for everything after lastSeq, if it does not come soon.
  get waiting() {
    return this.held.size > 0 || this.knownSeq > this.lastSeq;
  }
}
