'use strict';
// Times are sent in UTC; show each one in the reader's own time zone.
window.liveblogTimes = (() => {
  const time = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
  const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });
  const day = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });

  const localize = (root) => {
    for (const el of root.querySelectorAll('time[datetime]')) {
      const moment = new Date(el.getAttribute('datetime'));
      if (Number.isNaN(moment.getTime())) continue;
      // A `clock` time ("updated 14:05") shows the hour alone; the rest the hour and the day.
      const clockOnly = el.classList.contains('clock');
      el.textContent = clockOnly ? time.format(moment) : `${time.format(moment)}, ${day.format(moment)}`;
      el.title = full.format(moment);
    }
  };
  localize(document);
  return { localize };
})();
