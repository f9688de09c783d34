// PLN Bot playground: polls the conversation, sends what a persona types or presses.
// No framework, no CDN; the server renders every message as escaped HTML.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("playground-config").textContent);
  const personas = new Map(config.personas.map((p) => [p.id, p]));
  const state = {
    as: config.personas[0].id,
    where: "channel",
    thread: null,
    key: "",
    seenDm: {},
    dmCounts: {},
  };
  const $ = (selector) => document.querySelector(selector);
  const $$ = (selector) => Array.from(document.querySelectorAll(selector));
  const messages = $("#messages");
  const input = $("#say");
  const runStatus = $("#run-status");

  function nonce() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...body, nonce: nonce() }),
      credentials: "same-origin",
    });
    let data = {};
    try {
      data = await response.json();
    } catch (_) {
      data = {};
    }
    if (!response.ok) throw new Error(data.error || `the server answered ${response.status}`);
    return data;
  }

  function nearBottom() {
    return messages.scrollHeight - messages.scrollTop - messages.clientHeight < 120;
  }

  // Reading the newest messages stays so when the list gets shorter (a phone's keyboard
  // coming up, a rotation): scrolled to the end, it stays at the end.
  let pinned = true;
  messages.addEventListener("scroll", () => (pinned = nearBottom()), { passive: true });
  new ResizeObserver(() => {
    if (pinned) messages.scrollTop = messages.scrollHeight;
  }).observe(messages);

  // Keyed update: messages whose HTML did not change keep their element (and any half-filled
  // form inside it); changed ones are replaced; order follows the server.
  function render(items, toEnd = false) {
    const stick = toEnd || nearBottom();
    const existing = new Map(
      Array.from(messages.children).map((el) => [el.dataset.message, el]),
    );
    const wanted = new Set(items.map((item) => item.id));
    for (const [id, el] of existing) if (!wanted.has(id)) el.remove();
    let previous = null;
    let added = false;
    for (const item of items) {
      let el = existing.get(item.id);
      if (!el || el.dataset.sig !== item.sig) {
        const template = document.createElement("template");
        template.innerHTML = item.html;
        const fresh = template.content.firstElementChild;
        fresh.dataset.sig = item.sig;
        if (el) el.replaceWith(fresh);
        el = fresh;
        added = true;
      }
      const expected = previous ? previous.nextElementSibling : messages.firstElementChild;
      if (expected !== el) messages.insertBefore(el, expected);
      previous = el;
    }
    if (!items.length) {
      messages.innerHTML = "";
      const empty = document.createElement("p");
      empty.className = "empty";
      empty.dataset.message = "empty";
      empty.textContent =
        state.where === "channel"
          ? "Nothing here yet. As Casey, type “setup Math PLN” to make this channel a community."
          : "No direct messages yet. Try “goal add …” or “help”.";
      messages.appendChild(empty);
    }
    if (added && stick) messages.scrollTop = messages.scrollHeight;
  }

  // "18 new": on a phone only the number shows (the CSS hides " new" visually, not from
  // screen readers), so a badge never covers the persona's name.
  function setBadge(badge, count) {
    badge.hidden = !(count > 0);
    badge.replaceChildren();
    if (!(count > 0)) return;
    const word = document.createElement("span");
    word.className = "badge-word";
    word.textContent = " new";
    badge.append(String(count), word);
  }

  function updateBadges() {
    for (const [id] of personas) {
      const unread = (state.dmCounts[id] || 0) - (state.seenDm[id] || 0);
      const badge = document.querySelector(`[data-unread="${id}"]`);
      if (!badge) continue;
      const show = unread > 0 && !(id === state.as && state.where === "dm");
      setBadge(badge, show ? unread : 0);
    }
    const mine = (state.dmCounts[state.as] || 0) - (state.seenDm[state.as] || 0);
    const dmBadge = $("#dm-badge");
    dmBadge.hidden = !(mine > 0 && state.where !== "dm");
    dmBadge.textContent = mine > 0 ? String(mine) : "";
    // The Menu button carries the DM count too: on a phone the conversations are in the drawer.
    setBadge($("#menu-badge"), dmBadge.hidden ? 0 : mine);
  }

  async function refresh(force, toEnd = false) {
    const params = new URLSearchParams({ as: state.as, where: state.where });
    const response = await fetch(`/playground/api/view?${params}`, { cache: "no-store" });
    if (!response.ok) return;
    const data = await response.json();
    if (data.persona !== state.as || data.where !== state.where) return; // switched meanwhile
    state.dmCounts = data.dm_counts;
    if (state.where === "dm") state.seenDm[state.as] = data.dm_counts[state.as] || 0;
    updateBadges();
    $("#community-status").textContent = data.community
      ? `Community: ${data.community}`
      : "No community yet.";
    const key = `${data.version}:${state.as}:${state.where}`;
    if (!force && key === state.key) return;
    state.key = key;
    render(data.messages, toEnd);
  }

  function showSuggestions() {
    const persona = personas.get(state.as);
    const kind =
      state.where === "dm" ? "dm" : persona.coach ? "coach_channel" : "channel";
    const box = $("#suggestions");
    box.innerHTML = "";
    for (const words of config.suggestions[kind]) {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chip";
      chip.textContent = words;
      chip.addEventListener("click", () => {
        input.value = words;
        input.focus();
      });
      box.appendChild(chip);
    }
  }

  function setThread(id) {
    state.thread = id;
    $("#replying").hidden = !id;
    input.placeholder = id
      ? "Reply in the thread (a reply to a prompt is a shared reflection)"
      : state.where === "channel"
        ? "Type a command, e.g. setup Math PLN"
        : "Message PLN Bot, e.g. goal add Use exit tickets every day";
  }

  function switchTo(as, where) {
    state.as = as;
    state.where = where;
    state.key = "";
    setThread(null);
    for (const button of $$("[data-persona]"))
      button.setAttribute("aria-pressed", String(button.dataset.persona === as));
    for (const button of $$("[data-where]"))
      button.setAttribute("aria-pressed", String(button.dataset.where === where));
    const persona = personas.get(as);
    $("#chat-title").textContent =
      where === "channel" ? `# ${config.channel}` : `${persona.name} ↔ PLN Bot (direct messages)`;
    $("#chat-help").textContent =
      where === "channel"
        ? "In the channel, what you type is a command to the bot (like /pln in Slack)."
        : `Only ${persona.name} sees this conversation. Commands work here too, and so do check-in answers.`;
    messages.innerHTML = "";
    showSuggestions();
    refresh(true);
  }

  // The sidebar is a drawer on narrow screens (the CSS breakpoint below): the Menu button
  // opens it, Close, Escape, the dimmed page or choosing a conversation closes it. While it is
  // open the rest of the page is inert, so keyboard and screen-reader focus stay in it.
  const narrow = window.matchMedia("(max-width: 63.99rem)");
  const drawer = $("#sidebar");
  const toggle = $("#menu-toggle");
  const scrim = $("#scrim");
  const behindDrawer = [$(".skip-link"), $(".top"), $(".chat")];

  function setDrawer(open, restoreFocus = true) {
    const wasOpen = document.body.classList.contains("drawer-open");
    const opening = open && narrow.matches;
    document.body.classList.toggle("drawer-open", opening);
    toggle.setAttribute("aria-expanded", String(opening));
    scrim.hidden = !opening;
    for (const element of behindDrawer) element.inert = opening;
    if (opening) {
      drawer.setAttribute("role", "dialog");
      drawer.setAttribute("aria-modal", "true");
      drawer.setAttribute("aria-labelledby", "sidebar-title");
      $("#menu-close").focus();
    } else {
      drawer.removeAttribute("role");
      drawer.removeAttribute("aria-modal");
      drawer.removeAttribute("aria-labelledby");
      if (wasOpen && restoreFocus && narrow.matches) toggle.focus();
    }
  }

  toggle.addEventListener("click", () =>
    setDrawer(!document.body.classList.contains("drawer-open")),
  );
  $("#menu-close").addEventListener("click", () => setDrawer(false));
  scrim.addEventListener("click", () => setDrawer(false));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && document.body.classList.contains("drawer-open")) {
      event.preventDefault();
      setDrawer(false);
    }
  });
  narrow.addEventListener("change", () => setDrawer(false, false)); // rotated or resized

  function conversationOf() {
    return { as: state.as, where: state.where };
  }

  async function act(button, body) {
    button.disabled = true;
    try {
      await post("/playground/api/act", { ...conversationOf(), ...body });
    } catch (error) {
      runStatus.textContent = `Could not do that: ${error.message}`;
    } finally {
      button.disabled = false;
      await refresh(true);
    }
  }

  messages.addEventListener("click", async (event) => {
    const target = event.target.closest("button");
    if (!target) return;
    const article = target.closest("article[data-message]");
    const messageId = article ? article.dataset.message : "";
    if (target.dataset.action !== undefined) {
      await act(target, {
        message: messageId,
        action: target.dataset.action,
        value: target.dataset.value || "",
      });
    } else if (target.dataset.react) {
      target.disabled = true;
      try {
        await post("/playground/api/react", { as: state.as, message: target.dataset.react });
      } finally {
        await refresh(true);
      }
    } else if (target.dataset.thread) {
      setThread(target.dataset.thread);
      input.focus();
    }
  });

  messages.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-submit]");
    if (!form) return;
    event.preventDefault();
    const article = form.closest("article[data-message]");
    const values = {};
    for (const [name, value] of new FormData(form)) values[name] = String(value);
    await act(form.querySelector("button[type=submit]"), {
      message: article ? article.dataset.message : "",
      action: form.dataset.submit,
      value: form.dataset.value || "",
      values,
    });
  });

  $("#composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    const body = { ...conversationOf(), text };
    if (state.thread && state.where === "channel") body.thread = state.thread;
    try {
      await post("/playground/api/say", body);
    } catch (error) {
      runStatus.textContent = `Could not send: ${error.message}`;
      input.value = text;
    }
    setThread(null);
    await refresh(true, true); // what you just sent, and the answer, are what you look at
  });

  $("#cancel-thread").addEventListener("click", () => setThread(null));

  for (const button of $$("[data-persona]"))
    button.addEventListener("click", () => switchTo(button.dataset.persona, state.where));
  for (const button of $$("[data-where]"))
    button.addEventListener("click", () => {
      switchTo(state.as, button.dataset.where);
      setDrawer(false); // on a phone, the chosen conversation is what to see next
    });
  for (const button of $$("[data-run]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      runStatus.textContent = "Working…";
      try {
        const data = await post("/playground/api/run", { job: button.dataset.run });
        runStatus.textContent = data.message;
      } catch (error) {
        runStatus.textContent = `Could not run it: ${error.message}`;
      } finally {
        button.disabled = false;
        await refresh(true);
      }
    });
  }

  switchTo(state.as, "channel");
  setInterval(() => refresh(false).catch(() => {}), 1500);
  document.body.dataset.ready = "true"; // the handlers are attached: the page can be used
})();
