// Edits a wrangler.toml the way a person would: line by line, keeping every comment and
// every setting it does not manage. It manages `routes`, the id of the `SESSIONS` KV
// namespace, the `PEOPLE` Durable Object binding and its migration (instant revocation),
// and in `[vars.PORTCULLIS]` the keys `issuer`, `client_id`, `cookie_domain`,
// `auth_host` and each app's `host`/`origin`.

const tomlString = (s) => JSON.stringify(String(s)); // TOML basic strings escape like JSON
const isHeader = (line) => /^\s*\[/.test(line);
/** A header line's table name, e.g. `vars.PORTCULLIS.apps` for `[[vars.PORTCULLIS.apps]]`. */
const headerName = (line) => line.trim().replace(/^\[\[?\s*/, '').replace(/\s*\]\]?.*$/, '');
const keyOf = (line) => line.match(/^\s*([A-Za-z0-9_.-]+)\s*=/)?.[1];
const valueOf = (line) => {
  const m = line.match(/=\s*"((?:[^"\\]|\\.)*)"/);
  return m ? JSON.parse(`"${m[1]}"`) : undefined;
};

/** The sections of a file: `{ name, array, start, end }` (lines [start, end)); the top level is name ''. */
function sections(lines) {
  const out = [{ name: '', array: false, start: 0, end: lines.length }];
  lines.forEach((line, i) => {
    if (!isHeader(line)) return;
    out[out.length - 1].end = i;
    out.push({ name: headerName(line), array: /^\s*\[\[/.test(line), start: i, end: lines.length });
  });
  return out;
}

/** The string value of `key` in a section, if set (uncommented). */
function valueIn(lines, section, key) {
  for (let i = section.start; i < section.end; i += 1) {
    if (keyOf(lines[i]) === key) return valueOf(lines[i]);
  }
  return undefined;
}

/** Reads what setup cares about from a wrangler.toml text. */
export function read(text) {
  const lines = text.split('\n');
  const all = sections(lines);
  const value = (section, key) => valueIn(lines, section, key);
  const kv = all.find((s) => s.name === 'kv_namespaces' && value(s, 'binding') === 'SESSIONS');
  const vars = all.find((s) => s.name === 'vars.PORTCULLIS');
  return {
    name: value(all[0], 'name'),
    kvId: kv && value(kv, 'id'),
    issuer: vars && value(vars, 'issuer'),
    clientId: vars && value(vars, 'client_id'),
    cookieDomain: vars && value(vars, 'cookie_domain'),
    authHost: vars && value(vars, 'auth_host'),
    people: all.some((s) => s.name === 'durable_objects.bindings' && value(s, 'name') === 'PEOPLE'),
    apps: all.filter((s) => s.name === 'vars.PORTCULLIS.apps').map((s) => ({ host: value(s, 'host'), origin: value(s, 'origin') })),
  };
}

/** Sets `key = "value"` in the section (replacing an uncommented line, or adding one after the header). */
function setKey(lines, section, key, val) {
  for (let i = section.start; i < section.end; i += 1) {
    if (keyOf(lines[i]) === key) {
      const comment = lines[i].match(/"\s*(#.*)$/)?.[1];
      lines[i] = `${key} = ${tomlString(val)}${comment ? `  ${comment}` : ''}`;
      return;
    }
  }
  lines.splice(lastKey(lines, section) + 1, 0, `${key} = ${tomlString(val)}`);
}

/** Where the paragraph of the section's last key ends: after the comment lines that
 * directly follow it (they belong to it); what comes after a blank line does not. */
function paragraphEnd(lines, section) {
  let i = lastKey(lines, section) + 1;
  while (i < section.end && lines[i].trim().startsWith('#')) i += 1;
  return i;
}

/** The index of the section's last `key = value` line (its header when it has none). */
function lastKey(lines, section) {
  let last = section.start;
  for (let i = section.start; i < section.end; i += 1) if (keyOf(lines[i])) last = i;
  return last;
}

/** The routes array for these hosts. */
function routesBlock(hosts, zone) {
  return ['routes = [', ...hosts.map((h) => `  { pattern = ${tomlString(`${h}/*`)}, zone_name = ${tomlString(zone(h))} },`), ']'];
}

/** The persons' Durable Objects (instant revocation): the binding and its migration. */
export const PEOPLE_BLOCK = [
  '[[durable_objects.bindings]]',
  'name = "PEOPLE"',
  'class_name = "Person"',
  '',
  '[[migrations]]',
  'tag = "people-v1"',
  'new_sqlite_classes = ["Person"]',
];

/** Adds PEOPLE_BLOCK: in place of the template's commented-out copy, else before the
 * first table after the top level. */
function addPeople(lines) {
  const commented = PEOPLE_BLOCK.map((l) => (l ? `# ${l}` : '#'));
  const at = lines.findIndex((l, i) => commented.every((c, j) => (lines[i + j] || '').trimEnd() === c));
  if (at >= 0) {
    lines.splice(at, commented.length, ...PEOPLE_BLOCK);
    return;
  }
  const first = sections(lines).find((sec) => sec.start > 0 && !sec.name.startsWith('kv_namespaces'));
  lines.splice(first ? first.start : lines.length, 0, ...PEOPLE_BLOCK, '');
}

/** Whether a host is one of the template's placeholders (example.com is reserved: nobody's). */
const placeholder = (host) => !host || host === 'example.com' || host.endsWith('.example.com');

/**
 * Returns the edited text. `want`: { issuer, clientId, apps: [{host, origin}], cookieDomain,
 * authHost, kvId, zone(host), instantRevocation }. Apps already in the file keep their other settings; apps
 * not asked for stay, except the template's placeholders (hosts under example.com).
 */
export function edit(text, want) {
  const lines = text.split('\n');

  // [vars.PORTCULLIS]: create it when missing.
  if (!sections(lines).some((s) => s.name === 'vars.PORTCULLIS')) {
    lines.push('', '[vars.PORTCULLIS]');
  }
  const set = (key, val) => {
    if (val === undefined || val === null || val === '') return;
    setKey(lines, sections(lines).find((s) => s.name === 'vars.PORTCULLIS'), key, val);
  };
  set('issuer', want.issuer);
  set('client_id', want.clientId);
  set('cookie_domain', want.cookieDomain);
  set('auth_host', want.authHost);

  // Apps: drop the template's placeholders, update the asked-for ones, append new ones.
  const appBlocks = () => sections(lines).filter((sec) => sec.name === 'vars.PORTCULLIS.apps');
  const wanted = (host) => want.apps.some((a) => a.host === host);
  for (let stale; (stale = appBlocks().find((b) => placeholder(valueIn(lines, b, 'host')) && !wanted(valueIn(lines, b, 'host'))));) {
    // The comments after its last key (e.g. a note at the end of the file) stay.
    lines.splice(stale.start, paragraphEnd(lines, stale) - stale.start);
  }
  for (const app of want.apps) {
    const block = appBlocks().find((b) => valueIn(lines, b, 'host') === app.host);
    if (block) {
      if (app.origin) setKey(lines, block, 'origin', app.origin);
      continue;
    }
    // After the last PORTCULLIS table, so it stays inside [vars].
    const last = sections(lines).filter((sec) => sec.name.startsWith('vars.PORTCULLIS')).pop();
    const at = paragraphEnd(lines, last);
    const add = ['', '[[vars.PORTCULLIS.apps]]', `host = ${tomlString(app.host)}`];
    if (app.origin) add.push(`origin = ${tomlString(app.origin)}`);
    lines.splice(at, 0, ...add);
  }

  // The KV namespace.
  if (want.kvId) {
    const kv = sections(lines).find((sec) => sec.name === 'kv_namespaces' && valueIn(lines, sec, 'binding') === 'SESSIONS');
    if (kv) setKey(lines, kv, 'id', want.kvId);
    else {
      const first = sections(lines).find((sec) => sec.start > 0);
      const at = first ? first.start : lines.length;
      lines.splice(at, 0, '[[kv_namespaces]]', 'binding = "SESSIONS"', `id = ${tomlString(want.kvId)}`, '');
    }
  }

  // Instant revocation: added when asked for; never removed (a class once deployed keeps its
  // migration).
  if (want.instantRevocation && !read(lines.join('\n')).people) addPeople(lines);

  // Routes, at the top level: every app host and the auth host.
  const hosts = [...new Set([...read(lines.join('\n')).apps.map((a) => a.host).filter(Boolean), ...(want.authHost ? [want.authHost] : [])])];
  const top = sections(lines)[0];
  let start = -1;
  for (let i = top.start; i < top.end; i += 1) if (keyOf(lines[i]) === 'routes') { start = i; break; }
  const block = routesBlock(hosts, want.zone);
  if (start >= 0) {
    let end = start;
    if (!lines[start].includes(']') || lines[start].trim().endsWith('[')) {
      while (end < top.end && !/^\s*\]/.test(lines[end])) end += 1;
    }
    lines.splice(start, end - start + 1, ...block);
  } else {
    let at = top.end;
    while (at > 0 && lines[at - 1].trim() === '') at -= 1;
    lines.splice(at, 0, ...block);
  }
  return lines.join('\n').replace(/\n{3,}/g, '\n\n');
}
