// The balance page's script: the member token from the URL fragment (#token=...) or the paste
// box, kept in sessionStorage only; polls the member's balance and transactions and renders them
// with textContent (no HTML from data). No framework, no build step.

const TOKEN_KEY = "creditflow.memberToken";
const pollMs = Number(document.body.dataset.pollMs) || 3000;
const $ = (id) => document.getElementById(id);
let timer = null;
let inFlight = false;

function takeTokenFromFragment() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token.trim());
    // Drop the token from the address bar and history.
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

const token = () => sessionStorage.getItem(TOKEN_KEY);

function when(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function timeEl(iso) {
  const el = document.createElement("time");
  if (iso) el.dateTime = iso;
  el.textContent = when(iso);
  return el;
}

/** An exact decimal string of credits, shown with at most 2 decimals (at least `minDigits`). */
function credits(text, minDigits = 0) {
  const [whole, frac = ""] = String(text).split(".");
  const shown = frac.length > 2 ? `${whole}.${frac.slice(0, 2)}` : text;
  return Number(shown).toLocaleString(undefined, {
    minimumFractionDigits: minDigits,
    maximumFractionDigits: 2,
  });
}

const SOURCE_NAMES = {
  trial: "Trial",
  promotion: "Promotion",
  purchase: "Purchased",
  adjustment: "Adjustment",
  migration: "Migrated",
};

const FEATURE_NAMES = { agent: "Agent", code: "Code", claw: "Claw", chat: "Chat", image: "Image" };

function showTokenBox(message) {
  stopPolling();
  $("balance-view").hidden = true;
  $("sign-out").hidden = true;
  $("token-box").hidden = false;
  $("token-message").textContent = message;
  setStatus("");
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function getJson(path) {
  const response = await fetch(path, {
    headers: { authorization: `Bearer ${token()}`, accept: "application/json" },
    cache: "no-store",
  });
  const body = await response.json().catch(() => null);
  return { status: response.status, body };
}

function renderBalance(b) {
  $("tier").textContent =
    `${b.tier.name}${b.tier.billing === "free" ? "" : ` · ${b.tier.billing}`}`;
  $("percent").textContent = String(b.percent);
  $("bar").setAttribute("aria-valuenow", String(b.percent));
  $("bar-fill").style.width = `${b.basisPoints / 100}%`;
  $("bar-fill").classList.toggle("low", b.lowCredit);
  $("remaining").textContent = credits(b.remainingCredits);
  $("capacity").textContent = credits(b.capacityCredits);
  $("next-refresh").replaceChildren(timeEl(b.nextRefreshAt));
  $("by-class-subscription").textContent = credits(b.remainingByClass.subscriptionCredits);
  $("by-class-bonus").textContent = credits(b.remainingByClass.bonusCredits);

  $("low-credit").hidden = !b.lowCredit || b.paused !== null;
  $("low-credit-text").textContent =
    `Under ${b.lowCreditThresholdPercent}% of your credits left. They refresh ${when(b.nextRefreshAt)}.`;

  const p = b.paused;
  $("paused").hidden = p === null;
  if (p !== null) {
    $("paused-text").textContent = p.message;
    $("paused-when").replaceChildren();
    if (p.retryAt) {
      $("paused-when").append(
        p.reason === "window_cap" ? "Usage limit resets " : "Credits refresh ",
        timeEl(p.retryAt),
        ".",
      );
    }
    $("paused-upgrade").textContent = p.upgrade
      ? `Or upgrade to ${p.upgrade.tierName} to continue now.`
      : "";
  }

  const list = $("bonus-list");
  list.replaceChildren(
    ...b.bonusGrants.map((g) => {
      const li = document.createElement("li");
      const amount = document.createElement("span");
      amount.textContent = `${SOURCE_NAMES[g.source] ?? g.source}: ${credits(g.remainingCredits)} of ${credits(g.amountCredits)} credits left`;
      const expiry = document.createElement("span");
      expiry.className = "muted";
      expiry.append(g.expiresAt ? "Expires " : "No expiry", g.expiresAt ? timeEl(g.expiresAt) : "");
      li.append(amount, expiry);
      return li;
    }),
  );
  $("bonus-empty").hidden = b.bonusGrants.length > 0;

  const windows = [
    ["5-hour limit", b.windows.fiveHour],
    ["Weekly limit", b.windows.sevenDay],
  ].filter(([, w]) => w !== null);
  $("windows").hidden = windows.length === 0;
  $("window-list").replaceChildren(
    ...windows.map(([name, w]) => {
      const box = document.createElement("div");
      box.className = "gauge";
      const head = document.createElement("div");
      head.className = "row";
      const label = document.createElement("strong");
      label.textContent = `${name}: ${w.percentUsed}% used`;
      const reset = document.createElement("span");
      reset.className = "muted";
      reset.append(
        ...(w.resetsAt ? ["Resets ", timeEl(w.resetsAt)] : ["Starts with your next task"]),
      );
      head.append(label, reset);
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.setAttribute("role", "progressbar");
      bar.setAttribute("aria-label", name);
      bar.setAttribute("aria-valuenow", String(w.percentUsed));
      const fill = document.createElement("div");
      fill.className = `bar-fill window${w.percentUsed >= 100 ? " full" : ""}`;
      fill.style.width = `${w.percentUsed}%`;
      bar.append(fill);
      box.append(head, bar);
      return box;
    }),
  );
}

function renderTransactions(t) {
  $("transactions").replaceChildren(
    ...t.transactions.map((x) => {
      const tr = document.createElement("tr");
      const at = document.createElement("td");
      at.append(timeEl(x.at));
      const feature = document.createElement("td");
      feature.textContent = FEATURE_NAMES[x.feature] ?? x.feature;
      const amount = document.createElement("td");
      amount.className = "num";
      amount.textContent = credits(x.credits, 2);
      tr.append(at, feature, amount);
      return tr;
    }),
  );
  $("transactions-empty").hidden = t.transactions.length > 0;
}

function renderFreshness(b, t) {
  const parts = [`Last change ${when(b.asOf.stateAt)}`];
  if (t) {
    parts.push(
      t.source === "history"
        ? "usage from history"
        : "usage from the live balance (history catching up)",
    );
  }
  parts.push(`checked ${new Date(b.asOf.readAt).toLocaleTimeString()}`);
  $("freshness").textContent = parts.join(" · ");
}

async function refresh() {
  if (inFlight || !token()) return;
  inFlight = true;
  try {
    const [balance, transactions] = await Promise.all([
      getJson("/v1/me/balance"),
      getJson("/v1/me/transactions"),
    ]);
    if (balance.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showTokenBox(balance.body?.error?.message ?? "Your token was not accepted.");
      return;
    }
    if (balance.status === 404) {
      $("balance-view").hidden = true;
      setStatus("No credits yet: your balance appears after your first task or grant.");
      return;
    }
    if (balance.status !== 200) {
      setStatus(
        balance.body?.error?.message ?? `The balance could not be read (${balance.status}).`,
        true,
      );
      return;
    }
    renderBalance(balance.body);
    const t = transactions.status === 200 ? transactions.body : null;
    if (t) renderTransactions(t);
    renderFreshness(balance.body, t);
    $("token-box").hidden = true;
    $("sign-out").hidden = false;
    $("balance-view").hidden = false;
    document.body.dataset.renderedVersion = String(balance.body.asOf.version);
    setStatus("");
  } catch {
    setStatus("Offline: retrying…", true);
  } finally {
    inFlight = false;
  }
}

function startPolling() {
  stopPolling();
  refresh();
  timer = setInterval(() => {
    if (document.visibilityState === "visible") refresh();
  }, pollMs);
}

function stopPolling() {
  if (timer !== null) clearInterval(timer);
  timer = null;
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("token-input").value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $("token-input").value = "";
  startPolling();
});

$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showTokenBox("Paste your member token to see your balance.");
});

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refresh();
});

window.addEventListener("hashchange", () => {
  takeTokenFromFragment();
  if (token()) startPolling();
});

takeTokenFromFragment();
if (token()) startPolling();
else showTokenBox("Paste your member token to see your balance.");
