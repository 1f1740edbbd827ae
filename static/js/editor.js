'use strict';
// The compose page. Every form works without this script; with it, forms are sent in the
// background so the editor stays where they work: after Publish the form is empty, in view
// and focused, and the new update arrives below over the socket like on any reader's page.
(() => {
  const form = document.getElementById('compose-form');
  const errorBox = document.getElementById('form-error');
  const token = () => {
    const field = document.querySelector('input[name="csrf_token"]');
    return field ? field.value : '';
  };

  // Forms that ask first (delete, end the story, disable an editor).
  document.addEventListener(
    'submit',
    (event) => {
      const message = event.target.dataset.confirm;
      if (message && !window.confirm(message)) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true,
  );

  // Ctrl/Cmd+Enter sends the form being typed in.
  document.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' || !(event.ctrlKey || event.metaKey)) return;
    const target = event.target.closest('form');
    if (target) {
      event.preventDefault();
      target.requestSubmit();
    }
  });

  if (!form) return;

  const showError = (text) => {
    errorBox.textContent = text || '';
    errorBox.hidden = !text;
  };

  // The page the server answered with: take its drafts section, its message, its form.
  const parse = (html) => new DOMParser().parseFromString(html, 'text/html');
  const swapUnpublished = (page) => {
    const fresh = page.getElementById('unpublished');
    const current = document.getElementById('unpublished');
    if (fresh && current) {
      current.replaceWith(document.importNode(fresh, true));
      if (window.liveblogTimes) window.liveblogTimes.localize(document.getElementById('unpublished'));
    }
  };
  const flashOf = (page) => {
    const flash = page.querySelector('.flashes li');
    return flash ? flash.textContent : '';
  };
  const notice = (text) => {
    let list = document.querySelector('.flashes');
    if (!list) {
      list = document.createElement('ul');
      list.className = 'flashes';
      list.setAttribute('role', 'status');
      document.querySelector('main').before(list);
    }
    list.replaceChildren();
    if (text) {
      const item = document.createElement('li');
      item.textContent = text;
      list.append(item);
    }
  };

  const send = async (target) => {
    const response = await fetch(target.action, {
      method: 'POST',
      body: new FormData(target),
      headers: { Accept: 'text/html' },
    });
    const page = parse(await response.text());
    if (!response.ok) {
      const message = page.getElementById('form-error');
      const fieldError = page.querySelector('.field-error');
      const text = (message && message.textContent.trim()) || (fieldError && fieldError.textContent)
        || `${response.status} ${response.statusText}`;
      return { ok: false, page, text };
    }
    return { ok: true, page };
  };

  // The datetime-local input has no zone: send the time with this browser's UTC offset.
  const localInput = document.getElementById('publish-local');
  const withOffset = (value) => {
    const minutes = -new Date(value).getTimezoneOffset();
    const sign = minutes >= 0 ? '+' : '-';
    const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, '0');
    return `${value}${sign}${pad(minutes / 60)}:${pad(minutes % 60)}`;
  };

  const button = document.getElementById('publish');
  // The button says what it will do: publish, save a draft or schedule.
  const buttonLabel = () => {
    if (form.elements.draft.checked) button.textContent = 'Save draft';
    else if (localInput.value) button.textContent = 'Schedule update';
    else button.textContent = 'Publish update';
  };
  form.elements.draft.addEventListener('change', buttonLabel);
  localInput.addEventListener('input', buttonLabel);
  const preview = document.getElementById('preview');
  const previewPlaceholder = preview.innerHTML;

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (button.disabled) return; // one click publishes once
    form.elements.publish_at.value = localInput.value ? withOffset(localInput.value) : '';
    const label = button.textContent;
    button.disabled = true;
    button.textContent = 'Sending…';
    try {
      const result = await send(form);
      if (result.ok) {
        const fresh = result.page.getElementById('compose-form');
        form.reset();
        localInput.value = '';
        if (fresh) form.elements.idempotency_key.value = fresh.elements.idempotency_key.value;
        preview.innerHTML = previewPlaceholder;
        swapUnpublished(result.page);
        showError('');
        notice(flashOf(result.page));
        // The address names the new update, as the page without this script would.
        const ids = [...result.page.querySelectorAll('article[id^="update-"]')].map((el) =>
          Number(el.id.slice(7)));
        if (ids.length) window.history.replaceState(null, '', `#update-${Math.max(...ids)}`);
      } else {
        showError(result.text);
      }
    } catch (error) {
      showError('Could not reach the server; nothing was lost: send it again.');
    } finally {
      button.disabled = false;
      button.textContent = label;
      buttonLabel();
      form.elements.body.focus();
    }
  });

  // The server's own rendering of what is being typed, a moment after typing stops. A
  // refusal is said in the preview box; after too many previews (429) it asks again by
  // itself once the server's Retry-After has passed.
  let previewTimer = null;
  let previewSent = 0;
  const previewSays = (text) => {
    const line = document.createElement('p');
    line.className = 'subtle';
    line.textContent = text;
    preview.replaceChildren(line);
  };
  const previewRefused = async (response) => {
    const answer = await response.json().catch(() => ({}));
    previewSays(answer.error || `No preview: ${response.status} ${response.statusText}`);
    if (response.status === 429) {
      const seconds = Math.max(1, Number(response.headers.get('Retry-After')) || 5);
      previewTimer = setTimeout(renderPreview, seconds * 1000);
    }
  };
  const renderPreview = async () => {
    const body = form.elements.body.value;
    if (!body.trim()) {
      preview.innerHTML = previewPlaceholder;
      return;
    }
    const mine = ++previewSent;
    const data = new FormData();
    data.append('body', body);
    let response;
    try {
      response = await fetch(form.dataset.previewUrl, {
        method: 'POST',
        body: data,
        headers: { 'X-CSRFToken': token(), Accept: 'application/json' },
      });
    } catch (error) {
      if (mine === previewSent) previewSays('No preview: the server could not be reached.');
      return;
    }
    if (mine !== previewSent) return;
    if (response.ok) preview.innerHTML = (await response.json()).html; // sanitized by the server
    else await previewRefused(response);
  };
  form.elements.body.addEventListener('input', () => {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(renderPreview, 250);
  });

  // Controls on each update: sent in the background; published updates then change live
  // through the socket, drafts through the section the server sends back.
  document.addEventListener('submit', async (event) => {
    const target = event.target;
    if (!target.closest('.update-controls') || event.defaultPrevented) return;
    event.preventDefault();
    const buttons = [...target.querySelectorAll('button')];
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const result = await send(target);
      if (result.ok) {
        swapUnpublished(result.page);
        showError('');
        notice(flashOf(result.page));
      } else {
        showError(result.text);
      }
    } catch (error) {
      showError('Could not reach the server: try again.');
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });

  // An update that arrives over the socket gets the same controls the server renders.
  const template = document.getElementById('controls-template');
  const addControls = (element, update) => {
    if (!template || element.querySelector('.update-controls')) return;
    const html = template.innerHTML.replaceAll('__ID__', String(update.id));
    const holder = document.createElement('template');
    holder.innerHTML = html.trim();
    const controls = holder.content.firstElementChild;
    controls.querySelectorAll('input[name="csrf_token"]').forEach((input) => {
      input.value = token();
    });
    controls.querySelector('input[name="headline"]').value = update.headline || '';
    controls.querySelector('textarea[name="body"]').value = update.body;
    controls.querySelector('input[name="key_event"]').checked = update.key_event;
    controls.querySelector('input[name="pinned"]').checked = update.pinned;
    controls.querySelectorAll('.flag-form').forEach((flag) => {
      const on = update[flag.dataset.flag];
      flag.elements.value.value = on ? 'off' : 'on';
      const text = flag.dataset.flag === 'pinned' ? ['Pin', 'Unpin'] : ['Mark key event', 'Not a key event'];
      flag.querySelector('button').textContent = on ? text[1] : text[0];
    });
    controls.querySelector('.revisions-link').hidden = !update.edited_at;
    element.append(controls);
  };
  document.addEventListener('liveblog:update', (event) => {
    addControls(event.detail.element, event.detail.change.update);
  });
})();
