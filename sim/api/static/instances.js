// sim's dashboard, the fleet block: the instances sharing this database (GET /v1/instances),
// refreshed every few seconds. Kept apart from dashboard.js; it only fills #instances.
"use strict";

(function () {
  const REFRESH_MS = 5000;
  const section = document.getElementById("instances");
  const tbody = document.querySelector("#instances-table tbody");
  const summary = document.getElementById("instances-summary");
  if (!section || !tbody || !summary) return;

  function headers() {
    const h = { Accept: "application/json" };
    const token = sessionStorage.getItem("simToken") || "";
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }

  function td(tr, text, cls) {
    const cell = document.createElement("td");
    if (cls) cell.className = cls;
    cell.textContent = text;
    tr.appendChild(cell);
  }

  function age(iso, now) {
    const s = Math.max(0, (now - Date.parse(iso)) / 1000);
    return s < 90 ? s.toFixed(1) + " s ago" : Math.round(s / 60) + " min ago";
  }

  function render(doc) {
    const now = Date.parse(doc.time) || Date.now();
    tbody.replaceChildren();
    for (const inst of doc.instances) {
      const tr = document.createElement("tr");
      td(tr, inst.id.slice(0, 8) + (inst.self ? " (this one)" : ""));
      td(tr, inst.host + ":" + inst.pid);
      td(tr, inst.alive ? "alive" : "silent", inst.alive ? "state state-live" : "state state-failed");
      td(tr, String(inst.users), "num");
      td(tr, age(inst.last_heartbeat, now));
      td(tr, age(inst.started_at, now));
      tbody.appendChild(tr);
    }
    summary.textContent =
      doc.live + " live instance" + (doc.live === 1 ? "" : "s") + " · owner lease " + doc.owner_lease_s + " s";
    window.simInstances = doc;
  }

  async function refresh() {
    try {
      const resp = await fetch("/v1/instances", { headers: headers(), cache: "no-store" });
      if (resp.ok) render(await resp.json());
      else summary.textContent = "instances: HTTP " + resp.status;
    } catch (err) {
      summary.textContent = "instances: offline";
    }
  }

  refresh();
  setInterval(refresh, REFRESH_MS);
})();
