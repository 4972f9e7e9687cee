#!/usr/bin/env python3
"""Checks that every relative link in README.md and docs/**/*.md points to an
existing file and, for a #fragment into a markdown file, to one of its
headings (GitHub's slugs). Links inside code blocks and absolute URLs are
skipped. Usage: scripts/check-doc-links.py [REPO_ROOT]; exit 1 if any is broken."""
import glob
import os
import re
import sys


def slug(heading):
    # GitHub: lower case, punctuation other than '-' and '_' dropped, spaces to '-'.
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    out, fence = set(), False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            fence = not fence
        elif not fence and (m := re.match(r"#{1,6}\s+(.*)", line)):
            out.add(slug(m.group(1)))
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    files = [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "**", "*.md"), recursive=True))
    broken = 0
    for f in files:
        text = re.sub(r"```.*?```", "", open(f, encoding="utf-8").read(), flags=re.S)
        for m in re.finditer(r"\]\(([^)\s]+)\)", text):
            link = m.group(1)
            if re.match(r"[a-z]+:", link):
                continue
            path, _, frag = link.partition("#")
            target = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
            where = os.path.relpath(f, root)
            if not os.path.exists(target):
                print(f"{where}: broken link {link}")
                broken += 1
            elif frag and target.endswith(".md") and frag not in anchors(target):
                print(f"{where}: no heading #{frag} in {os.path.relpath(target, root)}")
                broken += 1
    print(f"doc links: {len(files)} files, {broken} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
