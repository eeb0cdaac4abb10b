// The dashboard's only script: poll the panels, send the buttons to the control API, and ask
// once for the control token when the simulator answers 401. Hand-written, no build step.
"use strict";

const POLL_MS = 1000;
const shown = {};           // panel name -> the HTML last put in the page
let tokenAsked = null;      // one pending question for the token, shared by every request
let pollTimer = null;

function notify(text, failed = false) {
  const notice = document.getElementById("notice");
  notice.textContent = text;
  notice.className = failed ? "refused" : "ok";
}

// Resolves once the user has given a token (set as the `simtoken` cookie).
function askToken(refused) {
  if (tokenAsked) return tokenAsked;
  const dialog = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  document.getElementById("token-refused").hidden = !refused;
  tokenAsked = new Promise((resolve) => {
    form.addEventListener("submit", function answered() {
      const token = form.elements.token.value.trim();
      document.cookie = `simtoken=${encodeURIComponent(token)}; path=/; SameSite=Strict`;
      form.reset();
      tokenAsked = null;
      resolve();
    }, { once: true });
  });
  dialog.showModal();
  return tokenAsked;
}

// A control API call; a 401 asks for the token and retries, any other error throws its message.
async function api(method, path, body) {
  let refused = document.cookie.split("; ").some((c) => c.startsWith("simtoken="));
  for (;;) {
    // Every write is a JSON object (`{}` for none): the control API takes nothing else.
    const sends = method !== "GET";
    const response = await fetch(path, {
      method,
      headers: sends ? { "Content-Type": "application/json" } : {},
      body: sends ? JSON.stringify(body || {}) : undefined,
      credentials: "same-origin",
      cache: "no-store",
    });
    if (response.status === 401) {
      await askToken(refused);
      refused = true;
      continue;
    }
    let data = {};
    try { data = await response.json(); } catch (_) { /* an empty or non-JSON body */ }
    if (!response.ok) {
      const error = data.error || {};
      throw new Error(error.msg ? `${error.type}: ${error.msg}` : `HTTP ${response.status}`);
    }
    return data;
  }
}

function showClock(clock) {
  document.getElementById("clock-now").textContent = clock.now;
  const mode = clock.mode || "manual";
  const speed = clock.speed && Number(clock.speed) !== 1 ? ` ×${clock.speed}` : "";
  document.getElementById("clock-mode").textContent = mode + speed;
  document.getElementById("clock-next").textContent =
    clock.next_due ? `seller automation due ${clock.next_due}` : "";
}

async function refresh() {
  clearTimeout(pollTimer);
  try {
    const filter = document.getElementById("call-filter").value.trim();
    const [clock, view] = await Promise.all([
      api("GET", "/_sim/clock"),
      api("GET", "/_sim/dashboard/panels?calls=" + encodeURIComponent(filter)),
    ]);
    showClock(clock);
    for (const [name, html] of Object.entries(view.panels)) {
      if (shown[name] === html) continue;  // unchanged panels keep their DOM (and focus)
      const holder = document.querySelector(`[data-panel="${name}"]`);
      if (holder) holder.innerHTML = html;
      shown[name] = html;
    }
    document.body.dataset.loaded = "yes";
  } catch (error) {
    notify(`cannot reach the simulator: ${error.message}`, true);
  }
  pollTimer = setTimeout(refresh, POLL_MS);
}

// Run a button's request, say what happened, and show its effect at once.
async function act(label, method, path, body) {
  try {
    const reply = await api(method, path, body);
    notify(`${label}: done`);
    return reply;
  } catch (error) {
    notify(`${label}: ${error.message}`, true);
    return null;
  } finally {
    refresh();
  }
}

function valueInput(choice) {
  if (choice.type === "enumeration") {
    const select = document.createElement("select");
    for (const item of choice.items) select.add(new Option(item, item, false, item === choice.value));
    return select;
  }
  const input = document.createElement("input");
  if (choice.type === "boolean") {
    input.type = "checkbox";
    input.checked = Boolean(choice.value);
  } else {
    input.type = "number";
    input.min = 0;
    if (choice.max !== null) input.max = choice.max;
    input.value = choice.value;
  }
  return input;
}

function openAddonDialog(service, choices) {
  const dialog = document.getElementById("addon-dialog");
  const names = document.getElementById("addon-name");
  const holder = document.getElementById("addon-value");
  document.getElementById("addon-service").textContent = `#${service}`;
  names.replaceChildren(...choices.map((c) => new Option(`${c.addon} (${c.type})`, c.addon)));
  const pick = () => holder.replaceChildren(valueInput(choices[names.selectedIndex]));
  names.onchange = pick;
  pick();
  document.getElementById("addon-form").onsubmit = () => {
    const choice = choices[names.selectedIndex];
    const input = holder.firstElementChild;
    const value = choice.type === "boolean" ? (input.checked ? "on" : "off")
      : choice.type === "integer" ? Number(input.value) : input.value;
    act(`set ${choice.addon} of #${service}`, "POST", "/_sim/actions/set_addon",
      { service, addon: choice.addon, value });
  };
  dialog.showModal();
}

function openTopupDialog(account) {
  const form = document.getElementById("topup-form");
  document.getElementById("topup-account").textContent = account;
  form.onsubmit = () => act(`top up ${account}`, "POST", "/_sim/actions/topup",
    { account, amount: form.elements.amount.value });
  document.getElementById("topup-dialog").showModal();
}

async function runSteps(all) {
  do {
    const reply = await act("story", "POST", "/_sim/dashboard/story/next");
    if (!reply) return;
    notify(`step ${reply.step}: ${reply.outcome}`, !reply.ok);
    if (reply.last) return;
  } while (all);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  if (button.dataset.advance) {
    act(`+${button.dataset.advance}`, "POST", "/_sim/dashboard/clock",
      { advance: button.dataset.advance });
  } else if (button.dataset.close !== undefined) {
    button.closest("dialog").close();
  } else if (button.id === "next-step" || button.id === "all-steps") {
    runSteps(button.id === "all-steps");
  } else if (button.id === "clear-faults") {
    act("clear faults", "DELETE", "/_sim/faults");
  } else if (button.dataset.action === "set_addon") {
    openAddonDialog(Number(button.dataset.service), JSON.parse(button.dataset.choices));
  } else if (button.dataset.action === "topup") {
    openTopupDialog(button.dataset.account);
  } else if (button.dataset.action) {
    const service = Number(button.dataset.service);
    act(`${button.dataset.action} #${service}`, "POST",
      `/_sim/actions/${button.dataset.action}`, { service });
  }
});

document.addEventListener("DOMContentLoaded", () => {
  // Nothing works without the token: Escape must not leave the page waiting for it forever.
  document.getElementById("token-dialog").addEventListener("cancel", (e) => e.preventDefault());
  document.getElementById("fault-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target.elements;
    const fault = { kind: form.kind.value, times: Number(form.times.value) };
    if (form.func.value.trim()) fault.func = form.func.value.trim();
    if (form.account.value.trim()) fault.account = form.account.value.trim();
    act(`queue ${fault.kind} ×${fault.times}`, "POST", "/_sim/faults", fault);
  });
  document.getElementById("call-filter").addEventListener("input", refresh);
  refresh();
});
