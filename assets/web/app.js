// resptree's web explorer: outline, node view, compare, graph, actions, keys.
//
// Two data sources share one app: the server's JSON API (`resptree serve`)
// and the data embedded in an HTML export (`resptree export --format html`,
// read-only). Every piece of model or user text is inserted with textContent
// or through ResptreeMarkdown (which builds whitelisted DOM nodes); this file
// never assigns innerHTML.
'use strict';

(function () {
  const PAGE = 100; // outline rows per request
  const REVEAL_DEPTH = 80; // ancestors the outline opens to show a node
  const RETRY_MS = 2000; // how long the page waits to ask again after a failed change poll
  const FAVOURITE_DEPTH = 1000; // favourite-path ancestors the page marks
  // A node view shows the last TRANSCRIPT_PAGE steps of its path, and as many
  // more per "Show earlier" click. It was the last 200 steps as full nodes on
  // every navigation (290 KB and 200 body reads at depth 500, the slow part of
  // ←/→ in a deep chain; docs/benchmarks.md section 9).
  const TRANSCRIPT_PAGE = 20;
  // Full steps the page keeps for later node views: a move along a chain
  // shares all but one step with the path shown, so it asks for that one only.
  const STEP_CACHE = 500;
  const MAX_STEPS = 1000; // the most steps the server returns at once
  const md = window.ResptreeMarkdown;

  // ---------------------------------------------------------------- helpers

  /** An element with a class, attributes and children (strings become text). */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return node;
  }

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  function toast(message, kind) {
    const box = $('#toast');
    box.textContent = message;
    box.className = 'show ' + (kind || '');
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.className = ''; }, kind === 'error' ? 6000 : 2500);
  }

  function fail(err) {
    toast(err && err.message ? err.message : String(err), 'error');
  }

  /** The short form resptree prints: the last 8 characters after the prefix. */
  function shortId(id) {
    const cut = id.indexOf('_');
    let body = cut >= 0 ? id.slice(cut + 1) : id;
    if (!body) body = id;
    const chars = Array.from(body);
    return chars.slice(Math.max(0, chars.length - 8)).join('');
  }

  function cut(text, max) {
    const chars = Array.from(text || '');
    return chars.length > max ? chars.slice(0, max - 1).join('') + '…' : chars.join('');
  }

  function itemText(item) {
    const content = item && item.content;
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) {
      return content.map((part) => (part && typeof part.text === 'string' ? part.text : '')).join('');
    }
    return '';
  }

  function promptOf(node) {
    const inputs = node.input || [];
    for (let i = inputs.length - 1; i >= 0; i -= 1) {
      if (inputs[i] && inputs[i].role === 'user') return itemText(inputs[i]);
    }
    const outputs = inputs.filter((i) => i && i.type === 'function_call_output').length;
    return outputs ? '(' + outputs + ' tool output(s))' : '';
  }

  function replyOf(node) {
    if (node.output_text) return node.output_text;
    const calls = (node.output || []).filter((i) => i && i.type === 'function_call').map((c) => c.name + '(…)');
    return calls.length ? '→ ' + calls.join(', ') : '';
  }

  const byTime = (a, b) => (a.created_at - b.created_at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

  function addUsage(total, usage, withInput) {
    usage = usage || {};
    total.nodes += 1;
    if (withInput) {
      total.input_tokens += usage.input_tokens || 0;
      total.cached_tokens += usage.cached_tokens || 0;
    }
    total.output_tokens += usage.output_tokens || 0;
    total.reasoning_tokens += usage.reasoning_tokens || 0;
    total.total_tokens = total.input_tokens + total.output_tokens;
    return total;
  }

  function tally(nodes) {
    const seen = new Set();
    const total = { nodes: 0, input_tokens: 0, cached_tokens: 0, output_tokens: 0, reasoning_tokens: 0, total_tokens: 0 };
    for (const node of nodes) {
      const group = node.usage && node.usage.shared_input_group;
      addUsage(total, node.usage, !group || !seen.has(group));
      if (group) seen.add(group);
    }
    return total;
  }

  // ----------------------------------------------------------- data sources

  /** The server's JSON API. */
  function remoteSource() {
    const meta = $('meta[name="resptree-csrf"]');
    const csrf = meta ? meta.getAttribute('content') : '';
    const enc = encodeURIComponent;

    async function reply(response) {
      let body = null;
      try { body = await response.json(); } catch (_) { body = null; }
      if (!response.ok) {
        const message = body && body.error ? body.error.message : 'HTTP ' + response.status;
        const err = new Error(message);
        err.status = response.status;
        throw err;
      }
      return body;
    }
    // `signal` (an AbortSignal, optional) lets the caller drop a request it no
    // longer needs; the rejection is then an AbortError.
    const get = (path, signal) => fetch(path, { credentials: 'same-origin', signal }).then(reply);
    const send = (method, path, body) => fetch(path, {
      method,
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body || {}),
    }).then(reply);

    /** POSTs `body` and calls onEvent(name, data) for each server-sent event. */
    async function stream(path, body, onEvent) {
      const response = await fetch(path, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
        body: JSON.stringify(body),
      });
      if (!response.ok) return reply(response);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = 'message';
          const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) name = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          if (data.length) onEvent(name, JSON.parse(data.join('\n')));
        }
      }
      return null;
    }

    return {
      local: false,
      info: () => get('/api/info'),
      // A long poll: the server answers once the version differs from
      // `since` (or after 25 s with the same one).
      changes: (since) => get('/api/changes' + (since === null || since === undefined ? '' : '?since=' + since)),
      favourite: (ancestors) => get('/api/favourite?ancestors=' + ancestors).then((r) => r.favourite),
      roots: (offset, limit) => get('/api/roots?offset=' + offset + '&limit=' + limit),
      children: (id, offset, limit) => get('/api/nodes/' + enc(id) + '/children?offset=' + offset + '&limit=' + limit),
      node: (id) => get('/api/nodes/' + enc(id)),
      // Steps offset..offset+limit of the path (root first); without an
      // offset, the last `limit` steps.
      path: (id, offset, limit) => get('/api/nodes/' + enc(id) + '/path?limit=' + limit
        + (offset === null || offset === undefined ? '' : '&offset=' + offset)),
      usage: (id, signal) => get('/api/nodes/' + enc(id) + '/usage', signal),
      compare: (a, b) => get('/api/compare?left=' + enc(a) + '&right=' + enc(b)),
      graph: (root, limit) => get('/api/graph?limit=' + limit + (root ? '&root=' + enc(root) : '')),
      resolve: (q) => get('/api/resolve?q=' + enc(q)).then((r) => r.id),
      search: (q) => get('/api/search?q=' + enc(q) + '&limit=50'),
      annotations: (id) => get('/api/nodes/' + enc(id) + '/annotations'),
      bookmarks: () => get('/api/bookmarks'),
      setBookmark: (id, on) => (on
        ? send('PUT', '/api/nodes/' + enc(id) + '/annotations', { kind: 'bookmark' })
        : send('DELETE', '/api/nodes/' + enc(id) + '/annotations/bookmark')),
      addLabel: (id, text) => send('PUT', '/api/nodes/' + enc(id) + '/annotations', { kind: 'label', text }),
      respond: (parent, text, onEvent) => stream('/api/respond', { parent, text }, onEvent),
      branch: (parent, texts, onEvent) => stream('/api/branch', { parent, texts }, onEvent),
      fanout: (parent, text, n, onEvent) => stream('/api/fanout', { parent, text, n }, onEvent),
      prune: (id) => send('POST', '/api/prune', { id, confirm: id }),
      setRef: (name, target) => send('PUT', '/api/refs/' + name.split('/').map(enc).join('/'), { target }),
    };
  }

  /** The data embedded in an HTML export (read-only). */
  function localSource(data) {
    const byId = new Map();
    const kids = new Map();
    const roots = [];
    for (const node of data.nodes || []) byId.set(node.id, node);
    for (const node of byId.values()) {
      if (node.parent && byId.has(node.parent)) {
        if (!kids.has(node.parent)) kids.set(node.parent, []);
        kids.get(node.parent).push(node);
      } else {
        roots.push(node);
      }
    }
    roots.sort(byTime);
    const rootIds = roots.map((n) => n.id);
    const childIds = new Map();
    for (const [id, list] of kids) childIds.set(id, list.sort(byTime).map((n) => n.id));
    const refs = new Map();
    const refsOf = new Map();
    for (const r of data.refs || []) {
      refs.set(r.name, r.target);
      if (!refsOf.has(r.target)) refsOf.set(r.target, []);
      refsOf.get(r.target).push(r.name);
    }
    const childrenOf = (id) => childIds.get(id) || [];
    const notes = new Map(); // node id → its annotations
    for (const a of data.annotations || []) {
      if (!notes.has(a.node)) notes.set(a.node, []);
      notes.get(a.node).push(a);
    }
    const notesOf = (id) => notes.get(id) || [];

    function need(id) {
      const node = byId.get(id);
      if (!node) throw new Error('node not found: ' + id);
      return node;
    }
    function summary(node) {
      return {
        id: node.id,
        short: shortId(node.id),
        parent: node.parent || null,
        children: childrenOf(node.id).length,
        created_at: node.created_at,
        model: node.model || null,
        status: node.status,
        prompt: cut(promptOf(node), 160),
        reply: cut(replyOf(node), 160),
        tokens: node.usage ? node.usage.total_tokens || 0 : 0,
        refs: refsOf.get(node.id) || [],
        labels: (node.labels || []).concat(notesOf(node.id).filter((a) => a.kind === 'label').map((a) => a.text)),
        bookmarked: notesOf(node.id).some((a) => a.kind === 'bookmark'),
      };
    }
    function page(ids, offset, limit) {
      return { total: ids.length, offset, items: ids.slice(offset, offset + limit).map((id) => summary(need(id))) };
    }
    /** The server's path fields of a node view: the last `limit` ids. */
    function pathTail(id, limit) {
      const path = pathOf(id);
      const offset = Math.max(0, path.length - limit);
      return { path: path.slice(offset), path_offset: offset, depth: path.length - 1, root: path[0] };
    }

    function pathOf(id) {
      const path = [];
      for (let node = need(id); node; node = node.parent ? byId.get(node.parent) : null) path.push(node.id);
      return path.reverse();
    }
    function resolve(q) {
      q = q.trim();
      if (refs.has(q)) return refs.get(q);
      if (byId.has(q)) return q;
      const hits = [];
      for (const id of byId.keys()) {
        const body = id.includes('_') ? id.slice(id.indexOf('_') + 1) : id;
        if (id.startsWith(q) || body.startsWith(q) || (q.length >= 4 && body.endsWith(q))) hits.push(id);
        if (hits.length > 1) throw new Error('"' + q + '" matches more than one node');
      }
      if (!hits.length) throw new Error('node not found: ' + q);
      return hits[0];
    }
    function descendants(id) {
      const out = [];
      const stack = [id];
      while (stack.length) {
        const next = stack.pop();
        out.push(next);
        stack.push(...childrenOf(next));
      }
      return out;
    }
    const wrap = (fn) => (...args) => {
      try { return Promise.resolve(fn(...args)); } catch (err) { return Promise.reject(err); }
    };
    return {
      local: true,
      info: wrap(() => ({ nodes: byId.size, roots: rootIds.length, refs: refs.size, writable: false, search: true, annotations: true, version: 0 })),
      annotations: wrap((id) => notesOf(resolve(id))),
      bookmarks: wrap(() => {
        const marked = (data.annotations || []).filter((a) => a.kind === 'bookmark' && byId.has(a.node));
        marked.sort((a, b) => b.at - a.at);
        return { total: marked.length, items: marked.map((a) => summary(byId.get(a.node))) };
      }),
      changes: wrap(() => ({ version: 0 })),
      roots: wrap((offset, limit) => page(rootIds, offset, limit)),
      children: wrap((id, offset, limit) => page(childrenOf(resolve(id)), offset, limit)),
      node: wrap((id) => {
        const node = need(resolve(id));
        const all = node.parent && byId.has(node.parent) ? childrenOf(node.parent) : rootIds;
        const index = Math.max(0, all.indexOf(node.id));
        return {
          summary: summary(node),
          node,
          siblings: { index, total: all.length, prev: all[index - 1] || null, next: all[index + 1] || null },
          first_child: childrenOf(node.id)[0] || null,
          ...pathTail(node.id, 100),
        };
      }),
      favourite: wrap((ancestors) => {
        if (!refs.has('favourite') || !byId.has(refs.get('favourite'))) return null;
        return { id: refs.get('favourite'), ...pathTail(refs.get('favourite'), ancestors) };
      }),
      path: wrap((id, offset, limit) => {
        const path = pathOf(resolve(id));
        const count = limit || path.length;
        const start = offset === null || offset === undefined
          ? Math.max(0, path.length - count) : Math.min(offset, path.length);
        return { total: path.length, offset: start, steps: path.slice(start, start + count).map((p) => byId.get(p)) };
      }),
      usage: wrap((id) => {
        const node = need(resolve(id));
        const under = descendants(node.id);
        const path = pathOf(node.id);
        return {
          node: node.usage || {},
          path: tally(path.map((p) => byId.get(p))),
          path_steps: path.length,
          subtree: tally(under.map((p) => byId.get(p))),
          subtree_nodes: under.length,
        };
      }),
      compare: wrap((a, b) => {
        const left = pathOf(resolve(a));
        const right = pathOf(resolve(b));
        let k = 0;
        while (k < left.length && k < right.length && left[k] === right[k]) k += 1;
        const common = k > 0 ? left[k - 1] : null;
        return {
          left_id: left[left.length - 1],
          right_id: right[right.length - 1],
          common: common ? summary(byId.get(common)) : null,
          left: left.slice(k).map((p) => byId.get(p)),
          right: right.slice(k).map((p) => byId.get(p)),
        };
      }),
      graph: wrap((root, limit) => {
        const queue = root ? [resolve(root)] : rootIds.slice();
        const nodes = [];
        while (queue.length && nodes.length < limit) {
          const id = queue.shift();
          nodes.push(summary(byId.get(id)));
          queue.push(...childrenOf(id));
        }
        return { nodes, truncated: queue.length > 0 };
      }),
      resolve: wrap(resolve),
      search: wrap((q) => {
        const needle = q.trim().toLowerCase();
        const hits = [];
        if (!needle) return { hits };
        for (const node of byId.values()) {
          const texts = [promptOf(node), node.output_text || ''];
          for (const text of texts) {
            const at = text.toLowerCase().indexOf(needle);
            if (at < 0) continue;
            const from = Math.max(0, at - 40);
            const to = Math.min(text.length, at + needle.length + 60);
            hits.push({
              id: node.id,
              short: shortId(node.id),
              created_at: node.created_at,
              snippets: [{
                cut_before: from > 0,
                cut_after: to < text.length,
                parts: [
                  { text: text.slice(from, at), hit: false },
                  { text: text.slice(at, at + needle.length), hit: true },
                  { text: text.slice(at + needle.length, to), hit: false },
                ],
              }],
            });
            break;
          }
        }
        hits.sort(byTime);
        return { hits: hits.slice(0, 50), total: hits.length };
      }),
    };
  }

  const dataBlock = document.getElementById('resptree-data');
  const api = dataBlock ? localSource(JSON.parse(dataBlock.textContent)) : remoteSource();

  // ------------------------------------------------------------------ state

  const state = {
    info: null,
    current: null, // the node view's answer from api.node
    marked: null, // the node marked for compare
    favourite: new Set(), // ids on the favourite path
    expanded: new Set(), // outline rows open
    lastChild: new Map(), // parent id → the child last visited (→ goes back there)
    version: null,
    busy: false, // an action is streaming
    shown: 0, // bumped by each show(); an older show() stops when it sees a newer one
    usageTimer: null, // the pending debounced usage request (see scheduleUsage)
    usageAbort: null, // aborts the usage request in flight
    steps: new Map(), // id → full node, the STEP_CACHE steps read last (oldest first)
    transcript: null, // {id, start, steps}: what the node view's transcript shows
  };

  // ----------------------------------------------------------------- outline

  function rowLabel(s) {
    const label = el('a', { class: 'label', href: '#node=' + encodeURIComponent(s.id), title: s.id },
      el('span', { class: 'short', text: s.short }),
      el('span', { class: 'prompt', text: s.prompt || '(no input)' }),
      el('span', { class: 'arrow', text: ' → ' }),
      el('span', { class: 'reply', text: s.reply || '' }));
    return label;
  }

  function outlineRow(s) {
    const kids = el('ul', { class: 'kids', role: 'group' });
    const toggle = el('button', {
      class: 'toggle',
      type: 'button',
      'aria-label': 'Expand',
      text: s.children ? '▸' : '·',
      disabled: !s.children,
    });
    const badges = el('span', { class: 'badges' },
      s.children ? el('span', { class: 'count', title: 'children', text: String(s.children) }) : null,
      s.bookmarked ? el('span', { class: 'star', title: 'bookmarked', text: '★' }) : null,
      s.refs.map((r) => el('span', { class: 'ref', text: r })),
      s.labels.map((l) => el('span', { class: 'labelchip', text: l })));
    const li = el('li', { class: 'row', role: 'treeitem', dataset: { nodeId: s.id } },
      el('div', { class: 'line' }, toggle, rowLabel(s), badges), kids);
    li.dataset.children = String(s.children);
    toggle.addEventListener('click', () => toggleRow(li).catch(fail));
    markRow(li);
    return li;
  }

  function markRow(li) {
    const id = li.dataset.nodeId;
    const line = li.firstChild;
    const cur = state.current && state.current.node.id;
    line.classList.toggle('current', id === cur);
    line.classList.toggle('on-path', !!(state.current && state.current.path.includes(id) && id !== cur));
    line.classList.toggle('fav', state.favourite.has(id));
  }

  function markOutline() {
    $$('#outline li.row').forEach(markRow);
  }

  /** Appends a page of rows to `list`, with a "show more" row after it. */
  async function fillList(list, load, offset) {
    const page = await load(offset, PAGE);
    const more = list.querySelector(':scope > li.more');
    if (more) more.remove();
    for (const s of page.items) list.appendChild(outlineRow(s));
    const shown = offset + page.items.length;
    if (shown < page.total) {
      const button = el('button', { type: 'button', text: 'Show more (' + (page.total - shown) + ' left)' });
      button.addEventListener('click', () => fillList(list, load, shown).catch(fail));
      list.appendChild(el('li', { class: 'more' }, button));
    }
    return page;
  }

  async function toggleRow(li, open) {
    const id = li.dataset.nodeId;
    const kids = li.querySelector(':scope > ul.kids');
    const toggle = li.querySelector(':scope > .line > .toggle');
    const isOpen = li.classList.contains('open');
    if (open === undefined) open = !isOpen;
    if (open === isOpen || li.dataset.children === '0') return;
    if (open) {
      kids.textContent = '';
      await fillList(kids, (o, l) => api.children(id, o, l), 0);
      li.classList.add('open');
      toggle.textContent = '▾';
      toggle.setAttribute('aria-label', 'Collapse');
      state.expanded.add(id);
    } else {
      li.classList.remove('open');
      kids.textContent = '';
      toggle.textContent = '▸';
      toggle.setAttribute('aria-label', 'Expand');
      state.expanded.delete(id);
    }
  }

  function findRow(id, root) {
    return $$('li.row', root || $('#outline')).find((li) => li.dataset.nodeId === id) || null;
  }

  async function renderOutline() {
    const outline = $('#outline');
    const list = el('ul', { class: 'tree', id: 'roots', role: 'tree' });
    const bookmarks = el('div', { id: 'bookmarks' });
    outline.textContent = '';
    outline.appendChild(bookmarks);
    outline.appendChild(list);
    await fillList(list, (o, l) => api.roots(o, l), 0);
    // Reopen what was open, parents first (document order).
    for (let pass = 0; pass < REVEAL_DEPTH; pass += 1) {
      const closed = $$('li.row', list).filter((li) => state.expanded.has(li.dataset.nodeId) && !li.classList.contains('open'));
      if (!closed.length) break;
      for (const li of closed) {
        state.expanded.delete(li.dataset.nodeId);
        await toggleRow(li, true);
      }
    }
    await renderBookmarks();
  }

  async function renderBookmarks() {
    const box = $('#bookmarks');
    if (!box || !state.info || !state.info.annotations) return;
    const list = await api.bookmarks();
    box.textContent = '';
    if (!list.items || !list.items.length) return;
    box.appendChild(el('h3', { text: 'Bookmarks' }));
    const ul = el('ul', { class: 'bookmark-list' });
    for (const s of list.items) {
      ul.appendChild(el('li', { dataset: { nodeId: s.id } }, rowLabel(s)));
    }
    box.appendChild(ul);
  }

  /** Opens the outline down to the current node (as far as its pages go). */
  /** Unfolds the outline down to `view`'s node (a node view's path fields). */
  async function reveal(view) {
    let list = $('#roots');
    const steps = view.path;
    // Too deep to unfold row by row (the view carries only the last ids).
    if (view.path_offset > 0 || steps.length > REVEAL_DEPTH) return;
    for (let i = 0; i < steps.length; i += 1) {
      const li = list && Array.from(list.children).find((c) => c.dataset && c.dataset.nodeId === steps[i]);
      if (!li) return;
      if (i === steps.length - 1) {
        li.firstChild.scrollIntoView({ block: 'nearest' });
        return;
      }
      await toggleRow(li, true);
      list = li.querySelector(':scope > ul.kids');
    }
  }

  // --------------------------------------------------------------- node view

  function roleClass(role) {
    return 'role-' + String(role || 'unknown').toLowerCase().replace(/[^a-z]/g, '');
  }

  function pretty(text) {
    if (typeof text !== 'string') return JSON.stringify(text, null, 2);
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (_) { return text; }
  }

  function folded(cls, title, ...body) {
    return el('details', { class: 'fold ' + cls }, el('summary', { text: title }), ...body);
  }

  function renderItem(item) {
    if (!item || typeof item !== 'object') return el('pre', { class: 'item-other', text: JSON.stringify(item) });
    const type = item.type || (item.role ? 'message' : 'unknown');
    if (type === 'message') {
      const box = el('div', { class: 'msg ' + roleClass(item.role) }, el('div', { class: 'role', text: String(item.role || 'message') }));
      const body = el('div', { class: 'md' });
      const parts = typeof item.content === 'string' ? [{ type: 'text', text: item.content }] : item.content || [];
      for (const part of parts) {
        if (part && typeof part.text === 'string') body.appendChild(md.render(part.text));
        else if (part && typeof part.refusal === 'string') body.appendChild(el('p', { class: 'refusal', text: 'Refusal: ' + part.refusal }));
        else body.appendChild(el('p', { class: 'part', text: '[' + String(part && part.type) + ']' }));
      }
      box.appendChild(body);
      return box;
    }
    if (type === 'function_call') {
      return folded('tool-call', 'Tool call: ' + String(item.name) + (item.call_id ? ' (' + item.call_id + ')' : ''),
        el('pre', { text: pretty(item.arguments || '') }));
    }
    if (type === 'function_call_output') {
      return folded('tool-output', 'Tool output' + (item.call_id ? ' (' + item.call_id + ')' : ''),
        el('pre', { text: pretty(item.output === undefined ? '' : item.output) }));
    }
    if (type === 'reasoning') {
      const texts = (item.summary || []).map((s) => (s && typeof s.text === 'string' ? s.text : '')).filter(Boolean);
      const body = el('div', { class: 'md' });
      if (texts.length) texts.forEach((t) => body.appendChild(md.render(t)));
      else body.appendChild(el('p', { class: 'muted', text: '(no summary)' }));
      return folded('reasoning', 'Reasoning summary', body);
    }
    return folded('item-other', String(type), el('pre', { text: JSON.stringify(item, null, 2) }));
  }

  function tokens(n) {
    return (n || 0).toLocaleString('en-US') + ' tok';
  }

  /** A list of steps (nodes), each with its input and output items. */
  function renderSteps(steps, currentId) {
    const list = el('ol', { class: 'transcript' });
    let instructions = null;
    for (const node of steps) {
      const head = el('div', { class: 'step-head' },
        el('a', { href: '#node=' + encodeURIComponent(node.id), class: 'short', text: shortId(node.id), title: node.id }),
        el('span', { class: 'muted', text: [node.model, node.status, tokens(node.usage && node.usage.total_tokens)].filter(Boolean).join(' · ') }));
      const li = el('li', { class: 'step' + (node.id === currentId ? ' current' : ''), dataset: { nodeId: node.id } }, head);
      if (node.instructions && node.instructions !== instructions) {
        li.appendChild(folded('instructions', 'Instructions', el('div', { class: 'md' }, md.render(node.instructions))));
      }
      instructions = node.instructions || instructions;
      for (const item of node.input || []) li.appendChild(renderItem(item));
      for (const item of node.output || []) li.appendChild(renderItem(item));
      list.appendChild(li);
    }
    return list;
  }

  function pager(view) {
    const sib = view.siblings;
    const prev = el('button', { type: 'button', class: 'prev', title: 'Previous sibling (↑)', text: '‹', disabled: !sib.prev });
    const next = el('button', { type: 'button', class: 'next', title: 'Next sibling (↓)', text: '›', disabled: !sib.next });
    prev.addEventListener('click', () => sib.prev && go(sib.prev));
    next.addEventListener('click', () => sib.next && go(sib.next));
    return el('nav', { id: 'sibling-pager', 'aria-label': 'Siblings' }, prev,
      el('span', { class: 'pos', text: (sib.index + 1) + '/' + sib.total }), next);
  }

  function actionsPanel(view) {
    const message = el('textarea', { id: 'message', rows: 3, placeholder: 'Message… (Ctrl+Enter continues; for Branch, one message per line)' });
    const n = el('input', { id: 'fanout-n', type: 'number', min: 1, max: 16, value: 3, 'aria-label': 'How many answers' });
    const refName = el('input', { id: 'ref-name', type: 'text', placeholder: 'ref name', 'aria-label': 'Ref name' });
    const labelText = el('input', { id: 'label-text', type: 'text', placeholder: 'label', 'aria-label': 'Label' });
    const button = (action, text, title) => el('button', { type: 'button', dataset: { action }, text, title });
    const panel = el('div', { id: 'actions' },
      message,
      el('div', { class: 'buttons' },
        button('continue', 'Continue', 'A new child of this node answering the message'),
        button('branch', 'Branch', 'One child per line of the message, in parallel'),
        el('span', { class: 'group' }, button('fanout', 'Fan out', 'N answers to the same message'), '×', n),
        el('span', { class: 'group' }, refName, button('ref', 'Name ref', 'Point a ref at this node')),
        el('span', { class: 'group' }, labelText, button('label', 'Label', 'Add a label to this node')),
        button('prune', 'Prune…', 'Remove this node and everything below it')),
      el('div', { id: 'stream' }));
    message.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        act('continue').catch(fail);
      }
    });
    panel.addEventListener('click', (e) => {
      const target = e.target.closest('button[data-action]');
      if (target) act(target.dataset.action).catch(fail);
    });
    return panel;
  }

  async function show(id, opts) {
    // Held keys start a show() per keydown; answers can come back out of
    // order, and a stale one must not overwrite the node the user is on.
    const shown = ++state.shown;
    const view = await api.node(id);
    if (shown !== state.shown) return;
    state.current = view;
    const node = view.node;
    const s = view.summary;
    const box = $('#node-view');
    const scroll = opts && opts.keepScroll ? $('#main').scrollTop : 0;
    box.textContent = '';
    box.dataset.nodeId = node.id;
    const header = el('div', { class: 'node-head' },
      pager(view),
      el('span', { class: 'node-id', title: node.id, text: s.short }),
      el('span', { class: 'muted', text: [node.model, node.status, new Date(node.created_at).toLocaleString(), 'depth ' + view.depth].filter(Boolean).join(' · ') }),
      el('span', { class: 'badges' },
        s.refs.map((r) => el('span', { class: 'ref', text: r })),
        s.labels.map((l) => el('span', { class: 'labelchip', text: l }))),
      el('span', { class: 'tools' },
        state.info.annotations ? el('button', { type: 'button', id: 'bookmark-toggle', title: 'Bookmark (b)', text: '☆', disabled: !state.info.writable, onclick: () => toggleBookmark().catch(fail) }) : null,
        api.local ? null : el('button', { type: 'button', id: 'favourite-set', title: 'Make this the favourite path (f)', text: '♥', onclick: () => setFavourite().catch(fail) }),
        el('button', { type: 'button', id: 'mark-compare', title: 'Mark for compare (m)', text: 'Mark', onclick: markCompare }),
        el('button', { type: 'button', id: 'compare-marked', title: 'Compare with the marked node (c)', text: 'Compare', onclick: () => compareMarked().catch(fail) })));
    box.appendChild(header);
    box.appendChild(el('div', { id: 'tokens', class: 'muted', text: 'node ' + tokens(s.tokens) + ' · path, subtree …' }));
    if (state.info.writable) box.appendChild(actionsPanel(view));
    const transcript = el('div', { id: 'transcript' });
    box.appendChild(transcript);
    scheduleUsage(node.id);
    // A refresh keeps the earlier steps the user had unfolded.
    const old = state.transcript;
    const count = opts && opts.keepScroll && old && old.id === node.id
      ? Math.min(MAX_STEPS, Math.max(TRANSCRIPT_PAGE, view.depth + 1 - old.start)) : TRANSCRIPT_PAGE;
    const steps = await transcriptOf(view, count);
    if (shown !== state.shown) return;
    state.transcript = { id: node.id, start: view.depth + 1 - steps.length, steps };
    renderTranscript(transcript);
    $('#compare').hidden = true;
    box.hidden = false;
    if (node.parent) state.lastChild.set(node.parent, node.id);
    markOutline();
    if (opts && opts.keepScroll) $('#main').scrollTop = scroll;
    else {
      const current = $('li.step.current', box);
      if (current) current.scrollIntoView({ block: 'start' });
    }
    if (!opts || !opts.keepScroll) reveal(view).then(markOutline).catch(fail);
    if (state.info.annotations) loadAnnotations(node.id).catch(() => {});
    if (!$('#graph').hidden) renderGraph().catch(fail);
  }

  /** Keeps `node` (a full step) for later node views, dropping the oldest. */
  function remember(node) {
    state.steps.delete(node.id);
    state.steps.set(node.id, node);
    if (state.steps.size > STEP_CACHE) state.steps.delete(state.steps.keys().next().value);
  }

  /**
   * The last `count` steps of `view`'s path (full nodes, root side first).
   * The node view carries the path's last ids (`path` from `path_offset`), so
   * the steps the page already holds are reused and only the others are
   * asked, as one range: one step after ← or →, none after → back.
   */
  async function transcriptOf(view, count) {
    remember(view.node);
    const total = view.depth + 1;
    const start = Math.max(0, total - count);
    if (start < view.path_offset) {
      // Further back than the ids the view carries: ask for the whole range.
      const page = await api.path(view.node.id, start, total - start);
      page.steps.forEach(remember);
      return page.steps;
    }
    const ids = view.path.slice(start - view.path_offset);
    const missing = [];
    ids.forEach((id, i) => { if (!state.steps.has(id)) missing.push(i); });
    if (missing.length) {
      const first = missing[0];
      const page = await api.path(view.node.id, start + first, missing[missing.length - 1] - first + 1);
      page.steps.forEach(remember);
    }
    const steps = ids.map((id) => state.steps.get(id));
    if (steps.every(Boolean)) {
      steps.forEach(remember);
      return steps;
    }
    // The tree changed between the two answers (a prune): read it afresh.
    const page = await api.path(view.node.id, start, total - start);
    page.steps.forEach(remember);
    return page.steps;
  }

  /** Fills `box` with the transcript state.transcript holds. */
  function renderTranscript(box) {
    const t = state.transcript;
    box.textContent = '';
    if (t.start > 0) {
      box.appendChild(el('p', { class: 'earlier muted' },
        t.start + ' earlier step(s) not shown ',
        el('button', { type: 'button', text: 'Show ' + Math.min(TRANSCRIPT_PAGE, t.start) + ' earlier', onclick: () => showEarlier().catch(fail) })));
    }
    box.appendChild(renderSteps(t.steps, t.id));
  }

  /** Prepends the TRANSCRIPT_PAGE steps before the first one shown. */
  async function showEarlier() {
    const t = state.transcript;
    const shown = state.shown;
    const from = Math.max(0, t.start - TRANSCRIPT_PAGE);
    const page = await api.path(t.id, from, t.start - from);
    if (shown !== state.shown || state.transcript !== t) return;
    page.steps.forEach(remember);
    // Keep the steps on screen where they were.
    const main = $('#main');
    const height = main.scrollHeight;
    const top = main.scrollTop;
    t.steps = page.steps.concat(t.steps);
    t.start = from;
    renderTranscript($('#transcript'));
    main.scrollTop = top + (main.scrollHeight - height);
  }

  // The path and subtree token totals read up to 2 000 bodies each on the
  // server (seconds on a deep chain). Asked on every navigation, holding ←/→
  // queued one such request per key on the server's blocking pool, and every
  // key's node view waited behind them (5 s per key at depth 5 000,
  // docs/benchmarks.md section 9). So the page asks only once the user has
  // rested USAGE_DELAY ms on a node, and aborts the request of a node left
  // (that frees the connection; the server may still finish its bounded tally).
  const USAGE_DELAY = 250;

  function scheduleUsage(id) {
    clearTimeout(state.usageTimer);
    if (state.usageAbort) state.usageAbort.abort();
    state.usageAbort = null;
    state.usageTimer = setTimeout(() => {
      state.usageTimer = null;
      const abort = typeof AbortController === 'function' ? new AbortController() : null;
      state.usageAbort = abort;
      loadUsage(id, abort ? abort.signal : undefined)
        .catch(() => {}) // the placeholder stays: totals are extras, not worth a toast
        .finally(() => { if (state.usageAbort === abort) state.usageAbort = null; });
    }, USAGE_DELAY);
  }

  async function loadUsage(id, signal) {
    const u = await api.usage(id, signal);
    if (!state.current || state.current.node.id !== id) return;
    const box = $('#tokens');
    if (!box) return;
    const parts = ['node ' + tokens(u.node.total_tokens)];
    // `path` is null above the server's cap (older servers never send null).
    parts.push(u.path ? 'path ' + tokens(u.path.total_tokens) : 'path: ' + (u.path_steps || '?') + ' steps (too many to add up here)');
    parts.push(u.subtree ? 'subtree ' + tokens(u.subtree.total_tokens) + ' over ' + u.subtree_nodes + ' node(s)' : 'subtree: ' + u.subtree_nodes + ' nodes (too many to add up here)');
    box.textContent = parts.join(' · ');
    const old = $('#cost');
    if (old) old.remove();
    const cost = u.cost || {}; // the static export has no price table
    const spent = [['node', cost.node], ['path', cost.path], ['subtree', cost.subtree]]
      .filter((pair) => pair[1])
      .map((pair) => pair[0] + ' ' + money(pair[1]));
    if (spent.length) box.after(el('div', { id: 'cost', class: 'muted', text: spent.join(' · ') }));
  }

  // A Cost from the server: `total` is a decimal string of dollars. Requests of
  // a model the price table does not know are never shown as free.
  function money(cost) {
    const known = '$' + cost.total;
    return cost.unpriced ? known + ' + unknown (' + cost.unpriced + ' unpriced)' : known;
  }

  async function loadAnnotations(id) {
    const list = await api.annotations(id);
    if (!state.current || state.current.node.id !== id) return;
    // Scores (from `explore` or `annotate --score`) and the note, as text.
    const shown = list.filter((a) => a && (a.kind === 'score' || a.kind === 'note'));
    const old = $('#scores');
    if (old) old.remove();
    if (shown.length) {
      const line = el('div', { id: 'scores', class: 'muted' },
        shown.map((a) => el('span', { class: 'score', text: a.kind === 'score' ? a.criterion + ' ' + a.value : 'note: ' + a.text })));
      const tokensLine = $('#tokens');
      if (tokensLine) tokensLine.after(line);
    }
    const bookmarked = list.some((a) => a && a.kind === 'bookmark');
    const star = $('#bookmark-toggle');
    if (star) {
      star.textContent = bookmarked ? '★' : '☆';
      star.classList.toggle('on', bookmarked);
    }
  }

  // ----------------------------------------------------------------- actions

  function answerBoxes(count) {
    const box = $('#stream');
    box.textContent = '';
    const boxes = [];
    for (let i = 0; i < count; i += 1) {
      const text = el('div', { class: 'answer-text' });
      const answer = el('div', { class: 'answer streaming', dataset: { index: String(i) } }, text);
      boxes.push(answer);
      box.appendChild(answer);
    }
    return boxes;
  }

  async function act(action) {
    const view = state.current;
    if (!view) return;
    const id = view.node.id;
    const text = ($('#message') || {}).value || '';
    if (action === 'ref') {
      const name = $('#ref-name').value.trim();
      if (!name) return toast('Type a ref name first');
      await api.setRef(name, id);
      toast('ref ' + name + ' → ' + shortId(id));
      return refresh();
    }
    if (action === 'label') {
      const label = $('#label-text').value.trim();
      if (!label) return toast('Type a label first');
      await api.addLabel(id, label);
      toast('labelled ' + shortId(id) + ' “' + label + '”');
      return refresh();
    }
    if (action === 'prune') {
      const what = view.summary.children ? ' and everything below it' : '';
      if (!window.confirm('Remove node ' + view.summary.short + what + '? This cannot be undone.')) return;
      const parent = view.node.parent;
      const r = await api.prune(id);
      toast('removed ' + r.removed.length + ' node(s)');
      state.current = null;
      await renderOutline();
      if (parent) return go(parent);
      $('#node-view').textContent = '';
      return;
    }
    if (!text.trim()) return toast('Write a message first');
    if (state.busy) return toast('An answer is still streaming');
    let boxes = [];
    const committed = [];
    const onEvent = (name, data) => {
      if (name === 'start') boxes = answerBoxes(data.count);
      else if (name === 'delta') boxes[data.index].firstChild.appendChild(document.createTextNode(data.text));
      else if (name === 'node') {
        const b = boxes[data.index];
        b.classList.remove('streaming');
        b.dataset.nodeId = data.node.id;
        b.insertBefore(el('a', { class: 'open', href: '#node=' + encodeURIComponent(data.node.id), text: 'open ' + data.node.short }), b.firstChild);
        committed.push(data.node.id);
      } else if (name === 'error') {
        const targets = data.index === null || data.index === undefined ? boxes : [boxes[data.index]];
        targets.forEach((b) => {
          b.classList.remove('streaming');
          b.classList.add('failed');
          b.appendChild(el('p', { class: 'error', text: data.message }));
        });
      }
    };
    state.busy = true;
    try {
      if (action === 'continue') await api.respond(id, text, onEvent);
      else if (action === 'branch') {
        const texts = text.split('\n').map((t) => t.trim()).filter(Boolean);
        await api.branch(id, texts, onEvent);
      } else if (action === 'fanout') await api.fanout(id, text, Number($('#fanout-n').value) || 1, onEvent);
    } finally {
      state.busy = false;
    }
    if (!committed.length) return;
    $('#message').value = '';
    state.expanded.add(id);
    await renderOutline();
    if (committed.length === 1 && action === 'continue') return go(committed[0]);
    markOutline();
  }

  async function toggleBookmark() {
    if (!state.current || !state.info.annotations) return;
    if (!state.info.writable) return toast('read-only');
    const star = $('#bookmark-toggle');
    const on = !(star && star.classList.contains('on'));
    await api.setBookmark(state.current.node.id, on);
    toast(on ? 'bookmarked' : 'bookmark removed');
    await loadAnnotations(state.current.node.id);
    await renderBookmarks();
  }

  // The favourite path's last FAVOURITE_DEPTH ids are marked in the outline
  // and graph; the API says "none yet" as null, not as an error.
  async function loadFavourite() {
    try {
      const fav = await api.favourite(FAVOURITE_DEPTH);
      state.favourite = new Set(fav ? fav.path : []);
    } catch (_) {
      // Unmarked until the next refresh: the rest of the page still works.
      state.favourite = new Set();
    }
  }

  async function goFavourite() {
    const fav = await api.favourite(1);
    if (!fav) return toast('no favourite path yet: press f on a node to make it one');
    return go(fav.id);
  }

  async function setFavourite() {
    if (!state.current || !state.info.writable) return toast('read-only');
    await api.setRef('favourite', state.current.node.id);
    toast('favourite path ends at ' + state.current.summary.short);
    return refresh();
  }

  // ----------------------------------------------------------------- compare

  function markCompare() {
    if (!state.current) return;
    state.marked = state.current.node.id;
    toast('marked ' + shortId(state.marked) + ' for compare: open another node and press c');
  }

  async function compareMarked() {
    if (!state.current) return;
    if (!state.marked) return toast('mark a node first (m)');
    location.hash = 'compare=' + encodeURIComponent(state.marked) + '&with=' + encodeURIComponent(state.current.node.id);
  }

  async function showCompare(a, b) {
    const diff = await api.compare(a, b);
    const box = $('#compare');
    box.textContent = '';
    const common = diff.common
      ? el('p', {}, 'From the common ancestor ',
        el('a', { href: '#node=' + encodeURIComponent(diff.common.id), text: diff.common.short }),
        el('span', { class: 'muted', text: ' ' + cut(diff.common.prompt, 80) }))
      : el('p', {}, 'These nodes share no ancestor (different roots).');
    const column = (side, id, steps) => el('div', { class: 'col ' + side, dataset: { nodeId: id } },
      el('h3', {}, el('a', { href: '#node=' + encodeURIComponent(id), text: shortId(id) })),
      steps.length ? renderSteps(steps, id) : el('p', { class: 'muted', text: 'This node is the common ancestor.' }));
    box.appendChild(el('div', { class: 'compare-head' }, el('h2', { text: 'Compare' }), common,
      el('button', { type: 'button', text: 'Close', onclick: () => history.back() })));
    box.appendChild(el('div', { class: 'columns' }, column('left', diff.left_id, diff.left), column('right', diff.right_id, diff.right)));
    $('#node-view').hidden = true;
    box.hidden = false;
  }

  // ------------------------------------------------------------------- graph

  async function renderGraph() {
    const box = $('#graph');
    const cur = state.current;
    const root = cur ? cur.root : null;
    const data = await api.graph(root, 500);
    const ns = 'http://www.w3.org/2000/svg';
    const svgEl = (tag, attrs) => {
      const node = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
      return node;
    };
    const ids = new Set(data.nodes.map((n) => n.id));
    const kids = new Map();
    const tops = [];
    for (const n of data.nodes) {
      if (n.parent && ids.has(n.parent)) {
        if (!kids.has(n.parent)) kids.set(n.parent, []);
        kids.get(n.parent).push(n);
      } else tops.push(n);
    }
    // Tidy enough: leaves left to right, a parent centred over its children.
    const pos = new Map();
    let nextX = 0;
    let maxDepth = 0;
    const stack = tops.slice().reverse().map((n) => ({ n, depth: 0, done: false }));
    while (stack.length) {
      const top = stack.pop();
      const children = kids.get(top.n.id) || [];
      if (!top.done && children.length) {
        stack.push({ n: top.n, depth: top.depth, done: true });
        for (let i = children.length - 1; i >= 0; i -= 1) stack.push({ n: children[i], depth: top.depth + 1, done: false });
        continue;
      }
      maxDepth = Math.max(maxDepth, top.depth);
      const x = children.length ? (pos.get(children[0].id).x + pos.get(children[children.length - 1].id).x) / 2 : nextX++;
      pos.set(top.n.id, { x, y: top.depth, n: top.n });
    }
    const dx = 36;
    const dy = 56;
    const svg = svgEl('svg', { width: (nextX + 1) * dx, height: (maxDepth + 1) * dy + 20, role: 'img', 'aria-label': 'Tree graph' });
    const place = (p) => ({ x: p.x * dx + dx / 2 + 4, y: p.y * dy + 18 });
    for (const p of pos.values()) {
      if (p.n.parent && pos.has(p.n.parent)) {
        const a = place(pos.get(p.n.parent));
        const b = place(p);
        svg.appendChild(svgEl('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: 'edge' }));
      }
    }
    const curId = cur ? cur.node.id : null;
    for (const p of pos.values()) {
      const c = place(p);
      const g = svgEl('g', { class: 'gnode' + (p.n.id === curId ? ' current' : '') + (state.favourite.has(p.n.id) ? ' fav' : ''), 'data-node-id': p.n.id, tabindex: 0 });
      const title = svgEl('title');
      title.textContent = p.n.short + ': ' + p.n.prompt + ' → ' + p.n.reply;
      g.appendChild(title);
      g.appendChild(svgEl('circle', { cx: c.x, cy: c.y, r: 7 }));
      if (pos.size <= 150) {
        const label = svgEl('text', { x: c.x + 9, y: c.y + 4 });
        label.textContent = p.n.short.slice(-4);
        g.appendChild(label);
      }
      g.addEventListener('click', () => go(p.n.id));
      svg.appendChild(g);
    }
    box.textContent = '';
    box.appendChild(el('p', { class: 'muted', text: pos.size + ' node(s)' + (data.truncated ? ' (the first 500, breadth first)' : '') + ' · click a node to open it' }));
    box.appendChild(svg);
  }

  function toggleGraph() {
    const box = $('#graph');
    box.hidden = !box.hidden;
    if (!box.hidden) renderGraph().catch(fail);
  }

  // ------------------------------------------------------------------ search

  function setupSearch() {
    if (!state.info.search) return;
    const form = $('#search-form');
    const input = $('#search');
    const results = $('#search-results');
    form.hidden = false;
    let timer = null;
    let seq = 0;
    const run = async () => {
      const q = input.value.trim();
      const mine = ++seq;
      if (!q) {
        results.hidden = true;
        return;
      }
      const found = await api.search(q);
      if (mine !== seq) return;
      results.textContent = '';
      const hits = found.hits || [];
      const list = el('ul', {});
      for (const hit of hits) {
        const snippet = (hit.snippets || [])[0] || { parts: [] };
        const text = el('span', { class: 'snippet' },
          snippet.cut_before ? '…' : '',
          snippet.parts.map((p) => (p.hit ? el('mark', { text: p.text }) : p.text)),
          snippet.cut_after ? '…' : '');
        const a = el('a', { href: '#node=' + encodeURIComponent(hit.id) },
          el('span', { class: 'short', text: hit.short || shortId(hit.id) }), ' ', text);
        list.appendChild(el('li', { class: 'hit', dataset: { nodeId: hit.id } }, a));
      }
      results.appendChild(el('p', { class: 'muted', text: (found.total !== undefined ? found.total : hits.length) + ' match(es)' }));
      results.appendChild(list);
      results.hidden = false;
    };
    input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => run().catch(fail), 200);
    });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      run().then(() => {
        const first = $('#search-results li.hit');
        if (first) go(first.dataset.nodeId);
      }).catch(fail);
    });
    results.addEventListener('click', (e) => {
      if (e.target.closest('a')) results.hidden = true;
    });
  }

  // --------------------------------------------------------------- keyboard

  async function step(direction) {
    const view = state.current;
    if (!view) {
      const roots = await api.roots(0, 1);
      if (roots.items.length) go(roots.items[0].id);
      return;
    }
    const id = view.node.id;
    if (direction === 'parent' && view.node.parent) go(view.node.parent);
    else if (direction === 'child') {
      const remembered = state.lastChild.get(id);
      const target = remembered || view.first_child;
      if (target) go(target);
    } else if (direction === 'prev' && view.siblings.prev) go(view.siblings.prev);
    else if (direction === 'next' && view.siblings.next) go(view.siblings.next);
    else if (direction === 'root') go(view.root);
  }

  function onKey(e) {
    const t = e.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable)) {
      if (e.key === 'Escape') t.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const keys = {
      ArrowLeft: () => step('parent'),
      ArrowRight: () => step('child'),
      ArrowUp: () => step('prev'),
      ArrowDown: () => step('next'),
      r: () => step('root'),
      Home: () => step('root'),
      b: () => toggleBookmark(),
      f: () => setFavourite(),
      F: () => goFavourite(),
      m: () => markCompare(),
      c: () => compareMarked(),
      g: () => toggleGraph(),
      e: () => { const m = $('#message'); if (m) m.focus(); },
      '/': () => { const s = $('#search'); if (s && !$('#search-form').hidden) s.focus(); },
      '?': () => { $('#help').hidden = !$('#help').hidden; },
      Escape: () => {
        $('#help').hidden = true;
        $('#search-results').hidden = true;
        if (!$('#compare').hidden && state.current) go(state.current.node.id);
      },
    };
    const action = keys[e.key];
    if (!action) return;
    e.preventDefault();
    Promise.resolve(action()).catch(fail);
  }

  // ------------------------------------------------------------------ routes

  function go(id) {
    const hash = 'node=' + encodeURIComponent(id);
    if (location.hash.slice(1) === hash) route().catch(fail);
    else location.hash = hash;
  }

  async function route() {
    const params = new URLSearchParams(location.hash.slice(1));
    if (params.get('compare') && params.get('with')) return showCompare(params.get('compare'), params.get('with'));
    if (params.get('node')) return show(params.get('node'));
    $('#compare').hidden = true;
    $('#node-view').hidden = false;
    return null;
  }

  async function refresh() {
    // The tree changed: a kept step may have been pruned or relabelled.
    state.steps.clear();
    await loadFavourite();
    await renderOutline();
    if (state.current && $('#compare').hidden) {
      try {
        await show(state.current.node.id, { keepScroll: true });
      } catch (err) {
        if (err.status === 404) {
          state.current = null;
          $('#node-view').textContent = '';
        } else throw err;
      }
    }
    markOutline();
  }

  const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

  // Follows the server's change counter with long polls: each request
  // returns as soon as the tree changes (another process's commit reaches the
  // server through PostgreSQL's NOTIFY at once), or after 25 s unchanged.
  async function follow() {
    for (;;) {
      try {
        const c = await api.changes(state.version);
        $('#live').textContent = '●';
        $('#live').className = 'ok';
        if (c.version !== state.version) {
          state.version = c.version;
          // A streaming action refreshes when it ends.
          if (!state.busy) await refresh();
        }
      } catch (_) {
        $('#live').textContent = '○';
        $('#live').className = 'down';
        await pause(RETRY_MS);
      }
    }
  }

  async function start() {
    // The access token (remote mode) is in a cookie now: drop it from the bar.
    if (new URLSearchParams(location.search).has('token')) {
      history.replaceState(null, '', location.pathname + location.hash);
    }
    state.info = await api.info();
    state.version = state.info.version;
    $('#stats').textContent = state.info.nodes + ' nodes · ' + state.info.roots + ' roots' + (api.local ? ' · export (read-only)' : state.info.writable ? '' : ' · read-only');
    document.body.classList.toggle('read-only', !state.info.writable);
    setupSearch();
    await loadFavourite();
    await renderOutline();
    $('#outline').addEventListener('click', (e) => {
      const link = e.target.closest('a.label');
      if (link && link.getAttribute('href') === location.hash) route().catch(fail);
    });
    $('#help-toggle').addEventListener('click', () => { $('#help').hidden = !$('#help').hidden; });
    $('#help-close').addEventListener('click', () => { $('#help').hidden = true; });
    $('#graph-toggle').addEventListener('click', toggleGraph);
    document.addEventListener('keydown', onKey);
    window.addEventListener('hashchange', () => route().catch(fail));
    await route();
    if (!api.local) follow();
    document.body.dataset.ready = 'true';
  }

  start().catch(fail);
})();
