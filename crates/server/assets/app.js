// Bulwark dashboard: the card's buttons, admin actions and live updates.
// Everything it shows goes through textContent, never innerHTML, so data
// from the API cannot become markup. Requests carry the session cookie
// (same origin) and the page's CSRF token.
"use strict";

(function () {
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  if (!csrfMeta) return; // the sign-in page needs no script
  const csrf = csrfMeta.content;
  const isAdmin = document.body.dataset.role === "admin";

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  async function api(method, url, body) {
    const headers = { "Accept": "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(url, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 401) { window.location.assign("/"); throw new Error("signed out"); }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
    if (!res.ok) throw new Error((data && data.error) || ("HTTP " + res.status));
    return data;
  }

  function badge(ok, yes, no) {
    return el("span", { class: ok ? "badge up" : "badge down" }, ok ? yes : no);
  }
  const pct = (x) => (x * 100).toFixed(3) + "%";
  function table(head, rows) {
    return el("table", { class: "compact" },
      el("thead", null, el("tr", null, ...head.map((h) => el("th", null, h)))),
      el("tbody", null, ...rows.map((r) => el("tr", null, ...r.map((c) => el("td", null, c))))));
  }
  function secs(s) {
    if (s === null || s === undefined) return "—";
    return s < 90 ? s.toFixed(1) + " s" : (s / 60).toFixed(1) + " min";
  }

  const render = {
    uptime(r) {
      const down = r.results.filter((x) => !x.ok).length;
      return [
        el("p", null, badge(r.ok, "all up", down + " DOWN"), " ", r.results.length + " monitors probed"),
        table(["Monitor", "State", "Latency", "Status", "Error"], r.results.map((x) => [
          x.monitor, badge(x.ok, "up", "DOWN"), x.latency_ms + " ms",
          x.status === null || x.status === undefined ? "" : String(x.status), x.error || "",
        ])),
      ];
    },
    slo(list) {
      if (!list.length) return [el("p", { class: "muted" }, "No SLOs configured.")];
      return [table(["SLO", "Target", "Attainment", "Budget left", "Burn rates"], list.map((s) => [
        s.name, pct(s.target), pct(s.attainment), (s.budget_remaining * 100).toFixed(1) + "%",
        s.burn_rates.map((b) => b.window + " " + b.rate.toFixed(2) + "×").join(", "),
      ]))];
    },
    dr(list) {
      if (!list.length) return [el("p", { class: "muted" }, "No drill has run yet.")];
      return list.map((d) => el("div", { class: "drill" },
        el("p", null, badge(d.passed, "passed", "FAILED"), " ", d.drill + " at " + d.started_at),
        el("p", null, "RTO " + secs(d.rto_seconds) + (d.rto_target_seconds ? " (target " + secs(d.rto_target_seconds) + ") " : " "),
          d.rto_met === null || d.rto_met === undefined ? "" : badge(d.rto_met, "met", "MISSED"),
          " · RPO " + secs(d.rpo_seconds) + (d.rpo_target_seconds ? " (target " + secs(d.rpo_target_seconds) + ") " : " "),
          d.rpo_met === null || d.rpo_met === undefined ? "" : badge(d.rpo_met, "met", "MISSED")),
        table(["Step", "Result", "Duration", "Detail"], d.steps.map((s) => [
          s.name, badge(s.ok, "ok", "FAIL"), (s.duration_ms / 1000).toFixed(1) + " s", s.detail || "",
        ]))));
    },
  };
  const cardCalls = {
    uptime: () => api("POST", "/api/ops/uptime/test"),
    slo: () => api("GET", "/api/ops/slo/status"),
    dr: () => api("GET", "/api/ops/dr/last"),
  };

  const output = document.getElementById("output");
  document.querySelectorAll("button[data-card]").forEach((button) => {
    button.addEventListener("click", async () => {
      const which = button.dataset.card;
      button.disabled = true;
      output.replaceChildren(el("p", { class: "muted" }, button.textContent + "…"));
      try {
        output.replaceChildren(el("h3", null, button.textContent), ...render[which](await cardCalls[which]()));
      } catch (e) {
        output.replaceChildren(el("p", { class: "error" }, button.textContent + " failed: " + e.message));
      } finally {
        button.disabled = false;
      }
    });
  });

  const toast = document.getElementById("toast");
  function say(message) {
    toast.textContent = message;
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { toast.textContent = ""; }, 6000);
  }

  // Admin actions: buttons and forms naming the API call to make.
  if (isAdmin) {
    document.querySelectorAll("button[data-url]").forEach((button) => {
      button.addEventListener("click", async () => {
        if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
        button.disabled = true;
        try {
          const r = await api(button.dataset.method || "POST", button.dataset.url);
          say("Done" + (r && r.outcome ? ": " + r.outcome + (r.summary ? " — " + r.summary : "") : "."));
        } catch (e) {
          say("Failed: " + e.message);
        } finally {
          button.disabled = false;
        }
      });
    });
    document.querySelectorAll("form[data-url]").forEach((form) => {
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const f = new FormData(form);
        let body;
        if (form.dataset.json === "maintenance") {
          body = {
            name: f.get("name"), monitors: [f.get("monitors")],
            starts_at: new Date(f.get("starts_at")).toISOString(),
            ends_at: new Date(f.get("ends_at")).toISOString(),
          };
        } else {
          body = Object.fromEntries(f.entries());
        }
        try {
          await api(form.dataset.method || "POST", form.dataset.url, body);
          say("Saved.");
          form.reset();
        } catch (e) {
          say("Failed: " + e.message);
        }
      });
    });
  }

  // Live monitor state.
  if (window.EventSource) {
    const source = new EventSource("/events");
    source.addEventListener("monitors", (ev) => {
      for (const m of JSON.parse(ev.data)) {
        document.querySelectorAll('[data-monitor="' + CSS.escape(m.name) + '"]').forEach((b) => {
          b.className = "badge " + (m.up === true ? "up" : m.up === false ? "down" : "unknown");
          b.textContent = m.up === true ? "up" : m.up === false ? "DOWN" : "no data";
        });
        document.querySelectorAll('[data-latency="' + CSS.escape(m.name) + '"]').forEach((c) => {
          c.textContent = m.latency_ms === null || m.latency_ms === undefined ? "" : m.latency_ms + " ms";
        });
      }
    });
    source.addEventListener("signed-out", () => { source.close(); window.location.assign("/"); });
  }
})();
