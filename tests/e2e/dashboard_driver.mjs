// Drives the dashboard page in Debian's Chromium (playwright-core, no downloaded browser) and
// prints what it drew as JSON: the page's own record of each chart (data-state, data-points),
// before and after choosing a team, a model and a period, and the queries it posted.
// Usage: node dashboard_driver.mjs URL [SCREENSHOT.png] [USER_DATA_DIR]
import { chromium } from "playwright-core";

const [url, screenshot, profile] = process.argv.slice(2);
const args = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const context = await chromium.launchPersistentContext(profile || "", {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true, args, viewport: { width: 1400, height: 900 }, timezoneId: "Europe/Paris",
});
const page = context.pages()[0] || (await context.newPage());
const posted = [], problems = [], fetched = [];
page.on("request", (r) => {
  fetched.push(r.url());
  if (r.method() === "POST") posted.push({ url: r.url(), body: r.postDataJSON() });
});
page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });

async function state() {
  return page.evaluate(() => {
    const tiles = {};
    document.querySelectorAll("[data-tile]").forEach((c) => {
      const canvas = c.querySelector("canvas");
      tiles[c.dataset.tile] = {
        state: c.dataset.state, points: Number(c.dataset.points), title: c.querySelector("h2").textContent,
        canvas: canvas ? [canvas.width, canvas.height] : null,
      };
    });
    const chart = (id) => window.dashboard.charts[id];
    const axes = {};
    Object.keys(window.dashboard.charts).forEach((id) => {
      const scales = chart(id).scales;
      axes[id] = Object.fromEntries(Object.entries(scales).map(([k, s]) => [k, {
        type: s.type, title: s.options.title && s.options.title.text,
        ticks: s.ticks.map((t) => (typeof t.label === "string" ? t.label : String(t.label))),
      }]));
    });
    const tooltips = {};  // what hovering each chart's first point says
    Object.entries(window.dashboard.charts).forEach(([id, c]) => {
      c.tooltip.setActiveElements([{ datasetIndex: 0, index: 0 }], { x: 0, y: 0 });
      c.update();
      tooltips[id] = [c.tooltip.title || [], ...c.tooltip.body.map((b) => b.lines)].flat();
      c.tooltip.setActiveElements([], { x: 0, y: 0 });
      c.update();
    });
    const table = document.getElementById("usage");
    return {
      charts: Number(document.body.dataset.charts), renders: Number(document.body.dataset.renders),
      fetches: Number(document.body.dataset.fetches), status: document.getElementById("status").textContent,
      tiles, axes, tooltips, tableRows: table ? Number(table.dataset.rows) : 0,
      models: [...document.querySelectorAll("#model option")].map((o) => o.value),
      teams: [...document.querySelectorAll("#team option")].map((o) => o.value),
      tableHead: table ? [...table.querySelectorAll("th")].map((t) => t.textContent) : [],
      tableModels: table ? [...table.querySelectorAll("tbody tr")].map((r) => r.cells[2].textContent) : [],
    };
  });
}
async function choose(select, value) {
  const before = await page.evaluate(() => Number(document.body.dataset.renders));
  const fetchesBefore = posted.length;
  await page.selectOption(select, value);
  await page.waitForFunction((n) => Number(document.body.dataset.renders) > n && document.body.dataset.ready === "1", before, { timeout: 60000 });
  const s = await state();
  s.posted = posted.slice(fetchesBefore).map((p) => p.body && p.body.properties && p.body.properties.Parameters);
  return s;
}

const out = { problems };
try {
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.ready === "1" || document.body.dataset.ready === "error", null, { timeout: 120000 });
  out.initial = await state();
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  const team = out.initial.teams.find((t) => t);
  const model = out.initial.models.find((m) => m.endsWith("(deployment)")) || out.initial.models.find((m) => m);
  out.team = team; out.model = model;
  out.byTeam = await choose("#team", team);
  out.byTeamAndModel = await choose("#model", model);
  await choose("#team", "");
  await choose("#model", "");
  out.last24h = await choose("#period", "24h");
  out.posted = posted.map((p) => ({ path: new URL(p.url).pathname, csl: p.body && p.body.csl, params: p.body && p.body.properties && p.body.properties.Parameters }));
  out.fetched = [...new Set(fetched)];
} catch (e) {
  out.error = String(e && e.stack || e);
}
process.stdout.write(JSON.stringify(out));
await context.close();
