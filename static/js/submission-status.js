// The submission page's live progress: polls the status JSON while the run is queued or running and
// reloads the page (scores, results) once it has ended.
"use strict";

(function () {
  const box = document.getElementById("status");
  if (!box || box.dataset.active !== "1") return;
  async function poll() {
    try {
      const r = await fetch(box.dataset.statusUrl, {headers: {"Accept": "application/json"}});
      const s = await r.json();
      const bar = document.getElementById("progress");
      bar.max = s.progress_total || 1; bar.value = s.progress_done;
      document.getElementById("progress-text").textContent = s.progress_done + " / " + s.progress_total;
      document.getElementById("progress-percent").textContent = s.progress_percent;
      document.getElementById("error-count").textContent = s.error_count;
      const st = document.getElementById("status-text"); st.textContent = s.status; st.className = "status-" + s.status;
      if (s.heartbeat_at) document.getElementById("heartbeat").textContent = new Date(s.heartbeat_at).toLocaleTimeString();
      if (s.error_message) { const e = document.getElementById("error-message"); e.textContent = s.error_message; e.hidden = false; }
      if (s.status === "queued" || s.status === "running") { setTimeout(poll, 1500); } else { location.reload(); }
    } catch (e) { setTimeout(poll, 5000); }
  }
  setTimeout(poll, 1000);
})();
