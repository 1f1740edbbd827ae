'use strict';
// The compose form: one click publishes once, and Ctrl/Cmd+Enter sends it from the text box.
(() => {
  const form = document.getElementById('compose-form');
  if (!form) return;
  const button = document.getElementById('publish');
  form.addEventListener('submit', () => {
    button.disabled = true;
    button.textContent = 'Publishing…';
  });
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
})();
