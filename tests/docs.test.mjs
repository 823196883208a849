// The README and docs/ link to each other: every relative link must lead to a file that
// exists, and every #anchor to a heading of that file (GitHub's heading slugs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../stack/worker.mjs';

/** The Markdown files: README.md, SECURITY.md and everything under docs/. */
function markdownFiles() {
  const found = ['README.md', 'SECURITY.md'];
  const walk = (dir) => {
    for (const name of readdirSync(path.join(ROOT, dir))) {
      const rel = path.join(dir, name);
      if (statSync(path.join(ROOT, rel)).isDirectory()) walk(rel);
      else if (name.endsWith('.md')) found.push(rel);
    }
  };
  walk('docs');
  return found;
}

/** Text outside fenced code blocks and inline code spans. */
function prose(text) {
  return text.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading) {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(file) {
  const text = readFileSync(path.join(ROOT, file), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
  const seen = new Map();
  const out = new Set();
  for (const m of text.matchAll(/^#{1,6}\s+(.+)$/gm)) {
    const base = slug(m[1].replace(/`/g, ''));
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

test('heading slugs follow GitHub', () => {
  assert.equal(slug('How quickly a revocation takes effect'), 'how-quickly-a-revocation-takes-effect');
  assert.equal(slug('Sessions: seeing them, ending them'), 'sessions-seeing-them-ending-them');
  assert.equal(slug('Sonarr and Radarr (and nzb360)'), 'sonarr-and-radarr-and-nzb360');
});

test('every relative link in the README and docs/ resolves, anchors included', () => {
  const broken = [];
  let checked = 0;
  for (const file of markdownFiles()) {
    const text = prose(readFileSync(path.join(ROOT, file), 'utf8'));
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/i.test(target)) continue;
      checked += 1;
      const [where, anchor] = target.split('#');
      const resolved = where ? path.normalize(path.join(path.dirname(file), where)) : file;
      if (!existsSync(path.join(ROOT, resolved))) {
        broken.push(`${file}: ${target} (no file ${resolved})`);
      } else if (anchor !== undefined && resolved.endsWith('.md') && !anchors(resolved).has(anchor)) {
        broken.push(`${file}: ${target} (no heading #${anchor} in ${resolved})`);
      }
    }
  }
  assert.ok(checked > 20, `only ${checked} links found: is the pattern right?`);
  assert.deepEqual(broken, []);
});

test('the README stays the front door: at most 300 lines', () => {
  const lines = readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n').length;
  assert.ok(lines <= 300, `README.md has ${lines} lines`);
});

test("the README's configuration is one scripts/check-config accepts", async () => {
  const { execFile } = await import('node:child_process');
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = readme.match(/## A configuration[\s\S]*?```toml\n([\s\S]*?)```/)?.[1];
  assert.ok(block, 'the README shows a configuration');
  const dir = await mkdtemp(path.join(tmpdir(), 'portcullis-readme-'));
  try {
    const file = path.join(dir, 'wrangler.toml');
    await writeFile(file, [
      'name = "portcullis"',
      'main = "build/index.js"',
      'compatibility_date = "2026-04-01"',
      'routes = [ { pattern = "photos.example.com/*", zone_name = "example.com" } ]',
      block.replace('id = "…"', 'id = "0123456789abcdef0123456789abcdef"'),
    ].join('\n'));
    const out = await new Promise((resolve) => {
      execFile(path.join(ROOT, 'scripts/check-config'), [file], (error, stdout, stderr) => {
        resolve({ code: error ? error.code : 0, text: stdout + stderr });
      });
    });
    assert.equal(out.code, 0, out.text);
    assert.match(out.text, /configuration is valid/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
