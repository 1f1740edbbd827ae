'use strict';
// Keeps a story page live: applies every `change` in seq order, exactly once, across
// reconnects. The page was rendered at data-seq; everything after that arrives here.
(() => {
  const stream = document.getElementById('updates');
  if (!stream || typeof io === 'undefined') return;

  const slug = stream.dataset.slug;
  const changesUrl = stream.dataset.changesUrl;
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

  // Server-rendered markup (sanitized when it was saved) turned into an element.
  const fromHtml = (html) => {
    const template = document.createElement('template');
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
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

  const removeUpdate = (id) => {
    const current = document.getElementById(`update-${id}`);
    if (current) current.remove();
  };

  const showUpdate = (change, arrived) => {
    removeUpdate(change.update.id);
    const el = fromHtml(change.html);
    if (arrived) el.classList.add('arrived');
    if (window.liveblogTimes) window.liveblogTimes.localize(el);
    place(el);
    document.dispatchEvent(new CustomEvent('liveblog:update', { detail: { change, element: el } }));
  };

  const storyStatus = document.getElementById('story-status');
  const storyTitle = document.getElementById('story-title');
  const storyBody = document.getElementById('story-body');

  const showStory = (story) => {
    if (storyTitle) storyTitle.textContent = story.title;
    if (storyBody) storyBody.innerHTML = story.html; // sanitized by the server when saved
    if (storyStatus) {
      storyStatus.dataset.status = story.status;
      storyStatus.className = `status status-${story.status}`;
      storyStatus.textContent = story.status === 'live' ? 'Live' : 'Coverage ended';
      if (story.status !== 'live' && story.ended_at) {
        const time = document.createElement('time');
        time.className = 'clock';
        time.setAttribute('datetime', story.ended_at);
        storyStatus.append(' at ', time);
        if (window.liveblogTimes) window.liveblogTimes.localize(storyStatus);
      }
    }
    document.title = document.title.replace(/^.*?( · liveblog)$/, `${story.title}$1`);
  };

  // One handler per kind of CHANGE declared in liveblog/changes.py (a test keeps the two
  // alike). A kind this page does not know is skipped, and its seq still counts as applied,
  // so a newer server never stalls an older page.
  const HANDLERS = {
    created: (change) => showUpdate(change, true),
    edited: (change) => showUpdate(change, false),
    deleted: (change) => removeUpdate(change.update.id),
    story: (change) => showStory(change.story),
  };

  const apply = (change) => {
    const handler = Object.prototype.hasOwnProperty.call(HANDLERS, change.type)
      ? HANDLERS[change.type]
      : null;
    if (handler) {
      try {
        handler(change);
      } catch (error) {
        // A malformed change must not stop every later one from being applied.
        console.warn('could not apply change', change.seq, error);
      }
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
