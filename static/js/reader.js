'use strict';
import { Sequence, comesBefore } from './stream.js';

// Keeps a story page live: applies every `change` in seq order, exactly once, across
// reconnects. The page was rendered at data-seq; everything after that arrives here.
//
// Nothing the reader is looking at moves: while the start of the stream is scrolled out of
// view, new updates wait hidden in their place, counted on a button and in the tab title,
// and other changes are applied with the scroll position corrected in the same task (the
// page does not count on the browser's scroll anchoring, which not every browser has).
(() => {
  const stream = document.getElementById('updates');
  if (!stream || typeof io === 'undefined') return;

  const slug = stream.dataset.slug;
  const changesUrl = stream.dataset.changesUrl;
  const oldestFirst = stream.dataset.order === 'oldest';
  const atHead = stream.dataset.head !== 'false'; // the page starts at the newest update
  const connection = document.getElementById('connection');
  const bar = document.getElementById('live-bar');
  const lastUpdated = document.getElementById('last-updated');
  const readers = document.getElementById('readers');
  const empty = document.getElementById('no-updates');
  const announcer = document.getElementById('announcer');
  const newButton = document.getElementById('new-updates');
  const GAP_WAIT_MS = 1500; // how long a missing seq may take before it is fetched
  const times = window.liveblogTimes;

  const sequence = new Sequence(slug, Number(stream.dataset.seq)); // from the page's own seq
  const deleted = new Set(); // ids deleted since the page was rendered (for paged-in pages)
  let gapTimer = null;
  let missed = 0; // new updates that belong to the story's first page, not this one
  let baseTitle = document.title;
  let lastNews = new Date();

  const setConnection = (state, text) => {
    connection.dataset.state = state;
    connection.textContent = text;
  };

  const announce = (text) => {
    if (announcer) announcer.textContent = text;
  };

  // Server-rendered markup (sanitized when it was saved) turned into an element.
  const fromHtml = (html) => {
    const template = document.createElement('template');
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  };

  const idOf = (el) => Number(el.id.slice(7));

  const placeOf = (el) => ({
    pinned: el.classList.contains('pinned'),
    published: el.dataset.published,
    id: idOf(el),
  });

  // --- holding still -----------------------------------------------------------------

  const topInView = () => stream.getBoundingClientRect().top >= 0;

  // Runs `mutate` and scrolls by however much it moved the first update in view, so that
  // what the reader is looking at stays where it was. At the top, things may move: that is
  // where new updates slide in.
  const holdStill = (mutate) => {
    if (topInView()) return mutate();
    const anchor = [...stream.children].find((el) => el.getBoundingClientRect().bottom > 0);
    const before = anchor ? anchor.getBoundingClientRect().top : 0;
    const result = mutate();
    if (anchor && anchor.isConnected) {
      const moved = anchor.getBoundingClientRect().top - before;
      if (moved) window.scrollBy(0, moved);
    }
    return result;
  };

  const pending = () => stream.querySelectorAll(':scope > .pending');

  const showCount = () => {
    const unseen = pending().length + missed;
    document.title = unseen ? `(${unseen}) ${baseTitle}` : baseTitle;
    if (!newButton) return unseen;
    newButton.hidden = unseen === 0;
    newButton.textContent = unseen === 1 ? '1 new update' : `${unseen} new updates`;
    return unseen;
  };

  // The waiting updates take their place, sliding in at the top of the stream.
  const reveal = () => {
    const waiting = pending();
    if (!waiting.length) return;
    for (const el of waiting) {
      el.hidden = false;
      el.classList.remove('pending');
      el.classList.add('arrived');
    }
    empty.hidden = true;
    showCount();
  };

  if (newButton) {
    newButton.addEventListener('click', () => {
      if (!atHead) {
        // This page starts further back: the newest updates are on the story's first page.
        const latest = document.getElementById('load-latest');
        window.location.assign(latest ? latest.href : window.location.pathname);
        return;
      }
      reveal();
      stream.scrollIntoView({ block: 'start' });
      const first = stream.firstElementChild;
      if (first) {
        first.setAttribute('tabindex', '-1');
        first.focus({ preventScroll: true });
      }
    });
  }
  window.addEventListener(
    'scroll',
    () => {
      if (topInView()) reveal();
    },
    { passive: true },
  );

  // --- updates -------------------------------------------------------------------------

  const shareUrl = (el) => {
    const link = el.querySelector('a.update-time');
    return new URL(link ? link.getAttribute('href') : `#${el.id}`, window.location.href).href;
  };

  // A share button on each update: the system's share sheet where there is one, else the
  // link copied to the clipboard.
  const addShare = (el) => {
    const meta = el.querySelector('.update-meta');
    if (!meta || meta.querySelector('.share')) return;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'share';
    button.textContent = 'Share';
    meta.append(button);
  };

  stream.addEventListener('click', async (event) => {
    const button = event.target.closest('button.share');
    if (!button) return;
    const el = button.closest('.update');
    const url = shareUrl(el);
    const headline = el.querySelector('.update-headline');
    if (navigator.share) {
      try {
        await navigator.share({ title: headline ? headline.textContent : baseTitle, url });
      } catch (error) {
        // The reader closed the share sheet.
      }
      return;
    }
    try {
      await navigator.clipboard.writeText(url);
      button.textContent = 'Link copied';
      announce('Link to the update copied');
    } catch (error) {
      button.textContent = 'Copy failed';
      announce(`Copy this link: ${url}`);
    }
    setTimeout(() => {
      button.textContent = 'Share';
    }, 2500);
  });

  const prepare = (el) => {
    addShare(el);
    if (times) times.localize(el);
  };

  // Where an update goes on this page; null when it belongs to a page not shown here (older
  // than the last one shown with more to load, or newer than a page that is not the head).
  const placeFor = (el) => {
    // The element it replaces is no place to insert before: it is about to be removed.
    const children = [...stream.children].filter((other) => other.id !== el.id);
    const next = children.find((other) => comesBefore(placeOf(el), placeOf(other), oldestFirst)) || null;
    const moreAfter = document.getElementById(oldestFirst ? 'load-newer' : 'load-older');
    if (!next && moreAfter) return undefined;
    const pinned = el.classList.contains('pinned');
    if (!atHead && (pinned || (!oldestFirst && next === children[0]))) return undefined;
    return next;
  };

  const removeUpdate = (id) => {
    const current = document.getElementById(`update-${id}`);
    if (current) holdStill(() => current.remove());
    showCount();
  };

  const showUpdate = (change, arrived) => {
    const el = fromHtml(change.html);
    prepare(el);
    const current = document.getElementById(el.id);
    const next = placeFor(el);
    // A new update waits hidden while the reader is further down, or keeps waiting when
    // edited; anywhere else it is applied where it stands.
    const waits = current
      ? current.classList.contains('pending')
      : arrived && !oldestFirst && !topInView() && next !== undefined;
    if (waits) {
      el.hidden = true;
      el.classList.add('pending');
    }
    holdStill(() => {
      if (current) current.remove();
      if (next !== undefined) stream.insertBefore(el, next);
    });
    if (arrived && !current) {
      lastNews = new Date();
      const title = change.update.headline || el.querySelector('.update-body').textContent.trim();
      if (next === undefined && atHead === false && !oldestFirst) missed += 1;
      const unseen = showCount();
      if (waits || (next === undefined && !oldestFirst)) {
        announce(unseen === 1 ? '1 new update' : `${unseen} new updates`);
      } else {
        announce(`New update: ${title.slice(0, 120)}`);
        if (next !== undefined) el.classList.add('arrived');
      }
    }
    keyEvents.show(change.update, el);
    if (el.isConnected) {
      document.dispatchEvent(new CustomEvent('liveblog:update', { detail: { change, element: el } }));
    }
  };

  // --- key events ----------------------------------------------------------------------

  const keyEvents = (() => {
    const nav = document.getElementById('key-events');
    const box = document.getElementById('key-events-box');
    const list = document.getElementById('key-events-list');
    const MAX = 50;
    if (!nav || !list) return { show() {}, remove() {}, relink() {} };
    const withUrl = nav.dataset.withUrl;
    nav.addEventListener('click', (event) => {
      if (event.target.closest('a')) reveal(); // a link to an update still waiting
    });
    const count = nav.querySelector('.count');

    const hrefFor = (id) =>
      document.getElementById(`update-${id}`) ? `#update-${id}` : `${withUrl}?with=${id}#update-${id}`;

    const refresh = () => {
      const items = [...list.children];
      items.slice(MAX).forEach((item) => item.remove());
      if (count) count.textContent = String(Math.min(items.length, MAX));
      box.hidden = items.length === 0;
    };

    const remove = (id) => {
      const item = list.querySelector(`li[data-id="${id}"]`);
      if (item) holdStill(() => item.remove());
      refresh();
    };

    const show = (update, el) => {
      if (!update.key_event) {
        remove(update.id);
        return;
      }
      const item = document.createElement('li');
      item.dataset.id = String(update.id);
      item.dataset.published = update.published_at;
      const link = document.createElement('a');
      link.href = hrefFor(update.id);
      const time = document.createElement('time');
      time.className = 'clock';
      time.setAttribute('datetime', update.published_at);
      const title = document.createElement('span');
      title.className = 'key-title';
      const body = el.querySelector('.update-body');
      title.textContent = update.headline || (body ? body.textContent.trim().slice(0, 80) : '');
      link.append(time, ' ', title);
      item.append(link);
      if (times) times.localize(item);
      holdStill(() => {
        const current = list.querySelector(`li[data-id="${update.id}"]`);
        if (current) current.remove();
        const next = [...list.children].find(
          (other) =>
            other.dataset.published < update.published_at ||
            (other.dataset.published === update.published_at && Number(other.dataset.id) < update.id),
        );
        list.insertBefore(item, next || null);
      });
      refresh();
    };

    // After older updates are loaded in place, their key events link within the page.
    const relink = () => {
      for (const item of list.children) {
        item.querySelector('a').setAttribute('href', hrefFor(item.dataset.id));
      }
    };

    // Beside the stream on wide screens the box is open; on a phone it stays one line.
    const wide = window.matchMedia('(min-width: 70em)');
    if (wide.matches) box.open = true;
    wide.addEventListener('change', () => {
      box.open = wide.matches;
    });
    return { show, remove, relink };
  })();

  // --- the story -----------------------------------------------------------------------

  const storyStatus = document.getElementById('story-status');
  const storyTitle = document.getElementById('story-title');
  const storyBody = document.getElementById('story-body');

  const showStory = (story) => {
    if (storyTitle) {
      const link = storyTitle.querySelector('a');
      (link || storyTitle).textContent = story.title;
    }
    if (storyBody) holdStill(() => {
      storyBody.innerHTML = story.html; // sanitized by the server when saved
    });
    if (storyStatus) {
      storyStatus.dataset.status = story.status;
      storyStatus.className = `status status-${story.status}`;
      storyStatus.textContent = story.status === 'live' ? 'Live' : 'Coverage ended';
      if (story.status !== 'live' && story.ended_at) {
        const time = document.createElement('time');
        time.className = 'clock';
        time.setAttribute('datetime', story.ended_at);
        storyStatus.append(' at ', time);
        if (times) times.localize(storyStatus);
      }
      if (story.status !== 'live') announce('Coverage of this story has ended');
    }
    baseTitle = baseTitle.replace(/^.*?( · liveblog)$/, `${story.title}$1`);
    showCount();
  };

  // One handler per kind of CHANGE declared in liveblog/changes.py (a test keeps the two
  // alike). A kind this page does not know is skipped, and its seq still counts as applied,
  // so a newer server never stalls an older page.
  const HANDLERS = {
    created: (change) => showUpdate(change, true),
    edited: (change) => showUpdate(change, false),
    deleted: (change) => {
      deleted.add(change.update.id);
      removeUpdate(change.update.id);
      keyEvents.remove(change.update.id);
    },
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
    empty.hidden = Boolean(stream.querySelector(':scope > .update:not([hidden])'));
  };

  // Applies what can be, and looks for a missing change if one does not come soon.
  const drain = () => {
    sequence.drain(apply);
    if (sequence.waiting && !gapTimer) gapTimer = setTimeout(fillGap, GAP_WAIT_MS);
    if (!sequence.waiting && gapTimer) {
      clearTimeout(gapTimer);
      gapTimer = null;
    }
  };

  const receive = (change) => {
    sequence.receive(change, apply);
    drain();
  };

  // A seq that has not come by now was lost on the way: ask the change log for it.
  const fillGap = async () => {
    gapTimer = null;
    try {
      const response = await fetch(`${changesUrl}?since=${sequence.lastSeq}`, {
        headers: { Accept: 'application/json' },
      });
      if (response.ok) {
        const data = await response.json();
        sequence.know(data.seq);
        data.changes.forEach(receive);
      }
    } catch (error) {
      // Offline for a moment: the timer drain() sets again tries once more.
    } finally {
      drain();
    }
  };

  // --- paging in place ---------------------------------------------------------------

  // "Show older updates" (or newer, oldest first) is a real link; here it loads the next
  // page into this one, and takes over that page's own link to the one after.
  document.addEventListener('click', async (event) => {
    const link = event.target.closest('#load-older, #load-newer');
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    if (link.getAttribute('aria-busy') === 'true') return;
    link.setAttribute('aria-busy', 'true');
    try {
      const response = await fetch(link.href, { headers: { Accept: 'text/html' } });
      if (!response.ok) throw new Error(`${response.status}`);
      const page = new DOMParser().parseFromString(await response.text(), 'text/html');
      const found = [...page.querySelectorAll('#updates > .update')];
      let added = 0;
      for (const el of found) {
        if (document.getElementById(el.id) || deleted.has(idOf(el)) || el.classList.contains('pinned')) continue;
        const imported = document.importNode(el, true);
        prepare(imported);
        stream.append(imported);
        added += 1;
      }
      const further = page.getElementById(link.id);
      if (further) {
        link.href = further.getAttribute('href');
      } else {
        link.closest('.more').remove();
      }
      keyEvents.relink();
      empty.hidden = stream.children.length > 0;
      announce(added === 1 ? '1 more update shown' : `${added} more updates shown`);
    } catch (error) {
      // Leave the link for the browser to follow: the page it names works on its own.
      window.location.assign(link.href);
    } finally {
      link.removeAttribute('aria-busy');
    }
  });

  // --- the connection ----------------------------------------------------------------

  const socket = io();
  let wasLive = false;

  const showDisconnected = () => {
    bar.dataset.reconnecting = 'true';
    readers.hidden = true;
    if (lastUpdated && times) {
      lastUpdated.hidden = false;
      lastUpdated.textContent = `Last updated ${times.clock(lastNews)}`;
    }
  };

  const showConnected = () => {
    delete bar.dataset.reconnecting;
    if (lastUpdated) lastUpdated.hidden = true;
  };

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
    const subscription = { article: slug, since: sequence.lastSeq, count: stream.dataset.count !== 'false' };
    socket.emit('subscribe', subscription, (ack) => {
      if (socket.id !== connection) return;
      if (ack && ack.ok) {
        retryDelay = 1000;
        sequence.know(ack.seq);
        wasLive = true;
        lastNews = new Date();
        setConnection('live', 'Live');
        showConnected();
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

  setConnection('connecting', 'Connecting…');
  socket.on('connect', () => {
    retryDelay = 1000;
    subscribe();
  });
  socket.on('disconnect', () => {
    cancelRetry();
    setConnection('offline', 'Reconnecting…');
    if (wasLive) showDisconnected();
  });
  socket.on('change', receive);
  socket.on('readers', (message) => {
    if (message.article !== slug || connection.dataset.state !== 'live') return;
    readers.hidden = false;
    readers.textContent = message.count === 1 ? '1 reading now' : `${message.count} reading now`;
  });

  // --- the page as rendered --------------------------------------------------------

  for (const el of stream.children) addShare(el);
  const target = stream.dataset.target && document.getElementById(stream.dataset.target);
  if (target && !window.location.hash) target.scrollIntoView({ block: 'start' });
  if (target) target.classList.add('target');

  // Exposed for tests and the curious: how far this page has got, and the entry point that
  // every CHANGE goes through, whether it came over the socket or from the changes API.
  window.liveblog = {
    get seq() {
      return sequence.lastSeq;
    },
    socket,
    receive,
  };
})();
