#!/usr/bin/env python3
"""Generates the API reference (docs/api/diffattn.md) from the doc comments of include/diffattn.h.

usage: api-docs.py [HEADER] > docs/api/diffattn.md        (`make docs` runs it)

The header is the contract: every declaration is documented right above itself.
This script keeps that text and order, and only formats it:
- the header's opening comment becomes the introduction;
- a comment framed by banner lines (/* ----- */) is a section: its first sentence the title, the
  rest the section's introduction;
- a one-line /* ---- title ---- */ is a subsection; comment lines right below it are its introduction;
- a comment directly above a declaration (a prototype, a struct, a run of #defines; consecutive
  declarations form one entry) documents it: the C text in a code block, the comment below;
- any other comment is a paragraph of its own.
A comment is either one /* … */ spanning lines or a run of consecutive one-line /* … */ comments
(boxed text); inside it, lines indented by 4+ spaces after a blank line are code (a fenced block).
"""

import re
import sys

DASHES = re.compile(r"^/\*\s*-{10,}\s*\*/$")                  # a banner line: dashes only
SUBSECTION = re.compile(r"^/\*\s*-{2,}\s*([^-].*?)\s*-{2,}\s*\*/$")
SKIP = re.compile(r'^(#ifndef DIFFATTN_H|#define DIFFATTN_H\b|#include|#ifdef __cplusplus|extern "C"|}\s*/\*|#endif)')


def is_one_line_comment(line):
    s = line.strip()
    return s.startswith("/*") and s.endswith("*/") and "*/" not in s[2:-2]


def strip_one_line(line):
    """'/*  text   */' → ' text' less one space after /* (relative indentation is kept)."""
    body = line.strip()[2:-2].rstrip()
    return body[1:] if body.startswith(" ") else body


def read_comment(lines, i):
    """(text lines, index after) for the comment starting at lines[i]; text keeps indentation."""
    if is_one_line_comment(lines[i]):
        out = []
        while i < len(lines) and is_one_line_comment(lines[i]) and not SUBSECTION.match(lines[i].strip()):
            out.append(strip_one_line(lines[i]))
            i += 1
        return out, i
    block = []
    while True:
        block.append(lines[i])
        i += 1
        if "*/" in block[-1]:
            break
    out = []
    for n, raw in enumerate(block):
        s = raw.rstrip()
        if n == 0:
            s = re.sub(r"^\s*/\*+ ?", "", s)
        if n == len(block) - 1:
            s = re.sub(r"\s*\*+/\s*$", "", s)
        if n > 0:
            s = re.sub(r"^\s*\* ?", "", s) if s.lstrip().startswith("*") else s.strip()
        out.append(s.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out, i


def prose(lines):
    """Markdown for a comment's text lines: indented runs after a blank line become code blocks."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        after_blank = i == 0 or not lines[i - 1].strip()
        if after_blank and line.startswith("    ") and line.strip():
            j = i
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                j += 1
            while j > i and not lines[j - 1].strip():
                j -= 1
            code = lines[i:j]
            indent = min(len(c) - len(c.lstrip()) for c in code if c.strip())
            out += ["```c"] + [c[indent:] for c in code] + ["```"]
            i = j
            continue
        out.append(escape(line))
        i += 1
    return "\n".join(out).strip()


def escape(text):
    """Escapes the asterisks of C names (DA_ERR_*, *_init) outside `code` spans."""
    parts = text.split("`")
    return "`".join(p if k % 2 else p.replace("*", "\\*") for k, p in enumerate(parts))


def split_title(lines):
    """A section comment's (title, remaining lines): the first sentence of its first paragraph."""
    para = []
    for line in lines:
        if not line.strip():
            break
        para.append(line.strip())
    text = " ".join(para)
    m = re.search(r"(?<!e\.g)(?<!i\.e)\.(\s|$)", text)
    if not m or m.end() >= len(text.rstrip()):
        title, rest = text, ""
    else:
        title, rest = text[:m.start() + 1], text[m.end():].strip()
    remaining = ([rest] if rest else []) + lines[len(para):]
    while remaining and not remaining[0].strip():
        remaining.pop(0)
    return title, remaining


def declaration_names(code):
    names = []
    for m in re.finditer(r"typedef\s+struct\s+(\w+)\s*{|\b(da_\w+)\s*\(|\(\s*\*\s*(da_\w+)\s*\)", code):
        name = m.group(1) or m.group(3) or m.group(2)
        if name and name not in names and not code.lstrip().startswith("#define"):
            names.append(name)
    for line in code.splitlines():  # typedef int32_t da_status; typedef struct x_s *da_x;
        m = re.match(r"typedef\s[^({]*?(\w+)\s*;\s*$", line)
        if m and m.group(1) not in names:
            names.append(m.group(1))
    # a prototype's parameters may name types (da_status …): keep the declared function names only
    return [n for n in names if re.search(rf"\b{n}\s*\(|struct\s+{n}\b|\*\s*{n}\s*\)|{n}\s*;\s*$", code, re.M)]


def read_declaration(lines, i):
    """(code, index after) for the declaration(s) starting at lines[i]."""
    start = i
    if lines[i].startswith("#define"):
        in_comment = False  # a #define's trailing comment may run on over the next lines
        while i < len(lines) and (in_comment or lines[i].startswith("#define") or
                                  (is_one_line_comment(lines[i]) and i + 1 < len(lines)
                                   and lines[i + 1].startswith("#define"))):
            opened, closed = lines[i].rfind("/*"), lines[i].rfind("*/")
            in_comment = opened > closed if opened != closed else in_comment
            i += 1
        return "\n".join(lines[start:i]).rstrip(), i
    while i < len(lines):  # prototypes and structs, one after another without a blank line
        depth = 0
        while i < len(lines):
            depth += lines[i].count("{") - lines[i].count("}")
            i += 1
            if depth == 0 and lines[i - 1].rstrip().endswith(";"):
                break
        nxt = lines[i].strip() if i < len(lines) else ""
        if not nxt or nxt.startswith(("/*", "#")) or SKIP.match(nxt):
            break
    return "\n".join(lines[start:i]).rstrip(), i


def parse(path):
    lines = open(path, encoding="utf-8").read().splitlines()
    items = []  # ("intro"|"prose", text) | ("section", title) | ("subsection", title) | ("entry", names, code, doc)
    i, first = 0, True
    while i < len(lines):
        line = lines[i].strip()
        if not line or SKIP.match(line):
            i += 1
            continue
        if DASHES.match(line):  # a section: banner, text, banner
            j = i + 1
            while j < len(lines) and not DASHES.match(lines[j].strip()):
                j += 1
            text = [strip_one_line(l) for l in lines[i + 1:j]]
            title, rest = split_title(text)
            items.append(("section", title))
            if rest:
                items.append(("prose", prose(rest)))
            i, first = j + 1, False
            continue
        m = SUBSECTION.match(line)
        if m:
            items.append(("subsection", m.group(1)))
            i += 1
            if i < len(lines) and is_one_line_comment(lines[i]):
                text, i = read_comment(lines, i)
                items.append(("prose", prose(text)))
            continue
        if line.startswith("/*"):
            text, i = read_comment(lines, i)
            if first:
                items.append(("intro", prose(text)))
            elif i < len(lines) and lines[i].strip() and not SKIP.match(lines[i].strip()) \
                    and not lines[i].strip().startswith("/*"):
                code, i = read_declaration(lines, i)
                items.append(("entry", declaration_names(code), code, prose(text)))
            else:
                items.append(("prose", prose(text)))
            first = False
            continue
        first = False
        code, i = read_declaration(lines, i)
        items.append(("entry", declaration_names(code), code, ""))
    return items


def render(items, header_name):
    toc, body = [], []
    for item in items:
        kind = item[0]
        if kind in ("intro", "prose"):
            body.append(item[1] + "\n")
        elif kind == "section":
            body.append(f"## {item[1]}\n")
            toc.append(f"- [{item[1]}](#{anchor(item[1])})")
        elif kind == "subsection":
            body.append(f"### {item[1]}\n")
        else:
            _, names, code, doc = item
            if names:
                body.append("#### " + ", ".join(f"`{n}`" for n in names) + "\n")
            body.append(f"```c\n{code}\n```\n")
            if doc:
                body.append(doc + "\n")
    head = [f"# libdiffattn C API reference\n",
            f"Generated by `packaging/api-docs.py` from the doc comments of `{header_name}` "
            f"(`make docs`); edit the header, not this file.\n",
            "\n".join(toc) + "\n"]
    return "\n".join(head + body)


def anchor(title):
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def main(argv):
    header = argv[1] if len(argv) > 1 else "include/diffattn.h"
    sys.stdout.write(render(parse(header), "include/diffattn.h"))


if __name__ == "__main__":
    main(sys.argv)
