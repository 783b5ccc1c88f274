// Screenshots a page made by render.py: github-markdown-css (light) and
// mermaid from node_modules, Debian's Chromium driven by playwright-core.
// Everything is local: the page loads nothing from the network.
//
// usage: node render.mjs PAGE.html OUT.png [PAGE.html OUT.png ...]
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, 'node_modules');
const css = join(modules, 'github-markdown-css', 'github-markdown-light.css');
const mermaidJs = join(modules, 'mermaid', 'dist', 'mermaid.min.js');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

const pairs = process.argv.slice(2);
if (pairs.length === 0 || pairs.length % 2 !== 0) {
  console.error('usage: node render.mjs PAGE.html OUT.png [PAGE.html OUT.png ...]');
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), 'expedite-shot-'));
// A fresh profile each run (playwright passes it as --user-data-dir).
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1008, height: 800 },
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
  ],
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  // Nothing leaves the machine: any request that is not a local file fails.
  const external = [];
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:') || url.startsWith('data:') || url.startsWith('blob:')) {
      return route.continue();
    }
    external.push(url);
    return route.abort();
  });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  for (let i = 0; i < pairs.length; i += 2) {
    const [html, png] = [pairs[i], pairs[i + 1]];
    await page.goto(pathToFileURL(html).href);
    await page.addStyleTag({ content: readFileSync(css, 'utf8') });
    await page.addScriptTag({ content: readFileSync(mermaidJs, 'utf8') });
    // As GitHub does: each ```mermaid block (<pre lang="mermaid">) becomes a
    // diagram, drawn with mermaid's default (light) theme.
    const drawn = await page.evaluate(async () => {
      const blocks = [...document.querySelectorAll('pre[lang="mermaid"]')];
      const nodes = blocks.map((pre) => {
        const div = document.createElement('div');
        div.className = 'mermaid';
        div.textContent = pre.textContent;
        pre.replaceWith(div);
        return div;
      });
      window.mermaid.initialize({ startOnLoad: false, theme: 'default', securityLevel: 'strict' });
      const failed = [];
      for (const node of nodes) {
        const source = node.textContent;
        try {
          await window.mermaid.run({ nodes: [node] });
        } catch (e) {
          failed.push(`${String(e)}\n${source}`);
        }
      }
      await document.fonts.ready;
      return { blocks: nodes.length, svgs: document.querySelectorAll('.mermaid svg').length, failed };
    });
    if (drawn.failed.length || drawn.svgs !== drawn.blocks) {
      throw new Error(`mermaid drew ${drawn.svgs} of ${drawn.blocks} diagrams:\n${drawn.failed.join('\n\n')}`);
    }
    await page.screenshot({ path: png, fullPage: true });
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    console.log(`${png}: ${drawn.svgs} diagram(s), ${height} px tall`);
  }
  if (errors.length) throw new Error(`page errors:\n${errors.join('\n')}`);
  if (external.length) throw new Error(`the page asked for the network:\n${external.join('\n')}`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
