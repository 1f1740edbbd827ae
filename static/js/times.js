'use strict';
// Times are sent in UTC; show each one in the reader's own time zone, with the zone named,
// and how long ago it was beside the time of each update, kept fresh once a minute.
window.liveblogTimes = (() => {
  const time = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
  const zoned = new Intl.DateTimeFormat(undefined, {
    hour: 'numeric',
    minute: '2-digit',
    timeZoneName: 'short',
  });
  const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });
  const day = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });

  const ago = (moment, now = Date.now()) => {
    const seconds = Math.round((moment.getTime() - now) / 1000);
    if (Math.abs(seconds) < 45) return 'just now';
    const minutes = Math.round(seconds / 60);
    if (Math.abs(minutes) < 60) return relative.format(minutes, 'minute');
    const hours = Math.round(minutes / 60);
    if (Math.abs(hours) < 24) return relative.format(hours, 'hour');
    const days = Math.round(hours / 24);
    // Past a week "1,168 days ago" says less than the date already beside it.
    return Math.abs(days) <= 7 ? relative.format(days, 'day') : '';
  };

  const refresh = (root) => {
    for (const el of root.querySelectorAll('.ago[data-datetime]')) {
      el.textContent = ago(new Date(el.dataset.datetime));
    }
  };

  const localize = (root) => {
    for (const el of root.querySelectorAll('time[datetime]')) {
      const moment = new Date(el.getAttribute('datetime'));
      if (Number.isNaN(moment.getTime())) continue;
      // A `clock` time ("updated 14:05") shows the hour alone; an update's time the hour
      // with its zone and the day, and how long ago beside it.
      const clockOnly = el.classList.contains('clock');
      el.textContent = clockOnly ? time.format(moment) : `${zoned.format(moment)}, ${day.format(moment)}`;
      el.title = full.format(moment);
      const link = el.closest('a.update-time');
      if (link && !(link.nextElementSibling && link.nextElementSibling.classList.contains('ago'))) {
        const since = document.createElement('span');
        since.className = 'ago';
        since.dataset.datetime = el.getAttribute('datetime');
        link.after(since);
      }
    }
    refresh(root);
  };

  localize(document);
  setInterval(() => refresh(document), 30000);
  return { localize, clock: (moment) => time.format(moment) };
})();
