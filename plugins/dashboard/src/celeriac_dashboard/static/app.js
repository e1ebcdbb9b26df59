// celeriac dashboard: live updates (server-sent events) and action buttons. No framework:
// the server renders every page; this re-fetches a page's live part when the stream says
// its data changed, and posts actions with the page's CSRF token.
(() => {
  "use strict";
  const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";
  const prefix = meta("prefix");
  const csrf = meta("csrf-token");
  const live = document.getElementById("live");
  const kinds = new Set((live?.dataset.kinds || "").split(" ").filter(Boolean));
  const dot = document.getElementById("live-status");
  let inflight = false;
  let again = false;

  function flash(text, ok) {
    const box = document.getElementById("flash");
    box.textContent = text;
    box.className = ok ? "ok" : "error";
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { box.textContent = ""; box.className = ""; }, 6000);
  }

  // inspect: ask the workers again (a worker page after an action), not only the event view.
  async function refresh(inspect = false) {
    if (!live || kinds.size === 0) return;
    if (inflight) { again = again === "inspect" || inspect ? "inspect" : true; return; }
    inflight = true;
    try {
      const url = new URL(location.href);
      url.searchParams.set("fragment", "1");
      if (inspect) url.searchParams.set("refresh", "1");
      const response = await fetch(url, { headers: { Accept: "text/html" } });
      if (response.ok) {
        const html = await response.text();
        live.innerHTML = html;
        document.dispatchEvent(new CustomEvent("live:updated"));
      }
    } catch (error) {
      console.warn("refresh failed", error);
    } finally {
      inflight = false;
      if (again) { const next = again === "inspect"; again = false; refresh(next); }
    }
  }

  function interested(message) {
    if (kinds.has("tasks") && message.tasks?.length) return true;
    if (kinds.has("task") && message.tasks?.includes(live.dataset.task)) return true;
    if (kinds.has("workers") && message.workers?.length) return true;
    if (kinds.has("queues") && message.queues) return true;
    return false;
  }

  const stream = new EventSource(`${prefix}/live`);
  stream.onopen = () => { dot?.classList.add("on"); };
  stream.onerror = () => { dot?.classList.remove("on"); };
  stream.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (kinds.has("graphs") && (message.queues || message.tasks?.length)) {
      document.dispatchEvent(new CustomEvent("live:graphs"));
    }
    if (interested(message)) refresh();
  };
  window.celeriacLive = { refresh, stream };

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    event.preventDefault();
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    const form = button.closest("form");
    const params = new URLSearchParams();
    if (form) for (const [key, value] of new FormData(form)) if (value !== "") params.set(key, value);
    let missing = null;
    const path = button.dataset.action.replace(/\{(\w+)\}/g, (_, key) => {
      const value = params.get(key);
      if (!value) missing = key;
      params.delete(key);
      return encodeURIComponent(value ?? "");
    });
    if (missing) { flash(`${missing} is required`, false); return; }
    const headers = { "X-CSRF-Token": csrf };
    let body = null;
    if (button.dataset.json) {
      body = params.get(button.dataset.json) ?? "";
      headers["Content-Type"] = "application/json";
    } else if ([...params].length) {
      body = params;
    }
    button.disabled = true;
    try {
      const response = await fetch(prefix + path, { method: button.dataset.method || "POST", headers, body });
      const text = await response.text();
      let message = text;
      try { message = JSON.parse(text).message ?? text; } catch { /* plain text */ }
      flash(message || `${response.status}`, response.ok);
      if (response.ok) refresh(true);
    } finally {
      button.disabled = false;
    }
  });
})();
