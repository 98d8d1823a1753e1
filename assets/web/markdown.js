// resptree's safe Markdown renderer.
//
// Model and user text is hostile. This renderer never parses HTML and never
// assigns innerHTML: it builds DOM nodes with createElement and puts every
// piece of text in with createTextNode, so `<script>`, event attributes and
// entities stay literal text. It produces only these elements: p, pre, code,
// em, strong, ul, ol, li, h1-h6, br, a. A link is kept only when its target
// parses as an absolute http(s) URL; it opens in a new context with no
// referrer and no opener. Anything else is shown as the text it was.
'use strict';

(function (global) {
  /** Only absolute http(s) URLs become links. */
  function safeUrl(raw) {
    let url;
    try {
      url = new URL(raw);
    } catch (_) {
      return null;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    return url.href;
  }

  /** Inline spans: `code`, **strong**, *em* / _em_, [text](http://…). */
  function inline(text, parent) {
    const doc = parent.ownerDocument;
    let i = 0;
    let plain = '';
    const flush = () => {
      if (plain) parent.appendChild(doc.createTextNode(plain));
      plain = '';
    };
    while (i < text.length) {
      const rest = text.slice(i);
      let m;
      if ((m = /^`([^`]+)`/.exec(rest))) {
        flush();
        const code = doc.createElement('code');
        code.textContent = m[1];
        parent.appendChild(code);
        i += m[0].length;
      } else if ((m = /^\*\*([^*]+?)\*\*/.exec(rest)) || (m = /^__([^_]+?)__/.exec(rest))) {
        flush();
        const strong = doc.createElement('strong');
        inline(m[1], strong);
        parent.appendChild(strong);
        i += m[0].length;
      } else if ((m = /^\*([^*\s][^*]*?)\*/.exec(rest)) || (m = /^_([^_\s][^_]*?)_(?![A-Za-z0-9])/.exec(rest))) {
        flush();
        const em = doc.createElement('em');
        inline(m[1], em);
        parent.appendChild(em);
        i += m[0].length;
      } else if ((m = /^\[([^\]]+)\]\(([^)\s]+)\)/.exec(rest))) {
        const href = safeUrl(m[2]);
        if (href) {
          flush();
          const a = doc.createElement('a');
          a.href = href;
          a.rel = 'noopener noreferrer nofollow';
          a.target = '_blank';
          a.textContent = m[1];
          parent.appendChild(a);
        } else {
          plain += m[0];
        }
        i += m[0].length;
      } else {
        plain += text[i];
        i += 1;
      }
    }
    flush();
  }

  /** Appends `lines` as one paragraph, keeping line breaks. */
  function paragraph(lines, parent) {
    const p = parent.ownerDocument.createElement('p');
    lines.forEach((line, k) => {
      if (k > 0) p.appendChild(parent.ownerDocument.createElement('br'));
      inline(line, p);
    });
    parent.appendChild(p);
  }

  const FENCE = /^\s*(```|~~~)\s*([\w+.-]*)\s*$/;
  const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
  const BULLET = /^\s*[-*+]\s+(.*)$/;
  const NUMBERED = /^\s*(\d{1,9})[.)]\s+(.*)$/;

  /**
   * Renders `text` into a DocumentFragment of whitelisted elements.
   * @param {string} text
   * @param {Document} [doc]
   */
  function render(text, doc) {
    doc = doc || global.document;
    const out = doc.createDocumentFragment();
    const lines = String(text).replace(/\r\n?/g, '\n').split('\n');
    let i = 0;
    let para = [];
    const endPara = () => {
      if (para.length) paragraph(para, out);
      para = [];
    };
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if ((m = FENCE.exec(line))) {
        endPara();
        const fence = m[1];
        const body = [];
        i += 1;
        while (i < lines.length && lines[i].trim() !== fence) {
          body.push(lines[i]);
          i += 1;
        }
        i += 1; // the closing fence (or the end)
        const pre = doc.createElement('pre');
        const code = doc.createElement('code');
        if (m[2]) code.dataset.lang = m[2];
        code.textContent = body.join('\n');
        pre.appendChild(code);
        out.appendChild(pre);
      } else if ((m = HEADING.exec(line))) {
        endPara();
        const h = doc.createElement('h' + m[1].length);
        inline(m[2], h);
        out.appendChild(h);
        i += 1;
      } else if (BULLET.test(line) || NUMBERED.test(line)) {
        endPara();
        const ordered = !BULLET.test(line);
        const pattern = ordered ? NUMBERED : BULLET;
        const list = doc.createElement(ordered ? 'ol' : 'ul');
        if (ordered) {
          const first = Number(NUMBERED.exec(line)[1]);
          if (first !== 1) list.start = first;
        }
        while (i < lines.length && pattern.test(lines[i])) {
          const item = pattern.exec(lines[i]);
          const li = doc.createElement('li');
          inline(ordered ? item[2] : item[1], li);
          list.appendChild(li);
          i += 1;
        }
        out.appendChild(list);
      } else if (line.trim() === '') {
        endPara();
        i += 1;
      } else {
        para.push(line);
        i += 1;
      }
    }
    endPara();
    return out;
  }

  global.ResptreeMarkdown = { render: render, safeUrl: safeUrl };
})(typeof window !== 'undefined' ? window : globalThis);
