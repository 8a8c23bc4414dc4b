// The content view: a user's videos with their comments (replies nested) and DM threads,
// with labels as badges. The token, when needed, travels in a header and stays in this tab.
(function () {
  "use strict";
  const form = document.getElementById("user-form");
  const message = document.getElementById("message");
  const tokenLabel = document.getElementById("token-label");
  const tokenInput = document.getElementById("token");
  const state = { loaded: 0, error: null };
  window.simContent = state;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function badges(item, keys) {
    const box = el("span", "badges");
    for (const key of keys) {
      const value = item[key];
      if (value === undefined || value === null) continue;
      const cls = key === "sentiment" ? value : key;
      const badge = el("span", "badge " + cls, String(value).replace("_", " "));
      badge.dataset.label = key;
      box.appendChild(badge);
    }
    return box;
  }

  function when(iso) {
    return new Date(iso).toLocaleString();
  }

  function comment(c) {
    const node = el("div", "comment");
    node.dataset.intent = c.intent || "";
    const head = el("div");
    head.appendChild(el("span", "who", c.author.handle));
    head.appendChild(badges(c, ["intent", "sentiment"]));
    head.appendChild(el("span", "meta", " " + when(c.created_at) + " · " + (c.likes || 0) + " likes"));
    node.appendChild(head);
    node.appendChild(el("div", "text", c.text));
    if (c.replies && c.replies.length) {
      const replies = el("div", "replies");
      c.replies.forEach((r) => replies.appendChild(comment(r)));
      node.appendChild(replies);
    }
    return node;
  }

  function video(v) {
    const node = el("article", "video");
    node.appendChild(el("h3", null, v.title));
    const meta = el("div", "meta", when(v.created_at) + " · " + v.views + " views · ");
    meta.appendChild(badges(v, ["topic", "intent", "sentiment", "language"]));
    node.appendChild(meta);
    node.appendChild(el("p", "desc", v.text));
    const list = el("div", "comments");
    v.comments.forEach((c) => list.appendChild(comment(c)));
    node.appendChild(list);
    return node;
  }

  function thread(t) {
    const node = el("article", "thread");
    const first = t.messages[0];
    const fan = t.messages.find((m) => m.direction !== "outbound") || first;
    const head = el("h3", null, fan.author.name + " ");
    head.appendChild(badges(first, ["intent", "topic"]));
    node.appendChild(head);
    for (const m of t.messages) {
      const msg = el("div", "msg " + (m.direction || "inbound"), m.text);
      msg.appendChild(el("div", "meta", when(m.created_at) + " "));
      msg.lastChild.appendChild(badges(m, ["sentiment"]));
      node.appendChild(msg);
    }
    return node;
  }

  async function load(user) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem("simToken");
    if (token) headers.Authorization = "Bearer " + token;
    message.textContent = "Loading…";
    const resp = await fetch("/dashboard/api/users/" + encodeURIComponent(user) + "/content", {
      headers,
      cache: "no-store",
    });
    if (resp.status === 401) {
      tokenLabel.hidden = false;
      message.textContent = "This sim needs its API token.";
      return;
    }
    const doc = await resp.json();
    if (!resp.ok) {
      state.error = doc.error ? doc.error.message : String(resp.status);
      message.textContent = state.error;
      return;
    }
    const videos = document.getElementById("videos");
    const threads = document.getElementById("threads");
    videos.replaceChildren(...doc.videos.map(video));
    threads.replaceChildren(...doc.threads.map(thread));
    document.getElementById("niche").textContent = doc.niche || "";
    document.getElementById("content").hidden = false;
    const shown = doc.videos.reduce((n, v) => n + v.comments.length, 0);
    message.textContent = doc.videos.length + " videos, " + shown + " top-level comments, " +
      doc.threads.length + " DM threads (the first of each kind)";
    state.loaded += 1;
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (tokenInput.value) sessionStorage.setItem("simToken", tokenInput.value);
    const user = new FormData(form).get("user");
    history.replaceState(null, "", "?user=" + encodeURIComponent(user));
    load(user).catch((err) => { state.error = String(err); message.textContent = state.error; });
  });

  const initial = new URLSearchParams(location.search).get("user");
  if (initial) {
    form.elements.user.value = initial;
    load(initial).catch((err) => { state.error = String(err); message.textContent = state.error; });
  }
})();
