/* Pawpost portal: live dots and messages, search as you type, Enter to send.
 * Served from the package; the CSP allows no inline script, so all behaviour lives here.
 * Server-rendered fragments are escaped by Jinja; search results are built with textContent.
 *
 * Live updates: one server-sent event stream per tab (`/live`, see portal/live.py) carries
 * hints only; each hint makes the tab refetch through the pages' endpoints, so a lost or
 * repeated hint never shows a wrong dot or a message twice. While the stream is up nothing
 * polls; when it drops, the tab reconnects with backoff, polls slowly meanwhile, and
 * catches up with one fetch once it is back. */
(function () {
  "use strict";

  var FALLBACK_POLL_MS = 30000;
  var RECONNECT_FIRST_MS = 1000;
  var RECONNECT_MAX_MS = 30000;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" }).then(function (r) {
      if (r.status === 401) { window.location.assign("/signin?next=" + encodeURIComponent(location.pathname)); throw new Error("signed out"); }
      // No longer allowed (a basic staff member's day with this family ended): stop showing it.
      if (r.status === 403) { window.location.reload(); throw new Error("forbidden"); }
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    });
  }

  /* One run of `task` at a time; calls during a run make exactly one more run after it. */
  function coalesced(task) {
    var running = null;
    var again = false;
    function run() {
      if (running) { again = true; return running; }
      running = Promise.resolve().then(task).catch(function () {}).then(function () {
        running = null;
        if (again) { again = false; return run(); }
      });
      return running;
    }
    return run;
  }

  /* "2 min ago", kept fresh for recent times; older ones keep the server's wording. */
  function relative(iso) {
    var seconds = (Date.now() - Date.parse(iso)) / 1000;
    if (isNaN(seconds)) { return null; }
    if (seconds < 60) { return "just now"; }
    if (seconds < 3600) { return Math.floor(seconds / 60) + " min ago"; }
    if (seconds < 12 * 3600) { return Math.floor(seconds / 3600) + " h ago"; }
    return null;
  }
  function refreshTimes(root) {
    (root || document).querySelectorAll("time[data-relative]").forEach(function (el) {
      var text = relative(el.getAttribute("datetime"));
      if (text && el.textContent !== text) { el.textContent = text; }
    });
  }

  /* The Messages tab dot, inbox row dots, the inbox order and the quarantine count. */
  var refreshInbox = null;
  function startInbox() {
    var tabDot = document.getElementById("tab-dot");
    if (!tabDot) { return; }
    var inbox = document.querySelector("[data-inbox]");
    var list = document.getElementById("thread-list");
    var held = document.getElementById("held-count");
    refreshInbox = coalesced(function () {
      var ids = Array.prototype.map.call(document.querySelectorAll("[data-thread-id]"), function (el) {
        return el.getAttribute("data-thread-id");
      });
      return getJSON("/api/unread?ids=" + ids.join(",")).then(function (data) {
        tabDot.hidden = !data.tab;
        if (held && typeof data.held === "number" && held.textContent !== String(data.held)) {
          held.textContent = String(data.held);
          held.setAttribute("aria-label", data.held + " held");
          held.hidden = !data.held;
        }
        var unread = {};
        data.unread.forEach(function (id) { unread[id] = true; });
        document.querySelectorAll("[data-thread-id]").forEach(function (row) {
          var isUnread = !!unread[row.getAttribute("data-thread-id")];
          row.classList.toggle("unread", isUnread);
          var dot = row.querySelector(".dot");
          if (dot) { dot.hidden = !isUnread; }
        });
        if (inbox && list && data.version !== inbox.getAttribute("data-version") && !/[?&]page=[1-9]/.test(location.search)) {
          return fetch(inbox.getAttribute("data-rows-url"), { credentials: "same-origin" }).then(function (r) {
            if (!r.ok) { throw new Error("HTTP " + r.status); }
            return r.text();
          }).then(function (html) {
            var focusedId = document.activeElement && document.activeElement.closest && document.activeElement.closest("[data-thread-id]");
            focusedId = focusedId && focusedId.getAttribute("data-thread-id");
            list.innerHTML = html;
            inbox.setAttribute("data-version", data.version);
            if (focusedId) {
              var again = list.querySelector('[data-thread-id="' + focusedId + '"] a');
              if (again) { again.focus(); }
            }
          });
        }
      });
    });
  }

  /* Search a parent or pet as you type; arrows move, Enter opens, Escape closes. */
  function startSearch() {
    var form = document.querySelector("[data-search]");
    if (!form) { return; }
    var input = form.querySelector("input[type=search]");
    var results = document.getElementById("search-results");
    var active = -1;
    var timer = null;
    var latest = 0;

    function options() { return results.querySelectorAll("[role=option]"); }
    function setActive(index) {
      var items = options();
      if (!items.length) { active = -1; return; }
      active = (index + items.length) % items.length;
      items.forEach(function (item, i) {
        item.setAttribute("aria-selected", i === active ? "true" : "false");
        if (i === active) { input.setAttribute("aria-activedescendant", item.id); item.scrollIntoView({ block: "nearest" }); }
      });
    }
    function close() {
      results.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }
    function render(data) {
      results.textContent = "";
      if (!data.results.length) {
        var none = document.createElement("li");
        none.className = "empty";
        none.textContent = "No family matches “" + data.query + "”.";
        results.appendChild(none);
      }
      data.results.forEach(function (family, i) {
        var li = document.createElement("li");
        li.setAttribute("role", "option");
        li.id = "search-option-" + i;
        var a = document.createElement("a");
        a.href = family.url;
        a.tabIndex = -1;
        var name = document.createElement("strong");
        name.textContent = family.family;
        var meta = document.createElement("span");
        meta.className = "meta";
        meta.textContent = family.contacts.join(", ");
        if (family.pets.length) {
          var pets = document.createElement("span");
          pets.className = "paw";
          pets.textContent = family.pets.join(", ");
          meta.appendChild(document.createTextNode(" · "));
          meta.appendChild(pets);
        }
        a.appendChild(name);
        a.appendChild(meta);
        li.appendChild(a);
        results.appendChild(li);
      });
      results.hidden = false;
      input.setAttribute("aria-expanded", "true");
      setActive(0);
    }
    function search() {
      var query = input.value.trim();
      if (query.length < 2) { results.textContent = ""; close(); return; }
      var ticket = ++latest;
      getJSON(form.getAttribute("data-search-url") + "?q=" + encodeURIComponent(query)).then(function (data) {
        if (ticket === latest) { render(data); }
      }).catch(function () {});
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(search, 120);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown") { event.preventDefault(); setActive(active + 1); }
      else if (event.key === "ArrowUp") { event.preventDefault(); setActive(active - 1); }
      else if (event.key === "Escape") { input.value = ""; results.textContent = ""; close(); }
      else if (event.key === "Enter") {
        var items = options();
        if (items.length && active >= 0) {
          event.preventDefault();
          window.location.assign(items[active].querySelector("a").href);
        }
      }
    });
    var newButton = document.querySelector("[data-new-message]");
    if (newButton) {
      newButton.addEventListener("click", function (event) { event.preventDefault(); input.focus(); input.select(); });
    }
    document.addEventListener("keydown", function (event) {
      var target = event.target;
      var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT" || target.isContentEditable);
      if (!typing && !event.ctrlKey && !event.metaKey && !event.altKey && (event.key === "/" || event.key === "n")) {
        event.preventDefault();
        input.focus();
      }
    });
  }

  /* The open thread: new messages appear, and count as read while the page is visible. */
  var thread = null;
  function startThread() {
    var list = document.getElementById("messages");
    if (!list) { return; }
    var scroller = list;
    scroller.scrollTop = scroller.scrollHeight;
    // Stay pinned to the newest message while pictures load, unless the reader scrolled up.
    var pinned = true;
    scroller.addEventListener("scroll", function () {
      pinned = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
    });
    list.addEventListener("load", function () { if (pinned) { scroller.scrollTop = scroller.scrollHeight; } }, true);
    if (location.hash) {
      var target = document.getElementById(location.hash.slice(1));
      if (target) { target.scrollIntoView({ block: "center" }); }
    }
    if (!list.hasAttribute("data-poll-url")) { return; }
    var found = /\/threads\/(\d+)\//.exec(list.getAttribute("data-poll-url"));
    thread = {
      id: found ? Number(found[1]) : null,
      poll: coalesced(function () {
        var after = list.getAttribute("data-after") || "0";
        var read = document.visibilityState === "visible" ? "1" : "0";
        return getJSON(list.getAttribute("data-poll-url") + "?after=" + after + "&read=" + read).then(function (data) {
          if (!data.html) { return; }
          var nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
          var holder = document.createElement("template");
          holder.innerHTML = data.html;
          Array.prototype.slice.call(holder.content.children).forEach(function (item) {
            if (!document.getElementById(item.id)) { list.appendChild(item); }
          });
          list.setAttribute("data-after", String(data.last_id));
          var empty = document.getElementById("no-messages");
          if (empty) { empty.remove(); }
          refreshTimes(list);
          if (nearBottom || thread.justSent) { scroller.scrollTop = scroller.scrollHeight; }
          thread.justSent = false;
        });
      }),
      justSent: false
    };
  }

  /* The stream of hints, with backoff on drops and slow polling only while it is down. */
  function startLive() {
    if (!refreshInbox && !thread) { return; }
    function catchUp() {
      if (refreshInbox) { refreshInbox(); }
      if (thread) { thread.poll(); }
    }
    var poller = null;
    function startPolling() { if (!poller) { poller = setInterval(catchUp, FALLBACK_POLL_MS); } }
    function stopPolling() { if (poller) { clearInterval(poller); poller = null; } }
    if (!window.EventSource) { startPolling(); return; }

    var source = null;
    var timer = null;
    var delay = RECONNECT_FIRST_MS;
    var connectedBefore = false;
    // On <html data-live="up|down">: for a stylesheet or a test to tell whether hints flow.
    function mark(state) { document.documentElement.setAttribute("data-live", state); }
    function reconnectLater() {
      mark("down");
      if (source) { source.close(); source = null; }
      startPolling();
      clearTimeout(timer);
      // Jitter: after a deploy every tab must not come back in the same instant.
      timer = setTimeout(connect, delay * (0.5 + Math.random()));
      delay = Math.min(delay * 2, RECONNECT_MAX_MS);
    }
    function connect() {
      source = new EventSource("/live");
      source.addEventListener("hello", function () {
        stopPolling();
        mark("up");
        delay = RECONNECT_FIRST_MS;
        // Hints sent while we were away are lost: one fetch of each view catches up.
        if (connectedBefore) { catchUp(); }
        connectedBefore = true;
      });
      source.addEventListener("posted", function (event) {
        var data = {};
        try { data = JSON.parse(event.data); } catch (ignored) { /* a hint without data is still a hint */ }
        if (refreshInbox) { refreshInbox(); }
        if (thread && (data.thread_id === thread.id || data.thread_id === undefined)) { thread.poll(); }
      });
      source.addEventListener("read", function () { if (refreshInbox) { refreshInbox(); } });
      source.addEventListener("quarantine", function () { if (refreshInbox) { refreshInbox(); } });
      source.addEventListener("resync", catchUp);
      source.addEventListener("bye", reconnectLater);
      source.onerror = reconnectLater;
    }
    window.addEventListener("pagehide", function () { if (source) { source.close(); source = null; } });
    // Back from the back-forward cache: the stream was closed on the way out.
    window.addEventListener("pageshow", function (event) { if (event.persisted && !source) { connectedBefore = true; connect(); } });
    connect();
  }

  /* Enter sends, Shift+Enter is a new line; files ride along. Works without JS as a form. */
  function startComposer() {
    var form = document.querySelector("[data-composer]");
    if (!form) { return; }
    var text = form.querySelector("textarea");
    var files = form.querySelector("input[type=file]");
    var names = document.getElementById("file-names");
    var sending = false;

    function grow() {
      text.style.height = "auto";
      text.style.height = Math.min(text.scrollHeight, 200) + "px";
    }
    function send() {
      if (sending || (!text.value.trim() && !(files && files.files.length))) { return; }
      sending = true;
      form.classList.add("sending");
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json", "X-CSRFToken": csrf },
        credentials: "same-origin"
      }).then(function (r) {
        return r.json().catch(function () { return { error: "HTTP " + r.status }; }).then(function (data) {
          if (!r.ok) { throw new Error(data.error || ("HTTP " + r.status)); }
          return data;
        });
      }).then(function (data) {
        text.value = "";
        if (files) { files.value = ""; }
        if (names) { names.textContent = ""; }
        grow();
        form.removeAttribute("data-error");
        if (!thread) { window.location.assign("/threads/" + data.thread_id); return; }
        thread.justSent = true;
        return thread.poll();
      }).catch(function (error) {
        form.setAttribute("data-error", "Not sent: " + error.message);
        if (names) { names.textContent = "Not sent: " + error.message; }
      }).then(function () {
        sending = false;
        form.classList.remove("sending");
        text.focus();
      });
    }
    startSavedReplies(form, text, grow);
    text.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        send();
      }
    });
    text.addEventListener("input", grow);
    // "Internal note": the composer turns amber and says who sees it, so nobody sends a
    // staff-only remark to the family by mistake (or the other way round).
    var note = form.querySelector("[data-note-toggle]");
    var noteHint = document.getElementById("note-hint");
    if (note) {
      var showMode = function () {
        form.classList.toggle("note-mode", note.checked);
        if (noteHint) { noteHint.hidden = !note.checked; }
        text.placeholder = note.checked ? "Internal note (staff only)…" : text.getAttribute("data-family-placeholder");
      };
      note.addEventListener("change", function () { showMode(); text.focus(); });
      showMode();
    }
    // Ready to type on a desktop; on a phone, focusing would pop the keyboard over the thread.
    if (window.matchMedia("(min-width: 761px)").matches) { text.focus({ preventScroll: true }); }
    form.addEventListener("submit", function (event) { event.preventDefault(); send(); });
    if (files && names) {
      files.addEventListener("change", function () {
        names.textContent = Array.prototype.map.call(files.files, function (f) { return f.name; }).join(", ");
      });
    }
  }

  /* Saved replies: "/" at the start of the composer lists them by name (keyboard-first:
     arrows move, Enter or Tab picks, Escape closes); picking puts the text, already filled
     for this family, in the composer to edit before sending. Registered before the
     composer's own Enter handler, which it stops while the list is open. */
  function startSavedReplies(form, text, grow) {
    var menu = document.getElementById("reply-menu");
    var url = form.getAttribute("data-replies-url");
    if (!menu || !url) { return; }
    var replies = null, shown = [], active = 0, loading = false;

    function close() {
      menu.hidden = true;
      menu.innerHTML = "";
      shown = [];
      text.setAttribute("aria-expanded", "false");
      text.removeAttribute("aria-activedescendant");
    }
    function draw() {
      var match = /^\/([^\n]*)$/.exec(text.value);
      if (!match || !replies) { close(); return; }
      var wanted = match[1].trim().toLowerCase();
      shown = replies.filter(function (r) { return r.name.toLowerCase().indexOf(wanted) !== -1; }).slice(0, 20);
      if (!shown.length) { close(); return; }
      active = Math.min(active, shown.length - 1);
      menu.innerHTML = "";
      shown.forEach(function (reply, i) {
        var li = document.createElement("li");
        li.id = "reply-option-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", i === active ? "true" : "false");
        var name = document.createElement("strong");
        name.textContent = reply.name;
        var preview = document.createElement("span");
        preview.className = "reply-preview";
        preview.textContent = reply.text;
        li.appendChild(name);
        li.appendChild(preview);
        li.addEventListener("mousedown", function (event) { event.preventDefault(); pick(i); });
        menu.appendChild(li);
      });
      menu.hidden = false;
      text.setAttribute("aria-expanded", "true");
      text.setAttribute("aria-activedescendant", "reply-option-" + active);
    }
    function pick(i) {
      var reply = shown[i];
      close();
      if (!reply) { return; }
      text.value = reply.text;
      grow();
      text.focus();
      text.setSelectionRange(text.value.length, text.value.length);
    }
    function load() {
      if (replies || loading) { draw(); return; }
      loading = true;
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : { replies: [] }; })
        .then(function (data) { replies = data.replies || []; loading = false; draw(); })
        .catch(function () { loading = false; });
    }
    text.addEventListener("input", function () {
      if (text.value.charAt(0) === "/" && text.value.indexOf("\n") === -1) { active = 0; load(); } else { close(); }
    });
    text.addEventListener("keydown", function (event) {
      if (menu.hidden || !shown.length) { return; }
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        active = (active + (event.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
        draw();
      } else if (event.key === "Enter" || event.key === "Tab") {
        pick(active);
      } else if (event.key === "Escape") {
        close();
      } else {
        return;
      }
      event.preventDefault();
      event.stopImmediatePropagation();
    });
    text.addEventListener("blur", function () { setTimeout(close, 150); });
  }

  /* Phones: the tabs fold into one "Menu" button naming the current page; the unread dot
     and the held count show on the button while the list is closed. */
  function startMenu() {
    var button = document.querySelector("[data-menu-toggle]");
    var bar = button && button.closest(".topbar");
    if (!bar) { return; }
    var current = bar.querySelector('nav a[aria-current="page"]');
    var label = button.querySelector("[data-menu-current]");
    if (current && label) { label.textContent = current.firstChild.textContent.trim(); }
    var tabDot = document.getElementById("tab-dot");
    var held = document.getElementById("held-count");
    var menuDot = button.querySelector("[data-menu-dot]");
    function mirror() {
      if (menuDot) { menuDot.hidden = !((tabDot && !tabDot.hidden) || (held && !held.hidden)); }
    }
    [tabDot, held].forEach(function (el) {
      if (el && window.MutationObserver) { new MutationObserver(mirror).observe(el, { attributes: true, attributeFilter: ["hidden"] }); }
    });
    mirror();
    function set(open) {
      bar.classList.toggle("menu-open", open);
      button.setAttribute("aria-expanded", open ? "true" : "false");
    }
    button.addEventListener("click", function () { set(!bar.classList.contains("menu-open")); });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && bar.classList.contains("menu-open")) { set(false); button.focus(); }
    });
    document.addEventListener("click", function (event) {
      if (bar.classList.contains("menu-open") && !bar.contains(event.target)) { set(false); }
    });
  }

  document.documentElement.classList.add("js");
  document.addEventListener("DOMContentLoaded", function () {
    startMenu();
    startInbox();
    startSearch();
    startThread();
    startComposer();
    startLive();
    refreshTimes();
    setInterval(refreshTimes, 30000);
  });
})();
