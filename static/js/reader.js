'use strict';
// Keeps a story page live: applies every `change` in seq order, exactly once, across
// reconnects. The page was rendered at data-seq; everything after that arrives here.
(() => {
  const stream = document.getElementById('updates');
  if (!stream || typeof io === 'undefined') return;

  const slug = stream.dataset.slug;
  const changesUrl = stream.dataset.changesUrl;
  const permalinkBase = stream.dataset.permalinkBase;
  const connection = document.getElementById('connection');
  const readers = document.getElementById('readers');
  const empty = document.getElementById('no-updates');
  const GAP_WAIT_MS = 1500; // how long a missing seq may take before it is fetched

  let lastSeq = Number(stream.dataset.seq); // the last change applied to this page
  let knownSeq = lastSeq; // the newest seq the server has told us exists
  const held = new Map(); // changes that arrived ahead of one still missing
  let gapTimer = null;

  const setConnection = (state, text) => {
    connection.dataset.state = state;
    connection.textContent = text;
  };

  const element = (tag, className, text) => {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  };

  // The same markup as templates/_update.html.
  const build = (update) => {
    const article = element('article', 'update');
    article.classList.toggle('key-event', update.key_event);
    article.classList.toggle('pinned', update.pinned);
    article.id = `update-${update.id}`;
    article.dataset.seq = update.seq;
    article.dataset.published = update.published_at;

    const meta = element('header', 'update-meta');
    if (update.pinned) meta.append(element('span', 'badge badge-pinned', 'Pinned'));
    if (update.key_event) meta.append(element('span', 'badge badge-key', 'Key event'));
    const link = element('a', 'update-time');
    link.href = `${permalinkBase}${update.id}`;
    const time = element('time', null, update.published_at);
    time.setAttribute('datetime', update.published_at);
    link.append(time);
    meta.append(link, element('span', 'update-author', update.author));
    if (update.edited_at) {
      const edited = element('span', 'update-edited', 'edited');
      edited.title = update.edited_at;
      meta.append(edited);
    }
    article.append(meta);
    if (update.headline) article.append(element('h2', 'update-headline', update.headline));
    const body = element('div', 'update-body');
    body.innerHTML = update.html; // sanitized by the server when the update was saved
    article.append(body);
    if (window.liveblogTimes) window.liveblogTimes.localize(article);
    return article;
  };

  // Pinned first, then newest first: the order the server renders.
  const comesBefore = (a, b) => {
    const pinnedA = a.classList.contains('pinned');
    const pinnedB = b.classList.contains('pinned');
    if (pinnedA !== pinnedB) return pinnedA;
    if (a.dataset.published !== b.dataset.published) return a.dataset.published > b.dataset.published;
    return Number(a.id.slice(7)) > Number(b.id.slice(7));
  };

  const place = (el) => {
    const next = [...stream.children].find((other) => comesBefore(el, other));
    stream.insertBefore(el, next || null);
  };

  const apply = (change) => {
    const current = document.getElementById(`update-${change.update.id}`);
    if (current) current.remove();
    if (change.type !== 'deleted') {
      const el = build(change.update);
      if (change.type === 'created') el.classList.add('arrived');
      place(el);
    }
    empty.hidden = stream.children.length > 0;
  };

  const drain = () => {
    while (held.has(lastSeq + 1)) {
      const change = held.get(lastSeq + 1);
      held.delete(change.seq);
      apply(change);
      lastSeq = change.seq;
    }
    const waiting = held.size > 0 || knownSeq > lastSeq;
    if (waiting && !gapTimer) gapTimer = setTimeout(fillGap, GAP_WAIT_MS);
    if (!waiting && gapTimer) {
      clearTimeout(gapTimer);
      gapTimer = null;
    }
  };

  const receive = (change) => {
    if (change.article !== slug || change.seq <= lastSeq) return; // another story, or a repeat
    held.set(change.seq, change);
    knownSeq = Math.max(knownSeq, change.seq);
    drain();
  };

  // A seq that has not come by now was lost on the way: ask the change log for it.
  const fillGap = async () => {
    gapTimer = null;
    try {
      const response = await fetch(`${changesUrl}?since=${lastSeq}`, {
        headers: { Accept: 'application/json' },
      });
      if (response.ok) {
        const data = await response.json();
        knownSeq = Math.max(knownSeq, data.seq);
        data.changes.forEach(receive);
      }
    } catch (error) {
      // Offline for a moment: the timer drain() sets again tries once more.
    } finally {
      drain();
    }
  };

  const socket = io();

  // Subscribe from the last change applied; on a refusal that a retry may cure (the server
  // had a moment's trouble), try again after a growing pause. One retry is pending at most,
  // and a new connection starts afresh.
  let retryDelay = 1000;
  let retryTimer = null;
  const cancelRetry = () => {
    clearTimeout(retryTimer);
    retryTimer = null;
  };
  const subscribe = () => {
    cancelRetry();
    setConnection('connecting', 'Catching up…');
    const connection = socket.id; // acks for an earlier connection are stale
    const subscription = { article: slug, since: lastSeq, count: stream.dataset.count !== 'false' };
    socket.emit('subscribe', subscription, (ack) => {
      if (socket.id !== connection) return;
      if (ack && ack.ok) {
        retryDelay = 1000;
        knownSeq = Math.max(knownSeq, ack.seq);
        setConnection('live', 'Live');
        drain();
      } else if (ack && ack.reload) {
        window.location.reload();
      } else {
        setConnection('error', `${(ack && ack.error) || 'Could not follow this story'}; retrying`);
        retryTimer = setTimeout(subscribe, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      }
    });
  };

  socket.on('connect', () => {
    retryDelay = 1000;
    subscribe();
  });
  socket.on('disconnect', () => {
    cancelRetry();
    setConnection('offline', 'Reconnecting…');
  });
  socket.on('change', receive);
  socket.on('readers', (message) => {
    if (message.article !== slug) return;
    readers.textContent = message.count === 1 ? '1 reading now' : `${message.count} reading now`;
  });

  // Exposed for tests and the curious: how far this page has got, and the entry point that
  // every CHANGE goes through, whether it came over the socket or from the changes API.
  window.liveblog = {
    get seq() {
      return lastSeq;
    },
    socket,
    receive,
  };
})();
