// sim's dashboard: reads /dashboard/events (Server-Sent Events) and updates the table in place.
// The stream is read with fetch() so that the bearer token travels in a header, never in a URL.
"use strict";

(function () {
  const STATUSES = ["pending", "sending", "sent", "failed"];
  const tbody = document.querySelector("#users tbody");
  const empty = document.getElementById("empty");
  const conn = document.getElementById("conn");
  const message = document.getElementById("message");
  const updated = document.getElementById("updated");
  const tokenBox = document.getElementById("token-box");
  const rows = new Map();
  const pageInfo = document.getElementById("page-info");
  const prevPage = document.getElementById("prev-page");
  const nextPage = document.getElementById("next-page");
  // one page of users at a time: the stream's size does not grow with their number
  const PAGE = 50;
  const page = { offset: 0, next: null, controller: null };

  // what tests and curious people can look at: survives until the page is reloaded
  const info = (window.simDashboard = { loadedAt: Date.now(), updates: 0, streams: 0 });

  function token() {
    return sessionStorage.getItem("simToken") || "";
  }

  function headers(extra) {
    const h = Object.assign({ Accept: "application/json" }, extra || {});
    if (token()) h.Authorization = "Bearer " + token();
    return h;
  }

  function setConn(state, text) {
    conn.className = "conn conn-" + state;
    conn.textContent = text;
  }

  function say(text, isError) {
    message.textContent = text;
    message.className = isError ? "message error" : "message";
  }

  function cell(tr, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function makeRow(userId) {
    const tr = document.createElement("tr");
    tr.dataset.user = userId;
    const c = {};
    c.user = cell(tr, "user");
    c.user.textContent = userId;
    c.state = cell(tr);
    const badge = document.createElement("span");
    c.state.appendChild(badge);
    c.badge = badge;
    const prog = cell(tr);
    const bar = document.createElement("div");
    bar.className = "bar";
    c.fill = document.createElement("div");
    c.fill.className = "fill";
    c.label = document.createElement("div");
    c.label.className = "label";
    bar.append(c.fill, c.label);
    prog.appendChild(bar);
    for (const s of STATUSES) {
      c[s] = cell(tr, "num");
      c[s].dataset.field = s;
    }
    c.rate = cell(tr, "num");
    c.rate.dataset.field = "rate";
    c.error = cell(tr, "error");
    c.error.dataset.field = "last_error";
    const actions = cell(tr);
    c.toggle = document.createElement("button");
    c.toggle.type = "button";
    c.toggle.addEventListener("click", () => toggle(userId, c.toggle.dataset.action));
    actions.appendChild(c.toggle);
    actions.appendChild(redeliverButton(userId));
    tr.cells_ = c;
    return tr;
  }

  function fmtRate(r) {
    if (r === null || r === undefined) return "–";
    return (r >= 10 ? r.toFixed(0) : r.toFixed(1)) + "/s";
  }

  function render(doc) {
    info.updates += 1;
    info.last = doc;
    const seen = new Set();
    doc.users.forEach((u, index) => {
      seen.add(u.user_id);
      let tr = rows.get(u.user_id);
      if (!tr) {
        tr = makeRow(u.user_id);
        rows.set(u.user_id, tr);
      }
      if (tbody.children[index] !== tr) tbody.insertBefore(tr, tbody.children[index] || null);
      const c = tr.cells_;
      tr.dataset.state = u.state;
      c.badge.className = "state state-" + u.state;
      c.badge.textContent = u.state;
      const total = u.initial_total;
      const done = Math.min(u.initial_done, total);
      const pct = total ? Math.floor((100 * done) / total) : 100;
      c.fill.style.width = pct + "%";
      c.fill.classList.toggle("done", done >= total);
      c.label.textContent = done + " / " + total + " (" + pct + "%)";
      tr.dataset.initialDone = String(done);
      for (const s of STATUSES) c[s].textContent = String(u.counts[s]);
      c.rate.textContent = fmtRate(u.rate_per_s);
      c.error.textContent = u.last_error || "";
      c.error.title = u.last_error || "";
      c.toggle.dataset.action = u.enabled ? "disable" : "enable";
      c.toggle.textContent = u.enabled ? "Disable" : "Enable";
      c.toggle.className = u.enabled ? "danger" : "";
    });
    for (const [id, tr] of rows) {
      if (!seen.has(id)) {
        tr.remove();
        rows.delete(id);
      }
    }
    empty.hidden = doc.users.length > 0;
    page.next = doc.next_offset;
    prevPage.disabled = doc.offset === 0;
    nextPage.disabled = doc.next_offset === null;
    const states = Object.entries(doc.states).map(([s, n]) => n + " " + s).join(", ");
    const first = doc.users.length ? doc.offset + 1 : 0;
    pageInfo.textContent =
      "Users " + first + "–" + (doc.offset + doc.users.length) + " of " + doc.total +
      (states ? " (" + states + ")" : "");
    updated.textContent = "Updated " + new Date(doc.time).toLocaleTimeString();
  }

  function handleEvent(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (!data.length) return;
    const payload = JSON.parse(data.join("\n"));
    if (name === "users") {
      setConn("live", "live");
      render(payload);
      renderOutage(payload);
    } else if (name === "problem") {
      setConn("connecting", "database slow");
      updated.textContent = payload.message;
    }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function stream() {
    let delay = 1000;
    for (;;) {
      try {
        page.controller = new AbortController();
        const path = "/dashboard/events?limit=" + PAGE + "&offset=" + page.offset;
        const resp = await fetch(path, {
          headers: headers({ Accept: "text/event-stream" }),
          cache: "no-store",
          signal: page.controller.signal,
        });
        if (resp.status === 401) {
          tokenBox.hidden = false;
          setConn("down", "token needed");
          await sleep(2000);
          continue;
        }
        if (!resp.ok || !resp.body) throw new Error("HTTP " + resp.status);
        info.streams += 1;
        delay = 1000;
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n/g, "\n");
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            handleEvent(buf.slice(0, cut));
            buf = buf.slice(cut + 2);
          }
        }
        setConn("connecting", "reconnecting…");
      } catch (err) {
        if (err.name === "AbortError") continue; // another page was asked for
        setConn("down", "offline – retrying");
        delay = Math.min(delay * 2, 15000);
      }
      await sleep(delay);
    }
  }

  async function api(method, path, body) {
    const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
    if (body) init.body = JSON.stringify(body);
    const resp = await fetch(path, init);
    let doc = null;
    try {
      doc = await resp.json();
    } catch (e) {
      doc = null;
    }
    if (resp.status === 401) tokenBox.hidden = false;
    if (!resp.ok) {
      const err = doc && doc.error ? doc.error.message : "HTTP " + resp.status;
      throw new Error(err);
    }
    return doc;
  }

  async function toggle(userId, action) {
    const path = "/v1/users/" + encodeURIComponent(userId) + "/demo";
    try {
      if (action === "disable") {
        await api("DELETE", path);
        say("Demo mode disabled for " + userId + ".");
      } else {
        await api("PUT", path);
        say("Demo mode enabled for " + userId + ".");
      }
    } catch (err) {
      say(userId + ": " + err.message, true);
    }
  }

  document.getElementById("enable-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.target);
    const userId = String(form.get("user_id")).trim();
    const body = {};
    for (const key of ["videos", "comments", "dms", "seed"]) {
      const v = String(form.get(key) || "").trim();
      if (v !== "") body[key] = parseInt(v, 10);
    }
    const live = String(form.get("live_per_minute") || "").trim();
    if (live !== "") body.live_per_minute = parseFloat(live);
    try {
      const doc = await api("PUT", "/v1/users/" + encodeURIComponent(userId) + "/demo", body);
      say("Demo mode " + (doc.state === "initializing" ? "started" : "is on") + " for " + userId + ".");
    } catch (err) {
      say(userId + ": " + err.message, true);
    }
  });

  document.getElementById("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("simToken", document.getElementById("token").value);
    tokenBox.hidden = true;
    say("Token set for this tab.");
  });

  function turnPage(offset) {
    page.offset = Math.max(0, offset);
    if (page.controller) page.controller.abort();
  }
  prevPage.addEventListener("click", () => turnPage(page.offset - PAGE));
  nextPage.addEventListener("click", () => {
    if (page.next !== null) turnPage(page.next);
  });
  // --- the main app's circuit breaker, redelivery and the last errors ---------------------
  const banner = document.getElementById("circuit-banner");
  const errorsPanel = document.getElementById("errors-panel");
  const errorsBody = document.querySelector("#errors tbody");

  function renderOutage(doc) {
    const c = doc.circuit;
    const open = !!c && c.state !== "closed";
    banner.hidden = !open;
    if (open) {
      const next = c.next_probe_at ? new Date(c.next_probe_at).toLocaleTimeString() : "now";
      banner.textContent =
        "The main app is not answering: delivery is paused since " +
        new Date(c.opened_at).toLocaleTimeString() + " (" + (c.last_error || "error") + "). " +
        c.probes + " probes so far, next at " + next + "; no attempts are spent meanwhile.";
    }
    const errors = doc.recent_errors || [];
    errorsPanel.hidden = errors.length === 0;
    errorsBody.replaceChildren();
    for (const e of errors) {
      const tr = document.createElement("tr");
      const at = new Date(e.at).toLocaleTimeString();
      for (const [text, cls] of [[at], [e.user_id, "user"], [String(e.attempt), "num"], [String(e.items), "num"], [e.error || e.outcome, "error"]]) {
        cell(tr, cls).textContent = text;
      }
      tr.lastChild.title = e.error || "";
      errorsBody.appendChild(tr);
    }
  }

  function redeliverButton(userId) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "redeliver";
    button.textContent = "Redeliver failed";
    button.addEventListener("click", async () => {
      const path = "/v1/users/" + encodeURIComponent(userId) + "/demo/redeliver";
      try {
        const doc = await api("POST", path, { statuses: ["failed"] });
        say("Re-queued " + doc.requeued + " failed interactions of " + userId + ".");
      } catch (err) {
        say(userId + ": " + err.message, true);
      }
    });
    return button;
  }

  stream();
})();
