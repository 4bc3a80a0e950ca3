#!/usr/bin/env python3
"""Checks docs/api/diffattn.md against include/diffattn.h, independently of the generator's parsing:

1. every comment of the header (prose, section banners, inline field comments) appears in the
   reference with its words in order (whitespace, comment markers and Markdown escapes aside);
2. every banner section and every /* ---- subsection ---- */ has a heading of its own;
3. every declared da_* function and typedef has an entry heading;
4. no empty or dash-only heading, fences balanced;
5. the committed reference is what packaging/api-docs.py makes of the header today.

usage: api_docs_check.py [ROOT]      prints "api-docs: N passed, N failed"; exit 1 on failure
"""

import re
import subprocess
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])
header = (root / "include/diffattn.h").read_text(encoding="utf-8")
reference_path = root / "docs/api/diffattn.md"
reference = reference_path.read_text(encoding="utf-8")
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {what}")


def words(text):
    """Comparable text: comment markers, line-leading '*', fences, heading marks, escapes gone."""
    text = text.replace("\\*", "*")
    lines = []
    for line in text.splitlines():
        line = re.sub(r"^\s*```\w*\s*$", "", line)
        line = re.sub(r"^#{1,6} ", "", line)
        line = re.sub(r"^\s*\*(?=\s|$)", "", line)
        lines.append(line)
    text = "\n".join(lines).replace("/*", " ").replace("*/", " ")
    return " ".join(text.split())


body = words(reference)
# (not the labels of the closing lines: `} /* extern "C" */`, `#endif /* DIFFATTN_H */`)
comments = [m.group(1) for m in re.finditer(r"/\*(.*?)\*/", header, re.S)
            if not re.match(r"(}|#endif)\s*$", header[header.rfind("\n", 0, m.start()) + 1:m.start()])]
missing = []
for c in comments:
    text = words(c)
    text = re.sub(r"^-{2,}\s*(.*?)\s*-{2,}$", r"\1", text)  # a subsection banner: its title
    if not text or set(text) <= {"-"}:
        continue
    if text not in body:
        missing.append(text)
check(not missing, f"{len(missing)} of {len(comments)} header comments missing from {reference_path.name}, "
                   f"first: {missing[:3]}")

headings = re.findall(r"^(#{2,4}) (.*)$", reference, re.M)
h2 = [t for lvl, t in headings if lvl == "##"]
h3 = [t for lvl, t in headings if lvl == "###"]
h4 = " ".join(t for lvl, t in headings if lvl == "####")
sections = re.findall(r"/\*\s*-{10,}\s*\*/\n/\*(.*?)\*/", header)
for title in sections:
    title = " ".join(title.split())
    check(any(h.startswith(title.rstrip(".")) or title.startswith(h.rstrip(".")) for h in h2),
          f"section '{title}' has no '## ' heading")
for title in re.findall(r"^/\*\s*-{2,}\s*([^-\s].*?)\s*-{2,}\s*\*/$", header, re.M):
    check(title in h3, f"subsection '{title}' has no '### ' heading")

code = re.sub(r"/\*.*?\*/", "", header, flags=re.S)
declared = set(re.findall(r"\b(da_\w+)\s*\(", code)) | set(re.findall(r"\(\s*\*\s*(da_\w+)\s*\)", code))
declared |= set(re.findall(r"^typedef\s[^({;]*?(\w+)\s*;", code, re.M))
declared |= set(re.findall(r"^typedef\s+struct\s+(\w+)\s*\{", code, re.M))
undocumented = sorted(n for n in declared if f"`{n}`" not in h4)
check(not undocumented, f"declarations without an entry heading: {undocumented}")

bad = [t for _, t in headings if not t.strip() or set(t.strip()) <= {"-"}]
check(not bad, f"empty or dash-only headings: {bad}")
check(len(re.findall(r"^```", reference, re.M)) % 2 == 0, "unbalanced ``` fences")

fresh = subprocess.run([sys.executable, str(root / "packaging/api-docs.py"), str(root / "include/diffattn.h")],
                       capture_output=True, text=True, check=False)
check(fresh.returncode == 0 and fresh.stdout == reference,
      f"{reference_path.relative_to(root)} is not what packaging/api-docs.py makes of the header: run make docs")

print(f"api-docs: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
