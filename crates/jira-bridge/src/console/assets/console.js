// jira-bridge console: small, dependency-free helpers for the server-rendered pages.
// State changes call the /v1 API with the session cookie and the session's CSRF
// token (X-CSRF-Token); reads are rendered by the server.
"use strict";

(function () {
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // --- API calls -------------------------------------------------------------
  async function api(method, path, body) {
    const headers = { "X-CSRF-Token": csrf, Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = { detail: text }; }
    }
    if (!res.ok) {
      const err = new Error((data && (data.detail || data.title)) || res.statusText);
      err.status = res.status;
      err.problem = data;
      throw err;
    }
    return data;
  }

  // --- Messages --------------------------------------------------------------
  function showError(message) {
    const box = $("#error");
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  }
  function clearError() {
    const box = $("#error");
    if (box) { box.hidden = true; box.textContent = ""; }
  }
  function showNotice(message) {
    const box = $("#flash");
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
  }
  // A notice that survives the reload that follows an action.
  function reloadWith(message, url) {
    if (message) sessionStorage.setItem("jb-notice", message);
    if (url) window.location.assign(url); else window.location.reload();
  }
  function problemText(e) {
    let text = e.message;
    const errors = e.problem && e.problem.errors;
    if (errors && typeof errors === "object") {
      const parts = Object.entries(errors).map(([k, v]) => k + ": " + v);
      if (parts.length) text += " (" + parts.join("; ") + ")";
    }
    return text;
  }

  // --- Times in the viewer's zone ------------------------------------------
  function localTimes(root) {
    $$("time[datetime]", root).forEach((el) => {
      const d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      el.title = el.getAttribute("datetime");
      el.textContent = d.toLocaleString(undefined, {
        year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
      });
    });
  }

  // --- Generic action buttons: data-api="METHOD /v1/path" ----------------------
  function wireActions(root) {
    $$("[data-api]", root).forEach((btn) => {
      btn.addEventListener("click", async () => {
        const [method, path] = btn.dataset.api.split(" ");
        if (btn.dataset.confirm && !window.confirm(btn.dataset.confirm)) return;
        clearError();
        btn.disabled = true;
        btn.setAttribute("aria-busy", "true");
        try {
          const body = btn.dataset.body ? JSON.parse(btn.dataset.body) : undefined;
          await api(method, path, body);
          reloadWith(btn.dataset.done || "Done.");
        } catch (e) {
          showError(problemText(e));
          btn.disabled = false;
          btn.removeAttribute("aria-busy");
        }
      });
    });
  }

  // --- Connections: token wizard and OAuth ----------------------------------
  function wireWizard() {
    const form = $("#token-wizard");
    if (!form) return;
    const result = $("#w-result");
    const connect = $("#w-connect");
    const emailRow = $("#w-email").parentElement;
    const kind = $("#w-kind");
    const syncKind = () => { emailRow.hidden = kind.value !== "cloud_token"; };
    kind.addEventListener("change", syncKind);
    syncKind();
    const creds = () => {
      const body = {
        kind: kind.value,
        base_url: $("#w-base").value.trim(),
        token: $("#w-token").value,
      };
      if (kind.value === "cloud_token") body.email = $("#w-email").value.trim();
      return body;
    };
    // Any change to the credentials needs a new verification.
    $$("input, select", form).forEach((el) => el.addEventListener("input", () => {
      if (el.id !== "w-name") { connect.disabled = true; $("#step-connect").removeAttribute("aria-current"); $("#step-verify").setAttribute("aria-current", "step"); }
    }));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      result.className = "result";
      result.textContent = "Checking the credentials with Jira…";
      connect.disabled = true;
      try {
        const v = await api("POST", "/v1/connections/verify", creds());
        const who = v.account.display_name || v.account.email || v.account.account_id || "an account";
        result.classList.add("ok");
        result.textContent = "Verified: " + who + " on " + (v.server_title || v.base_url) + " (" + (v.deployment || "Jira") + (v.version ? " " + v.version : "") + "). You can connect now.";
        if (!$("#w-name").value) $("#w-name").value = v.server_title || "";
        connect.disabled = false;
        $("#step-verify").removeAttribute("aria-current");
        $("#step-connect").setAttribute("aria-current", "step");
        connect.focus();
      } catch (e) {
        result.classList.add("bad");
        result.textContent = "Not verified: " + problemText(e);
      }
    });
    connect.addEventListener("click", async () => {
      clearError();
      connect.disabled = true;
      try {
        const body = creds();
        body.name = $("#w-name").value.trim() || body.base_url;
        const c = await api("POST", "/v1/connections", body);
        reloadWith("Connected " + c.name + ".");
      } catch (e) {
        result.className = "result bad";
        result.textContent = "Not connected: " + problemText(e);
        connect.disabled = false;
      }
    });
  }

  function wireOAuth() {
    const form = $("#oauth-start");
    if (form) {
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        clearError();
        try {
          const body = { return_to: window.location.origin + "/console/connections/oauth" };
          const name = $("#o-name").value.trim();
          if (name) body.name = name;
          const s = await api("POST", "/v1/oauth/start", body);
          window.location.assign(s.authorization_url);
        } catch (e) { showError(problemText(e)); }
      });
    }
    const picker = $("#site-picker");
    if (picker) {
      picker.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        clearError();
        const chosen = $('input[name="cloud_id"]:checked', picker);
        if (!chosen) { showError("Pick a site."); return; }
        try {
          const c = await api("POST", "/v1/oauth/selections/" + encodeURIComponent(picker.dataset.selection), { cloud_id: chosen.value });
          reloadWith("Connected " + c.name + ".", "/console/connections");
        } catch (e) { showError(problemText(e)); }
      });
    }
  }

  // --- Configs: pickers fed by metadata -------------------------------------
  function fill(select, items, valueOf, labelOf, keepFirst) {
    const first = keepFirst ? select.options[0] : null;
    select.textContent = "";
    if (first) select.appendChild(first);
    items.forEach((it) => {
      const o = document.createElement("option");
      o.value = valueOf(it);
      o.textContent = labelOf(it);
      select.appendChild(o);
    });
  }
  function wireConfigForm() {
    const form = $("#config-form");
    if (!form) return;
    const existing = JSON.parse(form.dataset.config || "null");
    const conn = $("#c-connection");
    const box = $("#targets");
    const tpl = $("#target-row");
    let projects = [];
    let priorities = [];
    const base = () => "/v1/connections/" + encodeURIComponent(conn.value);

    async function loadTypes(row, selected) {
      const project = $('[name="t-project"]', row).value;
      const types = $('[name="t-type"]', row);
      if (!project) { types.textContent = ""; return; }
      try {
        const r = await api("GET", base() + "/projects/" + encodeURIComponent(project) + "/issue-types");
        fill(types, r.items.filter((t) => !t.subtask), (t) => t.name, (t) => t.name);
        if (selected) types.value = selected;
      } catch (e) { showError("Issue types of " + project + ": " + problemText(e)); }
    }
    async function addRow(t) {
      const frag = tpl.content.cloneNode(true);
      const row = frag.querySelector(".target");
      box.appendChild(frag);
      const n = box.children.length;
      $$("input, select", row).forEach((el) => { el.id = el.name + "-" + n; });
      const proj = $('[name="t-project"]', row);
      fill(proj, projects, (p) => p.key, (p) => p.key + " — " + p.name);
      fill($('[name="t-priority"]', row), priorities, (p) => p.name, (p) => p.name, true);
      if (t) {
        $('[name="t-name"]', row).value = t.name;
        proj.value = t.project_key;
        if (t.priority) $('[name="t-priority"]', row).value = t.priority;
      }
      proj.addEventListener("change", () => loadTypes(row));
      $(".remove-target", row).addEventListener("click", () => row.remove());
      await loadTypes(row, t && t.issue_type);
    }
    async function loadMeta() {
      clearError();
      try {
        const [p, q] = await Promise.all([api("GET", base() + "/projects"), api("GET", base() + "/priorities")]);
        projects = p.items;
        priorities = q.items;
      } catch (e) {
        projects = []; priorities = [];
        showError("Could not read Jira metadata: " + problemText(e));
      }
    }
    async function init() {
      if (existing) {
        $("#c-name").value = existing.name;
        conn.value = existing.connection_id;
        $("#c-description").value = existing.description || "";
      }
      await loadMeta();
      box.textContent = "";
      const targets = existing ? existing.targets : [null];
      for (const t of targets) await addRow(t);
      form.dataset.ready = "true";
    }
    conn.addEventListener("change", async () => {
      await loadMeta();
      const rows = $$(".target", box);
      box.textContent = "";
      for (let i = 0; i < Math.max(rows.length, 1); i++) await addRow(null);
    });
    $("#add-target").addEventListener("click", () => addRow(null));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      const targets = $$(".target", box).map((row) => {
        const t = {
          name: $('[name="t-name"]', row).value.trim(),
          project_key: $('[name="t-project"]', row).value,
          issue_type: $('[name="t-type"]', row).value,
        };
        const pr = $('[name="t-priority"]', row).value;
        if (pr) t.priority = pr;
        if (existing) {
          const old = existing.targets.find((o) => o.name === t.name);
          if (old) ["labels", "completed_status", "fields"].forEach((k) => { if (old[k] !== undefined) t[k] = old[k]; });
        }
        return t;
      });
      const body = { name: $("#c-name").value.trim(), targets };
      const description = $("#c-description").value.trim();
      try {
        let saved;
        if (form.dataset.id) {
          body.description = description || null;
          saved = await api("PATCH", "/v1/configs/" + form.dataset.id, body);
        } else {
          body.connection_id = conn.value;
          if (description) body.description = description;
          saved = await api("POST", "/v1/configs", body);
        }
        reloadWith("Saved " + saved.name + ".", "/console/configs");
      } catch (e) { showError(problemText(e)); }
    });
    init();
  }
  function wireConfigVerify() {
    $$("[data-verify-config]").forEach((btn) => {
      btn.addEventListener("click", async () => {
        const id = btn.dataset.verifyConfig;
        const out = document.getElementById("verify-" + id);
        out.className = "result";
        out.textContent = "Checking…";
        try {
          const r = await api("POST", "/v1/configs/" + id + "/verify");
          out.classList.add(r.ok ? "ok" : "bad");
          out.textContent = r.ok ? "All targets exist in Jira." :
            r.targets.filter((t) => !t.ok).map((t) => t.name + ": " + Object.entries(t.problems).map(([k, v]) => k + " " + v).join(", ")).join("; ");
        } catch (e) { out.classList.add("bad"); out.textContent = problemText(e); }
      });
    });
  }

  // --- Tickets: transition --------------------------------------------------
  function wireTransitions() {
    $$("[data-transition]").forEach((sel) => {
      sel.addEventListener("change", async () => {
        if (!sel.value) return;
        clearError();
        try {
          const t = await api("POST", "/v1/tickets/" + sel.dataset.transition + "/transition", { to_category: sel.value });
          reloadWith((t.issue_key || "Ticket") + " is now " + (t.status || sel.value) + ".");
        } catch (e) { showError(problemText(e)); sel.value = ""; }
      });
    });
  }

  // --- Jobs: live progress over SSE ------------------------------------------
  function wireJob() {
    const box = $("#job");
    if (!box) return;
    const id = box.dataset.job;
    const bar = $("#job-progress");
    const set = (sel, v) => { const el = $(sel); if (el) el.textContent = String(v); };
    let refreshing = false;
    async function refreshItems() {
      if (refreshing) return;
      refreshing = true;
      try {
        const res = await fetch(window.location.pathname, { credentials: "same-origin" });
        const doc = new DOMParser().parseFromString(await res.text(), "text/html");
        const fresh = doc.getElementById("items");
        if (fresh) { $("#items").replaceWith(fresh); localTimes(fresh); }
      } catch (_) { /* the next event tries again */ }
      refreshing = false;
    }
    function render(j) {
      const settled = j.succeeded + j.failed + j.cancelled;
      const pct = j.total > 0 ? Math.floor((settled * 100) / j.total) : 100;
      bar.value = pct;
      bar.textContent = pct + "%";
      set("#job-percent", pct);
      set("#c-succeeded", j.succeeded);
      set("#c-failed", j.failed);
      set("#c-pending", j.pending + j.running + j.held);
      set("#c-cancelled", j.cancelled);
      set("#c-total", j.total);
      const st = $("#job-state");
      st.textContent = "";
      const b = document.createElement("span");
      b.className = "badge job-" + j.state;
      b.textContent = j.state.replace(/_/g, " ");
      st.appendChild(b);
      box.dataset.state = j.state;
      $("#job-retry").disabled = j.failed === 0;
      $("#job-cancel").disabled = !!j.finished_at;
    }
    const es = new EventSource("/v1/jobs/" + encodeURIComponent(id) + "/events");
    let last = 0;
    es.addEventListener("progress", (ev) => {
      const j = JSON.parse(ev.data);
      render(j);
      const now = Date.now();
      if (now - last > 1500) { last = now; refreshItems(); }
    });
    es.addEventListener("finished", (ev) => {
      render(JSON.parse(ev.data));
      es.close();
      refreshItems();
    });
    es.onerror = () => { if (es.readyState === EventSource.CLOSED) return; };
    window.addEventListener("pagehide", () => es.close());
  }

  // --- Time entries: sync selected -------------------------------------------
  function wireEntries() {
    const all = $("#select-all");
    if (all) all.addEventListener("change", () => $$('input[name="source_id"]').forEach((c) => { c.checked = all.checked; }));
    const btn = $("#sync-selected");
    if (!btn) return;
    btn.addEventListener("click", async () => {
      const ids = $$('input[name="source_id"]:checked').map((c) => c.value);
      if (!ids.length) { showError("Select at least one entry."); return; }
      clearError();
      try {
        const r = await api("POST", "/v1/time-entries/sync", { source_ids: ids });
        reloadWith("Syncing " + r.total + " entries.", "/console/jobs/" + r.job_id);
      } catch (e) { showError(problemText(e)); }
    });
  }

  // --- Events: add an endpoint, show its secret once ---------------------------
  function wireSubscriptions() {
    const form = $("#subscription-form");
    if (!form) return;
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      const body = { url: $("#s-url").value.trim() };
      const d = $("#s-description").value.trim();
      if (d) body.description = d;
      const events = $$('input[name="events"]:checked', form).map((c) => c.value);
      if (events.length) body.events = events;
      try {
        const s = await api("POST", "/v1/subscriptions", body);
        form.hidden = true;
        const box = $("#secret-once");
        $("#secret-value").textContent = s.secret || "";
        box.hidden = false;
        box.focus();
      } catch (e) { showError(problemText(e)); }
    });
    $("#secret-done").addEventListener("click", () => reloadWith("Endpoint added."));
  }

  // --- Search with autosuggest ------------------------------------------------
  function wireSearch() {
    const form = $("#search-form");
    if (!form) return;
    const input = $("#q");
    const list = $("#suggestions");
    const conn = $("#q-connection");
    let timer = null;
    let active = -1;
    let seq = 0;
    const close = () => { list.hidden = true; input.setAttribute("aria-expanded", "false"); input.removeAttribute("aria-activedescendant"); active = -1; };
    const options = () => $$('[role="option"]', list);
    function highlight(i) {
      const opts = options();
      if (!opts.length) return;
      active = (i + opts.length) % opts.length;
      opts.forEach((o, k) => o.setAttribute("aria-selected", k === active ? "true" : "false"));
      input.setAttribute("aria-activedescendant", opts[active].id);
    }
    function choose(key) { input.value = key; close(); form.requestSubmit(); }
    async function suggest() {
      const q = input.value.trim();
      if (!q) { close(); return; }
      const mine = ++seq;
      try {
        const r = await api("GET", "/v1/connections/" + encodeURIComponent(conn.value) + "/issues/picker?q=" + encodeURIComponent(q));
        if (mine !== seq) return;
        list.textContent = "";
        r.items.forEach((s, i) => {
          const li = document.createElement("li");
          li.id = "sug-" + i;
          li.setAttribute("role", "option");
          li.setAttribute("aria-selected", "false");
          const k = document.createElement("strong");
          k.textContent = s.key;
          li.appendChild(k);
          li.appendChild(document.createTextNode(" " + (s.summary || "")));
          li.addEventListener("mousedown", (e) => { e.preventDefault(); choose(s.key); });
          list.appendChild(li);
        });
        list.hidden = r.items.length === 0;
        input.setAttribute("aria-expanded", r.items.length ? "true" : "false");
        active = -1;
      } catch (e) { close(); }
    }
    input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(suggest, 200); });
    input.addEventListener("keydown", (e) => {
      if (list.hidden) return;
      if (e.key === "ArrowDown") { e.preventDefault(); highlight(active + 1); }
      else if (e.key === "ArrowUp") { e.preventDefault(); highlight(active - 1); }
      else if (e.key === "Enter" && active >= 0) { e.preventDefault(); choose(options()[active].querySelector("strong").textContent); }
      else if (e.key === "Escape") { close(); }
    });
    input.addEventListener("blur", () => setTimeout(close, 100));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      close();
      clearError();
      const out = $("#search-results");
      out.textContent = "Searching…";
      try {
        const r = await api("GET", "/v1/connections/" + encodeURIComponent(conn.value) + "/issues/search?limit=50&q=" + encodeURIComponent(input.value.trim()));
        out.textContent = "";
        if (!r.items.length) { out.textContent = "No issues match."; return; }
        const table = document.createElement("table");
        table.innerHTML = '<caption class="sr-only">Search results</caption><thead><tr><th scope="col">Key</th><th scope="col">Summary</th><th scope="col">Status</th><th scope="col">Assignee</th></tr></thead>';
        const body = document.createElement("tbody");
        r.items.forEach((it) => {
          const tr = document.createElement("tr");
          const cells = [it.key, it.summary || "", it.status ? it.status.name : "", it.assignee ? (it.assignee.display_name || "") : ""];
          cells.forEach((c, i) => {
            const td = document.createElement("td");
            if (i === 0) { const a = document.createElement("a"); a.href = it.url; a.rel = "noopener noreferrer"; a.target = "_blank"; a.textContent = c; td.appendChild(a); }
            else if (i === 2 && it.status) { const b = document.createElement("span"); b.className = "badge cat-" + (it.status.category || "unknown"); b.textContent = c; td.appendChild(b); }
            else td.textContent = c;
            tr.appendChild(td);
          });
          body.appendChild(tr);
        });
        table.appendChild(body);
        const wrap = document.createElement("div");
        wrap.className = "table-wrap";
        wrap.appendChild(table);
        out.appendChild(wrap);
      } catch (e) { out.textContent = ""; showError(problemText(e)); }
    });
  }


  // --- Exports: paste or upload, preview (dry run), run, roll back ----------------
  function planTree(plan) {
    const wrap = document.createElement("div");
    const head = document.createElement("p");
    const c = plan.counts;
    head.textContent = `Preview for ${plan.project_key} (${plan.project_style}): ${c.create} to create, ${c.existing} existing, ${c.update} to update, ${c.invalid} invalid, ${c.blocked} blocked.`;
    wrap.appendChild(head);
    const list = (items) => {
      const ul = document.createElement("ul");
      ul.className = "tree";
      items.forEach((it) => {
        const li = document.createElement("li");
        const node = document.createElement("span");
        node.className = "node";
        const b = document.createElement("span");
        b.className = "badge plan-" + it.action;
        b.textContent = it.action;
        node.appendChild(b);
        node.appendChild(document.createTextNode(" " + (it.issue_key ? it.issue_key + " " : "") + it.summary + " "));
        const t = document.createElement("span");
        t.className = "muted";
        t.textContent = it.issue_type;
        node.appendChild(t);
        const errs = Object.entries(it.errors || {});
        if (errs.length) {
          const e = document.createElement("span");
          e.className = "error-text";
          e.textContent = " " + errs.map(([k, v]) => k + ": " + v).join("; ");
          node.appendChild(e);
        }
        li.appendChild(node);
        if (it.stories && it.stories.length) li.appendChild(list(it.stories));
        ul.appendChild(li);
      });
      return ul;
    };
    wrap.appendChild(list(plan.epics));
    return wrap;
  }
  function wireExports() {
    const form = $("#export-form");
    if (form) {
      const tree = $("#e-tree");
      const run = $("#e-run");
      const out = $("#e-plan");
      let body = null;
      $("#e-file").addEventListener("change", (ev) => {
        const f = ev.target.files[0];
        if (!f) return;
        const r = new FileReader();
        r.onload = () => { tree.value = String(r.result); run.disabled = true; };
        r.readAsText(f);
      });
      tree.addEventListener("input", () => { run.disabled = true; });
      $("#e-project").addEventListener("input", () => { run.disabled = true; });
      async function build() {
        const res = await fetch("/console/exports/parse", {
          method: "POST", credentials: "same-origin",
          headers: { "X-CSRF-Token": csrf, "Content-Type": "text/plain" }, body: tree.value,
        });
        const data = await res.json();
        if (!res.ok) { const e = new Error(data.detail || res.statusText); e.problem = data; throw e; }
        data.connection_id = $("#e-connection").value;
        const project = $("#e-project").value.trim();
        if (project) data.project_key = project;
        return data;
      }
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        clearError();
        run.disabled = true;
        out.textContent = "Planning…";
        try {
          body = await build();
          const plan = await api("POST", "/v1/exports", Object.assign({}, body, { dry_run: true }));
          out.textContent = "";
          out.appendChild(planTree(plan));
          run.disabled = plan.counts.invalid > 0;
          if (plan.counts.invalid > 0) showError("Some items are not valid; fix them and preview again.");
        } catch (e) { out.textContent = ""; showError(problemText(e)); }
      });
      run.addEventListener("click", async () => {
        clearError();
        run.disabled = true;
        try {
          const started = await api("POST", "/v1/exports", Object.assign({}, body, { dry_run: false }));
          reloadWith("Export started.", "/console/jobs/" + started.job_id);
        } catch (e) { showError(problemText(e)); run.disabled = false; }
      });
    }
    const rb = $("#rollback");
    if (rb) {
      rb.addEventListener("click", async () => {
        if (!window.confirm("Delete the issues this export created in Jira (stories first)?")) return;
        clearError();
        try {
          const r = await api("POST", "/v1/exports/" + rb.dataset.rollback + "/rollback", {});
          reloadWith("Rollback started.", "/console/jobs/" + r.job_id);
        } catch (e) { showError(problemText(e)); }
      });
    }
  }

  // --- Releases: create from a config's targets ---------------------------------
  function wireReleases() {
    const form = $("#release-form");
    if (!form) return;
    const cfg = $("#r-config");
    const box = $("#r-platforms");
    const sync = () => {
      box.textContent = "";
      const targets = (cfg.selectedOptions[0].dataset.targets || "").split(",").filter(Boolean);
      targets.forEach((t, i) => {
        const l = document.createElement("label");
        l.className = "check";
        const c = document.createElement("input");
        c.type = "checkbox"; c.name = "platform"; c.value = t; c.checked = true; c.id = "r-p-" + i;
        l.appendChild(c);
        l.appendChild(document.createTextNode(" " + t));
        box.appendChild(l);
      });
    };
    cfg.addEventListener("change", sync);
    sync();
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      const body = {
        config_id: cfg.value,
        version: $("#r-version").value.trim(),
        platforms: $$('input[name="platform"]:checked', form).map((c) => c.value),
      };
      const d = $("#r-date").value;
      if (d) body.planned_date = d;
      try {
        const r = await api("POST", "/v1/releases", body);
        reloadWith("Release " + r.version + " created.");
      } catch (e) { showError(problemText(e)); }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const notice = sessionStorage.getItem("jb-notice");
    if (notice) { sessionStorage.removeItem("jb-notice"); showNotice(notice); }
    localTimes(document);
    wireActions(document);
    wireWizard();
    wireOAuth();
    wireConfigForm();
    wireConfigVerify();
    wireTransitions();
    wireJob();
    wireEntries();
    wireSubscriptions();
    wireSearch();
    wireExports();
    wireReleases();
    if (window.jbConsolePage) window.jbConsolePage({ api, showError, clearError, reloadWith, problemText });
  });
  window.jbConsole = { api, showError, clearError, reloadWith, problemText, localTimes };
})();
