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
      el.textContent = `${time.format(moment)}, ${day.format(moment)}`;
      el.title = full.format(moment);
    }
  };
  localize(document);
  return { localize };
})();
