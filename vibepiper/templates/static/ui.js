// Live updates of a run page: while the run goes on, its assets' states, timings and logs
// are fetched from /api/runs/RUN_ID twice a second and written into the page as text.
(function () {
  const head = document.getElementById("run-status");
  if (!head || head.dataset.live !== "yes") return;
  const runId = head.dataset.run;
  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) {
      const span = document.createElement("span");
      span.className = "status " + cls;
      span.textContent = text;
      td.appendChild(span);
    } else {
      td.textContent = text;
    }
    return td;
  }
  function render(found) {
    const table = document.getElementById("run-assets");
    while (table.rows.length > 1) table.deleteRow(1);
    for (const m of found.assets) {
      const tr = document.createElement("tr");
      tr.dataset.asset = m.asset;
      const name = document.createElement("td");
      const link = document.createElement("a");
      link.href = "/assets/" + encodeURIComponent(m.asset);
      link.textContent = m.asset;
      name.appendChild(link);
      tr.appendChild(name);
      tr.appendChild(cell(m.status, m.status));
      tr.appendChild(cell(m.seconds == null ? "" : String(m.seconds)));
      tr.appendChild(cell(m.row_count == null ? "" : String(m.row_count)));
      const bar = document.createElement("td");
      bar.className = "timeline";
      if (m.width) {
        const span = document.createElement("span");
        span.className = "bar " + m.status;
        span.style.marginLeft = m.left + "%";
        span.style.width = m.width + "%";
        bar.appendChild(span);
      }
      tr.appendChild(bar);
      tr.appendChild(cell(m.error || m.reason || (m.status === "pending" ? "waiting or running" : "")));
      table.appendChild(tr);
    }
    document.getElementById("run-empty").textContent = found.assets.length ? "" : "no asset has finished yet";
    const status = head.querySelector(".status");
    status.textContent = found.run.status;
    status.className = "status " + found.run.status;
    document.getElementById("run-logs").textContent = found.logs
      .map((l) => `${String(l.logged_at).slice(0, 19).replace("T", " ")} ${l.level} ${l.asset}: ${l.message}`)
      .join("\n");
    return found.live;
  }
  async function poll() {
    try {
      const response = await fetch("/api/runs/" + encodeURIComponent(runId) + location.search);
      if (response.ok && !render(await response.json())) {
        head.dataset.live = "no";
        return;
      }
    } catch (e) {
      // the server restarted: try again
    }
    setTimeout(poll, 500);
  }
  setTimeout(poll, 500);
})();

// Pages marked data-refresh (the runs list, the overview): their tables are fetched again
// every two seconds and swapped in, so a new run shows up without a reload.
(function () {
  const live = document.querySelector("[data-refresh]");
  if (!live) return;
  async function refresh() {
    try {
      const response = await fetch(location.href, { headers: { "X-Refresh": "1" } });
      if (response.ok) {
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.querySelector("[data-refresh]");
        if (fresh) live.replaceChildren(...fresh.childNodes);
      }
    } catch (e) {
      // the server restarted: try again
    }
    setTimeout(refresh, 2000);
  }
  setTimeout(refresh, 2000);
})();
